// 16-bit floats widened to float32, exactly: BF16 by a shift, F16 by vcvtph2ps (NaNs come back quiet with their
// payload, as the scalar path in Safetensors' FloatBits gives).
#include "CKernels.h"
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define EAW_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))
#endif

static inline uint16_t load16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline void store32(float *p, uint32_t bits) { memcpy(p, &bits, 4); }

void eaw_widen_bf16_portable(const void *src, float *dst, size_t n) {
    const uint8_t *s = src;
    for (size_t i = 0; i < n; i++) store32(dst + i, (uint32_t)load16(s + 2 * i) << 16);
}

static uint32_t half_bits_to_float_bits(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF;
    if (exponent == 0x1F) return sign | 0x7F800000 | (mantissa << 13) | (mantissa ? 0x400000 : 0);
    if (exponent != 0) return sign | ((exponent + 112) << 23) | (mantissa << 13);
    if (mantissa == 0) return sign;
    // Subnormal: normalize.
    int shift = 0;
    while (!(mantissa & 0x400)) { mantissa <<= 1; shift++; }
    return sign | ((uint32_t)(113 - shift) << 23) | ((mantissa & 0x3FF) << 13);
}

void eaw_widen_f16_portable(const void *src, float *dst, size_t n) {
    const uint8_t *s = src;
    for (size_t i = 0; i < n; i++) store32(dst + i, half_bits_to_float_bits(load16(s + 2 * i)));
}

#if defined(__x86_64__)
EAW_AVX512 static void widen_bf16_avx512(const void *src, float *dst, size_t n) {
    const uint8_t *s = src;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(s + 2 * i)));
        _mm512_storeu_si512(dst + i, _mm512_slli_epi32(w, 16));
    }
    eaw_widen_bf16_portable(s + 2 * i, dst + i, n - i);
}

EAW_AVX512 static void widen_f16_avx512(const void *src, float *dst, size_t n) {
    const uint8_t *s = src;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(s + 2 * i))));
    }
    eaw_widen_f16_portable(s + 2 * i, dst + i, n - i);
}
#endif

void eaw_widen_bf16(const void *src, float *dst, size_t n) {
#if defined(__x86_64__)
    if (eaw_kernels_use_avx512()) { widen_bf16_avx512(src, dst, n); return; }
#endif
    eaw_widen_bf16_portable(src, dst, n);
}

void eaw_widen_f16(const void *src, float *dst, size_t n) {
#if defined(__x86_64__)
    if (eaw_kernels_use_avx512()) { widen_f16_avx512(src, dst, n); return; }
#endif
    eaw_widen_f16_portable(src, dst, n);
}

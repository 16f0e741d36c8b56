// The int8 blockwise and float8 e4m3fn quantizers (the formulas of Quantizer in WeightOps, bit for bit).
#include "CKernels.h"
#include <math.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define EAW_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))
#endif

// 1.5 × 2^23: adding it rounds a float of magnitude below 2^22 to an integer, ties to even; the sum's low byte
// is then the integer's two's complement.
static const float rounding_shift = 12582912.0f;

static inline uint32_t bits_of(float x) { uint32_t b; memcpy(&b, &x, 4); return b; }
static inline float float_of(uint32_t b) { float x; memcpy(&x, &b, 4); return x; }
// Clamps as x86's maxss/minss do, so a NaN stays NaN (as Swift's min/max leave it).
static inline float clamp_keep_nan(float x, float bound) {
    float y = (-bound > x) ? -bound : x;
    return (bound < y) ? bound : y;
}

// A run's error sums in float (as the vector lanes keep them), added to the caller's double sums at the end.
typedef struct { float max_error, error_squares, norm_squares; } run_sums;

static inline run_sums run_start(const eaw_quantization_error *error) { return (run_sums){error->max_error, 0, 0}; }

static inline void run_add(run_sums *s, float e, float x) {
    s->max_error = e > s->max_error ? e : s->max_error;   // a NaN error leaves the max as it was
    s->error_squares += e * e;
    s->norm_squares += x * x;
}

static inline void run_end(const run_sums *s, eaw_quantization_error *error) {
    error->max_error = s->max_error;
    error->error_squares += s->error_squares;
    error->norm_squares += s->norm_squares;
}

void eaw_block_absmax_row_portable(const float *w, size_t cols, size_t group, float *amax) {
    for (size_t j = 0; j < cols / group; j++) {
        uint32_t m = bits_of(amax[j]) & 0x7FFFFFFF;
        for (size_t c = j * group; c < (j + 1) * group; c++) {
            uint32_t a = bits_of(w[c]) & 0x7FFFFFFF;
            m = a > m ? a : m;
        }
        amax[j] = float_of(m);
    }
}

void eaw_quantize_int8_row_portable(const float *w, size_t cols, size_t group, const float *scales, uint8_t *q,
                                    eaw_quantization_error *error) {
    run_sums sums = run_start(error);
    for (size_t c = 0; c < cols; c++) {
        float scale = scales[c / group], x = w[c];
        float shifted = clamp_keep_nan(x / scale, 127.0f) + rounding_shift;
        q[c] = (uint8_t)bits_of(shifted);
        run_add(&sums, fabsf(x - (shifted - rounding_shift) * scale), x);
    }
    run_end(&sums, error);
}

// The e4m3fn code of a value already clamped to ±448 (NaN gives 0x7F with its sign), and its value.
static inline uint8_t f8e4m3_code(float y, float *value) {
    uint32_t x = bits_of(y), sign = (x >> 24) & 0x80, a = x & 0x7FFFFFFF;
    uint32_t rounded = a - 0x3C000000 + 0x7FFFF + ((a >> 20) & 1);   // (127 - 7) << 23 off the exponent
    uint32_t normal = rounded >> 20;
    // Below 2^-6: 2^14 has an ulp of 2^-9, the e4m3 subnormal step.
    float sub = float_of(a) + 16384.0f;
    uint32_t subnormal = bits_of(sub) - 0x46800000;
    uint32_t code = a >= 0x3C800000 ? normal : subnormal;
    float magnitude = a >= 0x3C800000 ? float_of((rounded & ~0xFFFFFu) + 0x3C000000) : sub - 16384.0f;
    if (a >= 0x43F00000) { code = 0x7F; magnitude = float_of(a); }
    *value = sign ? -magnitude : magnitude;
    return (uint8_t)(sign | code);
}

void eaw_quantize_f8e4m3_portable(const float *w, size_t n, float inverse_scale, float scale, uint8_t *q,
                                  eaw_quantization_error *error) {
    run_sums sums = run_start(error);
    for (size_t i = 0; i < n; i++) {
        float value, x = w[i];
        q[i] = f8e4m3_code(clamp_keep_nan(x * inverse_scale, 448.0f), &value);
        run_add(&sums, fabsf(x - value * scale), x);
    }
    run_end(&sums, error);
}

#if defined(__x86_64__)
EAW_AVX512 static inline __m512 clamp16(__m512 x, float bound) {
    // maxps/minps return the second operand when either is NaN: NaN passes through.
    return _mm512_min_ps(_mm512_set1_ps(bound), _mm512_max_ps(_mm512_set1_ps(-bound), x));
}

// The lanes' error sums added to the caller's.
EAW_AVX512 static void lanes_end(__m512 max_error, __m512 error_squares, __m512 norm, eaw_quantization_error *error) {
    error->max_error = _mm512_reduce_max_ps(max_error);
    error->error_squares += _mm512_reduce_add_ps(error_squares);
    error->norm_squares += _mm512_reduce_add_ps(norm);
}

EAW_AVX512 static void block_absmax_row_avx512(const float *w, size_t cols, size_t group, float *amax) {
    if (group % 16 != 0) { eaw_block_absmax_row_portable(w, cols, group, amax); return; }
    const __m512i abs_mask = _mm512_set1_epi32(0x7FFFFFFF);
    for (size_t j = 0; j < cols / group; j++) {
        __m512i m = _mm512_setzero_si512();
        for (size_t c = j * group; c < (j + 1) * group; c += 16) {
            m = _mm512_max_epu32(m, _mm512_and_si512(_mm512_loadu_si512(w + c), abs_mask));
        }
        uint32_t found = _mm512_reduce_max_epu32(m), before = bits_of(amax[j]) & 0x7FFFFFFF;
        amax[j] = float_of(found > before ? found : before);
    }
}

EAW_AVX512 static void int8_row_avx512(const float *w, size_t cols, size_t group, const float *scales, uint8_t *q,
                                       eaw_quantization_error *error) {
    if (group % 16 != 0) { eaw_quantize_int8_row_portable(w, cols, group, scales, q, error); return; }
    const __m512 shift = _mm512_set1_ps(rounding_shift);
    __m512 max_error = _mm512_set1_ps(error->max_error), error_squares = _mm512_setzero_ps(), norm = _mm512_setzero_ps();
    for (size_t c = 0; c < cols; c += 16) {
        __m512 scale = _mm512_set1_ps(scales[c / group]), x = _mm512_loadu_ps(w + c);
        __m512 shifted = _mm512_add_ps(clamp16(_mm512_div_ps(x, scale), 127.0f), shift);
        _mm_storeu_si128((__m128i *)(q + c), _mm512_cvtepi32_epi8(_mm512_castps_si512(shifted)));
        __m512 e = _mm512_abs_ps(_mm512_sub_ps(x, _mm512_mul_ps(_mm512_sub_ps(shifted, shift), scale)));
        max_error = _mm512_max_ps(e, max_error);   // a NaN error leaves the max as it was
        error_squares = _mm512_add_ps(error_squares, _mm512_mul_ps(e, e));
        norm = _mm512_add_ps(norm, _mm512_mul_ps(x, x));
    }
    lanes_end(max_error, error_squares, norm, error);
}

EAW_AVX512 static void f8e4m3_avx512(const float *w, size_t n, float inverse_scale, float scale, uint8_t *q,
                                     eaw_quantization_error *error) {
    const __m512i abs_mask = _mm512_set1_epi32(0x7FFFFFFF);
    const __m512 inverse = _mm512_set1_ps(inverse_scale), scale16 = _mm512_set1_ps(scale), big = _mm512_set1_ps(16384.0f);
    __m512 max_error = _mm512_set1_ps(error->max_error), error_squares = _mm512_setzero_ps(), norm = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 x = _mm512_loadu_ps(w + i);
        __m512i bits = _mm512_castps_si512(clamp16(_mm512_mul_ps(x, inverse), 448.0f));
        __m512i a = _mm512_and_si512(bits, abs_mask);
        __m512i sign = _mm512_and_si512(_mm512_srli_epi32(bits, 24), _mm512_set1_epi32(0x80));
        __m512i rounded = _mm512_add_epi32(_mm512_sub_epi32(a, _mm512_set1_epi32(0x3C000000 - 0x7FFFF)),
                                           _mm512_and_si512(_mm512_srli_epi32(a, 20), _mm512_set1_epi32(1)));
        __m512 sub = _mm512_add_ps(_mm512_castsi512_ps(a), big);
        __mmask16 is_normal = _mm512_cmpge_epu32_mask(a, _mm512_set1_epi32(0x3C800000));
        __mmask16 is_nan = _mm512_cmpge_epu32_mask(a, _mm512_set1_epi32(0x43F00000));
        __m512i code = _mm512_mask_blend_epi32(is_normal, _mm512_sub_epi32(_mm512_castps_si512(sub), _mm512_set1_epi32(0x46800000)),
                                               _mm512_srli_epi32(rounded, 20));
        code = _mm512_mask_blend_epi32(is_nan, code, _mm512_set1_epi32(0x7F));
        __m512 magnitude = _mm512_mask_blend_ps(
            is_normal, _mm512_sub_ps(sub, big),
            _mm512_castsi512_ps(_mm512_add_epi32(_mm512_and_si512(rounded, _mm512_set1_epi32(~0xFFFFF)), _mm512_set1_epi32(0x3C000000))));
        magnitude = _mm512_mask_blend_ps(is_nan, magnitude, _mm512_castsi512_ps(a));
        __m512 value = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(magnitude), _mm512_slli_epi32(sign, 24)));
        _mm_storeu_si128((__m128i *)(q + i), _mm512_cvtepi32_epi8(_mm512_or_si512(code, sign)));
        __m512 e = _mm512_abs_ps(_mm512_sub_ps(x, _mm512_mul_ps(value, scale16)));
        max_error = _mm512_max_ps(e, max_error);   // a NaN error leaves the max as it was
        error_squares = _mm512_add_ps(error_squares, _mm512_mul_ps(e, e));
        norm = _mm512_add_ps(norm, _mm512_mul_ps(x, x));
    }
    lanes_end(max_error, error_squares, norm, error);
    eaw_quantize_f8e4m3_portable(w + i, n - i, inverse_scale, scale, q + i, error);
}
#endif

void eaw_block_absmax_row(const float *w, size_t cols, size_t group, float *amax) {
#if defined(__x86_64__)
    if (eaw_kernels_use_avx512()) { block_absmax_row_avx512(w, cols, group, amax); return; }
#endif
    eaw_block_absmax_row_portable(w, cols, group, amax);
}

void eaw_quantize_int8_row(const float *w, size_t cols, size_t group, const float *scales, uint8_t *q,
                           eaw_quantization_error *error) {
#if defined(__x86_64__)
    if (eaw_kernels_use_avx512()) { int8_row_avx512(w, cols, group, scales, q, error); return; }
#endif
    eaw_quantize_int8_row_portable(w, cols, group, scales, q, error);
}

void eaw_quantize_f8e4m3(const float *w, size_t n, float inverse_scale, float scale, uint8_t *q,
                         eaw_quantization_error *error) {
#if defined(__x86_64__)
    if (eaw_kernels_use_avx512()) { f8e4m3_avx512(w, n, inverse_scale, scale, q, error); return; }
#endif
    eaw_quantize_f8e4m3_portable(w, n, inverse_scale, scale, q, error);
}

// Activations and the softmax exponential over float32 arrays, in place. The portable versions call libm as the
// scalar Swift code did; the AVX-512 ones use a Cephes-style expf (range reduction by ln 2 in two parts, a
// degree-6 polynomial, 2^n by vscalefps: within 2 ulp of expf, inf and 0 at the ends, NaN kept).
#include "CKernels.h"
#include <math.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define EAW_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))
#endif

// tanh-approximated GELU as 0.5·x·(1 + tanh(u)) = x / (1 + exp(-2u)), u = √(2/π)·(x + 0.044715·x³): a few ulp
// everywhere, where the libm form loses its relative accuracy in the left tail (1 + tanh(u) cancels).
static const float gelu_k0 = 0.7978845608028654f, gelu_k1 = 0.044715f;

void eaw_gelu_tanh_portable(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1 + tanhf(gelu_k0 * (v + gelu_k1 * v * v * v)));
    }
}

void eaw_silu_portable(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] / (1 + expf(-x[i]));
}

float eaw_exp_shifted_sum_portable(float *x, size_t n, float shift) {
    float sum = 0;
    for (size_t i = 0; i < n; i++) { float e = expf(x[i] - shift); x[i] = e; sum += e; }
    return sum;
}

#if defined(__x86_64__)
EAW_AVX512 static inline __m512 exp_avx512(__m512 x) {
    const __m512 log2e = _mm512_set1_ps(1.44269504088896341f);
    const __m512 ln2_hi = _mm512_set1_ps(0.693359375f), ln2_lo = _mm512_set1_ps(-2.12194440e-4f);
    // Beyond ±104 the result is inf or 0 anyway; clamping keeps the reduction exact.
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(104.0f));
    __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, ln2_hi, x);
    r = _mm512_fnmadd_ps(k, ln2_lo, r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, k);
}

// The clamp above would turn a NaN input into ±104; NaN lanes are put back.
EAW_AVX512 static inline __m512 exp_nan_kept(__m512 x) {
    __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    return _mm512_mask_mov_ps(exp_avx512(x), nan, x);
}

EAW_AVX512 static void gelu_tanh_avx512(float *x, size_t n) {
    const __m512 minus_two_k0 = _mm512_set1_ps(-2 * gelu_k0), k1 = _mm512_set1_ps(gelu_k1), one = _mm512_set1_ps(1.0f);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        __m512 inner = _mm512_fmadd_ps(_mm512_mul_ps(k1, v), _mm512_mul_ps(v, v), v);
        __m512 e = exp_nan_kept(_mm512_mul_ps(minus_two_k0, inner));
        _mm512_storeu_ps(x + i, _mm512_div_ps(v, _mm512_add_ps(one, e)));
    }
    eaw_gelu_tanh_portable(x + i, n - i);
}

EAW_AVX512 static void silu_avx512(float *x, size_t n) {
    const __m512 one = _mm512_set1_ps(1.0f), zero = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        __m512 e = exp_nan_kept(_mm512_sub_ps(zero, v));
        _mm512_storeu_ps(x + i, _mm512_div_ps(v, _mm512_add_ps(one, e)));
    }
    eaw_silu_portable(x + i, n - i);
}

EAW_AVX512 static float exp_shifted_sum_avx512(float *x, size_t n, float shift) {
    const __m512 s = _mm512_set1_ps(shift);
    __m512 sum = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 e = exp_nan_kept(_mm512_sub_ps(_mm512_loadu_ps(x + i), s));
        _mm512_storeu_ps(x + i, e);
        sum = _mm512_add_ps(sum, e);
    }
    return _mm512_reduce_add_ps(sum) + eaw_exp_shifted_sum_portable(x + i, n - i, shift);
}
#endif

void eaw_gelu_tanh(float *x, size_t n) {
#if defined(__x86_64__)
    if (eaw_kernels_use_avx512()) { gelu_tanh_avx512(x, n); return; }
#endif
    eaw_gelu_tanh_portable(x, n);
}

void eaw_silu(float *x, size_t n) {
#if defined(__x86_64__)
    if (eaw_kernels_use_avx512()) { silu_avx512(x, n); return; }
#endif
    eaw_silu_portable(x, n);
}

float eaw_exp_shifted_sum(float *x, size_t n, float shift) {
#if defined(__x86_64__)
    if (eaw_kernels_use_avx512()) return exp_shifted_sum_avx512(x, n, shift);
#endif
    return eaw_exp_shifted_sum_portable(x, n, shift);
}

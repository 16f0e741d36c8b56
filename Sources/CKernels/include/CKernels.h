// Hot loops that need AVX-512 to run at memory speed, each with a portable C version chosen at run time on
// processors without it. Numerics wraps them for Swift; nothing else calls them.
#ifndef EA_WEIGHTS_CKERNELS_H
#define EA_WEIGHTS_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

/// What a quantizer lost over the elements it encoded: max |w - dequant(q)|, Σ (w - dequant(q))², Σ w².
typedef struct {
    float max_error;
    double error_squares;
    double norm_squares;
} eaw_quantization_error;

/// 1 when the AVX-512 versions run on this processor (for reports).
int eaw_kernels_use_avx512(void);

/// For one row of `cols` values in groups of `group`: `amax[j] = max(amax[j], max |w| of group j)`, on the
/// sign-cleared bit patterns (so a NaN wins, as it makes the scale NaN).
void eaw_block_absmax_row(const float *w, size_t cols, size_t group, float *amax);

/// One row of an int8 blockwise weight: `cols` values in groups of `group`, group j with `scales[j]`.
/// `q = round_half_even(clamp(w / scale, -127, 127))` stored as two's complement bytes; `error` is added to.
void eaw_quantize_int8_row(const float *w, size_t cols, size_t group, const float *scales, uint8_t *q,
                           eaw_quantization_error *error);

/// `n` values as float8 e4m3fn of `clamp(w * inverse_scale, -448, 448)` (round half to even, NaN kept);
/// `error` is added to, with the dequantized value `fp8 * scale`.
void eaw_quantize_f8e4m3(const float *w, size_t n, float inverse_scale, float scale, uint8_t *q,
                         eaw_quantization_error *error);

/// `n` little-endian BF16 or F16 values (`src` may be unaligned) as float32, exactly.
void eaw_widen_bf16(const void *src, float *dst, size_t n);
void eaw_widen_f16(const void *src, float *dst, size_t n);

/// In place: tanh-approximated GELU (PyTorch's `approximate="tanh"`), SiLU `x / (1 + exp(-x))`, and
/// `x[i] = exp(x[i] - shift)` returning the sum (a softmax row's numerator and denominator).
void eaw_gelu_tanh(float *x, size_t n);
void eaw_silu(float *x, size_t n);
float eaw_exp_shifted_sum(float *x, size_t n, float shift);

/// The portable versions, whatever the processor (the tests compare the two).
void eaw_gelu_tanh_portable(float *x, size_t n);
void eaw_silu_portable(float *x, size_t n);
float eaw_exp_shifted_sum_portable(float *x, size_t n, float shift);
void eaw_widen_bf16_portable(const void *src, float *dst, size_t n);
void eaw_widen_f16_portable(const void *src, float *dst, size_t n);
void eaw_block_absmax_row_portable(const float *w, size_t cols, size_t group, float *amax);
void eaw_quantize_int8_row_portable(const float *w, size_t cols, size_t group, const float *scales, uint8_t *q,
                                    eaw_quantization_error *error);
void eaw_quantize_f8e4m3_portable(const float *w, size_t n, float inverse_scale, float scale, uint8_t *q,
                                  eaw_quantization_error *error);

#endif

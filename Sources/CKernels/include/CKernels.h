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

/// 1 when the int8 matmul runs on AVX-512 VNNI here.
int eaw_kernels_use_vnni(void);

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

/// The int8 matmul y[m, n] = Σ_k x[m, k] · w[n, k] (+ bias[n]) of `--compute int8`, in two passes:
///
/// `eaw_int8_quantize_rows` quantizes rows row_begin ..< row_end of x (`rows` × `cols`, row stride `ldx`) per
/// group of `group` columns (a multiple of 4; the last group may be shorter): scale = max |x| / 127,
/// q = round_half_even(x / scale), packed for the matmul into `packed` (eaw_int8_packed_bytes(rows, cols)) and
/// `scales` (eaw_int8_packed_scales(rows, cols, group)). row_begin is a multiple of 16; rows up to the next
/// multiple of 16 past `rows` are padding and must be quantized too (they give zeros).
///
/// `eaw_int8_gemm` computes output columns n_begin ..< n_end from those and w (`cols` signed bytes per row,
/// row stride `ldw`; bytes up to the next multiple of 4 past `cols` must be readable), whose scale for row n
/// and group g is w_scales[(n / scale_rows) · groups + g], and w_sums from eaw_int8_weight_sums. `bias` may be NULL.
size_t eaw_int8_packed_bytes(size_t rows, size_t cols);
size_t eaw_int8_packed_scales(size_t rows, size_t cols, size_t group);
void eaw_int8_weight_sums(const int8_t *w, size_t rows, size_t cols, size_t ldw, size_t group, int32_t *sums);
void eaw_int8_quantize_rows(const float *x, size_t rows, size_t cols, size_t ldx, size_t group, size_t row_begin,
                            size_t row_end, uint8_t *packed, float *scales);
void eaw_int8_gemm(const uint8_t *packed, const float *x_scales, size_t rows, size_t cols, size_t group,
                   const int8_t *w, size_t ldw, const float *w_scales, size_t scale_rows, const int32_t *w_sums,
                   const float *bias, float *y, size_t ldy, size_t n_begin, size_t n_end);


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
void eaw_int8_quantize_rows_portable(const float *x, size_t rows, size_t cols, size_t ldx, size_t group,
                                     size_t row_begin, size_t row_end, uint8_t *packed, float *scales);
void eaw_int8_gemm_portable(const uint8_t *packed, const float *x_scales, size_t rows, size_t cols, size_t group,
                            const int8_t *w, size_t ldw, const float *w_scales, size_t scale_rows,
                            const int32_t *w_sums, const float *bias, float *y, size_t ldy, size_t n_begin,
                            size_t n_end);

#endif

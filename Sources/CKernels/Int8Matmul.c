// The int8 matmul of `--compute int8`: y = x · wᵀ with x quantized per row and per group of columns at each
// call, and w stored as signed bytes with one scale per (block of rows, group). Integer dot products per group
// (AVX-512 VNNI `vpdpbusd` where the processor has it), scaled and summed over the groups in float32.
//
// vpdpbusd multiplies unsigned by signed bytes, so activations are stored as q + 128 and the group's
// `128 · Σ w` (eaw_int8_weight_sums) is taken off each integer sum. Both versions do the same integer sums and
// the same float operations in the same order: their results are identical.
#include "CKernels.h"
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define EAW_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#endif

// Packed activations: row m's columns 4·kq … 4·kq+3 are the 4 bytes at ((m / 16) · quads + kq) · 64 + (m % 16) · 4,
// so one 64-byte load holds the same 4 columns of 16 rows; scales at ((m / 16) · groups + g) · 16 + m % 16.
enum { LANES = 16, QUAD_BYTES = 4, PANEL_BYTES = LANES * QUAD_BYTES };

// 1.5 × 2^23: adding it rounds a float of magnitude below 2^22 to an integer, ties to even; the sum's low byte
// is then the integer's two's complement.
static const float rounding_shift = 12582912.0f;

static inline uint32_t bits_of(float x) { uint32_t b; memcpy(&b, &x, 4); return b; }
static inline float float_of(uint32_t b) { float x; memcpy(&x, &b, 4); return x; }
static inline size_t quads_of(size_t cols) { return (cols + 3) / 4; }
static inline size_t groups_of(size_t cols, size_t group) { return (cols + group - 1) / group; }
static inline size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

size_t eaw_int8_packed_bytes(size_t rows, size_t cols) {
    return (rows + LANES - 1) / LANES * quads_of(cols) * PANEL_BYTES;
}

size_t eaw_int8_packed_scales(size_t rows, size_t cols, size_t group) {
    return (rows + LANES - 1) / LANES * groups_of(cols, group) * LANES;
}

void eaw_int8_weight_sums(const int8_t *w, size_t rows, size_t cols, size_t ldw, size_t group, int32_t *sums) {
    size_t groups = groups_of(cols, group);
    for (size_t n = 0; n < rows; n++) {
        for (size_t g = 0; g < groups; g++) {
            int32_t s = 0;
            for (size_t k = g * group; k < min_size(cols, (g + 1) * group); k++) s += w[n * ldw + k];
            sums[n * groups + g] = 128 * s;
        }
    }
}

// The group's absolute maximum on sign-cleared bit patterns, so a NaN wins (and makes the scale NaN).
static inline float group_absmax(const float *x, size_t count) {
    uint32_t m = 0;
    for (size_t k = 0; k < count; k++) {
        uint32_t a = bits_of(x[k]) & 0x7FFFFFFF;
        m = a > m ? a : m;
    }
    return float_of(m);
}

// q + 128 of one value, q = round_half_even(x · inverse) (|q| ≤ 127 since |x| ≤ the group's maximum).
static inline uint8_t quantized_byte(float x, float inverse) {
    float y = x * inverse;
    float shifted = y + rounding_shift;
    return (uint8_t)(bits_of(shifted) + 128);
}

void eaw_int8_quantize_rows_portable(const float *x, size_t rows, size_t cols, size_t ldx, size_t group,
                                     size_t row_begin, size_t row_end, uint8_t *packed, float *scales) {
    size_t quads = quads_of(cols), groups = groups_of(cols, group);
    for (size_t m = row_begin; m < row_end; m++) {
        uint8_t *base = packed + (m / LANES) * quads * PANEL_BYTES + (m % LANES) * QUAD_BYTES;
        float *row_scales = scales + (m / LANES) * groups * LANES + m % LANES;
        memset(base + (quads - 1) * PANEL_BYTES, 0, QUAD_BYTES);   // columns past the end multiply as 0
        for (size_t g = 0; g < groups; g++) {
            size_t k0 = g * group, k1 = min_size(cols, k0 + group);
            if (m >= rows) {   // a padding row of the last panel
                for (size_t k = k0; k < k1; k++) base[(k / 4) * PANEL_BYTES + k % 4] = 0;
                row_scales[g * LANES] = 0;
                continue;
            }
            const float *xr = x + m * ldx;
            float amax = group_absmax(xr + k0, k1 - k0);
            float inverse = amax > 0 ? 127.0f / amax : 0.0f;
            row_scales[g * LANES] = amax / 127.0f;
            for (size_t k = k0; k < k1; k++) base[(k / 4) * PANEL_BYTES + k % 4] = quantized_byte(xr[k], inverse);
        }
    }
}

// One output tile: `vectors` × 16 rows of x by `outputs` rows of w (each at most 4), into tile[j][i] (16 lanes).
static inline void tile_portable(const uint8_t *px, const float *xs, size_t vectors, size_t quads, size_t groups,
                                 size_t group, const int8_t *w, size_t ldw, const float *const *ws,
                                 const int32_t *sums, size_t outputs, float tile[4][4][LANES]) {
    for (size_t g = 0; g < groups; g++) {
        size_t q0 = g * group / 4, q1 = min_size(quads, (g + 1) * group / 4);
        for (size_t j = 0; j < outputs; j++) {
            for (size_t i = 0; i < vectors; i++) {
                for (size_t lane = 0; lane < LANES; lane++) {
                    int32_t acc = 0;
                    for (size_t kq = q0; kq < q1; kq++) {
                        const uint8_t *a = px + (i * quads + kq) * PANEL_BYTES + lane * QUAD_BYTES;
                        const int8_t *b = w + j * ldw + kq * QUAD_BYTES;
                        acc += a[0] * b[0] + a[1] * b[1] + a[2] * b[2] + a[3] * b[3];
                    }
                    float value = (float)(acc - sums[j * groups + g]);
                    float scale = xs[(i * groups + g) * LANES + lane] * ws[j][g];
                    tile[j][i][lane] = __builtin_fmaf(value, scale, tile[j][i][lane]);
                }
            }
        }
    }
}

// Adds the bias and writes the tile's rows that exist (row m0 + 16 i + lane < rows).
static inline void store_tile(float tile[4][4][LANES], size_t vectors, size_t outputs, size_t m0, size_t rows,
                              const float *bias, float *y, size_t ldy) {
    for (size_t i = 0; i < vectors; i++) {
        for (size_t lane = 0; lane < LANES && m0 + i * LANES + lane < rows; lane++) {
            float *out = y + (m0 + i * LANES + lane) * ldy;
            for (size_t j = 0; j < outputs; j++) out[j] = tile[j][i][lane] + (bias ? bias[j] : 0.0f);
        }
    }
}

// Cache blocks: about 1 MiB of packed x (a multiple of 64 rows) stays in L2 while blocks of about 192 KiB of w
// pass over it, each 4 rows of w staying in L1 while the chunk's rows of x pass over them.
static inline size_t block_multiple(size_t bytes, size_t row_bytes, size_t multiple) {
    size_t n = bytes / (row_bytes ? row_bytes : 1) / multiple * multiple;
    return n < multiple ? multiple : n;
}

typedef void (*tile_function)(const uint8_t *, const float *, size_t, size_t, size_t, size_t, const int8_t *,
                              size_t, const float *const *, const int32_t *, size_t, float[4][4][LANES]);
typedef void (*store_function)(float[4][4][LANES], size_t, size_t, size_t, size_t, const float *, float *, size_t);

static void gemm_blocked(tile_function tile_fn, store_function store_fn, const uint8_t *packed, const float *x_scales, size_t rows,
                         size_t cols, size_t group, const int8_t *w, size_t ldw, const float *w_scales,
                         size_t scale_rows, const int32_t *w_sums, const float *bias, float *y, size_t ldy,
                         size_t n_begin, size_t n_end) {
    size_t quads = quads_of(cols), groups = groups_of(cols, group), vectors_total = (rows + LANES - 1) / LANES;
    size_t chunk_vectors = block_multiple(1 << 20, quads * QUAD_BYTES * LANES, 4);
    size_t block = block_multiple(192 << 10, ldw, 4);
    for (size_t vc = 0; vc < vectors_total; vc += chunk_vectors) {
        size_t vc_end = min_size(vectors_total, vc + chunk_vectors);
        for (size_t nb = n_begin; nb < n_end; nb += block) {
            size_t nb_end = min_size(n_end, nb + block);
            for (size_t n = nb; n < nb_end; n += 4) {
                size_t outputs = min_size(4, nb_end - n);
                const float *ws[4];
                for (size_t j = 0; j < 4; j++) ws[j] = w_scales + ((n + (j < outputs ? j : 0)) / scale_rows) * groups;
                for (size_t v = vc; v < vc_end; v += 4) {
                    size_t vectors = min_size(4, vc_end - v);
                    float tile[4][4][LANES] = {{{0}}};
                    tile_fn(packed + v * quads * PANEL_BYTES, x_scales + v * groups * LANES, vectors, quads, groups,
                            group, w + n * ldw, ldw, ws, w_sums + n * groups, outputs, tile);
                    store_fn(tile, vectors, outputs, v * LANES, rows, bias ? bias + n : NULL, y + n, ldy);
                }
            }
        }
    }
}

void eaw_int8_gemm_portable(const uint8_t *packed, const float *x_scales, size_t rows, size_t cols, size_t group,
                            const int8_t *w, size_t ldw, const float *w_scales, size_t scale_rows,
                            const int32_t *w_sums, const float *bias, float *y, size_t ldy, size_t n_begin,
                            size_t n_end) {
    gemm_blocked(tile_portable, store_tile, packed, x_scales, rows, cols, group, w, ldw, w_scales, scale_rows, w_sums, bias, y,
                 ldy, n_begin, n_end);
}

#if defined(__x86_64__)
EAW_VNNI static void quantize_rows_vnni(const float *x, size_t rows, size_t cols, size_t ldx, size_t group,
                                        size_t row_begin, size_t row_end, uint8_t *packed, float *scales) {
    size_t quads = quads_of(cols), groups = groups_of(cols, group);
    const __m512i abs_mask = _mm512_set1_epi32(0x7FFFFFFF), offset = _mm512_set1_epi32(128);
    const __m512 shift = _mm512_set1_ps(rounding_shift);
    for (size_t m = row_begin; m < row_end; m++) {
        if (m >= rows) {
            eaw_int8_quantize_rows_portable(x, rows, cols, ldx, group, m, row_end, packed, scales);
            return;
        }
        uint8_t *base = packed + (m / LANES) * quads * PANEL_BYTES + (m % LANES) * QUAD_BYTES;
        float *row_scales = scales + (m / LANES) * groups * LANES + m % LANES;
        const float *xr = x + m * ldx;
        for (size_t g = 0; g < groups; g++) {
            size_t k0 = g * group, k1 = min_size(cols, k0 + group);
            __m512i mx = _mm512_setzero_si512();
            for (size_t k = k0; k < k1; k += LANES) {
                __mmask16 valid = k1 - k >= LANES ? (__mmask16)0xFFFF : (__mmask16)((1u << (k1 - k)) - 1);
                mx = _mm512_max_epu32(mx, _mm512_and_si512(_mm512_maskz_loadu_epi32(valid, xr + k), abs_mask));
            }
            float amax = float_of(_mm512_reduce_max_epu32(mx));
            float inverse = amax > 0 ? 127.0f / amax : 0.0f;
            row_scales[g * LANES] = amax / 127.0f;
            const __m512 inv = _mm512_set1_ps(inverse);
            for (size_t k = k0; k < k1; k += LANES) {
                size_t count = min_size(LANES, k1 - k);
                __mmask16 valid = count == LANES ? (__mmask16)0xFFFF : (__mmask16)((1u << count) - 1);
                __m512 shifted = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(valid, xr + k), inv), shift);
                __m512i bytes32 = _mm512_maskz_add_epi32(valid, _mm512_castps_si512(shifted), offset);
                uint8_t bytes[LANES];
                _mm_storeu_si128((__m128i *)bytes, _mm512_cvtepi32_epi8(bytes32));
                for (size_t q = 0; q < (count + 3) / 4; q++) memcpy(base + (k / 4 + q) * PANEL_BYTES, bytes + 4 * q, 4);
            }
        }
    }
}

// The same tile with the integer sums in registers: per 4 columns, `vectors` loads of x and `outputs`
// broadcasts of w feed vectors × outputs vpdpbusd. Inlined with constant sizes so the loops unroll.
EAW_VNNI static inline __attribute__((always_inline)) void tile_vnni_fixed(
    const uint8_t *px, const float *xs, const size_t vectors, size_t quads, size_t groups, size_t group,
    const int8_t *w, size_t ldw, const float *const *ws, const int32_t *sums, const size_t outputs,
    float tile[4][4][LANES]) {
    for (size_t g = 0; g < groups; g++) {
        size_t q0 = g * group / 4, q1 = min_size(quads, (g + 1) * group / 4);
        __m512i acc[4][4];
        for (size_t i = 0; i < vectors; i++)
            for (size_t j = 0; j < outputs; j++) acc[i][j] = _mm512_setzero_si512();
        for (size_t kq = q0; kq < q1; kq++) {
            __m512i a[4];
            for (size_t i = 0; i < vectors; i++) a[i] = _mm512_loadu_si512(px + (i * quads + kq) * PANEL_BYTES);
            for (size_t j = 0; j < outputs; j++) {
                int32_t quad;
                memcpy(&quad, w + j * ldw + kq * QUAD_BYTES, 4);
                __m512i b = _mm512_set1_epi32(quad);
                for (size_t i = 0; i < vectors; i++) acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], a[i], b);
            }
        }
        for (size_t j = 0; j < outputs; j++) {
            __m512i sum = _mm512_set1_epi32(sums[j * groups + g]);
            __m512 wscale = _mm512_set1_ps(ws[j][g]);
            for (size_t i = 0; i < vectors; i++) {
                __m512 value = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i][j], sum));
                __m512 scale = _mm512_mul_ps(_mm512_loadu_ps(xs + (i * groups + g) * LANES), wscale);
                _mm512_storeu_ps(tile[j][i], _mm512_fmadd_ps(value, scale, _mm512_loadu_ps(tile[j][i])));
            }
        }
    }
}

#define EAW_TILE(V, O) \
    EAW_VNNI static void tile_vnni_##V##_##O(const uint8_t *px, const float *xs, size_t vectors, size_t quads, \
        size_t groups, size_t group, const int8_t *w, size_t ldw, const float *const *ws, const int32_t *sums, \
        size_t outputs, float tile[4][4][LANES]) { \
        (void)vectors; (void)outputs; \
        tile_vnni_fixed(px, xs, V, quads, groups, group, w, ldw, ws, sums, O, tile); \
    }
#define EAW_TILES(V) EAW_TILE(V, 1) EAW_TILE(V, 2) EAW_TILE(V, 3) EAW_TILE(V, 4)
EAW_TILES(1) EAW_TILES(2) EAW_TILES(3) EAW_TILES(4)
#undef EAW_TILES
#undef EAW_TILE

static const tile_function vnni_tiles[4][4] = {
    {tile_vnni_1_1, tile_vnni_1_2, tile_vnni_1_3, tile_vnni_1_4},
    {tile_vnni_2_1, tile_vnni_2_2, tile_vnni_2_3, tile_vnni_2_4},
    {tile_vnni_3_1, tile_vnni_3_2, tile_vnni_3_3, tile_vnni_3_4},
    {tile_vnni_4_1, tile_vnni_4_2, tile_vnni_4_3, tile_vnni_4_4},
};

// store_tile with 4 outputs and whole vectors of rows transposed in registers: each row's 4 outputs are one
// 16-byte store (the same additions as store_tile, so the same values).
EAW_VNNI static void store_tile_vnni(float tile[4][4][LANES], size_t vectors, size_t outputs, size_t m0, size_t rows,
                                     const float *bias, float *y, size_t ldy) {
    if (outputs != 4) {
        store_tile(tile, vectors, outputs, m0, rows, bias, y, ldy);
        return;
    }
    const __m128 b = bias ? _mm_loadu_ps(bias) : _mm_setzero_ps();
    for (size_t i = 0; i < vectors; i++) {
        size_t first = m0 + i * LANES;
        if (first + LANES > rows) {   // a vector with missing rows: only the last of the product
            float rest[4][4][LANES];
            for (size_t j = 0; j < 4; j++) memcpy(rest[j][0], tile[j][i], sizeof rest[j][0]);
            store_tile(rest, 1, 4, first, rows, bias, y, ldy);
            continue;
        }
        __m512 a0 = _mm512_loadu_ps(tile[0][i]), a1 = _mm512_loadu_ps(tile[1][i]);
        __m512 a2 = _mm512_loadu_ps(tile[2][i]), a3 = _mm512_loadu_ps(tile[3][i]);
        __m512 t0 = _mm512_unpacklo_ps(a0, a1), t1 = _mm512_unpackhi_ps(a0, a1);
        __m512 t2 = _mm512_unpacklo_ps(a2, a3), t3 = _mm512_unpackhi_ps(a2, a3);
        __m512 r[4];
        r[0] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t0), _mm512_castps_pd(t2)));
        r[1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t0), _mm512_castps_pd(t2)));
        r[2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t1), _mm512_castps_pd(t3)));
        r[3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t1), _mm512_castps_pd(t3)));
        // 128-bit lane L of r[q] holds row 4L + q's four outputs.
        float *out = y + first * ldy;
#define EAW_STORE_LANE(L) \
        _mm_storeu_ps(out + (4 * L + 0) * ldy, _mm_add_ps(_mm512_extractf32x4_ps(r[0], L), b)); \
        _mm_storeu_ps(out + (4 * L + 1) * ldy, _mm_add_ps(_mm512_extractf32x4_ps(r[1], L), b)); \
        _mm_storeu_ps(out + (4 * L + 2) * ldy, _mm_add_ps(_mm512_extractf32x4_ps(r[2], L), b)); \
        _mm_storeu_ps(out + (4 * L + 3) * ldy, _mm_add_ps(_mm512_extractf32x4_ps(r[3], L), b));
        EAW_STORE_LANE(0) EAW_STORE_LANE(1) EAW_STORE_LANE(2) EAW_STORE_LANE(3)
#undef EAW_STORE_LANE
    }
}

static void tile_vnni(const uint8_t *px, const float *xs, size_t vectors, size_t quads, size_t groups, size_t group,
                      const int8_t *w, size_t ldw, const float *const *ws, const int32_t *sums, size_t outputs,
                      float tile[4][4][LANES]) {
    vnni_tiles[vectors - 1][outputs - 1](px, xs, vectors, quads, groups, group, w, ldw, ws, sums, outputs, tile);
}
#endif

void eaw_int8_quantize_rows(const float *x, size_t rows, size_t cols, size_t ldx, size_t group, size_t row_begin,
                            size_t row_end, uint8_t *packed, float *scales) {
#if defined(__x86_64__)
    if (eaw_kernels_use_vnni()) {
        quantize_rows_vnni(x, rows, cols, ldx, group, row_begin, row_end, packed, scales);
        return;
    }
#endif
    eaw_int8_quantize_rows_portable(x, rows, cols, ldx, group, row_begin, row_end, packed, scales);
}

void eaw_int8_gemm(const uint8_t *packed, const float *x_scales, size_t rows, size_t cols, size_t group,
                   const int8_t *w, size_t ldw, const float *w_scales, size_t scale_rows, const int32_t *w_sums,
                   const float *bias, float *y, size_t ldy, size_t n_begin, size_t n_end) {
#if defined(__x86_64__)
    if (eaw_kernels_use_vnni()) {
        gemm_blocked(tile_vnni, store_tile_vnni, packed, x_scales, rows, cols, group, w, ldw, w_scales, scale_rows, w_sums, bias, y,
                     ldy, n_begin, n_end);
        return;
    }
#endif
    eaw_int8_gemm_portable(packed, x_scales, rows, cols, group, w, ldw, w_scales, scale_rows, w_sums, bias, y, ldy,
                           n_begin, n_end);
}

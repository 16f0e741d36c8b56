// The BF16 matmul of `--t5-compute bf16`: y = x · wᵀ with w's BF16 values read in place and x rounded to BF16
// at each call, products summed in float32 (AVX-512 BF16 `vdpbf16ps` where the processor has it). It runs at
// twice the FP32 multiply rate and reads half the bytes of widened weights.
//
// vdpbf16ps does, per float lane, acc += a₁·b₁ then acc += a₀·b₀ for one pair of BF16 values, each step one
// rounding (a product of two BF16 values is exact in float32), denormal inputs and results taken as zero. The
// portable version does exactly that in the same order, so the two give the same bits.
#include "CKernels.h"
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define EAW_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#endif

// Packed x: row m's columns 2·p and 2·p + 1 are the 4 bytes at ((m / 16) · pairs + p) · 64 + (m % 16) · 4, so one
// 64-byte load holds the same pair of columns of 16 rows.
enum { LANES = 16, PAIR_BYTES = 4, PANEL_BYTES = LANES * PAIR_BYTES };

static inline uint32_t bits_of(float x) { uint32_t b; memcpy(&b, &x, 4); return b; }
static inline float float_of(uint32_t b) { float x; memcpy(&x, &b, 4); return x; }
static inline size_t pairs_of(size_t cols) { return (cols + 1) / 2; }
static inline size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

size_t eaw_bf16_packed_bytes(size_t rows, size_t cols) {
    return (rows + LANES - 1) / LANES * pairs_of(cols) * PANEL_BYTES;
}

// vcvtneps2bf16: zero or denormal → signed zero, NaN → quiet NaN, else round to nearest even.
static inline uint16_t bf16_of(float x) {
    uint32_t b = bits_of(x);
    if ((b & 0x7F800000) == 0) return (uint16_t)((b >> 16) & 0x8000);
    if ((b & 0x7FFFFFFF) > 0x7F800000) return (uint16_t)((b >> 16) | 0x0040);
    return (uint16_t)((b + 0x7FFF + ((b >> 16) & 1)) >> 16);
}

// BF16 → float with denormals as zero (the instruction's DAZ).
static inline float float_of_bf16(uint16_t h) {
    uint32_t b = (uint32_t)h << 16;
    if ((b & 0x7F800000) == 0) b &= 0x80000000;
    return float_of(b);
}

static inline float flushed(float x) {
    uint32_t b = bits_of(x);
    return (b & 0x7F800000) == 0 ? float_of(b & 0x80000000) : x;
}

void eaw_bf16_pack_rows_portable(const float *x, size_t rows, size_t cols, size_t ldx, size_t row_begin,
                                 size_t row_end, uint8_t *packed) {
    size_t pairs = pairs_of(cols);
    for (size_t m = row_begin; m < row_end; m++) {
        uint8_t *base = packed + (m / LANES) * pairs * PANEL_BYTES + (m % LANES) * PAIR_BYTES;
        for (size_t p = 0; p < pairs; p++) {
            uint16_t pair[2] = {0, 0};   // padding rows and the column past an odd end multiply as 0
            if (m < rows) {
                pair[0] = bf16_of(x[m * ldx + 2 * p]);
                if (2 * p + 1 < cols) pair[1] = bf16_of(x[m * ldx + 2 * p + 1]);
            }
            memcpy(base + p * PANEL_BYTES, pair, PAIR_BYTES);
        }
    }
}

// One output tile: `vectors` × 16 rows of x by `outputs` rows of w (each at most 4), pairs p0 ..< p1, added to
// tile[j][i] (16 lanes).
typedef void (*tile_function)(const uint8_t *, size_t, size_t, size_t, size_t, const uint16_t *, size_t, size_t,
                              float[4][4][LANES]);

static void tile_portable(const uint8_t *px, size_t vectors, size_t pairs, size_t p0, size_t p1, const uint16_t *w,
                          size_t ldw, size_t outputs, float tile[4][4][LANES]) {
    for (size_t j = 0; j < outputs; j++) {
        for (size_t i = 0; i < vectors; i++) {
            for (size_t lane = 0; lane < LANES; lane++) {
                float acc = tile[j][i][lane];
                for (size_t p = p0; p < p1; p++) {
                    uint16_t a[2];
                    memcpy(a, px + (i * pairs + p) * PANEL_BYTES + lane * PAIR_BYTES, PAIR_BYTES);
                    const uint16_t *b = w + j * ldw + 2 * p;
                    acc = flushed(__builtin_fmaf(float_of_bf16(a[1]), float_of_bf16(b[1]), flushed(acc)));
                    acc = flushed(__builtin_fmaf(float_of_bf16(a[0]), float_of_bf16(b[0]), acc));
                }
                tile[j][i][lane] = acc;
            }
        }
    }
}

// Cache blocks: pairs of x of all the rows worth about 1 MiB stay in L2 while blocks of about 256 KiB of w pass
// over them, each 4 rows of w in L1 while the rows of x pass; the tile carries its sums from one block of pairs
// to the next through y.
static inline size_t block_multiple(size_t bytes, size_t unit_bytes, size_t multiple) {
    size_t n = bytes / (unit_bytes ? unit_bytes : 1) / multiple * multiple;
    return n < multiple ? multiple : n;
}

static void gemm_blocked(tile_function tile_fn, const uint8_t *packed, size_t rows, size_t cols, const uint16_t *w,
                         size_t ldw, const float *bias, float *y, size_t ldy, size_t n_begin, size_t n_end) {
    size_t pairs = pairs_of(cols), vectors_total = (rows + LANES - 1) / LANES;
    size_t pair_block = block_multiple(1 << 20, vectors_total * PANEL_BYTES, 32);
    for (size_t p0 = 0; p0 < pairs; p0 += pair_block) {
        size_t p1 = min_size(pairs, p0 + pair_block);
        int first = p0 == 0, last = p1 == pairs;
        size_t block = block_multiple(256 << 10, (p1 - p0) * PAIR_BYTES, 4);
        for (size_t nb = n_begin; nb < n_end; nb += block) {
            size_t nb_end = min_size(n_end, nb + block);
            for (size_t n = nb; n < nb_end; n += 4) {
                size_t outputs = min_size(4, nb_end - n);
                for (size_t v = 0; v < vectors_total; v += 4) {
                    size_t vectors = min_size(4, vectors_total - v);
                    float tile[4][4][LANES] = {{{0}}};
                    for (size_t i = 0; i < vectors && !first; i++) {
                        for (size_t lane = 0; lane < LANES && (v + i) * LANES + lane < rows; lane++) {
                            const float *in = y + ((v + i) * LANES + lane) * ldy + n;
                            for (size_t j = 0; j < outputs; j++) tile[j][i][lane] = in[j];
                        }
                    }
                    tile_fn(packed + v * pairs * PANEL_BYTES, vectors, pairs, p0, p1, w + n * ldw, ldw, outputs, tile);
                    for (size_t i = 0; i < vectors; i++) {
                        for (size_t lane = 0; lane < LANES && (v + i) * LANES + lane < rows; lane++) {
                            float *out = y + ((v + i) * LANES + lane) * ldy + n;
                            for (size_t j = 0; j < outputs; j++) {
                                out[j] = tile[j][i][lane] + (last && bias ? bias[n + j] : 0.0f);
                            }
                        }
                    }
                }
            }
        }
    }
}

void eaw_bf16_gemm_portable(const uint8_t *packed, size_t rows, size_t cols, const uint16_t *w, size_t ldw,
                            const float *bias, float *y, size_t ldy, size_t n_begin, size_t n_end) {
    gemm_blocked(tile_portable, packed, rows, cols, w, ldw, bias, y, ldy, n_begin, n_end);
}

#if defined(__x86_64__)
EAW_BF16 static void pack_rows_bf16(const float *x, size_t rows, size_t cols, size_t ldx, size_t row_begin,
                                    size_t row_end, uint8_t *packed) {
    size_t pairs = pairs_of(cols);
    for (size_t m = row_begin; m < row_end; m++) {
        if (m >= rows || cols % 2 != 0) {
            eaw_bf16_pack_rows_portable(x, rows, cols, ldx, m, m + 1, packed);
            continue;
        }
        uint8_t *base = packed + (m / LANES) * pairs * PANEL_BYTES + (m % LANES) * PAIR_BYTES;
        const float *xr = x + m * ldx;
        for (size_t k = 0; k < cols; k += LANES) {
            size_t count = min_size(LANES, cols - k);
            __mmask16 valid = count == LANES ? (__mmask16)0xFFFF : (__mmask16)((1u << count) - 1);
            __m256bh h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(valid, xr + k));
            uint32_t words[LANES / 2];
            memcpy(words, &h, sizeof words);
            for (size_t q = 0; q < count / 2; q++) memcpy(base + (k / 2 + q) * PANEL_BYTES, &words[q], PAIR_BYTES);
        }
    }
}

// The tile with its sums in registers: per pair of columns, `vectors` loads of x and `outputs` broadcasts of w
// feed vectors × outputs vdpbf16ps. Inlined with constant sizes so the loops unroll.
EAW_BF16 static inline __attribute__((always_inline)) void tile_bf16_fixed(
    const uint8_t *px, const size_t vectors, size_t pairs, size_t p0, size_t p1, const uint16_t *w, size_t ldw,
    const size_t outputs, float tile[4][4][LANES]) {
    __m512 acc[4][4];
    for (size_t i = 0; i < vectors; i++)
        for (size_t j = 0; j < outputs; j++) acc[i][j] = _mm512_loadu_ps(tile[j][i]);
    for (size_t p = p0; p < p1; p++) {
        __m512bh a[4];
        for (size_t i = 0; i < vectors; i++) a[i] = (__m512bh)_mm512_loadu_si512(px + (i * pairs + p) * PANEL_BYTES);
        for (size_t j = 0; j < outputs; j++) {
            int32_t pair;
            memcpy(&pair, w + j * ldw + 2 * p, PAIR_BYTES);
            __m512bh b = (__m512bh)_mm512_set1_epi32(pair);
            for (size_t i = 0; i < vectors; i++) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], a[i], b);
        }
    }
    for (size_t i = 0; i < vectors; i++)
        for (size_t j = 0; j < outputs; j++) _mm512_storeu_ps(tile[j][i], acc[i][j]);
}

#define EAW_TILE(V, O) \
    EAW_BF16 static void tile_bf16_##V##_##O(const uint8_t *px, size_t vectors, size_t pairs, size_t p0, size_t p1, \
        const uint16_t *w, size_t ldw, size_t outputs, float tile[4][4][LANES]) { \
        (void)vectors; (void)outputs; \
        tile_bf16_fixed(px, V, pairs, p0, p1, w, ldw, O, tile); \
    }
#define EAW_TILES(V) EAW_TILE(V, 1) EAW_TILE(V, 2) EAW_TILE(V, 3) EAW_TILE(V, 4)
EAW_TILES(1) EAW_TILES(2) EAW_TILES(3) EAW_TILES(4)
#undef EAW_TILES
#undef EAW_TILE

static const tile_function bf16_tiles[4][4] = {
    {tile_bf16_1_1, tile_bf16_1_2, tile_bf16_1_3, tile_bf16_1_4},
    {tile_bf16_2_1, tile_bf16_2_2, tile_bf16_2_3, tile_bf16_2_4},
    {tile_bf16_3_1, tile_bf16_3_2, tile_bf16_3_3, tile_bf16_3_4},
    {tile_bf16_4_1, tile_bf16_4_2, tile_bf16_4_3, tile_bf16_4_4},
};

static void tile_bf16(const uint8_t *px, size_t vectors, size_t pairs, size_t p0, size_t p1, const uint16_t *w,
                      size_t ldw, size_t outputs, float tile[4][4][LANES]) {
    bf16_tiles[vectors - 1][outputs - 1](px, vectors, pairs, p0, p1, w, ldw, outputs, tile);
}
#endif

void eaw_bf16_pack_rows(const float *x, size_t rows, size_t cols, size_t ldx, size_t row_begin, size_t row_end,
                        uint8_t *packed) {
#if defined(__x86_64__)
    if (eaw_kernels_use_bf16()) {
        pack_rows_bf16(x, rows, cols, ldx, row_begin, row_end, packed);
        return;
    }
#endif
    eaw_bf16_pack_rows_portable(x, rows, cols, ldx, row_begin, row_end, packed);
}

void eaw_bf16_gemm(const uint8_t *packed, size_t rows, size_t cols, const uint16_t *w, size_t ldw, const float *bias,
                   float *y, size_t ldy, size_t n_begin, size_t n_end) {
#if defined(__x86_64__)
    if (eaw_kernels_use_bf16()) {
        gemm_blocked(tile_bf16, packed, rows, cols, w, ldw, bias, y, ldy, n_begin, n_end);
        return;
    }
#endif
    eaw_bf16_gemm_portable(packed, rows, cols, w, ldw, bias, y, ldy, n_begin, n_end);
}

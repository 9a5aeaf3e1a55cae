/* AVX-512 register-tiled kernels. A tile of up to 6 rows x 64 columns lives in
 * 24 zmm accumulators; each step loads 4 vectors of B, broadcasts 6 values of
 * A and issues 24 FMAs, so the FMA units stay busy while loads stay well under
 * the two-per-cycle limit. Compiled with function-level target attributes so
 * the library itself needs no -march flag. */
#include <immintrin.h>

#include "cpu/cpu_conv.h"

#define T512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,fma,prfchw")))
#define INLINE static inline __attribute__((always_inline))

static inline __mmask16 lane_mask(int lanes) { return (__mmask16)((1u << lanes) - 1u); }

/* PF: issue the job's prefetch hints; TAIL: the last column vector may be
 * partial (masked loads and stores, which cost more). */
INLINE T512 void tile512(const wcm_tile_job *j, const int NP, const int NV, const int PF, const int TAIL) {
    __m512 acc[WCM_TILE_MAX_ROWS][4];
    const __mmask16 tail = TAIL ? lane_mask(j->ncols - 16 * (NV - 1)) : (__mmask16)0xFFFF;
#pragma GCC unroll 6
    for (int p = 0; p < NP; p++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) acc[p][v] = _mm512_setzero_ps();
    const ptrdiff_t ar = j->a_row, ac = j->a_col, ldb = j->ldb;
    const char *pf = j->pf.read, *pfw = j->pf.write;
    int pf_left = j->pf.read_lines, pfw_left = j->pf.write_lines;
    for (int s = 0; s < j->nseg; s++) {
        const float *a = j->a[s], *b = j->b[s];
        for (int k = j->k[s]; k > 0; k--) {
            if (PF && pf_left > 0) {
                _mm_prefetch(pf, _MM_HINT_T0);
                pf += 64;
                pf_left--;
            } else if (PF && pfw_left > 0) {
                __builtin_prefetch(pfw, 1, 3);
                pfw += 64;
                pfw_left--;
            }
            __m512 bv[4];
#pragma GCC unroll 4
            for (int v = 0; v < NV - 1; v++) bv[v] = _mm512_loadu_ps(b + 16 * v);
            bv[NV - 1] = TAIL ? _mm512_maskz_loadu_ps(tail, b + 16 * (NV - 1)) : _mm512_loadu_ps(b + 16 * (NV - 1));
#pragma GCC unroll 6
            for (int p = 0; p < NP; p++) {
                const __m512 av = _mm512_set1_ps(a[p * ar]);
#pragma GCC unroll 4
                for (int v = 0; v < NV; v++) acc[p][v] = _mm512_fmadd_ps(av, bv[v], acc[p][v]);
            }
            a += ac;
            b += ldb;
        }
    }
    const int mode = j->mode;
#pragma GCC unroll 6
    for (int p = 0; p < NP; p++) {
        float *cp = j->c + p * j->ldc;
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            const __mmask16 m = v == NV - 1 ? tail : (__mmask16)0xFFFF;
            __m512 r = acc[p][v];
            if (mode & WCM_TILE_ADD) r = _mm512_add_ps(r, TAIL ? _mm512_maskz_loadu_ps(m, cp + 16 * v) : _mm512_loadu_ps(cp + 16 * v));
            if (mode & WCM_TILE_RELU) r = _mm512_max_ps(r, _mm512_setzero_ps());
            if (TAIL)
                _mm512_mask_storeu_ps(cp + 16 * v, m, r);
            else
                _mm512_storeu_ps(cp + 16 * v, r);
        }
    }
}

/* Dot products along k; the horizontal sums use a fixed reduction tree. */
INLINE T512 void dot512(const wcm_dot_job *j, const int NP, const int NQ) {
    __m512 acc[WCM_TILE_MAX_ROWS][WCM_DOT_MAX_COLS];
#pragma GCC unroll 6
    for (int p = 0; p < NP; p++)
#pragma GCC unroll 4
        for (int q = 0; q < NQ; q++) acc[p][q] = _mm512_setzero_ps();
    const ptrdiff_t ar = j->a_row, br = j->b_row;
    for (int s = 0; s < j->nseg; s++) {
        const float *a = j->a[s], *b = j->b[s];
        const int k = j->k[s];
        for (int kk = 0; kk < k; kk += 16) {
            const __mmask16 m = k - kk >= 16 ? (__mmask16)0xFFFF : lane_mask(k - kk);
            __m512 bq[WCM_DOT_MAX_COLS];
#pragma GCC unroll 4
            for (int q = 0; q < NQ; q++) bq[q] = _mm512_maskz_loadu_ps(m, b + q * br + kk);
#pragma GCC unroll 6
            for (int p = 0; p < NP; p++) {
                const __m512 av = _mm512_maskz_loadu_ps(m, a + p * ar + kk);
#pragma GCC unroll 4
                for (int q = 0; q < NQ; q++) acc[p][q] = _mm512_fmadd_ps(av, bq[q], acc[p][q]);
            }
        }
    }
#pragma GCC unroll 6
    for (int p = 0; p < NP; p++) {
        float *cp = j->c + p * j->ldc;
#pragma GCC unroll 4
        for (int q = 0; q < NQ; q++) {
            float r = _mm512_reduce_add_ps(acc[p][q]);
            if (j->mode & WCM_TILE_ADD) r += cp[q];
            if ((j->mode & WCM_TILE_RELU) && !(r > 0.0f)) r = 0.0f;
            cp[q] = r;
        }
    }
}

/* One instance per tile shape so the accumulators are named registers. */
#define TILE_FN(NP, NV)                                                                                 \
    static T512 void tile512_##NP##x##NV(const wcm_tile_job *j) { tile512(j, NP, NV, 0, 0); }          \
    static T512 void tile512pf_##NP##x##NV(const wcm_tile_job *j) { tile512(j, NP, NV, 1, 0); }        \
    static T512 void tile512any_##NP##x##NV(const wcm_tile_job *j) { tile512(j, NP, NV, 1, 1); }
#define TILE_ROW(NP) TILE_FN(NP, 1) TILE_FN(NP, 2) TILE_FN(NP, 3) TILE_FN(NP, 4)
TILE_ROW(1)
TILE_ROW(2)
TILE_ROW(3)
TILE_ROW(4)
TILE_ROW(5)
TILE_ROW(6)

#define DOT_FN(NP, NQ) \
    static T512 void dot512_##NP##x##NQ(const wcm_dot_job *j) { dot512(j, NP, NQ); }
#define DOT_ROW(NP) DOT_FN(NP, 1) DOT_FN(NP, 2) DOT_FN(NP, 3) DOT_FN(NP, 4)
DOT_ROW(1)
DOT_ROW(2)
DOT_ROW(3)
DOT_ROW(4)
DOT_ROW(5)
DOT_ROW(6)

typedef void (*tile_fn)(const wcm_tile_job *);
typedef void (*dot_fn)(const wcm_dot_job *);

#define ROW_ENTRY(pre, NP) {pre##NP##x1, pre##NP##x2, pre##NP##x3, pre##NP##x4}
#define TILE_VARIANT(pre)                                                                 \
    {ROW_ENTRY(pre, 1), ROW_ENTRY(pre, 2), ROW_ENTRY(pre, 3), ROW_ENTRY(pre, 4), ROW_ENTRY(pre, 5), \
     ROW_ENTRY(pre, 6)}

/* One outer-product tile (see wcm_outer_job): NR rows x NV vectors. */
INLINE T512 void outer512(const wcm_outer_job *j, const int NR, const int NV) {
    __m512 acc[WCM_TILE_MAX_ROWS][4];
#pragma GCC unroll 6
    for (int r = 0; r < NR; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_ps();
    const float *x = j->x, *dy = j->dy;
    const ptrdiff_t ldx = j->ldx, ldy = j->ldy;
#define OUTER_STEP                                                                                                \
    do {                                                                                                          \
        __m512 bv[4];                                                                                             \
        _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) bv[v] = _mm512_loadu_ps(dy + 16 * v);                \
        _Pragma("GCC unroll 6") for (int r = 0; r < NR; r++) {                                                    \
            const __m512 av = _mm512_set1_ps(x[r]);                                                               \
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]); \
        }                                                                                                         \
        x += ldx;                                                                                                 \
        dy += ldy;                                                                                                \
    } while (0)
    WCM_OUTER_STEPS(j, OUTER_STEP);
#undef OUTER_STEP
#pragma GCC unroll 6
    for (int r = 0; r < NR; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            float *d = j->dw + r * j->ldw + 16 * v;
            _mm512_storeu_ps(d, j->fresh ? acc[r][v] : _mm512_add_ps(acc[r][v], _mm512_loadu_ps(d)));
        }
}

typedef void (*outer_fn)(const wcm_outer_job *);
#define OUTER_FN(NR, NV) \
    static T512 void outer512_##NR##x##NV(const wcm_outer_job *j) { outer512(j, NR, NV); }
#define OUTER_ROW(NR) OUTER_FN(NR, 1) OUTER_FN(NR, 2) OUTER_FN(NR, 3) OUTER_FN(NR, 4)
OUTER_ROW(1)
OUTER_ROW(2)
OUTER_ROW(3)
OUTER_ROW(4)
OUTER_ROW(5)
OUTER_ROW(6)
static const outer_fn outer_table[WCM_TILE_MAX_ROWS][4] = {
    ROW_ENTRY(outer512_, 1), ROW_ENTRY(outer512_, 2), ROW_ENTRY(outer512_, 3),
    ROW_ENTRY(outer512_, 4), ROW_ENTRY(outer512_, 5), ROW_ENTRY(outer512_, 6),
};
static void outer_avx512(const wcm_outer_job *j) { outer_table[j->rows - 1][j->cols / 16 - 1](j); }

/* [variant][rows - 1][vectors - 1]. Variants: whole vectors without prefetch
 * hints; whole vectors with hints (an extra test and branch per k step); any
 * job (a partial last vector, masked). */
enum { TILE_PLAIN, TILE_PREFETCH, TILE_ANY };
static const tile_fn tile_table[3][WCM_TILE_MAX_ROWS][4] = {
    TILE_VARIANT(tile512_), TILE_VARIANT(tile512pf_), TILE_VARIANT(tile512any_)};
static const dot_fn dot_table[WCM_TILE_MAX_ROWS][WCM_DOT_MAX_COLS] = {
    ROW_ENTRY(dot512_, 1), ROW_ENTRY(dot512_, 2), ROW_ENTRY(dot512_, 3),
    ROW_ENTRY(dot512_, 4), ROW_ENTRY(dot512_, 5), ROW_ENTRY(dot512_, 6),
};

static void tile_avx512(const wcm_tile_job *j) {
    const int variant = j->ncols % 16 != 0                                   ? TILE_ANY
                        : j->pf.read_lines > 0 || j->pf.write_lines > 0 ? TILE_PREFETCH
                                                                          : TILE_PLAIN;
    tile_table[variant][j->rows - 1][(j->ncols + 15) / 16 - 1](j);
}
static void dot_avx512(const wcm_dot_job *j) { dot_table[j->rows - 1][j->ncols - 1](j); }

extern const wcm_winograd_ops wcm_winograd_avx512;
extern const wcm_winograd6_ops wcm_winograd6_avx512;

const wcm_simd_ops wcm_simd_avx512 = {
    .level = WCM_SIMD_AVX512,
    .name = "avx512",
    .max_cols = 64,
    .tile = tile_avx512,
    .dot = dot_avx512,
    .winograd = &wcm_winograd_avx512,
    .winograd6 = &wcm_winograd6_avx512,
    .outer = outer_avx512,
};

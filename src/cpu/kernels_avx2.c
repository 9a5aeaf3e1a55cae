/* AVX2 + FMA kernels: 16 ymm registers allow a tile of up to 6 rows x 16
 * columns (12 accumulators, 2 vectors of B, 1 broadcast). */
#include <immintrin.h>

#include "cpu/cpu_conv.h"

#define T256 __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

INLINE T256 __m256i lanes_mask(int lanes) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

INLINE T256 void tile256(const wcm_tile_job *j, const int NP, const int NV) {
    __m256 acc[WCM_TILE_MAX_ROWS][2];
    const __m256i tail = lanes_mask(j->ncols - 8 * (NV - 1));
#pragma GCC unroll 6
    for (int p = 0; p < NP; p++)
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++) acc[p][v] = _mm256_setzero_ps();
    const ptrdiff_t ar = j->a_row, ac = j->a_col, ldb = j->ldb;
    for (int s = 0; s < j->nseg; s++) {
        const float *a = j->a[s], *b = j->b[s];
        for (int k = j->k[s]; k > 0; k--) {
            __m256 bv[2];
            if (NV == 2) bv[0] = _mm256_loadu_ps(b);
            bv[NV - 1] = _mm256_maskload_ps(b + 8 * (NV - 1), tail);
#pragma GCC unroll 6
            for (int p = 0; p < NP; p++) {
                const __m256 av = _mm256_broadcast_ss(a + p * ar);
#pragma GCC unroll 2
                for (int v = 0; v < NV; v++) acc[p][v] = _mm256_fmadd_ps(av, bv[v], acc[p][v]);
            }
            a += ac;
            b += ldb;
        }
    }
    const int mode = j->mode;
#pragma GCC unroll 6
    for (int p = 0; p < NP; p++) {
        float *cp = j->c + p * j->ldc;
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++) {
            __m256 r = acc[p][v];
            const int last = v == NV - 1;
            if (mode & WCM_TILE_ADD)
                r = _mm256_add_ps(r, last ? _mm256_maskload_ps(cp + 8 * v, tail) : _mm256_loadu_ps(cp + 8 * v));
            if (mode & WCM_TILE_RELU) r = _mm256_max_ps(r, _mm256_setzero_ps());
            if (last)
                _mm256_maskstore_ps(cp + 8 * v, tail, r);
            else
                _mm256_storeu_ps(cp + 8 * v, r);
        }
    }
}

INLINE T256 float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

/* NP x NQ dot products, NP * NQ <= 12 so everything stays in registers. */
INLINE T256 void dot256(const wcm_dot_job *j, int p0, const int NP, const int NQ) {
    __m256 acc[6][WCM_DOT_MAX_COLS];
#pragma GCC unroll 6
    for (int p = 0; p < NP; p++)
#pragma GCC unroll 4
        for (int q = 0; q < NQ; q++) acc[p][q] = _mm256_setzero_ps();
    const ptrdiff_t ar = j->a_row, br = j->b_row;
    for (int s = 0; s < j->nseg; s++) {
        const float *a = j->a[s] + p0 * ar, *b = j->b[s];
        const int k = j->k[s];
        for (int kk = 0; kk < k; kk += 8) {
            const __m256i m = lanes_mask(k - kk);
            __m256 bq[WCM_DOT_MAX_COLS];
#pragma GCC unroll 4
            for (int q = 0; q < NQ; q++) bq[q] = _mm256_maskload_ps(b + q * br + kk, m);
#pragma GCC unroll 6
            for (int p = 0; p < NP; p++) {
                const __m256 av = _mm256_maskload_ps(a + p * ar + kk, m);
#pragma GCC unroll 4
                for (int q = 0; q < NQ; q++) acc[p][q] = _mm256_fmadd_ps(av, bq[q], acc[p][q]);
            }
        }
    }
#pragma GCC unroll 6
    for (int p = 0; p < NP; p++) {
        float *cp = j->c + (p0 + p) * j->ldc;
#pragma GCC unroll 4
        for (int q = 0; q < NQ; q++) {
            float r = hsum256(acc[p][q]);
            if (j->mode & WCM_TILE_ADD) r += cp[q];
            if ((j->mode & WCM_TILE_RELU) && !(r > 0.0f)) r = 0.0f;
            cp[q] = r;
        }
    }
}

#define TILE_FN(NP, NV) \
    static T256 void tile256_##NP##x##NV(const wcm_tile_job *j) { tile256(j, NP, NV); }
#define TILE_ROW(NP) TILE_FN(NP, 1) TILE_FN(NP, 2)
TILE_ROW(1)
TILE_ROW(2)
TILE_ROW(3)
TILE_ROW(4)
TILE_ROW(5)
TILE_ROW(6)

typedef void (*tile_fn)(const wcm_tile_job *);
static const tile_fn tile_table[WCM_TILE_MAX_ROWS][2] = {
    {tile256_1x1, tile256_1x2}, {tile256_2x1, tile256_2x2}, {tile256_3x1, tile256_3x2},
    {tile256_4x1, tile256_4x2}, {tile256_5x1, tile256_5x2}, {tile256_6x1, tile256_6x2},
};

static void tile_avx2(const wcm_tile_job *j) { tile_table[j->rows - 1][(j->ncols + 7) / 8 - 1](j); }

/* One outer-product tile (see wcm_outer_job): NR rows x 16 columns. */
INLINE T256 void outer256(const wcm_outer_job *j, const int NR) {
    __m256 acc[WCM_TILE_MAX_ROWS][2];
#pragma GCC unroll 6
    for (int r = 0; r < NR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    const float *x = j->x, *dy = j->dy;
    const ptrdiff_t ldx = j->ldx, ldy = j->ldy;
#define OUTER_STEP                                                                    \
    do {                                                                              \
        const __m256 b0 = _mm256_loadu_ps(dy), b1 = _mm256_loadu_ps(dy + 8);          \
        _Pragma("GCC unroll 6") for (int r = 0; r < NR; r++) {                        \
            const __m256 av = _mm256_broadcast_ss(x + r);                             \
            acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);                           \
            acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);                           \
        }                                                                             \
        x += ldx;                                                                     \
        dy += ldy;                                                                    \
    } while (0)
    WCM_OUTER_STEPS(j, OUTER_STEP);
#undef OUTER_STEP
#pragma GCC unroll 6
    for (int r = 0; r < NR; r++)
        for (int v = 0; v < 2; v++) {
            float *d = j->dw + r * j->ldw + 8 * v;
            _mm256_storeu_ps(d, j->fresh ? acc[r][v] : _mm256_add_ps(acc[r][v], _mm256_loadu_ps(d)));
        }
}

static T256 void outer_avx2(const wcm_outer_job *j) {
    switch (j->rows) {
        case 1: outer256(j, 1); break;
        case 2: outer256(j, 2); break;
        case 3: outer256(j, 3); break;
        case 4: outer256(j, 4); break;
        case 5: outer256(j, 5); break;
        default: outer256(j, 6); break;
    }
}

/* Row groups: 6 rows for up to 2 outputs, 3 for 3, 2 for 4. */
static T256 void dot_avx2(const wcm_dot_job *j) {
    const int nq = j->ncols, group = nq <= 2 ? 6 : nq == 3 ? 3 : 2;
    for (int p0 = 0; p0 < j->rows; p0 += group) {
        const int np = j->rows - p0 < group ? j->rows - p0 : group;
        switch (nq * 8 + np) {
#define DOT_CASE(NQ, NP) \
    case NQ * 8 + NP: dot256(j, p0, NP, NQ); break;
            DOT_CASE(1, 1) DOT_CASE(1, 2) DOT_CASE(1, 3) DOT_CASE(1, 4) DOT_CASE(1, 5) DOT_CASE(1, 6)
            DOT_CASE(2, 1) DOT_CASE(2, 2) DOT_CASE(2, 3) DOT_CASE(2, 4) DOT_CASE(2, 5) DOT_CASE(2, 6)
            DOT_CASE(3, 1) DOT_CASE(3, 2) DOT_CASE(3, 3)
            DOT_CASE(4, 1) DOT_CASE(4, 2)
#undef DOT_CASE
            default: break;
        }
    }
}

const wcm_simd_ops wcm_simd_avx2 = {
    .level = WCM_SIMD_AVX2,
    .name = "avx2",
    .max_cols = 16,
    .tile = tile_avx2,
    .dot = dot_avx2,
    .winograd = 0,
    .outer = outer_avx2,
};

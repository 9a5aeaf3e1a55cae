/* Winograd F(6x6,3x3) forward transforms with AVX-512, 16 channels per vector.
 *
 * Interpolation points 0, 1, -1, 1/2, -1/2, 2, -2 and infinity (the usual
 * set; relative RMS error 1.9-3.3e-6 on 64->64 layers against the double
 * reference, F(4x4) 1.0-1.7e-6). y = AT [(G g G^T) .* (BT d BT^T)] AT^T with
 *   BT = {1, 0, -21/4, 0, 21/4, 0, -1, 0},   {0, 1, 1, -17/4, -17/4, 1, 1, 0},
 *        {0, -1, 1, 17/4, -17/4, -1, 1, 0},  {0, 1/2, 1/4, -5/2, -5/4, 2, 1, 0},
 *        {0, -1/2, 1/4, 5/2, -5/4, -2, 1, 0}, {0, 2, 4, -5/2, -5, 1/2, 1, 0},
 *        {0, -2, 4, 5/2, -5, -1/2, 1, 0},    {0, -1, 0, 21/4, 0, -21/4, 0, 1}
 *   AT = {1, 1, 1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 1/2, -1/2, 0},
 *        {0, 1, 1, 4, 4, 1/4, 1/4, 0}, {0, 1, -1, 8, -8, 1/8, -1/8, 0},
 *        {0, 1, 1, 16, 16, 1/16, 1/16, 0}, {0, 1, -1, 32, -32, 1/32, -1/32, 1}
 * and G below. 64 multiplies per 36 outputs instead of F(4x4)'s 36 per 16. */
#include <immintrin.h>

#include "cpu/cpu_conv.h"

#define T512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,fma")))
#define INLINE static inline __attribute__((always_inline))

static const float G8[8][3] = {
    {1.0f, 0.0f, 0.0f},
    {-2.0f / 9, -2.0f / 9, -2.0f / 9},
    {-2.0f / 9, 2.0f / 9, -2.0f / 9},
    {1.0f / 90, 1.0f / 45, 2.0f / 45},
    {1.0f / 90, -1.0f / 45, 2.0f / 45},
    {32.0f / 45, 16.0f / 45, 8.0f / 45},
    {32.0f / 45, -16.0f / 45, 8.0f / 45},
    {0.0f, 0.0f, 1.0f},
};

/* G g for one 3-vector (weights; not a hot loop). */
INLINE T512 void g8(const __m512 *g, __m512 *o) {
#pragma GCC unroll 8
    for (int r = 0; r < 8; r++)
        o[r] = _mm512_fmadd_ps(_mm512_set1_ps(G8[r][2]), g[2],
                               _mm512_fmadd_ps(_mm512_set1_ps(G8[r][1]), g[1], _mm512_mul_ps(_mm512_set1_ps(G8[r][0]), g[0])));
}

static T512 void wg6_weights(const float *w, int cin, int cout, int ci0, int ci1, float *u) {
    const size_t plane = (size_t)cin * cout;
    for (int ci = ci0; ci < ci1; ci++)
        for (int co = 0; co < cout; co += 16) {
            __m512 t[8][3];
            for (int kx = 0; kx < 3; kx++) {
                __m512 in[3], out[8];
                for (int ky = 0; ky < 3; ky++) in[ky] = _mm512_loadu_ps(w + (size_t)(ky * 3 + kx) * plane + (size_t)ci * cout + co);
                g8(in, out);
                for (int a = 0; a < 8; a++) t[a][kx] = out[a];
            }
            for (int a = 0; a < 8; a++) {
                __m512 out[8];
                g8(t[a], out);
                for (int b = 0; b < 8; b++) _mm512_storeu_ps(u + (size_t)(a * 8 + b) * plane + (size_t)ci * cout + co, out[b]);
            }
        }
}

/* Two outputs of BT d: pair 0 = outputs 0 and 7, 1 = 1 and 2, 2 = 3 and 4,
 * 3 = 5 and 6 (the pairs share no terms with each other). */
INLINE T512 void bt8_pair(const __m512 *d, __m512 *o, const int pair) {
    const __m512 m425 = _mm512_set1_ps(-4.25f);
    if (pair == 0) {
        const __m512 c525 = _mm512_set1_ps(5.25f);
        o[0] = _mm512_fmadd_ps(c525, _mm512_sub_ps(d[4], d[2]), _mm512_sub_ps(d[0], d[6]));
        o[1] = _mm512_fmadd_ps(c525, _mm512_sub_ps(d[3], d[5]), _mm512_sub_ps(d[7], d[1]));
    } else if (pair == 1) {
        const __m512 t1 = _mm512_fmadd_ps(m425, d[4], _mm512_add_ps(d[2], d[6]));
        const __m512 t2 = _mm512_fmadd_ps(m425, d[3], _mm512_add_ps(d[1], d[5]));
        o[0] = _mm512_add_ps(t1, t2);
        o[1] = _mm512_sub_ps(t1, t2);
    } else if (pair == 2) {
        const __m512 t3 = _mm512_fmadd_ps(_mm512_set1_ps(-1.25f), d[4], _mm512_fmadd_ps(_mm512_set1_ps(0.25f), d[2], d[6]));
        const __m512 t4 = _mm512_fmadd_ps(_mm512_set1_ps(2.0f), d[5],
                                          _mm512_fmadd_ps(_mm512_set1_ps(-2.5f), d[3], _mm512_mul_ps(_mm512_set1_ps(0.5f), d[1])));
        o[0] = _mm512_add_ps(t3, t4);
        o[1] = _mm512_sub_ps(t3, t4);
    } else {
        const __m512 t5 = _mm512_fmadd_ps(_mm512_set1_ps(-5.0f), d[4], _mm512_fmadd_ps(_mm512_set1_ps(4.0f), d[2], d[6]));
        const __m512 t6 = _mm512_fmadd_ps(_mm512_set1_ps(0.5f), d[5],
                                          _mm512_fmadd_ps(_mm512_set1_ps(-2.5f), d[3], _mm512_mul_ps(_mm512_set1_ps(2.0f), d[1])));
        o[0] = _mm512_add_ps(t5, t6);
        o[1] = _mm512_sub_ps(t5, t6);
    }
}

/* BT d, factored: 26 operations (the four pairs). */
INLINE T512 void bt8(const __m512 *d, __m512 *o) {
    static const int outs[4][2] = {{0, 7}, {1, 2}, {3, 4}, {5, 6}};
#pragma GCC unroll 4
    for (int pair = 0; pair < 4; pair++) {
        __m512 p[2];
        bt8_pair(d, p, pair);
        o[outs[pair][0]] = p[0];
        o[outs[pair][1]] = p[1];
    }
}

/* One output pair of the row transforms for all 8 rows (16 values in
 * registers), then the column transforms of those two columns: the 64 row
 * results of a patch never live at once, so nothing is spilled; the patch is
 * read once per pair, after the first time from L1. */
INLINE T512 void wg6_input_pair(const float *x, int h, int w, int c, int row, int col, float *v, ptrdiff_t v_stride,
                                const int inside, int c0, const int pair) {
    static const int cols[4][2] = {{0, 7}, {1, 2}, {3, 4}, {5, 6}};
    __m512 t[8][2];
#pragma GCC unroll 8
    for (int a = 0; a < 8; a++) {
        __m512 d[8];
        const int yy = row + a;
        const float *xr = x + ((ptrdiff_t)yy * w + col) * c + c0;
#pragma GCC unroll 8
        for (int b = 0; b < 8; b++) {
            const int xx = col + b;
            if (pair != 0 && (b == 0 || b == 7))
                d[b] = _mm512_setzero_ps(); /* not used by this pair */
            else if (inside || (yy >= 0 && yy < h && xx >= 0 && xx < w))
                d[b] = _mm512_loadu_ps(xr + (ptrdiff_t)b * c);
            else
                d[b] = _mm512_setzero_ps();
        }
        bt8_pair(d, t[a], pair);
    }
#pragma GCC unroll 2
    for (int k = 0; k < 2; k++) {
        __m512 colv[8], out[8];
#pragma GCC unroll 8
        for (int a = 0; a < 8; a++) colv[a] = t[a][k];
        bt8(colv, out);
        const int b = cols[pair][k];
#pragma GCC unroll 8
        for (int a = 0; a < 8; a++) _mm512_storeu_ps(v + (ptrdiff_t)(a * 8 + b) * v_stride + c0, out[a]);
    }
}

INLINE T512 void wg6_input_impl(const float *x, int h, int w, int c, int row, int col, float *v, ptrdiff_t v_stride,
                                const int inside) {
    for (int c0 = 0; c0 < c; c0 += 16) {
        wg6_input_pair(x, h, w, c, row, col, v, v_stride, inside, c0, 0);
        wg6_input_pair(x, h, w, c, row, col, v, v_stride, inside, c0, 1);
        wg6_input_pair(x, h, w, c, row, col, v, v_stride, inside, c0, 2);
        wg6_input_pair(x, h, w, c, row, col, v, v_stride, inside, c0, 3);
    }
}

static T512 void wg6_input(const float *x, int h, int w, int c, int row, int col, float *v, ptrdiff_t v_stride) {
    if (row >= 0 && col >= 0 && row + 8 <= h && col + 8 <= w) {
        if (c == 64 && v_stride == 64)
            wg6_input_impl(x, h, w, 64, row, col, v, 64, 1);
        else
            wg6_input_impl(x, h, w, c, row, col, v, v_stride, 1);
    } else {
        wg6_input_impl(x, h, w, c, row, col, v, v_stride, 0);
    }
}

/* The even (0, 2, 4) or odd (1, 3, 5) outputs of AT m: the halves share no
 * terms. */
INLINE T512 void at6_half(const __m512 *m, __m512 *o, const int odd) {
    if (!odd) {
        const __m512 a12 = _mm512_add_ps(m[1], m[2]), a34 = _mm512_add_ps(m[3], m[4]), a56 = _mm512_add_ps(m[5], m[6]);
        o[0] = _mm512_add_ps(_mm512_add_ps(m[0], a12), _mm512_add_ps(a34, a56));
        o[1] = _mm512_fmadd_ps(_mm512_set1_ps(0.25f), a56, _mm512_fmadd_ps(_mm512_set1_ps(4.0f), a34, a12));
        o[2] = _mm512_fmadd_ps(_mm512_set1_ps(0.0625f), a56, _mm512_fmadd_ps(_mm512_set1_ps(16.0f), a34, a12));
    } else {
        const __m512 s12 = _mm512_sub_ps(m[1], m[2]), s34 = _mm512_sub_ps(m[3], m[4]), s56 = _mm512_sub_ps(m[5], m[6]);
        o[0] = _mm512_fmadd_ps(_mm512_set1_ps(0.5f), s56, _mm512_fmadd_ps(_mm512_set1_ps(2.0f), s34, s12));
        o[1] = _mm512_fmadd_ps(_mm512_set1_ps(0.125f), s56, _mm512_fmadd_ps(_mm512_set1_ps(8.0f), s34, s12));
        o[2] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(0.03125f), s56, _mm512_fmadd_ps(_mm512_set1_ps(32.0f), s34, s12)),
                             m[7]);
    }
}

/* AT m, factored: 20 operations (the two halves). */
INLINE T512 void at6(const __m512 *m, __m512 *o) {
    __m512 even[3], odd[3];
    at6_half(m, even, 0);
    at6_half(m, odd, 1);
    o[0] = even[0], o[1] = odd[0], o[2] = even[1], o[3] = odd[1], o[4] = even[2], o[5] = odd[2];
}

/* Output rows odd, 2 + odd, 4 + odd: the column transforms' half for
 * all 8 columns (24 values in registers), then each row's transform. */
INLINE T512 void wg6_output_half(const float *m, ptrdiff_t m_stride, int c, float *y, int h, int w, int row, int col,
                                 int relu, const int full, int c0, const int odd) {
    const int rows = full ? 6 : (h - row < 6 ? h - row : 6), cols = full ? 6 : (w - col < 6 ? w - col : 6);
    __m512 t[3][8];
#pragma GCC unroll 8
    for (int b = 0; b < 8; b++) {
        __m512 in[8], o[3];
#pragma GCC unroll 8
        for (int a = 0; a < 8; a++)
            if (odd ? a != 0 : a != 7)
                in[a] = _mm512_loadu_ps(m + (ptrdiff_t)(a * 8 + b) * m_stride + c0);
            else
                in[a] = _mm512_setzero_ps(); /* not used by this half */
        at6_half(in, o, odd);
        t[0][b] = o[0];
        t[1][b] = o[1];
        t[2][b] = o[2];
    }
#pragma GCC unroll 3
    for (int k = 0; k < 3; k++) {
        const int i = 2 * k + odd;
        if (i >= rows) break;
        __m512 out[6];
        at6(t[k], out);
#pragma GCC unroll 6
        for (int j = 0; j < cols; j++) {
            __m512 r = out[j];
            if (relu) r = _mm512_max_ps(r, _mm512_setzero_ps());
            _mm512_storeu_ps(y + ((size_t)(row + i) * w + (size_t)(col + j)) * c + c0, r);
        }
    }
}

INLINE T512 void wg6_output_impl(const float *m, ptrdiff_t m_stride, int c, float *y, int h, int w, int row, int col,
                                 int relu, const int full) {
    for (int c0 = 0; c0 < c; c0 += 16) {
        wg6_output_half(m, m_stride, c, y, h, w, row, col, relu, full, c0, 0);
        wg6_output_half(m, m_stride, c, y, h, w, row, col, relu, full, c0, 1);
    }
}

static T512 void wg6_output(const float *m, ptrdiff_t m_stride, int c, float *y, int h, int w, int row, int col,
                            int relu) {
    if (row + 6 > h || col + 6 > w)
        wg6_output_impl(m, m_stride, c, y, h, w, row, col, relu, 0);
    else if (c == 64 && m_stride == 64)
        relu ? wg6_output_impl(m, 64, 64, y, h, w, row, col, 1, 1) : wg6_output_impl(m, 64, 64, y, h, w, row, col, 0, 1);
    else
        relu ? wg6_output_impl(m, m_stride, c, y, h, w, row, col, 1, 1) : wg6_output_impl(m, m_stride, c, y, h, w, row, col, 0, 1);
}

const wcm_winograd6_ops wcm_winograd6_avx512 = {
    .weights = wg6_weights,
    .input = wg6_input,
    .output = wg6_output,
};

/* Winograd F(4x4,3x3) transforms with AVX-512, 16 channels per vector.
 *
 * Interpolation points 0, 1, -1, 1/2, -1/2 and infinity. Measured against
 * the double reference on 64->64 layers: relative RMS error 0.9e-6 .. 1.7e-6
 * (direct: 0.4e-6), within 1% of the textbook 0, +-1, +-2; this set keeps every
 * output-transform coefficient <= 1 in magnitude (+-2 needs 8).
 * Derivation (Toom-Cook, correlation = transposed polynomial product): with
 * finite points f_j and P_j(x) the product of (x - f_l) over l != j, row j of
 * BT holds the coefficients of P_j (times a scale s_j), the infinity row those
 * of the product over all points;
 * G[j][k] = f_j^k / (P_j(f_j) s_j) (infinity row: [0 0 1] / s); AT[i][j] = f_j^i
 * (infinity column: [0 0 0 1]). Here s = 4, 4, 4, 2, 2, 4 so BT is integer.
 * y = AT [(G g G^T) .* (BT d BT^T)] AT^T; tests check it against the
 * double-precision reference.
 *
 * The matrices are static constants and the loops are fully unrolled, so the
 * compiler drops the zero terms. */
#include <immintrin.h>

#include "cpu/cpu_conv.h"

#define T512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,fma")))
#define INLINE static inline __attribute__((always_inline))

/* BT (applied by bt6 below):
 *   {1, 0, -5, 0, 4, 0},  {0, -1, -1, 4, 4, 0}, {0, 1, -1, -4, 4, 0},
 *   {0, -1, -2, 1, 2, 0}, {0, 1, -2, -1, 2, 0}, {0, 1, 0, -5, 0, 4}
 * AT (at4; its transpose att6 for backward-weights):
 *   {1, 1, 1, 1, 1, 0}, {0, 1, -1, 1/2, -1/2, 0}, {0, 1, 1, 1/4, 1/4, 0}, {0, 1, -1, 1/8, -1/8, 1} */
static const float G[6][3] = {
    {1.0f, 0.0f, 0.0f},
    {1.0f / 6, 1.0f / 6, 1.0f / 6},
    {1.0f / 6, -1.0f / 6, 1.0f / 6},
    {-4.0f / 3, -2.0f / 3, -1.0f / 3},
    {-4.0f / 3, 2.0f / 3, -1.0f / 3},
    {0.0f, 0.0f, 0.25f},
};

/* out[r] = sum_c mat[r][c] * in[c] with compile-time coefficients. */
#define MATVEC(out, mat, nr, nc, in)                                             \
    do {                                                                         \
        _Pragma("GCC unroll 6") for (int r_ = 0; r_ < (nr); r_++) {              \
            __m512 s_ = _mm512_setzero_ps();                                     \
            int first_ = 1;                                                      \
            _Pragma("GCC unroll 6") for (int c_ = 0; c_ < (nc); c_++) {          \
                const float m_ = (mat)[r_][c_];                                  \
                if (m_ == 0.0f) continue;                                        \
                if (m_ == 1.0f)                                                  \
                    s_ = first_ ? (in)[c_] : _mm512_add_ps(s_, (in)[c_]);        \
                else if (m_ == -1.0f)                                            \
                    s_ = _mm512_sub_ps(s_, (in)[c_]);                            \
                else if (first_)                                                 \
                    s_ = _mm512_mul_ps(_mm512_set1_ps(m_), (in)[c_]);            \
                else                                                             \
                    s_ = _mm512_fmadd_ps(_mm512_set1_ps(m_), (in)[c_], s_);      \
                first_ = 0;                                                      \
            }                                                                    \
            (out)[r_] = s_;                                                      \
        }                                                                        \
    } while (0)

static T512 void wg_weights(const float *w, int cin, int cout, int ci0, int ci1, float *u) {
    const size_t plane = (size_t)cin * cout;
    for (int ci = ci0; ci < ci1; ci++)
        for (int co = 0; co < cout; co += 16) {
            __m512 g[3][3], t[6][3], col[3], out[6];
            for (int ky = 0; ky < 3; ky++)
                for (int kx = 0; kx < 3; kx++)
                    g[ky][kx] = _mm512_loadu_ps(w + (size_t)(ky * 3 + kx) * plane + (size_t)ci * cout + co);
            /* t = G g (6x3), then U = t G^T (6x6). */
            for (int kx = 0; kx < 3; kx++) {
                __m512 in[3] = {g[0][kx], g[1][kx], g[2][kx]};
                MATVEC(out, G, 6, 3, in);
                for (int a = 0; a < 6; a++) t[a][kx] = out[a];
            }
            for (int a = 0; a < 6; a++) {
                col[0] = t[a][0];
                col[1] = t[a][1];
                col[2] = t[a][2];
                MATVEC(out, G, 6, 3, col);
                for (int b = 0; b < 6; b++) _mm512_storeu_ps(u + (size_t)(a * 6 + b) * plane + (size_t)ci * cout + co, out[b]);
            }
        }
}

/* The transforms of the hot loops, factored by hand (the compiler may not
 * reassociate float sums): BT d is 14 operations instead of 22, AT m 10
 * instead of 18, AT^T d 9 instead of 16. Coefficients as listed above. */
INLINE T512 void bt6(const __m512 *d, __m512 *o) {
    const __m512 four = _mm512_set1_ps(4.0f), two = _mm512_set1_ps(2.0f), m5 = _mm512_set1_ps(-5.0f);
    const __m512 s12 = _mm512_add_ps(d[1], d[2]), s34 = _mm512_add_ps(d[3], d[4]);
    const __m512 m12 = _mm512_sub_ps(d[1], d[2]), m43 = _mm512_sub_ps(d[4], d[3]);
    const __m512 a = _mm512_sub_ps(d[3], d[1]), b = _mm512_sub_ps(d[4], d[2]);
    o[0] = _mm512_fmadd_ps(four, d[4], _mm512_fmadd_ps(m5, d[2], d[0]));
    o[1] = _mm512_fmsub_ps(four, s34, s12);
    o[2] = _mm512_fmadd_ps(four, m43, m12);
    o[3] = _mm512_fmadd_ps(two, b, a);
    o[4] = _mm512_fmsub_ps(two, b, a);
    o[5] = _mm512_fmadd_ps(four, d[5], _mm512_fmadd_ps(m5, d[3], d[1]));
}

INLINE T512 void at4(const __m512 *m, __m512 *o) {
    const __m512 s12 = _mm512_add_ps(m[1], m[2]), d12 = _mm512_sub_ps(m[1], m[2]);
    const __m512 s34 = _mm512_add_ps(m[3], m[4]), d34 = _mm512_sub_ps(m[3], m[4]);
    o[0] = _mm512_add_ps(_mm512_add_ps(m[0], s12), s34);
    o[1] = _mm512_fmadd_ps(_mm512_set1_ps(0.5f), d34, d12);
    o[2] = _mm512_fmadd_ps(_mm512_set1_ps(0.25f), s34, s12);
    o[3] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(0.125f), d34, d12), m[5]);
}

INLINE T512 void att6(const __m512 *d, __m512 *o) {
    const __m512 e = _mm512_add_ps(d[0], d[2]), od = _mm512_add_ps(d[1], d[3]);
    const __m512 e2 = _mm512_fmadd_ps(_mm512_set1_ps(0.25f), d[2], d[0]);
    const __m512 o2 = _mm512_fmadd_ps(_mm512_set1_ps(0.125f), d[3], _mm512_mul_ps(_mm512_set1_ps(0.5f), d[1]));
    o[0] = d[0];
    o[1] = _mm512_add_ps(e, od);
    o[2] = _mm512_sub_ps(e, od);
    o[3] = _mm512_add_ps(e2, o2);
    o[4] = _mm512_sub_ps(e2, o2);
    o[5] = d[3];
}

INLINE T512 void wg_input_impl(const float *x, int h, int w, int c, int row, int col, float *v, ptrdiff_t v_stride,
                               const int inside) {
    for (int c0 = 0; c0 < c; c0 += 16) {
        __m512 t[6][6];
        /* Rows of the patch: t[a][.] = BT d[a][.] */
#pragma GCC unroll 6
        for (int a = 0; a < 6; a++) {
            __m512 d[6];
            const int yy = row + a;
            const float *xr = x + ((ptrdiff_t)yy * w + col) * c + c0;
#pragma GCC unroll 6
            for (int b = 0; b < 6; b++) {
                const int xx = col + b;
                if (inside || (yy >= 0 && yy < h && xx >= 0 && xx < w))
                    d[b] = _mm512_loadu_ps(xr + (ptrdiff_t)b * c);
                else
                    d[b] = _mm512_setzero_ps();
            }
            bt6(d, t[a]);
        }
        /* Columns: V[.][b] = BT t[.][b] */
#pragma GCC unroll 6
        for (int b = 0; b < 6; b++) {
            __m512 colv[6], out[6];
#pragma GCC unroll 6
            for (int a = 0; a < 6; a++) colv[a] = t[a][b];
            bt6(colv, out);
#pragma GCC unroll 6
            for (int a = 0; a < 6; a++) _mm512_storeu_ps(v + (ptrdiff_t)(a * 6 + b) * v_stride + c0, out[a]);
        }
    }
}

/* A constant channel count turns the 36 patch addresses into immediate
 * offsets instead of spilled registers (64 channels: 7-12% faster). */
static T512 void wg_input(const float *x, int h, int w, int c, int row, int col, float *v, ptrdiff_t v_stride) {
    if (row >= 0 && col >= 0 && row + 6 <= h && col + 6 <= w) {
        if (c == 64 && v_stride == 64)
            wg_input_impl(x, h, w, 64, row, col, v, 64, 1);
        else if (c == 64)
            wg_input_impl(x, h, w, 64, row, col, v, v_stride, 1);
        else
            wg_input_impl(x, h, w, c, row, col, v, v_stride, 1);
    } else {
        wg_input_impl(x, h, w, c, row, col, v, v_stride, 0);
    }
}

INLINE T512 void wg_output_impl(const float *m, ptrdiff_t m_stride, int c, float *y, int h, int w, int row, int col,
                                int relu, const int full) {
    const int rows = full ? 4 : (h - row < 4 ? h - row : 4), cols = full ? 4 : (w - col < 4 ? w - col : 4);
    for (int c0 = 0; c0 < c; c0 += 16) {
        __m512 t[6][4];
        /* t[a][.] = AT M[a][.] */
#pragma GCC unroll 6
        for (int a = 0; a < 6; a++) {
            __m512 in[6];
#pragma GCC unroll 6
            for (int b = 0; b < 6; b++) in[b] = _mm512_loadu_ps(m + (ptrdiff_t)(a * 6 + b) * m_stride + c0);
            at4(in, t[a]);
        }
#pragma GCC unroll 4
        for (int j = 0; j < cols; j++) {
            __m512 colv[6], out[4];
#pragma GCC unroll 6
            for (int a = 0; a < 6; a++) colv[a] = t[a][j];
            at4(colv, out);
#pragma GCC unroll 4
            for (int i = 0; i < rows; i++) {
                __m512 r = out[i];
                if (relu) r = _mm512_max_ps(r, _mm512_setzero_ps());
                _mm512_storeu_ps(y + ((size_t)(row + i) * w + (size_t)(col + j)) * c + c0, r);
            }
        }
    }
}

static T512 void wg_output(const float *m, ptrdiff_t m_stride, int c, float *y, int h, int w, int row, int col,
                           int relu) {
    if (row + 4 > h || col + 4 > w)
        wg_output_impl(m, m_stride, c, y, h, w, row, col, relu, 0);
    else if (c == 64 && m_stride == 64) /* constant offsets, as in wg_input */
        relu ? wg_output_impl(m, 64, 64, y, h, w, row, col, 1, 1) : wg_output_impl(m, 64, 64, y, h, w, row, col, 0, 1);
    else
        relu ? wg_output_impl(m, m_stride, c, y, h, w, row, col, 1, 1) : wg_output_impl(m, m_stride, c, y, h, w, row, col, 0, 1);
}

/* The transpose of G for the backward-weights adjoint. */
static const float GT[3][6] = {
    {1.0f, 1.0f / 6, 1.0f / 6, -4.0f / 3, -4.0f / 3, 0.0f},
    {0.0f, 1.0f / 6, -1.0f / 6, -2.0f / 3, 2.0f / 3, 0.0f},
    {0.0f, 1.0f / 6, 1.0f / 6, -1.0f / 3, -1.0f / 3, 0.25f},
};

/* m = AT^T d AT for the 4x4 block d of dy at (row, col), zero outside. */
INLINE T512 void wg_output_adjoint_impl(const float *dy, int h, int w, int c, int row, int col, float *m,
                                        ptrdiff_t m_stride, const int full) {
    const int rows = full ? 4 : (h - row < 4 ? h - row : 4), cols = full ? 4 : (w - col < 4 ? w - col : 4);
    for (int c0 = 0; c0 < c; c0 += 16) {
        __m512 t[4][6];
        /* Rows of the block: t[i][.] = AT^T d[i][.] */
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            __m512 d[4];
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++)
                d[j] = full || (i < rows && j < cols) ? _mm512_loadu_ps(dy + ((size_t)(row + i) * w + (size_t)(col + j)) * c + c0)
                                                      : _mm512_setzero_ps();
            att6(d, t[i]);
        }
        /* Columns: m[.][b] = AT^T t[.][b] */
#pragma GCC unroll 6
        for (int b = 0; b < 6; b++) {
            __m512 colv[4], out[6];
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) colv[i] = t[i][b];
            att6(colv, out);
#pragma GCC unroll 6
            for (int a = 0; a < 6; a++) _mm512_storeu_ps(m + (ptrdiff_t)(a * 6 + b) * m_stride + c0, out[a]);
        }
    }
}

static T512 void wg_output_adjoint(const float *dy, int h, int w, int c, int row, int col, float *m,
                                   ptrdiff_t m_stride) {
    if (row + 4 <= h && col + 4 <= w)
        wg_output_adjoint_impl(dy, h, w, c, row, col, m, m_stride, 1);
    else
        wg_output_adjoint_impl(dy, h, w, c, row, col, m, m_stride, 0);
}

/* dw[ky][kx][ci][.] (=, +=) sum_ab G[a][ky] du[a*6+b][ci][.] G[b][kx]. */
static T512 void wg_weights_adjoint(const float *du, int cin, int cout, int ci0, int ci1, float *dw, int accumulate) {
    const size_t plane = (size_t)cin * cout;
    for (int ci = ci0; ci < ci1; ci++)
        for (int co = 0; co < cout; co += 16) {
            __m512 t[6][3], col[6], out[3];
            /* t[a][.] = G^T du[a][.] */
            for (int a = 0; a < 6; a++) {
                __m512 in[6];
#pragma GCC unroll 6
                for (int b = 0; b < 6; b++) in[b] = _mm512_loadu_ps(du + (size_t)(a * 6 + b) * plane + (size_t)ci * cout + co);
                MATVEC(t[a], GT, 3, 6, in);
            }
            for (int kx = 0; kx < 3; kx++) {
#pragma GCC unroll 6
                for (int a = 0; a < 6; a++) col[a] = t[a][kx];
                MATVEC(out, GT, 3, 6, col);
                for (int ky = 0; ky < 3; ky++) {
                    float *d = dw + (size_t)(ky * 3 + kx) * plane + (size_t)ci * cout + co;
                    __m512 r = out[ky];
                    if (accumulate) r = _mm512_add_ps(_mm512_loadu_ps(d), r);
                    _mm512_storeu_ps(d, r);
                }
            }
        }
}

const wcm_winograd_ops wcm_winograd_avx512 = {
    .weights = wg_weights,
    .input = wg_input,
    .output = wg_output,
    .output_adjoint = wg_output_adjoint,
    .weights_adjoint = wg_weights_adjoint,
};

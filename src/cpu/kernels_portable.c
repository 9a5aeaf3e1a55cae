/* Portable C kernels (any x86-64 or other CPU, and valgrind): the same tile
 * and dot contracts as the SIMD versions, written as plain loops the compiler
 * can vectorise with the baseline instruction set. */
#include "cpu/cpu_conv.h"

#define PORTABLE_COLS 64

static void tile_portable(const wcm_tile_job *j) {
    float acc[WCM_TILE_MAX_ROWS][PORTABLE_COLS];
    const int rows = j->rows, cols = j->ncols;
    for (int p = 0; p < rows; p++)
        for (int c = 0; c < cols; c++) acc[p][c] = 0.0f;
    for (int s = 0; s < j->nseg; s++) {
        const float *a = j->a[s], *b = j->b[s];
        for (int k = j->k[s]; k > 0; k--) {
            for (int p = 0; p < rows; p++) {
                const float av = a[p * j->a_row];
                float *ap = acc[p];
                for (int c = 0; c < cols; c++) ap[c] += av * b[c];
            }
            a += j->a_col;
            b += j->ldb;
        }
    }
    for (int p = 0; p < rows; p++) {
        float *cp = j->c + p * j->ldc;
        for (int c = 0; c < cols; c++) {
            float r = acc[p][c];
            if (j->mode & WCM_TILE_ADD) r += cp[c];
            if ((j->mode & WCM_TILE_RELU) && !(r > 0.0f)) r = 0.0f;
            cp[c] = r;
        }
    }
}

static void dot_portable(const wcm_dot_job *j) {
    for (int p = 0; p < j->rows; p++)
        for (int q = 0; q < j->ncols; q++) {
            float r = 0.0f;
            for (int s = 0; s < j->nseg; s++) {
                const float *a = j->a[s] + p * j->a_row, *b = j->b[s] + q * j->b_row;
                for (int k = 0; k < j->k[s]; k++) r += a[k] * b[k];
            }
            float *cp = j->c + p * j->ldc + q;
            if (j->mode & WCM_TILE_ADD) r += *cp;
            if ((j->mode & WCM_TILE_RELU) && !(r > 0.0f)) r = 0.0f;
            *cp = r;
        }
}

const wcm_simd_ops wcm_simd_portable = {
    .level = WCM_SIMD_PORTABLE,
    .name = "portable",
    .max_cols = PORTABLE_COLS,
    .tile = tile_portable,
    .dot = dot_portable,
    .winograd = 0,
};

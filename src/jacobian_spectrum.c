/* Eigenvalues of the symmetric part of a Jacobian: Householder reduction to
 * tridiagonal form, then the implicit QL algorithm with Wilkinson shifts,
 * eigenvalues only, in double, on one thread (about 4 s at n = 1600; the
 * O(n) barriers per step of a threaded version cost more than they save on a
 * busy machine). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "wcm/jacobian.h"

/* a (n x n symmetric, row-major, destroyed) -> diagonal d and subdiagonal
 * e[1..n-1] (e[0] = 0) of a similar tridiagonal matrix. */
static void tridiagonalise(double *a, int n, double *d, double *e) {
#define A(i, j) a[(size_t)(i) * n + (j)]
    for (int i = n - 1; i > 0; i--) {
        const int l = i - 1;
        double h = 0, scale = 0;
        if (l > 0) {
            for (int k = 0; k <= l; k++) scale += fabs(A(i, k));
            if (scale == 0) {
                e[i] = A(i, l);
            } else {
                for (int k = 0; k <= l; k++) {
                    A(i, k) /= scale;
                    h += A(i, k) * A(i, k);
                }
                double f = A(i, l);
                double g = f >= 0 ? -sqrt(h) : sqrt(h);
                e[i] = scale * g;
                h -= f * g;
                A(i, l) = f - g;
                /* p = A u / h for the Householder vector u (row i) into
                 * e[0..l], then A -= u q^T + q u^T; A is kept whole (both
                 * triangles) so that every loop runs along rows. */
                for (int j = 0; j <= l; j++) {
                    double s = 0;
                    for (int k = 0; k <= l; k++) s += A(j, k) * A(i, k);
                    e[j] = s / h;
                }
                f = 0;
                for (int j = 0; j <= l; j++) f += e[j] * A(i, j);
                const double hh = f / (h + h);
                for (int j = 0; j <= l; j++) e[j] -= hh * A(i, j);
                for (int j = 0; j <= l; j++) {
                    const double fj = A(i, j), gj = e[j];
                    for (int k = 0; k <= l; k++) A(j, k) -= fj * e[k] + gj * A(i, k);
                }
            }
        } else {
            e[i] = A(i, l);
        }
        d[i] = h;
    }
    e[0] = 0;
    for (int i = 0; i < n; i++) d[i] = A(i, i);
#undef A
}

/* Eigenvalues of the tridiagonal (d, e) into d; -1 if QL does not converge. */
static int tridiagonal_ql(double *d, double *e, int n) {
    for (int i = 1; i < n; i++) e[i - 1] = e[i];
    e[n - 1] = 0;
    for (int l = 0; l < n; l++) {
        int iter = 0, m;
        do {
            for (m = l; m < n - 1; m++) {
                const double dd = fabs(d[m]) + fabs(d[m + 1]);
                if (fabs(e[m]) <= 1e-15 * dd) break;
            }
            if (m == l) break;
            if (iter++ == 100) return -1;
            double g = (d[l + 1] - d[l]) / (2.0 * e[l]);
            double r = hypot(g, 1.0);
            g = d[m] - d[l] + e[l] / (g + copysign(r, g));
            double s = 1, c = 1, p = 0;
            int i;
            for (i = m - 1; i >= l; i--) {
                double f = s * e[i], b = c * e[i];
                e[i + 1] = r = hypot(f, g);
                if (r == 0) {
                    d[i + 1] -= p;
                    e[m] = 0;
                    break;
                }
                s = f / r, c = g / r;
                g = d[i + 1] - p;
                r = (d[i] - g) * s + 2.0 * c * b;
                d[i + 1] = g + (p = s * r);
                g = c * r - b;
            }
            if (r == 0 && i >= l) continue;
            d[l] -= p;
            e[l] = g;
            e[m] = 0;
        } while (m != l);
    }
    return 0;
}

static int decreasing(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

int wcm_jacobian_spectrum_compute(const float *jacobian, int n, double *eigenvalues, wcm_jacobian_spectrum *s,
                                  wcm_error *err) {
    memset(s, 0, sizeof *s);
    if (n < 1 || n > WCM_JACOBIAN_FULL_MAX)
        return wcm_fail(err, WCM_ERR_ARG, "spectrum of a %dx%d matrix (1 to %d rows)", n, n, WCM_JACOBIAN_FULL_MAX);
    double *a = malloc((size_t)n * n * sizeof(double)), *e = malloc((size_t)n * sizeof(double));
    if (!a || !e) {
        free(a);
        free(e);
        return wcm_fail(err, WCM_ERR_NOMEM, "out of memory for the spectrum of a %dx%d Jacobian", n, n);
    }
    double anti = 0, sym = 0, fro = 0, trace = 0;
    for (int i = 0; i < n; i++) {
        trace += jacobian[(size_t)i * n + i];
        for (int j = 0; j < n; j++) {
            const double x = jacobian[(size_t)i * n + j], y = jacobian[(size_t)j * n + i];
            if (!isfinite(x)) {
                free(a);
                free(e);
                return wcm_fail(err, WCM_ERR_NUMERIC, "the Jacobian has a non-finite entry at (%d, %d)", i, j);
            }
            a[(size_t)i * n + j] = 0.5 * (x + y);
            anti += (x - y) * (x - y);
            sym += (x + y) * (x + y);
            fro += x * x;
        }
    }
    tridiagonalise(a, n, eigenvalues, e);
    const int rc = tridiagonal_ql(eigenvalues, e, n);
    free(a);
    free(e);
    if (rc) return wcm_fail(err, WCM_ERR_NUMERIC, "the eigenvalue iteration did not converge");
    qsort(eigenvalues, (size_t)n, sizeof *eigenvalues, decreasing);
    s->n = n;
    s->trace = trace;
    s->eig_max = eigenvalues[0];
    s->eig_min = eigenvalues[n - 1];
    s->asymmetry = sym > 0 ? sqrt(anti / sym) : 0;
    s->frobenius = sqrt(fro);
    return WCM_OK;
}

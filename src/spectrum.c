/* Discrete Fourier transform of any length (mixed-radix Cooley-Tukey) and the
 * radially averaged power spectrum of images (include/wcm/stats.h). */
#include "wcm/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Twiddles exp(-2 pi i j / n) and work space for transforms of length n. */
typedef struct {
    int n;
    double *tw_re, *tw_im; /* [n] */
    double *in_re, *in_im; /* [n]: a copy of the input (the recursion reads it with strides) */
    double *tmp;           /* [2 n]: one butterfly's inputs */
} dft_plan;

static void dft_plan_free(dft_plan *p) {
    free(p->tw_re);
    memset(p, 0, sizeof *p);
}

static int dft_plan_init(dft_plan *p, int n) {
    memset(p, 0, sizeof *p);
    p->n = n;
    p->tw_re = malloc((size_t)n * 6 * sizeof(double)); /* one block: tw, in, tmp */
    if (!p->tw_re) return WCM_ERR_NOMEM;
    p->tw_im = p->tw_re + n;
    p->in_re = p->tw_im + n;
    p->in_im = p->in_re + n;
    p->tmp = p->in_im + n;
    for (int j = 0; j < n; j++) {
        const double a = 2.0 * M_PI * (double)j / (double)n;
        p->tw_re[j] = cos(a);
        p->tw_im[j] = -sin(a);
    }
    return WCM_OK;
}

static int smallest_factor(int n) {
    if (n % 2 == 0) return 2;
    for (int f = 3; (long)f * f <= n; f += 2)
        if (n % f == 0) return f;
    return n;
}

/* out[0..n) = DFT of in[0], in[s], ..., in[(n-1) s], where the plan's twiddles
 * belong to length n * step. Split n = p m with p the smallest prime factor:
 * X[k + q m] = sum_r W_n^(r k) W_p^(r q) Y_r[k], Y_r the DFT of the r-th
 * decimated subsequence. */
static void fft_rec(const dft_plan *pl, const double *in_re, const double *in_im, size_t s, double *out_re,
                    double *out_im, int n, int step) {
    if (n == 1) {
        out_re[0] = in_re[0];
        out_im[0] = in_im[0];
        return;
    }
    const int p = smallest_factor(n), m = n / p;
    for (int r = 0; r < p; r++) fft_rec(pl, in_re + r * s, in_im + r * s, s * p, out_re + r * m, out_im + r * m, m, step * p);
    double *a_re = pl->tmp, *a_im = pl->tmp + p;
    for (int k = 0; k < m; k++) {
        for (int r = 0; r < p; r++) {
            const int e = (int)(((long)r * k % n) * step);
            const double xr = out_re[r * m + k], xi = out_im[r * m + k];
            a_re[r] = xr * pl->tw_re[e] - xi * pl->tw_im[e];
            a_im[r] = xr * pl->tw_im[e] + xi * pl->tw_re[e];
        }
        for (int q = 0; q < p; q++) {
            double sr = 0, si = 0;
            for (int r = 0; r < p; r++) {
                const int e = (int)(((long)r * q % p) * m * step);
                sr += a_re[r] * pl->tw_re[e] - a_im[r] * pl->tw_im[e];
                si += a_re[r] * pl->tw_im[e] + a_im[r] * pl->tw_re[e];
            }
            out_re[k + q * m] = sr;
            out_im[k + q * m] = si;
        }
    }
}

/* In place through the plan's input copy. */
static void dft_run(const dft_plan *pl, double *re, double *im) {
    memcpy(pl->in_re, re, (size_t)pl->n * sizeof(double));
    memcpy(pl->in_im, im, (size_t)pl->n * sizeof(double));
    fft_rec(pl, pl->in_re, pl->in_im, 1, re, im, pl->n, 1);
}

int wcm_dft(double *re, double *im, int n, wcm_error *err) {
    if (!re || !im || n < 1) return wcm_fail(err, WCM_ERR_ARG, "dft: needs n >= 1 and two arrays");
    dft_plan pl;
    if (dft_plan_init(&pl, n)) return wcm_fail(err, WCM_ERR_NOMEM, "dft: out of memory for length %d", n);
    dft_run(&pl, re, im);
    dft_plan_free(&pl);
    return WCM_OK;
}

/* Radial bands ----------------------------------------------------------------- */

int wcm_radial_bands_auto(int h, int w) {
    const int m = h < w ? h : w;
    int k = 0;
    while (k < WCM_STATS_MAX_FREQ_BANDS && (1L << (k + 1)) <= m / 2) k++;
    return k < 1 ? 1 : k;
}

/* Band of |f| (cycles/pixel): k with 0.5 / 2^(k+1) < |f| <= 0.5 / 2^k, the
 * last band open below; -1 for DC. */
static int band_of(double f, int bands) {
    if (f <= 0) return -1;
    int k = 0;
    while (k < bands - 1 && f <= 0.5 / (double)(2L << k)) k++;
    return k;
}

typedef struct {
    dft_plan row, col;
    double *re, *im; /* [h][w] */
    double *col_re, *col_im;
} spectrum_work;

static void work_free(spectrum_work *wk) {
    dft_plan_free(&wk->row);
    dft_plan_free(&wk->col);
    free(wk->re);
    free(wk->col_re);
}

static int work_init(spectrum_work *wk, int h, int w) {
    memset(wk, 0, sizeof *wk);
    int bad = dft_plan_init(&wk->row, w) | dft_plan_init(&wk->col, h);
    wk->re = malloc((size_t)h * w * 2 * sizeof(double));
    wk->col_re = malloc((size_t)h * 2 * sizeof(double));
    if (bad || !wk->re || !wk->col_re) {
        work_free(wk);
        return WCM_ERR_NOMEM;
    }
    wk->im = wk->re + (size_t)h * w;
    wk->col_im = wk->col_re + h;
    return WCM_OK;
}

/* sums[band] += |X(f)|^2 / (h w) of one mean-subtracted image. */
static void image_band_power(spectrum_work *wk, const float *x, int h, int w, const int *band, double *sums) {
    const size_t hw = (size_t)h * w;
    double mean = 0;
    for (size_t i = 0; i < hw; i++) mean += x[i];
    mean /= (double)hw;
    for (size_t i = 0; i < hw; i++) wk->re[i] = x[i] - mean, wk->im[i] = 0;
    for (int r = 0; r < h; r++) dft_run(&wk->row, wk->re + (size_t)r * w, wk->im + (size_t)r * w);
    for (int c = 0; c < w; c++) {
        for (int r = 0; r < h; r++) wk->col_re[r] = wk->re[(size_t)r * w + c], wk->col_im[r] = wk->im[(size_t)r * w + c];
        dft_run(&wk->col, wk->col_re, wk->col_im);
        for (int r = 0; r < h; r++) {
            const int b = band[(size_t)r * w + c];
            if (b >= 0) sums[b] += (wk->col_re[r] * wk->col_re[r] + wk->col_im[r] * wk->col_im[r]) / (double)hw;
        }
    }
}

int wcm_radial_spectrum_compute(const wcm_tensor *images, int bands, wcm_radial_spectrum *s, wcm_error *err) {
    if (!images || !images->data || images->c != 1 || images->n < 1 || !s)
        return wcm_fail(err, WCM_ERR_ARG, "power spectrum: needs a non-empty 1-channel batch");
    const int h = images->h, w = images->w, n = images->n;
    if (bands == 0) bands = wcm_radial_bands_auto(h, w);
    if (bands < 1 || bands > WCM_STATS_MAX_FREQ_BANDS)
        return wcm_fail(err, WCM_ERR_ARG, "power spectrum: %d bands outside 1..%d", bands, WCM_STATS_MAX_FREQ_BANDS);
    memset(s, 0, sizeof *s);
    s->bands = bands;
    for (int k = 0; k < bands; k++) {
        s->hi[k] = k == 0 ? sqrt(0.5) : 0.5 / (double)(1L << k);
        s->lo[k] = k == bands - 1 ? 0.0 : 0.5 / (double)(2L << k);
    }
    const size_t hw = (size_t)h * w;
    int *band = malloc(hw * sizeof(int));
    double *per_image = calloc((size_t)n * bands, sizeof(double));
    if (!band || !per_image) {
        free(band);
        free(per_image);
        return wcm_fail(err, WCM_ERR_NOMEM, "power spectrum: out of memory");
    }
    int64_t count[WCM_STATS_MAX_FREQ_BANDS] = {0};
    for (int r = 0; r < h; r++)
        for (int c = 0; c < w; c++) {
            const double fy = (double)(r <= h / 2 ? r : r - h) / h, fx = (double)(c <= w / 2 ? c : c - w) / w;
            const int b = band_of(sqrt(fy * fy + fx * fx), bands);
            band[(size_t)r * w + c] = b;
            if (b >= 0) count[b]++;
        }
    int finite = 0, failed = 0;
    char *ok = calloc((size_t)n, 1);
    if (!ok) failed = 1;
#pragma omp parallel if (n > 1 && !failed)
    {
        spectrum_work wk;
        int mine = failed ? WCM_ERR_NOMEM : work_init(&wk, h, w);
        if (mine) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic)
        for (int i = 0; i < n; i++) {
            if (mine) continue;
            const float *x = images->data + (size_t)i * hw;
            if (!wcm_image_finite(images, i)) continue;
            ok[i] = 1;
            image_band_power(&wk, x, h, w, band, per_image + (size_t)i * bands);
        }
        if (!mine) work_free(&wk);
    }
    /* Sums in image order: the result does not depend on the thread count. */
    for (int i = 0; !failed && i < n; i++) {
        if (!ok[i]) continue;
        finite++;
        for (int k = 0; k < bands; k++) s->power[k] += per_image[(size_t)i * bands + k];
    }
    free(ok);
    free(band);
    free(per_image);
    if (failed) return wcm_fail(err, WCM_ERR_NOMEM, "power spectrum: out of memory for %dx%d transforms", h, w);
    s->images = finite;
    for (int k = 0; k < bands; k++) {
        s->count[k] = count[k] * s->images;
        s->power[k] = s->count[k] ? s->power[k] / (double)s->count[k] : 0.0;
    }
    return WCM_OK;
}

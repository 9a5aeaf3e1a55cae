/* Statistics of images that judge samples (include/wcm/stats.h); the Fourier
 * transform and the power spectrum are in spectrum.c. */
#include "wcm/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int wcm_stripe_ratio(const wcm_tensor *t, int index, double *horizontal, double *vertical, wcm_error *err) {
    if (!t || !t->data || t->c != 1 || index < 0 || index >= t->n)
        return wcm_fail(err, WCM_ERR_ARG, "stripe ratio: needs a 1-channel batch and a valid image index");
    if (t->h < 3 || t->w < 3)
        return wcm_fail(err, WCM_ERR_SHAPE, "stripe ratio: image %dx%d is smaller than 3x3", t->h, t->w);
    const float *x = t->data + (size_t)index * t->h * t->w;
    double h_sum[2] = {0, 0}, v_sum[2] = {0, 0};
    size_t h_count[2] = {0, 0}, v_count[2] = {0, 0};
    for (int r = 0; r < t->h; r++)
        for (int c = 0; c < t->w; c++) {
            const float v = x[(size_t)r * t->w + c];
            if (c + 1 < t->w) {
                h_sum[c & 1] += fabs((double)x[(size_t)r * t->w + c + 1] - v);
                h_count[c & 1]++;
            }
            if (r + 1 < t->h) {
                v_sum[r & 1] += fabs((double)x[(size_t)(r + 1) * t->w + c] - v);
                v_count[r & 1]++;
            }
        }
    /* A constant image has no stripes: ratio 1. */
    const double h_odd = h_sum[1] / (double)h_count[1], v_odd = v_sum[1] / (double)v_count[1];
    const double h_even = h_sum[0] / (double)h_count[0], v_even = v_sum[0] / (double)v_count[0];
    if (horizontal) *horizontal = h_odd > 0 ? h_even / h_odd : (h_even > 0 ? INFINITY : 1.0);
    if (vertical) *vertical = v_odd > 0 ? v_even / v_odd : (v_even > 0 ? INFINITY : 1.0);
    return WCM_OK;
}

double wcm_standard_error(double sum, double sum_sq, int n) {
    if (n < 2) return NAN;
    /* Sample variance from the sums, clamped at 0 against rounding. */
    const double var = (sum_sq - sum * sum / n) / (n - 1);
    return sqrt(fmax(var, 0.0) / n);
}

/* Histograms and KL divergence ----------------------------------------------- */

int wcm_binning_index(const wcm_binning *b, double x) {
    const double u = b->scale > 0 ? asinh(x / b->scale) : x;
    if (u < b->lo) return 0;
    if (u > b->hi) return b->bins + 1;
    if (!(b->hi > b->lo)) return 1 + b->bins / 2;
    int i = (int)((u - b->lo) / (b->hi - b->lo) * b->bins);
    return 1 + (i < b->bins ? i : b->bins - 1);
}

double wcm_histogram_kl(const double *q_counts, const double *p_counts, int nbins, double smoothing) {
    double q_total = 0, p_total = 0;
    for (int i = 0; i < nbins; i++) q_total += q_counts[i] + smoothing, p_total += p_counts[i] + smoothing;
    if (!(q_total > 0) || !(p_total > 0)) return NAN;
    double kl = 0;
    for (int i = 0; i < nbins; i++) {
        const double q = (q_counts[i] + smoothing) / q_total, p = (p_counts[i] + smoothing) / p_total;
        if (q > 0) kl += q * log(q / p);
    }
    return kl;
}

/* Sets of images against real images --------------------------------------------- */

void wcm_stats_options_default(wcm_stats_options *o) {
    memset(o, 0, sizeof *o);
    o->levels = 3;
    o->bins = 64;
    o->smoothing = 0.5;
    o->spectrum_bands = 0;
    o->range_min = -0.5;
    o->range_max = 1.5;
}

int wcm_image_finite(const wcm_tensor *t, int index) {
    const size_t n = (size_t)t->h * t->w * t->c;
    const float *x = t->data + (size_t)index * n;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

static int check_batch(const wcm_tensor *t, const char *what, wcm_error *err) {
    if (!t || !t->data || t->n < 1 || t->c != 1)
        return wcm_fail(err, WCM_ERR_ARG, "%s: needs a non-empty batch of 1-channel images", what);
    return WCM_OK;
}

int wcm_stats_binning_from_real(const wcm_tensor *real, const wcm_stats_options *o, wcm_stats_binning *b,
                                wcm_error *err) {
    wcm_stats_options def;
    if (!o) wcm_stats_options_default(&def), o = &def;
    int rc = check_batch(real, "sample statistics (real images)", err);
    if (rc) return rc;
    if (o->levels < 1 || o->levels > WCM_MAX_LEVELS)
        return wcm_fail(err, WCM_ERR_ARG, "sample statistics: levels %d outside 1..%d", o->levels, WCM_MAX_LEVELS);
    if (o->bins < 1 || o->bins > WCM_STATS_MAX_BINS)
        return wcm_fail(err, WCM_ERR_ARG, "sample statistics: bins %d outside 1..%d", o->bins, WCM_STATS_MAX_BINS);
    if (!(o->smoothing > 0) || !isfinite(o->smoothing))
        return wcm_fail(err, WCM_ERR_ARG, "sample statistics: smoothing must be positive (got %g)", o->smoothing);
    if (o->spectrum_bands < 0 || o->spectrum_bands > WCM_STATS_MAX_FREQ_BANDS)
        return wcm_fail(err, WCM_ERR_ARG, "sample statistics: spectrum bands %d outside 0..%d", o->spectrum_bands,
                        WCM_STATS_MAX_FREQ_BANDS);
    if (!(o->range_min <= o->range_max))
        return wcm_fail(err, WCM_ERR_ARG, "sample statistics: range [%g, %g] is empty", o->range_min, o->range_max);
    const int f = 1 << o->levels;
    if (real->h % f || real->w % f || real->h < 3 || real->w < 3)
        return wcm_fail(err, WCM_ERR_SHAPE, "sample statistics: image %dx%d is not divisible by 2^%d = %d (or under 3x3)",
                        real->h, real->w, o->levels, f);
    memset(b, 0, sizeof *b);
    b->h = real->h, b->w = real->w, b->levels = o->levels;
    b->smoothing = o->smoothing;
    b->spectrum_bands = o->spectrum_bands ? o->spectrum_bands : wcm_radial_bands_auto(real->h, real->w);
    b->range_min = o->range_min, b->range_max = o->range_max;
    b->pixel = (wcm_binning){o->bins, 0.0, 0.0, 1.0};
    b->low = b->pixel;
    wcm_pyramid p;
    rc = wcm_haar_forward(real, o->levels, &p, err);
    if (rc) return rc;
    int finite = 0;
    double sum_sq[WCM_MAX_LEVELS][3] = {{0}}, max_abs[WCM_MAX_LEVELS][3] = {{0}};
    size_t count[WCM_MAX_LEVELS] = {0};
    for (int i = 0; i < real->n; i++) {
        if (!wcm_image_finite(real, i)) continue;
        finite++;
        for (int j = 0; j < o->levels; j++) {
            const wcm_tensor *l = &p.level[j];
            const size_t per = (size_t)l->h * l->w;
            const float *c = l->data + (size_t)i * per * 4;
            for (size_t k = 0; k < per; k++)
                for (int band = 0; band < 3; band++) {
                    const double v = c[k * 4 + 1 + band];
                    sum_sq[j][band] += v * v;
                    max_abs[j][band] = fmax(max_abs[j][band], fabs(v));
                }
            count[j] += per;
        }
    }
    wcm_pyramid_free(&p);
    if (!finite) return wcm_fail(err, WCM_ERR_NUMERIC, "sample statistics: no real image is finite");
    for (int j = 0; j < o->levels; j++)
        for (int band = 0; band < 3; band++) {
            const double s = sqrt(sum_sq[j][band] / (double)count[j]);
            wcm_binning *bb = &b->band[j][band];
            bb->bins = o->bins;
            bb->scale = s > 0 ? s : 1.0;
            bb->hi = asinh(max_abs[j][band] / bb->scale);
            bb->lo = -bb->hi;
        }
    return WCM_OK;
}

int wcm_set_stats_compute(const wcm_tensor *images, const wcm_stats_binning *b, wcm_set_stats *s, wcm_error *err) {
    int rc = check_batch(images, "sample statistics", err);
    if (rc) return rc;
    if (!b || !s) return wcm_fail(err, WCM_ERR_ARG, "sample statistics: no binning or output given");
    if (images->h != b->h || images->w != b->w)
        return wcm_fail(err, WCM_ERR_SHAPE, "sample statistics: images are %dx%d but the real images %dx%d", images->h,
                        images->w, b->h, b->w);
    memset(s, 0, sizeof *s);
    const size_t hw = (size_t)images->h * images->w;
    char *finite = malloc((size_t)images->n);
    if (!finite) return wcm_fail(err, WCM_ERR_NOMEM, "sample statistics: out of memory");
    double stripe_sq[2] = {0, 0}; /* sums of squares, for the standard errors */
    for (int i = 0; i < images->n; i++) {
        const float *x = images->data + i * hw;
        finite[i] = (char)wcm_image_finite(images, i);
        if (!finite[i]) {
            s->nonfinite++;
            continue;
        }
        s->images++;
        int outside = 0;
        for (size_t k = 0; k < hw; k++) {
            s->pixel_hist[wcm_binning_index(&b->pixel, x[k])]++;
            outside |= x[k] < b->range_min || x[k] > b->range_max;
        }
        s->out_of_range += outside;
        double sh, sv;
        rc = wcm_stripe_ratio(images, i, &sh, &sv, err);
        if (rc) break;
        s->stripe_h += sh, s->stripe_v += sv;
        stripe_sq[0] += sh * sh, stripe_sq[1] += sv * sv;
    }
    wcm_pyramid p;
    memset(&p, 0, sizeof p);
    if (!rc) rc = wcm_haar_forward(images, b->levels, &p, err);
    size_t count[WCM_MAX_LEVELS] = {0};
    for (int i = 0; !rc && i < images->n; i++) {
        if (!finite[i]) continue;
        for (int j = 0; j < b->levels; j++) {
            const wcm_tensor *l = &p.level[j];
            const size_t per = (size_t)l->h * l->w;
            const float *c = l->data + (size_t)i * per * 4;
            for (size_t k = 0; k < per; k++) {
                for (int band = 0; band < 3; band++) {
                    const double v = c[k * 4 + 1 + band];
                    s->band_hist[j][band][wcm_binning_index(&b->band[j][band], v)]++;
                    s->band_std[j][band] += v * v;
                }
                if (j == b->levels - 1) s->low_hist[wcm_binning_index(&b->low, c[k * 4])]++;
            }
            count[j] += per;
        }
    }
    wcm_pyramid_free(&p);
    free(finite);
    if (!rc && s->images) rc = wcm_radial_spectrum_compute(images, b->spectrum_bands, &s->spectrum, err);
    if (rc) return rc;
    s->stripe_h_se = wcm_standard_error(s->stripe_h, stripe_sq[0], s->images);
    s->stripe_v_se = wcm_standard_error(s->stripe_v, stripe_sq[1], s->images);
    if (s->images) {
        s->stripe_h /= s->images, s->stripe_v /= s->images;
        for (int j = 0; j < b->levels; j++)
            for (int band = 0; band < 3; band++) s->band_std[j][band] = sqrt(s->band_std[j][band] / (double)count[j]);
    } else {
        s->stripe_h = s->stripe_v = NAN;
        s->spectrum.bands = b->spectrum_bands;
    }
    return WCM_OK;
}

int wcm_set_stats_compare(const wcm_set_stats *samples, const wcm_set_stats *real, const wcm_stats_binning *b,
                          wcm_stats_comparison *c, wcm_error *err) {
    if (!samples || !real || !b || !c) return wcm_fail(err, WCM_ERR_ARG, "sample statistics: missing argument");
    if (!real->images) return wcm_fail(err, WCM_ERR_ARG, "sample statistics: the real set has no finite image");
    if (samples->images && samples->spectrum.bands != real->spectrum.bands)
        return wcm_fail(err, WCM_ERR_ARG, "sample statistics: the two summaries come from different binnings");
    memset(c, 0, sizeof *c);
    const int nb = b->pixel.bins + 2;
    const double a = b->smoothing;
    /* A set with no finite image has no histogram to compare: NaN, not 0. */
    const int none = samples->images == 0;
    c->pixel_kl = none ? NAN : wcm_histogram_kl(samples->pixel_hist, real->pixel_hist, nb, a);
    c->low_kl = none ? NAN : wcm_histogram_kl(samples->low_hist, real->low_hist, b->low.bins + 2, a);
    for (int j = 0; j < b->levels; j++)
        for (int band = 0; band < 3; band++) {
            c->band_kl[j][band] = none ? NAN
                                       : wcm_histogram_kl(samples->band_hist[j][band], real->band_hist[j][band],
                                                          b->band[j][band].bins + 2, a);
            c->band_std_ratio[j][band] = none ? NAN : samples->band_std[j][band] / real->band_std[j][band];
        }
    c->spectrum_bands = real->spectrum.bands;
    for (int k = 0; k < c->spectrum_bands; k++)
        c->spectrum_db[k] = none ? NAN : 10.0 * log10(samples->spectrum.power[k] / real->spectrum.power[k]);
    c->stripe_h = samples->stripe_h, c->stripe_v = samples->stripe_v;
    c->stripe_h_se = samples->stripe_h_se, c->stripe_v_se = samples->stripe_v_se;
    c->stripe_h_real = real->stripe_h, c->stripe_v_real = real->stripe_v;
    return WCM_OK;
}

/* Memorisation ----------------------------------------------------------------- */

double wcm_psnr_from_mse(double mse) {
    if (!(mse >= 0)) return NAN;
    const double p = mse > 0 ? 10.0 * log10(1.0 / mse) : INFINITY;
    return p < WCM_STATS_PSNR_CAP ? p : WCM_STATS_PSNR_CAP;
}

int wcm_nearest_update(const wcm_tensor *samples, const wcm_tensor *candidates, int first_index, double *best_mse,
                       int *best_index, wcm_error *err) {
    int rc = check_batch(samples, "nearest image (samples)", err);
    if (!rc) rc = check_batch(candidates, "nearest image (candidates)", err);
    if (rc) return rc;
    if (samples->h != candidates->h || samples->w != candidates->w)
        return wcm_fail(err, WCM_ERR_SHAPE, "nearest image: samples are %dx%d but candidates %dx%d", samples->h,
                        samples->w, candidates->h, candidates->w);
    if (!best_mse || !best_index || first_index < 0)
        return wcm_fail(err, WCM_ERR_ARG, "nearest image: needs the best_mse and best_index arrays");
    const size_t hw = (size_t)samples->h * samples->w;
#pragma omp parallel for schedule(dynamic)
    for (int k = 0; k < samples->n; k++) {
        const float *x = samples->data + k * hw;
        for (int i = 0; i < candidates->n; i++) {
            const float *y = candidates->data + i * hw;
            /* Leave a candidate once it is already worse than the best: same minimum, same first index. */
            const double limit = best_mse[k] * (double)hw;
            double sum = 0;
            for (size_t r = 0; r < hw && !(sum > limit); r += 64) {
                const size_t end = r + 64 < hw ? r + 64 : hw;
                for (size_t q = r; q < end; q++) {
                    const double d = fmin(fmax((double)x[q], -1.0), 2.0) - y[q];
                    sum += d * d;
                }
            }
            if (sum < limit || best_index[k] < 0) {
                best_mse[k] = sum / (double)hw;
                best_index[k] = first_index + i;
            }
        }
    }
    return WCM_OK;
}

/* Linear measurements with orthonormal rows and the constrained sampler of
 * docs/model.md §7 (pixel-domain baseline). Formulas in include/wcm/inverse.h. */
#include "wcm/inverse.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "wcm/rng.h"

/* Block averaging ------------------------------------------------------------ */

static void block_measure(const wcm_measurement *m, const float *image, float *coeffs) {
    const int f = m->factor, c = m->c, out_w = m->w / f, out_h = m->h / f;
    for (int by = 0; by < out_h; by++)
        for (int bx = 0; bx < out_w; bx++)
            for (int ch = 0; ch < c; ch++) {
                double sum = 0.0;
                for (int dy = 0; dy < f; dy++) {
                    const float *row = image + ((size_t)(by * f + dy) * m->w + (size_t)bx * f) * c + ch;
                    for (int dx = 0; dx < f; dx++) sum += row[(size_t)dx * c];
                }
                /* F * mean = sum / F: rows of M^T are 1/F on the block, norm 1. */
                coeffs[((size_t)by * out_w + bx) * c + ch] = (float)(sum / f);
            }
}

static void block_back_project_add(const wcm_measurement *m, const float *coeffs, float *image) {
    const int f = m->factor, c = m->c, out_w = m->w / f;
    const float inv_f = 1.0f / (float)f;
    for (int y = 0; y < m->h; y++)
        for (int x = 0; x < m->w; x++)
            for (int ch = 0; ch < c; ch++)
                image[((size_t)y * m->w + x) * c + ch] +=
                    coeffs[((size_t)(y / f) * out_w + x / f) * c + ch] * inv_f;
}

int wcm_measurement_block_average(wcm_measurement *m, int h, int w, int c, int factor, wcm_error *err) {
    memset(m, 0, sizeof *m);
    if (h <= 0 || w <= 0 || c <= 0)
        return wcm_fail(err, WCM_ERR_ARG, "block average: bad image shape %dx%dx%d", h, w, c);
    if (factor < 1)
        return wcm_fail(err, WCM_ERR_ARG, "block average: factor must be at least 1 (got %d)", factor);
    if (h % factor || w % factor)
        return wcm_fail(err, WCM_ERR_SHAPE, "block average: image %dx%d is not divisible by the factor %d", h, w,
                        factor);
    m->h = h;
    m->w = w;
    m->c = c;
    m->factor = factor;
    m->count = (size_t)(h / factor) * (size_t)(w / factor) * (size_t)c;
    m->measure = block_measure;
    m->back_project_add = block_back_project_add;
    return WCM_OK;
}

/* Masks ---------------------------------------------------------------------- */

static void mask_measure(const wcm_measurement *m, const float *image, float *coeffs) {
    for (size_t j = 0; j < m->count; j++) coeffs[j] = image[m->kept_index[j]];
}

static void mask_back_project_add(const wcm_measurement *m, const float *coeffs, float *image) {
    for (size_t j = 0; j < m->count; j++) image[m->kept_index[j]] += coeffs[j];
}

int wcm_measurement_mask(wcm_measurement *m, int h, int w, int c, const uint8_t *known, wcm_error *err) {
    memset(m, 0, sizeof *m);
    if (h <= 0 || w <= 0 || c <= 0)
        return wcm_fail(err, WCM_ERR_ARG, "mask measurement: bad image shape %dx%dx%d", h, w, c);
    if (!known) return wcm_fail(err, WCM_ERR_ARG, "mask measurement: no mask given");
    const size_t pixels = (size_t)h * w;
    size_t kept_pixels = 0;
    for (size_t i = 0; i < pixels; i++) kept_pixels += known[i] != 0;
    if (kept_pixels == 0) return wcm_fail(err, WCM_ERR_ARG, "mask measurement: the mask keeps no pixel");
    m->kept_index = malloc(kept_pixels * (size_t)c * sizeof *m->kept_index);
    if (!m->kept_index) return wcm_fail(err, WCM_ERR_NOMEM, "mask measurement: out of memory");
    size_t j = 0;
    for (size_t i = 0; i < pixels; i++)
        if (known[i])
            for (int ch = 0; ch < c; ch++) m->kept_index[j++] = i * (size_t)c + (size_t)ch;
    m->h = h;
    m->w = w;
    m->c = c;
    m->count = j;
    m->measure = mask_measure;
    m->back_project_add = mask_back_project_add;
    return WCM_OK;
}

int wcm_measurement_random_pixels(wcm_measurement *m, int h, int w, int c, double fraction, uint64_t seed,
                                  wcm_error *err) {
    memset(m, 0, sizeof *m);
    if (h <= 0 || w <= 0 || c <= 0)
        return wcm_fail(err, WCM_ERR_ARG, "random pixels: bad image shape %dx%dx%d", h, w, c);
    if (!(fraction > 0 && fraction <= 1))
        return wcm_fail(err, WCM_ERR_ARG, "random pixels: fraction must be in (0, 1] (got %g)", fraction);
    const size_t pixels = (size_t)h * w;
    size_t keep = (size_t)llround(fraction * (double)pixels);
    if (keep < 1) keep = 1;
    if (keep > pixels) keep = pixels;
    size_t *order = malloc(pixels * sizeof *order);
    uint8_t *known = calloc(pixels, 1);
    if (!order || !known) {
        free(order);
        free(known);
        return wcm_fail(err, WCM_ERR_NOMEM, "random pixels: out of memory");
    }
    for (size_t i = 0; i < pixels; i++) order[i] = i;
    wcm_rng rng;
    wcm_rng_seed(&rng, seed, 0);
    for (size_t i = 0; i < keep; i++) {
        size_t j = i + (size_t)wcm_rng_below(&rng, pixels - i);
        size_t tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
        known[order[i]] = 1;
    }
    int rc = wcm_measurement_mask(m, h, w, c, known, err);
    free(order);
    free(known);
    return rc;
}

void wcm_measurement_free(wcm_measurement *m) {
    if (!m) return;
    free(m->kept_index);
    m->kept_index = NULL;
}

static int check_batch(const wcm_measurement *m, const wcm_tensor *t, const char *what, wcm_error *err) {
    if (!m || !m->measure || !m->back_project_add)
        return wcm_fail(err, WCM_ERR_ARG, "%s: measurement is not initialised", what);
    if (!t || !t->data || t->n <= 0)
        return wcm_fail(err, WCM_ERR_ARG, "%s: tensor is empty or not allocated", what);
    if (t->h != m->h || t->w != m->w || t->c != m->c)
        return wcm_fail(err, WCM_ERR_SHAPE, "%s: image %dx%dx%d does not match the measurement's %dx%dx%d", what,
                        t->h, t->w, t->c, m->h, m->w, m->c);
    return WCM_OK;
}

int wcm_measurement_apply(const wcm_measurement *m, const wcm_tensor *images, float *coeffs, wcm_error *err) {
    int rc = check_batch(m, images, "measure", err);
    if (rc) return rc;
    if (!coeffs) return wcm_fail(err, WCM_ERR_ARG, "measure: no output buffer");
    const size_t per = (size_t)m->h * m->w * m->c;
    for (int k = 0; k < images->n; k++) m->measure(m, images->data + k * per, coeffs + k * m->count);
    return WCM_OK;
}

int wcm_measurement_back_project(const wcm_measurement *m, const float *coeffs, wcm_tensor *images,
                                 wcm_error *err) {
    int rc = check_batch(m, images, "back-project", err);
    if (rc) return rc;
    if (!coeffs) return wcm_fail(err, WCM_ERR_ARG, "back-project: no coefficients");
    const size_t per = (size_t)m->h * m->w * m->c;
    memset(images->data, 0, (size_t)images->n * per * sizeof(float));
    for (int k = 0; k < images->n; k++) m->back_project_add(m, coeffs + k * m->count, images->data + k * per);
    return WCM_OK;
}

/* Constrained denoiser --------------------------------------------------------- */

int wcm_constrained_init(wcm_constrained_ctx *cc, const wcm_measurement *m, const float *measured, int batch,
                         wcm_denoiser_fn denoiser, void *denoiser_ctx, wcm_error *err) {
    memset(cc, 0, sizeof *cc);
    if (!m || !m->measure || !m->back_project_add || m->count == 0)
        return wcm_fail(err, WCM_ERR_ARG, "constrained sampler: measurement is not initialised");
    if (!measured) return wcm_fail(err, WCM_ERR_ARG, "constrained sampler: no measured values given");
    if (!denoiser) return wcm_fail(err, WCM_ERR_ARG, "constrained sampler: no denoiser given");
    if (batch <= 0) return wcm_fail(err, WCM_ERR_ARG, "constrained sampler: batch must be positive (got %d)", batch);
    cc->work = malloc(2 * (size_t)batch * m->count * sizeof(float));
    if (!cc->work) return wcm_fail(err, WCM_ERR_NOMEM, "constrained sampler: out of memory");
    cc->denoiser = denoiser;
    cc->denoiser_ctx = denoiser_ctx;
    cc->measurement = m;
    cc->measured = measured;
    cc->batch = batch;
    return WCM_OK;
}

void wcm_constrained_free(wcm_constrained_ctx *cc) {
    if (!cc) return;
    free(cc->work);
    cc->work = NULL;
}

int wcm_constrained_denoiser(void *ctx, const wcm_tensor *y, wcm_tensor *residual, wcm_error *err) {
    wcm_constrained_ctx *cc = ctx;
    const wcm_measurement *m = cc->measurement;
    int rc = check_batch(m, y, "constrained denoiser", err);
    if (rc) return rc;
    if (y->n != cc->batch)
        return wcm_fail(err, WCM_ERR_SHAPE, "constrained denoiser: batch %d, but %d measurements were set up", y->n,
                        cc->batch);
    rc = cc->denoiser(cc->denoiser_ctx, y, residual, err);
    if (rc) return rc;
    const size_t per = (size_t)m->h * m->w * m->c, count = m->count;
    /* d = f + M (M^T y - M^T f - x_c): the same as (I - MM^T) f + MM^T y - M x_c. */
#pragma omp parallel for schedule(static) if (y->n > 1)
    for (int k = 0; k < y->n; k++) {
        float *of_y = cc->work + 2 * (size_t)k * count, *of_f = of_y + count;
        float *fk = residual->data + k * per;
        const float *xc = cc->measured + k * count;
        m->measure(m, y->data + k * per, of_y);
        m->measure(m, fk, of_f);
        for (size_t j = 0; j < count; j++) of_y[j] = of_y[j] - of_f[j] - xc[j];
        m->back_project_add(m, of_y, fk);
    }
    return WCM_OK;
}

int wcm_constrained_init_mean(const wcm_measurement *m, const float *measured, wcm_tensor *mean, wcm_error *err) {
    int rc = check_batch(m, mean, "constrained init mean", err);
    if (rc) return rc;
    if (!measured) return wcm_fail(err, WCM_ERR_ARG, "constrained init mean: no measured values given");
    const size_t per = (size_t)m->h * m->w * m->c, count = m->count;
    float *ones_measured = malloc(count * sizeof(float));
    float *coeffs = malloc(count * sizeof(float));
    float *ones = malloc(per * sizeof(float));
    if (!ones_measured || !coeffs || !ones) {
        free(ones_measured);
        free(coeffs);
        free(ones);
        return wcm_fail(err, WCM_ERR_NOMEM, "constrained init mean: out of memory");
    }
    for (size_t i = 0; i < per; i++) ones[i] = 1.0f;
    m->measure(m, ones, ones_measured);
    /* 0.5 (I - MM^T) 1 + M x_c = 0.5 + M (x_c - 0.5 M^T 1). */
    for (int k = 0; k < mean->n; k++) {
        float *mk = mean->data + k * per;
        const float *xc = measured + k * count;
        for (size_t i = 0; i < per; i++) mk[i] = 0.5f;
        for (size_t j = 0; j < count; j++) coeffs[j] = xc[j] - 0.5f * ones_measured[j];
        m->back_project_add(m, coeffs, mk);
    }
    free(ones_measured);
    free(coeffs);
    free(ones);
    return WCM_OK;
}

int wcm_sample_constrained(const wcm_measurement *m, const float *measured, wcm_denoiser_fn denoiser,
                           void *denoiser_ctx, const wcm_sampler_params *params, wcm_tensor *y,
                           wcm_sample_result *results, wcm_error *err) {
    int rc = check_batch(m, y, "constrained sampler", err);
    if (rc) return rc;
    wcm_sampler_params p;
    if (params) p = *params;
    else wcm_sampler_params_default(&p);
    if (p.init_mean)
        return wcm_fail(err, WCM_ERR_ARG, "constrained sampler: init_mean is set internally; pass NULL");
    if (p.stop_rule == WCM_STOP_DEFAULT) p.stop_rule = WCM_STOP_SIGMA;

    wcm_constrained_ctx cc;
    wcm_tensor mean = {0};
    rc = wcm_constrained_init(&cc, m, measured, y->n, denoiser, denoiser_ctx, err);
    if (rc) return rc;
    rc = wcm_tensor_alloc(&mean, y->n, y->h, y->w, y->c, err);
    if (!rc) rc = wcm_constrained_init_mean(m, measured, &mean, err);
    if (!rc) {
        p.init_mean = &mean;
        rc = wcm_sample(wcm_constrained_denoiser, &cc, &p, y, results, err);
    }
    wcm_tensor_free(&mean);
    wcm_constrained_free(&cc);
    return rc;
}

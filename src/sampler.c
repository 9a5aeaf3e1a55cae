/* Algorithm 1 (docs/model.md §6): batched sampling with a residual-predicting denoiser.
 * See include/wcm/sampler.h for the exact iteration, stopping rules and the
 * layout of the random numbers. Every vector update, noise fill and sum is an
 * op of the context's backend (params->context), so the batch stays in its
 * memory; sums use a fixed chunking so sigma_t and std(y) (hence every
 * decision) do not depend on the number of threads. */
#include "wcm/sampler.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wcm/backend.h"

/* Values summed sequentially per chunk; chunk partials are then added in order. */
#define SUM_CHUNK 1024
/* Sample k's random numbers start at (sample_offset + k) << NOISE_SUBSTREAM_BITS. */
#define NOISE_SUBSTREAM_BITS 44
#define MAX_SUBSTREAMS ((int64_t)1 << (64 - NOISE_SUBSTREAM_BITS))

void wcm_sampler_params_default(wcm_sampler_params *p) {
    memset(p, 0, sizeof *p);
    p->sigma_0 = 1.0;
    p->sigma_L = 0.01;
    p->h0 = 0.01;
    p->beta = 0.1;
    p->fixed_step = 0;
    p->max_iters = 2000;
    p->divergence_threshold = 1.5;
    p->std_jump = 2.0;
    p->plateau_db = 3.0;
    p->stop_rule = WCM_STOP_DEFAULT;
}

const char *wcm_sample_status_name(int status) {
    switch (status) {
    case WCM_SAMPLE_RUNNING: return "running";
    case WCM_SAMPLE_CONVERGED: return "converged";
    case WCM_SAMPLE_CAP: return "cap";
    case WCM_SAMPLE_DIVERGED: return "diverged";
    case WCM_SAMPLE_SKIPPED: return "skipped";
    case WCM_SAMPLE_PLATEAU: return "plateau";
    default: return "unknown";
    }
}

const char *wcm_divergence_reason_name(int reason) {
    switch (reason) {
    case WCM_DIVERGED_SIGMA: return "sigma";
    case WCM_DIVERGED_NONFINITE: return "non-finite";
    case WCM_DIVERGED_STD_JUMP: return "std-jump";
    case WCM_DIVERGED_RANGE: return "range";
    default: return "";
    }
}

uint64_t wcm_sampler_noise_base(const wcm_sampler_params *params, int k) {
    const int64_t index = params->sample_index ? params->sample_index[k] : params->sample_offset + k;
    return (uint64_t)index << NOISE_SUBSTREAM_BITS;
}

/* Deterministic sums over one sample (fixed chunks, then the chunks in order) */

static int sum_sq_dev(wcm_context *run, const float *x, size_t n, double center, double *out, wcm_error *err) {
    return wcm_op_reduce(run, WCM_REDUCE_SUMSQ, n, x, NULL, center, SUM_CHUNK, out, err);
}

/* Population standard deviation (two passes). */
static int population_std(wcm_context *run, const float *x, size_t n, double *out, wcm_error *err) {
    double sum, ss;
    int rc = wcm_op_reduce(run, WCM_REDUCE_SUM, n, x, NULL, 0.0, SUM_CHUNK, &sum, err);
    if (!rc) rc = sum_sq_dev(run, x, n, sum / (double)n, &ss, err);
    if (!rc) *out = sqrt(ss / (double)n);
    return rc;
}

static double step_size(const wcm_sampler_params *p, int t) {
    if (p->fixed_step) return p->h0;
    return p->h0 * t / (1.0 + p->h0 * (t - 1));
}

static int check_params(const wcm_sampler_params *p, const wcm_tensor *y, wcm_error *err) {
    if (!y || !y->data || y->n <= 0 || y->h <= 0 || y->w <= 0 || y->c <= 0)
        return wcm_fail(err, WCM_ERR_ARG, "sampler: output tensor is empty or not allocated");
    if (!(p->sigma_0 > 0) || !isfinite(p->sigma_0))
        return wcm_fail(err, WCM_ERR_ARG, "sampler: sigma_0 must be positive (got %g)", p->sigma_0);
    if (!(p->sigma_L > 0) || !isfinite(p->sigma_L))
        return wcm_fail(err, WCM_ERR_ARG, "sampler: sigma_L must be positive (got %g)", p->sigma_L);
    if (!(p->h0 > 0 && p->h0 <= 1))
        return wcm_fail(err, WCM_ERR_ARG, "sampler: h0 must be in (0, 1] (got %g)", p->h0);
    if (!(p->beta >= 0 && p->beta <= 1))
        return wcm_fail(err, WCM_ERR_ARG, "sampler: beta must be in [0, 1] (got %g)", p->beta);
    if (p->max_iters < 1)
        return wcm_fail(err, WCM_ERR_ARG, "sampler: max_iters must be at least 1 (got %d)", p->max_iters);
    if (!(p->divergence_threshold > 0))
        return wcm_fail(err, WCM_ERR_ARG, "sampler: divergence threshold must be positive (got %g)",
                        p->divergence_threshold);
    if (!(p->std_jump == 0 || p->std_jump > 1))
        return wcm_fail(err, WCM_ERR_ARG, "sampler: std jump factor must be 0 (off) or above 1 (got %g)", p->std_jump);
    if (p->plateau_iters < 0 || !(p->plateau_db >= 0) || !isfinite(p->plateau_db))
        return wcm_fail(err, WCM_ERR_ARG, "sampler: plateau rule needs iterations >= 0 and a margin >= 0 dB (got %d, %g)",
                        p->plateau_iters, p->plateau_db);
    if (p->stop_rule != WCM_STOP_DEFAULT && p->stop_rule != WCM_STOP_SNR && p->stop_rule != WCM_STOP_SIGMA)
        return wcm_fail(err, WCM_ERR_ARG, "sampler: unknown stop rule %d", (int)p->stop_rule);
    if (p->sample_offset < 0 || p->sample_offset > MAX_SUBSTREAMS - y->n)
        return wcm_fail(err, WCM_ERR_ARG, "sampler: sample_offset %lld + batch %d exceeds %lld random sub-streams",
                        (long long)p->sample_offset, y->n, (long long)MAX_SUBSTREAMS);
    for (int k = 0; p->sample_index && k < y->n; k++)
        if (p->sample_index[k] < 0 || p->sample_index[k] >= MAX_SUBSTREAMS)
            return wcm_fail(err, WCM_ERR_ARG, "sampler: sample index %lld outside 0..%lld",
                            (long long)p->sample_index[k], (long long)MAX_SUBSTREAMS - 1);
    size_t per_sample = (size_t)y->h * y->w * y->c;
    if ((double)per_sample * ((double)p->max_iters + 2) >= (double)((uint64_t)1 << NOISE_SUBSTREAM_BITS))
        return wcm_fail(err, WCM_ERR_ARG, "sampler: %zu values x %d iterations exceed one random sub-stream",
                        per_sample, p->max_iters);
    if (p->init_mean) {
        const wcm_tensor *m = p->init_mean;
        if (!m->data || m->n != y->n || m->h != y->h || m->w != y->w || m->c != y->c)
            return wcm_fail(err, WCM_ERR_SHAPE, "sampler: init mean shape %dx%dx%dx%d differs from the batch %dx%dx%dx%d",
                            m->n, m->h, m->w, m->c, y->n, y->h, y->w, y->c);
    }
    return WCM_OK;
}

/* Status message for diverged samples; returns WCM_ERR_NUMERIC. */
static int report_divergence(const wcm_sample_result *res, int n, const wcm_sampler_params *p, wcm_error *err) {
    int first = -1, count = 0;
    for (int k = 0; k < n; k++) {
        if (res[k].status != WCM_SAMPLE_DIVERGED) continue;
        if (first < 0) first = k;
        count++;
    }
    const wcm_sample_result *r = &res[first];
    char why[128];
    if (r->reason == WCM_DIVERGED_STD_JUMP)
        snprintf(why, sizeof why, "std(y) = %g rose above %g x its minimum", r->final_std, p->std_jump);
    else if (r->reason == WCM_DIVERGED_NONFINITE)
        snprintf(why, sizeof why, "sigma_t = %g, std(y) = %g", r->final_sigma, r->final_std);
    else
        snprintf(why, sizeof why, "sigma_t = %g > %g", r->final_sigma, p->divergence_threshold);
    if (count == 1)
        return wcm_fail(err, WCM_ERR_NUMERIC, "sampler diverged: sample %d at iteration %d (%s)", first, r->iterations,
                        why);
    return wcm_fail(err, WCM_ERR_NUMERIC, "sampler diverged: %d of %d samples, first sample %d at iteration %d (%s)",
                    count, n, first, r->iterations, why);
}

int wcm_sample(wcm_denoiser_fn denoiser, void *ctx, const wcm_sampler_params *params,
               wcm_tensor *y, wcm_sample_result *results, wcm_error *err) {
    wcm_sampler_params defaults;
    if (!params) {
        wcm_sampler_params_default(&defaults);
        params = &defaults;
    }
    if (!denoiser) return wcm_fail(err, WCM_ERR_ARG, "sampler: no denoiser given");
    int rc = check_params(params, y, err);
    if (rc) return rc;
    if (err) err->msg[0] = 0;

    const wcm_sampler_params *p = params;
    const int n = y->n;
    const size_t per_sample = (size_t)y->h * y->w * y->c;
    const int stop_on_sigma = p->stop_rule == WCM_STOP_SIGMA;
    const double target_db = -20.0 * log10(p->sigma_L);
    const double start = wcm_seconds();

    /* The batch, its residual and the noise live where the ops run: y itself
     * on a host-visible backend, else a copy returned to y at the end. */
    wcm_context *run = p->context ? p->context : wcm_context_default();
    wcm_tensor residual = {0}, noise = {0}, y_copy = {0}, mean_copy = {0};
    const wcm_tensor *y_view, *mean_view = NULL;
    double *sigmas = calloc((size_t)n, sizeof(double));
    double *min_std = malloc((size_t)n * sizeof(double));
    double *best_snr = malloc((size_t)n * sizeof(double));
    int *best_t = calloc((size_t)n, sizeof(int));
    wcm_sample_result *res = results ? results : calloc((size_t)n, sizeof *res);
    if (!sigmas || !min_std || !best_snr || !best_t || !res) {
        rc = wcm_fail(err, WCM_ERR_NOMEM, "sampler: out of memory for a batch of %d x %zu values", n, per_sample);
        goto done;
    }
    rc = wcm_tensor_alloc_on(run, &residual, n, y->h, y->w, y->c, err);
    if (!rc) rc = wcm_tensor_alloc_on(run, &noise, 1, y->h, y->w, y->c, err);
    if (!rc) rc = wcm_tensor_stage(run, y, &y_copy, &y_view, err);
    if (!rc && p->init_mean) rc = wcm_tensor_stage(run, p->init_mean, &mean_copy, &mean_view, err);
    if (rc) goto done;
    wcm_tensor *batch = y_copy.data ? &y_copy : y;

    /* y ~ N(init_mean, sigma_0^2), each sample from its own sub-stream. */
    for (int k = 0; k < n && !rc; k++) {
        float *yk = batch->data + (size_t)k * per_sample;
        const float *mk = mean_view ? mean_view->data + (size_t)k * per_sample : NULL;
        rc = wcm_op_fill_normal(run, p->seed, p->stream, wcm_sampler_noise_base(p, k), per_sample, yk, err);
        if (!rc) rc = wcm_op_scale(run, per_sample, (float)p->sigma_0, yk, mk, err);
        memset(&res[k], 0, sizeof res[k]);
        res[k].status = WCM_SAMPLE_RUNNING;
        min_std[k] = INFINITY;
        best_snr[k] = -INFINITY;
    }
    if (rc) goto done;

    int active = n;
    for (int t = 1; t <= p->max_iters && active > 0; t++) {
        const double h = step_size(p, t);
        /* (1 - beta h)^2 - (1 - h)^2 >= 0 for beta, h in [0, 1]; clamp rounding. */
        const double g2 = (1 - p->beta * h) * (1 - p->beta * h) - (1 - h) * (1 - h);
        const double gamma_factor = g2 > 0 ? sqrt(g2) : 0.0;

        rc = denoiser(ctx, batch, &residual, err);
        if (rc) {
            rc = wcm_fail_context(err, rc, "sampler: denoiser failed at iteration %d", t);
            goto done;
        }
        double max_sigma_active = 0.0;
        for (int k = 0; k < n; k++) {
            if (res[k].status != WCM_SAMPLE_RUNNING) continue;
            float *yk = batch->data + (size_t)k * per_sample;
            const float *dk = residual.data + (size_t)k * per_sample;
            double ss;
            if ((rc = sum_sq_dev(run, dk, per_sample, 0.0, &ss, err))) goto done;
            const double sigma = sqrt(ss / (double)per_sample);
            wcm_trace_entry e = {.sample = k, .t = t, .h = h, .sigma = sigma};
            sigmas[k] = sigma;
            if (sigma > max_sigma_active || !isfinite(sigma)) max_sigma_active = sigma;
            res[k].iterations = t;
            res[k].final_sigma = sigma;
            if (!(sigma <= p->divergence_threshold)) {
                /* Keep y as it was: an update with this step would be meaningless. */
                if ((rc = population_std(run, yk, per_sample, &e.std_y, err))) goto done;
                e.snr_db = 20.0 * log10(e.std_y / sigma);
                e.status = res[k].status = WCM_SAMPLE_DIVERGED;
                res[k].reason = isfinite(sigma) ? WCM_DIVERGED_SIGMA : WCM_DIVERGED_NONFINITE;
            } else {
                e.gamma = sigma * gamma_factor;
                rc = wcm_op_fill_normal(run, p->seed, p->stream, wcm_sampler_noise_base(p, k) + (uint64_t)t * per_sample,
                                        per_sample, noise.data, err);
                if (!rc) rc = wcm_op_noise_step(run, per_sample, yk, (float)h, dk, (float)e.gamma, noise.data, err);
                if (!rc) rc = population_std(run, yk, per_sample, &e.std_y, err);
                if (rc) goto done;
                e.snr_db = 20.0 * log10(e.std_y / sigma);
                int stop = stop_on_sigma ? sigma <= p->sigma_L : e.std_y * p->sigma_L >= sigma;
                if (!isfinite(e.std_y)) {
                    res[k].status = WCM_SAMPLE_DIVERGED;
                    res[k].reason = WCM_DIVERGED_NONFINITE;
                } else if (p->std_jump > 0 && e.std_y > p->std_jump * min_std[k]) {
                    res[k].status = WCM_SAMPLE_DIVERGED;
                    res[k].reason = WCM_DIVERGED_STD_JUMP;
                } else if (stop) {
                    res[k].status = WCM_SAMPLE_CONVERGED;
                } else if (p->plateau_iters > 0 && !stop_on_sigma) {
                    if (e.snr_db > best_snr[k]) best_snr[k] = e.snr_db, best_t[k] = t;
                    if (best_snr[k] >= target_db - p->plateau_db && t - best_t[k] >= p->plateau_iters)
                        res[k].status = WCM_SAMPLE_PLATEAU;
                }
                if (e.std_y < min_std[k]) min_std[k] = e.std_y;
                e.status = res[k].status;
            }
            res[k].final_std = e.std_y;
            if (res[k].status != WCM_SAMPLE_RUNNING) {
                res[k].seconds = wcm_seconds() - start;
                active--;
            }
            if (p->trace) p->trace(p->trace_user, &e);
        }
        if (p->progress) {
            wcm_progress_info info = {.t = t, .max_iters = p->max_iters, .batch = n, .active = active,
                                      .sigma = sigmas, .max_sigma_active = max_sigma_active,
                                      .seconds = wcm_seconds() - start};
            p->progress(p->progress_user, &info);
        }
    }
    for (int k = 0; k < n; k++) {
        if (res[k].status != WCM_SAMPLE_RUNNING) continue;
        res[k].status = WCM_SAMPLE_CAP;
        res[k].seconds = wcm_seconds() - start;
    }

    /* Output: y - f(y), one call for the whole batch. */
    const double final_start = wcm_seconds();
    rc = denoiser(ctx, batch, &residual, err);
    if (rc) {
        rc = wcm_fail_context(err, rc, "sampler: denoiser failed in the final denoising step");
        goto done;
    }
    rc = wcm_op_axpy(run, (size_t)n * per_sample, -1.0f, residual.data, batch->data, err);
    if (!rc && batch != y) rc = wcm_memcpy_to_host(run, y->data, batch->data, (size_t)n * per_sample * sizeof(float), err);
    if (rc) goto done;
    const double final_seconds = wcm_seconds() - final_start;
    for (int k = 0; k < n; k++) res[k].seconds += final_seconds;

    rc = WCM_OK;
    for (int k = 0; k < n; k++) {
        if (res[k].status == WCM_SAMPLE_DIVERGED) {
            rc = report_divergence(res, n, p, err);
            break;
        }
    }

done:
    wcm_tensor_free(&residual);
    wcm_tensor_free(&noise);
    wcm_tensor_free(&y_copy);
    wcm_tensor_free(&mean_copy);
    free(sigmas);
    free(min_std);
    free(best_snr);
    free(best_t);
    if (res && res != results) free(res);
    return rc;
}

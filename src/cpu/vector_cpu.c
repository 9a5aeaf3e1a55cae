/* The CPU backend's vector updates (Algorithm 1's steps, noise, rescaling)
 * and deterministic reductions. Elementwise ops compute each value alone, so
 * any split among threads gives the same bits; reductions sum fixed chunks,
 * then the chunk sums in order. Small vectors run on the calling thread
 * (starting threads costs more than the work). */
#include <math.h>
#include <string.h>

#include "cpu/cpu_conv.h"

/* Parallel only above this many values. */
#define PARALLEL_MIN_VALUES 32768

int wcm_cpu_fill(wcm_context *ctx, size_t n, float *x, float value) {
    (void)ctx;
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN_VALUES)
    for (size_t i = 0; i < n; i++) x[i] = value;
    return WCM_OK;
}

int wcm_cpu_axpy(wcm_context *ctx, size_t n, float alpha, const float *x, float *y) {
    (void)ctx;
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN_VALUES)
    for (size_t i = 0; i < n; i++) y[i] = y[i] + alpha * x[i];
    return WCM_OK;
}

int wcm_cpu_scale(wcm_context *ctx, size_t n, float alpha, float *x, const float *base) {
    (void)ctx;
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN_VALUES)
    for (size_t i = 0; i < n; i++) x[i] = (base ? base[i] : 0.0f) + alpha * x[i];
    return WCM_OK;
}

int wcm_cpu_noise_step(wcm_context *ctx, size_t n, float *y, float h, const float *d, float gamma, const float *z) {
    (void)ctx;
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN_VALUES)
    for (size_t i = 0; i < n; i++) y[i] = y[i] - h * d[i] + gamma * z[i];
    return WCM_OK;
}

int wcm_cpu_add_noise(wcm_context *ctx, size_t n, const float *x, const float *z, double sigma, float *y) {
    (void)ctx;
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN_VALUES)
    for (size_t i = 0; i < n; i++) y[i] = x[i] + (float)(sigma * z[i]);
    return WCM_OK;
}

int wcm_cpu_add_noise_255(wcm_context *ctx, size_t n, const float *x, const float *z, float sigma255, float *y) {
    (void)ctx;
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN_VALUES)
    for (size_t i = 0; i < n; i++) y[i] = x[i] + (z[i] * sigma255) / 255.0f;
    return WCM_OK;
}

int wcm_cpu_rescale(wcm_context *ctx, size_t n, float *x, float lo, double range, double max) {
    (void)ctx;
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN_VALUES)
    for (size_t i = 0; i < n; i++) x[i] = range > 0 ? (float)(((double)x[i] - lo) / range * max) : 0.0f;
    return WCM_OK;
}

/* One chunk [b, e) of a reduction into out (two values for min/max). The
 * first chunk's scan starts from x[0], later ones from +-infinity, so that
 * combining chunks in order is the sequential scan. */
static void reduce_chunk(wcm_reduce_kind kind, const float *x, const float *y, double center, size_t b, size_t e,
                         double *out) {
    double s = 0.0;
    switch (kind) {
        case WCM_REDUCE_SUM:
            for (size_t i = b; i < e; i++) s += (double)x[i];
            break;
        case WCM_REDUCE_SUMSQ:
            for (size_t i = b; i < e; i++) {
                double v = (double)x[i] - center;
                s += v * v;
            }
            break;
        case WCM_REDUCE_SQDIFF:
            for (size_t i = b; i < e; i++) {
                double d = (double)x[i] - y[i];
                s += d * d;
            }
            break;
        case WCM_REDUCE_MINMAX: {
            float lo = b == 0 ? x[0] : INFINITY, hi = b == 0 ? x[0] : -INFINITY;
            for (size_t i = b; i < e; i++) {
                if (x[i] < lo) lo = x[i];
                if (x[i] > hi) hi = x[i];
            }
            out[0] = lo;
            out[1] = hi;
            return;
        }
        case WCM_REDUCE_NONFINITE:
            for (size_t i = b; i < e; i++) s += !isfinite(x[i]);
            break;
    }
    out[0] = s;
}

int wcm_cpu_reduce(wcm_context *ctx, wcm_reduce_kind kind, size_t n, const float *x, const float *y, double center,
                   size_t chunk, double *result) {
    if (!chunk || chunk > n) chunk = n ? n : 1;
    const size_t nchunks = (n + chunk - 1) / chunk, per = kind == WCM_REDUCE_MINMAX ? 2 : 1;
    const wcm_arena_mark mark = wcm_arena_save(&ctx->arena);
    double one[2], *partial = nchunks <= 1 ? one : wcm_arena_push(&ctx->arena, sizeof(double) * per * nchunks);
    if (!partial) return wcm_ctx_fail(ctx, WCM_ERR_NOMEM, "out of memory for %zu partial sums", nchunks);
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN_VALUES)
    for (size_t k = 0; k < nchunks; k++) {
        const size_t b = k * chunk, e = b + chunk < n ? b + chunk : n;
        reduce_chunk(kind, x, y, center, b, e, partial + per * k);
    }
    if (kind == WCM_REDUCE_MINMAX) {
        double lo = partial[0], hi = partial[1];
        for (size_t k = 1; k < nchunks; k++) {
            if (partial[2 * k] < lo) lo = partial[2 * k];
            if (partial[2 * k + 1] > hi) hi = partial[2 * k + 1];
        }
        result[0] = lo;
        result[1] = hi;
    } else {
        double total = 0.0;
        for (size_t k = 0; k < nchunks; k++) total += partial[k];
        result[0] = total;
    }
    wcm_arena_restore(&ctx->arena, mark);
    return WCM_OK;
}

/* The CPU backend's training ops: bias-free batch norm in its three modes
 * (batch statistics, frozen, folded into the weights for inference), ReLU,
 * the loss, Adam, and the per-channel reductions batch norm is made of.
 *
 * Reductions sum fixed chunks of pixels in parallel, then the chunks in
 * order: results never depend on the thread count. The per-pixel loops are
 * compiled for several instruction sets and picked at run time; results do
 * not depend on the choice either: every accumulator sums its pixels in
 * order (vectors run across channels) and C11 mode does not contract a*b+c
 * into FMA. */
#include <math.h>
#include <string.h>

#include "cpu/cpu_conv.h"
#include "wcm/train.h"

/* Pixels per chunk of a per-channel sum, and values per chunk of the loss. */
#define REDUCE_CHUNK 1024

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
/* (no-trapping-math lets the ReLU masks become vector selects; it changes no value) */
#define MULTI_TARGET __attribute__((target_clones("avx512f", "avx2", "default"), optimize("no-trapping-math")))
#else
#define MULTI_TARGET
#endif

static size_t chunks_of(size_t m, size_t chunk) { return (m + chunk - 1) / chunk; }

enum { SUM_X, SUM_SQDEV, SUM_DY_X, SUM_DY_X_RELU };

/* acc[ch] += f(pixel, ch) over pixels [p0, p1). */
MULTI_TARGET static void sum_pixels(int what, const float *restrict x, const float *restrict dy, size_t p0, size_t p1,
                                    int c, const double *restrict mean, const float *restrict gamma,
                                    const float *restrict sdf, double *restrict acc) {
    for (size_t p = p0; p < p1; p++) {
        const float *restrict xp = x + p * c, *restrict gp = dy ? dy + p * c : NULL;
        if (what == SUM_X) {
#pragma omp simd
            for (int ch = 0; ch < c; ch++) acc[ch] += xp[ch];
        } else if (what == SUM_SQDEV) {
#pragma omp simd
            for (int ch = 0; ch < c; ch++) {
                double d = xp[ch] - mean[ch];
                acc[ch] += d * d;
            }
        } else if (what == SUM_DY_X_RELU) {
#pragma omp simd
            for (int ch = 0; ch < c; ch++) {
                float v = (xp[ch] / sdf[ch]) * gamma[ch], g = gp[ch];
                g = !(v > 0) ? 0.0f : g;
                acc[ch] += (double)g * xp[ch];
            }
        } else {
#pragma omp simd
            for (int ch = 0; ch < c; ch++) acc[ch] += (double)gp[ch] * xp[ch];
        }
    }
}

/* result[ch] = sum over all m pixels: fixed chunks in parallel, then the
 * chunk sums in order. sdf: sd rounded to float (SUM_DY_X_RELU). */
static int channel_sums(wcm_context *ctx, int what, const float *x, const float *dy, size_t m, int c, size_t chunk,
                        const double *mean, const float *gamma, const float *sdf, double *result) {
    const size_t nchunks = chunks_of(m, chunk);
    const wcm_arena_mark mark = wcm_arena_save(&ctx->arena);
    double *partial = wcm_arena_push(&ctx->arena, sizeof(double) * (nchunks ? nchunks : 1) * (size_t)c);
    if (!partial) return wcm_ctx_fail(ctx, WCM_ERR_NOMEM, "out of memory for %zu partial sums", nchunks * (size_t)c);
    memset(partial, 0, sizeof(double) * nchunks * (size_t)c);
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < nchunks; k++) {
        size_t end = (k + 1) * chunk < m ? (k + 1) * chunk : m;
        sum_pixels(what, x, dy, k * chunk, end, c, mean, gamma, sdf, partial + k * (size_t)c);
    }
    for (int ch = 0; ch < c; ch++) result[ch] = 0;
    for (size_t k = 0; k < nchunks; k++)
        for (int ch = 0; ch < c; ch++) result[ch] += partial[k * (size_t)c + ch];
    wcm_arena_restore(&ctx->arena, mark);
    return WCM_OK;
}

int wcm_cpu_channel_reduce(wcm_context *ctx, wcm_reduce_kind kind, size_t m, int c, const float *x,
                           const double *center, size_t chunk, double *result) {
    return channel_sums(ctx, kind == WCM_REDUCE_SUM ? SUM_X : SUM_SQDEV, x, NULL, m, c, chunk ? chunk : (m ? m : 1),
                        center, NULL, NULL, result);
}

int wcm_cpu_channel_partials(wcm_context *ctx, wcm_reduce_kind kind, size_t m, int c, const float *x,
                             const double *center, size_t part, double *parts) {
    (void)ctx;
    const size_t nparts = chunks_of(m, part);
    memset(parts, 0, sizeof(double) * nparts * (size_t)c);
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < nparts; k++)
        sum_pixels(kind == WCM_REDUCE_SUM ? SUM_X : SUM_SQDEV, x, NULL, k * part, (k + 1) * part < m ? (k + 1) * part : m,
                   c, center, NULL, NULL, parts + k * (size_t)c);
    return WCM_OK;
}

int wcm_cpu_bn_stats(wcm_context *ctx, const float *x, size_t m, int c, double *mean, double *sd) {
    int rc = channel_sums(ctx, SUM_X, x, NULL, m, c, REDUCE_CHUNK, NULL, NULL, NULL, mean);
    if (rc) return rc;
    for (int ch = 0; ch < c; ch++) mean[ch] /= (double)m;
    rc = channel_sums(ctx, SUM_SQDEV, x, NULL, m, c, REDUCE_CHUNK, mean, NULL, NULL, sd);
    if (rc) return rc;
    for (int ch = 0; ch < c; ch++) sd[ch] = sqrt(sd[ch] / (double)m + WCM_BN_EPS);
    return WCM_OK;
}

MULTI_TARGET static void apply_pixels(const float *x, size_t p0, size_t p1, int c, const float *restrict gamma,
                                      const float *restrict sdf, int relu, float *y) {
    for (size_t p = p0; p < p1; p++) {
        const float *xp = x + p * c;
        float *yp = y + p * c;
        if (relu) {
#pragma omp simd
            for (int ch = 0; ch < c; ch++) {
                float v = (xp[ch] / sdf[ch]) * gamma[ch];
                yp[ch] = v > 0 ? v : 0.0f;
            }
        } else {
#pragma omp simd
            for (int ch = 0; ch < c; ch++) yp[ch] = (xp[ch] / sdf[ch]) * gamma[ch];
        }
    }
}

/* The forward uses the statistics rounded to float, as PyTorch's float32
 * tensors do; backward recomputes the ReLU mask with the same expression. */
int wcm_cpu_bn_apply(wcm_context *ctx, const float *x, size_t m, int c, const float *gamma, const double *sd, int relu,
                     float *y) {
    (void)ctx;
    float sdf[WCM_CHANNELS];
    for (int ch = 0; ch < c; ch++) sdf[ch] = (float)sd[ch];
    const size_t nchunks = chunks_of(m, REDUCE_CHUNK);
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < nchunks; k++)
        apply_pixels(x, k * REDUCE_CHUNK, (k + 1) * REDUCE_CHUNK < m ? (k + 1) * REDUCE_CHUNK : m, c, gamma, sdf, relu, y);
    return WCM_OK;
}

MULTI_TARGET static void bn_grad_pixels(const float *x, const float *dy, size_t p0, size_t p1, int c,
                                        const float *restrict gamma, const float *restrict sdf, const double *restrict mean,
                                        const double *restrict a, const double *restrict b, int relu, float *dx) {
    for (size_t p = p0; p < p1; p++) {
        const float *xp = x + p * c, *gp = dy + p * c;
        float *dp = dx + p * c; /* may be gp: each element is read before it is written */
#pragma omp simd
        for (int ch = 0; ch < c; ch++) {
            float xv = xp[ch], v = (xv / sdf[ch]) * gamma[ch], g = gp[ch];
            g = relu && !(v > 0) ? 0.0f : g;
            dp[ch] = (float)(a[ch] * ((double)g - b[ch] * (xv - mean[ch])));
        }
    }
}

int wcm_cpu_bn_backward(wcm_context *ctx, const float *x, const float *dy, size_t m, int c, const float *gamma,
                        const double *mean, const double *sd, int relu, float *dx, float *dgamma) {
    /* y = x * g / s(x), s = sqrt(mean((x - mu)^2) + eps). With S = sum(dy x):
     *   dgamma = S / s,  dx = (g / s) (dy - S (x - mu) / (s^2 m)).
     * (the mu term of dvar/dx sums to zero against sum(x - mu) = 0). */
    double S[WCM_CHANNELS], a[WCM_CHANNELS], b[WCM_CHANNELS];
    float sdf[WCM_CHANNELS];
    for (int ch = 0; ch < c; ch++) sdf[ch] = (float)sd[ch];
    const int rc = channel_sums(ctx, relu ? SUM_DY_X_RELU : SUM_DY_X, x, dy, m, c, REDUCE_CHUNK, NULL, gamma, sdf, S);
    if (rc) return rc;
    for (int ch = 0; ch < c; ch++) {
        dgamma[ch] = (float)(S[ch] / sd[ch]);
        a[ch] = gamma[ch] / sd[ch];
        b[ch] = mean ? S[ch] / (sd[ch] * sd[ch] * (double)m) : 0.0;
    }
    static const double no_mean[WCM_CHANNELS];
    if (!mean) mean = no_mean;
    const size_t nchunks = chunks_of(m, REDUCE_CHUNK);
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < nchunks; k++)
        bn_grad_pixels(x, dy, k * REDUCE_CHUNK, (k + 1) * REDUCE_CHUNK < m ? (k + 1) * REDUCE_CHUNK : m, c, gamma, sdf,
                       mean, a, b, relu, dx);
    return WCM_OK;
}

int wcm_cpu_bn_running(wcm_context *ctx, wcm_bn_running_mode mode, int c, double *sd, float *running, double *acc,
                       double value) {
    switch (mode) {
        case WCM_BN_RUNNING_UPDATE:
            for (int ch = 0; ch < c; ch++)
                running[ch] = (float)(1.0 - value) * running[ch] + (float)value * (float)sd[ch];
            return WCM_OK;
        case WCM_BN_RUNNING_LOAD:
            for (int ch = 0; ch < c; ch++) sd[ch] = running[ch];
            return WCM_OK;
        case WCM_BN_RUNNING_ACCUMULATE:
            for (int ch = 0; ch < c; ch++) acc[ch] += sd[ch] * sd[ch];
            return WCM_OK;
        case WCM_BN_RUNNING_SET:
            for (int ch = 0; ch < c; ch++) running[ch] = (float)sqrt(acc[ch] / value);
            return WCM_OK;
    }
    return wcm_ctx_fail(ctx, WCM_ERR_ARG, "unknown running-statistics mode %d", (int)mode);
}

/* Batch norm y = x / running * gamma per output channel is a scale of the
 * preceding convolution's weights. */
int wcm_cpu_bn_fold(wcm_context *ctx, size_t rows, int cout, const float *w, const float *gamma, const float *running,
                    float *out) {
    (void)ctx;
    for (size_t r = 0; r < rows; r++)
        for (int c = 0; c < cout; c++) {
            const float scale = gamma ? gamma[c] / running[c] : 1.0f;
            out[r * cout + c] = w[r * cout + c] * scale;
        }
    return WCM_OK;
}

int wcm_cpu_bn_fold_backward(wcm_context *ctx, size_t rows, int cout, const float *w, const float *gamma,
                             const float *running, const float *dout, float *dw, float *dgamma) {
    (void)ctx;
    for (int c = 0; c < cout; c++) {
        const float scale = gamma ? gamma[c] / running[c] : 1.0f;
        double s = 0;
        for (size_t r = 0; r < rows; r++) {
            dw[r * cout + c] = dout[r * cout + c] * scale;
            s += (double)dout[r * cout + c] * w[r * cout + c];
        }
        if (gamma) dgamma[c] = (float)(s / running[c]);
    }
    return WCM_OK;
}

int wcm_cpu_relu(wcm_context *ctx, size_t n, const float *x, float *y) {
    (void)ctx;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0.0f;
    return WCM_OK;
}

int wcm_cpu_relu_backward(wcm_context *ctx, size_t n, const float *y, const float *dy, float *dx) {
    (void)ctx;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) dx[i] = y[i] > 0 ? dy[i] : 0.0f;
    return WCM_OK;
}

int wcm_cpu_loss_sse(wcm_context *ctx, size_t count, const float *out, const float *target, int batch, float *dout,
                     double *loss) {
    const size_t nchunks = chunks_of(count, REDUCE_CHUNK);
    const wcm_arena_mark mark = wcm_arena_save(&ctx->arena);
    double *partial = wcm_arena_push(&ctx->arena, sizeof(double) * (nchunks ? nchunks : 1));
    if (!partial) return wcm_ctx_fail(ctx, WCM_ERR_NOMEM, "out of memory for %zu partial sums", nchunks);
    const double scale = 2.0 / batch;
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < nchunks; k++) {
        size_t end = (k + 1) * REDUCE_CHUNK < count ? (k + 1) * REDUCE_CHUNK : count;
        double s = 0;
        for (size_t i = k * REDUCE_CHUNK; i < end; i++) {
            double d = (double)out[i] - target[i];
            s += d * d;
            if (dout) dout[i] = (float)(scale * d);
        }
        partial[k] = s;
    }
    double total = 0;
    for (size_t k = 0; k < nchunks; k++) total += partial[k];
    wcm_arena_restore(&ctx->arena, mark);
    *loss = total / batch;
    return WCM_OK;
}

int wcm_cpu_adam(wcm_context *ctx, size_t n, float *p, const float *g, float *m, float *v, const wcm_adam_hyper *h) {
    (void)ctx;
    const float step_size = h->step_size, bc2_sqrt = h->bc2_sqrt, eps = h->eps, b1 = h->beta1, b2 = h->beta2,
                one_b1 = h->one_minus_beta1, one_b2 = h->one_minus_beta2;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        m[i] = m[i] * b1 + g[i] * one_b1;
        v[i] = v[i] * b2 + g[i] * g[i] * one_b2;
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] += -step_size * (m[i] / denom);
    }
    return WCM_OK;
}

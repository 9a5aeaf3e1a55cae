/* The reference backend: every op written as directly as its definition
 * (wcm/backend.h) allows, in double precision, one value after the other
 * (convolutions in parallel over outputs). Slow and obviously correct; every
 * backend is tested against it (tests/test_backend_ops.c). The chunking a
 * fast backend promises does not change a sum in exact arithmetic, so the
 * reference ignores it. Networks run through the generic plan. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backend_impl.h"
#include "rng_internal.h"
#include "wcm/rng_torch.h"
#include "wcm/train.h"

/* One accumulator row of `count` doubles per thread of the coming parallel region. */
static double *thread_rows(wcm_context *ctx, size_t count) {
    double *p = wcm_arena_push(&ctx->arena, sizeof(double) * count * (size_t)omp_get_max_threads());
    if (!p) wcm_ctx_fail(ctx, WCM_ERR_NOMEM, "out of memory for %zu accumulators per thread", count);
    return p;
}

static int ref_conv_forward(wcm_context *ctx, const wcm_conv_shape *s, const float *x, const float *w, float *y,
                            int flags) {
    const int H = s->h, W = s->w, CI = s->cin, CO = s->cout, K = s->k, R = K / 2;
    const wcm_arena_mark mark = wcm_arena_save(&ctx->arena);
    double *rows = thread_rows(ctx, (size_t)CO);
    if (!rows) return WCM_ERR_NOMEM;
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < s->n; n++)
        for (int i = 0; i < H; i++) {
            double *acc = rows + (size_t)omp_get_thread_num() * CO;
            for (int j = 0; j < W; j++) {
                for (int co = 0; co < CO; co++) acc[co] = 0;
                for (int ky = 0; ky < K; ky++) {
                    int yy = i + ky - R;
                    if (yy < 0 || yy >= H) continue;
                    for (int kx = 0; kx < K; kx++) {
                        int xx = j + kx - R;
                        if (xx < 0 || xx >= W) continue;
                        const float *xp = x + (((size_t)n * H + yy) * W + xx) * CI;
                        const float *wp = w + ((size_t)ky * K + kx) * CI * CO;
                        for (int ci = 0; ci < CI; ci++)
                            for (int co = 0; co < CO; co++) acc[co] += (double)xp[ci] * wp[(size_t)ci * CO + co];
                    }
                }
                float *yp = y + (((size_t)n * H + i) * W + j) * CO;
                for (int co = 0; co < CO; co++) {
                    double v = acc[co];
                    if ((flags & WCM_CONV_RELU) && v < 0) v = 0;
                    yp[co] = (float)v;
                }
            }
        }
    wcm_arena_restore(&ctx->arena, mark);
    return WCM_OK;
}

static int ref_conv_backward_data(wcm_context *ctx, const wcm_conv_shape *s, const float *dy, const float *w,
                                  float *dx) {
    const int H = s->h, W = s->w, CI = s->cin, CO = s->cout, K = s->k, R = K / 2;
    const wcm_arena_mark mark = wcm_arena_save(&ctx->arena);
    double *rows = thread_rows(ctx, (size_t)CI);
    if (!rows) return WCM_ERR_NOMEM;
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < s->n; n++)
        for (int i = 0; i < H; i++) {
            double *acc = rows + (size_t)omp_get_thread_num() * CI;
            for (int j = 0; j < W; j++) {
                for (int ci = 0; ci < CI; ci++) acc[ci] = 0;
                /* x[i,j] contributed to y[i - ky + R, j - kx + R] through w[ky][kx]. */
                for (int ky = 0; ky < K; ky++) {
                    int yy = i - ky + R;
                    if (yy < 0 || yy >= H) continue;
                    for (int kx = 0; kx < K; kx++) {
                        int xx = j - kx + R;
                        if (xx < 0 || xx >= W) continue;
                        const float *gp = dy + (((size_t)n * H + yy) * W + xx) * CO;
                        const float *wp = w + ((size_t)ky * K + kx) * CI * CO;
                        for (int ci = 0; ci < CI; ci++) {
                            double a = 0;
                            for (int co = 0; co < CO; co++) a += (double)gp[co] * wp[(size_t)ci * CO + co];
                            acc[ci] += a;
                        }
                    }
                }
                float *dp = dx + (((size_t)n * H + i) * W + j) * CI;
                for (int ci = 0; ci < CI; ci++) dp[ci] = (float)acc[ci];
            }
        }
    wcm_arena_restore(&ctx->arena, mark);
    return WCM_OK;
}

static int ref_conv_backward_weights(wcm_context *ctx, const wcm_conv_shape *s, const float *x, const float *dy,
                                     float *dw, int flags) {
    const int H = s->h, W = s->w, CI = s->cin, CO = s->cout, K = s->k, R = K / 2;
    const int taps = K * K;
    const wcm_arena_mark mark = wcm_arena_save(&ctx->arena);
    double *rows = thread_rows(ctx, (size_t)CO);
    if (!rows) return WCM_ERR_NOMEM;
#pragma omp parallel for collapse(2) schedule(static)
    for (int t = 0; t < taps; t++)
        for (int ci = 0; ci < CI; ci++) {
            int ky = t / K, kx = t % K;
            double *acc = rows + (size_t)omp_get_thread_num() * CO;
            for (int co = 0; co < CO; co++) acc[co] = 0;
            for (int n = 0; n < s->n; n++)
                for (int i = 0; i < H; i++) {
                    int yy = i + ky - R;
                    if (yy < 0 || yy >= H) continue;
                    for (int j = 0; j < W; j++) {
                        int xx = j + kx - R;
                        if (xx < 0 || xx >= W) continue;
                        double xv = x[(((size_t)n * H + yy) * W + xx) * CI + ci];
                        const float *gp = dy + (((size_t)n * H + i) * W + j) * CO;
                        for (int co = 0; co < CO; co++) acc[co] += xv * gp[co];
                    }
                }
            float *wp = dw + ((size_t)t * CI + ci) * CO;
            for (int co = 0; co < CO; co++) wp[co] = (float)((flags & WCM_CONV_ACCUMULATE) ? wp[co] + acc[co] : acc[co]);
        }
    wcm_arena_restore(&ctx->arena, mark);
    return WCM_OK;
}

/* Per-channel mean and biased variance in double. */
static void channel_moments(const float *x, size_t m, int c, double *mean, double *var) {
    for (int ch = 0; ch < c; ch++) mean[ch] = var[ch] = 0;
    for (size_t p = 0; p < m; p++)
        for (int ch = 0; ch < c; ch++) mean[ch] += x[p * c + ch];
    for (int ch = 0; ch < c; ch++) mean[ch] /= (double)m;
    for (size_t p = 0; p < m; p++)
        for (int ch = 0; ch < c; ch++) var[ch] += (x[p * c + ch] - mean[ch]) * (x[p * c + ch] - mean[ch]);
    for (int ch = 0; ch < c; ch++) var[ch] /= (double)m;
}

static int ref_bn_stats(wcm_context *ctx, const float *x, size_t m, int c, double *mean, double *sd) {
    (void)ctx;
    double var[WCM_CHANNELS];
    channel_moments(x, m, c, mean, var);
    for (int ch = 0; ch < c; ch++) sd[ch] = sqrt(var[ch] + WCM_BN_EPS);
    return WCM_OK;
}

static int ref_bn_apply(wcm_context *ctx, const float *x, size_t m, int c, const float *gamma, const double *sd, int relu,
                     float *y) {
    (void)ctx;
    for (size_t i = 0; i < m * c; i++) {
        const double v = x[i] / sd[i % c] * gamma[i % c];
        y[i] = (float)(relu && !(v > 0) ? 0.0 : v);
    }
    return WCM_OK;
}

static int ref_bn_backward(wcm_context *ctx, const float *x, const float *dy, size_t m, int c, const float *gamma,
                        const double *mean, const double *sd, int relu, float *dx, float *dgamma) {
    (void)ctx;
    /* With g = dL/dy through the ReLU and S = sum g x: dgamma = S / sd, and
     * dx = gamma / sd (g - [batch statistics] S (x - mean) / (sd^2 m)). */
    double S[WCM_CHANNELS] = {0};
    for (size_t i = 0; i < m * c; i++) {
        const int ch = (int)(i % c);
        const double g = relu && !(x[i] / sd[ch] * gamma[ch] > 0) ? 0.0 : dy[i];
        S[ch] += g * x[i];
    }
    for (size_t i = 0; i < m * c; i++) {
        const int ch = (int)(i % c);
        const double g = relu && !(x[i] / sd[ch] * gamma[ch] > 0) ? 0.0 : dy[i];
        const double through_sd = mean ? S[ch] * (x[i] - mean[ch]) / (sd[ch] * sd[ch] * (double)m) : 0.0;
        dx[i] = (float)(gamma[ch] / sd[ch] * (g - through_sd));
    }
    for (int ch = 0; ch < c; ch++) dgamma[ch] = (float)(S[ch] / sd[ch]);
    return WCM_OK;
}

static int ref_bn_running(wcm_context *ctx, wcm_bn_running_mode mode, int c, double *sd, float *running, double *acc,
                       double value) {
    for (int ch = 0; ch < c; ch++) {
        if (mode == WCM_BN_RUNNING_UPDATE) running[ch] = (float)((1.0 - value) * running[ch] + value * sd[ch]);
        else if (mode == WCM_BN_RUNNING_LOAD) sd[ch] = running[ch];
        else if (mode == WCM_BN_RUNNING_ACCUMULATE) acc[ch] += sd[ch] * sd[ch];
        else if (mode == WCM_BN_RUNNING_SET) running[ch] = (float)sqrt(acc[ch] / value);
        else return wcm_ctx_fail(ctx, WCM_ERR_ARG, "unknown running-statistics mode %d", (int)mode);
    }
    return WCM_OK;
}

static int ref_bn_fold(wcm_context *ctx, size_t rows, int cout, const float *w, const float *gamma, const float *running,
                    float *out) {
    (void)ctx;
    for (size_t i = 0; i < rows * cout; i++) {
        const int c = (int)(i % cout);
        out[i] = (float)(gamma ? (double)w[i] * gamma[c] / running[c] : w[i]);
    }
    return WCM_OK;
}

static int ref_bn_fold_backward(wcm_context *ctx, size_t rows, int cout, const float *w, const float *gamma,
                             const float *running, const float *dout, float *dw, float *dgamma) {
    (void)ctx;
    for (int c = 0; c < cout; c++) {
        double s = 0;
        for (size_t r = 0; r < rows; r++) {
            const size_t i = r * cout + c;
            dw[i] = (float)(gamma ? (double)dout[i] * gamma[c] / running[c] : dout[i]);
            s += (double)dout[i] * w[i];
        }
        if (gamma) dgamma[c] = (float)(s / running[c]);
    }
    return WCM_OK;
}

static int ref_relu(wcm_context *ctx, size_t n, const float *x, float *y) {
    (void)ctx;
    for (size_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0.0f;
    return WCM_OK;
}

static int ref_relu_backward(wcm_context *ctx, size_t n, const float *y, const float *dy, float *dx) {
    (void)ctx;
    for (size_t i = 0; i < n; i++) dx[i] = y[i] > 0 ? dy[i] : 0.0f;
    return WCM_OK;
}

static int ref_loss_sse(wcm_context *ctx, size_t n, const float *out, const float *target, int batch, float *dout,
                     double *loss) {
    (void)ctx;
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = (double)out[i] - target[i];
        s += d * d;
        if (dout) dout[i] = (float)(2.0 * d / batch);
    }
    *loss = s / batch;
    return WCM_OK;
}

static int ref_adam(wcm_context *ctx, size_t n, float *p, const float *g, float *m, float *v, const wcm_adam_hyper *h) {
    (void)ctx;
    for (size_t i = 0; i < n; i++) {
        const double mi = (double)m[i] * h->beta1 + (double)g[i] * h->one_minus_beta1;
        const double vi = (double)v[i] * h->beta2 + (double)g[i] * g[i] * h->one_minus_beta2;
        m[i] = (float)mi;
        v[i] = (float)vi;
        p[i] = (float)(p[i] - (double)h->step_size * mi / (sqrt(vi) / h->bc2_sqrt + h->eps));
    }
    return WCM_OK;
}

static int ref_fill(wcm_context *ctx, size_t n, float *x, float value) {
    (void)ctx;
    for (size_t i = 0; i < n; i++) x[i] = value;
    return WCM_OK;
}

static int ref_axpy(wcm_context *ctx, size_t n, float alpha, const float *x, float *y) {
    (void)ctx;
    for (size_t i = 0; i < n; i++) y[i] = (float)((double)y[i] + (double)alpha * x[i]);
    return WCM_OK;
}

static int ref_scale(wcm_context *ctx, size_t n, float alpha, float *x, const float *base) {
    (void)ctx;
    for (size_t i = 0; i < n; i++) x[i] = (float)((base ? (double)base[i] : 0.0) + (double)alpha * x[i]);
    return WCM_OK;
}

static int ref_noise_step(wcm_context *ctx, size_t n, float *y, float h, const float *d, float gamma, const float *z) {
    (void)ctx;
    for (size_t i = 0; i < n; i++) y[i] = (float)((double)y[i] - (double)h * d[i] + (double)gamma * z[i]);
    return WCM_OK;
}

static int ref_add_noise(wcm_context *ctx, size_t n, const float *x, const float *z, double sigma, float *y) {
    (void)ctx;
    for (size_t i = 0; i < n; i++) y[i] = (float)((double)x[i] + sigma * z[i]);
    return WCM_OK;
}

static int ref_add_noise_255(wcm_context *ctx, size_t n, const float *x, const float *z, float sigma255, float *y) {
    (void)ctx;
    for (size_t i = 0; i < n; i++) y[i] = (float)((double)x[i] + (double)z[i] * sigma255 / 255.0);
    return WCM_OK;
}

static int ref_rescale(wcm_context *ctx, size_t n, float *x, float lo, double range, double max) {
    (void)ctx;
    for (size_t i = 0; i < n; i++) x[i] = range > 0 ? (float)(((double)x[i] - lo) / range * max) : 0.0f;
    return WCM_OK;
}

static int ref_reduce(wcm_context *ctx, wcm_reduce_kind kind, size_t n, const float *x, const float *y, double center,
                   size_t chunk, double *result) {
    (void)ctx, (void)chunk;
    if (kind == WCM_REDUCE_MINMAX) {
        float lo = x[0], hi = x[0];
        for (size_t i = 1; i < n; i++) {
            if (x[i] < lo) lo = x[i];
            if (x[i] > hi) hi = x[i];
        }
        result[0] = lo;
        result[1] = hi;
        return WCM_OK;
    }
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        const double v = kind == WCM_REDUCE_SUMSQ ? x[i] - center : kind == WCM_REDUCE_SQDIFF ? (double)x[i] - y[i] : x[i];
        s += kind == WCM_REDUCE_SUM ? v : kind == WCM_REDUCE_NONFINITE ? !isfinite(x[i]) : v * v;
    }
    result[0] = s;
    return WCM_OK;
}

static int ref_channel_reduce(wcm_context *ctx, wcm_reduce_kind kind, size_t m, int c, const float *x,
                           const double *center, size_t chunk, double *result) {
    (void)ctx, (void)chunk;
    for (int ch = 0; ch < c; ch++) result[ch] = 0;
    for (size_t i = 0; i < m * c; i++) {
        const int ch = (int)(i % c);
        result[ch] += kind == WCM_REDUCE_SUM ? x[i] : (x[i] - center[ch]) * (x[i] - center[ch]);
    }
    return WCM_OK;
}

static int ref_channel_partials(wcm_context *ctx, wcm_reduce_kind kind, size_t m, int c, const float *x,
                                const double *center, size_t part, double *parts) {
    for (size_t p0 = 0, k = 0; p0 < m; p0 += part, k++)
        ref_channel_reduce(ctx, kind, (m - p0 < part ? m - p0 : part), c, x + p0 * c, center, 0, parts + k * c);
    return WCM_OK;
}

static int ref_haar_split(wcm_context *ctx, int n, int h, int w, const float *x, float *out) {
    (void)ctx;
    static const int sign[4][4] = {{1, 1, 1, 1}, {1, 1, -1, -1}, {1, -1, 1, -1}, {1, -1, -1, 1}};
    for (int b = 0; b < n; b++)
        for (int i = 0; i < h / 2; i++)
            for (int k = 0; k < w / 2; k++) {
                const float *p = x + ((size_t)b * h + 2 * i) * w + 2 * k;
                const double block[4] = {p[0], p[1], p[w], p[w + 1]};
                for (int q = 0; q < 4; q++) {
                    double s = 0;
                    for (int e = 0; e < 4; e++) s += sign[q][e] * block[e];
                    out[(((size_t)b * (h / 2) + i) * (w / 2) + k) * 4 + q] = (float)(s / 4);
                }
            }
    return WCM_OK;
}

static int ref_haar_merge(wcm_context *ctx, int n, int h, int w, const float *low, const float *coeffs, int c, float *out) {
    (void)ctx;
    const int off = c == 4 ? 1 : 0;
    /* The inverse of the split: pixel e of a block is low + sum_q sign[q][e] detail_q. */
    static const int sign[3][4] = {{1, 1, -1, -1}, {1, -1, 1, -1}, {1, -1, -1, 1}};
    for (int b = 0; b < n; b++)
        for (int i = 0; i < h; i++)
            for (int k = 0; k < w; k++) {
                const size_t px = ((size_t)b * h + i) * w + k;
                const float *q = coeffs + px * c + off;
                for (int e = 0; e < 4; e++) {
                    double v = low[px];
                    for (int d = 0; d < 3; d++) v += sign[d][e] * (double)q[d];
                    out[((size_t)b * 2 * h + 2 * i + e / 2) * 2 * w + 2 * k + e % 2] = (float)v;
                }
            }
    return WCM_OK;
}

static int ref_channels(wcm_context *ctx, wcm_channels_mode mode, size_t pixels, int count, const float *src, int src_c,
                     int src_off, float *dst, int dst_c, int dst_off) {
    (void)ctx;
    for (size_t p = 0; p < pixels; p++)
        for (int k = 0; k < count; k++) {
            float *d = &dst[p * dst_c + dst_off + k];
            if (mode == WCM_CHANNELS_ZERO) *d = 0.0f;
            else if (mode == WCM_CHANNELS_COPY) *d = src[p * src_c + src_off + k];
            else *d = (float)((double)*d - src[p * src_c + src_off + k]);
        }
    return WCM_OK;
}

static int ref_upsample(wcm_context *ctx, int n, int h, int w, int c, int factor, const float *x, float *y) {
    (void)ctx;
    const size_t oh = (size_t)h * factor, ow = (size_t)w * factor;
    for (size_t i = 0; i < (size_t)n * oh * ow * c; i++) {
        const size_t ch = i % c, j = i / c % ow, r = i / c / ow % oh, b = i / c / ow / oh;
        y[i] = x[((b * h + r / factor) * w + j / factor) * c + ch];
    }
    return WCM_OK;
}

/* Values offset .. offset + n - 1 of a Philox stream, one at a time. */
static void philox_values(int uniform, uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float *out) {
    for (size_t i = 0; i < n; i++) {
        float pair[2];
        wcm_rng_pair(uniform, seed, stream, (offset + i) / 2, pair);
        out[i] = pair[(offset + i) % 2];
    }
}

static int ref_fill_normal(wcm_context *ctx, uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float *out) {
    (void)ctx;
    philox_values(0, seed, stream, offset, n, out);
    return WCM_OK;
}

static int ref_fill_uniform(wcm_context *ctx, uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float *out) {
    (void)ctx;
    philox_values(1, seed, stream, offset, n, out);
    return WCM_OK;
}

static int ref_fill_normal_torch(wcm_context *ctx, uint64_t seed, size_t n, float *out) {
    (void)ctx;
    wcm_randn_torch(seed, out, n);
    return WCM_OK;
}

static const wcm_backend reference_backend = {
    .name = "reference",
    .host_visible = 1,
    .conv_forward = ref_conv_forward,
    .conv_backward_data = ref_conv_backward_data,
    .conv_backward_weights = ref_conv_backward_weights,
    .bn_stats = ref_bn_stats,
    .bn_apply = ref_bn_apply,
    .bn_backward = ref_bn_backward,
    .bn_running = ref_bn_running,
    .bn_fold = ref_bn_fold,
    .bn_fold_backward = ref_bn_fold_backward,
    .relu = ref_relu,
    .relu_backward = ref_relu_backward,
    .loss_sse = ref_loss_sse,
    .adam = ref_adam,
    .fill = ref_fill,
    .axpy = ref_axpy,
    .scale = ref_scale,
    .noise_step = ref_noise_step,
    .add_noise = ref_add_noise,
    .add_noise_255 = ref_add_noise_255,
    .rescale = ref_rescale,
    .reduce = ref_reduce,
    .channel_reduce = ref_channel_reduce,
    .channel_partials = ref_channel_partials,
    .haar_split = ref_haar_split,
    .haar_merge = ref_haar_merge,
    .channels = ref_channels,
    .upsample = ref_upsample,
    .fill_normal = ref_fill_normal,
    .fill_uniform = ref_fill_uniform,
    .fill_normal_torch = ref_fill_normal_torch,
    .net_compile = wcm_generic_net_compile,
    .net_load = wcm_generic_net_load,
    .net_fits = wcm_generic_net_fits,
    .net_forward = wcm_generic_net_forward,
    .net_free = wcm_generic_net_free,
};

const wcm_backend *wcm_backend_reference(void) { return &reference_backend; }

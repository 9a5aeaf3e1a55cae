/* The reference backend: plain loops accumulating in double. Slow and
 * obviously correct; every backend is tested against it
 * (tests/test_backend_ops.c). Convolutions here, the other ops in
 * backend_ref_ops.c, networks through the generic plan. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backend_ref.h"

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

static const wcm_backend reference_backend = {
    .name = "reference",
    .host_visible = 1,
    .conv_forward = ref_conv_forward,
    .conv_backward_data = ref_conv_backward_data,
    .conv_backward_weights = ref_conv_backward_weights,
    .bn_stats = wcm_ref_bn_stats,
    .bn_apply = wcm_ref_bn_apply,
    .bn_backward = wcm_ref_bn_backward,
    .bn_running = wcm_ref_bn_running,
    .bn_fold = wcm_ref_bn_fold,
    .bn_fold_backward = wcm_ref_bn_fold_backward,
    .relu = wcm_ref_relu,
    .relu_backward = wcm_ref_relu_backward,
    .loss_sse = wcm_ref_loss_sse,
    .adam = wcm_ref_adam,
    .fill = wcm_ref_fill,
    .axpy = wcm_ref_axpy,
    .scale = wcm_ref_scale,
    .noise_step = wcm_ref_noise_step,
    .add_noise = wcm_ref_add_noise,
    .add_noise_255 = wcm_ref_add_noise_255,
    .rescale = wcm_ref_rescale,
    .reduce = wcm_ref_reduce,
    .channel_reduce = wcm_ref_channel_reduce,
    .haar_split = wcm_ref_haar_split,
    .haar_merge = wcm_ref_haar_merge,
    .channels = wcm_ref_channels,
    .upsample = wcm_ref_upsample,
    .fill_normal = wcm_ref_fill_normal,
    .fill_uniform = wcm_ref_fill_uniform,
    .fill_normal_torch = wcm_ref_fill_normal_torch,
    .net_compile = wcm_generic_net_compile,
    .net_load = wcm_generic_net_load,
    .net_fits = wcm_generic_net_fits,
    .net_forward = wcm_generic_net_forward,
    .net_free = wcm_generic_net_free,
};

const wcm_backend *wcm_backend_reference(void) { return &reference_backend; }

/* The CPU backend: its variants are the SIMD levels (AVX-512, AVX2+FMA,
 * portable; the default is the best one, capped by WCM_SIMD), and each
 * convolution is routed to Winograd (F(4x4), or F(6x6) at the sizes where
 * wcm_winograd6_pays), the dot kernel (few output channels) or the direct
 * tiled kernels, with the context's level and Winograd setting.
 *
 * Backward-data is the forward convolution of dy with the kernel flipped in
 * space and transposed in channels, w'[ky][kx][co][ci] = w[K-1-ky][K-1-kx][ci][co],
 * so it shares every forward path. Backward-weights of Winograd-eligible
 * layers runs through the Winograd transforms too (winograd.c) when Winograd
 * is on, else the direct kernels. Plain loops remain for kernel sizes over
 * WCM_CPU_MAX_K. Working memory comes from the context's arena; when it
 * cannot grow, the op fails with WCM_ERR_NOMEM. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_conv.h"

/* ---- SIMD level ---- */

static int g_level = -1; /* the default level; -1: not decided yet */

int wcm_cpu_max_simd_level(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return WCM_SIMD_PORTABLE;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw"))
        return WCM_SIMD_AVX512;
    return WCM_SIMD_AVX2;
#else
    return WCM_SIMD_PORTABLE;
#endif
}

static int env_level_cap(void) {
    const char *e = getenv("WCM_SIMD");
    if (!e || !*e) return WCM_SIMD_AVX512;
    if (!strcmp(e, "portable") || !strcmp(e, "scalar") || !strcmp(e, "none")) return WCM_SIMD_PORTABLE;
    if (!strcmp(e, "avx2")) return WCM_SIMD_AVX2;
    return WCM_SIMD_AVX512;
}

const wcm_simd_ops *wcm_cpu_ops_for(int level) {
    switch (level) {
        case WCM_SIMD_AVX512: return &wcm_simd_avx512;
        case WCM_SIMD_AVX2: return &wcm_simd_avx2;
        default: return &wcm_simd_portable;
    }
}

static int default_level(void) {
    int level = __atomic_load_n(&g_level, __ATOMIC_ACQUIRE);
    if (level < 0) {
        /* Racing first calls compute the same value. */
        const int hw = wcm_cpu_max_simd_level(), cap = env_level_cap();
        level = hw < cap ? hw : cap;
        __atomic_store_n(&g_level, level, __ATOMIC_RELEASE);
    }
    return level;
}

const wcm_simd_ops *wcm_cpu_ops(void) { return wcm_cpu_ops_for(default_level()); }

int wcm_cpu_force_simd_level(int level) {
    const int hw = wcm_cpu_max_simd_level();
    if (level < WCM_SIMD_PORTABLE) level = WCM_SIMD_PORTABLE;
    if (level > hw) level = hw;
    __atomic_store_n(&g_level, level, __ATOMIC_RELEASE);
    return level;
}

/* Variants: the levels up to the best this CPU has (their indices are the levels). */
static int variant_count(void) { return wcm_cpu_max_simd_level() + 1; }
static const char *variant_name(int v) { return wcm_cpu_ops_for(v)->name; }

static const wcm_backend cpu_backend;

wcm_cpu_exec wcm_cpu_exec_of(wcm_context *ctx) {
    /* A backend that wraps the CPU's entries (another table) runs them at the default level. */
    const int variant = wcm_context_backend(ctx) == &cpu_backend ? wcm_context_variant(ctx) : default_level();
    return (wcm_cpu_exec){wcm_cpu_ops_for(variant), variant, wcm_context_winograd(ctx), &ctx->arena, 0, 0};
}

/* ---- plain loops (kernel sizes beyond WCM_CPU_MAX_K) ---- */

void wcm_cpu_plain_forward(const wcm_conv_shape *s, const float *x, const float *w, float *y, int flags) {
    const int H = s->h, W = s->w, CI = s->cin, CO = s->cout, K = s->k, R = K / 2;
    const long pixels = (long)s->n * H * W;
#pragma omp parallel for schedule(static)
    for (long p = 0; p < pixels; p++) {
        const int j = (int)(p % W), i = (int)(p / W % H);
        const long n = p / ((long)W * H);
        float *yp = y + (size_t)p * CO;
        for (int co = 0; co < CO; co++) yp[co] = 0.0f;
        for (int ky = 0; ky < K; ky++) {
            const int yy = i + ky - R;
            if (yy < 0 || yy >= H) continue;
            for (int kx = 0; kx < K; kx++) {
                const int xx = j + kx - R;
                if (xx < 0 || xx >= W) continue;
                const float *xp = x + (((size_t)n * H + yy) * W + xx) * CI;
                const float *wp = w + ((size_t)ky * K + kx) * CI * CO;
                for (int ci = 0; ci < CI; ci++)
                    for (int co = 0; co < CO; co++) yp[co] += xp[ci] * wp[(size_t)ci * CO + co];
            }
        }
        if (flags & WCM_CONV_RELU)
            for (int co = 0; co < CO; co++)
                if (!(yp[co] > 0.0f)) yp[co] = 0.0f;
    }
}

static void plain_backward_data(const wcm_conv_shape *s, const float *dy, const float *w, float *dx) {
    const int H = s->h, W = s->w, CI = s->cin, CO = s->cout, K = s->k, R = K / 2;
    const long pixels = (long)s->n * H * W;
#pragma omp parallel for schedule(static)
    for (long p = 0; p < pixels; p++) {
        const int j = (int)(p % W), i = (int)(p / W % H);
        const long n = p / ((long)W * H);
        float *dp = dx + (size_t)p * CI;
        for (int ci = 0; ci < CI; ci++) dp[ci] = 0.0f;
        for (int ky = 0; ky < K; ky++) {
            const int yy = i - ky + R;
            if (yy < 0 || yy >= H) continue;
            for (int kx = 0; kx < K; kx++) {
                const int xx = j - kx + R;
                if (xx < 0 || xx >= W) continue;
                const float *gp = dy + (((size_t)n * H + yy) * W + xx) * CO;
                const float *wp = w + ((size_t)ky * K + kx) * CI * CO;
                for (int ci = 0; ci < CI; ci++) {
                    float a = 0.0f;
                    for (int co = 0; co < CO; co++) a += gp[co] * wp[(size_t)ci * CO + co];
                    dp[ci] += a;
                }
            }
        }
    }
}

static void plain_backward_weights(const wcm_conv_shape *s, const float *x, const float *dy, float *dw, int flags) {
    const int H = s->h, W = s->w, CI = s->cin, CO = s->cout, K = s->k, R = K / 2;
    const long rows = (long)K * K * CI;
#pragma omp parallel for schedule(static)
    for (long m = 0; m < rows; m++) {
        const int ky = (int)(m / ((long)K * CI)), kx = (int)(m / CI % K), ci = (int)(m % CI);
        float *wp = dw + (size_t)m * CO;
        if (!(flags & WCM_CONV_ACCUMULATE)) memset(wp, 0, sizeof(float) * (size_t)CO);
        for (int n = 0; n < s->n; n++)
            for (int i = 0; i < H; i++) {
                const int yy = i + ky - R;
                if (yy < 0 || yy >= H) continue;
                for (int j = 0; j < W; j++) {
                    const int xx = j + kx - R;
                    if (xx < 0 || xx >= W) continue;
                    const float xv = x[(((size_t)n * H + yy) * W + xx) * CI + ci];
                    const float *gp = dy + (((size_t)n * H + i) * W + j) * CO;
                    for (int co = 0; co < CO; co++) wp[co] += xv * gp[co];
                }
            }
    }
}

/* ---- routing ---- */

static int shape_empty(const wcm_conv_shape *s) { return s->n <= 0 || s->h <= 0 || s->w <= 0 || s->cin <= 0 || s->cout <= 0; }
static int fast_k(const wcm_conv_shape *s) { return s->k >= 1 && s->k <= WCM_CPU_MAX_K; }
/* Few output channels: one dot product per output instead of a column tile. */
static int dot_route(const wcm_conv_shape *s) { return s->cout <= WCM_DOT_MAX_COLS && s->k * s->cin >= 16; }

wcm_cpu_route wcm_cpu_route_of(const wcm_cpu_exec *e, const wcm_conv_shape *s) {
    if (!fast_k(s)) return WCM_ROUTE_PLAIN;
    if (e->winograd && wcm_winograd_qualifies(e->ops, s)) return WCM_ROUTE_WINOGRAD;
    return dot_route(s) ? WCM_ROUTE_DOT : WCM_ROUTE_DIRECT;
}

int wcm_cpu_conv_forward(const wcm_cpu_exec *e, const wcm_conv_shape *s, const float *x, const float *w, float *y,
                         int flags) {
    if (shape_empty(s)) return WCM_OK;
    const wcm_arena_mark mark = wcm_arena_save(e->arena);
    int rc = WCM_OK;
    switch (wcm_cpu_route_of(e, s)) {
        case WCM_ROUTE_PLAIN: wcm_cpu_plain_forward(s, x, w, y, flags); break;
        case WCM_ROUTE_WINOGRAD:
            if (wcm_winograd_forward(e->ops, s, x, w, y, flags, e->arena) != 0) rc = WCM_ERR_NOMEM;
            break;
        case WCM_ROUTE_DOT: {
            float *wt = wcm_arena_push(e->arena, sizeof(float) * (size_t)s->k * s->k * s->cin * s->cout);
            if (!wt) {
                rc = WCM_ERR_NOMEM;
                break;
            }
            wcm_dot_weights(s, w, wt);
            wcm_dot_forward(e->ops, s, x, wt, y, flags);
            break;
        }
        case WCM_ROUTE_DIRECT: wcm_direct_forward(e->ops, s, x, w, y, flags); break;
    }
    wcm_arena_restore(e->arena, mark);
    return rc;
}

static int conv_failed(wcm_context *ctx, int rc, const char *what, const wcm_conv_shape *s) {
    return wcm_ctx_fail(ctx, rc, "%s %dx%dx%d %d->%d k%d: out of memory for its working buffers", what, s->n, s->h,
                        s->w, s->cin, s->cout, s->k);
}

static int cpu_conv_forward(wcm_context *ctx, const wcm_conv_shape *s, const float *x, const float *w, float *y,
                            int flags) {
    const wcm_cpu_exec e = wcm_cpu_exec_of(ctx);
    const int rc = wcm_cpu_conv_forward(&e, s, x, w, y, flags & ~WCM_CPU_SERIAL);
    return rc ? conv_failed(ctx, rc, "forward", s) : WCM_OK;
}

static int cpu_conv_backward_data(wcm_context *ctx, const wcm_conv_shape *s, const float *dy, const float *w,
                                  float *dx) {
    if (shape_empty(s)) return WCM_OK;
    const int K = s->k, CI = s->cin, CO = s->cout;
    /* The flipped kernel keeps the centre R = K/2 only for odd K. */
    if (!fast_k(s) || K % 2 == 0) {
        plain_backward_data(s, dy, w, dx);
        return WCM_OK;
    }
    const wcm_cpu_exec e = wcm_cpu_exec_of(ctx);
    const wcm_arena_mark mark = wcm_arena_save(e.arena);
    float *wf = wcm_arena_push(e.arena, sizeof(float) * (size_t)K * K * CI * CO);
    if (!wf) return conv_failed(ctx, WCM_ERR_NOMEM, "backward-data", s);
    for (int t = 0; t < K * K; t++) {
        const float *src = w + (size_t)(K * K - 1 - t) * CI * CO;
        float *dst = wf + (size_t)t * CI * CO;
        for (int ci = 0; ci < CI; ci++)
            for (int co = 0; co < CO; co++) dst[(size_t)co * CI + ci] = src[(size_t)ci * CO + co];
    }
    const wcm_conv_shape t = {s->n, s->h, s->w, CO, CI, K};
    const int rc = wcm_cpu_conv_forward(&e, &t, dy, wf, dx, 0);
    wcm_arena_restore(e.arena, mark);
    return rc ? conv_failed(ctx, rc, "backward-data", s) : WCM_OK;
}

static int cpu_conv_backward_weights(wcm_context *ctx, const wcm_conv_shape *s, const float *x, const float *dy,
                                     float *dw, int flags) {
    if (shape_empty(s)) {
        if (!(flags & WCM_CONV_ACCUMULATE) && s->k > 0 && s->cin > 0 && s->cout > 0)
            memset(dw, 0, sizeof(float) * (size_t)s->k * s->k * s->cin * s->cout);
        return WCM_OK;
    }
    if (!fast_k(s)) {
        plain_backward_weights(s, x, dy, dw, flags);
        return WCM_OK;
    }
    const wcm_cpu_exec e = wcm_cpu_exec_of(ctx);
    const wcm_arena_mark mark = wcm_arena_save(e.arena);
    /* The forward route's choice: Winograd layers differentiate through the same transforms. */
    const int rc = wcm_cpu_route_of(&e, s) == WCM_ROUTE_WINOGRAD
                       ? wcm_winograd_backward_weights(e.ops, s, x, dy, dw, flags, e.arena)
                       : wcm_direct_backward_weights(e.ops, s, x, dy, dw, flags, e.arena);
    wcm_arena_restore(e.arena, mark);
    return rc ? conv_failed(ctx, WCM_ERR_NOMEM, "backward-weights", s) : WCM_OK;
}

static const wcm_backend cpu_backend = {
    .name = "cpu",
    .host_visible = 1,
    .variant_count = variant_count,
    .variant_name = variant_name,
    .variant_default = default_level,
    .conv_forward = cpu_conv_forward,
    .conv_backward_data = cpu_conv_backward_data,
    .conv_backward_weights = cpu_conv_backward_weights,
    .bn_stats = wcm_cpu_bn_stats,
    .bn_apply = wcm_cpu_bn_apply,
    .bn_backward = wcm_cpu_bn_backward,
    .bn_running = wcm_cpu_bn_running,
    .bn_fold = wcm_cpu_bn_fold,
    .bn_fold_backward = wcm_cpu_bn_fold_backward,
    .relu = wcm_cpu_relu,
    .relu_backward = wcm_cpu_relu_backward,
    .loss_sse = wcm_cpu_loss_sse,
    .adam = wcm_cpu_adam,
    .fill = wcm_cpu_fill,
    .axpy = wcm_cpu_axpy,
    .scale = wcm_cpu_scale,
    .noise_step = wcm_cpu_noise_step,
    .add_noise = wcm_cpu_add_noise,
    .add_noise_255 = wcm_cpu_add_noise_255,
    .rescale = wcm_cpu_rescale,
    .reduce = wcm_cpu_reduce,
    .channel_reduce = wcm_cpu_channel_reduce,
    .channel_partials = wcm_cpu_channel_partials,
    .haar_split = wcm_cpu_haar_split,
    .haar_merge = wcm_cpu_haar_merge,
    .channels = wcm_cpu_channels,
    .upsample = wcm_cpu_upsample,
    .fill_normal = wcm_cpu_fill_normal,
    .fill_uniform = wcm_cpu_fill_uniform,
    .fill_normal_torch = wcm_cpu_fill_normal_torch,
    .net_compile = wcm_cpu_net_compile,
    .net_load = wcm_cpu_net_load,
    .net_fits = wcm_cpu_net_fits,
    .net_forward = wcm_cpu_net_forward,
    .net_free = wcm_cpu_net_free,
};

const wcm_backend *wcm_backend_cpu(void) { return &cpu_backend; }

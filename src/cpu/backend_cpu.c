/* The CPU backend: picks the SIMD level once (AVX-512, AVX2+FMA or portable,
 * capped by WCM_SIMD), then routes each convolution to Winograd (F(4x4), or
 * F(6x6) at the sizes where wcm_winograd6_pays), the dot kernel (few output
 * channels) or the direct tiled kernels.
 *
 * Backward-data is the forward convolution of dy with the kernel flipped in
 * space and transposed in channels, w'[ky][kx][co][ci] = w[K-1-ky][K-1-kx][ci][co],
 * so it shares every forward path. Backward-weights of Winograd-eligible
 * layers runs through the Winograd transforms too (winograd.c) when Winograd
 * is on, else the direct kernels. Plain loops remain for kernel sizes over
 * WCM_CPU_MAX_K and for when scratch memory cannot be allocated (the backend
 * interface has no error return). */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_conv.h"

/* ---- SIMD level ---- */

static int g_level = -1; /* -1: not decided yet */
static int g_winograd = 1;

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

static const wcm_simd_ops *ops_for(int level) {
    switch (level) {
        case WCM_SIMD_AVX512: return &wcm_simd_avx512;
        case WCM_SIMD_AVX2: return &wcm_simd_avx2;
        default: return &wcm_simd_portable;
    }
}

const wcm_simd_ops *wcm_cpu_ops(void) {
    int level = __atomic_load_n(&g_level, __ATOMIC_ACQUIRE);
    if (level < 0) {
        /* Racing first calls compute the same value. */
        const int hw = wcm_cpu_max_simd_level(), cap = env_level_cap();
        level = hw < cap ? hw : cap;
        __atomic_store_n(&g_level, level, __ATOMIC_RELEASE);
    }
    return ops_for(level);
}

int wcm_cpu_force_simd_level(int level) {
    const int hw = wcm_cpu_max_simd_level();
    if (level < WCM_SIMD_PORTABLE) level = WCM_SIMD_PORTABLE;
    if (level > hw) level = hw;
    __atomic_store_n(&g_level, level, __ATOMIC_RELEASE);
    return level;
}

const char *wcm_cpu_simd_level(void) { return wcm_cpu_ops()->name; }

void wcm_set_winograd(int enabled) { __atomic_store_n(&g_winograd, enabled ? 1 : 0, __ATOMIC_RELAXED); }
int wcm_get_winograd(void) { return __atomic_load_n(&g_winograd, __ATOMIC_RELAXED); }

/* ---- plain loops (no scratch memory) ---- */

static void plain_forward(const wcm_conv_shape *s, const float *x, const float *w, float *y, int flags) {
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

typedef enum { ROUTE_PLAIN, ROUTE_WINOGRAD, ROUTE_DOT, ROUTE_DIRECT } forward_route;

/* The path a forward convolution of shape s takes, planned or not. */
static forward_route route_of(const wcm_conv_shape *s) {
    if (!fast_k(s)) return ROUTE_PLAIN;
    if (wcm_get_winograd() && wcm_winograd_qualifies(wcm_cpu_ops(), s)) return ROUTE_WINOGRAD;
    return dot_route(s) ? ROUTE_DOT : ROUTE_DIRECT;
}

/* Forward convolution through the fast paths; returns 0, or -1 when nothing
 * was computed (plain loops needed, or scratch memory missing). */
static int fast_forward(const wcm_conv_shape *s, const float *x, const float *w, float *y, int flags) {
    const wcm_simd_ops *ops = wcm_cpu_ops();
    switch (route_of(s)) {
        case ROUTE_PLAIN: return -1;
        case ROUTE_WINOGRAD:
            if (wcm_winograd_forward(ops, s, x, w, y, flags) == 0) return 0;
            break; /* no memory: the direct kernel */
        case ROUTE_DOT: {
            float *wt = wcm_alloc(sizeof(float) * (size_t)s->k * s->k * s->cin * s->cout);
            if (!wt) return -1;
            wcm_dot_weights(s, w, wt);
            wcm_dot_forward(ops, s, x, wt, y, flags);
            wcm_free(wt);
            return 0;
        }
        case ROUTE_DIRECT: break;
    }
    wcm_direct_forward(ops, s, x, w, y, flags);
    return 0;
}

static void cpu_conv_forward(const wcm_conv_shape *s, const float *x, const float *w, float *y, int flags) {
    if (shape_empty(s)) return;
    if (fast_forward(s, x, w, y, flags) == 0) return;
    plain_forward(s, x, w, y, flags);
}

static void cpu_conv_backward_data(const wcm_conv_shape *s, const float *dy, const float *w, float *dx) {
    if (shape_empty(s)) return;
    const int K = s->k, CI = s->cin, CO = s->cout;
    /* The flipped kernel keeps the centre R = K/2 only for odd K. */
    float *wf = fast_k(s) && K % 2 == 1 ? wcm_alloc(sizeof(float) * (size_t)K * K * CI * CO) : NULL;
    if (wf) {
        for (int t = 0; t < K * K; t++) {
            const float *src = w + (size_t)(K * K - 1 - t) * CI * CO;
            float *dst = wf + (size_t)t * CI * CO;
            for (int ci = 0; ci < CI; ci++)
                for (int co = 0; co < CO; co++) dst[(size_t)co * CI + ci] = src[(size_t)ci * CO + co];
        }
        const wcm_conv_shape t = {s->n, s->h, s->w, CO, CI, K};
        const int rc = fast_forward(&t, dy, wf, dx, 0);
        wcm_free(wf);
        if (rc == 0) return;
    }
    plain_backward_data(s, dy, w, dx);
}

static void cpu_conv_backward_weights(const wcm_conv_shape *s, const float *x, const float *dy, float *dw, int flags) {
    if (shape_empty(s)) {
        if (!(flags & WCM_CONV_ACCUMULATE) && s->k > 0 && s->cin > 0 && s->cout > 0)
            memset(dw, 0, sizeof(float) * (size_t)s->k * s->k * s->cin * s->cout);
        return;
    }
    if (!fast_k(s)) {
        plain_backward_weights(s, x, dy, dw, flags);
        return;
    }
    const wcm_simd_ops *ops = wcm_cpu_ops();
    /* The forward route's choice: Winograd layers differentiate through the same transforms. */
    if (route_of(s) == ROUTE_WINOGRAD && wcm_winograd_backward_weights(ops, s, x, dy, dw, flags) == 0) return;
    wcm_direct_backward_weights(ops, s, x, dy, dw, flags);
}

/* ---- inference plans ----
 * Layout: a header (an int of PLAN_* bits, padded to 64 bytes), the forward
 * weights, then the dot-kernel weights when the dot path applies, then the
 * Winograd transform U when Winograd was on and the layer qualifies, and
 * after it the F(6x6) transform U6 when the kernels have it (plans do not
 * know the image size; the layer takes F(6x6) at the sizes where it pays). */
enum { PLAN_HEADER = 16, PLAN_DOT = 1, PLAN_WINOGRAD = 2, PLAN_WINOGRAD6 = 4 };

/* Pixels per tile of a pointwise run: two 64-channel activation tiles per
 * thread (2 x 48 KB) stay in L2 while the run's layers pass over them. */
#define POINTWISE_PIXELS 192

static size_t weight_floats(const wcm_conv_shape *s) { return (size_t)s->k * s->k * s->cin * s->cout; }
/* A Winograd weight transform: one cin x cout matrix per transform point (36 or 64). */
static size_t u_floats(const wcm_conv_shape *s, int points) { return (size_t)points * s->cin * s->cout; }

static int plan_parts(const wcm_conv_shape *s) {
    if (!fast_k(s)) return 0;
    int parts = dot_route(s) ? PLAN_DOT : 0;
    wcm_conv_shape any = *s; /* qualification apart from the image size */
    any.h = any.w = 4;
    if (wcm_get_winograd() && wcm_winograd_qualifies(wcm_cpu_ops(), &any))
        parts |= PLAN_WINOGRAD | (wcm_cpu_ops()->winograd6 ? PLAN_WINOGRAD6 : 0);
    return parts;
}

static size_t cpu_plan_size(const wcm_conv_shape *s) {
    const int parts = plan_parts(s);
    return PLAN_HEADER + weight_floats(s) * (parts & PLAN_DOT ? 2 : 1) +
           (parts & PLAN_WINOGRAD ? u_floats(s, 36) : 0) + (parts & PLAN_WINOGRAD6 ? u_floats(s, 64) : 0);
}

static void cpu_plan(const wcm_conv_shape *s, const float *w, float *plan) {
    const int parts = plan_parts(s);
    memset(plan, 0, sizeof(float) * PLAN_HEADER);
    memcpy(plan, &parts, sizeof parts);
    float *p = plan + PLAN_HEADER;
    memcpy(p, w, sizeof(float) * weight_floats(s));
    p += weight_floats(s);
    if (parts & PLAN_DOT) {
        wcm_dot_weights(s, w, p);
        p += weight_floats(s);
    }
    if (parts & PLAN_WINOGRAD) {
        wcm_winograd_weights(wcm_cpu_ops(), s, w, p);
        p += u_floats(s, 36);
    }
    if (parts & PLAN_WINOGRAD6) wcm_winograd6_weights(wcm_cpu_ops(), s, w, p);
}

static size_t cpu_scratch_size(const wcm_conv_shape *s, int pointwise) {
    const size_t threads = (size_t)omp_get_max_threads();
    if (pointwise) return threads * 2 * POINTWISE_PIXELS * (size_t)(s->cin > s->cout ? s->cin : s->cout);
    return route_of(s) == ROUTE_WINOGRAD ? wcm_winograd_scratch_floats(s, (int)threads) : 0;
}

/* The Winograd transform U inside a layer's plan, or NULL when this layer
 * does not run through Winograd with it (route or settings changed). */
static const float *plan_winograd_u(const wcm_conv_shape *s, const float *plan) {
    int parts;
    memcpy(&parts, plan, sizeof parts);
    if (route_of(s) != ROUTE_WINOGRAD || !(parts & PLAN_WINOGRAD)) return NULL;
    return plan + PLAN_HEADER + weight_floats(s) * (parts & PLAN_DOT ? 2 : 1);
}

/* The F(6x6) transform U6 inside a layer's plan (after U), or NULL as above. */
static const float *plan_winograd6_u(const wcm_conv_shape *s, const float *plan) {
    int parts;
    memcpy(&parts, plan, sizeof parts);
    const float *u = plan_winograd_u(s, plan);
    return u && (parts & PLAN_WINOGRAD6) ? u + u_floats(s, 36) : NULL;
}

/* One layer from its plan, on the route an unplanned call would take; flags
 * may include WCM_CPU_SERIAL (direct and dot paths only). */
static void plan_layer(const wcm_conv_shape *s, const float *x, const float *plan, float *y, int flags, float *scratch) {
    int parts;
    memcpy(&parts, plan, sizeof parts);
    const float *w = plan + PLAN_HEADER;
    const float *extra = w + weight_floats(s);
    const wcm_simd_ops *ops = wcm_cpu_ops();
    switch (route_of(s)) {
        case ROUTE_PLAIN: plain_forward(s, x, w, y, flags); return;
        case ROUTE_WINOGRAD: {
            const int f6 = wcm_winograd6_pays(ops, s);
            const float *u = f6 ? plan_winograd6_u(s, plan) : plan_winograd_u(s, plan);
            if (u && scratch) {
                (f6 ? wcm_winograd6_forward_scratch : wcm_winograd_forward_scratch)(ops, s, x, u, y, flags, scratch);
                return;
            }
            break;
        }
        case ROUTE_DOT:
            if (parts & PLAN_DOT) {
                wcm_dot_forward(ops, s, x, extra, y, flags);
                return;
            }
            break;
        case ROUTE_DIRECT: wcm_direct_forward(ops, s, x, w, y, flags); return;
    }
    cpu_conv_forward(s, x, w, y, flags); /* planned under other settings: the allocating path */
}

static void cpu_forward_plan(const wcm_conv_shape *s, const float *x, const float *plan, float *y, int flags,
                             float *scratch) {
    if (shape_empty(s)) return;
    plan_layer(s, x, plan, y, flags & ~WCM_CPU_SERIAL, scratch);
}

static int cpu_can_shift(const wcm_conv_shape *s, const float *plan) {
    return !shape_empty(s) && plan_winograd_u(s, plan) && wcm_winograd_shift_pays(wcm_cpu_ops(), s);
}

static int cpu_forward_shifted(const wcm_conv_shape *s, float *x, const float *plan, int down, int flags,
                               float *scratch) {
    /* Never where the plain forward takes F(6x6): both must compute the same. */
    const int refused = shape_empty(s) || s->cin != s->cout || wcm_winograd6_pays(wcm_cpu_ops(), s);
    const float *u = refused ? NULL : plan_winograd_u(s, plan);
    if (!u) return -1;
    wcm_winograd_forward_shifted(wcm_cpu_ops(), s, x, u, down, flags & ~WCM_CPU_SERIAL, scratch);
    return 0;
}

static void cpu_forward_pointwise(int nlayers, const wcm_conv_shape *shapes, const float *const *plans, const int *flags,
                                  const float *x, float *y, float *scratch) {
    if (nlayers <= 0 || shape_empty(&shapes[0])) return;
    int maxc = 0;
    for (int l = 0; l < nlayers; l++) {
        maxc = shapes[l].cin > maxc ? shapes[l].cin : maxc;
        maxc = shapes[l].cout > maxc ? shapes[l].cout : maxc;
    }
    const long pixels = (long)shapes[0].n * shapes[0].h * shapes[0].w;
    const long tiles = (pixels + POINTWISE_PIXELS - 1) / POINTWISE_PIXELS;
    const int cin0 = shapes[0].cin, cout_last = shapes[nlayers - 1].cout;
#pragma omp parallel
    {
        float *buf[2];
        buf[0] = scratch + (size_t)omp_get_thread_num() * 2 * POINTWISE_PIXELS * (size_t)maxc;
        buf[1] = buf[0] + (size_t)POINTWISE_PIXELS * maxc;
#pragma omp for schedule(static)
        for (long t = 0; t < tiles; t++) {
            const long p0 = t * POINTWISE_PIXELS;
            const int np = (int)(pixels - p0 < POINTWISE_PIXELS ? pixels - p0 : POINTWISE_PIXELS);
            const float *src = x + (size_t)p0 * cin0;
            for (int l = 0; l < nlayers; l++) {
                float *dst = l == nlayers - 1 ? y + (size_t)p0 * cout_last : buf[l % 2];
                /* A tile is one row of np pixels: a 1x1 layer has no neighbours. */
                const wcm_conv_shape ts = {1, 1, np, shapes[l].cin, shapes[l].cout, 1};
                plan_layer(&ts, src, plans[l], dst, flags[l] | WCM_CPU_SERIAL, NULL);
                src = dst;
            }
        }
    }
}

static const wcm_backend cpu_backend = {
    .name = "cpu",
    .conv_forward = cpu_conv_forward,
    .conv_backward_data = cpu_conv_backward_data,
    .conv_backward_weights = cpu_conv_backward_weights,
    .plan_size = cpu_plan_size,
    .plan = cpu_plan,
    .scratch_size = cpu_scratch_size,
    .forward_plan = cpu_forward_plan,
    .forward_pointwise = cpu_forward_pointwise,
    .can_shift = cpu_can_shift,
    .forward_shifted = cpu_forward_shifted,
};

const wcm_backend *wcm_backend_cpu(void) { return &cpu_backend; }

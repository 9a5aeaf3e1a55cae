/* The CPU backend: picks the SIMD level once (AVX-512, AVX2+FMA or portable,
 * capped by WCM_SIMD), then routes each convolution to Winograd, the dot
 * kernel (few output channels) or the direct tiled kernels.
 *
 * Backward-data is the forward convolution of dy with the kernel flipped in
 * space and transposed in channels, w'[ky][kx][co][ci] = w[K-1-ky][K-1-kx][ci][co],
 * so it shares every forward path. Plain loops remain for kernel sizes over
 * WCM_CPU_MAX_K and for when scratch memory cannot be allocated (the backend
 * interface has no error return). */
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

/* Forward convolution through the fast paths; returns 0, or -1 when nothing
 * was computed (scratch memory missing). */
static int fast_forward(const wcm_conv_shape *s, const float *x, const float *w, float *y, int flags) {
    const wcm_simd_ops *ops = wcm_cpu_ops();
    if (wcm_get_winograd() && wcm_winograd_qualifies(ops, s)) {
        float *u = wcm_alloc(sizeof(float) * 36 * (size_t)s->cin * (size_t)s->cout);
        if (u) {
            wcm_winograd_weights(ops, s, w, u);
            const int rc = wcm_winograd_forward(ops, s, x, u, y, flags);
            wcm_free(u);
            if (rc == 0) return 0;
        }
    }
    if (s->cout <= WCM_DOT_MAX_COLS && s->k * s->cin >= 16) {
        float *wt = wcm_alloc(sizeof(float) * (size_t)s->k * s->k * s->cin * s->cout);
        if (!wt) return -1;
        wcm_dot_weights(s, w, wt);
        wcm_dot_forward(ops, s, x, wt, y, flags);
        wcm_free(wt);
        return 0;
    }
    wcm_direct_forward(ops, s, x, w, y, flags);
    return 0;
}

static void cpu_conv_forward(const wcm_conv_shape *s, const float *x, const float *w, float *y, int flags) {
    if (shape_empty(s)) return;
    if (fast_k(s) && fast_forward(s, x, w, y, flags) == 0) return;
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
    if (fast_k(s))
        wcm_direct_backward_weights(wcm_cpu_ops(), s, x, dy, dw, flags);
    else
        plain_backward_weights(s, x, dy, dw, flags);
}

static const wcm_backend cpu_backend = {
    .name = "cpu",
    .conv_forward = cpu_conv_forward,
    .conv_backward_data = cpu_conv_backward_data,
    .conv_backward_weights = cpu_conv_backward_weights,
};

const wcm_backend *wcm_backend_cpu(void) { return &cpu_backend; }

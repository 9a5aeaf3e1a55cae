/* The fast CPU convolution kernels against the double-precision reference:
 * forward (with and without ReLU, direct and Winograd F(4x4) and F(6x6)),
 * backward-data and backward-weights (with and without ACCUMULATE), on odd
 * image sizes and channel counts, at every SIMD level this CPU has; plus
 * bit-identical results for 1, 2 and 3 threads. */
#include <omp.h>

#include "cpu/cpu_conv.h"
#include "testutil.h"
#include "wcm/backend.h"
#include "wcm/common.h"

typedef struct {
    int n, h, w, cin, cout, k;
} shape6;

/* Contexts of the CPU and reference backends that follow the process
 * defaults (SIMD level, Winograd setting, the calling thread's OpenMP team). */
static wcm_context *cpu_ctx, *ref_ctx;

static const shape6 shapes[] = {
    {1, 1, 1, 64, 64, 3},  {1, 1, 7, 3, 64, 3},   {2, 5, 3, 64, 64, 3},  {1, 13, 17, 64, 64, 3},
    {3, 13, 17, 17, 17, 3}, {1, 40, 40, 64, 64, 3}, {1, 40, 40, 64, 64, 1}, {2, 13, 17, 64, 64, 1},
    {1, 13, 17, 1, 64, 3}, {2, 13, 17, 4, 64, 3},  {1, 13, 17, 64, 1, 3},  {2, 13, 17, 64, 3, 3},
    {1, 5, 3, 4, 3, 3},    {1, 7, 1, 17, 4, 1},    {3, 5, 3, 3, 17, 1},    {1, 13, 17, 64, 17, 3},
    {1, 13, 17, 17, 64, 3}, {1, 9, 10, 96, 80, 3}, {2, 8, 8, 32, 48, 3},   {1, 6, 7, 4, 5, 5},
    {1, 1, 1, 1, 1, 1},    {1, 2, 3, 1, 1, 3},     {1, 3, 2, 64, 64, 3},
    /* wider than one Winograd work item: two runs of tiles per tile row */
    {1, 5, 170, 64, 64, 3},
    /* 1x1 backward weights through the outer-product kernel: row units of 6, 6, 5;
     * two column blocks (64 + 16); a single unit of 3 rows */
    {1, 9, 11, 17, 32, 1}, {2, 7, 9, 20, 80, 1}, {2, 6, 5, 3, 16, 1},
    /* kernel sizes beyond the network's: even (no centre tap), and 9 (plain loops) */
    {2, 6, 7, 4, 5, 2},    {1, 5, 4, 3, 6, 4},     {1, 5, 6, 3, 4, 9},
};

static float *rand_buf(size_t n, unsigned long long *seed) {
    float *p = wcm_alloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) p[i] = t_rand(seed);
    return p;
}

/* Relative RMS error of `got` against `want`. */
static double rel_rms(const float *got, const float *want, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = (double)got[i] - want[i];
        num += d * d;
        den += (double)want[i] * want[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static int all_finite(const float *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(p[i])) return 0;
    return 1;
}

/* Outputs the reference clamps to zero must be exactly zero. */
static int relu_exact(const float *got, const float *want, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (want[i] == 0.0f && got[i] != 0.0f) return 0;
    return 1;
}

/* ReLU applied: no negative output, and where the reference clamps to zero
 * at most rounding-sized values (an exact zero cannot be promised where the
 * pre-activation is itself within rounding of zero). */
static int relu_applied(const float *got, const float *want, size_t n) {
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += (double)want[i] * want[i];
    const double small = 1e-4 * sqrt(ss / (double)(n ? n : 1));
    for (size_t i = 0; i < n; i++)
        if (!(got[i] >= 0.0f) || (want[i] == 0.0f && got[i] > small)) return 0;
    return 1;
}

static void check_shape(const shape6 *sh, const char *level, double tol) {
    const wcm_conv_shape s = {sh->n, sh->h, sh->w, sh->cin, sh->cout, sh->k};
    const size_t nx = (size_t)s.n * s.h * s.w * s.cin, ny = (size_t)s.n * s.h * s.w * s.cout;
    const size_t nw = (size_t)s.k * s.k * s.cin * s.cout;
    unsigned long long seed = 1234 + (unsigned long long)(sh->h * 131 + sh->w * 7 + sh->cin * 3 + sh->cout + sh->k);
    float *x = rand_buf(nx, &seed), *w = rand_buf(nw, &seed), *dy = rand_buf(ny, &seed);
    float *y1 = wcm_alloc(sizeof(float) * ny), *y2 = wcm_alloc(sizeof(float) * ny);
    float *dx1 = wcm_alloc(sizeof(float) * nx), *dx2 = wcm_alloc(sizeof(float) * nx);
    float *dw0 = rand_buf(nw, &seed), *dw1 = wcm_alloc(sizeof(float) * nw), *dw2 = wcm_alloc(sizeof(float) * nw);
    char name[160];
    snprintf(name, sizeof name, "%s n%d %dx%d %d->%d k%d", level, s.n, s.h, s.w, s.cin, s.cout, s.k);

    wcm_set_winograd(0);
    for (int relu = 0; relu <= 1; relu++) {
        const int flags = relu ? WCM_CONV_RELU : 0;
        wcm_op_conv_forward(cpu_ctx, &s, x, w, y1, flags, NULL);
        wcm_op_conv_forward(ref_ctx, &s, x, w, y2, flags, NULL);
        const double e = rel_rms(y1, y2, ny);
        CHECK(e <= tol && all_finite(y1, ny) && (!relu || relu_exact(y1, y2, ny)),
              "%s forward%s direct: rel RMS %.2e <= %.0e", name, relu ? "+relu" : "", e, tol);
    }
    wcm_op_conv_backward_data(cpu_ctx, &s, dy, w, dx1, NULL);
    wcm_op_conv_backward_data(ref_ctx, &s, dy, w, dx2, NULL);
    double e = rel_rms(dx1, dx2, nx);
    CHECK(e <= tol && all_finite(dx1, nx), "%s backward-data direct: rel RMS %.2e", name, e);

    const wcm_conv_shape wgs = s;
    if (wcm_winograd_qualifies(wcm_cpu_ops(), &wgs)) {
        wcm_set_winograd(1);
        wcm_op_conv_forward(cpu_ctx, &s, x, w, y1, WCM_CONV_RELU, NULL);
        wcm_op_conv_forward(ref_ctx, &s, x, w, y2, WCM_CONV_RELU, NULL);
        e = rel_rms(y1, y2, ny);
        CHECK(e <= 1e-5 && relu_exact(y1, y2, ny), "%s forward+relu winograd: rel RMS %.2e <= 1e-5", name, e);
        wcm_op_conv_forward(cpu_ctx, &s, x, w, y1, 0, NULL);
        wcm_op_conv_forward(ref_ctx, &s, x, w, y2, 0, NULL);
        e = rel_rms(y1, y2, ny);
        CHECK(e <= 1e-5, "%s forward winograd: rel RMS %.2e <= 1e-5", name, e);
        wcm_op_conv_backward_data(cpu_ctx, &s, dy, w, dx1, NULL);
        e = rel_rms(dx1, dx2, nx);
        CHECK(e <= 1e-5, "%s backward-data winograd: rel RMS %.2e <= 1e-5", name, e);
        wcm_op_conv_backward_weights(cpu_ctx, &s, x, dy, dw1, 0, NULL);
        wcm_op_conv_backward_weights(ref_ctx, &s, x, dy, dw2, 0, NULL);
        e = rel_rms(dw1, dw2, nw);
        CHECK(e <= 1e-5 && all_finite(dw1, nw), "%s backward-weights winograd: rel RMS %.2e <= 1e-5", name, e);
        memcpy(dw1, dw0, sizeof(float) * nw);
        memcpy(dw2, dw0, sizeof(float) * nw);
        wcm_op_conv_backward_weights(cpu_ctx, &s, x, dy, dw1, WCM_CONV_ACCUMULATE, NULL);
        wcm_op_conv_backward_weights(ref_ctx, &s, x, dy, dw2, WCM_CONV_ACCUMULATE, NULL);
        e = rel_rms(dw1, dw2, nw);
        CHECK(e <= 1e-5, "%s backward-weights winograd accumulate: rel RMS %.2e <= 1e-5", name, e);
        wcm_set_winograd(0);
    }

    wcm_op_conv_backward_weights(cpu_ctx, &s, x, dy, dw1, 0, NULL);
    wcm_op_conv_backward_weights(ref_ctx, &s, x, dy, dw2, 0, NULL);
    e = rel_rms(dw1, dw2, nw);
    CHECK(e <= tol && all_finite(dw1, nw), "%s backward-weights: rel RMS %.2e", name, e);
    memcpy(dw1, dw0, sizeof(float) * nw);
    memcpy(dw2, dw0, sizeof(float) * nw);
    wcm_op_conv_backward_weights(cpu_ctx, &s, x, dy, dw1, WCM_CONV_ACCUMULATE, NULL);
    wcm_op_conv_backward_weights(ref_ctx, &s, x, dy, dw2, WCM_CONV_ACCUMULATE, NULL);
    e = rel_rms(dw1, dw2, nw);
    CHECK(e <= tol, "%s backward-weights accumulate: rel RMS %.2e", name, e);
    wcm_set_winograd(1);

    wcm_free(x);
    wcm_free(w);
    wcm_free(dy);
    wcm_free(y1);
    wcm_free(y2);
    wcm_free(dx1);
    wcm_free(dx2);
    wcm_free(dw0);
    wcm_free(dw1);
    wcm_free(dw2);
}

/* Runs every operation with 1, 2 and 3 threads; results must match bit for bit. */
static void check_threads(const shape6 *sh, const char *level) {
    const wcm_conv_shape s = {sh->n, sh->h, sh->w, sh->cin, sh->cout, sh->k};
    const size_t nx = (size_t)s.n * s.h * s.w * s.cin, ny = (size_t)s.n * s.h * s.w * s.cout;
    const size_t nw = (size_t)s.k * s.k * s.cin * s.cout;
    unsigned long long seed = 99;
    float *x = rand_buf(nx, &seed), *w = rand_buf(nw, &seed), *dy = rand_buf(ny, &seed);
    float *out[3][6], *dw_start = rand_buf(nw, &seed);
    for (int t = 0; t < 3; t++) {
        out[t][0] = wcm_alloc(sizeof(float) * ny);
        out[t][1] = wcm_alloc(sizeof(float) * ny);
        out[t][2] = wcm_alloc(sizeof(float) * nx);
        out[t][3] = wcm_alloc(sizeof(float) * nw);
        out[t][4] = wcm_alloc(sizeof(float) * nw);
        out[t][5] = wcm_alloc(sizeof(float) * nw);
        memcpy(out[t][4], dw_start, sizeof(float) * nw);
        omp_set_num_threads(t + 1);
        wcm_set_winograd(0);
        wcm_op_conv_forward(cpu_ctx, &s, x, w, out[t][0], WCM_CONV_RELU, NULL);
        wcm_op_conv_backward_weights(cpu_ctx, &s, x, dy, out[t][5], 0, NULL);
        wcm_set_winograd(1);
        wcm_op_conv_forward(cpu_ctx, &s, x, w, out[t][1], 0, NULL);
        wcm_op_conv_backward_data(cpu_ctx, &s, dy, w, out[t][2], NULL);
        wcm_op_conv_backward_weights(cpu_ctx, &s, x, dy, out[t][3], 0, NULL);
        wcm_op_conv_backward_weights(cpu_ctx, &s, x, dy, out[t][4], WCM_CONV_ACCUMULATE, NULL);
    }
    omp_set_num_threads(omp_get_num_procs());
    static const char *what[6] = {"forward+relu direct", "forward (winograd when eligible)", "backward-data",
                                  "backward-weights", "backward-weights accumulate", "backward-weights direct"};
    const size_t sizes[6] = {ny, ny, nx, nw, nw, nw};
    for (int o = 0; o < 6; o++) {
        const int same = !memcmp(out[0][o], out[1][o], sizeof(float) * sizes[o]) &&
                         !memcmp(out[0][o], out[2][o], sizeof(float) * sizes[o]);
        CHECK(same, "%s %dx%d %d->%d k%d: %s identical for 1, 2, 3 threads", level, s.h, s.w, s.cin, s.cout, s.k,
              what[o]);
    }
    for (int t = 0; t < 3; t++)
        for (int o = 0; o < 6; o++) wcm_free(out[t][o]);
    wcm_free(dw_start);
    wcm_free(x);
    wcm_free(w);
    wcm_free(dy);
}

/* Winograd on non-negative (post-ReLU like) inputs, where transforms cancel more. */
static void check_winograd_positive(void) {
    const wcm_conv_shape s = {2, 40, 40, 64, 64, 3};
    if (!wcm_winograd_qualifies(wcm_cpu_ops(), &s)) return;
    const size_t nx = (size_t)2 * 40 * 40 * 64, nw = (size_t)9 * 64 * 64;
    unsigned long long seed = 5;
    float *x = rand_buf(nx, &seed), *w = rand_buf(nw, &seed);
    float *y1 = wcm_alloc(sizeof(float) * nx), *y2 = wcm_alloc(sizeof(float) * nx);
    for (size_t i = 0; i < nx; i++) x[i] = fabsf(x[i]);
    wcm_set_winograd(1);
    wcm_op_conv_forward(cpu_ctx, &s, x, w, y1, 0, NULL);
    wcm_op_conv_forward(ref_ctx, &s, x, w, y2, 0, NULL);
    const double e = rel_rms(y1, y2, nx);
    CHECK(e <= 1e-5, "winograd 40x40 64->64 on inputs in [0,1): rel RMS %.2e <= 1e-5", e);
    wcm_free(x);
    wcm_free(w);
    wcm_free(y1);
    wcm_free(y2);
}

/* Winograd F(6x6,3x3) where the kernels have it: through conv_forward at a
 * size that takes it (96x100: partial tiles at the right edge), and directly
 * on odd shapes (partial tiles everywhere, a batch, cin != cout, more than
 * one work item per tile row): relative RMS error against the double
 * reference <= 1e-5, ReLU zeros exact, 1, 2 and 3 threads bit-identical. */
static void check_winograd6(const char *level) {
    const wcm_simd_ops *ops = wcm_cpu_ops();
    const wcm_conv_shape big = {1, 96, 100, 64, 64, 3};
    if (!ops->winograd6) {
        printf("skip F(6x6) checks: no F(6x6) kernels at level %s\n", level);
        return;
    }
    CHECK(wcm_winograd6_pays(ops, &big), "%s: 96x100 64->64 takes F(6x6)", level);
    static const shape6 odd[] = {{1, 96, 100, 64, 64, 3}, {2, 13, 19, 64, 64, 3}, {1, 7, 45, 16, 32, 3},
                                 {1, 8, 250, 64, 64, 3},  {3, 1, 1, 32, 16, 3}};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        const wcm_conv_shape s = {odd[i].n, odd[i].h, odd[i].w, odd[i].cin, odd[i].cout, 3};
        const size_t nx = (size_t)s.n * s.h * s.w * s.cin, ny = (size_t)s.n * s.h * s.w * s.cout;
        const size_t nw = (size_t)9 * s.cin * s.cout;
        unsigned long long seed = 77 + i;
        float *x = rand_buf(nx, &seed), *w = rand_buf(nw, &seed);
        float *want = wcm_alloc(sizeof(float) * ny), *y[3];
        float *u6 = wcm_alloc(sizeof(float) * 64 * s.cin * s.cout);
        float *scratch = wcm_alloc(sizeof(float) * wcm_winograd_scratch_floats(&s, 3));
        wcm_op_conv_forward(ref_ctx, &s, x, w, want, WCM_CONV_RELU, NULL);
        wcm_winograd6_weights(ops, &s, w, u6);
        for (int t = 0; t < 3; t++) {
            y[t] = wcm_alloc(sizeof(float) * ny);
            omp_set_num_threads(t + 1);
            if (i == 0 && t == 1) /* the router's path */
                wcm_op_conv_forward(cpu_ctx, &s, x, w, y[t], WCM_CONV_RELU, NULL);
            else
                wcm_winograd6_forward_scratch(ops, &s, x, u6, y[t], WCM_CONV_RELU, scratch);
        }
        omp_set_num_threads(omp_get_num_procs());
        const double e = rel_rms(y[0], want, ny);
        int same = 1;
        for (size_t k = 0; k < ny; k++) same &= y[0][k] == y[1][k] && y[0][k] == y[2][k];
        CHECK(e <= 1e-5 && relu_applied(y[0], want, ny), "%s F(6x6) forward+relu n%d %dx%d %d->%d: rel RMS %.2e <= 1e-5",
              level, s.n, s.h, s.w, s.cin, s.cout, e);
        CHECK(same, "%s F(6x6) n%d %dx%d %d->%d: 1, 2 and 3 threads%s bit-identical", level, s.n, s.h, s.w, s.cin,
              s.cout, i == 0 ? " (2 through conv_forward)" : "");
        for (int t = 0; t < 3; t++) wcm_free(y[t]);
        wcm_free(x);
        wcm_free(w);
        wcm_free(want);
        wcm_free(u6);
        wcm_free(scratch);
    }
}

int main(void) {
    const int max_level = wcm_cpu_max_simd_level();
    printf("CPU supports up to %s\n", max_level == WCM_SIMD_AVX512 ? "avx512" : max_level == WCM_SIMD_AVX2 ? "avx2" : "portable");
    wcm_context_options o;
    wcm_error err;
    wcm_context_options_default(&o);
    o.backend = wcm_backend_cpu();
    REQUIRE_OK(wcm_context_create(&cpu_ctx, &o, &err), &err);
    o.backend = wcm_backend_reference();
    REQUIRE_OK(wcm_context_create(&ref_ctx, &o, &err), &err);
    CHECK(wcm_backend_claims(wcm_backend_cpu(), WCM_OP_CONV_FORWARD) &&
              wcm_backend_claims(wcm_backend_cpu(), WCM_OP_CONV_BACKWARD_DATA) &&
              wcm_backend_claims(wcm_backend_cpu(), WCM_OP_CONV_BACKWARD_WEIGHTS),
          "cpu backend has all three kernels");
    static const shape6 thread_shapes[] = {
        {2, 13, 17, 64, 64, 3}, {1, 40, 40, 64, 64, 1}, {3, 20, 30, 64, 64, 1}, {2, 13, 17, 64, 3, 3},
        {2, 9, 7, 4, 64, 3}, {4, 40, 40, 4, 64, 3}, {5, 40, 40, 64, 64, 3}, {1, 5, 170, 64, 64, 3},
        {4, 40, 40, 20, 80, 1}};
    for (int level = WCM_SIMD_PORTABLE; level <= max_level; level++) {
        CHECK(wcm_cpu_force_simd_level(level) == level, "forced SIMD level %d", level);
        const char *name = wcm_cpu_simd_level();
        printf("--- level %s ---\n", name);
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) check_shape(&shapes[i], name, 2e-6);
        for (size_t i = 0; i < sizeof thread_shapes / sizeof thread_shapes[0]; i++) check_threads(&thread_shapes[i], name);
        check_winograd_positive();
        check_winograd6(name);
    }
    wcm_cpu_force_simd_level(max_level);
    wcm_context_free(cpu_ctx);
    wcm_context_free(ref_ctx);
    return t_done("test_conv");
}

/* Convolution kernel benchmark: measured fp32 FMA peak, then per-layer
 * timings of the CPU kernels (GFLOP/s = 2 * nominal MACs / time, and the
 * fraction of the measured peak). Winograd rows count the direct
 * convolution's MACs ("effective" GFLOP/s). "fwd winograd" is a plain
 * conv_forward call (the weights transformed per call, the scratch from the
 * context's arena),
 * "fwd wg planned" the forward from a plan as networks run it, "fwd wg
 * shifted" the same writing over its own input (networks' 64->64 layers; no
 * row at the sizes where the forward takes F(6x6,3x3), e.g. 160x160), and
 * "fwd fused run x3" three 1x1 layers computed tile by tile as the networks
 * run them. Not a test.
 *
 * With --check, each row also gives the relative RMS error of the result
 * against the double-precision reference backend (slow for large sizes).
 *
 * With --rounds R, every row is measured R times, the rows taking turns, and
 * the table (printed at the end) gives each row's best time against the
 * highest peak window of all its rounds: on a shared machine a slow stretch
 * then spoils one round of a row rather than the row.
 *
 * usage: bench_conv [--quick] [--threads N] [--simd portable|avx2|avx512]
 *                   [--min-time SECONDS] [--rounds R] [--only TEXT[|TEXT...]] [--check]
 * --only keeps the rows whose "LAYER KERNEL SIZE" label (single spaces, e.g.
 * "3x3 64->64 fwd direct 1x160x160") contains one of the given texts. */
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_conv.h"
#include "wcm/backend.h"
#include "wcm/common.h"

/* ---- FMA peak: 24 independent accumulator chains per thread ---- */

#define PEAK_CHAINS 24

__attribute__((target("avx512f,fma"), noinline)) static float peak_avx512(long iters, float scale) {
    __m512 a[PEAK_CHAINS];
    const __m512 b = _mm512_set1_ps(scale), c = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < PEAK_CHAINS; i++) a[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 24
        for (int i = 0; i < PEAK_CHAINS; i++) a[i] = _mm512_fmadd_ps(a[i], b, c);
    }
    __m512 s = a[0];
    for (int i = 1; i < PEAK_CHAINS; i++) s = _mm512_add_ps(s, a[i]);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"), noinline)) static float peak_avx2(long iters, float scale) {
    __m256 a[12];
    const __m256 b = _mm256_set1_ps(scale), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], b, c);
    }
    __m256 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, a[i]);
    float o[8];
    _mm256_storeu_ps(o, s);
    return o[0] + o[7];
}

/* Floating-point operations of one iteration of the FMA loop, per thread. */
static double peak_flops_per_iter(int level) { return level == WCM_SIMD_AVX512 ? PEAK_CHAINS * 32.0 : 12 * 16.0; }

/* GFLOP/s of one run of the FMA loop, `iters` iterations per thread. */
static double peak_run(int level, int threads, long iters) {
    volatile float sink = 0;
    float s = 0;
    const double t0 = wcm_seconds();
#pragma omp parallel num_threads(threads) reduction(+ : s)
    s += level == WCM_SIMD_AVX512 ? peak_avx512(iters, 0.9999f) : peak_avx2(iters, 0.9999f);
    const double t = wcm_seconds() - t0;
    sink += s;
    (void)sink;
    return (double)threads * iters * peak_flops_per_iter(level) / t / 1e9;
}

/* Best of `reps` runs, GFLOP/s with `threads` threads. */
static double measure_peak(int level, int threads, int reps) {
    double best = 0;
    for (int r = 0; r < reps; r++) {
        const double g = peak_run(level, threads, 400000);
        if (g > best) best = g;
    }
    return best;
}

/* One run lasting about `seconds` (the length of the kernel call it is
 * compared with: short and long windows see different shares of the
 * neighbours' interference). per_thread: the 1-thread peak. */
static double peak_window(int level, int threads, double seconds, double per_thread) {
    const long iters = (long)(seconds * per_thread * 1e9 / peak_flops_per_iter(level));
    return peak_run(level, threads, iters < 1000 ? 1000 : iters);
}

/* ---- layers ---- */

typedef enum {
    OP_FWD,
    OP_FWD_WG,
    OP_FWD_WG_PLANNED,
    OP_FWD_WG_SHIFTED,
    OP_BWD_DATA,
    OP_BWD_DATA_WG,
    OP_BWD_WEIGHTS,
    OP_BWD_WEIGHTS_WG,
    OP_FWD_FUSED
} op_kind;
static const char *op_names[] = {"fwd direct",      "fwd winograd", "fwd wg planned", "fwd wg shifted",
                                 "bwd-data direct", "bwd-data winograd", "bwd-weights",    "bwd-weights wg",
                                 "fwd fused run x3"};
static int winograd_op(op_kind op) {
    return op == OP_FWD_WG || op == OP_FWD_WG_PLANNED || op == OP_FWD_WG_SHIFTED || op == OP_BWD_DATA_WG ||
           op == OP_BWD_WEIGHTS_WG;
}
/* A run of 1x1 layers as networks compute it (tile by tile, in cache). */
#define FUSED_RUN 3

typedef struct {
    const char *layer;
    int n, h, w, cin, cout, k;
    op_kind op;
} bench_case;

static double g_min_time = 0.3;

/* Best seconds per call over repeated timing windows. */
static float *g_out, *g_dw, *g_plan, *g_scratch;
/* The shifted forward: one buffer with WCM_SHIFT_ROWS spare rows; calls
 * alternate up and down as in a network. */
static float *g_shift_buf;
static int g_shift_down;

/* The CPU backend's ops through the default context; the layer plans it
 * keeps inside (plans, shifted and fused forwards) through its internal
 * entries with the same settings (e). */
static void run_case(const wcm_cpu_exec *e, const bench_case *c, const wcm_conv_shape *s, const float *x,
                     const float *w, const float *y) {
    switch (c->op) {
        case OP_FWD:
        case OP_FWD_WG: wcm_op_conv_forward(NULL, s, x, w, g_out, WCM_CONV_RELU, NULL); break;
        case OP_BWD_DATA:
        case OP_BWD_DATA_WG: wcm_op_conv_backward_data(NULL, s, y, w, g_out, NULL); break;
        case OP_BWD_WEIGHTS:
        case OP_BWD_WEIGHTS_WG: wcm_op_conv_backward_weights(NULL, s, x, y, g_dw, 0, NULL); break;
        case OP_FWD_WG_PLANNED: wcm_cpu_forward_plan(e, s, x, g_plan, g_out, WCM_CONV_RELU, g_scratch); break;
        case OP_FWD_WG_SHIFTED: {
            const size_t margin = (size_t)WCM_SHIFT_ROWS * s->w * s->cin;
            wcm_cpu_forward_shifted(e, s, g_shift_down ? g_shift_buf : g_shift_buf + margin, g_plan, g_shift_down,
                                    WCM_CONV_RELU, g_scratch);
            g_shift_down ^= 1;
            break;
        }
        case OP_FWD_FUSED: {
            const wcm_conv_shape shapes[FUSED_RUN] = {*s, *s, *s};
            const float *plans[FUSED_RUN] = {g_plan, g_plan, g_plan};
            const int flags[FUSED_RUN] = {WCM_CONV_RELU, WCM_CONV_RELU, WCM_CONV_RELU};
            wcm_cpu_forward_pointwise(e, FUSED_RUN, shapes, plans, flags, x, g_out, g_scratch);
            break;
        }
    }
}

/* Peak measurement interleaved with the kernel calls (level, threads, the
 * 1-thread peak; level < 0: none), and the best window it saw. */
static int g_peak_level = -1, g_threads = 1;
static double g_peak1, g_row_peak;

static double time_case(const bench_case *c, const float *x, const float *w, const float *y) {
    const wcm_conv_shape s = {c->n, c->h, c->w, c->cin, c->cout, c->k};
    const int shifted = c->op == OP_FWD_WG_SHIFTED, planned = shifted || c->op == OP_FWD_WG_PLANNED;
    wcm_set_winograd(winograd_op(c->op));
    const wcm_cpu_exec e = wcm_cpu_exec_of(wcm_context_default());
    if (c->op == OP_FWD_FUSED || planned) {
        const size_t img = (size_t)s.n * s.h * s.w * s.cin;
        g_plan = wcm_alloc(sizeof(float) * wcm_cpu_plan_size(&e, &s));
        g_scratch = wcm_alloc(sizeof(float) * wcm_cpu_scratch_size(&e, &s, !planned));
        g_shift_buf = shifted ? wcm_alloc(sizeof(float) * (img + (size_t)WCM_SHIFT_ROWS * s.w * s.cin)) : NULL;
        if (!g_plan || !g_scratch || (shifted && !g_shift_buf)) return 1e30;
        wcm_cpu_plan(&e, &s, w, g_plan);
        if (shifted) {
            memcpy(g_shift_buf + (size_t)WCM_SHIFT_ROWS * s.w * s.cin, x, sizeof(float) * img);
            g_shift_down = 0;
        }
    }
    double best = 1e30, total = 0;
    int calls = 0;
    for (int warm = 0; warm < 2; warm++) {
        const double t0 = wcm_seconds();
        run_case(&e, c, &s, x, w, y);
        const double t = wcm_seconds() - t0;
        if (warm) {
            best = t;
            total += t;
            calls++;
        }
    }
    g_row_peak = 0;
    while (total < g_min_time || calls < 3) {
        /* A peak window of the same length just before each call: both are
         * best-of-N over the same stretch of time. */
        if (g_peak_level >= 0) {
            const double p = peak_window(g_peak_level, g_threads, best, g_peak1);
            if (p > g_row_peak) g_row_peak = p;
        }
        const double t0 = wcm_seconds();
        run_case(&e, c, &s, x, w, y);
        const double t = wcm_seconds() - t0;
        if (t < best) best = t;
        total += t;
        calls++;
    }
    wcm_set_winograd(1);
    if (c->op == OP_FWD_FUSED || planned) {
        wcm_free(g_plan);
        wcm_free(g_scratch);
        wcm_free(g_shift_buf);
        g_plan = g_scratch = g_shift_buf = NULL;
    }
    return best;
}

/* Relative RMS error of the last run_case result (g_out or g_dw) against
 * the reference backend. */
static double check_case(const bench_case *c, const float *x, const float *w, const float *y) {
    wcm_context *ref;
    wcm_context_options o;
    wcm_context_options_default(&o);
    o.backend = wcm_backend_reference();
    if (wcm_context_create(&ref, &o, NULL)) return -1;
    const wcm_conv_shape s = {c->n, c->h, c->w, c->cin, c->cout, c->k};
    const size_t nx = (size_t)s.n * s.h * s.w * s.cin, ny = (size_t)s.n * s.h * s.w * s.cout;
    const size_t nw = (size_t)s.k * s.k * s.cin * s.cout;
    size_t n = 0;
    const float *got = NULL;
    float *want = NULL;
    switch (c->op) {
        case OP_FWD:
        case OP_FWD_WG:
        case OP_FWD_WG_PLANNED:
            n = ny, got = g_out, want = wcm_alloc(sizeof(float) * n);
            if (want) wcm_op_conv_forward(ref, &s, x, w, want, WCM_CONV_RELU, NULL);
            break;
        case OP_BWD_DATA:
        case OP_BWD_DATA_WG:
            n = nx, got = g_out, want = wcm_alloc(sizeof(float) * n);
            if (want) wcm_op_conv_backward_data(ref, &s, y, w, want, NULL);
            break;
        case OP_BWD_WEIGHTS:
        case OP_BWD_WEIGHTS_WG:
            n = nw, got = g_dw, want = wcm_alloc(sizeof(float) * n);
            if (want) wcm_op_conv_backward_weights(ref, &s, x, y, want, 0, NULL);
            break;
        case OP_FWD_WG_SHIFTED: /* its input is the previous call's output: test_plan checks it instead */
        case OP_FWD_FUSED: break; /* not checked */
    }
    wcm_context_free(ref);
    if (!want) return -1;
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = (double)got[i] - want[i];
        num += d * d;
        den += (double)want[i] * want[i];
    }
    wcm_free(want);
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* Whether label contains one of the '|'-separated parts of pattern. */
static int matches(const char *label, const char *pattern) {
    for (const char *p = pattern;;) {
        const char *end = strchr(p, '|');
        const size_t len = end ? (size_t)(end - p) : strlen(p);
        if (memmem(label, strlen(label), p, len)) return 1;
        if (!end) return 0;
        p = end + 1;
    }
}

int main(int argc, char **argv) {
    int threads = 0, quick = 0, check = 0, rounds = 1;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            quick = 1;
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--min-time") && i + 1 < argc) {
            g_min_time = atof(argv[++i]);
        } else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) {
            rounds = atoi(argv[++i]);
            if (rounds < 1) rounds = 1;
        } else if (!strcmp(argv[i], "--check")) {
            check = 1;
        } else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            only = argv[++i];
        } else if (!strcmp(argv[i], "--simd") && i + 1 < argc) {
            const char *l = argv[++i];
            wcm_cpu_force_simd_level(!strcmp(l, "portable") ? WCM_SIMD_PORTABLE
                                     : !strcmp(l, "avx2")   ? WCM_SIMD_AVX2
                                                            : WCM_SIMD_AVX512);
        } else {
            fprintf(stderr, "usage: %s [--quick] [--threads N] [--simd LEVEL] [--min-time S] [--rounds R] [--only TEXT[|TEXT...]] [--check]\n", argv[0]);
            return 2;
        }
    }
    if (threads > 0) wcm_set_threads(threads);
    threads = wcm_get_threads();
    const int level = wcm_cpu_ops()->level;
    printf("SIMD level: %s, threads: %d\n", wcm_cpu_simd_level(), threads);
    const int peak_level = level == WCM_SIMD_PORTABLE ? wcm_cpu_max_simd_level() : level;
    double peak_max = 0;
    if (peak_level != WCM_SIMD_PORTABLE) {
        /* Let the clocks settle under FMA load before anything is timed. */
        const double t0 = wcm_seconds();
        while (wcm_seconds() - t0 < 1.0) measure_peak(peak_level, threads, 1);
        const double peak1 = measure_peak(peak_level, 1, 5);
        peak_max = measure_peak(peak_level, threads, 5);
        printf("measured fp32 FMA peak (%s): %.1f GFLOP/s with 1 thread, %.1f GFLOP/s with %d threads\n",
               peak_level == WCM_SIMD_AVX512 ? "zmm" : "ymm", peak1, peak_max, threads);
        printf("%%peak: against the best FMA-loop window interleaved with the row's calls, each window as long\n"
               "as one call (clocks and neighbours drift; both sides are best-of-N over the same time)\n\n");
        g_peak_level = peak_level;
        g_threads = threads;
        g_peak1 = peak1;
    }

    static const struct {
        int n, hw;
    } sizes[] = {{1, 40}, {1, 160}, {1, 320}, {16, 40}, {64, 40}};
    static const struct {
        const char *name;
        int cin, cout, k;
    } layers[] = {{"3x3 64->64", 64, 64, 3}, {"1x1 64->64", 64, 64, 1}, {"3x3 1->64", 1, 64, 3},
                  {"3x3 4->64", 4, 64, 3},   {"3x3 64->1", 64, 1, 3},   {"3x3 64->3", 64, 3, 3}};
    const int nsizes = quick ? 2 : (int)(sizeof sizes / sizeof sizes[0]);
    size_t max_elems = 0;
    for (int si = 0; si < nsizes; si++) {
        const size_t e = (size_t)sizes[si].n * sizes[si].hw * sizes[si].hw * 64;
        if (e > max_elems) max_elems = e;
    }
    float *x = wcm_alloc(sizeof(float) * max_elems), *y = wcm_alloc(sizeof(float) * max_elems);
    float *w = wcm_alloc(sizeof(float) * 9 * 64 * 64);
    g_out = wcm_alloc(sizeof(float) * max_elems);
    g_dw = wcm_alloc(sizeof(float) * 9 * 64 * 64);
    if (!x || !y || !w || !g_out || !g_dw) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    unsigned long long st = 7;
    for (size_t i = 0; i < max_elems; i++) {
        st = st * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = (float)((double)(st >> 11) / 9007199254740992.0 - 0.5);
        y[i] = x[i] * 0.5f;
    }
    for (int i = 0; i < 9 * 64 * 64; i++) w[i] = x[i] * 0.05f;

    /* The rows, in table order. */
    enum { MAX_ROWS = 256 };
    static bench_case rows[MAX_ROWS];
    static double best_t[MAX_ROWS], best_peak[MAX_ROWS];
    int nrows = 0;
    for (size_t li = 0; li < sizeof layers / sizeof layers[0]; li++) {
        for (int si = 0; si < nsizes; si++) {
            for (int op = OP_FWD; op <= OP_FWD_FUSED; op++) {
                const int small = layers[li].cin < 16 || layers[li].cout < 16;
                if (op == OP_FWD_FUSED && (layers[li].k != 1 || small)) continue;
                if (winograd_op((op_kind)op) && (layers[li].k != 3 || small || !wcm_cpu_ops()->winograd))
                    continue;
                if (op == OP_FWD_WG_SHIFTED && layers[li].cin != layers[li].cout) continue;
                const wcm_conv_shape shape = {sizes[si].n, sizes[si].hw, sizes[si].hw, layers[li].cin, layers[li].cout,
                                              layers[li].k};
                if (op == OP_FWD_WG_SHIFTED && wcm_winograd6_pays(wcm_cpu_ops(), &shape)) continue; /* F(6x6) there */
                if (small && sizes[si].n > 1 && sizes[si].hw == 40 && sizes[si].n != 16) continue;
                const bench_case c = {layers[li].name, sizes[si].n, sizes[si].hw, sizes[si].hw, layers[li].cin,
                                      layers[li].cout, layers[li].k, (op_kind)op};
                char label[96];
                snprintf(label, sizeof label, "%s %s %dx%dx%d", c.layer, op_names[op], c.n, c.h, c.w);
                if (only && !matches(label, only)) continue;
                if (nrows < MAX_ROWS) rows[nrows++] = c;
            }
        }
    }

    printf("%-11s %-18s %-10s %9s %9s %7s %7s%s\n", "layer", "kernel", "size", "ms", "GFLOP/s", "peak", "%peak",
           check ? "   rel.RMS" : "");
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < nrows; i++) {
            const bench_case *c = &rows[i];
            const double t = time_case(c, x, w, y);
            if (r == 0 || t < best_t[i]) best_t[i] = t;
            if (r == 0 || g_row_peak > best_peak[i]) best_peak[i] = g_row_peak;
            if (g_row_peak > peak_max) peak_max = g_row_peak;
            if (r < rounds - 1) continue; /* several rounds: the table comes at the end */
            char size[32];
            snprintf(size, sizeof size, "%dx%dx%d", c->n, c->h, c->w);
            const double peak = best_peak[i];
            const double flops =
                2.0 * c->n * c->h * c->w * c->cin * c->cout * c->k * c->k * (c->op == OP_FWD_FUSED ? FUSED_RUN : 1);
            const double gf = flops / best_t[i] / 1e9;
            printf("%-11s %-18s %-10s %9.3f %9.1f %7.1f %6.1f%%", c->layer, op_names[c->op], size, best_t[i] * 1e3, gf,
                   peak, peak > 0 ? 100.0 * gf / peak : 0.0);
            if (check) printf(" %9.2e", check_case(c, x, w, y));
            printf("\n");
            fflush(stdout);
        }
    }
    if (peak_level != WCM_SIMD_PORTABLE)
        printf("\nhighest peak seen during the run: %.1f GFLOP/s with %d threads\n", peak_max, threads);
    wcm_free(x);
    wcm_free(y);
    wcm_free(w);
    wcm_free(g_out);
    wcm_free(g_dw);
    return 0;
}

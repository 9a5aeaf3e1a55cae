/* Inference plans and the pointwise-run fusion of the CPU backend against
 * plain layer-by-layer forward passes: flat RF 5 (a run of 19 1x1 layers),
 * conditional RF 13 (runs of 3), the low-pass net (all 3x3, Winograd) and,
 * with AVX-512, flat RF 13 at sizes whose 3x3 layers take Winograd F(6x6)
 * (160x160, 96x100), on odd sizes and batches give bit-identical outputs,
 * with 1 and 2 threads and with Winograd on and off; the shifted Winograd
 * forward (output over its own input) equals the plain one; repeated forward
 * passes and extra sampler iterations allocate nothing (wcm_alloc_calls). */
#include <omp.h>
#include <string.h>

#include "cpu/cpu_conv.h"
#include "net_internal.h"
#include "testutil.h"
#include "wcm/backend.h"
#include "wcm/net.h"
#include "wcm/sampler.h"
#include "wcm/synth.h"

/* Reference init, then gammas near 1 so activations keep their size through
 * all layers (the init's tiny gammas would make every output nearly 0). */
static wcm_net *make_net(wcm_net_kind kind, int rf, uint64_t seed) {
    wcm_net *net = NULL;
    wcm_error err;
    if (wcm_net_create(&net, kind, rf, &err)) return NULL;
    wcm_net_init_reference(net, seed);
    unsigned long long s = seed + 11;
    for (int l = 0; l < net->nlayers; l++) {
        const wcm_layer *L = &net->layers[l];
        if (!L->bn) continue;
        for (int c = 0; c < L->cout; c++) {
            L->gamma[c] = 1.0f + 0.3f * t_rand(&s);
            L->running_sd[c] = 1.0f + 0.2f * t_rand(&s) * t_rand(&s);
        }
    }
    wcm_net_invalidate(net);
    return net;
}

static void fill(wcm_tensor *x, unsigned long long seed) {
    for (size_t i = 0; i < wcm_tensor_count(x); i++) x->data[i] = t_rand(&seed);
}

/* Largest |a - b| over the tensor (0 when bit-identical, NaN-safe). */
static double max_diff(const wcm_tensor *a, const wcm_tensor *b) {
    double m = 0;
    for (size_t i = 0; i < wcm_tensor_count(a); i++) {
        const double d = fabs((double)a->data[i] - b->data[i]);
        if (!(d <= m)) m = d;
    }
    return m;
}

static void check_net(const char *name, wcm_net_kind kind, int rf, int n, int h, int w) {
    wcm_error err;
    wcm_net *net = make_net(kind, rf, 5);
    CHECK(net != NULL, "%s: created", name);
    if (!net) return;
    wcm_tensor in = {0}, planned = {0}, plain = {0}, two = {0};
    wcm_tensor_alloc(&in, n, h, w, net->cin, &err);
    fill(&in, 7);

    /* The CPU backend without its network compiler: the generic plan, layer
     * by layer through conv_forward. */
    wcm_backend unplanned = *wcm_backend_cpu();
    unplanned.net_compile = NULL;
    unplanned.net_load = NULL;
    unplanned.net_fits = NULL;
    unplanned.net_forward = NULL;
    unplanned.net_free = NULL;

    for (int winograd = 1; winograd >= 0; winograd--) {
        wcm_set_winograd(winograd);
        wcm_set_threads(2);
        wcm_set_backend(NULL);
        int rc = wcm_net_forward(net, &in, &planned, &err);
        wcm_set_backend(&unplanned);
        rc |= wcm_net_forward(net, &in, &plain, &err);
        wcm_set_backend(NULL);
        wcm_set_threads(1);
        rc |= wcm_net_forward(net, &in, &two, &err);
        wcm_set_threads(0);
        double peak = 0;
        for (size_t i = 0; i < wcm_tensor_count(&plain); i++) peak = fmax(peak, fabs(plain.data[i]));
        CHECK(rc == 0 && peak > 1e-3, "%s: forward passes ran, max |output| %.3g", name, peak);
        const double d = max_diff(&planned, &plain), dt = max_diff(&planned, &two);
        CHECK(d == 0.0, "%s %dx%dx%d (Winograd %s): planned/fused == layer by layer, max |diff| %.3g", name, n, h, w,
              winograd ? "on" : "off", d);
        CHECK(dt == 0.0, "%s %dx%dx%d (Winograd %s): 1 thread == 2 threads, max |diff| %.3g", name, n, h, w,
              winograd ? "on" : "off", dt);
    }
    wcm_set_winograd(1);

    /* Steady state: after a first call at this size, no allocation at all. */
    wcm_net_forward(net, &in, &planned, &err);
    const unsigned long before = wcm_alloc_calls();
    for (int r = 0; r < 5; r++) wcm_net_forward(net, &in, &planned, &err);
    CHECK(wcm_alloc_calls() == before, "%s: 5 more forward passes made %lu allocations (want 0)", name,
          wcm_alloc_calls() - before);

    wcm_tensor_free(&in);
    wcm_tensor_free(&planned);
    wcm_tensor_free(&plain);
    wcm_tensor_free(&two);
    wcm_net_free(net);
}

/* The shifted forward (output over its own input buffer, WCM_SHIFT_ROWS rows
 * up or down; n images as one stack of rows) against forward_plan into a separate buffer, with 1, 2 and 3
 * threads: bit-identical, and the rows beyond the output untouched. */
static void check_shifted(int n, int h, int w) {
    const wcm_conv_shape s = {n, h, w, 64, 64, 3};
    wcm_set_winograd(1);
    const wcm_cpu_exec e = wcm_cpu_exec_of(wcm_context_default());
    float *wt = wcm_alloc(sizeof(float) * 9 * 64 * 64), *plan = wcm_alloc(sizeof(float) * wcm_cpu_plan_size(&e, &s));
    unsigned long long seed = 17;
    for (int i = 0; i < 9 * 64 * 64; i++) wt[i] = 0.06f * t_rand(&seed);
    wcm_cpu_plan(&e, &s, wt, plan);
    const size_t img = (size_t)n * h * w * 64, margin = (size_t)WCM_SHIFT_ROWS * w * 64;
    float *x = wcm_alloc(sizeof(float) * img), *want = wcm_alloc(sizeof(float) * img);
    float *buf = wcm_alloc(sizeof(float) * (img + margin));
    for (size_t i = 0; i < img; i++) x[i] = t_rand(&seed);
    for (int threads = 1; threads <= 3; threads++) {
        wcm_set_threads(threads);
        float *scratch = wcm_alloc(sizeof(float) * wcm_cpu_scratch_size(&e, &s, 0));
        wcm_cpu_forward_plan(&e, &s, x, plan, want, WCM_CONV_RELU, scratch);
        for (int down = 0; down <= 1; down++) {
            /* up: x at buf + margin, y at buf; down: x at buf, y at buf + margin. */
            float *xin = down ? buf : buf + margin, *y = down ? buf + margin : buf;
            /* The rows beyond the output keep the input's first (down) or last (up) rows. */
            const float *spare = down ? buf : buf + img, *spare_want = down ? x : x + img - margin;
            for (size_t i = 0; i < img + margin; i++) buf[i] = -7.0f;
            memcpy(xin, x, sizeof(float) * img);
            if (wcm_cpu_forward_shifted(&e, &s, xin, plan, down, WCM_CONV_RELU, scratch) != 0) {
                /* Only the AVX-512 kernels have Winograd transforms. */
                if (threads == 1 && !down) printf("skip shifted forward %dx%dx%d: no Winograd kernels at SIMD level %s\n", n, h, w, wcm_cpu_simd_level());
                continue;
            }
            double d = 0;
            for (size_t i = 0; i < img; i++) d = fmax(d, fabs((double)y[i] - want[i]));
            int spare_ok = 1;
            for (size_t i = 0; i < margin; i++) spare_ok &= spare[i] == spare_want[i];
            CHECK(d == 0.0 && spare_ok, "shifted forward %dx%dx%d %s, %d thread%s: == forward_plan, max |diff| %.3g",
                  n, h, w, down ? "down" : "up", threads, threads > 1 ? "s" : "", d);
        }
        wcm_free(scratch);
    }
    wcm_set_threads(0);
    wcm_free(wt);
    wcm_free(plan);
    wcm_free(x);
    wcm_free(want);
    wcm_free(buf);
}

/* Whether the CPU backend has the shifted forward here (Winograd kernels). */
static int shifted_available(void) {
    const wcm_cpu_exec e = wcm_cpu_exec_of(wcm_context_default());
    const wcm_conv_shape s = {1, 64, 320, 64, 64, 3}; /* 32 items, two per tile row: pays at any thread count */
    float *wt = wcm_alloc(sizeof(float) * 9 * 64 * 64), *plan = wcm_alloc(sizeof(float) * wcm_cpu_plan_size(&e, &s));
    for (int i = 0; i < 9 * 64 * 64; i++) wt[i] = 0.0f;
    wcm_cpu_plan(&e, &s, wt, plan);
    const int ok = wcm_cpu_can_shift(&e, &s, plan);
    wcm_free(wt);
    wcm_free(plan);
    return ok;
}

/* Allocations of a conditional sampler run capped at `iters` iterations. */
static unsigned long sampler_allocs(wcm_net *net, const wcm_tensor *low, int iters) {
    wcm_error err;
    wcm_cond_denoiser_ctx cd;
    wcm_tensor y = {0};
    wcm_tensor_alloc(&y, low->n, low->h, low->w, 3, &err);
    wcm_sampler_params p;
    wcm_sampler_params_default(&p);
    p.max_iters = iters;
    p.sigma_L = 1e-9; /* never converges: runs exactly `iters` iterations */
    p.divergence_threshold = 1e30;
    const unsigned long before = wcm_alloc_calls();
    wcm_cond_denoiser_init(&cd, net, low, &err);
    wcm_sample(wcm_cond_denoiser, &cd, &p, &y, NULL, &err);
    wcm_cond_denoiser_free(&cd);
    const unsigned long used = wcm_alloc_calls() - before;
    wcm_tensor_free(&y);
    return used;
}

int main(void) {
    check_net("flat RF 5", WCM_NET_FLAT, 5, 2, 23, 37);
    check_net("flat RF 5", WCM_NET_FLAT, 5, 1, 40, 40);
    check_net("conditional RF 13", WCM_NET_CONDITIONAL, 13, 3, 17, 9);
    check_net("conditional RF 13", WCM_NET_CONDITIONAL, 13, 1, 80, 80);
    check_net("conditional RF 9", WCM_NET_CONDITIONAL, 9, 1, 5, 3);
    check_net("low-pass", WCM_NET_LOWPASS, 40, 2, 21, 18);
    check_net("low-pass", WCM_NET_LOWPASS, 40, 1, 40, 40);
    wcm_set_winograd(1);
    if (shifted_available()) { /* these shapes add nothing without it (and cost minutes under valgrind) */
        check_net("low-pass", WCM_NET_LOWPASS, 40, 1, 64, 172); /* shifted Winograd layers (32 items) */
        check_net("low-pass", WCM_NET_LOWPASS, 40, 2, 33, 164); /* shifted, a stack of 2 images (36 items) */
    } else {
        printf("skip the shifted-forward network shapes: no Winograd kernels at SIMD level %s\n", wcm_cpu_simd_level());
    }
    if (wcm_cpu_ops()->winograd6) { /* F(6x6) layers: planned, unplanned, 1 and 2 threads alike */
        check_net("flat RF 13", WCM_NET_FLAT, 13, 1, 160, 160);
        check_net("flat RF 13", WCM_NET_FLAT, 13, 1, 96, 100);
    } else {
        printf("skip the F(6x6) network shapes: no F(6x6) kernels at SIMD level %s\n", wcm_cpu_simd_level());
    }
    check_shifted(1, 4, 4);
    check_shifted(1, 5, 170);
    check_shifted(1, 9, 40);
    check_shifted(1, 130, 170);
    check_shifted(3, 41, 30);
    check_shifted(2, 4, 170);

    wcm_net *net = make_net(WCM_NET_CONDITIONAL, 13, 9);
    wcm_error err;
    wcm_tensor low = {0};
    wcm_tensor_alloc(&low, 2, 20, 20, 1, &err);
    fill(&low, 3);
    sampler_allocs(net, &low, 2); /* first use: plans, scratch and activation buffers */
    const unsigned long a5 = sampler_allocs(net, &low, 5), a25 = sampler_allocs(net, &low, 25);
    CHECK(a5 == a25, "sampler: 5 iterations made %lu allocations, 25 iterations %lu (none per iteration)", a5, a25);
    wcm_tensor_free(&low);
    wcm_net_free(net);
    return t_done("test_plan");
}

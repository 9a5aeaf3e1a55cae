/* Contexts instead of process globals (src/context.c):
 *  - the default context follows wcm_set_threads, wcm_set_winograd,
 *    wcm_set_backend and WCM_SIMD in the environment (a child process);
 *  - an op runs with its context's thread count as the OpenMP team size and
 *    leaves the caller's setting as it was; a missing op is an error naming it,
 *    and a device out of memory makes a forward fail with WCM_ERR_NOMEM;
 *  - two contexts (different SIMD level, threads and Winograd setting) used
 *    from two threads at once give exactly what each gives alone: a network
 *    forward, a training step and an Algorithm-1 run;
 *  - an emulated device whose memory the host cannot touch
 *    (tests/emulated_device.h) runs a forward, multi-scale denoising,
 *    super-resolution and a training step on host tensors bit for bit like
 *    the CPU backend: device data never reaches the host except through the
 *    backend's copies. */
#include <omp.h>
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

#include "backend_impl.h"
#include "emulated_device.h"
#include "testutil.h"
#include "wcm/denoise.h"
#include "wcm/sampler.h"
#include "wcm/synth.h"
#include "wcm/train.h"

static wcm_context *make_ctx(const wcm_backend *b, int variant, int threads, int winograd) {
    wcm_context_options o;
    wcm_context_options_default(&o);
    o.backend = b, o.variant = variant, o.threads = threads, o.winograd = winograd;
    wcm_context *ctx;
    wcm_error err;
    REQUIRE_OK(wcm_context_create(&ctx, &o, &err), &err);
    return ctx;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static void fill(float *x, size_t n, unsigned long long seed, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = scale * t_rand(&seed);
}

/* A network with Kaiming-scale weights and gammas near 1, in ctx. */
static wcm_net *make_net(wcm_net_kind kind, int rf, wcm_context *ctx, unsigned long long seed) {
    wcm_net *net;
    wcm_error err;
    REQUIRE_OK(wcm_net_create(&net, kind, rf, &err), &err);
    for (int l = 0; l < wcm_net_nlayers(net); l++) {
        const wcm_layer *L = wcm_net_layer(net, l);
        fill(L->weight, (size_t)L->k * L->k * L->cin * L->cout, seed + (unsigned long long)l,
             sqrtf(6.0f / (float)(L->k * L->k * L->cin)));
        for (int c = 0; L->bn && c < L->cout; c++) L->gamma[c] = 1.0f + 0.2f * t_rand(&seed);
    }
    wcm_net_invalidate(net);
    wcm_net_set_context(net, ctx);
    return net;
}

/* ---- the default context and the settings ops see ---------------------------- */

/* A backend that has one op, fill, and records what it ran with. */
static int g_probe_threads;
static int probe_fill(wcm_context *ctx, size_t n, float *x, float value) {
    (void)ctx, (void)n, (void)x, (void)value;
    g_probe_threads = omp_get_max_threads();
    return WCM_OK;
}
static const wcm_backend probe_backend = {.name = "probe", .host_visible = 1, .fill = probe_fill};

/* A device whose memory is always full. */
static int full_alloc(wcm_context *ctx, size_t bytes, void **data) {
    (void)bytes, (void)data;
    return wcm_ctx_fail(ctx, WCM_ERR_NOMEM, "device memory full");
}
static const wcm_backend full_backend = {.name = "full", .host_visible = 0, .buffer_alloc = full_alloc};

static void check_defaults(void) {
    wcm_error err;
    wcm_context *d = wcm_context_default();
    CHECK(d == wcm_context_default() && wcm_context_backend(NULL) == wcm_backend_cpu(),
          "default context: one per thread, on the CPU backend by default");
    CHECK(!strcmp(wcm_context_variant_name(NULL), wcm_cpu_simd_level()), "default context's SIMD level %s = wcm_cpu_simd_level()",
          wcm_context_variant_name(NULL));
    wcm_set_threads(3);
    CHECK(wcm_context_threads(NULL) == 3, "wcm_set_threads(3): the default context has %d threads", wcm_context_threads(NULL));
    wcm_set_winograd(0);
    CHECK(wcm_context_winograd(NULL) == 0, "wcm_set_winograd(0) reaches the default context");
    wcm_set_winograd(1);
    wcm_set_backend(wcm_backend_reference());
    CHECK(wcm_context_backend(NULL) == wcm_backend_reference(), "wcm_set_backend(reference) reaches the default context");
    wcm_set_backend(NULL);

    wcm_context *probe = make_ctx(&probe_backend, -1, 5, -1);
    omp_set_num_threads(2);
    float x;
    REQUIRE_OK(wcm_op_fill(probe, 1, &x, 0, &err), &err);
    CHECK(g_probe_threads == 5 && omp_get_max_threads() == 2,
          "an op of a 5-thread context runs on a team of %d; the caller's setting (2) is %d afterwards", g_probe_threads,
          omp_get_max_threads());
    const wcm_conv_shape s = {1, 1, 1, 1, 1, 1};
    int rc = wcm_op_conv_forward(probe, &s, &x, &x, &x, 0, &err);
    CHECK(rc == WCM_ERR_ARG && strstr(err.msg, "conv_forward"), "a missing op is an error that names it: %s", err.msg);
    /* A device out of memory: an error where the memory was needed, never a slower way round. */
    wcm_context *full = make_ctx(&full_backend, -1, 0, -1);
    wcm_net *net;
    REQUIRE_OK(wcm_net_create(&net, WCM_NET_FLAT, 5, &err), &err);
    wcm_net_set_context(net, full);
    wcm_tensor in = {0}, out = {0};
    REQUIRE_OK(wcm_tensor_alloc(&in, 1, 4, 4, 1, &err), &err);
    rc = wcm_net_forward(net, &in, &out, &err);
    CHECK(rc == WCM_ERR_NOMEM && strstr(err.msg, "device memory full"), "a forward on a full device is WCM_ERR_NOMEM: %s",
          err.msg);
    wcm_tensor_free(&in), wcm_tensor_free(&out);
    wcm_net_free(net);
    wcm_context_free(full);
    wcm_context_options o;
    wcm_context_options_default(&o);
    o.backend = wcm_backend_cpu(), o.variant = 99;
    wcm_context *none;
    rc = wcm_context_create(&none, &o, &err);
    CHECK(rc == WCM_ERR_ARG && !none, "a variant the backend lacks is refused: %s", err.msg);
    wcm_context_free(probe);
    wcm_set_threads(0);
}

/* WCM_SIMD caps the default level: checked in a child process, which prints it. */
static void check_env_cap(const char *self) {
    const char *levels[] = {"portable", "avx2"};
    for (int i = 0; i < 2; i++) {
        if (wcm_backend_variant_count(wcm_backend_cpu()) <= i) continue;
        char cmd[4096], got[64] = "";
        snprintf(cmd, sizeof cmd, "WCM_SIMD=%s '%s' --print-simd", levels[i], self);
        FILE *f = popen(cmd, "r");
        if (f && fgets(got, sizeof got, f)) got[strcspn(got, "\n")] = 0;
        if (f) pclose(f);
        CHECK(!strcmp(got, levels[i]), "WCM_SIMD=%s: the default context runs at %s", levels[i], got);
    }
}

/* ---- two contexts on two threads ------------------------------------------------ */

/* A forward pass, a training step and a short Algorithm-1 run, all in ctx;
 * returns a hash of every result. */
static uint64_t workload(wcm_context *ctx) {
    wcm_error err;
    uint64_t h = 1469598103934665603ull;
    wcm_net *flat = make_net(WCM_NET_FLAT, 13, ctx, 21);
    wcm_tensor in = {0}, out = {0};
    REQUIRE_OK(wcm_tensor_alloc(&in, 1, 48, 44, 1, &err), &err);
    fill(in.data, wcm_tensor_count(&in), 3, 1);
    REQUIRE_OK(wcm_net_forward(flat, &in, &out, &err), &err);
    h = fnv(h, out.data, wcm_tensor_count(&out) * sizeof(float));

    wcm_net *cond = make_net(WCM_NET_CONDITIONAL, 5, ctx, 33);
    wcm_trainer *t;
    REQUIRE_OK(wcm_trainer_create(&t, cond, &err), &err);
    wcm_tensor x = {0}, target = {0};
    REQUIRE_OK(wcm_tensor_alloc(&x, 2, 12, 12, 4, &err), &err);
    REQUIRE_OK(wcm_tensor_alloc(&target, 2, 12, 12, 3, &err), &err);
    fill(x.data, wcm_tensor_count(&x), 4, 1), fill(target.data, wcm_tensor_count(&target), 5, 0.3f);
    double loss;
    REQUIRE_OK(wcm_train_gradient(t, &x, &target, &loss, NULL, &err), &err);
    wcm_adam_step(t, 1e-3);
    h = fnv(h, &loss, sizeof loss);
    h = fnv(h, wcm_net_params(cond), wcm_net_nparams(cond) * sizeof(float));
    h = fnv(h, wcm_net_running_sd(cond), wcm_net_nrunning(cond) * sizeof(float));

    wcm_sampler_params p;
    wcm_sampler_params_default(&p);
    p.max_iters = 4, p.sigma_L = 1e-9, p.divergence_threshold = 1e30, p.seed = 9, p.context = ctx;
    wcm_tensor y = {0};
    REQUIRE_OK(wcm_tensor_alloc(&y, 2, 16, 20, 1, &err), &err);
    REQUIRE_OK(wcm_sample(wcm_net_denoiser, flat, &p, &y, NULL, &err), &err);
    h = fnv(h, y.data, wcm_tensor_count(&y) * sizeof(float));

    wcm_tensor_free(&in), wcm_tensor_free(&out), wcm_tensor_free(&x), wcm_tensor_free(&target), wcm_tensor_free(&y);
    wcm_trainer_free(t);
    wcm_net_free(cond);
    wcm_net_free(flat);
    return h;
}

typedef struct {
    wcm_context *ctx;
    uint64_t hash;
} job;

static void *run_job(void *arg) {
    job *j = arg;
    j->hash = workload(j->ctx);
    return NULL;
}

static void check_two_threads(void) {
    const int best = wcm_backend_variant_count(wcm_backend_cpu()) - 1;
    wcm_context *a = make_ctx(wcm_backend_cpu(), 0, 1, 0), *b = make_ctx(wcm_backend_cpu(), best, 2, 1);
    const uint64_t ha = workload(a), hb = workload(b);
    printf("alone: %s/1 thread/Winograd off %016llx, %s/2 threads/Winograd on %016llx\n", wcm_context_variant_name(a),
           (unsigned long long)ha, wcm_context_variant_name(b), (unsigned long long)hb);
    int same = 1;
    for (int round = 0; round < 3; round++) {
        job ja = {a, 0}, jb = {b, 0};
        pthread_t ta, tb;
        pthread_create(&ta, NULL, run_job, &ja);
        pthread_create(&tb, NULL, run_job, &jb);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        same &= ja.hash == ha && jb.hash == hb;
    }
    CHECK(same, "two contexts on two threads at once (3 rounds): forward, training step and sampler bit-identical to each alone");
    wcm_context_free(a);
    wcm_context_free(b);
}

/* ---- an emulated device ---------------------------------------------------------- */

/* A two-scale model of random nets in ctx. */
static void make_model(wcm_model *m, wcm_context *ctx) {
    memset(m, 0, sizeof *m);
    wcm_array_list_init(&m->meta);
    m->multiscale = 1, m->levels = 2;
    m->low = make_net(WCM_NET_FLAT, 5, ctx, 41);
    m->cond[0] = make_net(WCM_NET_CONDITIONAL, 5, ctx, 42);
    m->cond[1] = make_net(WCM_NET_CONDITIONAL, 5, ctx, 43);
    /* Keep the detail nets' outputs small: the cascade then converges. */
    for (int j = 0; j < 2; j++) {
        const wcm_layer *L = wcm_net_layer(m->cond[j], wcm_net_nlayers(m->cond[j]) - 1);
        for (size_t i = 0; i < (size_t)L->k * L->k * L->cin * L->cout; i++) L->weight[i] *= 1e-3f;
        wcm_net_invalidate(m->cond[j]);
    }
}

/* Denoising, super-resolution and a training step on host tensors in ctx. */
static uint64_t host_workload(wcm_context *ctx) {
    wcm_error err;
    uint64_t h = 1469598103934665603ull;
    wcm_model m;
    make_model(&m, ctx);
    wcm_tensor noisy = {0}, den = {0}, low = {0};
    REQUIRE_OK(wcm_tensor_alloc(&noisy, 2, 24, 20, 1, &err), &err);
    fill(noisy.data, wcm_tensor_count(&noisy), 7, 0.5f);
    REQUIRE_OK(wcm_denoise(&m, &noisy, 0, &den, &err), &err);
    h = fnv(h, den.data, wcm_tensor_count(&den) * sizeof(float));
    wcm_tensor_free(&den);
    REQUIRE_OK(wcm_denoise(&m, &noisy, 1, &den, &err), &err);
    h = fnv(h, den.data, wcm_tensor_count(&den) * sizeof(float));
    REQUIRE_OK(wcm_tensor_alloc(&low, 1, 6, 5, 1, &err), &err);
    fill(low.data, wcm_tensor_count(&low), 8, 0.4f);
    wcm_synth_options o;
    wcm_synth_options_default(&o);
    /* A random test net is no image model: no health checks, only the arithmetic is compared. */
    o.range_min = o.range_max = 0;
    for (int j = 0; j < 2; j++) o.cond[j].max_iters = 5, o.cond[j].divergence_threshold = 1e30, o.cond[j].std_jump = 0;
    wcm_synth_result r;
    const int rc = wcm_synth_superres(&m, &low, &o, &r, &err);
    CHECK(rc == WCM_OK, "%s: super-resolution ran%s%s", wcm_backend_name(wcm_context_backend(ctx)), rc ? ": " : "",
          rc ? err.msg : "");
    if (!rc) h = fnv(h, wcm_synth_final(&r)->data, wcm_tensor_count(wcm_synth_final(&r)) * sizeof(float));
    wcm_synth_result_free(&r);

    wcm_trainer *t;
    REQUIRE_OK(wcm_trainer_create(&t, m.cond[0], &err), &err);
    wcm_tensor x = {0}, target = {0}, out = {0};
    REQUIRE_OK(wcm_tensor_alloc(&x, 2, 9, 7, 4, &err), &err);
    REQUIRE_OK(wcm_tensor_alloc(&target, 2, 9, 7, 3, &err), &err);
    fill(x.data, wcm_tensor_count(&x), 9, 1), fill(target.data, wcm_tensor_count(&target), 10, 0.3f);
    double loss;
    REQUIRE_OK(wcm_train_gradient(t, &x, &target, &loss, &out, &err), &err);
    CHECK(wcm_trainer_grad_finite(t), "%s: finite gradients", wcm_backend_name(wcm_context_backend(ctx)));
    wcm_adam_step(t, 1e-3);
    h = fnv(h, &loss, sizeof loss);
    h = fnv(h, out.data, wcm_tensor_count(&out) * sizeof(float));
    h = fnv(h, wcm_net_params(m.cond[0]), wcm_net_nparams(m.cond[0]) * sizeof(float));
    h = fnv(h, wcm_net_running_sd(m.cond[0]), wcm_net_nrunning(m.cond[0]) * sizeof(float));
    wcm_trainer_free(t);
    wcm_tensor_free(&noisy), wcm_tensor_free(&den), wcm_tensor_free(&low), wcm_tensor_free(&x);
    wcm_tensor_free(&target), wcm_tensor_free(&out);
    wcm_model_free(&m);
    return h;
}

static void check_emulated_device(void) {
    wcm_context *cpu = make_ctx(wcm_backend_cpu(), -1, 0, -1), *dev = make_ctx(emulated_device(), -1, 0, -1);
    CHECK(!wcm_context_host_visible(dev), "the emulated device's memory is not host-visible");
    wcm_tensor t = {0};
    wcm_error err;
    REQUIRE_OK(wcm_tensor_alloc_on(dev, &t, 1, 2, 3, 1, &err), &err);
    CHECK(!wcm_tensor_is_host(&t) && t.buffer && wcm_tensor_on(dev, &t) && !wcm_tensor_on(cpu, &t),
          "a tensor allocated on the device records its buffer and lives there only");
    wcm_tensor_free(&t);
    const uint64_t hc = host_workload(cpu), hd = host_workload(dev);
    CHECK(hc == hd, "emulated device: denoising, super-resolution and a training step on host tensors equal the CPU's "
                    "bit for bit (%016llx, %016llx)",
          (unsigned long long)hc, (unsigned long long)hd);
    wcm_context_free(cpu);
    wcm_context_free(dev);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--print-simd")) {
        printf("%s\n", wcm_context_variant_name(NULL));
        return 0;
    }
    check_defaults();
    check_env_cap(argv[0]);
    check_two_threads();
    check_emulated_device();
    return t_done("test_context");
}

/* Algorithm 2 (src/synth.c) and the sampling commands (tools/cmd_sample.c) on
 * tiny random networks: the conditional denoiser's input, shapes and the
 * [0, 0.8] rescale, super-resolution consistency, bit-identical results with
 * 1 and 2 threads and any batch size, the iteration cap, divergence, and the
 * CLI's files, log.json, warnings and exit codes. No ../shared needed.
 *
 * The nets are bias-free, hence positively homogeneous: scaling the last
 * layer sets the ratio ||f(y)|| / ||y||, which decides what Algorithm 1 does
 * (about 0.001: converges at once; 0.3: never meets the stopping rule, so it
 * hits the cap; 3: sigma_t > 1.5 at the first iteration, divergence). */
#include <omp.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "json.h"
#include "net_internal.h"
#include "testutil.h"
#include "testjson.h"
#include "wcm/haar.h"
#include "wcm/image.h"
#include "wcm/io.h"
#include "wcm/synth.h"

/* Tiny networks ----------------------------------------------------------------- */

static double rms(const float *x, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return sqrt(s / (double)n);
}

/* Reference-initialised net whose output rms is about `gain` times the input's. */
static wcm_net *make_net(wcm_net_kind kind, int rf, uint64_t seed, double gain) {
    wcm_error err;
    wcm_net *net;
    REQUIRE_OK(wcm_net_create(&net, kind, rf, &err), &err);
    wcm_net_init_reference(net, seed);
    /* The reference gammas (~0.003) shrink the signal ~300x per layer, which
     * only training-mode batch norm undoes; gamma 1 keeps Kaiming's scale. */
    for (int l = 0; l < net->nlayers; l++)
        for (int c = 0; net->layers[l].bn && c < net->layers[l].cout; c++) net->layers[l].gamma[c] = 1.0f;
    wcm_net_invalidate(net);
    wcm_tensor probe = {0}, out = {0};
    REQUIRE_OK(wcm_tensor_alloc(&probe, 2, 8, 8, net->cin, &err), &err);
    unsigned long long s = seed * 7919 + 1;
    for (size_t i = 0; i < wcm_tensor_count(&probe); i++) {
        float v = t_rand(&s);
        probe.data[i] = (kind == WCM_NET_CONDITIONAL && i % 4 == 0) ? 0.4f + 0.4f * v : 1.7f * v;
    }
    REQUIRE_OK(wcm_net_forward(net, &probe, &out, &err), &err);
    const double ratio = rms(out.data, wcm_tensor_count(&out)) / rms(probe.data, wcm_tensor_count(&probe));
    if (!(ratio > 1e-6 && isfinite(ratio))) {
        printf("FAIL: test network output is degenerate (gain %g)\n", ratio);
        exit(1);
    }
    wcm_layer *last = &net->layers[net->nlayers - 1];
    const size_t nw = (size_t)last->k * last->k * last->cin * last->cout;
    for (size_t i = 0; i < nw; i++) last->weight[i] = (float)(last->weight[i] * gain / ratio);
    wcm_net_invalidate(net);
    wcm_tensor_free(&probe);
    wcm_tensor_free(&out);
    return net;
}

/* Two-level model: low-pass net and conditional RF-5 nets with the given gains. */
static void make_model(wcm_model *m, double low_gain, double cond1_gain, double cond0_gain) {
    memset(m, 0, sizeof *m);
    wcm_array_list_init(&m->meta);
    m->multiscale = 1;
    m->levels = 2;
    m->low = make_net(WCM_NET_LOWPASS, 0, 11, low_gain);
    m->cond[1] = make_net(WCM_NET_CONDITIONAL, 5, 12, cond1_gain);
    m->cond[0] = make_net(WCM_NET_CONDITIONAL, 5, 13, cond0_gain);
}

static void make_single(wcm_model *m, wcm_net_kind kind, double gain) {
    memset(m, 0, sizeof *m);
    wcm_array_list_init(&m->meta);
    m->net = make_net(kind, 5, 21, gain);
}

/* The test nets are random, not image models: their samples leave any image
 * range, so the range check is off except where a test turns it on. */
static void small_options(wcm_synth_options *o, int max_iters) {
    wcm_synth_options_default(o);
    o->range_min = o->range_max = 0;
    o->seed = 5;
    o->low.max_iters = max_iters;
    for (int j = 0; j < WCM_MAX_LEVELS; j++) o->cond[j].max_iters = max_iters;
}

static void random_images(wcm_tensor *t, int n, int h, int w, unsigned long long seed) {
    wcm_error err;
    REQUIRE_OK(wcm_tensor_alloc(t, n, h, w, 1, &err), &err);
    for (size_t i = 0; i < wcm_tensor_count(t); i++) t->data[i] = 0.5f + 0.45f * t_rand(&seed);
}

static int same_tensor(const wcm_tensor *a, const wcm_tensor *b) {
    return a->n == b->n && a->h == b->h && a->w == b->w && a->c == b->c &&
           memcmp(a->data, b->data, wcm_tensor_count(a) * sizeof(float)) == 0;
}

/* Largest |coarsest low-pass(img) - low| over the batch. */
static double lowpass_deviation(const wcm_tensor *img, int levels, const wcm_tensor *low) {
    wcm_error err;
    wcm_pyramid p;
    REQUIRE_OK(wcm_haar_forward(img, levels, &p, &err), &err);
    const wcm_tensor *top = &p.level[levels - 1];
    double dev = top->h == low->h && top->w == low->w && top->n == low->n ? 0 : INFINITY;
    for (size_t i = 0; isfinite(dev) && i < wcm_tensor_count(low); i++)
        dev = fmax(dev, fabs((double)top->data[4 * i] - low->data[i]));
    wcm_pyramid_free(&p);
    return dev;
}

/* Library ------------------------------------------------------------------------ */

static void test_cond_denoiser(void) {
    wcm_error err;
    wcm_net *net = make_net(WCM_NET_CONDITIONAL, 5, 3, 0.5);
    wcm_tensor low = {0}, y = {0}, in = {0}, want = {0}, got = {0};
    random_images(&low, 2, 6, 5, 99);
    REQUIRE_OK(wcm_tensor_alloc(&y, 2, 6, 5, 3, &err), &err);
    REQUIRE_OK(wcm_tensor_alloc(&in, 2, 6, 5, 4, &err), &err);
    REQUIRE_OK(wcm_tensor_alloc(&got, 2, 6, 5, 3, &err), &err);
    unsigned long long s = 7;
    for (size_t i = 0; i < wcm_tensor_count(&low); i++)
        for (int c = 0; c < 3; c++) y.data[3 * i + c] = t_rand(&s);
    for (size_t i = 0; i < wcm_tensor_count(&low); i++) {
        in.data[4 * i] = low.data[i];
        for (int c = 0; c < 3; c++) in.data[4 * i + 1 + c] = y.data[3 * i + c];
    }
    REQUIRE_OK(wcm_net_forward(net, &in, &want, &err), &err);
    wcm_cond_denoiser_ctx cd;
    REQUIRE_OK(wcm_cond_denoiser_init(&cd, net, &low, &err), &err);
    REQUIRE_OK(wcm_cond_denoiser(&cd, &y, &got, &err), &err);
    CHECK(same_tensor(&want, &got), "conditional denoiser = net([x_c, y]) bit for bit (2 x 6 x 5 x 3)");
    wcm_tensor bad = {0};
    REQUIRE_OK(wcm_tensor_alloc(&bad, 1, 6, 5, 3, &err), &err);
    CHECK(wcm_cond_denoiser(&cd, &bad, &got, &err) == WCM_ERR_SHAPE, "batch mismatch refused: %s", err.msg);
    wcm_cond_denoiser_free(&cd);
    wcm_net *flat = make_net(WCM_NET_FLAT, 5, 1, 1);
    CHECK(wcm_cond_denoiser_init(&cd, flat, &low, &err) == WCM_ERR_ARG, "flat net refused as conditional: %s", err.msg);
    wcm_net_free(flat);
    wcm_tensor_free(&bad);
    wcm_tensor_free(&low);
    wcm_tensor_free(&y);
    wcm_tensor_free(&in);
    wcm_tensor_free(&want);
    wcm_tensor_free(&got);
    wcm_net_free(net);
}

static int progress_iterations, progress_finished;
static void count_progress(void *user, const wcm_synth_progress_info *pi) {
    (void)user;
    if (pi->iteration) progress_iterations++;
    if (pi->finished) progress_finished++;
}

static void test_sample_cascade(void) {
    wcm_error err;
    wcm_model m;
    make_model(&m, 0.3, 0.3, 0.3);
    wcm_synth_options o;
    small_options(&o, 7);
    o.progress = count_progress;
    wcm_synth_result r;
    REQUIRE_OK(wcm_synth_sample(&m, 3, 4, 5, &o, &r, &err), &err);
    CHECK(r.nstages == 3 && r.nscales == 3 && r.complete, "3 nets ran (%d), 3 scales (%d)", r.nstages, r.nscales);
    CHECK(!strcmp(r.stage[0].name, "low") && !strcmp(r.stage[1].name, "cond1") && !strcmp(r.stage[2].name, "cond0"),
          "run order low, cond1, cond0 (%s %s %s)", r.stage[0].name, r.stage[1].name, r.stage[2].name);
    const wcm_tensor *f = wcm_synth_final(&r);
    CHECK(f && f->n == 3 && f->h == 16 && f->w == 20 && f->c == 1, "final 3 x 16 x 20 x 1");
    CHECK(r.scale[1].h == 8 && r.scale[1].w == 10 && r.stage[1].c == 3 && r.stage[1].h == 4,
          "scale 1 image 8x10; cond1 samples 4x5x3 details");
    int range_ok = 1;
    for (int k = 0; k < 3; k++) {
        const float *v = r.scale[0].data + k * 20;
        float lo = v[0], hi = v[0];
        for (int i = 1; i < 20; i++) lo = fminf(lo, v[i]), hi = fmaxf(hi, v[i]);
        range_ok &= fabsf(lo) < 1e-6f && fabsf(hi - 0.8f) < 1e-6f;
    }
    CHECK(range_ok, "every sampled low-pass min-max rescaled to [0, 0.8]");
    int all_cap = 1;
    for (int s = 0; s < 3; s++)
        for (int k = 0; k < 3; k++)
            all_cap &= r.stage[s].results[k].status == WCM_SAMPLE_CAP && r.stage[s].results[k].iterations == 7;
    CHECK(all_cap && r.cap_samples == 9 && r.stage[1].cap_samples == 3,
          "gain 0.3: every net stops at the cap of 7 with status cap (%d samples counted), not an error",
          r.cap_samples);
    CHECK(r.stage[2].params.stream == WCM_SYNTH_STREAM_COND(0) && r.stage[0].params.stream == WCM_SYNTH_STREAM_LOW &&
              r.stage[1].params.seed == 5 && r.stage[0].params.max_iters == 7,
          "per-net params recorded (stream, seed, cap)");
    CHECK(progress_iterations == 21 && progress_finished == 3, "progress: %d iteration reports, %d finished",
          progress_iterations, progress_finished);
    /* Samples differ from each other and the final low-pass is the rescaled sample. */
    CHECK(memcmp(f->data, f->data + 320, 320 * sizeof(float)) != 0, "samples 0 and 1 differ");
    CHECK(lowpass_deviation(f, 2, &r.scale[0]) < 1e-5, "final image's 2-level low-pass = sampled low-pass (%.2g)",
          lowpass_deviation(f, 2, &r.scale[0]));

    /* Determinism: 1 vs 2 threads, and sample 2 alone (offset 2) vs in the batch. */
    wcm_synth_result r1, r2, alone;
    o.progress = NULL;
    wcm_set_threads(1);
    REQUIRE_OK(wcm_synth_sample(&m, 3, 4, 5, &o, &r1, &err), &err);
    wcm_set_threads(2);
    REQUIRE_OK(wcm_synth_sample(&m, 3, 4, 5, &o, &r2, &err), &err);
    int same = r1.nscales == r2.nscales;
    for (int s = 0; same && s < r1.nscales; s++) same &= same_tensor(&r1.scale[s], &r2.scale[s]);
    CHECK(same, "same seed: every scale bit-identical with 1 and 2 threads (%d threads max)", omp_get_max_threads());
    o.sample_offset = 2;
    REQUIRE_OK(wcm_synth_sample(&m, 1, 4, 5, &o, &alone, &err), &err);
    CHECK(memcmp(alone.scale[2].data, r2.scale[2].data + 2 * 320, 320 * sizeof(float)) == 0 &&
              alone.stage[0].results[0].final_sigma == r2.stage[0].results[2].final_sigma,
          "sample 2 drawn alone (sample_offset 2) = sample 2 of the batch of 3");
    wcm_set_threads(0);
    wcm_synth_result_free(&r);
    wcm_synth_result_free(&r1);
    wcm_synth_result_free(&r2);
    wcm_synth_result_free(&alone);

    /* No rescale; quick convergence with a near-zero low-pass net. */
    wcm_model q;
    make_model(&q, 0.001, 0.3, 0.3);
    small_options(&o, 7);
    o.rescale_low = 0;
    REQUIRE_OK(wcm_synth_sample(&q, 2, 4, 4, &o, &r, &err), &err);
    CHECK(r.stage[0].results[0].status == WCM_SAMPLE_CONVERGED && r.stage[0].results[0].iterations == 1 &&
              r.stage[0].results[1].status == WCM_SAMPLE_CONVERGED,
          "gain 0.001: the low-pass net meets the stopping rule at iteration 1 (sigma %.2g)",
          r.stage[0].results[0].final_sigma);
    double mx = 0;
    for (int i = 0; i < 32; i++) mx = fmax(mx, fabs(r.scale[0].data[i]));
    CHECK(mx > 0.8, "rescale off: the raw low-pass sample is kept (max |value| %.2f)", mx);
    wcm_synth_result_free(&r);
    wcm_model_free(&q);
    wcm_model_free(&m);
}

static void test_superres_consistency(void) {
    wcm_error err;
    wcm_model m;
    make_model(&m, 0.3, 0.3, 0.3);
    wcm_tensor low = {0};
    random_images(&low, 3, 5, 4, 1234);
    wcm_synth_options o;
    small_options(&o, 6);
    wcm_synth_result r;
    REQUIRE_OK(wcm_synth_superres(&m, &low, &o, &r, &err), &err);
    CHECK(r.nstages == 2 && r.nscales == 3, "superres x4: %d nets, %d scales", r.nstages, r.nscales);
    const wcm_tensor *f = wcm_synth_final(&r);
    CHECK(f && f->h == 20 && f->w == 16, "output 20x16 from 5x4");
    double dev = f ? lowpass_deviation(f, 2, &low) : INFINITY;
    CHECK(dev <= 1e-5, "superres consistency: coarsest Haar low-pass of every output = input, max dev %.3g", dev);
    CHECK(same_tensor(&r.scale[0], &low), "scale 0 of the result is the given low-pass");
    double detail = 0;
    for (size_t i = 0; f && i < wcm_tensor_count(f); i++) detail = fmax(detail, fabs(f->data[i] - low.data[0]));
    CHECK(detail > 0.05, "details were added (max |out - const| %.2f)", detail);
    wcm_synth_result_free(&r);

    /* A lone conditional network: x2. */
    wcm_model lone;
    make_single(&lone, WCM_NET_CONDITIONAL, 0.3);
    REQUIRE_OK(wcm_synth_superres(&lone, &low, &o, &r, &err), &err);
    f = wcm_synth_final(&r);
    dev = f ? lowpass_deviation(f, 1, &low) : INFINITY;
    CHECK(f && f->h == 10 && dev <= 1e-5, "lone conditional net: x2 super-resolution, consistency %.3g", dev);
    wcm_synth_result_free(&r);
    CHECK(wcm_synth_sample(&lone, 1, 4, 4, &o, &r, &err) == WCM_ERR_ARG, "lone conditional cannot sample: %s", err.msg);
    wcm_synth_result_free(&r);
    wcm_model_free(&lone);

    /* Flat model: sampling gives one scale; superres is refused. */
    wcm_model flat;
    make_single(&flat, WCM_NET_FLAT, 0.3);
    REQUIRE_OK(wcm_synth_sample(&flat, 2, 6, 7, &o, &r, &err), &err);
    CHECK(r.nstages == 1 && r.nscales == 1 && wcm_synth_final(&r)->h == 6 && !strcmp(r.stage[0].name, "net"),
          "flat model: one net (\"net\"), one 6x7 scale");
    wcm_synth_result_free(&r);
    CHECK(wcm_synth_superres(&flat, &low, &o, &r, &err) == WCM_ERR_ARG, "flat model superres refused: %s", err.msg);
    wcm_synth_result_free(&r);
    CHECK(wcm_synth_sample(&flat, 0, 6, 7, &o, &r, &err) == WCM_ERR_ARG, "n = 0 refused: %s", err.msg);
    wcm_synth_result_free(&r);
    wcm_model_free(&flat);
    wcm_tensor_free(&low);
    wcm_model_free(&m);
}

static void test_divergence(void) {
    wcm_error err;
    wcm_model m;
    make_model(&m, 0.3, 3.0, 0.3);
    wcm_synth_options o;
    small_options(&o, 6);
    wcm_synth_result r;
    int rc = wcm_synth_sample(&m, 2, 4, 4, &o, &r, &err);
    CHECK(rc == WCM_ERR_NUMERIC, "gain 3 at scale 1: divergence returns WCM_ERR_NUMERIC (%d): %s", rc, err.msg);
    CHECK(strstr(err.msg, "cond1") && strstr(err.msg, "diverged") && strstr(err.msg, "sigma"),
          "message names the net, the reason and says diverged");
    CHECK(r.diverged == 2 && r.complete && r.nstages == 3 && r.stage[1].diverged_samples == 2 &&
              r.stage[1].results[0].status == WCM_SAMPLE_DIVERGED &&
              r.stage[1].results[0].reason == WCM_DIVERGED_SIGMA && r.stage[1].results[0].iterations == 1 &&
              r.stage[1].results[0].final_sigma > 1.5,
          "both samples diverged at cond1, iteration 1 (sigma %.2f); the cascade ran to its end for the log",
          r.stage[1].results[0].final_sigma);
    CHECK(r.stage[2].skipped_samples == 2 && r.stage[2].results[1].status == WCM_SAMPLE_SKIPPED &&
              r.stage[2].results[1].iterations == 0,
          "cond0 skipped the diverged samples (status %s)", wcm_sample_status_name(r.stage[2].results[1].status));
    CHECK(wcm_synth_final(&r) != NULL, "a final image exists (diverged samples flagged, not dropped)");
    wcm_synth_result_free(&r);
    wcm_model_free(&m);
}

/* Largest value of each sample of t. */
static float sample_max(const wcm_tensor *t, int k) {
    const size_t per = (size_t)t->h * t->w * t->c;
    float mx = -INFINITY;
    for (size_t i = 0; i < per; i++) mx = fmaxf(mx, t->data[k * per + i]);
    return mx;
}

/* The image-range health check, redraws and skipping, on a constructed case:
 * the allowed range is set between the samples' own maxima (over all scales,
 * from a run without the check), so that exactly the brighter samples "blow
 * up", each at the first scale where it passes the limit. */
static void test_health_checks(void) {
    wcm_error err;
    wcm_model m;
    make_model(&m, 0.3, 0.3, 0.3);
    wcm_synth_options o;
    small_options(&o, 6);
    o.rescale_low = 0;
    enum { N = 4 };
    wcm_synth_result free_run, r;
    REQUIRE_OK(wcm_synth_sample(&m, N, 4, 4, &o, &free_run, &err), &err);
    float mx[N][3], top[N], sorted[N];
    for (int k = 0; k < N; k++) {
        top[k] = -INFINITY;
        for (int s = 0; s < 3; s++) top[k] = fmaxf(top[k], mx[k][s] = sample_max(&free_run.scale[s], k));
        sorted[k] = top[k];
    }
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            if (sorted[j] < sorted[i]) {
                float t = sorted[i];
                sorted[i] = sorted[j], sorted[j] = t;
            }
    o.range_min = -1e30;
    o.range_max = 0.5 * (sorted[1] + sorted[2]); /* the two brightest samples fail */
    int rc = wcm_synth_sample(&m, N, 4, 4, &o, &r, &err);
    int flagged = 1, others_same = 1;
    for (int k = 0; k < N; k++) {
        int first = 3; /* the scale where sample k first passes the limit */
        for (int s = 2; s >= 0; s--)
            if (mx[k][s] > o.range_max) first = s;
        for (int s = 0; s < 3; s++) {
            const wcm_sample_result *res = &r.stage[s].results[k];
            if (s < first) flagged &= res->status != WCM_SAMPLE_DIVERGED && res->status != WCM_SAMPLE_SKIPPED;
            else if (s == first) flagged &= res->status == WCM_SAMPLE_DIVERGED && res->reason == WCM_DIVERGED_RANGE;
            else flagged &= res->status == WCM_SAMPLE_SKIPPED;
        }
        if (first == 3)
            others_same &= !memcmp(r.scale[2].data + k * 256, free_run.scale[2].data + k * 256, 256 * sizeof(float));
    }
    CHECK(rc == WCM_ERR_NUMERIC && r.complete && r.diverged == 2 && strstr(err.msg, "range"),
          "range check: 2 of 4 samples out of range -> WCM_ERR_NUMERIC, result complete: %s", err.msg);
    CHECK(flagged, "exactly the out-of-range samples are diverged (reason range) where they leave the range, "
                   "and skipped by the finer nets");
    CHECK(others_same, "the healthy samples' final images are bit-identical to the run without the check");
    char summary[512] = "";
    for (int s = 0; s < 3 && !summary[0]; s++) wcm_synth_divergence_summary(&r.stage[s], summary, sizeof summary);
    CHECK(strstr(summary, "samples diverged (") && strstr(summary, " range); diverged samples: "), "summary: \"%s\"",
          summary);
    wcm_synth_result_free(&r);

    /* Redraws: a failing sample is drawn again with fresh noise, up to 3
     * times; retrying never changes a healthy sample. */
    o.retries = 3;
    rc = wcm_synth_sample(&m, N, 4, 4, &o, &r, &err);
    int retried_ok = 1, healthy_same = 1, redraws = 0;
    for (int k = 0; k < N; k++) {
        int any_retry = 0;
        for (int s = 0; s < 3; s++) {
            const wcm_sample_result *res = &r.stage[s].results[k];
            any_retry |= res->retries > 0;
            redraws += res->retries;
            if (res->status == WCM_SAMPLE_DIVERGED) retried_ok &= res->retries == 3;
        }
        if (top[k] > o.range_max) retried_ok &= any_retry;
        else healthy_same &= !any_retry && !memcmp(r.scale[2].data + k * 256, free_run.scale[2].data + k * 256,
                                                  256 * sizeof(float));
    }
    CHECK(retried_ok, "--retry 3: the 2 failing samples were redrawn (%d redraws in all), a sample still diverged "
                      "has used all 3; %d diverged in the end", redraws, r.diverged);
    CHECK(healthy_same && (rc == WCM_OK) == (r.diverged == 0),
          "healthy samples not redrawn and unchanged; rc %d with %d diverged", rc, r.diverged);
    wcm_synth_result_free(&r);
    wcm_synth_result_free(&free_run);
    wcm_model_free(&m);
}

/* CLI ------------------------------------------------------------------------------ */

static char tmpdir[256];
static const char *cli_path(void) {
    const char *e = getenv("WCM_CLI");
    return e ? e : WCM_CLI_PATH;
}

/* Runs `wcm ARGS` with stdout/stderr to files; returns the exit status. */
static int run_cli(const char *args, char *stderr_text, size_t size) {
    char cmd[8192], errf[512];
    snprintf(errf, sizeof errf, "%s/stderr.txt", tmpdir);
    snprintf(cmd, sizeof cmd, "cd %s && '%s' %s > %s/stdout.txt 2> %s", tmpdir, cli_path(), args, tmpdir, errf);
    int st = system(cmd);
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 255;
    if (stderr_text) {
        stderr_text[0] = 0;
        FILE *fp = fopen(errf, "r");
        if (fp) {
            size_t n = fread(stderr_text, 1, size - 1, fp);
            while (n > 0 && stderr_text[n - 1] == '\n') n--;
            stderr_text[n] = 0;
            fclose(fp);
        }
    }
    return rc;
}

static wcm_json *read_json(const char *rel) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, rel);
    return t_load_json(path);
}

static int exists(const char *rel) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, rel);
    return access(path, F_OK) == 0;
}

static int same_file(const char *a, const char *b) {
    char pa[512], pb[512];
    snprintf(pa, sizeof pa, "%s/%s", tmpdir, a);
    snprintf(pb, sizeof pb, "%s/%s", tmpdir, b);
    unsigned char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    wcm_error err;
    int ok = !wcm_read_file(pa, &x, &nx, &err) && !wcm_read_file(pb, &y, &ny, &err) && nx == ny && !memcmp(x, y, nx);
    free(x);
    free(y);
    return ok;
}

static const char *str_of(const wcm_json *v) {
    const char *s = wcm_json_string(v);
    return s ? s : "";
}

static double json_num(const wcm_json *v) {
    double d = NAN;
    wcm_json_number(v, &d);
    return d;
}

static void save_npy(const char *rel, const wcm_tensor *t) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, rel);
    wcm_error err;
    REQUIRE_OK(wcm_image_write(path, t, 0, 8, &err), &err);
}

static void test_cli(void) {
    char err_text[16384], path[512];
    if (run_cli("help sample", NULL, 0) != 0) {
        CHECK(0, "`wcm help sample` works (register cmd_sample, cmd_superres, cmd_inverse in tools/wcm.c)");
        return;
    }
    wcm_error err;
    wcm_model ok, div, flat;
    make_model(&ok, 0.3, 0.3, 0.3);
    make_model(&div, 0.3, 0.3, 3.0);
    make_single(&flat, WCM_NET_FLAT, 0.3);
    snprintf(path, sizeof path, "%s/ok.safetensors", tmpdir);
    REQUIRE_OK(wcm_model_save(&ok, path, 0, &err), &err);
    snprintf(path, sizeof path, "%s/div.safetensors", tmpdir);
    REQUIRE_OK(wcm_model_save(&div, path, 0, &err), &err);
    snprintf(path, sizeof path, "%s/flat.safetensors", tmpdir);
    REQUIRE_OK(wcm_model_save(&flat, path, 0, &err), &err);

    /* sample: files, log, cap warning, threads. */
    int rc = run_cli("--threads 1 sample ok.safetensors --out s1 --n 2 --low-size 4 --max-iters 6 --max-iters-low 4 "
                     "--beta-cond0 0.5 --npy --range 0,0",
                     err_text, sizeof err_text);
    CHECK(rc == 0, "wcm sample (cap 6, low 4) exits 0 (%d)", rc);
    CHECK(strstr(err_text, "warning") && strstr(err_text, "iteration cap"), "cap warning on stderr");
    CHECK(strstr(err_text, "scale 1 (cond1) it 1/6 sigma"), "progress lines name the scale, iteration and sigma");
    CHECK(exists("s1/sample_000.png") && exists("s1/sample_001.png") && exists("s1/sample_000_low.png") &&
              exists("s1/sample_001_scale1.png") && exists("s1/grid.png") && exists("s1/sample_000.npy"),
          "sample wrote sample_K.png, _low, _scale1, grid.png and .npy twins");
    wcm_json *j = read_json("s1/log.json");
    const wcm_json *nets = wcm_json_get(j, "nets");
    CHECK(j && !strcmp(str_of(wcm_json_get(j, "status")), "cap") && wcm_json_count(nets) == 3 &&
              wcm_json_count(wcm_json_get(j, "warnings")) == 3,
          "log.json: status cap, 3 nets, 3 warnings");
    CHECK(json_num(wcm_json_at(wcm_json_get(wcm_json_get(nets, "low"), "iterations"), 1)) == 4 &&
              json_num(wcm_json_at(wcm_json_get(wcm_json_get(nets, "cond0"), "iterations"), 0)) == 6 &&
              !strcmp(str_of(wcm_json_at(wcm_json_get(wcm_json_get(nets, "cond1"), "sample_status"), 0)), "cap"),
          "log.json: per-net iterations (low 4, cond0 6) and per-sample status");
    CHECK(json_num(wcm_json_get(wcm_json_get(wcm_json_get(nets, "cond0"), "params"), "beta")) == 0.5 &&
              json_num(wcm_json_get(wcm_json_get(wcm_json_get(nets, "cond1"), "params"), "beta")) == 0.1 &&
              json_num(wcm_json_get(wcm_json_get(nets, "low"), "seconds")) >= 0,
          "log.json: per-net parameters (beta-cond0 0.5, cond1 default 0.1) and seconds");
    wcm_json_free(j);
    rc = run_cli("--threads 2 --quiet sample ok.safetensors --out s2 --n 2 --low-size 4 --max-iters 6 "
                 "--max-iters-low 4 --beta-cond0 0.5 --npy --range 0,0",
                 err_text, sizeof err_text);
    CHECK(rc == 0 && !strstr(err_text, " it 1/"), "--quiet silences progress (warnings stay: %s)",
          strstr(err_text, "warning") ? "yes" : "no");
    CHECK(same_file("s1/sample_000.npy", "s2/sample_000.npy") && same_file("s1/sample_001.npy", "s2/sample_001.npy"),
          "CLI: same seed, --threads 1 and 2: bit-identical .npy outputs");

    /* Divergence: exit status 3, clear message, images and log written. */
    rc = run_cli("sample div.safetensors --out d --n 2 --low-size 4 --max-iters 5 --range 0,0", err_text, sizeof err_text);
    CHECK(rc == 3 && strstr(err_text, "error: 2 of 2 samples diverged; first: sample 0 at cond0, sigma"),
          "divergence exits %d: %s", rc, strstr(err_text, "error:") ? strstr(err_text, "error:") : "(no error line)");
    j = read_json("d/log.json");
    CHECK(j && !strcmp(str_of(wcm_json_get(j, "status")), "diverged") && json_num(wcm_json_get(j, "diverged_samples")) == 2 &&
              !strcmp(str_of(wcm_json_get(wcm_json_get(wcm_json_get(j, "nets"), "cond0"), "status")), "diverged") &&
              !strcmp(str_of(wcm_json_at(wcm_json_get(wcm_json_get(wcm_json_get(j, "nets"), "cond0"), "divergence_reason"), 1)),
                      "sigma"),
          "log.json written with status diverged, 2 diverged samples, reason sigma");
    CHECK(exists("d/sample_000.png") && exists("d/sample_001.png"), "images written (the log flags them)");
    wcm_json_free(j);
    rc = run_cli("sample ok.safetensors --out e --n 2 --low-size 4 --max-iters 5 --retry 2", err_text, sizeof err_text);
    CHECK(rc == 3 && strstr(err_text, "range") && strstr(err_text, "after 2 redraws"),
          "random nets leave the default image range: exit %d, redrawn twice: %s", rc,
          strstr(err_text, "error:") ? strstr(err_text, "error:") : "(no error line)");
    rc = run_cli("sample ok.safetensors --out e --range 1,0", err_text, sizeof err_text);
    CHECK(rc == 1 && strstr(err_text, "--range expects LO,HI"), "bad --range: %s", err_text);
    rc = run_cli("sample ok.safetensors --out e --std-jump 0.5", err_text, sizeof err_text);
    CHECK(rc == 1 && strstr(err_text, "--std-jump must be 0 (off) or above 1"), "bad --std-jump: %s", err_text);

    /* superres: consistency, K samples, --from-highres PSNRs. */
    wcm_tensor low = {0}, hr = {0};
    random_images(&low, 1, 5, 4, 77);
    save_npy("low.npy", &low);
    random_images(&hr, 1, 18, 17, 78);
    save_npy("hr.npy", &hr);
    rc = run_cli("superres ok.safetensors low.npy sr.npy --samples 3 --max-iters 5 --seed 9 --range 0,0", err_text, sizeof err_text);
    j = read_json("sr_log.json");
    double dev = json_num(wcm_json_get(j, "consistency_max_abs"));
    CHECK(rc == 0 && dev <= 1e-5, "superres CLI: exit %d, consistency %.3g <= 1e-5", rc, dev);
    CHECK(exists("sr.npy") && exists("sr_1.npy") && exists("sr_3.npy") && exists("sr_mean.npy") && same_file("sr.npy", "sr_1.npy"),
          "superres wrote OUT, OUT_1..3, OUT_mean (OUT = sample 1)");
    wcm_json_free(j);
    rc = run_cli("superres ok.safetensors hr.npy srh.png --from-highres --max-iters 4 --log srh.json --range 0,0", err_text,
                 sizeof err_text);
    j = read_json("srh.json");
    const double pad_bottom = json_num(wcm_json_get(wcm_json_get(j, "padding"), "bottom"));
    const double pad_right = json_num(wcm_json_get(wcm_json_get(j, "padding"), "right"));
    CHECK(rc == 0 && isfinite(json_num(wcm_json_get(wcm_json_get(j, "psnr"), "lowpass_only"))) &&
              strstr(err_text, "padding 17x18") && pad_bottom + 18 == 20 && pad_right + 17 == 20 &&
              exists("srh_lowpass.png"),
          "superres --from-highres: pads 17x18 to 20x20 (bottom %g, right %g) and crops back, PSNRs in the log, "
          "low-pass-only image", pad_bottom, pad_right);
    wcm_json_free(j);

    /* inverse with the flat model. */
    rc = run_cli("inverse flat.safetensors --task superres --factor 2 low.npy inv.npy --max-iters 5 --range 0,0", err_text,
                 sizeof err_text);
    j = read_json("inv_log.json");
    CHECK(rc == 0 && json_num(wcm_json_get(j, "consistency_max_abs")) < 1e-5 && exists("inv_measured.npy"),
          "inverse superres x2: exit %d, M^T out = x_c (%.3g)", rc, json_num(wcm_json_get(j, "consistency_max_abs")));
    CHECK(!strcmp(str_of(wcm_json_get(wcm_json_get(wcm_json_get(wcm_json_get(j, "nets"), "net"), "params"),
                                               "stop_rule")), "sigma"),
          "inverse uses the sigma_t <= sigma_L stopping rule");
    wcm_json_free(j);
    rc = run_cli("inverse flat.safetensors --task randpix --fraction 0.3 hr.npy rp.png --max-iters 5 --samples 2 --range 0,0",
                 err_text, sizeof err_text);
    CHECK(rc == 0 && exists("rp_mean.png"), "inverse randpix with 2 samples: exit %d", rc);

    /* Bad input: one clear line, non-zero exit. */
    rc = run_cli("sample ok.safetensors --out e --beta 2", err_text, sizeof err_text);
    CHECK(rc != 0 && strstr(err_text, "--beta must be in [0, 1]"), "bad --beta: %s", err_text);
    rc = run_cli("sample ok.safetensors --out e --sigmaL-cond5 0.1", err_text, sizeof err_text);
    CHECK(rc != 0 && strstr(err_text, "cond0..cond1"), "unknown net suffix: %s", err_text);
    rc = run_cli("superres flat.safetensors low.npy x.png", err_text, sizeof err_text);
    CHECK(rc != 0 && strstr(err_text, "wcm inverse"), "superres with a flat model points to inverse: %s", err_text);
    rc = run_cli("inverse ok.safetensors --task inpaint low.npy x.png", err_text, sizeof err_text);
    CHECK(rc != 0 && strstr(err_text, "--mask"), "inpaint without --mask: %s", err_text);

    wcm_tensor_free(&low);
    wcm_tensor_free(&hr);
    wcm_model_free(&ok);
    wcm_model_free(&div);
    wcm_model_free(&flat);
}

int main(void) {
    double t0 = wcm_seconds();
    snprintf(tmpdir, sizeof tmpdir, "/tmp/wcm_test_synth_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        printf("FAIL: cannot create a temporary folder\n");
        return 1;
    }
    test_cond_denoiser();
    test_sample_cascade();
    test_superres_consistency();
    test_divergence();
    test_health_checks();
    test_cli();
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", tmpdir);
    printf("(%.1f s)\n", wcm_seconds() - t0);
    return t_done("test_synth");
}

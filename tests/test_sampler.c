/* Algorithm 1 sampler, the counter-based RNG and the constrained sampler:
 * Philox known answers, analytic Gaussian priors, hand-computed iterations,
 * cap / divergence handling, thread-count independence, exact constraints. */
#include <omp.h>
#include <stdint.h>

#include "testutil.h"
#include "wcm/inverse.h"
#include "wcm/rng.h"
#include "wcm/sampler.h"

/* Test denoisers ----------------------------------------------------------------- */

enum { DENOISE_GAUSS = 0, DENOISE_SCALE = 1, DENOISE_BLOWUP = 2 };

/* Per sample k: the blind MMSE denoiser of an i.i.d. N(mu_k, s^2) prior,
 *   f(y) = (y - mu) v / (s^2 + v),  v = max(mean((y - mu)^2) - s^2, 0),
 * or (mode DENOISE_SCALE) f(y) = scale_k * y. mu_k = mu + cond[k] (the
 * "conditioning" of a conditional denoiser). Mode DENOISE_BLOWUP is the
 * Gaussian denoiser for the first `blowup_after` calls, then
 * f(y) = -scale_k (y - mu): a net that, once the noise is gone, pushes the
 * sample away while reporting little noise (sigma_t = scale_k std(y)), the
 * way the authors' conditional nets blow up on some draws. */
typedef struct {
    double mu, s;
    const double *cond; /* NULL or per-sample shift of mu */
    const int *mode;    /* NULL (all Gaussian) or per-sample mode */
    const double *scale;
    int blowup_after;
    int calls;
} test_denoiser;

static int test_denoise(void *ctx, const wcm_tensor *y, wcm_tensor *residual, wcm_error *err) {
    test_denoiser *td = ctx;
    (void)err;
    td->calls++;
    const size_t per = (size_t)y->h * y->w * y->c;
    for (int k = 0; k < y->n; k++) {
        const float *yk = y->data + k * per;
        float *rk = residual->data + k * per;
        const double mu = td->mu + (td->cond ? td->cond[k] : 0.0), s2 = td->s * td->s;
        if (td->mode && td->mode[k] == DENOISE_SCALE) {
            for (size_t i = 0; i < per; i++) rk[i] = (float)(td->scale[k] * yk[i]);
            continue;
        }
        if (td->mode && td->mode[k] == DENOISE_BLOWUP && td->calls > td->blowup_after) {
            for (size_t i = 0; i < per; i++) rk[i] = (float)(-td->scale[k] * ((double)yk[i] - mu));
            continue;
        }
        double ms = 0;
        for (size_t i = 0; i < per; i++) ms += ((double)yk[i] - mu) * ((double)yk[i] - mu);
        double v = ms / (double)per - s2;
        if (v < 0) v = 0;
        const double gain = v / (s2 + v);
        for (size_t i = 0; i < per; i++) rk[i] = (float)(((double)yk[i] - mu) * gain);
    }
    return WCM_OK;
}

static void sample_stats(const wcm_tensor *t, int k, double *mean, double *std) {
    const size_t per = (size_t)t->h * t->w * t->c;
    const float *x = t->data + k * per;
    double s = 0, s2 = 0;
    for (size_t i = 0; i < per; i++) s += x[i];
    *mean = s / (double)per;
    for (size_t i = 0; i < per; i++) s2 += (x[i] - *mean) * (x[i] - *mean);
    *std = sqrt(s2 / (double)per);
}

/* Trace collector */
#define TRACE_CAP 4096
typedef struct {
    wcm_trace_entry e[TRACE_CAP];
    int count;
} trace_buf;

static void collect_trace(void *user, const wcm_trace_entry *e) {
    trace_buf *tb = user;
    if (tb->count < TRACE_CAP) tb->e[tb->count++] = *e;
}

static int progress_calls = 0, progress_last_t = 0;
static void count_progress(void *user, const wcm_progress_info *info) {
    (void)user;
    progress_calls++;
    progress_last_t = info->t;
}


/* RNG -------------------------------------------------------------------------------- */

static void test_rng(void) {
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d, 0x41c83b0e,
         0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb,
         0x5001e420, 0x24126ea1},
    };
    for (int v = 0; v < 3; v++) {
        uint32_t out[4];
        wcm_philox4x32_10(kat[v], kat[v] + 4, out);
        CHECK(memcmp(out, kat[v] + 6, sizeof out) == 0, "Philox4x32-10 known answer %d: %08x %08x %08x %08x", v,
              out[0], out[1], out[2], out[3]);
    }

    const size_t n = 200001;
    float *a = malloc(n * sizeof(float)), *b = malloc((n + 7) * sizeof(float));
    omp_set_num_threads(1);
    wcm_randn_fill(11, 5, 7, a, n);
    omp_set_num_threads(2);
    wcm_randn_fill(11, 5, 0, b, n + 7);
    CHECK(memcmp(a, b + 7, n * sizeof(float)) == 0,
          "randn_fill at offset 7 with 1 thread == slice of fill from 0 with 2 threads (%zu values)", n);
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) s += a[i], s2 += (double)a[i] * a[i];
    double mean = s / n, var = s2 / n - mean * mean;
    CHECK(fabs(mean) < 0.01 && fabs(var - 1) < 0.015, "normals: mean %.4f var %.4f", mean, var);

    wcm_rand_uniform_fill(11, 6, 3, a, n);
    float lo = 1, hi = 0;
    s = 0;
    for (size_t i = 0; i < n; i++) {
        s += a[i];
        lo = fminf(lo, a[i]);
        hi = fmaxf(hi, a[i]);
    }
    CHECK(lo >= 0 && hi < 1 && fabs(s / n - 0.5) < 0.005, "uniforms in [%.6f, %.6f], mean %.4f", lo, hi, s / n);

    wcm_rng rng;
    wcm_rng_seed(&rng, 42, 9);
    int same = 1;
    for (uint64_t k = 0; k < 5; k++) same &= wcm_rng_next_u64(&rng) == wcm_rng_word(42, 9, k);
    CHECK(same, "sequential generator returns words 0..4 of (seed, stream)");
    int hist[10] = {0}, in_range = 1;
    for (int i = 0; i < 100000; i++) {
        uint64_t r = wcm_rng_below(&rng, 10);
        if (r >= 10) in_range = 0;
        else hist[r]++;
    }
    int hmin = hist[0], hmax = hist[0];
    for (int i = 1; i < 10; i++) hmin = hist[i] < hmin ? hist[i] : hmin, hmax = hist[i] > hmax ? hist[i] : hmax;
    CHECK(in_range && hmin > 9500 && hmax < 10500, "rng_below(10): counts in [%d, %d] of 100000", hmin, hmax);
    CHECK(wcm_rng_below(&rng, 1) == 0 && wcm_rng_below(&rng, 0) == 0, "rng_below(1) == rng_below(0) == 0");
    double ns = 0, ns2 = 0, us = 0;
    for (int i = 0; i < 50000; i++) {
        double z = wcm_rng_normal(&rng);
        ns += z, ns2 += z * z;
        us += wcm_rng_uniform(&rng);
    }
    CHECK(fabs(ns / 50000) < 0.02 && fabs(ns2 / 50000 - 1) < 0.03 && fabs(us / 50000 - 0.5) < 0.01,
          "sequential normal mean %.4f, second moment %.4f, uniform mean %.4f", ns / 50000, ns2 / 50000,
          us / 50000);
    free(a);
    free(b);
}

/* (a) analytic Gaussian prior ------------------------------------------------------- */

static void test_gaussian_prior(void) {
    const double pairs[3][2] = {{0.5, 0.2}, {0.0, 0.05}, {0.1, 0.01}};
    wcm_error err = {{0}};
    static trace_buf tb;
    for (int p = 0; p < 3; p++) {
        test_denoiser td = {.mu = pairs[p][0], .s = pairs[p][1]};
        wcm_sampler_params sp;
        wcm_sampler_params_default(&sp);
        sp.seed = 100 + p;
        tb.count = 0;
        sp.trace = collect_trace;
        sp.trace_user = &tb;
        wcm_tensor y = {0};
        wcm_sample_result res[4];
        REQUIRE_OK(wcm_tensor_alloc(&y, 4, 64, 64, 1, &err), &err);
        REQUIRE_OK(wcm_sample(test_denoise, &td, &sp, &y, res, &err), &err);
        double worst_mean = 0, worst_std = 0;
        int converged = 1, max_it = 0;
        for (int k = 0; k < 4; k++) {
            double m, s;
            sample_stats(&y, k, &m, &s);
            worst_mean = fmax(worst_mean, fabs(m - td.mu));
            worst_std = fmax(worst_std, fabs(s / td.s - 1));
            converged &= res[k].status == WCM_SAMPLE_CONVERGED;
            max_it = res[k].iterations > max_it ? res[k].iterations : max_it;
        }
        CHECK(converged, "N(%.2f, %.2f^2): all 4 samples converged (max %d iterations)", td.mu, td.s, max_it);
        CHECK(worst_mean < 0.02, "N(%.2f, %.2f^2): |mean - mu| <= %.5f", td.mu, td.s, worst_mean);
        CHECK(worst_std < 0.05, "N(%.2f, %.2f^2): |std / s - 1| <= %.4f", td.mu, td.s, worst_std);
        CHECK(td.calls == max_it + 1, "one denoiser call per iteration for the batch + 1 final (%d calls)",
              td.calls);
        /* The stopping rule: SNR 20 log10(std(y) / sigma_t) reaches 40 dB exactly at the last iteration. */
        int rule_ok = 1, entries = 0;
        for (int i = 0; i < tb.count; i++) {
            const wcm_trace_entry *e = &tb.e[i];
            const int last = e->t == res[e->sample].iterations, met = e->std_y / e->sigma >= 100.0;
            rule_ok &= last ? (met && e->status == WCM_SAMPLE_CONVERGED) : (!met && e->status == WCM_SAMPLE_RUNNING);
            const double snr = 20 * log10(e->std_y / e->sigma); /* +inf when the residual vanished */
            rule_ok &= snr == e->snr_db || fabs(e->snr_db - snr) < 1e-9;
            entries++;
        }
        CHECK(rule_ok && entries == res[0].iterations + res[1].iterations + res[2].iterations + res[3].iterations,
              "N(%.2f, %.2f^2): each sample stops at the first iteration with std(y)/sigma_t >= 1/sigma_L (%d trace entries)",
              td.mu, td.s, entries);
        wcm_tensor_free(&y);
    }

    /* Conditional: ctx holds a per-sample conditioning value that shifts mu. */
    const double cond[4] = {0.0, 0.2, -0.3, 0.45};
    test_denoiser td = {.mu = 0.3, .s = 0.1, .cond = cond};
    wcm_sampler_params sp;
    wcm_sampler_params_default(&sp);
    sp.seed = 7;
    sp.stream = 2;
    wcm_tensor y = {0};
    wcm_sample_result res[4];
    REQUIRE_OK(wcm_tensor_alloc(&y, 4, 64, 64, 1, &err), &err);
    REQUIRE_OK(wcm_sample(test_denoise, &td, &sp, &y, res, &err), &err);
    double worst_mean = 0, worst_std = 0;
    for (int k = 0; k < 4; k++) {
        double m, s;
        sample_stats(&y, k, &m, &s);
        worst_mean = fmax(worst_mean, fabs(m - (td.mu + cond[k])));
        worst_std = fmax(worst_std, fabs(s / td.s - 1));
    }
    CHECK(worst_mean < 0.02 && worst_std < 0.05,
          "conditional (mu shifted per sample): |mean - mu_k| <= %.5f, |std / s - 1| <= %.4f", worst_mean,
          worst_std);
    wcm_tensor_free(&y);
}

/* (b) hand computation of the first iterations with f(y) = 0.5 y --------------------- */

static void test_hand_iterations(void) {
    enum { H = 8, W = 6, C = 2, B = 2, T = 3 };
    const size_t per = H * W * C;
    const double scale[B] = {0.5, 0.5};
    const int mode[B] = {DENOISE_SCALE, DENOISE_SCALE};
    test_denoiser td = {.mode = mode, .scale = scale};
    wcm_sampler_params sp;
    wcm_sampler_params_default(&sp);
    sp.sigma_0 = 0.8;
    sp.beta = 0.3;
    sp.seed = 12345;
    sp.stream = 3;
    sp.sample_offset = 5;
    sp.max_iters = T;
    trace_buf tb = {.count = 0};
    sp.trace = collect_trace;
    sp.trace_user = &tb;
    sp.progress = count_progress;
    wcm_error err = {{0}};
    wcm_tensor y = {0};
    wcm_sample_result res[B];
    REQUIRE_OK(wcm_tensor_alloc(&y, B, H, W, C, &err), &err);
    REQUIRE_OK(wcm_sample(test_denoise, &td, &sp, &y, res, &err), &err);

    double worst = 0;
    int stop_agrees = 1, order_ok = tb.count == B * T;
    float yk[H * W * C], z[H * W * C];
    for (int k = 0; k < B; k++) {
        const uint64_t base = ((uint64_t)(5 + k)) << 44;
        CHECK(wcm_sampler_noise_base(&sp, k) == base, "noise base of sample %d is (offset + k) * 2^44", k);
        wcm_randn_fill(12345, 3, base, yk, per);
        for (size_t i = 0; i < per; i++) yk[i] = (float)(0.8 * yk[i]);
        for (int t = 1; t <= T; t++) {
            const double h = 0.01 * t / (1 + 0.01 * (t - 1));
            double ss = 0;
            for (size_t i = 0; i < per; i++) ss += 0.25 * (double)yk[i] * yk[i];
            const double sigma = sqrt(ss / per);
            const double gamma = sigma * sqrt((1 - 0.3 * h) * (1 - 0.3 * h) - (1 - h) * (1 - h));
            wcm_randn_fill(12345, 3, base + (uint64_t)t * per, z, per);
            double mean = 0, var = 0;
            for (size_t i = 0; i < per; i++) {
                yk[i] = (float)(yk[i] - h * 0.5 * yk[i] + gamma * z[i]);
                mean += yk[i];
            }
            mean /= per;
            for (size_t i = 0; i < per; i++) var += (yk[i] - mean) * (yk[i] - mean);
            const double std_y = sqrt(var / per);
            const int stop = 20 * log10(std_y / sigma) >= 20 * log10(1 / 0.01);
            const wcm_trace_entry *e = &tb.e[(t - 1) * B + k];
            order_ok &= e->sample == k && e->t == t;
            worst = fmax(worst, fabs(e->h - h) / h);
            worst = fmax(worst, fabs(e->sigma - sigma) / sigma);
            worst = fmax(worst, fabs(e->gamma - gamma) / gamma);
            worst = fmax(worst, fabs(e->std_y - std_y) / std_y);
            stop_agrees &= stop == (e->status == WCM_SAMPLE_CONVERGED) && !stop;
        }
        double out_err = 0;
        for (size_t i = 0; i < per; i++) out_err = fmax(out_err, fabs(y.data[k * per + i] - 0.5 * yk[i]));
        CHECK(out_err < 1e-5, "sample %d: output y - f(y) = 0.5 y_3 (max error %.2e)", k, out_err);
        CHECK(res[k].status == WCM_SAMPLE_CAP && res[k].iterations == T, "sample %d: cap after %d iterations",
              k, res[k].iterations);
    }
    CHECK(order_ok, "trace has %d entries in (t, sample) order", tb.count);
    CHECK(worst < 1e-6, "h_t, sigma_t, gamma_t, std(y) match the hand computation (max rel. error %.2e)", worst);
    CHECK(stop_agrees, "stop criterion computed by hand (not met) agrees with the sampler");
    CHECK(progress_calls == T && progress_last_t == T, "progress called every iteration (%d calls)",
          progress_calls);

    /* Fixed step: h_t = h0 for every t. */
    tb.count = 0;
    sp.fixed_step = 1;
    sp.h0 = 0.05;
    REQUIRE_OK(wcm_sample(test_denoise, &td, &sp, &y, res, &err), &err);
    int fixed_ok = tb.count == B * T;
    for (int i = 0; i < tb.count; i++) fixed_ok &= fabs(tb.e[i].h - 0.05) < 1e-15;
    CHECK(fixed_ok, "fixed step: h_t = h0 = 0.05 in all %d trace entries", tb.count);
    wcm_tensor_free(&y);
}

/* (c) cap, (d) divergence ----------------------------------------------------------- */

static void test_cap_and_divergence(void) {
    wcm_error err = {{0}};
    wcm_tensor y = {0};
    wcm_sample_result res[2];
    REQUIRE_OK(wcm_tensor_alloc(&y, 2, 32, 32, 1, &err), &err);
    wcm_sampler_params sp;
    wcm_sampler_params_default(&sp);
    sp.max_iters = 50;

    /* f(y) = 0.5 y: std(y) / sigma_t stays near 2, far from 1 / sigma_L. */
    const double half[2] = {0.5, 0.5};
    const int scale_mode[2] = {DENOISE_SCALE, DENOISE_SCALE};
    test_denoiser td = {.mode = scale_mode, .scale = half};
    int rc = wcm_sample(test_denoise, &td, &sp, &y, res, &err);
    CHECK(rc == WCM_OK && res[0].status == WCM_SAMPLE_CAP && res[1].status == WCM_SAMPLE_CAP &&
              res[0].iterations == 50 && res[1].iterations == 50,
          "f(y) = 0.5 y hits the cap: rc %d, status %s, %d iterations", rc, wcm_sample_status_name(res[0].status),
          res[0].iterations);

    /* f(y) = -y makes y grow until sigma_t > 1.5. */
    const double minus[2] = {-1.0, -1.0};
    td.scale = minus;
    rc = wcm_sample(test_denoise, &td, &sp, &y, res, &err);
    CHECK(rc == WCM_ERR_NUMERIC && res[0].status == WCM_SAMPLE_DIVERGED && res[0].iterations > 1 &&
              res[0].final_sigma > 1.5,
          "f(y) = -y diverges: rc %d at iteration %d, sigma %.3f: \"%s\"", rc, res[0].iterations,
          res[0].final_sigma, err.msg);

    /* Mixed batch: sample 0 Gaussian (converges), sample 1 diverges; both reported. */
    const int mixed[2] = {DENOISE_GAUSS, DENOISE_SCALE};
    td = (test_denoiser){.mu = 0.5, .s = 0.2, .mode = mixed, .scale = minus};
    sp.max_iters = 2000;
    rc = wcm_sample(test_denoise, &td, &sp, &y, res, &err);
    double m0, s0;
    sample_stats(&y, 0, &m0, &s0);
    CHECK(rc == WCM_ERR_NUMERIC && res[0].status == WCM_SAMPLE_CONVERGED &&
              res[1].status == WCM_SAMPLE_DIVERGED && strstr(err.msg, "sample 1") != NULL,
          "mixed batch: sample 0 %s after %d, sample 1 %s at %d: \"%s\"", wcm_sample_status_name(res[0].status),
          res[0].iterations, wcm_sample_status_name(res[1].status), res[1].iterations, err.msg);
    CHECK(fabs(m0 - 0.5) < 0.02 && fabs(s0 / 0.2 - 1) < 0.05,
          "mixed batch: the converged sample is still right (mean %.4f, std %.4f)", m0, s0);

    /* A slow blow-up with little reported noise: sample 1 follows the Gaussian
     * denoiser for 40 calls, then is pushed away by 5% of its deviation per
     * unit step while sigma_t = 0.05 std(y) stays far below the 1.5 threshold
     * (and std(y) / sigma_t = 20 stays below the 1 / sigma_L stopping rule). */
    const int blow[2] = {DENOISE_GAUSS, DENOISE_BLOWUP};
    const double push[2] = {0, 0.05};
    td = (test_denoiser){.mu = 0.5, .s = 0.2, .mode = blow, .scale = push, .blowup_after = 40};
    wcm_sampler_params_default(&sp);
    rc = wcm_sample(test_denoise, &td, &sp, &y, res, &err);
    sample_stats(&y, 0, &m0, &s0);
    CHECK(rc == WCM_ERR_NUMERIC && res[1].status == WCM_SAMPLE_DIVERGED && res[1].reason == WCM_DIVERGED_STD_JUMP &&
              res[1].final_sigma < 0.1 && res[1].final_std < 1 && strstr(err.msg, "std(y)"),
          "std jump: the blow-up is caught at iteration %d (std %.3f, twice its minimum; sigma_t %.3f still small): \"%s\"",
          res[1].iterations, res[1].final_std, res[1].final_sigma, err.msg);
    CHECK(res[0].status == WCM_SAMPLE_CONVERGED && fabs(s0 / 0.2 - 1) < 0.05,
          "std jump: the healthy sample of the batch converges untouched (std %.4f)", s0);
    const int blow_only[2] = {DENOISE_BLOWUP, DENOISE_BLOWUP};
    td = (test_denoiser){.mu = 0.5, .s = 0.2, .mode = blow_only, .scale = push, .blowup_after = 40};
    sp.std_jump = 0;
    rc = wcm_sample(test_denoise, &td, &sp, &y, res, &err);
    CHECK(rc == WCM_ERR_NUMERIC && res[1].reason == WCM_DIVERGED_SIGMA && res[1].final_std > 10,
          "without the std check (--std-jump 0) only sigma_t > 1.5 stops it, at iteration %d with std(y) = %.1f",
          res[1].iterations, res[1].final_std);
    sp.std_jump = 0.5;
    rc = wcm_sample(test_denoise, &td, &sp, &y, res, &err);
    CHECK(rc == WCM_ERR_ARG && strstr(err.msg, "std jump"), "std jump factor 0.5 refused: \"%s\"", err.msg);

    /* A sub-batch with explicit sub-stream indices equals those samples drawn in the full batch. */
    wcm_sampler_params_default(&sp);
    td = (test_denoiser){.mu = 0.5, .s = 0.2};
    wcm_tensor full = {0}, one = {0};
    REQUIRE_OK(wcm_tensor_alloc(&full, 3, 8, 8, 1, &err), &err);
    REQUIRE_OK(wcm_tensor_alloc(&one, 1, 8, 8, 1, &err), &err);
    REQUIRE_OK(wcm_sample(test_denoise, &td, &sp, &full, NULL, &err), &err);
    const int64_t index2 = 2;
    sp.sample_index = &index2;
    REQUIRE_OK(wcm_sample(test_denoise, &td, &sp, &one, NULL, &err), &err);
    CHECK(!memcmp(one.data, full.data + 2 * 64, 64 * sizeof(float)),
          "sample_index {2}: a batch of one equals sample 2 of the batch of 3 bit for bit");
    wcm_tensor_free(&full);
    wcm_tensor_free(&one);
    wcm_sampler_params_default(&sp);

    /* Bad arguments give a message, not a crash. */
    sp.beta = 1.5;
    rc = wcm_sample(test_denoise, &td, &sp, &y, res, &err);
    CHECK(rc == WCM_ERR_ARG && strstr(err.msg, "beta") != NULL, "beta 1.5 refused: \"%s\"", err.msg);
    wcm_sampler_params_default(&sp);
    wcm_tensor wrong = {0};
    REQUIRE_OK(wcm_tensor_alloc(&wrong, 2, 16, 32, 1, &err), &err);
    sp.init_mean = &wrong;
    rc = wcm_sample(test_denoise, &td, &sp, &y, res, &err);
    CHECK(rc == WCM_ERR_SHAPE, "init mean of the wrong shape refused: \"%s\"", err.msg);
    wcm_tensor_free(&wrong);
    wcm_tensor_free(&y);
}

/* (e) determinism ---------------------------------------------------------------------- */

static void run_gauss(int threads, uint64_t seed, int64_t sample_offset, int batch, wcm_tensor *y) {
    wcm_error err = {{0}};
    test_denoiser td = {.mu = 0.4, .s = 0.15};
    wcm_sampler_params sp;
    wcm_sampler_params_default(&sp);
    sp.seed = seed;
    sp.stream = 1;
    sp.sample_offset = sample_offset;
    omp_set_num_threads(threads);
    REQUIRE_OK(wcm_tensor_alloc(y, batch, 192, 192, 1, &err), &err); /* large enough for parallel loops */
    REQUIRE_OK(wcm_sample(test_denoise, &td, &sp, y, NULL, &err), &err);
}

static void test_determinism(void) {
    wcm_tensor a = {0}, b = {0}, c = {0}, single = {0};
    run_gauss(1, 5, 0, 2, &a);
    run_gauss(2, 5, 0, 2, &b);
    run_gauss(2, 6, 0, 2, &c);
    run_gauss(2, 5, 1, 1, &single);
    const size_t bytes = wcm_tensor_count(&a) * sizeof(float), per = 192 * 192;
    CHECK(memcmp(a.data, b.data, bytes) == 0, "same seed: bit-identical output with 1 and 2 threads");
    size_t differ = 0;
    for (size_t i = 0; i < wcm_tensor_count(&a); i++) differ += a.data[i] != c.data[i];
    CHECK(differ > wcm_tensor_count(&a) * 9 / 10, "different seed: %zu of %zu values differ", differ,
          wcm_tensor_count(&a));
    CHECK(memcmp(single.data, a.data + per, per * sizeof(float)) == 0,
          "batch sample 1 == the same sample run alone with sample_offset 1");
    wcm_tensor_free(&a);
    wcm_tensor_free(&b);
    wcm_tensor_free(&c);
    wcm_tensor_free(&single);
    omp_set_num_threads(2);
}

/* (f) constrained sampler -------------------------------------------------------------- */

static void test_constrained(void) {
    enum { H = 32, W = 32, B = 2, F = 4 };
    const size_t per = H * W;
    wcm_error err = {{0}};
    wcm_tensor truth = {0}, y = {0}, blocky = {0};
    REQUIRE_OK(wcm_tensor_alloc(&truth, B, H, W, 1, &err), &err);
    REQUIRE_OK(wcm_tensor_alloc(&y, B, H, W, 1, &err), &err);
    REQUIRE_OK(wcm_tensor_alloc(&blocky, B, H, W, 1, &err), &err);
    wcm_randn_fill(99, 0, 0, truth.data, B * per);
    for (size_t i = 0; i < B * per; i++) truth.data[i] = 0.5f + 0.2f * truth.data[i];
    test_denoiser td = {.mu = 0.5, .s = 0.2};
    wcm_sampler_params sp;
    wcm_sampler_params_default(&sp);
    sp.seed = 3;
    wcm_sample_result res[B];

    /* Super-resolution by block averaging. */
    wcm_measurement m;
    REQUIRE_OK(wcm_measurement_block_average(&m, H, W, 1, F, &err), &err);
    CHECK(m.count == per / (F * F), "block average: %zu measurements per sample", m.count);
    float *xc = malloc(B * m.count * sizeof(float)), *check = malloc(B * m.count * sizeof(float));
    REQUIRE_OK(wcm_measurement_apply(&m, &truth, xc, &err), &err);
    double mean0 = 0;
    for (int i = 0; i < F; i++)
        for (int j = 0; j < F; j++) mean0 += truth.data[i * W + j];
    CHECK(fabs(xc[0] - mean0 / (F * F) * F) < 1e-5, "M^T x = F * block mean (%.6f)", xc[0]);
    REQUIRE_OK(wcm_measurement_back_project(&m, xc, &blocky, &err), &err);
    CHECK(fabs(blocky.data[W + 1] - mean0 / (F * F)) < 1e-6, "M M^T x is the blocky image (%.6f)", blocky.data[W + 1]);
    REQUIRE_OK(wcm_sample_constrained(&m, xc, test_denoise, &td, &sp, &y, res, &err), &err);
    REQUIRE_OK(wcm_measurement_apply(&m, &y, check, &err), &err);
    double worst = 0;
    for (size_t i = 0; i < B * m.count; i++) worst = fmax(worst, fabs(check[i] - xc[i]) / F);
    CHECK(res[0].status == WCM_SAMPLE_CONVERGED && res[1].status == WCM_SAMPLE_CONVERGED,
          "superres: converged (sigma_t <= sigma_L) after %d and %d iterations", res[0].iterations,
          res[1].iterations);
    CHECK(worst < 1e-5, "superres: output block averages equal the measurement (max error %.2e)", worst);
    double m0, s0;
    sample_stats(&y, 0, &m0, &s0);
    CHECK(fabs(m0 - 0.5) < 0.05 && s0 > 0.1 && s0 < 0.3, "superres: sample statistics plausible (mean %.3f std %.3f)",
          m0, s0);
    wcm_measurement_free(&m);
    free(xc);
    free(check);

    /* Inpainting: a 12x12 hole. */
    uint8_t known[H * W];
    for (int i = 0; i < H; i++)
        for (int j = 0; j < W; j++) known[i * W + j] = !(i >= 10 && i < 22 && j >= 10 && j < 22);
    REQUIRE_OK(wcm_measurement_mask(&m, H, W, 1, known, &err), &err);
    xc = malloc(B * m.count * sizeof(float));
    REQUIRE_OK(wcm_measurement_apply(&m, &truth, xc, &err), &err);
    REQUIRE_OK(wcm_sample_constrained(&m, xc, test_denoise, &td, &sp, &y, res, &err), &err);
    worst = 0;
    double hole_mean = 0;
    for (int k = 0; k < B; k++)
        for (size_t i = 0; i < per; i++) {
            if (known[i]) worst = fmax(worst, fabs(y.data[k * per + i] - truth.data[k * per + i]));
            else hole_mean += y.data[k * per + i] / (B * 144.0);
        }
    CHECK(res[0].status == WCM_SAMPLE_CONVERGED && worst < 1e-5,
          "inpainting: known pixels kept (max error %.2e, %d iterations)", worst, res[0].iterations);
    CHECK(fabs(hole_mean - 0.5) < 0.1, "inpainting: hole filled around the prior mean (%.3f)", hole_mean);
    wcm_measurement_free(&m);
    free(xc);

    /* Random pixels, 30 %. */
    REQUIRE_OK(wcm_measurement_random_pixels(&m, H, W, 1, 0.3, 17, &err), &err);
    CHECK(m.count == 307, "random pixels: round(0.3 * 1024) = %zu kept", m.count);
    wcm_measurement m2;
    REQUIRE_OK(wcm_measurement_random_pixels(&m2, H, W, 1, 0.3, 17, &err), &err);
    CHECK(memcmp(m.kept_index, m2.kept_index, m.count * sizeof(size_t)) == 0, "random pixels: same seed, same mask");
    wcm_measurement_free(&m2);
    xc = malloc(B * m.count * sizeof(float));
    check = malloc(B * m.count * sizeof(float));
    REQUIRE_OK(wcm_measurement_apply(&m, &truth, xc, &err), &err);
    REQUIRE_OK(wcm_sample_constrained(&m, xc, test_denoise, &td, &sp, &y, res, &err), &err);
    REQUIRE_OK(wcm_measurement_apply(&m, &y, check, &err), &err);
    worst = 0;
    for (size_t i = 0; i < B * m.count; i++) worst = fmax(worst, fabs(check[i] - xc[i]));
    CHECK(worst < 1e-5, "random pixels: measured pixels kept (max error %.2e)", worst);
    wcm_measurement_free(&m);
    free(xc);
    free(check);

    /* Errors are values. */
    int rc = wcm_measurement_block_average(&m, 30, 32, 1, 4, &err);
    CHECK(rc == WCM_ERR_SHAPE, "block average of 30x32 by 4 refused: \"%s\"", err.msg);
    rc = wcm_measurement_random_pixels(&m, H, W, 1, 0.0, 1, &err);
    CHECK(rc == WCM_ERR_ARG, "random pixels fraction 0 refused: \"%s\"", err.msg);
    wcm_tensor_free(&truth);
    wcm_tensor_free(&y);
    wcm_tensor_free(&blocky);
}

int main(void) {
    double start = wcm_seconds();
    test_rng();
    test_gaussian_prior();
    test_hand_iterations();
    test_cap_and_divergence();
    test_determinism();
    test_constrained();
    printf("time %.2f s\n", wcm_seconds() - start);
    return t_done("test_sampler");
}

/* Measurements behind docs/sampling-small-rf.md: how the networks of a model
 * behave at the noise levels and signals Algorithm 1 meets, per scale.
 *
 *   study_small_rf calib MODEL... --images DIR [--n 16] [--crop 160]
 *       per network (conditional net j with the clean low-pass of level j, or
 *       a flat net): at noise sigma on the clean coefficients, the sampler's
 *       noise estimate sigma_hat = ||f(y)|| / sqrt(N) over the true sigma and
 *       the denoising gain 10 log10(||y - x||^2 / ||D(y) - x||^2); on the clean
 *       coefficients (sigma = 0) the residual floor ||f(x)|| / ||x||, i.e. the
 *       best SNR the stopping rule can see, -20 log10(floor).
 *   study_small_rf trace MODEL IMAGE --scale j [--h0 --beta --sigma0 --sigmaL
 *       --iters --fixed-step --start-sigma S --every K]
 *       Algorithm 1 (docs/model.md §6, the same update and stopping test as
 *       src/sampler.c) for conditional net j with the clean low-pass of IMAGE,
 *       printing t, h_t, sigma_t, std(y), SNR and the error of y - f(y)
 *       against the true details (dB below their energy); with --start-sigma
 *       the run starts at the true details plus noise of that std instead of
 *       pure noise (--iters iterations, no stopping).
 *   study_small_rf gain MODEL IMAGE --scale j [--iters 40] [--h 0.5]
 *       growth factor per iteration of the linearised update around the true
 *       details: (prod ||M v_k||)^(1/K) by power iteration with finite
 *       differences, for M = J_D (the denoiser's Jacobian in the details) and
 *       M = (1 - h) I + h J_D (one deterministic step of Algorithm 1).
 *   study_small_rf sr MODEL --images DIR [--n 4] [--crop 160] [--seed S]
 *       [--only j] [--sigmaL --beta --h0 --sigma0 --plateau K --plateau-db D
 *       --std-jump --max-iters --retry]
 *       super-resolution by 2^J of the first n images with the library's
 *       cascade (wcm_synth_superres) and these Algorithm-1 options for every
 *       conditional net (or net j only); PSNR per image (clamped to [-1, 2] as
 *       the CLI does), iterations and status per net.
 * Images are centre-cropped (160 by default), gray, in [0, 1]. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wcm/haar.h"
#include "wcm/image.h"
#include "wcm/model.h"
#include "wcm/rng.h"
#include "wcm/synth.h"

#define DIE(...) (fprintf(stderr, "study_small_rf: " __VA_ARGS__), fputc('\n', stderr), exit(1))
#define OK(expr)                                          \
    do {                                                  \
        if ((expr) != WCM_OK) DIE("%s: %s", #expr, err.msg); \
    } while (0)

static wcm_error err;

static const char *arg_value(int argc, char **argv, const char *name, const char *fallback) {
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], name)) return argv[i + 1];
    return fallback;
}
static int arg_flag(int argc, char **argv, const char *name) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], name)) return 1;
    return 0;
}

/* The first n images of dir (sorted), centre-cropped to crop x crop. */
static void load_images(const char *dir_or_file, int n, int crop, wcm_tensor *out) {
    char **paths = NULL;
    int count = 0, single = wcm_image_is_supported(dir_or_file);
    if (!single) OK(wcm_list_images(dir_or_file, &paths, &count, NULL, &err));
    else count = 1;
    if (n > count) n = count;
    OK(wcm_tensor_alloc(out, n, crop, crop, 1, &err));
    for (int i = 0; i < n; i++) {
        wcm_tensor img, c;
        OK(wcm_image_read(single ? dir_or_file : paths[i], &img, &err));
        OK(wcm_image_center_crop(&img, crop, crop, &c, &err));
        memcpy(out->data + (size_t)i * crop * crop, c.data, sizeof(float) * crop * crop);
        wcm_tensor_free(&img);
        wcm_tensor_free(&c);
    }
    if (paths) wcm_free_paths(paths, count);
}

/* Level j of the pyramid split into its low-pass (1 channel) and details (3). */
static void split_level(const wcm_tensor *level, wcm_tensor *low, wcm_tensor *details) {
    OK(wcm_tensor_alloc(low, level->n, level->h, level->w, 1, &err));
    OK(wcm_tensor_alloc(details, level->n, level->h, level->w, 3, &err));
    const size_t m = (size_t)level->n * level->h * level->w;
    for (size_t i = 0; i < m; i++) {
        low->data[i] = level->data[4 * i];
        for (int c = 0; c < 3; c++) details->data[3 * i + c] = level->data[4 * i + 1 + c];
    }
}

/* One denoiser: a conditional net with a fixed low-pass, or a flat net. */
typedef struct {
    wcm_net *net;
    int conditional;
    wcm_cond_denoiser_ctx cd;
} denoiser;

static void denoiser_init(denoiser *d, wcm_net *net, const wcm_tensor *low) {
    memset(d, 0, sizeof *d);
    d->net = net;
    d->conditional = wcm_net_get_kind(net) == WCM_NET_CONDITIONAL;
    if (d->conditional) OK(wcm_cond_denoiser_init(&d->cd, net, low, &err));
}
static void denoiser_free(denoiser *d) {
    if (d->conditional) wcm_cond_denoiser_free(&d->cd);
}
static void residual(denoiser *d, const wcm_tensor *y, wcm_tensor *f) {
    if (d->conditional) OK(wcm_cond_denoiser(&d->cd, y, f, &err));
    else OK(wcm_net_forward(d->net, y, f, &err));
}

static double sum_sq(const float *a, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * a[i];
    return s;
}
static double sum_sq_diff(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return s;
}
static double population_std(const float *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m += a[i];
    m /= (double)n;
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (a[i] - m) * (a[i] - m);
    return sqrt(s / (double)n);
}

/* The clean input of network `which` ("0", "1", ... or "net"): x and its low-pass. */
static wcm_net *network_input(const wcm_model *m, const char *which, const wcm_tensor *images, wcm_tensor *low,
                              wcm_tensor *x) {
    wcm_net *net = wcm_model_get_net(m, which);
    if (!net) DIE("model has no network '%s'", which);
    memset(low, 0, sizeof *low);
    if (!m->multiscale) {
        OK(wcm_tensor_copy(x, images, &err));
        return net;
    }
    wcm_pyramid p;
    OK(wcm_haar_forward(images, m->levels, &p, &err));
    split_level(&p.level[atoi(which)], low, x);
    wcm_pyramid_free(&p);
    return net;
}

/* calib ------------------------------------------------------------------------ */

static void calib_net(const char *name, wcm_net *net, const wcm_tensor *low, const wcm_tensor *x) {
    static const double sigmas[] = {0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0};
    const int ns = (int)(sizeof sigmas / sizeof *sigmas);
    const size_t per = (size_t)x->h * x->w * x->c, total = per * x->n;
    denoiser d;
    denoiser_init(&d, net, low);
    wcm_tensor y, f;
    OK(wcm_tensor_alloc(&y, x->n, x->h, x->w, x->c, &err));
    OK(wcm_tensor_alloc(&f, x->n, x->h, x->w, x->c, &err));
    float *z = malloc(total * sizeof(float));
    wcm_randn_fill(7, 0, 0, z, total);
    double signal = 0;
    for (int k = 0; k < x->n; k++) signal += population_std(x->data + k * per, per) / x->n;
    printf("| %s | %.4g |", name, signal);
    for (int s = 0; s < ns; s++) {
        for (size_t i = 0; i < total; i++) y.data[i] = x->data[i] + (float)sigmas[s] * z[i];
        residual(&d, &y, &f);
        double ratio = 0, gain = 0, floor_ratio = 0;
        for (int k = 0; k < x->n; k++) {
            const float *xk = x->data + k * per, *yk = y.data + k * per, *fk = f.data + k * per;
            const double sigma_hat = sqrt(sum_sq(fk, per) / per);
            if (sigmas[s] == 0) {
                floor_ratio += sigma_hat / population_std(xk, per) / x->n;
                continue;
            }
            double out = 0, in = sum_sq_diff(yk, xk, per);
            for (size_t i = 0; i < per; i++) {
                const double e = (double)yk[i] - fk[i] - xk[i];
                out += e * e;
            }
            ratio += sigma_hat / sqrt(in / per) / x->n;
            gain += 10 * log10(in / out) / x->n;
        }
        if (sigmas[s] == 0) printf(" %.4f (%.1f dB) |", floor_ratio, -20 * log10(floor_ratio));
        else printf(" %.2f / %+.1f |", ratio, gain);
    }
    printf("\n");
    fflush(stdout);
    free(z);
    wcm_tensor_free(&y);
    wcm_tensor_free(&f);
    denoiser_free(&d);
}

static int cmd_calib(int argc, char **argv) {
    const char *dir = arg_value(argc, argv, "--images", NULL);
    const int n = atoi(arg_value(argc, argv, "--n", "16")), crop = atoi(arg_value(argc, argv, "--crop", "160"));
    if (!dir) DIE("calib needs --images DIR");
    wcm_tensor images;
    load_images(dir, n, crop, &images);
    printf("| net | signal std | clean: floor (best SNR) | 1e-4 | 3e-4 | 1e-3 | 3e-3 | 1e-2 | 3e-2 | 0.1 | 0.3 | 1 |\n"
           "|---|---:|---|---|---|---|---|---|---|---|---|---|\n");
    for (int a = 2; a < argc; a++) {
        if (argv[a][0] == '-') {
            a++;
            continue;
        }
        wcm_model m;
        OK(wcm_model_load(argv[a], &m, &err));
        const char *base = strrchr(argv[a], '/') ? strrchr(argv[a], '/') + 1 : argv[a];
        for (int j = m.multiscale ? m.levels - 1 : 0; j >= 0; j--) {
            char which[8], name[256];
            snprintf(which, sizeof which, m.multiscale ? "%d" : "net", j);
            snprintf(name, sizeof name, m.multiscale ? "%s cond%d" : "%s", base, j);
            wcm_tensor low, x;
            wcm_net *net = network_input(&m, which, &images, &low, &x);
            calib_net(name, net, &low, &x);
            wcm_tensor_free(&low);
            wcm_tensor_free(&x);
        }
        wcm_model_free(&m);
    }
    wcm_tensor_free(&images);
    return 0;
}

/* trace ----------------------------------------------------------------------------- */

/* Error of the estimate y - f(y) against the true details x, in dB below their energy. */
static double error_db(const wcm_tensor *y, const wcm_tensor *f, const wcm_tensor *x, double energy) {
    const size_t n = wcm_tensor_count(x);
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        const double v = (double)y->data[i] - f->data[i] - x->data[i];
        s += v * v;
    }
    return 10 * log10(energy / s);
}

static int cmd_trace(int argc, char **argv) {
    if (argc < 4) DIE("usage: trace MODEL IMAGE --scale j [options]");
    const double h0 = atof(arg_value(argc, argv, "--h0", "0.01")), beta = atof(arg_value(argc, argv, "--beta", "0.1"));
    const double sigma0 = atof(arg_value(argc, argv, "--sigma0", "1")), sigmaL = atof(arg_value(argc, argv, "--sigmaL", "0.01"));
    const double start_sigma = atof(arg_value(argc, argv, "--start-sigma", "-1"));
    const int iters = atoi(arg_value(argc, argv, "--iters", "2000")), every = atoi(arg_value(argc, argv, "--every", "10"));
    const int fixed = arg_flag(argc, argv, "--fixed-step"), seed = atoi(arg_value(argc, argv, "--seed", "0"));
    const char *which = arg_value(argc, argv, "--scale", "0");
    wcm_model m;
    OK(wcm_model_load(argv[2], &m, &err));
    wcm_tensor images, low, x, y, f, noise;
    load_images(argv[3], 1, atoi(arg_value(argc, argv, "--crop", "160")), &images);
    wcm_net *net = network_input(&m, which, &images, &low, &x);
    const size_t N = wcm_tensor_count(&x);
    denoiser d;
    denoiser_init(&d, net, &low);
    OK(wcm_tensor_alloc(&y, x.n, x.h, x.w, x.c, &err));
    OK(wcm_tensor_alloc(&f, x.n, x.h, x.w, x.c, &err));
    OK(wcm_tensor_alloc(&noise, x.n, x.h, x.w, x.c, &err));
    const uint64_t base = (uint64_t)seed << 44;
    wcm_randn_fill(0, 99, base, y.data, N);
    const int from_truth = start_sigma >= 0;
    for (size_t i = 0; i < N; i++) y.data[i] = from_truth ? x.data[i] + (float)start_sigma * y.data[i] : (float)sigma0 * y.data[i];
    const double energy = sum_sq(x.data, N);
    printf("# %s net %s, %zu values, signal std %.4g; h0 %g beta %g sigma0 %g sigmaL %g %s step%s\n", argv[2], which, N,
           population_std(x.data, N), h0, beta, sigma0, sigmaL, fixed ? "fixed" : "ascending",
           from_truth ? ", started at the true details + noise" : "");
    printf("t h sigma_t std_y snr_db err_db\n");
    const double target = 1.0 / sigmaL;
    for (int t = 1; t <= iters; t++) {
        const double h = fixed ? h0 : h0 * t / (1 + h0 * (t - 1));
        residual(&d, &y, &f);
        const double sigma = sqrt(sum_sq(f.data, N) / N);
        const double e = error_db(&y, &f, &x, energy);
        const double g2 = (1 - beta * h) * (1 - beta * h) - (1 - h) * (1 - h), gamma = sigma * sqrt(g2 > 0 ? g2 : 0);
        wcm_randn_fill(0, 99, base + (uint64_t)t * N, noise.data, N);
        for (size_t i = 0; i < N; i++) y.data[i] = y.data[i] - (float)h * f.data[i] + (float)gamma * noise.data[i];
        const double sy = population_std(y.data, N), snr = 20 * log10(sy / sigma);
        const int stop = !from_truth && sy / sigma >= target;
        if (t % every == 0 || t == 1 || stop || t == iters || !isfinite(sy))
            printf("%d %.4f %.4g %.4g %.2f %.2f\n", t, h, sigma, sy, snr, e);
        if (stop || !isfinite(sy) || sy > 100) break;
    }
    wcm_tensor_free(&images), wcm_tensor_free(&low), wcm_tensor_free(&x), wcm_tensor_free(&y);
    wcm_tensor_free(&f), wcm_tensor_free(&noise);
    denoiser_free(&d);
    wcm_model_free(&m);
    return 0;
}

/* gain ----------------------------------------------------------------------------- */

/* out = D(y) = y - f(y) */
static void apply_denoiser(denoiser *d, const wcm_tensor *y, wcm_tensor *f, float *out) {
    residual(d, y, f);
    const size_t n = wcm_tensor_count(y);
    for (size_t i = 0; i < n; i++) out[i] = y->data[i] - f->data[i];
}

static int cmd_gain(int argc, char **argv) {
    if (argc < 4) DIE("usage: gain MODEL IMAGE --scale j [--iters K] [--h H]");
    const int iters = atoi(arg_value(argc, argv, "--iters", "40"));
    const double h = atof(arg_value(argc, argv, "--h", "0.5")), at_sigma = atof(arg_value(argc, argv, "--at-sigma", "0"));
    const char *which = arg_value(argc, argv, "--scale", "0");
    wcm_model m;
    OK(wcm_model_load(argv[2], &m, &err));
    wcm_tensor images, low, x, y, f;
    load_images(argv[3], 1, atoi(arg_value(argc, argv, "--crop", "160")), &images);
    wcm_net *net = network_input(&m, which, &images, &low, &x);
    const size_t N = wcm_tensor_count(&x);
    denoiser d;
    denoiser_init(&d, net, &low);
    OK(wcm_tensor_alloc(&y, x.n, x.h, x.w, x.c, &err));
    OK(wcm_tensor_alloc(&f, x.n, x.h, x.w, x.c, &err));
    float *x0 = malloc(N * sizeof(float)), *d0 = malloc(N * sizeof(float)), *v = malloc(N * sizeof(float)),
          *dv = malloc(N * sizeof(float));
    /* The linearisation point: the true details, optionally plus noise. */
    wcm_randn_fill(3, 0, 0, x0, N);
    for (size_t i = 0; i < N; i++) x0[i] = x.data[i] + (float)at_sigma * x0[i];
    memcpy(y.data, x0, N * sizeof(float));
    apply_denoiser(&d, &y, &f, d0);
    const double eps = 1e-3 * sqrt(sum_sq(x0, N));
    for (int pass = 0; pass < 2; pass++) {
        const double hh = pass == 0 ? 1.0 : h; /* pass 0: J_D itself */
        wcm_randn_fill(5, 0, 0, v, N);
        double nv = sqrt(sum_sq(v, N)), log_growth = 0, last = 0;
        for (size_t i = 0; i < N; i++) v[i] /= (float)nv;
        for (int k = 0; k < iters; k++) {
            for (size_t i = 0; i < N; i++) y.data[i] = x0[i] + (float)eps * v[i];
            apply_denoiser(&d, &y, &f, dv);
            for (size_t i = 0; i < N; i++) dv[i] = (float)((1 - hh) * v[i] + hh * (dv[i] - d0[i]) / eps);
            const double g = sqrt(sum_sq(dv, N));
            if (k >= iters / 2) log_growth += log(g); /* the second half: after the transient */
            last = g;
            for (size_t i = 0; i < N; i++) v[i] = (float)(dv[i] / g);
        }
        const double rho = exp(log_growth / (iters - iters / 2));
        printf("%s net %s at sigma %g: %s growth per iteration %.4f (last %.4f)\n", argv[2], which, at_sigma,
               pass == 0 ? "J_D" : "(1-h) I + h J_D", rho, last);
        if (pass == 1) printf("   (h = %g)\n", h);
    }
    free(x0), free(d0), free(v), free(dv);
    wcm_tensor_free(&images), wcm_tensor_free(&low), wcm_tensor_free(&x), wcm_tensor_free(&y), wcm_tensor_free(&f);
    denoiser_free(&d);
    wcm_model_free(&m);
    return 0;
}

/* sr ------------------------------------------------------------------------------- */

/* PSNR of a sample as the CLI reports it: the estimate clamped to [-1, 2]. */
static double psnr_clamped(const float *ref, const float *x, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        const double v = fmin(fmax((double)x[i], -1.0), 2.0) - ref[i];
        s += v * v;
    }
    return 10.0 * log10((double)n / s);
}

static void sr_params(int argc, char **argv, wcm_sampler_params *p) {
    p->sigma_L = atof(arg_value(argc, argv, "--sigmaL", "0.01"));
    p->beta = atof(arg_value(argc, argv, "--beta", "0.1"));
    p->h0 = atof(arg_value(argc, argv, "--h0", "0.01"));
    p->sigma_0 = atof(arg_value(argc, argv, "--sigma0", "1"));
    p->plateau_iters = atoi(arg_value(argc, argv, "--plateau", "0"));
    p->plateau_db = atof(arg_value(argc, argv, "--plateau-db", "3"));
    p->std_jump = atof(arg_value(argc, argv, "--std-jump", "2"));
    p->max_iters = atoi(arg_value(argc, argv, "--max-iters", "2000"));
}

/* Super-resolution by 2^J of the first n images with the library's cascade
 * (wcm_synth_superres), Algorithm-1 options for every conditional net, or for
 * net j only with --only j (the others keep the defaults). */
static int cmd_sr(int argc, char **argv) {
    if (argc < 3) DIE("usage: sr MODEL --images DIR [--n 4] [--crop 160] [--seed S] [--only j] [Algorithm-1 options]");
    const char *dir = arg_value(argc, argv, "--images", NULL);
    const int n = atoi(arg_value(argc, argv, "--n", "4")), crop = atoi(arg_value(argc, argv, "--crop", "160"));
    const int only = atoi(arg_value(argc, argv, "--only", "-1"));
    if (!dir) DIE("sr needs --images DIR");
    wcm_model m;
    OK(wcm_model_load(argv[2], &m, &err));
    if (!m.multiscale) DIE("sr needs a multi-scale model");
    wcm_tensor images, low;
    load_images(dir, n, crop, &images);
    OK(wcm_synth_lowpass(&images, m.levels, &low, &err));
    wcm_synth_options so;
    wcm_synth_options_default(&so);
    so.seed = (uint64_t)atoll(arg_value(argc, argv, "--seed", "0"));
    so.retries = atoi(arg_value(argc, argv, "--retry", "0"));
    for (int j = 0; j < m.levels; j++)
        if (only < 0 || only == j) sr_params(argc, argv, &so.cond[j]);
    wcm_synth_result r;
    const int rc = wcm_synth_superres(&m, &low, &so, &r, &err);
    if (rc && !(rc == WCM_ERR_NUMERIC && r.complete)) DIE("superres: %s", err.msg);
    const wcm_tensor *out = wcm_synth_final(&r);
    const size_t hw = (size_t)crop * crop;
    double mean = 0;
    printf("%s:", argv[2]);
    for (int k = 0; k < images.n; k++) {
        const double p = psnr_clamped(images.data + k * hw, out->data + k * hw, hw);
        mean += p / images.n;
        printf(" %.2f", p);
        for (int s = 0; s < r.nstages; s++) {
            const wcm_sample_result *sr = &r.stage[s].results[k];
            printf("%s%s %d %s%s%s", s ? "," : " (", r.stage[s].name, sr->iterations, wcm_sample_status_name(sr->status),
                   sr->reason ? " " : "", wcm_divergence_reason_name(sr->reason));
        }
        printf(")");
    }
    printf("\n  mean PSNR %.2f dB over %d images, %d diverged, %.1f s\n", mean, images.n, r.diverged, r.seconds);
    wcm_synth_result_free(&r);
    wcm_tensor_free(&images);
    wcm_tensor_free(&low);
    wcm_model_free(&m);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) DIE("usage: study_small_rf calib|trace|gain|sr ... (see the comment at the top of bench/study_small_rf.c)");
    if (!strcmp(argv[1], "calib")) return cmd_calib(argc, argv);
    if (!strcmp(argv[1], "trace")) return cmd_trace(argc, argv);
    if (!strcmp(argv[1], "gain")) return cmd_gain(argc, argv);
    if (!strcmp(argv[1], "sr")) return cmd_sr(argc, argv);
    DIE("unknown command %s", argv[1]);
}

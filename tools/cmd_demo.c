/* `wcm demo`: the main job for a new user. With the face model shipped in
 * models/ (no network, no ../shared) it synthesizes faces with Algorithm 2,
 * super-resolves one from its 40x40 low-pass, denoises a noisy copy at
 * sigma 50 with the multi-scale and low-pass-only pipelines, and writes an
 * HTML page with the images and numbers. */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "wcm/denoise.h"
#include "wcm/image.h"
#include "wcm/io.h"
#include "wcm/synth.h"

#define DEMO_MODEL_NAME "face160_j2.safetensors"
#define DEMO_SAMPLES 4

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Look for the shipped model: $WCM_MODEL_DIR, next to the executable
 * (build tree or installed prefix), then the source tree. */
static int find_model(char *out, size_t size) {
    char exe[PATH_MAX] = "";
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0;
    }
    const char *env = getenv("WCM_MODEL_DIR");
    const char *candidates[4] = {env, NULL, NULL, WCM_SOURCE_MODELS_DIR};
    char a[PATH_MAX + 64], b[PATH_MAX + 64];
    snprintf(a, sizeof a, "%s/../share/wcm/models", exe);
    snprintf(b, sizeof b, "%s/../models", exe);
    candidates[1] = a;
    candidates[2] = b;
    for (int i = 0; i < 4; i++) {
        if (!candidates[i]) continue;
        snprintf(out, size, "%s/%s", candidates[i], DEMO_MODEL_NAME);
        if (file_exists(out)) return 1;
    }
    return 0;
}

static void demo_progress(void *user, const wcm_synth_progress_info *info) {
    double *last = user;
    if (info->finished) {
        cli_progress("%s  %-6s done: %d iterations (max over samples), %.1f s%20s\n", isatty(2) ? "\r" : "",
                     info->net, info->finished->max_iterations, info->finished->seconds, "");
        return;
    }
    const wcm_progress_info *it = info->iteration;
    double now = wcm_seconds();
    /* A terminal gets a line updated in place; a log gets a line every 5 s. */
    int tty = isatty(2);
    if (now - *last < (tty ? 0.25 : 5.0)) return;
    *last = now;
    cli_progress("%s  %-6s iteration %4d  sigma %.4f  (%d of %d samples running)%s", tty ? "\r" : "", info->net, it->t,
                 it->max_sigma_active, it->active, it->batch, tty ? "" : "\n");
}

typedef struct {
    char *s;
    size_t len;
} text;

static void add(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(text *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = realloc(t->s, t->len + (size_t)n + 1);
    if (!s) return;
    t->s = s;
    va_start(ap, fmt);
    vsnprintf(t->s + t->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

static int save(const char *dir, const char *name, const wcm_tensor *img, int index, wcm_error *err) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return wcm_image_write(p, img, index, 8, err);
}

static int run_demo(int argc, char **argv) {
    const char *cmd = "demo";
    cli_opt opts[] = {{"out", 1, 0, 0}, {"model", 1, 0, 0}, {"seed", 1, 0, 0}};
    const char *pos[1];
    int npos, seed = 0;
    if (cli_parse(cmd, argc, argv, opts, CLI_NOPTS(opts), pos, &npos, 0)) return 1;
    if (cli_get_int(cmd, &opts[2], &seed)) return 1;
    const char *dir = opts[0].set ? opts[0].value : "wcm-demo";
    char model_path[PATH_MAX + 128];
    if (opts[1].set) snprintf(model_path, sizeof model_path, "%s", opts[1].value);
    else if (!find_model(model_path, sizeof model_path))
        return cli_error(cmd, "cannot find models/%s (set WCM_MODEL_DIR or pass --model)", DEMO_MODEL_NAME);
    wcm_error err;
    wcm_model m;
    if (wcm_model_load(model_path, &m, &err)) return cli_lib_error(cmd, &err);
    if (!m.multiscale) {
        wcm_model_free(&m);
        return cli_error(cmd, "%s is not a multi-scale model", model_path);
    }
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        wcm_model_free(&m);
        return cli_error(cmd, "%s: cannot create directory: %s", dir, strerror(errno));
    }
    const int J = m.levels, low = 40, size = low << J;
    double t_start = wcm_seconds(), last = 0;
    printf("wcm demo: model %s (J = %d, %dx%d images), %d threads\n", model_path, J, size, size, wcm_get_threads());
    fflush(stdout);

    /* 1. Synthesis (Algorithm 2). */
    wcm_synth_options o;
    wcm_synth_options_default(&o);
    o.seed = (uint64_t)seed;
    o.progress = demo_progress;
    o.progress_user = &last;
    wcm_synth_result syn, sr;
    memset(&sr, 0, sizeof sr);
    cli_progress("[1/3] synthesizing %d faces coarse to fine (Algorithm 2)\n", DEMO_SAMPLES);
    int rc = wcm_synth_sample(&m, DEMO_SAMPLES, low, low, &o, &syn, &err);
    const wcm_tensor *faces = wcm_synth_final(&syn);
    if (!rc && !faces) rc = wcm_fail(&err, WCM_ERR_NUMERIC, "synthesis did not complete");
    double t_syn = wcm_seconds() - t_start;
    char name[64];
    for (int k = 0; !rc && k < DEMO_SAMPLES; k++) {
        snprintf(name, sizeof name, "sample_%d.png", k);
        rc = save(dir, name, faces, k, &err);
        snprintf(name, sizeof name, "sample_%d_low.png", k);
        if (!rc) rc = save(dir, name, &syn.scale[0], k, &err);
    }
    /* 2. Super-resolution of sample 0 from its coarsest low-pass. */
    wcm_tensor lowpass = {0}, lp_only = {0}, one = {0};
    double psnr_sr = NAN, psnr_lp = NAN, t_sr = 0;
    if (!rc) {
        cli_progress("[2/3] super-resolving sample 0 from its %dx%d low-pass (x%d)\n", low, low, 1 << J);
        rc = wcm_tensor_alloc(&one, 1, size, size, 1, &err);
        if (!rc) {
            memcpy(one.data, faces->data, sizeof(float) * size * size);
            rc = wcm_synth_lowpass(&one, J, &lowpass, &err);
        }
        double t0 = wcm_seconds();
        wcm_synth_options so = o;
        so.seed = (uint64_t)seed + 1;
        if (!rc) rc = wcm_synth_superres(&m, &lowpass, &so, &sr, &err);
        t_sr = wcm_seconds() - t0;
        const wcm_tensor *up = wcm_synth_final(&sr);
        if (!rc && !up) rc = wcm_fail(&err, WCM_ERR_NUMERIC, "super-resolution did not complete");
        if (!rc) rc = wcm_synth_lowpass_only(&lowpass, J, &lp_only, &err);
        if (!rc) {
            psnr_sr = wcm_psnr(one.data, up->data, (size_t)size * size);
            psnr_lp = wcm_psnr(one.data, lp_only.data, (size_t)size * size);
            rc = save(dir, "superres_input.png", &lowpass, 0, &err);
            if (!rc) rc = save(dir, "superres_output.png", up, 0, &err);
            if (!rc) rc = save(dir, "superres_lowpass_only.png", &lp_only, 0, &err);
        }
    }
    /* 3. Denoising a noisy copy at sigma 50 of the sample with the most
     * contrast (a flat, dark sample would make a dull example). */
    wcm_tensor clean = {0}, noisy = {0}, den_ms = {0}, den_lp = {0};
    double psnr_noisy = NAN, psnr_ms = NAN, psnr_lpo = NAN;
    const double sigma255 = 50;
    int denoise_index = 0;
    if (!rc) {
        cli_progress("[3/3] denoising a noisy copy at sigma %.0f (multi-scale and low-pass only)\n", sigma255);
        const size_t px = (size_t)size * size;
        double best = -1;
        for (int k = 0; k < DEMO_SAMPLES; k++) {
            double m = 0, v = 0;
            for (size_t i = 0; i < px; i++) m += faces->data[k * px + i];
            m /= (double)px;
            for (size_t i = 0; i < px; i++) v += (faces->data[k * px + i] - m) * (faces->data[k * px + i] - m);
            if (v > best) best = v, denoise_index = k;
        }
        rc = wcm_tensor_alloc(&clean, 1, size, size, 1, &err);
        if (!rc) {
            memcpy(clean.data, faces->data + (size_t)denoise_index * px, sizeof(float) * px);
            rc = wcm_tensor_copy(&noisy, &clean, &err);
        }
        if (!rc) rc = wcm_add_noise(&noisy, sigma255 / 255, (uint64_t)seed, 0, &err);
        if (!rc) rc = wcm_denoise(&m, &noisy, 0, &den_ms, &err);
        if (!rc) rc = wcm_denoise(&m, &noisy, 1, &den_lp, &err);
        if (!rc) {
            size_t n = (size_t)size * size;
            psnr_noisy = wcm_psnr(clean.data, noisy.data, n);
            psnr_ms = wcm_psnr(clean.data, den_ms.data, n);
            psnr_lpo = wcm_psnr(clean.data, den_lp.data, n);
            rc = save(dir, "denoise_clean.png", &clean, 0, &err);
            if (!rc) rc = save(dir, "denoise_noisy.png", &noisy, 0, &err);
            if (!rc) rc = save(dir, "denoise_multiscale.png", &den_ms, 0, &err);
            if (!rc) rc = save(dir, "denoise_lowpass_only.png", &den_lp, 0, &err);
        }
    }
    double total = wcm_seconds() - t_start;
    /* The page. */
    if (!rc) {
        text h = {0};
        wcm_json_buf model_html; /* the path is the user's: escaped for HTML */
        wcm_json_buf_init(&model_html);
        wcm_json_buf_html(&model_html, model_path);
        add(&h, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>wcm demo</title>\n"
                "<style>body{font-family:Helvetica,Arial,sans-serif;margin:28px;max-width:1000px;color:#222}"
                "figure{display:inline-block;margin:8px;text-align:center;vertical-align:top}"
                "figure img{width:200px;height:200px;image-rendering:pixelated;border:1px solid #bbb}"
                "figcaption{font-size:13px;max-width:210px}table{border-collapse:collapse;font-size:13px}"
                "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}</style></head><body>\n"
                "<h1>wcm demo</h1>\n<p>Multi-scale local conditional probability models of images "
                "(Kadkhodaie, Guth, Mallat &amp; Simoncelli, ICLR 2023), computed by wcm on %d CPU threads in %.1f s "
                "with the model <code>%s</code>.</p>\n",
            wcm_get_threads(), total, model_html.data ? model_html.data : "");
        wcm_json_buf_free(&model_html);
        if (!opts[1].set)
            add(&h, "<p><em>The shipped model was trained by <code>wcm train</code> on 5,000 CelebA faces with a few "
                    "CPU-hours &mdash; a small fraction of the authors' training &mdash; so its samples are rough; "
                    "<code>models/README.md</code> gives its training and denoising numbers. Run "
                    "<code>wcm demo --model M</code> with the authors' networks imported by <code>wcm import-torch</code> "
                    "to see the paper's quality.</em></p>\n");
        add(&h, "<h2>1. Synthesis (Algorithm 2)</h2>\n<p>Each face is drawn coarse to fine: a %dx%d low-pass image "
                "is sampled with the low-pass network (Algorithm 1), then the wavelet details of each finer scale are "
                "sampled with a local conditional network given the low-pass. Top: the sampled %dx%d low-pass; bottom: "
                "the final %dx%d image (%.1f s for all %d).</p>\n<div>",
            low, low, low, low, size, size, t_syn, DEMO_SAMPLES);
        for (int k = 0; k < DEMO_SAMPLES; k++)
            add(&h, "<figure><img src=\"sample_%d_low.png\" alt=\"low-pass %d\"><figcaption>sample %d, %dx%d low-pass</figcaption></figure>",
                k, k, k, low, low);
        add(&h, "</div><div>");
        for (int k = 0; k < DEMO_SAMPLES; k++)
            add(&h, "<figure><img src=\"sample_%d.png\" alt=\"sample %d\"><figcaption>sample %d, %dx%d</figcaption></figure>", k, k, k,
                size, size);
        add(&h, "</div>\n<h2>2. Super-resolution x%d</h2>\n<p>Details of every scale are sampled given only the %dx%d "
                "low-pass of sample 0 (%.1f s); the result's low-pass equals the input exactly.</p>\n<div>"
                "<figure><img src=\"superres_input.png\"><figcaption>input: %dx%d low-pass</figcaption></figure>"
                "<figure><img src=\"superres_lowpass_only.png\"><figcaption>low-pass only (details = 0): %.2f dB</figcaption></figure>"
                "<figure><img src=\"superres_output.png\"><figcaption>wcm super-resolution: %.2f dB</figcaption></figure>"
                "<figure><img src=\"sample_0.png\"><figcaption>sample 0 (the reference)</figcaption></figure></div>\n",
            1 << J, low, low, t_sr, low, low, psnr_lp, psnr_sr);
        add(&h, "<h2>3. Denoising at &sigma; = %.0f</h2>\n<p>Gaussian noise of standard deviation %.0f/255 added to "
                "sample %d, then removed by the multi-scale pipeline (low-pass network, then conditional networks) and "
                "by the low-pass-only baseline.</p>\n<div>"
                "<figure><img src=\"denoise_clean.png\"><figcaption>clean</figcaption></figure>"
                "<figure><img src=\"denoise_noisy.png\"><figcaption>noisy: %.2f dB</figcaption></figure>"
                "<figure><img src=\"denoise_multiscale.png\"><figcaption>multi-scale: %.2f dB</figcaption></figure>"
                "<figure><img src=\"denoise_lowpass_only.png\"><figcaption>low-pass only: %.2f dB</figcaption></figure></div>\n",
            sigma255, sigma255, denoise_index, psnr_noisy, psnr_ms, psnr_lpo);
        add(&h, "<h2>Parameters</h2>\n<table><tr><th>net</th><th>iterations (per sample)</th><th>seconds</th><th>h0</th>"
                "<th>beta</th><th>sigma_0</th><th>sigma_L</th><th>step</th></tr>\n");
        for (int s = 0; s < syn.nstages; s++) {
            const wcm_synth_stage *st = &syn.stage[s];
            add(&h, "<tr><td>%s</td><td>", st->name);
            for (int k = 0; k < st->batch; k++) add(&h, "%s%d", k ? ", " : "", st->results[k].iterations);
            add(&h, "</td><td>%.1f</td><td>%g</td><td>%g</td><td>%g</td><td>%g</td><td>%s</td></tr>\n", st->seconds,
                st->params.h0, st->params.beta, st->params.sigma_0, st->params.sigma_L,
                st->params.fixed_step ? "fixed" : "ascending");
        }
        add(&h, "</table>\n<p>Seed %d. PSNR = 10 log10(1/MSE), images in [0, 1].</p>\n</body></html>\n", seed);
        char p[4096];
        snprintf(p, sizeof p, "%s/index.html", dir);
        rc = h.s ? wcm_write_file_atomic(p, h.s, h.len, &err) : wcm_fail(&err, WCM_ERR_NOMEM, "out of memory");
        free(h.s);
    }
    if (!rc) {
        printf("synthesis: %d faces %dx%d in %.1f s\n", DEMO_SAMPLES, size, size, t_syn);
        printf("super-resolution x%d: %.2f dB (low-pass only %.2f dB) in %.1f s\n", 1 << J, psnr_sr, psnr_lp, t_sr);
        printf("denoising at sigma %.0f: noisy %.2f dB -> multi-scale %.2f dB, low-pass only %.2f dB\n", sigma255,
               psnr_noisy, psnr_ms, psnr_lpo);
        printf("wrote %s/index.html (%.1f s in total)\n", dir, total);
    }
    wcm_synth_result_free(&syn);
    wcm_synth_result_free(&sr);
    wcm_tensor_free(&lowpass);
    wcm_tensor_free(&lp_only);
    wcm_tensor_free(&one);
    wcm_tensor_free(&clean);
    wcm_tensor_free(&noisy);
    wcm_tensor_free(&den_ms);
    wcm_tensor_free(&den_lp);
    wcm_model_free(&m);
    return rc ? cli_lib_error(cmd, &err) : 0;
}

const cli_command cmd_demo = {
    "demo", "synthesize, super-resolve and denoise faces with the shipped model; writes an HTML page",
    "usage: wcm demo [--out DIR] [--seed N] [--model MODEL]\n\n"
    "Runs the paper's three uses of one multi-scale model, with the 160x160 face\n"
    "model shipped in models/ (no network, no data needed):\n"
    "  1. synthesizes 4 faces coarse to fine (Algorithm 2);\n"
    "  2. super-resolves one of them from its 40x40 low-pass;\n"
    "  3. denoises a noisy copy (sigma 50) with the multi-scale and the\n"
    "     low-pass-only pipelines.\n"
    "Writes DIR/index.html with the images, the PSNRs and the parameters, and\n"
    "the PNGs beside it. Progress goes to stderr.\n\n"
    "  --out DIR      output folder (default wcm-demo)\n"
    "  --seed N       random seed (default 0)\n"
    "  --model MODEL  another multi-scale model (default models/" DEMO_MODEL_NAME ")\n",
    run_demo};

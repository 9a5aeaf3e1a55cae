/* `wcm demo`: the first thing a new user runs. With the models shipped in
 * models/ (the authors' published face models, and one trained by wcm) and
 * no network or data, it synthesizes faces at 160x160 and 320x320, does an
 * 8x super-resolution and a denoising (of the user's photo with --image,
 * otherwise of a synthesized face, labelled as such and without PSNRs, since
 * a synthesized reference would flatter the method), shows the wcm-trained
 * model's samples beside the authors', and writes one HTML page. */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wcm/denoise.h"
#include "wcm/image.h"
#include "wcm/io.h"
#include "wcm/json.h"
#include "wcm/stats.h"
#include "wcm/synth.h"

#define MODEL_160 "kadkhodaie2023_face160_j2_rf13.safetensors"
#define MODEL_320 "kadkhodaie2023_face320_j3_rf13.safetensors"
#define MODEL_WCM "wcm_face160_j2_rf13.safetensors"
#define DEMO_SIGMA255 50.0
#define DEMO_PLATEAU 20

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Find a shipped model: --models DIR, $WCM_MODEL_DIR, next to the executable
 * (build tree or installed prefix), then the source tree. */
static int find_model(const char *dir_opt, const char *name, char *out, size_t size) {
    char exe[PATH_MAX] = "";
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0;
    }
    char a[PATH_MAX + 64], b[PATH_MAX + 64];
    snprintf(a, sizeof a, "%s/../share/wcm/models", exe);
    snprintf(b, sizeof b, "%s/../models", exe);
    const char *candidates[] = {dir_opt, getenv("WCM_MODEL_DIR"), a, b, WCM_SOURCE_MODELS_DIR};
    for (size_t i = 0; i < sizeof candidates / sizeof *candidates; i++) {
        if (!candidates[i]) continue;
        snprintf(out, size, "%s/%s", candidates[i], name);
        if (file_exists(out)) return 1;
    }
    return 0;
}

/* Progress ---------------------------------------------------------------------- */

typedef struct {
    double last;
    const char *section;
} demo_progress_state;

static void demo_progress(void *user, const wcm_synth_progress_info *info) {
    demo_progress_state *ps = user;
    int tty = isatty(2);
    if (info->finished) {
        const wcm_synth_stage *st = info->finished;
        char extra[256] = "";
        if (st->retried_samples || st->diverged_samples) {
            extra[0] = ';';
            extra[1] = ' ';
            wcm_synth_divergence_summary(st, extra + 2, sizeof extra - 2);
        }
        cli_progress("%s  %s %-5s done: %d iterations at most, %.1f s%s%20s\n", tty ? "\r" : "", ps->section, info->net,
                     st->max_iterations, st->seconds, extra, "");
        return;
    }
    const wcm_progress_info *it = info->iteration;
    double now = wcm_seconds();
    /* A terminal gets a line updated in place; a log gets a line every 5 s. */
    if (now - ps->last < (tty ? 0.25 : 5.0)) return;
    ps->last = now;
    cli_progress("%s  %s %-5s iteration %4d  sigma %.4f  (%d of %d samples running)%s", tty ? "\r" : "",
                 ps->section, info->net, it->t, it->max_sigma_active, it->active, it->batch, tty ? "" : "\n");
}

/* The HTML page ------------------------------------------------------------------ */

static void figure(wcm_json_buf *h, const char *src, const char *caption) {
    wcm_json_buf_printf(h, "<figure><img src=\"%s\" alt=\"%s\"><figcaption>%s</figcaption></figure>", src, caption, caption);
}

/* Steps --------------------------------------------------------------------------- */

typedef struct {
    const char *dir;
    uint64_t seed;
    int retries;
    demo_progress_state progress;
    wcm_error err;
} demo;

static int save(demo *d, const char *name, const wcm_tensor *img, int index) {
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", d->dir, name);
    return wcm_image_write(p, img, index, 8, &d->err);
}

static void sampler_options(demo *d, const char *section, wcm_synth_options *o) {
    wcm_synth_options_default(o);
    o->seed = d->seed;
    o->retries = d->retries;
    /* The plateau rule (wcm/sampler.h): the authors' finest-scale nets often
     * settle just short of the 40 dB stopping rule and then drift away. */
    o->low.plateau_iters = DEMO_PLATEAU;
    for (int j = 0; j < WCM_MAX_LEVELS; j++) o->cond[j].plateau_iters = DEMO_PLATEAU;
    o->progress = demo_progress;
    o->progress_user = &d->progress;
    d->progress.section = section;
    d->progress.last = 0;
}

/* Synthesize n faces with model m; writes PREFIX_K.png. */
static int synthesize(demo *d, const wcm_model *m, int n, const char *section, const char *prefix,
                      wcm_synth_result *r) {
    wcm_synth_options o;
    sampler_options(d, section, &o);
    int rc = wcm_synth_sample(m, n, 40, 40, &o, r, &d->err);
    if (rc == WCM_ERR_NUMERIC && r->complete) rc = WCM_OK; /* diverged samples are shown and counted */
    const wcm_tensor *faces = wcm_synth_final(r);
    char name[64];
    for (int k = 0; !rc && k < n; k++) {
        snprintf(name, sizeof name, "%s_%d.png", prefix, k);
        rc = save(d, name, faces, k);
    }
    return rc;
}

/* The user's photo as a gray square of `size`: centre crop to a square,
 * then area (shrinking) or bicubic (enlarging) resize. */
static int photo_square(demo *d, const wcm_tensor *photo, int size, wcm_tensor *out) {
    wcm_tensor sq = {0};
    const int side = photo->h < photo->w ? photo->h : photo->w;
    int rc = wcm_image_center_crop(photo, side, side, &sq, &d->err);
    if (!rc && side == size) rc = wcm_tensor_copy(out, &sq, &d->err);
    else if (!rc)
        rc = wcm_image_resize(&sq, size, size, side > size ? WCM_RESIZE_AREA : WCM_RESIZE_BICUBIC, out, &d->err);
    wcm_tensor_free(&sq);
    return rc;
}

/* Mean horizontal stripe ratio of the first n images of a batch of 1-channel
 * images, and its standard error in *se (NaN for n < 2). */
static double stripe_mean(const wcm_tensor *faces, int n, double *se, demo *d) {
    double sum = 0, sq = 0;
    *se = NAN;
    for (int k = 0; k < n; k++) {
        double hr = NAN;
        if (wcm_stripe_ratio(faces, k, &hr, NULL, &d->err)) return NAN;
        sum += hr, sq += hr * hr;
    }
    *se = wcm_standard_error(sum, sq, n);
    return sum / n;
}

static int run_demo(int argc, char **argv) {
    const char *cmd = "demo";
    enum { O_OUT, O_MODEL, O_SEED, O_IMAGE, O_MODELS, O_N, O_RETRY, NOPTS };
    cli_opt opts[NOPTS] = {{"out", 1, 0, 0},    {"model", 1, 0, 0}, {"seed", 1, 0, 0}, {"image", 1, 0, 0},
                           {"models", 1, 0, 0}, {"n", 1, 0, 0},     {"retry", 1, 0, 0}};
    const char *pos[1];
    int npos, seed = 0, n = 4, retries = 2;
    if (cli_parse(cmd, argc, argv, opts, NOPTS, pos, &npos, 0)) return 1;
    if (cli_get_int(cmd, &opts[O_SEED], &seed) || cli_get_int(cmd, &opts[O_N], &n) ||
        cli_get_int(cmd, &opts[O_RETRY], &retries))
        return 1;
    if (seed < 0) return cli_error(cmd, "--seed must be non-negative, got %d", seed);
    if (n < 1 || n > 64) return cli_error(cmd, "--n must be in 1..64, got %d", n);
    if (retries < 0 || retries > 100) return cli_error(cmd, "--retry must be in 0..100, got %d", retries);
    demo d = {.dir = opts[O_OUT].set ? opts[O_OUT].value : "wcm-demo", .seed = (uint64_t)seed, .retries = retries};
    const char *models_dir = opts[O_MODELS].set ? opts[O_MODELS].value : NULL;
    char p160[PATH_MAX + 128], p320[PATH_MAX + 128], pwcm[PATH_MAX + 128];
    if (opts[O_MODEL].set) snprintf(p160, sizeof p160, "%s", opts[O_MODEL].value);
    else if (!find_model(models_dir, MODEL_160, p160, sizeof p160))
        return cli_error(cmd, "cannot find models/%s (set WCM_MODEL_DIR, --models DIR or --model MODEL)", MODEL_160);
    const int have320 = find_model(models_dir, MODEL_320, p320, sizeof p320);
    const int have_wcm = find_model(models_dir, MODEL_WCM, pwcm, sizeof pwcm);

    wcm_model m160, m320, mwcm;
    memset(&m320, 0, sizeof m320);
    memset(&mwcm, 0, sizeof mwcm);
    if (wcm_model_load(p160, &m160, &d.err)) return cli_lib_error(cmd, &d.err);
    int rc = 0;
    if (!m160.multiscale) rc = wcm_fail(&d.err, WCM_ERR_ARG, "%s is not a multi-scale model", p160);
    if (!rc && have320) rc = wcm_model_load(p320, &m320, &d.err);
    if (!rc && have_wcm) rc = wcm_model_load(pwcm, &mwcm, &d.err);
    wcm_tensor photo = {0};
    if (!rc && opts[O_IMAGE].set) rc = wcm_image_read(opts[O_IMAGE].value, &photo, &d.err);
    if (!rc && photo.data && !wcm_tensor_all_finite(&photo))
        rc = wcm_fail(&d.err, WCM_ERR_NUMERIC, "%s contains NaN or Inf", opts[O_IMAGE].value);
    if (!rc && photo.data && (photo.h < 40 || photo.w < 40))
        rc = wcm_fail(&d.err, WCM_ERR_SHAPE, "%s is %dx%d; the demo needs at least 40x40", opts[O_IMAGE].value,
                      photo.h, photo.w);
    if (!rc && mkdir(d.dir, 0777) != 0 && errno != EEXIST)
        rc = wcm_fail(&d.err, WCM_ERR_IO, "%s: cannot create directory: %s", d.dir, strerror(errno));
    if (rc) {
        wcm_model_free(&m160);
        wcm_model_free(&m320);
        wcm_model_free(&mwcm);
        wcm_tensor_free(&photo);
        return cli_lib_error(cmd, &d.err);
    }
    const int J160 = m160.levels, size160 = 40 << J160;
    const int real = photo.data != NULL;
    const int sr_levels = have320 ? m320.levels : J160, sr_size = 40 << sr_levels;
    const wcm_model *sr_model = have320 ? &m320 : &m160;
    const int nsteps = 4 + have320 + have_wcm;
    int step = 0;
    double t_start = wcm_seconds();
    printf("wcm demo: %d threads; models: %s%s%s%s%s\n", wcm_get_threads(), p160, have320 ? ", " : "",
           have320 ? p320 : "", have_wcm ? ", " : "", have_wcm ? pwcm : "");
    fflush(stdout);

    /* 1. Synthesis at 160x160 (and 320x320). */
    wcm_synth_result syn160 = {0}, syn320 = {0}, synwcm = {0}, sr = {0};
    double t_syn160 = 0, t_syn320 = 0, t_wcm = 0, t_sr = 0;
    cli_progress("[%d/%d] synthesizing %d faces of %dx%d, coarse to fine (Algorithm 2)\n", ++step, nsteps, n, size160,
                 size160);
    double t0 = wcm_seconds();
    rc = synthesize(&d, &m160, n, "160", "face160", &syn160);
    t_syn160 = wcm_seconds() - t0;
    if (!rc && have320) {
        cli_progress("[%d/%d] synthesizing %d faces of %dx%d\n", ++step, nsteps, n, sr_size, sr_size);
        t0 = wcm_seconds();
        rc = synthesize(&d, &m320, n, "320", "face320", &syn320);
        t_syn320 = wcm_seconds() - t0;
    }

    /* 2. Super-resolution x2^J of the photo (or of a synthesized face). */
    wcm_tensor sr_ref = {0}, sr_low = {0}, sr_in = {0}, sr_blocky = {0};
    double psnr_sr[2] = {NAN, NAN}, psnr_blocky = NAN;
    if (!rc) {
        cli_progress("[%d/%d] super-resolving %s x%d (%dx%d -> %dx%d)\n", ++step, nsteps,
                     real ? "the photo" : "a synthesized face", 1 << sr_levels, 40, 40, sr_size, sr_size);
        if (real) rc = photo_square(&d, &photo, sr_size, &sr_ref);
        else {
            const wcm_tensor *src = have320 ? wcm_synth_final(&syn320) : wcm_synth_final(&syn160);
            rc = wcm_tensor_alloc(&sr_ref, 1, sr_size, sr_size, 1, &d.err);
            if (!rc) memcpy(sr_ref.data, src->data, sizeof(float) * sr_size * sr_size);
        }
        if (!rc) rc = wcm_synth_lowpass(&sr_ref, sr_levels, &sr_low, &d.err);
        if (!rc) rc = wcm_tensor_alloc(&sr_in, 2, 40, 40, 1, &d.err); /* two samples of one input */
        if (!rc) {
            memcpy(sr_in.data, sr_low.data, sizeof(float) * 1600);
            memcpy(sr_in.data + 1600, sr_low.data, sizeof(float) * 1600);
        }
        wcm_synth_options o;
        sampler_options(&d, "x8 ", &o);
        o.seed = d.seed + 1;
        t0 = wcm_seconds();
        if (!rc) rc = wcm_synth_superres(sr_model, &sr_in, &o, &sr, &d.err);
        if (rc == WCM_ERR_NUMERIC && sr.complete) rc = WCM_OK;
        t_sr = wcm_seconds() - t0;
        if (!rc) rc = wcm_synth_lowpass_only(&sr_low, sr_levels, &sr_blocky, &d.err);
        const wcm_tensor *up = wcm_synth_final(&sr);
        const size_t px = (size_t)sr_size * sr_size;
        if (!rc && real) {
            psnr_sr[0] = wcm_psnr(sr_ref.data, up->data, px);
            psnr_sr[1] = wcm_psnr(sr_ref.data, up->data + px, px);
            psnr_blocky = wcm_psnr(sr_ref.data, sr_blocky.data, px);
        }
        if (!rc) rc = save(&d, "superres_reference.png", &sr_ref, 0);
        if (!rc) rc = save(&d, "superres_input.png", &sr_low, 0);
        if (!rc) rc = save(&d, "superres_lowpass_only.png", &sr_blocky, 0);
        if (!rc) rc = save(&d, "superres_1.png", up, 0);
        if (!rc) rc = save(&d, "superres_2.png", up, 1);
    }

    /* 3. Denoising at sigma 50 with the 160x160 model. */
    wcm_tensor clean = {0}, noisy = {0}, den_ms = {0}, den_lp = {0};
    double psnr_noisy = NAN, psnr_ms = NAN, psnr_lp = NAN;
    if (!rc) {
        cli_progress("[%d/%d] denoising %s at sigma %.0f (multi-scale and low-pass only)\n", ++step, nsteps,
                     real ? "the photo" : "a synthesized face", DEMO_SIGMA255);
        if (real) rc = photo_square(&d, &photo, size160, &clean);
        else {
            rc = wcm_tensor_alloc(&clean, 1, size160, size160, 1, &d.err);
            if (!rc) memcpy(clean.data, wcm_synth_final(&syn160)->data, sizeof(float) * size160 * size160);
        }
        if (!rc) rc = wcm_tensor_copy(&noisy, &clean, &d.err);
        if (!rc) rc = wcm_add_noise(&noisy, DEMO_SIGMA255 / 255, d.seed, 0, &d.err);
        if (!rc) rc = wcm_denoise(&m160, &noisy, 0, &den_ms, &d.err);
        if (!rc) rc = wcm_denoise(&m160, &noisy, 1, &den_lp, &d.err);
        const size_t px = (size_t)size160 * size160;
        if (!rc && real) {
            psnr_noisy = wcm_psnr(clean.data, noisy.data, px);
            psnr_ms = wcm_psnr(clean.data, den_ms.data, px);
            psnr_lp = wcm_psnr(clean.data, den_lp.data, px);
        }
        if (!rc) rc = save(&d, "denoise_clean.png", &clean, 0);
        if (!rc) rc = save(&d, "denoise_noisy.png", &noisy, 0);
        if (!rc) rc = save(&d, "denoise_multiscale.png", &den_ms, 0);
        if (!rc) rc = save(&d, "denoise_lowpass_only.png", &den_lp, 0);
    }

    /* 4. The wcm-trained model: samples (same seed) and its measured gap. */
    double stripes_authors = NAN, stripes_wcm = NAN, psnr_wcm = NAN, se_authors = NAN, se_wcm = NAN;
    wcm_tensor den_wcm = {0};
    if (!rc && have_wcm) {
        cli_progress("[%d/%d] the model trained by wcm: %d faces of %dx%d\n", ++step, nsteps, n, size160, size160);
        t0 = wcm_seconds();
        rc = synthesize(&d, &mwcm, n, "wcm", "wcm_face160", &synwcm);
        t_wcm = wcm_seconds() - t0;
        if (!rc) rc = wcm_denoise(&mwcm, &noisy, 0, &den_wcm, &d.err);
        if (!rc) rc = save(&d, "denoise_wcm_model.png", &den_wcm, 0);
        if (!rc && real) psnr_wcm = wcm_psnr(clean.data, den_wcm.data, (size_t)size160 * size160);
        if (!rc) stripes_wcm = stripe_mean(wcm_synth_final(&synwcm), n, &se_wcm, &d);
    }
    if (!rc) stripes_authors = stripe_mean(wcm_synth_final(&syn160), n, &se_authors, &d);
    double total = wcm_seconds() - t_start;

    /* The page. */
    wcm_json_buf h;
    wcm_json_buf_init(&h);
    if (!rc) {
        cli_progress("[%d/%d] writing %s/index.html\n", ++step, nsteps, d.dir);
        wcm_json_buf_printf(&h, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>wcm demo</title>\n"
                "<style>body{font-family:Helvetica,Arial,sans-serif;margin:28px;max-width:1100px;color:#222}"
                "figure{display:inline-block;margin:6px;text-align:center;vertical-align:top}"
                "figure img{width:200px;height:200px;image-rendering:pixelated;border:1px solid #bbb}"
                "figcaption{font-size:13px;max-width:210px}table{border-collapse:collapse;font-size:13px}"
                "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}.note{color:#555;font-size:14px}"
                "</style></head><body>\n<h1>wcm demo</h1>\n<p>Multi-scale local conditional probability models of "
                "images (Kadkhodaie, Guth, Mallat &amp; Simoncelli, ICLR 2023), computed by wcm on %d CPU threads "
                "in %.0f s. The face models are the authors' published networks (MIT licence; RF 13 conditional "
                "nets, converted to wcm's format; <code>models/README.md</code>).</p>\n",
            wcm_get_threads(), total);
        wcm_json_buf_printf(&h, "<h2>1. Faces synthesized at %dx%d</h2>\n<p>Drawn coarse to fine (Algorithm 2): a 40x40 low-pass "
                "image is sampled with the low-pass network, then the wavelet details of each finer scale with a "
                "local conditional network (receptive field 13x13) given the low-pass (%.0f s).</p>\n<div>",
            size160, size160, t_syn160);
        char src[64], cap[128];
        for (int k = 0; k < n; k++) {
            snprintf(src, sizeof src, "face160_%d.png", k);
            snprintf(cap, sizeof cap, "sample %d", k + 1);
            figure(&h, src, cap);
        }
        wcm_json_buf_printf(&h, "</div>\n");
        if (have320) {
            wcm_json_buf_printf(&h, "<h2>2. Faces synthesized at %dx%d</h2>\n<p>The same procedure with one more scale (J = 3) "
                    "and the authors' 320x320 networks (%.0f s).</p>\n<div>",
                sr_size, sr_size, t_syn320);
            for (int k = 0; k < n; k++) {
                snprintf(src, sizeof src, "face320_%d.png", k);
                snprintf(cap, sizeof cap, "sample %d", k + 1);
                figure(&h, src, cap);
            }
            wcm_json_buf_printf(&h, "</div>\n");
        }
        wcm_json_buf_printf(&h, "<h2>%d. Super-resolution x%d</h2>\n<p>Only the 40x40 low-pass of the image on the left is given; "
                "the details of every finer scale are sampled given it (%.0f s for two samples). The result's "
                "low-pass equals the input exactly.</p>\n",
            2 + have320, 1 << sr_levels, t_sr);
        if (real) {
            wcm_json_buf_printf(&h, "<p>Image: <code>");
            wcm_json_buf_html(&h, opts[O_IMAGE].value);
            wcm_json_buf_printf(&h, "</code> (gray, centre square, resized to %dx%d). PSNR against it (10 log10(1/MSE), values in "
                    "[0, 1]): a sample is one plausible image, not an estimate of this one, so its PSNR is lower "
                    "than that of a mean estimate.</p>\n<div>",
                sr_size, sr_size);
        } else {
            wcm_json_buf_printf(&h, "<p class=\"note\">Without <code>--image FILE</code> the input is the low-pass of a face "
                    "<em>synthesized</em> above, so no PSNR is shown: a synthesized reference would flatter the "
                    "method. Run <code>wcm demo --image photo.jpg</code> to super-resolve and denoise your own "
                    "photo.</p>\n<div>");
        }
        figure(&h, "superres_reference.png", real ? "the photo" : "synthesized face (not given to the method)");
        figure(&h, "superres_input.png", "input: 40x40 low-pass");
        char c1[128], c2[128], c3[128];
        snprintf(c3, sizeof c3, real ? "low-pass only (no details): %.2f dB" : "low-pass only (no details)", psnr_blocky);
        snprintf(c1, sizeof c1, real ? "sample 1: %.2f dB" : "sample 1", psnr_sr[0]);
        snprintf(c2, sizeof c2, real ? "sample 2: %.2f dB" : "sample 2", psnr_sr[1]);
        figure(&h, "superres_lowpass_only.png", c3);
        figure(&h, "superres_1.png", c1);
        figure(&h, "superres_2.png", c2);
        wcm_json_buf_printf(&h, "</div>\n<h2>%d. Denoising at &sigma; = %.0f</h2>\n<p>Gaussian noise of standard deviation "
                "%.0f/255 is added, then removed by the multi-scale pipeline (low-pass network, then the "
                "conditional networks) and by the low-pass-only baseline (details set to zero).</p>\n<div>",
            3 + have320, DEMO_SIGMA255, DEMO_SIGMA255);
        snprintf(c1, sizeof c1, real ? "noisy: %.2f dB" : "noisy", psnr_noisy);
        snprintf(c2, sizeof c2, real ? "multi-scale: %.2f dB" : "multi-scale", psnr_ms);
        snprintf(c3, sizeof c3, real ? "low-pass only: %.2f dB" : "low-pass only", psnr_lp);
        figure(&h, "denoise_clean.png", real ? "clean" : "clean (synthesized)");
        figure(&h, "denoise_noisy.png", c1);
        figure(&h, "denoise_multiscale.png", c2);
        figure(&h, "denoise_lowpass_only.png", c3);
        wcm_json_buf_printf(&h, "</div>\n");
        if (have_wcm) {
            wcm_json_buf_printf(&h, "<h2>%d. A model trained by wcm</h2>\n<p><code>models/%s</code>: the same architecture trained "
                    "by <code>wcm train</code> on 5,000 CelebA faces on a CPU (the authors trained on 202,499 "
                    "faces on GPUs). Its samples with the same seed (%.0f s):</p>\n<div>",
                4 + have320, MODEL_WCM, t_wcm);
            for (int k = 0; k < n; k++) {
                snprintf(src, sizeof src, "wcm_face160_%d.png", k);
                snprintf(cap, sizeof cap, "sample %d", k + 1);
                figure(&h, src, cap);
            }
            snprintf(c1, sizeof c1, real ? "wcm-trained model: %.2f dB" : "wcm-trained model", psnr_wcm);
            snprintf(c2, sizeof c2, real ? "authors' model: %.2f dB" : "authors' model", psnr_ms);
            wcm_json_buf_printf(&h, "</div>\n<p>The gap, measured in this run: stripe ratio of the samples (mean absolute "
                    "difference of horizontal neighbours inside a 2x2 block over that across blocks; natural "
                    "images give 1.00; &plusmn; its standard error over the %d samples): wcm-trained %.3f &plusmn; "
                    "%.3f, authors' %.3f &plusmn; %.3f.%s</p>\n<div>",
                n, stripes_wcm, se_wcm, stripes_authors, se_authors,
                real ? " Denoising the photo at &sigma; = 50:" : " Denoising the same noisy face:");
            figure(&h, "denoise_multiscale.png", c2);
            figure(&h, "denoise_wcm_model.png", c1);
            wcm_json_buf_printf(&h, "</div>\n<p>Denoising PSNR on the first 50 CelebA test faces for both models, at every noise "
                    "level of the paper's Figure 3, is in <code>models/README.md</code>.</p>\n");
        }
        wcm_json_buf_printf(&h, "<h2>Settings</h2>\n<p>Algorithm 1 with the paper's parameters (h0 0.01, &beta; 0.1, "
                "&sigma;<sub>0</sub> 1, &sigma;<sub>L</sub> 0.01, ascending steps), plus two safeguards: a sample "
                "whose SNR settles within 3 dB of the 40 dB target without improving for %d iterations stops "
                "there (<code>--plateau %d</code>: the authors' finest-scale nets often settle just short of the "
                "target and then drift away, in their code as in wcm), and a sample failing a health check (sigma "
                "or std blowing up, image values outside [-0.5, 1.5]) is drawn again, up to %d times. Seed %d.</p>\n",
            DEMO_PLATEAU, DEMO_PLATEAU, retries, seed);
        wcm_json_buf_printf(&h, "<table><tr><th>run</th><th>net</th><th>iterations per sample</th><th>redraws</th><th>seconds</th>"
                "</tr>\n");
        const wcm_synth_result *runs[] = {&syn160, &syn320, &sr, &synwcm};
        const char *run_names[] = {"synthesis 160", "synthesis 320", "super-resolution", "wcm-trained model"};
        for (int i = 0; i < 4; i++)
            for (int s = 0; s < runs[i]->nstages; s++) {
                const wcm_synth_stage *st = &runs[i]->stage[s];
                int redraws = 0;
                wcm_json_buf_printf(&h, "<tr><td>%s</td><td>%s</td><td>", run_names[i], st->name);
                for (int k = 0; k < st->batch; k++) {
                    const int status = st->results[k].status;
                    wcm_json_buf_printf(&h, "%s%d%s", k ? ", " : "", st->results[k].iterations,
                        status == WCM_SAMPLE_DIVERGED  ? " (diverged)"
                        : status == WCM_SAMPLE_PLATEAU ? " (plateau)"
                        : status == WCM_SAMPLE_CAP     ? " (cap)"
                                                       : "");
                    redraws += st->results[k].retries;
                }
                wcm_json_buf_printf(&h, "</td><td>%d</td><td>%.1f</td></tr>\n", redraws, st->seconds);
            }
        wcm_json_buf_printf(&h, "</table>\n</body></html>\n");
        char p[PATH_MAX + 64];
        snprintf(p, sizeof p, "%s/index.html", d.dir);
        rc = h.failed ? wcm_fail(&d.err, WCM_ERR_NOMEM, "out of memory") : wcm_write_file_atomic(p, h.data, h.len, &d.err);
    }
    if (!rc) {
        printf("synthesis: %d faces %dx%d in %.1f s", n, size160, size160, t_syn160);
        if (have320) printf(", %d faces %dx%d in %.1f s", n, sr_size, sr_size, t_syn320);
        printf("\nsuper-resolution x%d of %s in %.1f s", 1 << sr_levels, real ? "the photo" : "a synthesized face",
               t_sr);
        if (real) printf(": samples %.2f and %.2f dB (low-pass only %.2f dB)", psnr_sr[0], psnr_sr[1], psnr_blocky);
        printf("\n");
        if (real)
            printf("denoising at sigma %.0f: noisy %.2f dB -> multi-scale %.2f dB, low-pass only %.2f dB\n", DEMO_SIGMA255,
                   psnr_noisy, psnr_ms, psnr_lp);
        if (have_wcm) {
            printf("wcm-trained model: samples in %.1f s, stripe ratio %.3f ± %.3f (authors' model %.3f ± %.3f, "
                   "natural images 1.00)",
                   t_wcm, stripes_wcm, se_wcm, stripes_authors, se_authors);
            if (real) printf("; denoising %.2f dB (authors' %.2f dB)", psnr_wcm, psnr_ms);
            printf("\n");
        }
        int diverged = syn160.diverged + syn320.diverged + sr.diverged + synwcm.diverged;
        if (diverged) printf("note: %d sample%s diverged after %d redraws (marked in the page)\n", diverged,
                             diverged == 1 ? "" : "s", retries);
        printf("wrote %s/index.html (%.1f s in total)\n", d.dir, wcm_seconds() - t_start);
    }
    wcm_json_buf_free(&h);
    wcm_synth_result_free(&syn160);
    wcm_synth_result_free(&syn320);
    wcm_synth_result_free(&synwcm);
    wcm_synth_result_free(&sr);
    wcm_tensor *tensors[] = {&photo, &sr_ref, &sr_low, &sr_in, &sr_blocky, &clean, &noisy, &den_ms, &den_lp, &den_wcm};
    for (size_t i = 0; i < sizeof tensors / sizeof *tensors; i++) wcm_tensor_free(tensors[i]);
    wcm_model_free(&m160);
    wcm_model_free(&m320);
    wcm_model_free(&mwcm);
    return rc ? cli_lib_error(cmd, &d.err) : 0;
}

const cli_command cmd_demo = {
    "demo", "synthesize, super-resolve and denoise faces with the shipped models; writes an HTML page",
    "usage: wcm demo [--out DIR] [--image FILE] [--seed N] [--n N] [--retry K]\n"
    "                [--models DIR] [--model MODEL]\n\n"
    "Runs the paper's uses of its face models with the models shipped in models/\n"
    "(no network, no data needed):\n"
    "  1. synthesizes N faces of 160x160 and N of 320x320 coarse to fine\n"
    "     (Algorithm 2) with the authors' published networks;\n"
    "  2. super-resolves x8 (40x40 -> 320x320) and denoises (sigma 50) the photo\n"
    "     given with --image, or else a synthesized face (labelled as such, and\n"
    "     without PSNRs, which a synthesized reference would flatter);\n"
    "  3. synthesizes N faces with the model trained by wcm itself and measures\n"
    "     its gap to the authors' (stripe ratio; denoising PSNR with --image).\n"
    "Writes DIR/index.html with the images, numbers and parameters, and the PNGs\n"
    "beside it. Progress goes to stderr. About 2 minutes on 2 cores.\n\n"
    "  --out DIR      output folder (default wcm-demo)\n"
    "  --image FILE   a photo (PNG/JPEG, gray or colour -> gray, at least 40x40):\n"
    "                 its centre square is used, resized to 320 and 160\n"
    "  --seed N       random seed (default 0)\n"
    "  --n N          faces per synthesis (default 4)\n"
    "  --retry K      redraws of a sample that fails a health check (default 2)\n"
    "  --models DIR   folder holding the shipped models (default: found next to\n"
    "                 the executable, in the install prefix or the source tree)\n"
    "  --model MODEL  another 160x160 multi-scale model in place of the authors'\n",
    run_demo};

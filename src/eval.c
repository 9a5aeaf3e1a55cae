/* Figure 3: PSNR of denoisers across noise levels, and its report. */
#include "wcm/eval.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "json.h"
#include "wcm/plot.h"
#include "wcm/image.h"
#include "wcm/io.h"

/* Images per network call. */
#define EVAL_BATCH 10

void wcm_eval_denoise_options_default(wcm_eval_denoise_options *o) {
    memset(o, 0, sizeof *o);
    o->n = 50;
    o->crop = 160;
    o->nsigmas = 10;
    for (int i = 0; i < 10; i++) o->sigmas255[i] = pow(10.0, 0.5 + 2.3 * i / 9.0); /* numpy logspace(0.5, 2.8, 10) */
    o->noise = WCM_NOISE_TORCH;
}

static void say(const wcm_eval_denoise_options *o, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void say(const wcm_eval_denoise_options *o, const char *fmt, ...) {
    if (!o->progress) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    o->progress(o->progress_user, line);
}

static const char *base_name(const char *path) {
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

void wcm_eval_denoise_result_free(wcm_eval_denoise_result *r) {
    for (int i = 0; r->image_names && i < r->n; i++) free(r->image_names[i]);
    free(r->image_names);
    r->image_names = NULL;
}

/* The curves (every model, plus the low-pass-only baseline of each
 * multi-scale one). */
static int plan_curves(const wcm_model *models, const char *const *names, int nmodels,
                       wcm_eval_denoise_result *r, wcm_error *err) {
    for (int i = 0; i < nmodels; i++) {
        const wcm_model *m = &models[i];
        if (!m->multiscale && wcm_net_get_kind(m->net) == WCM_NET_CONDITIONAL)
            return wcm_fail(err, WCM_ERR_ARG,
                            "%s is a lone conditional network; it needs a low-pass (bundle it into a multi-scale model)",
                            names[i]);
        for (int lp = 0; lp <= m->multiscale; lp++) {
            if (r->ncurves >= WCM_EVAL_MAX_CURVES) return wcm_fail(err, WCM_ERR_ARG, "too many models (at most %d curves)", WCM_EVAL_MAX_CURVES);
            wcm_eval_curve *c = &r->curves[r->ncurves++];
            memset(c, 0, sizeof *c);
            snprintf(c->name, sizeof c->name, "%s%s", names[i], lp ? ":lowpass-only" : "");
            c->model = i;
            c->lowpass_only = lp;
            c->multiscale = m->multiscale;
            c->rf = wcm_net_rf(m->multiscale ? m->cond[0] : m->net);
        }
    }
    return WCM_OK;
}

/* The first n images of the folder (by name), centre-cropped, into clean. */
static int load_crops(const wcm_eval_denoise_options *o, wcm_eval_denoise_result *r, wcm_tensor *clean,
                      wcm_error *err) {
    char **paths = NULL;
    int count = 0, skipped = 0, n = o->n;
    int rc = wcm_list_images(o->images_dir, &paths, &count, &skipped, err);
    if (rc) return rc;
    if (count == 0) {
        rc = wcm_fail(err, WCM_ERR_ARG, "%s holds no images (.png, .jpg, .jpeg, .npy)%s", o->images_dir,
                      skipped ? " (other files were skipped)" : "");
        wcm_free_paths(paths, count);
        return rc;
    }
    if (n > count) {
        say(o, "only %d images in %s, using all", count, o->images_dir);
        n = count;
    }
    if (skipped) say(o, "skipped %d non-image entr%s in %s", skipped, skipped == 1 ? "y" : "ies", o->images_dir);
    const int crop = o->crop;
    /* A batch of EVAL_BATCH crops goes through each network at once. */
    rc = wcm_check_pixels(n < EVAL_BATCH ? n : EVAL_BATCH, crop, crop, "--crop", err);
    if (!rc) rc = wcm_tensor_alloc(clean, n, crop, crop, 1, err);
    if (!rc && !(r->image_names = calloc((size_t)n, sizeof *r->image_names)))
        rc = wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    for (int i = 0; !rc && i < n; i++) {
        wcm_tensor img, c;
        rc = wcm_image_read(paths[i], &img, err);
        if (rc) break;
        rc = wcm_image_center_crop(&img, crop, crop, &c, err);
        wcm_tensor_free(&img);
        if (rc) {
            wcm_fail_context(err, rc, "%s", paths[i]);
            break;
        }
        memcpy(clean->data + (size_t)i * crop * crop, c.data, sizeof(float) * crop * crop);
        wcm_tensor_free(&c);
        if (!(r->image_names[i] = strdup(base_name(paths[i])))) rc = wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
        r->n = i + 1;
    }
    wcm_free_paths(paths, count);
    return rc;
}

static int write_example(const char *dir, const char *name, const wcm_tensor *t, wcm_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return wcm_image_write(path, t, 0, 8, err);
}

/* Every rank's status, so that no rank waits in a sum another has left: a
 * rank that failed keeps its own message, the others report that one did. */
static int agree(wcm_comm *comm, int rc, wcm_error *err) {
    if (wcm_comm_size(comm) == 1) return rc;
    double failed = rc ? 1 : 0;
    int crc = wcm_comm_allreduce_double(comm, &failed, 1, err);
    if (rc || crc) return rc ? rc : crc;
    return failed > 0 ? wcm_fail(err, WCM_ERR_IO, "Figure 3: another process failed") : WCM_OK;
}

int wcm_eval_denoise(const wcm_model *models, const char *const *names, int nmodels, const wcm_eval_denoise_options *o,
                     wcm_eval_denoise_result *r, wcm_error *err) {
    memset(r, 0, sizeof *r);
    if (nmodels < 1 || !o->images_dir || o->n < 1 || o->crop < 1 || o->nsigmas < 1 || o->nsigmas > WCM_EVAL_MAX_SIGMAS)
        return wcm_fail(err, WCM_ERR_ARG, "Figure 3: needs models, an image folder, n >= 1, a crop and 1 to %d noise levels",
                        WCM_EVAL_MAX_SIGMAS);
    snprintf(r->images_dir, sizeof r->images_dir, "%s", o->images_dir);
    r->crop = o->crop, r->seed = o->seed, r->noise = o->noise, r->nsigmas = o->nsigmas;
    memcpy(r->sigmas255, o->sigmas255, sizeof r->sigmas255);
    /* Models first: a bad model should fail before any slow work. */
    int rc = plan_curves(models, names, nmodels, r, err);
    wcm_tensor clean = {0}, noisy = {0}, batch = {0}, den = {0};
    float *pattern = NULL;
    if (!rc) rc = load_crops(o, r, &clean, err);
    if (!rc && o->examples_dir && mkdir(o->examples_dir, 0777) != 0 && errno != EEXIST)
        rc = wcm_fail(err, WCM_ERR_IO, "%s: cannot create directory: %s", o->examples_dir, strerror(errno));
    const int nimg = r->n, nsig = o->nsigmas, crop = o->crop;
    const double *sig = o->sigmas255;
    int example_sigma = 0; /* the level closest to 100 (0-255) for the report's examples */
    for (int s = 0; s < nsig; s++)
        if (fabs(log(sig[s] / 100)) < fabs(log(sig[example_sigma] / 100))) example_sigma = s;
    r->example_sigma = example_sigma;
    const double t0 = wcm_seconds();
    const size_t px = (size_t)crop * crop;
    if (!rc) rc = wcm_tensor_copy(&noisy, &clean, err);
    if (!rc && !(pattern = wcm_alloc(wcm_tensor_count(&clean) * sizeof(float))))
        rc = wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    if (!rc) wcm_noise_pattern(o->noise, (uint64_t)o->seed, nimg, px, pattern);
    /* This rank's images, and every image's PSNR (zero where another rank
     * measures it) so that the sum over ranks is exact. */
    wcm_comm *comm = o->comm ? o->comm : wcm_comm_serial();
    int first = 0, count = 0;
    wcm_comm_share(nimg, wcm_comm_rank(comm), wcm_comm_size(comm), &first, &count);
    double *image_psnr = NULL;
    if (!rc && !(image_psnr = malloc(sizeof(double) * (size_t)(nimg > 0 ? nimg : 1))))
        rc = wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    const char *examples = first == 0 && count > 0 ? o->examples_dir : NULL;
    rc = agree(comm, rc, err);
    for (int s = 0; s < nsig && !rc; s++) {
        /* The same noise pattern scaled to every level, as the reference does. */
        wcm_noise_apply_255(clean.data, pattern, wcm_tensor_count(&clean), sig[s], noisy.data);
        double acc = 0;
        for (int i = 0; i < nimg; i++) acc += wcm_psnr(clean.data + i * px, noisy.data + i * px, px);
        r->noisy_psnr[s] = acc / nimg;
        if (s == example_sigma && examples) {
            rc = write_example(examples, "example_clean.png", &clean, err);
            if (!rc) rc = write_example(examples, "example_noisy.png", &noisy, err);
        }
        for (int c = 0; c < r->ncurves && !rc; c++) {
            wcm_eval_curve *cv = &r->curves[c];
            memset(image_psnr, 0, sizeof(double) * (size_t)nimg);
            for (int b0 = first; b0 < first + count && !rc; b0 += EVAL_BATCH) {
                int nb = first + count - b0 < EVAL_BATCH ? first + count - b0 : EVAL_BATCH;
                batch = wcm_tensor_view(noisy.data + (size_t)b0 * px, nb, crop, crop, 1);
                /* Crops not divisible by 2^J: padded by symmetric reflection, cropped back. */
                const wcm_denoise_options dopt = {.lowpass_only = cv->lowpass_only, .pad = 1};
                rc = wcm_denoise_ex(&models[cv->model], &batch, &dopt, &den, NULL, err);
                if (rc) break;
                for (int i = 0; i < nb; i++) image_psnr[b0 + i] = wcm_psnr(clean.data + (b0 + i) * px, den.data + i * px, px);
                if (s == example_sigma && b0 == 0 && examples) {
                    char name[64];
                    snprintf(name, sizeof name, "example_%d.png", c);
                    rc = write_example(examples, name, &den, err);
                }
                wcm_tensor_free(&den);
            }
            rc = agree(comm, rc, err);
            if (!rc) rc = wcm_comm_allreduce_double(comm, image_psnr, (size_t)nimg, err);
            double sum = 0;
            for (int i = 0; i < nimg; i++) sum += image_psnr[i];
            cv->psnr[s] = sum / nimg;
            say(o, "sigma %7.2f (%d/%d)  %-28s %6.2f dB  [%.0f s]", sig[s], s + 1, nsig, cv->name, cv->psnr[s],
                wcm_seconds() - t0);
        }
    }
    r->seconds = wcm_seconds() - t0;
    free(image_psnr);
    wcm_free(pattern);
    wcm_tensor_free(&clean);
    wcm_tensor_free(&noisy);
    wcm_tensor_free(&den);
    if (rc) wcm_eval_denoise_result_free(r);
    return rc;
}

/* ---- the report ---------------------------------------------------------------- */

/* Writes a finished report buffer (out of memory is reported, not written). */
static int write_text(const char *dir, const char *name, wcm_json_buf *b, wcm_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int rc = b->failed ? wcm_fail(err, WCM_ERR_NOMEM, "%s: out of memory", path)
                       : wcm_write_file_atomic(path, b->data ? b->data : "", b->len, err);
    wcm_json_buf_free(b);
    return rc;
}

static void json_numbers(wcm_json_buf *b, const char *fmt, const double *x, int n) {
    wcm_json_buf_puts(b, "[");
    for (int s = 0; s < n; s++) {
        wcm_json_buf_puts(b, s ? ", " : "");
        wcm_json_buf_number_fmt(b, fmt, x[s]);
    }
    wcm_json_buf_puts(b, "]");
}

static int write_json(const wcm_eval_denoise_result *r, const char *dir, wcm_error *err) {
    /* Names through the escaper, numbers through the writer that turns
     * anything non-finite into null. */
    wcm_json_buf text;
    wcm_json_buf_init(&text);
    wcm_json_buf_puts(&text, "{\n \"images_dir\": ");
    wcm_json_buf_string(&text, r->images_dir);
    wcm_json_buf_printf(&text, ",\n \"n\": %d,\n \"crop\": %d,\n \"seed\": %d,\n \"noise\": \"%s\",\n \"seconds\": ", r->n,
                        r->crop, r->seed, r->noise == WCM_NOISE_TORCH ? "torch" : "philox");
    wcm_json_buf_number_fmt(&text, "%.2f", r->seconds);
    wcm_json_buf_puts(&text, ",\n \"images\": [");
    for (int i = 0; i < r->n; i++) {
        wcm_json_buf_puts(&text, i ? ", " : "");
        wcm_json_buf_string(&text, r->image_names[i]);
    }
    wcm_json_buf_puts(&text, "],\n \"sigmas_255\": ");
    json_numbers(&text, "%.10g", r->sigmas255, r->nsigmas);
    wcm_json_buf_puts(&text, ",\n \"noisy\": ");
    json_numbers(&text, "%.4f", r->noisy_psnr, r->nsigmas);
    wcm_json_buf_puts(&text, ",\n \"models\": {");
    for (int c = 0; c < r->ncurves; c++) {
        wcm_json_buf_puts(&text, c ? ",\n  " : "\n  ");
        wcm_json_buf_string(&text, r->curves[c].name);
        wcm_json_buf_puts(&text, ": ");
        json_numbers(&text, "%.4f", r->curves[c].psnr, r->nsigmas);
    }
    wcm_json_buf_puts(&text, "\n }\n}\n");
    return write_text(dir, "results.json", &text, err);
}

static int write_html(const wcm_eval_denoise_result *r, const char *dir, wcm_error *err) {
    /* Every name and path through the HTML escaper. */
    const int nsig = r->nsigmas;
    wcm_json_buf text;
    wcm_json_buf_init(&text);
    wcm_json_buf_puts(&text,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>wcm eval-denoise</title>\n"
        "<style>body{font-family:Helvetica,Arial,sans-serif;margin:24px;color:#222}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}"
        "th:first-child,td:first-child{text-align:left}figure{display:inline-block;margin:6px;text-align:center}"
        "figure img{width:160px;height:160px;image-rendering:pixelated;border:1px solid #ccc}"
        "figcaption{font-size:12px;max-width:170px}</style></head><body>\n"
        "<h1>Denoising: PSNR across noise levels</h1>\n");
    wcm_json_buf_printf(&text, "<p>%d images from <code>", r->n);
    wcm_json_buf_html(&text, r->images_dir);
    wcm_json_buf_printf(&text, "</code> (first by name), centre crop %dx%d, gray; Gaussian noise seed %d; "
                               "%d noise levels; %.1f s in total.</p>\n<img src=\"figure3.svg\" alt=\"PSNR out against PSNR in\">\n"
                               "<h2>Mean PSNR (dB)</h2>\n<table><tr><th>model \\ sigma (0-255)</th>",
                        r->crop, r->crop, r->seed, nsig, r->seconds);
    for (int s = 0; s < nsig; s++) wcm_json_buf_printf(&text, "<th>%.1f</th>", r->sigmas255[s]);
    wcm_json_buf_puts(&text, "</tr>\n<tr><td><i>noisy input</i></td>");
    for (int s = 0; s < nsig; s++) wcm_json_buf_printf(&text, "<td>%.2f</td>", r->noisy_psnr[s]);
    wcm_json_buf_puts(&text, "</tr>\n");
    for (int c = 0; c < r->ncurves; c++) {
        wcm_json_buf_puts(&text, "<tr><td>");
        wcm_json_buf_html(&text, r->curves[c].name);
        wcm_json_buf_puts(&text, "</td>");
        for (int s = 0; s < nsig; s++) wcm_json_buf_printf(&text, "<td>%.2f</td>", r->curves[c].psnr[s]);
        wcm_json_buf_puts(&text, "</tr>\n");
    }
    wcm_json_buf_printf(&text, "</table>\n<h2>Example at sigma %.1f (image ", r->sigmas255[r->example_sigma]);
    wcm_json_buf_html(&text, r->image_names[0]);
    wcm_json_buf_puts(&text, ")</h2>\n<div>\n");
    wcm_json_buf_puts(&text, "<figure><img src=\"example_clean.png\"><figcaption>clean</figcaption></figure>\n");
    wcm_json_buf_puts(&text, "<figure><img src=\"example_noisy.png\"><figcaption>noisy</figcaption></figure>\n");
    for (int c = 0; c < r->ncurves; c++) {
        wcm_json_buf_printf(&text, "<figure><img src=\"example_%d.png\"><figcaption>", c);
        wcm_json_buf_html(&text, r->curves[c].name);
        wcm_json_buf_puts(&text, "</figcaption></figure>\n");
    }
    wcm_json_buf_puts(&text, "</div>\n<p>Files: <a href=\"results.csv\">results.csv</a>, <a href=\"results.json\">results.json</a>, "
                             "<a href=\"figure3.svg\">figure3.svg</a>.</p>\n</body></html>\n");
    return write_text(dir, "report.html", &text, err);
}

int wcm_eval_denoise_write_report(const wcm_eval_denoise_result *r, const char *dir, wcm_error *err) {
    if (r->n < 1 || r->ncurves < 1) return wcm_fail(err, WCM_ERR_ARG, "no Figure 3 results to report");
    wcm_json_buf text;
    wcm_json_buf_init(&text);
    wcm_json_buf_puts(&text, "model,sigma255,psnr_noisy,psnr_denoised\n");
    for (int c = 0; c < r->ncurves; c++)
        for (int s = 0; s < r->nsigmas; s++) {
            wcm_json_buf_csv(&text, r->curves[c].name);
            wcm_json_buf_printf(&text, ",%.6g,%.4f,%.4f\n", r->sigmas255[s], r->noisy_psnr[s], r->curves[c].psnr[s]);
        }
    int rc = write_text(dir, "results.csv", &text, err);
    if (!rc) rc = write_json(r, dir, err);
    if (rc) return rc;
    /* One colour per receptive field (flat dashed, multi-scale solid) so the
     * paper's comparison reads at a glance; low-pass-only curves are gray. */
    static const char *rf_colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"};
    int rf_seen[WCM_EVAL_MAX_CURVES], nrf = 0;
    wcm_plot_series series[WCM_EVAL_MAX_CURVES];
    for (int c = 0; c < r->ncurves; c++) {
        const wcm_eval_curve *cv = &r->curves[c];
        int slot = 0;
        while (slot < nrf && rf_seen[slot] != cv->rf) slot++;
        if (slot == nrf) rf_seen[nrf++] = cv->rf;
        series[c].name = cv->name;
        series[c].x = r->noisy_psnr;
        series[c].y = cv->psnr;
        series[c].n = r->nsigmas;
        series[c].dashed = !cv->multiscale || cv->lowpass_only;
        series[c].color = cv->lowpass_only ? "#888888" : rf_colors[slot % 8];
    }
    wcm_plot plot = {"Denoising performance", "input PSNR (dB)", "output PSNR (dB)", 1, 820, 560};
    char path[4096];
    snprintf(path, sizeof path, "%s/figure3.svg", dir);
    rc = wcm_plot_write_svg(path, &plot, series, r->ncurves, err);
    if (!rc) rc = write_html(r, dir, err);
    return rc;
}

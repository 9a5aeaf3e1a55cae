/* `wcm reproduce`: one command per experiment of the paper, each writing an
 * HTML report (SVG plots, image grids) with CSV/JSON results and, where the
 * authors' numbers are known (reference JSON files), those beside wcm's. */
#include "cli.h"
#include "wcm/plot.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wcm/json.h"
#include "wcm/eval.h"
#include "wcm/image.h"
#include "wcm/io.h"
#include "wcm/jacobian.h"
#include "wcm/synth.h"

static const int RFS[5] = {5, 9, 13, 23, 43};

typedef struct {
    const char *weights, *data, *out;
    char reference[4096]; /* "" when none was found */
    int quick, n, seed;
    wcm_error err;
} run_ctx;

/* ---- inputs -------------------------------------------------------------------- */

static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* A model by name (flat_rfR, ms_rfR, ms320_rf13): NAME.safetensors in the
 * weights folder, else the authors' denoisers layout (imported on the fly). */
static int load_model(run_ctx *c, const char *name, wcm_model *m) {
    char path[4096];
    memset(m, 0, sizeof *m);
    snprintf(path, sizeof path, "%s/%s.safetensors", c->weights, name);
    if (is_file(path)) return wcm_model_load(path, m, &c->err);
    int rf = 0;
    if (sscanf(name, "flat_rf%d", &rf) == 1) {
        snprintf(path, sizeof path, "%s/flat/celebA_160x160_gray/noise_range_0to255_RF_%dx%d/model.pt", c->weights, rf, rf);
        if (!is_file(path))
            return wcm_fail(&c->err, WCM_ERR_IO, "no %s.safetensors nor the authors' %s in %s", name, path, c->weights);
        return wcm_model_load(path, m, &c->err);
    }
    const int big = sscanf(name, "ms320_rf%d", &rf) == 1;
    if (!big && sscanf(name, "ms_rf%d", &rf) != 1) return wcm_fail(&c->err, WCM_ERR_ARG, "unknown model %s", name);
    const char *set = big ? "celebA_320x320_gray" : "celebA_160x160_gray";
    wcm_array_list_init(&m->meta);
    m->multiscale = 1;
    m->levels = big ? 3 : 2;
    snprintf(path, sizeof path, "%s/multi_scale/%s/noise_range_0to255_RF_40x40_low/model.pt", c->weights, set);
    int rc = is_file(path) ? wcm_net_load_torch(path, &m->low, &c->err)
                           : wcm_fail(&c->err, WCM_ERR_IO, "no %s.safetensors nor the authors' %s", name, path);
    for (int j = 0; !rc && j < m->levels; j++) {
        snprintf(path, sizeof path, "%s/multi_scale/%s/noise_range_0to255_RF_%dx%d_scale_%d/model.pt", c->weights, set, rf,
                 rf, j);
        rc = wcm_net_load_torch(path, &m->cond[j], &c->err);
    }
    if (rc) wcm_model_free(m);
    return rc;
}

/* The authors' numbers: a file of the reference folder, or NULL. */
static wcm_json *load_reference(run_ctx *c, const char *file) {
    if (!c->reference[0]) return NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", c->reference, file);
    unsigned char *text;
    size_t len;
    wcm_error e;
    wcm_json *j = NULL;
    if (wcm_read_file(path, &text, &len, &e)) return NULL;
    if (wcm_json_parse((const char *)text, len, &j, &e)) j = NULL;
    free(text);
    return j;
}

static double json_num(const wcm_json *v) {
    double x = NAN;
    if (wcm_json_number(v, &x)) return NAN;
    return x;
}

/* The first n images of dir (by name), centre-cropped to crop x crop, gray. */
static int load_images(run_ctx *c, const char *sub, int n, int crop, wcm_tensor *out, char ***names) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", c->data, sub);
    char **paths = NULL;
    int count = 0, skipped = 0;
    int rc = wcm_list_images(dir, &paths, &count, &skipped, &c->err);
    if (rc) return rc;
    if (count < n) n = count;
    if (n == 0) rc = wcm_fail(&c->err, WCM_ERR_ARG, "%s holds no images", dir);
    if (!rc) rc = wcm_tensor_alloc(out, n, crop, crop, 1, &c->err);
    if (!rc && !(*names = calloc((size_t)n, sizeof **names))) rc = wcm_fail(&c->err, WCM_ERR_NOMEM, "out of memory");
    for (int i = 0; !rc && i < n; i++) {
        wcm_tensor img = {0}, cr = {0};
        rc = wcm_image_read(paths[i], &img, &c->err);
        if (!rc) rc = wcm_image_center_crop(&img, crop, crop, &cr, &c->err);
        if (!rc) memcpy(out->data + (size_t)i * crop * crop, cr.data, sizeof(float) * crop * crop);
        wcm_tensor_free(&img);
        wcm_tensor_free(&cr);
        const char *b = strrchr(paths[i], '/');
        if (!rc) (*names)[i] = strdup(b ? b + 1 : paths[i]);
    }
    wcm_free_paths(paths, count);
    return rc;
}

static void free_names(char **names, int n) {
    for (int i = 0; names && i < n; i++) free(names[i]);
    free(names);
}

/* ---- the report page ------------------------------------------------------------ */

static void page_begin(wcm_json_buf *h, const char *title, const run_ctx *c) {
    wcm_json_buf_init(h);
    wcm_json_buf_puts(h, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>");
    wcm_json_buf_html(h, title);
    wcm_json_buf_puts(h, "</title>\n<style>body{font-family:Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1200px}"
                         "table{border-collapse:collapse;font-size:13px;margin:8px 0}td,th{border:1px solid #ccc;"
                         "padding:3px 7px;text-align:right}th:first-child,td:first-child{text-align:left}"
                         ".ref{color:#777}img.grid{max-width:100%;image-rendering:pixelated;border:1px solid #ccc}"
                         "</style></head><body>\n<h1>");
    wcm_json_buf_html(h, title);
    wcm_json_buf_puts(h, "</h1>\n<p>weights <code>");
    wcm_json_buf_html(h, c->weights);
    wcm_json_buf_puts(h, "</code>, data <code>");
    wcm_json_buf_html(h, c->data);
    wcm_json_buf_printf(h, "</code>, %s; authors' numbers: ", c->quick ? "<b>--quick</b> (fewer images)" : "full run");
    if (c->reference[0]) {
        wcm_json_buf_puts(h, "<code>");
        wcm_json_buf_html(h, c->reference);
        wcm_json_buf_puts(h, "</code>");
    } else {
        wcm_json_buf_puts(h, "none found (give --reference DIR)");
    }
    wcm_json_buf_puts(h, ".</p>\n");
}

static void page_svg(wcm_json_buf *h, const wcm_plot *p, const wcm_plot_series *s, int ns) {
    char *svg = wcm_plot_render_svg(p, s, ns);
    if (!svg) {
        h->failed = 1;
        return;
    }
    wcm_json_buf_puts(h, "<div>");
    wcm_json_buf_puts(h, svg);
    wcm_json_buf_puts(h, "</div>\n");
    free(svg);
}

static int write_buf(run_ctx *c, const char *name, wcm_json_buf *b) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", c->out, name);
    int rc = b->failed ? wcm_fail(&c->err, WCM_ERR_NOMEM, "%s: out of memory", path)
                       : wcm_write_file_atomic(path, b->data ? b->data : "", b->len, &c->err);
    wcm_json_buf_free(b);
    return rc;
}

static int page_end(run_ctx *c, wcm_json_buf *h, double seconds) {
    wcm_json_buf_printf(h, "<p>Wall time %.1f s on %d threads. Files: <a href=\"results.csv\">results.csv</a>, "
                           "<a href=\"results.json\">results.json</a>.</p>\n</body></html>\n",
                        seconds, wcm_get_threads());
    return write_buf(c, "report.html", h);
}

/* Writes results.csv, results.json and report.html when rc is WCM_OK (the
 * buffers are freed in every case); returns the first failure. */
static int finish(run_ctx *c, int rc, wcm_json_buf *h, wcm_json_buf *csv, wcm_json_buf *js, double t0) {
    if (!rc) rc = write_buf(c, "results.csv", csv);
    else wcm_json_buf_free(csv);
    if (!rc) rc = write_buf(c, "results.json", js);
    else wcm_json_buf_free(js);
    if (!rc) rc = page_end(c, h, wcm_seconds() - t0);
    else wcm_json_buf_free(h);
    return rc;
}

/* A cell "wcm (authors)". */
static void cell(wcm_json_buf *h, double mine, double theirs) {
    wcm_json_buf_printf(h, "<td>%.2f", mine);
    if (isfinite(theirs)) wcm_json_buf_printf(h, " <span class=\"ref\">(%.2f)</span>", theirs);
    wcm_json_buf_puts(h, "</td>");
}

static void say(void *user, const char *line) { cli_progress("reproduce %s: %s\n", (const char *)user, line); }

/* ---- Figure 3 -------------------------------------------------------------------- */

static int exp_fig3(run_ctx *c) {
    const double t0 = wcm_seconds();
    wcm_model models[10];
    char names[10][32];
    const char *np[10];
    int nm = 0, rc = 0;
    for (int i = 0; i < 10 && !rc; i++) {
        snprintf(names[i], sizeof names[i], "%s_rf%d", i < 5 ? "flat" : "ms", RFS[i % 5]);
        np[i] = names[i];
        if (!(rc = load_model(c, names[i], &models[i]))) nm++;
    }
    wcm_eval_denoise_options o;
    wcm_eval_denoise_options_default(&o);
    char images[4096], evaldir[4096];
    snprintf(images, sizeof images, "%s/celeba/test", c->data);
    snprintf(evaldir, sizeof evaldir, "%s/eval", c->out);
    o.images_dir = images;
    o.n = c->n ? c->n : c->quick ? 5 : 50;
    o.seed = c->seed;
    o.examples_dir = evaldir;
    o.progress = say;
    o.progress_user = "fig3";
    wcm_eval_denoise_result r = {0};
    if (!rc) rc = wcm_eval_denoise(models, np, nm, &o, &r, &c->err);
    if (!rc) rc = wcm_eval_denoise_write_report(&r, evaldir, &c->err);
    for (int i = 0; i < nm; i++) wcm_model_free(&models[i]);
    if (rc) return rc;
    wcm_json *ref = load_reference(c, "fig3_devtest50.json");
    /* The authors' curve of each of wcm's, if known. */
    double theirs[WCM_EVAL_MAX_CURVES][WCM_EVAL_MAX_SIGMAS];
    for (int k = 0; k < r.ncurves; k++) {
        const wcm_eval_curve *cv = &r.curves[k];
        char rf[16];
        snprintf(rf, sizeof rf, "%d", RFS[cv->model % 5]);
        const wcm_json *arr = cv->lowpass_only ? wcm_json_get(ref, "lowpass_only")
                                               : wcm_json_get(wcm_json_get(ref, cv->multiscale ? "multiscale" : "flat"), rf);
        for (int s = 0; s < r.nsigmas; s++) theirs[k][s] = json_num(wcm_json_at(arr, s));
    }
    wcm_json_buf h, csv, js;
    page_begin(&h, "Figure 3: denoising, flat vs multi-scale, receptive fields 5 to 43", c);
    wcm_json_buf_printf(&h, "<p>PSNR (dB) of denoising %d faces of <code>celeba/test</code> (first by name, centre 160x160, "
                            "gray), one seeded noise pattern scaled to each level. The paper's claim: multi-scale "
                            "conditional denoisers with small receptive fields match flat ones with large fields. "
                            "Solid: wcm; dashed: the authors' numbers (50 images%s).</p>\n",
                        r.n, c->quick ? "; this quick run uses fewer, so expect small differences" : "");
    for (int kind = 0; kind < 2; kind++) {
        wcm_plot_series s[2 * WCM_EVAL_MAX_CURVES];
        char labels[WCM_EVAL_MAX_CURVES][48];
        int ns = 0;
        static const char *colors[5] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"};
        for (int k = 0; k < r.ncurves; k++) {
            const wcm_eval_curve *cv = &r.curves[k];
            if (cv->lowpass_only || cv->multiscale != kind) continue;
            s[ns++] = (wcm_plot_series){cv->name, r.noisy_psnr, cv->psnr, r.nsigmas, 0, colors[cv->model % 5]};
            snprintf(labels[k], sizeof labels[k], "authors, RF %d", RFS[cv->model % 5]);
            if (isfinite(theirs[k][0]))
                s[ns++] = (wcm_plot_series){labels[k], r.noisy_psnr, theirs[k], r.nsigmas, 1, colors[cv->model % 5]};
        }
        wcm_plot p = {kind ? "multi-scale (solid wcm, dashed authors)" : "flat (solid wcm, dashed authors)",
                      "input PSNR (dB)", "output PSNR (dB)", 1, 560, 420};
        wcm_json_buf_puts(&h, "<div style=\"display:inline-block\">");
        page_svg(&h, &p, s, ns);
        wcm_json_buf_puts(&h, "</div>\n");
    }
    wcm_json_buf_puts(&h, "<h2>Mean PSNR: wcm <span class=\"ref\">(authors)</span></h2>\n<table><tr><th>model \\ sigma</th>");
    for (int s = 0; s < r.nsigmas; s++) wcm_json_buf_printf(&h, "<th>%.1f</th>", r.sigmas255[s]);
    wcm_json_buf_puts(&h, "</tr>\n<tr><td><i>noisy</i></td>");
    for (int s = 0; s < r.nsigmas; s++) cell(&h, r.noisy_psnr[s], json_num(wcm_json_at(wcm_json_get(ref, "noisy"), s)));
    wcm_json_buf_puts(&h, "</tr>\n");
    wcm_json_buf_init(&csv);
    wcm_json_buf_puts(&csv, "model,sigma255,psnr_noisy,psnr_wcm,psnr_authors\n");
    wcm_json_buf_init(&js);
    wcm_json_buf_printf(&js, "{\n \"experiment\": \"fig3\",\n \"images\": %d,\n \"curves\": {", r.n);
    for (int k = 0; k < r.ncurves; k++) {
        wcm_json_buf_puts(&h, "<tr><td>");
        wcm_json_buf_html(&h, r.curves[k].name);
        wcm_json_buf_puts(&h, "</td>");
        wcm_json_buf_puts(&js, k ? ",\n  " : "\n  ");
        wcm_json_buf_string(&js, r.curves[k].name);
        wcm_json_buf_puts(&js, ": {\"wcm\": [");
        for (int s = 0; s < r.nsigmas; s++) {
            cell(&h, r.curves[k].psnr[s], theirs[k][s]);
            wcm_json_buf_csv(&csv, r.curves[k].name);
            wcm_json_buf_printf(&csv, ",%.6g,%.4f,%.4f,", r.sigmas255[s], r.noisy_psnr[s], r.curves[k].psnr[s]);
            wcm_json_buf_number_fmt(&csv, "%.4f", theirs[k][s]);
            wcm_json_buf_puts(&csv, "\n");
            wcm_json_buf_puts(&js, s ? ", " : "");
            wcm_json_buf_number_fmt(&js, "%.4f", r.curves[k].psnr[s]);
        }
        wcm_json_buf_puts(&js, "], \"authors\": [");
        for (int s = 0; s < r.nsigmas; s++) {
            wcm_json_buf_puts(&js, s ? ", " : "");
            wcm_json_buf_number_fmt(&js, "%.4f", theirs[k][s]);
        }
        wcm_json_buf_puts(&js, "]}");
        wcm_json_buf_puts(&h, "</tr>\n");
    }
    wcm_json_buf_puts(&js, "\n }\n}\n");
    wcm_json_buf_puts(&h, "</table>\n<p>Example images and wcm's own Figure-3 page: <a href=\"eval/report.html\">eval/report.html</a>.</p>\n"
                          "<p>");
    wcm_json_buf_printf(&h, "At sigma %.0f: noisy, flat RF 13, flat RF 43, multi-scale RF 13, its low-pass only.</p>\n<img class=\"grid\" src=\"eval/example_noisy.png\" width=\"200\" title=\"noisy\"> ",
                        r.sigmas255[r.example_sigma]);
    static const char *shown[] = {"flat_rf13", "flat_rf43", "ms_rf13", "ms_rf13:lowpass-only"};
    for (size_t i = 0; i < sizeof shown / sizeof *shown; i++)
        for (int k = 0; k < r.ncurves; k++)
            if (!strcmp(r.curves[k].name, shown[i]))
                wcm_json_buf_printf(&h, "<img class=\"grid\" src=\"eval/example_%d.png\" width=\"200\" title=\"%s\"> ", k, shown[i]);
    wcm_json_buf_puts(&h, "\n");
    wcm_json_free(ref);
    wcm_eval_denoise_result_free(&r);
    return finish(c, WCM_OK, &h, &csv, &js, t0);
}

/* ---- super-resolution ------------------------------------------------------------- */

/* One method's super-resolution of every image. */
typedef struct {
    char name[32];
    int rf, multiscale;
    double psnr[16], mean, authors; /* authors: their mean over the same images, or NaN */
    int iterations, capped, diverged;
    double seconds;
    wcm_tensor images;
} sr_method;

/* Super-resolution by 2^J of one image (1 x h x w) with a multi-scale model,
 * or with a flat model through the pixel-domain constrained sampler; the
 * sample goes into out (allocated by the caller). */
static int superres_one(run_ctx *c, const wcm_model *m, const wcm_tensor *img, int levels, uint64_t seed, float *out,
                        sr_method *stats) {
    wcm_synth_options so;
    wcm_synth_options_default(&so);
    so.seed = seed;
    wcm_synth_result r;
    memset(&r, 0, sizeof r);
    wcm_tensor low = {0};
    int rc;
    if (m->multiscale) {
        rc = wcm_synth_lowpass(img, levels, &low, &c->err);
        if (!rc) rc = wcm_synth_superres(m, &low, &so, &r, &c->err);
    } else {
        wcm_measurement ms;
        float *measured = NULL;
        rc = wcm_measurement_block_average(&ms, img->h, img->w, 1, 1 << levels, &c->err);
        const int have_ms = !rc;
        if (!rc && !(measured = malloc(ms.count * sizeof(float)))) rc = wcm_fail(&c->err, WCM_ERR_NOMEM, "out of memory");
        if (!rc) rc = wcm_measurement_apply(&ms, img, measured, &c->err);
        if (!rc) rc = wcm_synth_inverse(m, &ms, measured, 1, &so, &r, &c->err);
        free(measured);
        if (have_ms) wcm_measurement_free(&ms);
    }
    /* A diverged sample is a result to report, not a failure of the run. */
    if (rc == WCM_ERR_NUMERIC && r.complete) rc = WCM_OK;
    const wcm_tensor *final = rc ? NULL : wcm_synth_final(&r);
    if (!rc && !final) rc = wcm_fail(&c->err, WCM_ERR_NUMERIC, "the cascade did not complete");
    if (!rc) {
        memcpy(out, final->data, (size_t)img->h * img->w * sizeof(float));
        for (int s = 0; s < r.nstages; s++) {
            stats->iterations = r.stage[s].max_iterations > stats->iterations ? r.stage[s].max_iterations : stats->iterations;
            stats->capped += r.stage[s].cap_samples;
        }
        stats->diverged += r.diverged;
        stats->seconds += r.seconds;
    }
    wcm_synth_result_free(&r);
    wcm_tensor_free(&low);
    return rc;
}

/* Every image, image i with seed + i (as docs/reproducing.md's loops). */
static int superres_run(run_ctx *c, const char *model_name, const wcm_tensor *clean, int levels, sr_method *out) {
    wcm_model m;
    int rc = load_model(c, model_name, &m);
    if (!rc) rc = wcm_tensor_alloc(&out->images, clean->n, clean->h, clean->w, 1, &c->err);
    const size_t px = (size_t)clean->h * clean->w;
    out->mean = 0;
    for (int i = 0; !rc && i < clean->n; i++) {
        const wcm_tensor img = wcm_tensor_view(clean->data + i * px, 1, clean->h, clean->w, 1);
        rc = superres_one(c, &m, &img, levels, (uint64_t)(c->seed + i), out->images.data + i * px, out);
        if (rc) break;
        out->psnr[i] = wcm_psnr_clamped(clean->data + i * px, out->images.data + i * px, px);
        out->mean += out->psnr[i] / clean->n;
    }
    if (rc) wcm_fail_context(&c->err, rc, "%s", model_name);
    else cli_progress("reproduce: %-12s %.2f dB (mean of %d), %.1f s\n", model_name, out->mean, clean->n, out->seconds);
    if (m.multiscale || m.net) wcm_model_free(&m);
    return rc;
}

/* The authors' mean PSNR over the images of this run (matched by name). */
static double authors_mean(const wcm_json *ref, const char *key, char **names, int n) {
    const wcm_json *res = wcm_json_get(wcm_json_get(ref, "results"), key), *imgs = wcm_json_get(ref, "images");
    if (!res) return NAN;
    double sum = 0;
    for (int i = 0; i < n; i++) {
        size_t k = 0;
        while (k < wcm_json_count(imgs) && strcmp(wcm_json_string(wcm_json_at(imgs, k)), names[i])) k++;
        const double v = json_num(wcm_json_at(wcm_json_get(res, "per_image"), k));
        if (!isfinite(v)) return NAN;
        sum += v / n;
    }
    return sum;
}

static int exp_superres(run_ctx *c, int big) {
    const double t0 = wcm_seconds();
    const int levels = big ? 3 : 2, size = big ? 320 : 160;
    const int n = c->n ? (c->n < 16 ? c->n : 16) : c->quick ? 1 : big ? 8 : 4;
    wcm_tensor clean = {0}, low = {0}, blocky = {0};
    char **names = NULL;
    int rc = load_images(c, big ? "celebahq/test320" : "celeba/test", n, size, &clean, &names);
    const int ni = clean.n;
    sr_method methods[12];
    int nm = 0;
    memset(methods, 0, sizeof methods);
    /* The methods: multi-scale cascades (every RF at 160, RF 13 at 320), and
     * flat denoisers in the pixel-domain sampler (RF 13 and 43; RF 13 only with --quick). */
    for (int i = 0; i < (big ? 1 : 5); i++) {
        sr_method *m = &methods[nm++];
        m->rf = big ? 13 : RFS[i], m->multiscale = 1;
        snprintf(m->name, sizeof m->name, big ? "ms320_rf%d" : "ms_rf%d", m->rf);
    }
    for (int i = 0; !big && i < (c->quick ? 1 : 2); i++) {
        sr_method *m = &methods[nm++];
        m->rf = i ? 43 : 13;
        snprintf(m->name, sizeof m->name, "flat_rf%d", m->rf);
    }
    wcm_json *ref = load_reference(c, big ? "superres320_dev8.json" : "superres160_ms_dev4.json");
    for (int k = 0; !rc && k < nm; k++) {
        rc = superres_run(c, methods[k].name, &clean, levels, &methods[k]);
        char key[16];
        snprintf(key, sizeof key, "ms%d", methods[k].rf);
        methods[k].authors = methods[k].multiscale ? authors_mean(ref, key, names, ni) : NAN;
    }
    if (!rc) rc = wcm_synth_lowpass(&clean, levels, &low, &c->err);
    if (!rc) rc = wcm_synth_lowpass_only(&low, levels, &blocky, &c->err);
    double blocky_mean = 0;
    const size_t px = (size_t)size * size;
    for (int i = 0; !rc && i < ni; i++) blocky_mean += wcm_psnr_clamped(clean.data + i * px, blocky.data + i * px, px) / ni;
    /* The grid: per image, clean, low-pass only, then every method. */
    wcm_tensor grid = {0};
    const int cols = nm + 2;
    if (!rc) rc = wcm_tensor_alloc(&grid, ni * cols, size, size, 1, &c->err);
    for (int i = 0; !rc && i < ni; i++) {
        memcpy(grid.data + (size_t)(i * cols) * px, clean.data + i * px, px * sizeof(float));
        memcpy(grid.data + (size_t)(i * cols + 1) * px, blocky.data + i * px, px * sizeof(float));
        for (int k = 0; k < nm; k++)
            memcpy(grid.data + (size_t)(i * cols + 2 + k) * px, methods[k].images.data + i * px, px * sizeof(float));
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/grid.png", c->out);
    if (!rc) rc = wcm_image_write_grid(path, &grid, cols, 4, &c->err);
    wcm_tensor_free(&grid);
    if (!rc) {
        wcm_json_buf h, csv, js;
        page_begin(&h, big ? "8x super-resolution at 320x320 (40 -> 320), multi-scale RF 13"
                            : "4x super-resolution (40 -> 160): receptive fields, multi-scale vs flat", c);
        wcm_json_buf_printf(&h, "<p>%d image%s of <code>%s</code> (first by name, centre %dx%d, gray): the %d-level Haar "
                                "low-pass (%dx%d) is given and the details are sampled (Algorithm 2; flat models: the "
                                "pixel-domain constrained sampler, docs/model.md §7), paper defaults h0 0.01, beta 0.1, sigma_L 0.01, "
                                "cap 2000 per net, image i with seed %d + i. PSNR of one sample against the original (clamped to [-1, 2] as in "
                                "the authors' evaluation); in gray the authors' mean over the same images where known.</p>\n",
                            ni, ni == 1 ? "" : "s", big ? "celebahq/test320" : "celeba/test", size, size, levels, size >> levels,
                            size >> levels, c->seed);
        wcm_plot_series s[3];
        double xs[12], ys[12], ya[12], yb[12];
        int nms = 0;
        for (int k = 0; k < nm; k++)
            if (methods[k].multiscale) xs[nms] = methods[k].rf, ys[nms] = methods[k].mean, ya[nms] = methods[k].authors,
                                       yb[nms] = blocky_mean, nms++;
        s[0] = (wcm_plot_series){"wcm multi-scale", xs, ys, nms, 0, "#1f77b4"};
        s[1] = (wcm_plot_series){"authors multi-scale", xs, ya, nms, 1, "#ff7f0e"};
        s[2] = (wcm_plot_series){"low-pass only", xs, yb, nms, 1, "#888888"};
        wcm_plot p = {"super-resolution PSNR against receptive field", "receptive field", "PSNR (dB)", 0, 620, 400};
        if (nms > 1) page_svg(&h, &p, s, isfinite(ya[0]) ? 3 : 1);
        wcm_json_buf_puts(&h, "<table><tr><th>method</th><th>RF</th><th>mean PSNR <span class=\"ref\">(authors)</span></th>");
        for (int i = 0; i < ni; i++) {
            wcm_json_buf_puts(&h, "<th>");
            wcm_json_buf_html(&h, names[i]);
            wcm_json_buf_puts(&h, "</th>");
        }
        wcm_json_buf_puts(&h, "<th>max iterations</th><th>capped</th><th>diverged</th><th>seconds</th></tr>\n");
        wcm_json_buf_init(&csv);
        wcm_json_buf_puts(&csv, "method,rf,image,psnr\n");
        wcm_json_buf_init(&js);
        wcm_json_buf_printf(&js, "{\n \"experiment\": \"%s\",\n \"images\": %d,\n \"lowpass_only\": ", big ? "superres8" : "superres4", ni);
        wcm_json_buf_number_fmt(&js, "%.4f", blocky_mean);
        wcm_json_buf_puts(&js, ",\n \"methods\": {");
        for (int k = 0; k < nm; k++) {
            const sr_method *m = &methods[k];
            wcm_json_buf_printf(&h, "<tr><td>%s</td><td>%d</td>", m->multiscale ? "multi-scale" : "flat (pixel domain)", m->rf);
            cell(&h, m->mean, m->authors);
            for (int i = 0; i < ni; i++) {
                wcm_json_buf_printf(&h, "<td>%.2f</td>", m->psnr[i]);
                wcm_json_buf_printf(&csv, "%s,%d,", m->name, m->rf);
                wcm_json_buf_csv(&csv, names[i]);
                wcm_json_buf_printf(&csv, ",%.4f\n", m->psnr[i]);
            }
            wcm_json_buf_printf(&h, "<td>%d</td><td>%d</td><td>%d</td><td>%.1f</td></tr>\n", m->iterations, m->capped,
                                m->diverged, m->seconds);
            wcm_json_buf_printf(&js, "%s\n  \"%s\": {\"mean\": ", k ? "," : "", m->name);
            wcm_json_buf_number_fmt(&js, "%.4f", m->mean);
            wcm_json_buf_puts(&js, ", \"authors\": ");
            wcm_json_buf_number_fmt(&js, "%.4f", m->authors);
            wcm_json_buf_printf(&js, ", \"max_iterations\": %d, \"capped\": %d, \"diverged\": %d, \"seconds\": ", m->iterations,
                                m->capped, m->diverged);
            wcm_json_buf_number_fmt(&js, "%.2f", m->seconds);
            wcm_json_buf_puts(&js, "}");
        }
        wcm_json_buf_printf(&h, "<tr><td><i>low-pass only</i></td><td></td><td>%.2f</td></tr>\n</table>\n", blocky_mean);
        wcm_json_buf_puts(&js, "\n }\n}\n");
        wcm_json_buf_puts(&h, "<h2>Images</h2><p>Per row: original, low-pass only (the input, blocky), then each method "
                              "in the table's order.</p>\n<img class=\"grid\" src=\"grid.png\">\n");
        rc = finish(c, WCM_OK, &h, &csv, &js, t0);
    }
    for (int k = 0; k < nm; k++) wcm_tensor_free(&methods[k].images);
    wcm_json_free(ref);
    free_names(names, ni);
    wcm_tensor_free(&clean);
    wcm_tensor_free(&low);
    wcm_tensor_free(&blocky);
    return rc;
}

/* ---- synthesis -------------------------------------------------------------------- */

static int exp_synthesis(run_ctx *c) {
    const double t0 = wcm_seconds();
    const int n = c->n ? (c->n < 16 ? c->n : 16) : c->quick ? 2 : 8;
    wcm_json_buf h, csv, js;
    page_begin(&h, "Synthesis: samples of the multi-scale models (Algorithm 2)", c);
    wcm_json_buf_printf(&h, "<p>Samples drawn coarse to fine: a 40x40 low-pass from the low-pass net, then the details of "
                            "each scale given the coarser image (paper defaults: h0 0.01, beta 0.1, sigma_L 0.01, cap 2000 "
                            "per net; the low-pass rescaled to [0, 0.8]; seed %d). The paper shows that RF 13 conditional "
                            "nets already give face-like samples at 160x160 and at 320x320; small RFs (5, 9) may diverge "
                            "(see docs/sampling-small-rf.md).</p>\n",
                        c->seed);
    wcm_json_buf_init(&csv);
    wcm_json_buf_puts(&csv, "model,size,samples,max_iterations,capped,diverged,seconds\n");
    wcm_json_buf_init(&js);
    wcm_json_buf_puts(&js, "{\n \"experiment\": \"synthesis\",\n \"models\": {");
    wcm_json_buf_puts(&h, "<table><tr><th>model</th><th>size</th><th>samples</th><th>iterations per net (max)</th>"
                          "<th>capped</th><th>diverged</th><th>seconds</th></tr>\n");
    int rc = 0;
    for (int k = 0; !rc && k < 6; k++) {
        char name[32], file[64];
        if (k < 5) snprintf(name, sizeof name, "ms_rf%d", RFS[k]);
        else snprintf(name, sizeof name, "ms320_rf13");
        const int count = k < 5 ? n : (n + 1) / 2;
        wcm_model m;
        if ((rc = load_model(c, name, &m))) break;
        wcm_synth_options so;
        wcm_synth_options_default(&so);
        so.seed = (uint64_t)c->seed;
        wcm_synth_result r;
        memset(&r, 0, sizeof r);
        rc = wcm_synth_sample(&m, count, 40, 40, &so, &r, &c->err);
        if (rc == WCM_ERR_NUMERIC && r.complete) rc = WCM_OK; /* diverged samples are shown and counted */
        const wcm_tensor *final = rc ? NULL : wcm_synth_final(&r);
        snprintf(file, sizeof file, "samples_%s.png", name);
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", c->out, file);
        if (final) rc = wcm_image_write_grid(path, final, count < 4 ? count : 4, 4, &c->err);
        if (!rc && final) {
            const int size = final->h;
            wcm_json_buf_printf(&h, "<tr><td>%s</td><td>%d</td><td>%d</td><td>", name, size, count);
            int capped = 0;
            for (int s = 0; s < r.nstages; s++) {
                wcm_json_buf_printf(&h, "%s%s %d", s ? ", " : "", r.stage[s].name, r.stage[s].max_iterations);
                capped += r.stage[s].cap_samples;
            }
            wcm_json_buf_printf(&h, "</td><td>%d</td><td>%d</td><td>%.1f</td></tr>\n", capped, r.diverged, r.seconds);
            wcm_json_buf_printf(&csv, "%s,%d,%d,%d,%d,%d,%.2f\n", name, size, count, r.stage[r.nstages - 1].max_iterations,
                                capped, r.diverged, r.seconds);
            wcm_json_buf_printf(&js, "%s\n  \"%s\": {\"size\": %d, \"samples\": %d, \"capped\": %d, \"diverged\": %d, "
                                     "\"seconds\": %.2f, \"image\": \"%s\"}",
                                k ? "," : "", name, size, count, capped, r.diverged, r.seconds, file);
            cli_progress("reproduce synthesis: %s, %d samples of %dx%d, %.1f s, %d diverged\n", name, count, size, size,
                         r.seconds, r.diverged);
        } else if (!rc) {
            rc = wcm_fail(&c->err, WCM_ERR_NUMERIC, "%s: the cascade did not complete", name);
        }
        wcm_synth_result_free(&r);
        wcm_model_free(&m);
    }
    wcm_json_buf_puts(&h, "</table>\n");
    for (int k = 0; !rc && k < 6; k++) {
        char name[32];
        if (k < 5) snprintf(name, sizeof name, "ms_rf%d", RFS[k]);
        else snprintf(name, sizeof name, "ms320_rf13");
        wcm_json_buf_printf(&h, "<h2>%s%s</h2>\n<img class=\"grid\" src=\"samples_%s.png\">\n", name,
                            k < 5 ? " (160x160)" : " (320x320)", name);
    }
    wcm_json_buf_puts(&js, "\n }\n}\n");
    return finish(c, rc, &h, &csv, &js, t0);
}

/* ---- adaptive filters --------------------------------------------------------------- */

static int exp_filters(run_ctx *c) {
    const double t0 = wcm_seconds();
    const int size = 160, window = 41, zoom = 3;
    static const double sigmas[3] = {15, 50, 100};
    /* Pixels: the centre of the face, an eye, the mouth and the background. */
    static const int pixels[8] = {80, 80, 62, 56, 112, 80, 16, 16};
    const int npix = 4;
    static const char *models[4] = {"flat_rf13", "ms_rf13", "flat_rf43", "ms_rf43"};
    const int nmod = c->quick ? 2 : 4;
    wcm_tensor clean = {0}, noisy = {0}, tiles = {0};
    char **names = NULL;
    int rc = load_images(c, "celeba/test", 1, size, &clean, &names);
    if (!rc) rc = wcm_tensor_copy(&noisy, &clean, &c->err);
    const size_t n = (size_t)size * size;
    float *z = rc ? NULL : malloc(n * sizeof(float)), *rows = rc ? NULL : malloc(npix * n * sizeof(float));
    if (!rc && (!z || !rows)) rc = wcm_fail(&c->err, WCM_ERR_NOMEM, "out of memory");
    if (!rc) wcm_noise_pattern(WCM_NOISE_TORCH, (uint64_t)c->seed, 1, n, z);
    wcm_json_buf h, csv, js;
    page_begin(&h, "Adaptive filters: Jacobian rows of flat and multi-scale denoisers", c);
    wcm_json_buf_printf(&h, "<p>A bias-free denoiser is locally linear, D(y) = J(y) y: row p of the Jacobian is the "
                            "filter that makes denoised pixel p (exact rows by backward passes, <code>wcm jacobian</code>). "
                            "Face <code>%s</code> (centre 160x160) with noise of sigma 15, 50 and 100 (0-255). Per pixel: the "
                            "noisy image and the filter, both %dx%d around the pixel (mid-gray 0, white positive). The "
                            "paper: filters adapt to the image (elongated along edges) and grow with the noise; the "
                            "multi-scale model's filters reach beyond its conditional nets' receptive field through the "
                            "coarse scales.</p>\n",
                        rc ? "" : names[0], window, window);
    wcm_json_buf_puts(&h, "<table><tr><th>model</th><th>sigma</th><th>PSNR noisy / denoised</th><th>pixel</th>"
                          "<th>centre weight</th><th>sum of weights</th><th>support (px above 1% of peak)</th></tr>\n");
    wcm_json_buf_init(&csv);
    wcm_json_buf_puts(&csv, "model,sigma255,pixel_row,pixel_col,centre,sum,support,psnr_denoised\n");
    wcm_json_buf_init(&js);
    wcm_json_buf_puts(&js, "{\n \"experiment\": \"filters\",\n \"rows\": [");
    int first = 1;
    for (int mi = 0; !rc && mi < nmod; mi++) {
        wcm_model m;
        if ((rc = load_model(c, models[mi], &m))) break;
        for (int si = 0; !rc && si < 3; si++) {
            wcm_noise_apply_255(clean.data, z, n, sigmas[si], noisy.data);
            wcm_jacobian *jac = NULL;
            rc = wcm_jacobian_create(&jac, &m, noisy.data, size, size, 0, &c->err);
            if (!rc) rc = wcm_jacobian_rows(jac, pixels, npix, rows, &c->err);
            char file[64], path[4096];
            snprintf(file, sizeof file, "filters_%s_s%.0f.png", models[mi], sigmas[si]);
            snprintf(path, sizeof path, "%s/%s", c->out, file);
            if (!rc) rc = wcm_jacobian_filter_tiles(noisy.data, size, size, rows, pixels, npix, window, zoom, &tiles, &c->err);
            if (!rc) rc = wcm_image_write_grid(path, &tiles, 2 * npix, 4, &c->err);
            wcm_tensor_free(&tiles);
            const double pin = rc ? 0 : wcm_psnr(clean.data, noisy.data, n), pout = rc ? 0 : wcm_psnr(clean.data, wcm_jacobian_value(jac), n);
            for (int q = 0; !rc && q < npix; q++) {
                const float *row = rows + q * n;
                double sum = 0, peak = 0;
                for (size_t k = 0; k < n; k++) sum += row[k], peak = fmax(peak, fabs(row[k]));
                int support = 0;
                for (size_t k = 0; k < n; k++) support += fabs(row[k]) > 0.01 * peak;
                const double centre = row[pixels[2 * q] * size + pixels[2 * q + 1]];
                wcm_json_buf_printf(&h, "<tr><td>%s</td><td>%.0f</td><td>%.2f / %.2f</td><td>(%d, %d)</td><td>%.3f</td>"
                                        "<td>%.3f</td><td>%d</td></tr>\n",
                                    models[mi], sigmas[si], pin, pout, pixels[2 * q], pixels[2 * q + 1], centre, sum, support);
                wcm_json_buf_printf(&csv, "%s,%.0f,%d,%d,%.5f,%.5f,%d,%.4f\n", models[mi], sigmas[si], pixels[2 * q],
                                    pixels[2 * q + 1], centre, sum, support, pout);
                wcm_json_buf_printf(&js, "%s\n  {\"model\": \"%s\", \"sigma255\": %.0f, \"pixel\": [%d, %d], \"centre\": %.5f, "
                                         "\"sum\": %.5f, \"support\": %d, \"psnr_denoised\": %.4f}",
                                    first ? "" : ",", models[mi], sigmas[si], pixels[2 * q], pixels[2 * q + 1], centre, sum,
                                    support, pout);
                first = 0;
            }
            wcm_jacobian_free(jac);
            cli_progress("reproduce filters: %s sigma %.0f done (%.0f s)\n", models[mi], sigmas[si], wcm_seconds() - t0);
        }
        wcm_model_free(&m);
    }
    wcm_json_buf_puts(&h, "</table>\n");
    for (int mi = 0; !rc && mi < nmod; mi++)
        for (int si = 0; si < 3; si++)
            wcm_json_buf_printf(&h, "<h3>%s, sigma %.0f</h3>\n<img class=\"grid\" src=\"filters_%s_s%.0f.png\">\n", models[mi],
                                sigmas[si], models[mi], sigmas[si]);
    wcm_json_buf_puts(&js, "\n ]\n}\n");
    free(z);
    free(rows);
    free_names(names, clean.n);
    wcm_tensor_free(&clean);
    wcm_tensor_free(&noisy);
    return finish(c, rc, &h, &csv, &js, t0);
}

/* ---- the command -------------------------------------------------------------------- */

static int exp_superres4(run_ctx *c) { return exp_superres(c, 0); }
static int exp_superres8(run_ctx *c) { return exp_superres(c, 1); }

typedef struct {
    const char *name, *figure, *what;
    int (*run)(run_ctx *c);
} experiment;

static const experiment experiments[] = {
    {"fig3", "Figure 3", "denoising PSNR across noise levels, flat vs multi-scale, RF 5 to 43", exp_fig3},
    {"superres4", "super-resolution", "4x super-resolution (40 -> 160), multi-scale RF 5 to 43 vs flat", exp_superres4},
    {"superres8", "super-resolution", "8x super-resolution at 320x320 (40 -> 320), multi-scale RF 13", exp_superres8},
    {"synthesis", "synthesis", "samples at 160x160 for every RF and at 320x320", exp_synthesis},
    {"filters", "adaptive filters", "Jacobian rows of flat and multi-scale denoisers at 3 noise levels", exp_filters},
};
#define NEXPERIMENTS ((int)(sizeof experiments / sizeof *experiments))

/* The reference folder: --reference, else next to the data or the weights. */
static void find_reference(run_ctx *c, const char *given) {
    const char *cands[3][2] = {{c->data, "/../reference"}, {c->weights, "/reference"}, {c->weights, "/../../../reference"}};
    c->reference[0] = 0;
    if (given) {
        snprintf(c->reference, sizeof c->reference, "%s", given);
        return;
    }
    for (int i = 0; i < 3; i++) {
        char p[4096], f[4200];
        snprintf(p, sizeof p, "%s%s", cands[i][0], cands[i][1]);
        snprintf(f, sizeof f, "%s/fig3_devtest50.json", p);
        if (is_file(f)) {
            char *real = realpath(p, NULL);
            snprintf(c->reference, sizeof c->reference, "%s", real ? real : p);
            free(real);
            return;
        }
    }
}

static int run_reproduce(int argc, char **argv) {
    const char *cmd = "reproduce";
    cli_opt opts[] = {{"weights", 1, 0, 0}, {"data", 1, 0, 0}, {"out", 1, 0, 0},  {"reference", 1, 0, 0},
                      {"quick", 0, 0, 0},   {"list", 0, 0, 0}, {"n", 1, 0, 0},    {"seed", 1, 0, 0}};
    const char *pos[1];
    int npos;
    if (cli_parse(cmd, argc, argv, opts, CLI_NOPTS(opts), pos, &npos, 1)) return 1;
    if (opts[5].set) {
        for (int i = 0; i < NEXPERIMENTS; i++)
            printf("%-10s %-20s %s\n", experiments[i].name, experiments[i].figure, experiments[i].what);
        return 0;
    }
    if (npos != 1 || !opts[0].set || !opts[1].set || !opts[2].set)
        return cli_error(cmd, "usage: wcm reproduce EXPERIMENT --weights DIR --data DIR --out DIR [--quick] (or --list)");
    const experiment *e = NULL;
    for (int i = 0; i < NEXPERIMENTS; i++)
        if (!strcmp(pos[0], experiments[i].name)) e = &experiments[i];
    if (!e) return cli_error(cmd, "unknown experiment '%s' (wcm reproduce --list names them)", pos[0]);
    run_ctx c;
    memset(&c, 0, sizeof c);
    c.weights = opts[0].value, c.data = opts[1].value, c.out = opts[2].value, c.quick = opts[4].set;
    if (cli_get_int_in(cmd, &opts[6], 1, 10000, &c.n) || cli_get_int(cmd, &opts[7], &c.seed)) return 1;
    find_reference(&c, opts[3].value);
    if (mkdir(c.out, 0777) != 0 && errno != EEXIST)
        return cli_error(cmd, "%s: cannot create directory: %s", c.out, strerror(errno));
    const double t0 = wcm_seconds();
    int rc = e->run(&c);
    if (rc) {
        rmdir(c.out); /* only when the run left it empty */
        return cli_lib_error(cmd, &c.err);
    }
    printf("reproduce %s: %.1f s -> %s/report.html\n", e->name, wcm_seconds() - t0, c.out);
    return 0;
}

const cli_command cmd_reproduce = {
    "reproduce", "run one experiment of the paper and write its report (wcm reproduce --list)",
    "usage: wcm reproduce EXPERIMENT --weights DIR --data DIR --out DIR\n"
    "                     [--reference DIR] [--quick] [--n N] [--seed S]\n"
    "       wcm reproduce --list\n\n"
    "Runs one experiment of the paper and writes OUT/report.html (SVG plots,\n"
    "image grids, the authors' numbers beside wcm's where known) with\n"
    "OUT/results.csv and OUT/results.json. Experiments: fig3, superres4,\n"
    "superres8, synthesis, filters (see --list and docs/reproducing.md).\n\n"
    "  --weights DIR    models: flat_rfR / ms_rfR / ms320_rf13 .safetensors\n"
    "                   (scripts/import-authors-models.sh), or the authors'\n"
    "                   denoisers folder (flat/..., multi_scale/...), imported\n"
    "                   on the fly\n"
    "  --data DIR       holds celeba/test and celebahq/test320\n"
    "  --out DIR        output folder (created)\n"
    "  --reference DIR  the authors' numbers (fig3_devtest50.json,\n"
    "                   superres160_ms_dev4.json, superres320_dev8.json); by\n"
    "                   default DATA/../reference or beside the weights\n"
    "  --quick          few images (minutes on 2 cores)\n"
    "  --n N            images or samples (overrides the default)\n"
    "  --seed S         noise / sampling seed (default 0)\n",
    run_reproduce};

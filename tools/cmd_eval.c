/* `wcm eval-denoise`: the paper's Figure 3 — PSNR of denoisers across noise
 * levels on a folder of images; writes results.csv/json, figure3.svg and
 * report.html. */
#include "cli.h"
#include "svgplot.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "json.h"
#include "wcm/denoise.h"
#include "wcm/image.h"
#include "wcm/io.h"

#define MAX_SIGMAS 64
#define MAX_CURVES 64
#define EVAL_BATCH 10

typedef struct {
    char name[256];
    int model_index;
    int lowpass_only;
    double psnr[MAX_SIGMAS];
} curve;

static void file_stem(const char *path, char *out, size_t size) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(out, size, "%s", b);
    char *dot = strrchr(out, '.');
    if (dot && dot != out) *dot = 0;
}

/* Noise levels above this (0-255 units) only measure float overflow. */
#define MAX_SIGMA255 1e6

static int parse_sigmas(const char *cmd, const char *s, double *out, int *n) {
    *n = 0;
    const char *p = s;
    while (*p) {
        char item[64];
        size_t len = strcspn(p, ",");
        if (len >= sizeof item || *n >= MAX_SIGMAS) return cli_error(cmd, "--sigmas: too long a list or value in '%s'", s);
        memcpy(item, p, len);
        item[len] = 0;
        if (wcm_parse_double(item, 0, MAX_SIGMA255, &out[*n]) || !(out[*n] > 0))
            return cli_error(cmd, "--sigmas expects a comma-separated list of numbers in (0, %g] (0-255 units), got '%s'",
                             MAX_SIGMA255, s);
        (*n)++;
        p += len;
        if (*p == ',' && !*++p) return cli_error(cmd, "--sigmas ends with a comma: '%s'", s);
    }
    return *n ? 0 : cli_error(cmd, "--sigmas is empty");
}

/* Writes a finished report buffer (out of memory is reported, not written). */
static int write_report(const char *dir, const char *name, wcm_json_buf *b, wcm_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int rc = b->failed ? wcm_fail(err, WCM_ERR_NOMEM, "%s: out of memory", path)
                       : wcm_write_file_atomic(path, b->data ? b->data : "", b->len, err);
    wcm_json_buf_free(b);
    return rc;
}

static const char *base_name(const char *path) {
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

static int run_eval(int argc, char **argv) {
    const char *cmd = "eval-denoise";
    cli_opt opts[] = {{"images", 1, 0, 0}, {"n", 1, 0, 0}, {"crop", 1, 0, 0},
                      {"sigmas", 1, 0, 0}, {"seed", 1, 0, 0}, {"out", 1, 0, 0},
                      {"noise", 1, 0, 0}};
    const char *pos[MAX_CURVES];
    int npos;
    if (cli_parse(cmd, argc, argv, opts, CLI_NOPTS(opts), pos, &npos, MAX_CURVES / 2)) return 1;
    if (!opts[0].set || !opts[5].set || npos < 1)
        return cli_error(cmd, "usage: wcm eval-denoise --images DIR --out DIR [--n 50] [--crop 160] MODEL... (see --help)");
    int nimg = 50, crop = 160, seed = 0, nsig = 10;
    double sig[MAX_SIGMAS];
    if (cli_get_int_in(cmd, &opts[1], 1, INT32_MAX, &nimg) || cli_get_int_in(cmd, &opts[2], 1, 65536, &crop) ||
        cli_get_int(cmd, &opts[4], &seed))
        return 1;
    if (opts[3].set) {
        if (parse_sigmas(cmd, opts[3].value, sig, &nsig)) return 1;
    } else {
        for (int i = 0; i < 10; i++) sig[i] = pow(10.0, 0.5 + 2.3 * i / 9.0); /* numpy logspace(0.5, 2.8, 10) */
    }
    wcm_noise_kind noise_kind = WCM_NOISE_TORCH;
    if (opts[6].set && wcm_noise_kind_parse(opts[6].value, &noise_kind))
        return cli_error(cmd, "--noise must be torch or philox, got '%s'", opts[6].value);
    const char *outdir = opts[5].value;
    wcm_error err;
    /* Models first: a bad model should fail before any slow work. */
    wcm_model models[MAX_CURVES / 2];
    curve curves[MAX_CURVES];
    int ncurves = 0, nmodels = 0, rc = 0;
    for (int i = 0; i < npos; i++) {
        if (wcm_model_load(pos[i], &models[i], &err)) {
            for (int k = 0; k < nmodels; k++) wcm_model_free(&models[k]);
            return cli_lib_error(cmd, &err);
        }
        nmodels++;
        if (!models[i].multiscale && wcm_net_get_kind(models[i].net) == WCM_NET_CONDITIONAL) {
            for (int k = 0; k < nmodels; k++) wcm_model_free(&models[k]);
            return cli_error(cmd, "%s is a lone conditional network; it needs a low-pass (bundle it into a multi-scale model)",
                             pos[i]);
        }
        for (int lp = 0; lp <= models[i].multiscale; lp++) {
            curve *c = &curves[ncurves++];
            memset(c, 0, sizeof *c);
            file_stem(pos[i], c->name, sizeof c->name);
            if (lp) strncat(c->name, ":lowpass-only", sizeof c->name - strlen(c->name) - 1);
            c->model_index = i;
            c->lowpass_only = lp;
        }
    }
    /* Images: first n by name, centre crop, gray. */
    char **paths = NULL;
    int count = 0, skipped = 0;
    wcm_tensor clean = {0}, noisy = {0}, batch = {0}, den = {0};
    double noisy_psnr[MAX_SIGMAS] = {0};
    float *pattern = NULL;
    rc = wcm_list_images(opts[0].value, &paths, &count, &skipped, &err);
    if (rc) goto fail;
    if (count == 0) {
        rc = wcm_fail(&err, WCM_ERR_ARG, "%s holds no images (.png, .jpg, .jpeg, .npy)%s", opts[0].value,
                      skipped ? " (other files were skipped)" : "");
        goto fail;
    }
    if (nimg > count) {
        cli_progress("eval-denoise: only %d images in %s, using all\n", count, opts[0].value);
        nimg = count;
    }
    if (skipped) cli_progress("eval-denoise: skipped %d non-image entr%s in %s\n", skipped, skipped == 1 ? "y" : "ies", opts[0].value);
    /* A batch of EVAL_BATCH crops goes through each network at once. */
    rc = wcm_check_pixels(nimg < EVAL_BATCH ? nimg : EVAL_BATCH, crop, crop, "--crop", &err);
    if (!rc) rc = wcm_tensor_alloc(&clean, nimg, crop, crop, 1, &err);
    for (int i = 0; !rc && i < nimg; i++) {
        wcm_tensor img, c;
        rc = wcm_image_read(paths[i], &img, &err);
        if (rc) break;
        rc = wcm_image_center_crop(&img, crop, crop, &c, &err);
        wcm_tensor_free(&img);
        if (rc) {
            wcm_fail_context(&err, rc, "%s", paths[i]);
            break;
        }
        memcpy(clean.data + (size_t)i * crop * crop, c.data, sizeof(float) * crop * crop);
        wcm_tensor_free(&c);
    }
    if (rc) goto fail;
    if (mkdir(outdir, 0777) != 0 && errno != EEXIST) {
        rc = wcm_fail(&err, WCM_ERR_IO, "%s: cannot create directory: %s", outdir, strerror(errno));
        goto fail;
    }
    int example_sigma = 0; /* the level closest to 100 (0-255) for the report's examples */
    for (int s = 0; s < nsig; s++)
        if (fabs(log(sig[s] / 100)) < fabs(log(sig[example_sigma] / 100))) example_sigma = s;
    char path[4096];
    double t0 = wcm_seconds();
    const size_t px = (size_t)crop * crop;
    for (int s = 0; s < nsig && !rc; s++) {
        if (!noisy.data) {
            rc = wcm_tensor_copy(&noisy, &clean, &err);
            pattern = rc ? NULL : wcm_alloc(wcm_tensor_count(&clean) * sizeof(float));
            if (!rc && !pattern) rc = wcm_fail(&err, WCM_ERR_NOMEM, "out of memory");
            if (rc) break;
            wcm_noise_pattern(noise_kind, (uint64_t)seed, nimg, px, pattern);
        }
        /* The same noise pattern scaled to every level, as the reference does. */
        wcm_noise_apply(clean.data, pattern, wcm_tensor_count(&clean), sig[s], noisy.data);
        double acc = 0;
        for (int i = 0; i < nimg; i++) acc += wcm_psnr(clean.data + i * px, noisy.data + i * px, px);
        noisy_psnr[s] = acc / nimg;
        if (s == example_sigma) {
            snprintf(path, sizeof path, "%s/example_clean.png", outdir);
            rc = wcm_image_write(path, &clean, 0, 8, &err);
            snprintf(path, sizeof path, "%s/example_noisy.png", outdir);
            if (!rc) rc = wcm_image_write(path, &noisy, 0, 8, &err);
        }
        for (int c = 0; c < ncurves && !rc; c++) {
            double sum = 0;
            for (int b0 = 0; b0 < nimg && !rc; b0 += EVAL_BATCH) {
                int nb = nimg - b0 < EVAL_BATCH ? nimg - b0 : EVAL_BATCH;
                batch.n = nb, batch.h = crop, batch.w = crop, batch.c = 1;
                batch.data = noisy.data + (size_t)b0 * px; /* a view, not owned */
                /* Crops not divisible by 2^J: padded by symmetric reflection, cropped back. */
                const wcm_denoise_options o = {.lowpass_only = curves[c].lowpass_only, .pad = 1};
                rc = wcm_denoise_ex(&models[curves[c].model_index], &batch, &o, &den, NULL, &err);
                if (rc) break;
                for (int i = 0; i < nb; i++) sum += wcm_psnr(clean.data + (b0 + i) * px, den.data + i * px, px);
                if (s == example_sigma && b0 == 0) {
                    snprintf(path, sizeof path, "%s/example_%d.png", outdir, c);
                    rc = wcm_image_write(path, &den, 0, 8, &err);
                }
                wcm_tensor_free(&den);
            }
            curves[c].psnr[s] = sum / nimg;
            cli_progress("eval-denoise: sigma %7.2f (%d/%d)  %-28s %6.2f dB  [%.0f s]\n", sig[s], s + 1, nsig,
                         curves[c].name, curves[c].psnr[s], wcm_seconds() - t0);
        }
    }
    if (rc) goto fail;
    double secs = wcm_seconds() - t0;
    /* results.csv */
    wcm_json_buf text;
    wcm_json_buf_init(&text);
    wcm_json_buf_puts(&text, "model,sigma255,psnr_noisy,psnr_denoised\n");
    for (int c = 0; c < ncurves; c++)
        for (int s = 0; s < nsig; s++) {
            wcm_json_buf_csv(&text, curves[c].name);
            wcm_json_buf_printf(&text, ",%.6g,%.4f,%.4f\n", sig[s], noisy_psnr[s], curves[c].psnr[s]);
        }
    if ((rc = write_report(outdir, "results.csv", &text, &err))) goto fail;
    /* results.json: names through the escaper, numbers through the writer
     * that turns anything non-finite into null. */
    wcm_json_buf_init(&text);
    wcm_json_buf_puts(&text, "{\n \"images_dir\": ");
    wcm_json_buf_string(&text, opts[0].value);
    wcm_json_buf_printf(&text, ",\n \"n\": %d,\n \"crop\": %d,\n \"seed\": %d,\n \"noise\": \"%s\",\n \"seconds\": ", nimg,
                        crop, seed, noise_kind == WCM_NOISE_TORCH ? "torch" : "philox");
    wcm_json_buf_number_fmt(&text, "%.2f", secs);
    wcm_json_buf_puts(&text, ",\n \"images\": [");
    for (int i = 0; i < nimg; i++) {
        wcm_json_buf_puts(&text, i ? ", " : "");
        wcm_json_buf_string(&text, base_name(paths[i]));
    }
    wcm_json_buf_puts(&text, "],\n \"sigmas_255\": [");
    for (int s = 0; s < nsig; s++) {
        wcm_json_buf_puts(&text, s ? ", " : "");
        wcm_json_buf_number_fmt(&text, "%.10g", sig[s]);
    }
    wcm_json_buf_puts(&text, "],\n \"noisy\": [");
    for (int s = 0; s < nsig; s++) {
        wcm_json_buf_puts(&text, s ? ", " : "");
        wcm_json_buf_number_fmt(&text, "%.4f", noisy_psnr[s]);
    }
    wcm_json_buf_puts(&text, "],\n \"models\": {");
    for (int c = 0; c < ncurves; c++) {
        wcm_json_buf_puts(&text, c ? ",\n  " : "\n  ");
        wcm_json_buf_string(&text, curves[c].name);
        wcm_json_buf_puts(&text, ": [");
        for (int s = 0; s < nsig; s++) {
            wcm_json_buf_puts(&text, s ? ", " : "");
            wcm_json_buf_number_fmt(&text, "%.4f", curves[c].psnr[s]);
        }
        wcm_json_buf_puts(&text, "]");
    }
    wcm_json_buf_puts(&text, "\n }\n}\n");
    if ((rc = write_report(outdir, "results.json", &text, &err))) goto fail;
    /* figure3.svg */
    /* One colour per receptive field (flat dashed, multi-scale solid) so the
     * paper's comparison reads at a glance; low-pass-only curves are gray. */
    static const char *rf_colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"};
    int rf_seen[MAX_CURVES], nrf = 0;
    svg_series series[MAX_CURVES];
    for (int c = 0; c < ncurves; c++) {
        const wcm_model *mc = &models[curves[c].model_index];
        int rf = wcm_net_rf(mc->multiscale ? mc->cond[0] : mc->net), slot = 0;
        while (slot < nrf && rf_seen[slot] != rf) slot++;
        if (slot == nrf) rf_seen[nrf++] = rf;
        series[c].name = curves[c].name;
        series[c].x = noisy_psnr;
        series[c].y = curves[c].psnr;
        series[c].n = nsig;
        series[c].dashed = !mc->multiscale || curves[c].lowpass_only;
        series[c].color = curves[c].lowpass_only ? "#888888" : rf_colors[slot % 8];
    }
    svg_plot plot = {"Denoising performance", "input PSNR (dB)", "output PSNR (dB)", 1, 820, 560};
    snprintf(path, sizeof path, "%s/figure3.svg", outdir);
    rc = svg_plot_write(path, &plot, series, ncurves, &err);
    if (rc) goto fail;
    /* report.html: every name and path through the HTML escaper. */
    wcm_json_buf_init(&text);
    wcm_json_buf_puts(&text,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>wcm eval-denoise</title>\n"
        "<style>body{font-family:Helvetica,Arial,sans-serif;margin:24px;color:#222}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}"
        "th:first-child,td:first-child{text-align:left}figure{display:inline-block;margin:6px;text-align:center}"
        "figure img{width:160px;height:160px;image-rendering:pixelated;border:1px solid #ccc}"
        "figcaption{font-size:12px;max-width:170px}</style></head><body>\n"
        "<h1>Denoising: PSNR across noise levels</h1>\n");
    wcm_json_buf_printf(&text, "<p>%d images from <code>", nimg);
    wcm_json_buf_html(&text, opts[0].value);
    wcm_json_buf_printf(&text, "</code> (first by name), centre crop %dx%d, gray; Gaussian noise seed %d; "
                               "%d noise levels; %.1f s in total.</p>\n<img src=\"figure3.svg\" alt=\"PSNR out against PSNR in\">\n"
                               "<h2>Mean PSNR (dB)</h2>\n<table><tr><th>model \\ sigma (0-255)</th>",
                        crop, crop, seed, nsig, secs);
    for (int s = 0; s < nsig; s++) wcm_json_buf_printf(&text, "<th>%.1f</th>", sig[s]);
    wcm_json_buf_puts(&text, "</tr>\n<tr><td><i>noisy input</i></td>");
    for (int s = 0; s < nsig; s++) wcm_json_buf_printf(&text, "<td>%.2f</td>", noisy_psnr[s]);
    wcm_json_buf_puts(&text, "</tr>\n");
    for (int c = 0; c < ncurves; c++) {
        wcm_json_buf_puts(&text, "<tr><td>");
        wcm_json_buf_html(&text, curves[c].name);
        wcm_json_buf_puts(&text, "</td>");
        for (int s = 0; s < nsig; s++) wcm_json_buf_printf(&text, "<td>%.2f</td>", curves[c].psnr[s]);
        wcm_json_buf_puts(&text, "</tr>\n");
    }
    wcm_json_buf_printf(&text, "</table>\n<h2>Example at sigma %.1f (image ", sig[example_sigma]);
    wcm_json_buf_html(&text, base_name(paths[0]));
    wcm_json_buf_puts(&text, ")</h2>\n<div>\n");
    wcm_json_buf_puts(&text, "<figure><img src=\"example_clean.png\"><figcaption>clean</figcaption></figure>\n");
    wcm_json_buf_puts(&text, "<figure><img src=\"example_noisy.png\"><figcaption>noisy</figcaption></figure>\n");
    for (int c = 0; c < ncurves; c++) {
        wcm_json_buf_printf(&text, "<figure><img src=\"example_%d.png\"><figcaption>", c);
        wcm_json_buf_html(&text, curves[c].name);
        wcm_json_buf_puts(&text, "</figcaption></figure>\n");
    }
    wcm_json_buf_puts(&text, "</div>\n<p>Files: <a href=\"results.csv\">results.csv</a>, <a href=\"results.json\">results.json</a>, "
                             "<a href=\"figure3.svg\">figure3.svg</a>.</p>\n</body></html>\n");
    if ((rc = write_report(outdir, "report.html", &text, &err))) goto fail;
    printf("eval-denoise: %d images, %d noise levels, %d curves in %.1f s -> %s/{results.csv,results.json,figure3.svg,report.html}\n",
           nimg, nsig, ncurves, secs, outdir);
fail:
    wcm_free(pattern);
    wcm_free_paths(paths, count);
    wcm_tensor_free(&clean);
    wcm_tensor_free(&noisy);
    wcm_tensor_free(&den);
    for (int k = 0; k < nmodels; k++) wcm_model_free(&models[k]);
    return rc ? cli_lib_error(cmd, &err) : 0;
}

const cli_command cmd_eval_denoise = {
    "eval-denoise", "Figure 3: PSNR of denoisers across noise levels on a folder of images",
    "usage: wcm eval-denoise --images DIR --out DIR [--n 50] [--crop 160]\n"
    "                        [--sigmas LIST] [--seed N] [--noise torch|philox] MODEL...\n\n"
    "Takes the first n images of DIR sorted by name, centre-crops them to\n"
    "crop x crop, converts to gray, adds Gaussian noise at every level (the same\n"
    "seeded noise pattern scaled to each sigma) and measures the mean PSNR of\n"
    "every model (name = file stem) and, for each multi-scale model, of its\n"
    "low-pass-only baseline (name STEM:lowpass-only).\n\n"
    "  --images DIR   image folder (.png .jpg .jpeg .npy; other files are skipped and counted)\n"
    "  --out DIR      output folder: results.csv (model,sigma255,psnr_noisy,psnr_denoised),\n"
    "                 results.json, figure3.svg, report.html and example PNGs\n"
    "  --n N          number of images (default 50)\n"
    "  --crop C       centre crop size (default 160)\n"
    "  --sigmas LIST  comma-separated noise levels in 0-255 units\n"
    "                 (default: the 10 values 10^(0.5 ... 2.8))\n"
    "  --seed N       noise seed (default 0)\n"
    "  --noise KIND   torch (default): bit-compatible with torch.manual_seed(N);\n"
    "                 torch.randn(n, 1, crop, crop) as in the authors' scripts;\n"
    "                 philox: wcm's counter-based generator (per-image streams)\n",
    run_eval};

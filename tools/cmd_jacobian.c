/* `wcm jacobian`: exact rows of a denoiser's Jacobian (its adaptive
 * filters), or the whole Jacobian of a small image with its spectrum. */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "wcm/json.h"
#include "wcm/denoise.h"
#include "wcm/image.h"
#include "wcm/io.h"
#include "wcm/jacobian.h"

#define MAX_PIXELS_ASKED 4096

/* "I,J;I,J;..." into pairs. */
static int parse_pixels(const char *cmd, const char *s, int **out, int *n) {
    *n = 0;
    *out = malloc(2 * MAX_PIXELS_ASKED * sizeof(int));
    if (!*out) return cli_error(cmd, "out of memory");
    const char *p = s;
    while (*p) {
        char item[64];
        size_t len = strcspn(p, ";");
        if (len == 0 || len >= sizeof item || *n >= MAX_PIXELS_ASKED)
            return cli_error(cmd, "--pixels expects I,J[;I,J...] (at most %d pixels), got '%.80s'", MAX_PIXELS_ASKED, s);
        memcpy(item, p, len);
        item[len] = 0;
        char *comma = strchr(item, ',');
        int64_t i, j;
        if (!comma) return cli_error(cmd, "--pixels: '%s' is not I,J", item);
        *comma = 0;
        if (wcm_parse_int64(item, 0, 1 << 20, &i) || wcm_parse_int64(comma + 1, 0, 1 << 20, &j))
            return cli_error(cmd, "--pixels: '%s,%s' is not a pair of row and column indices", item, comma + 1);
        (*out)[2 * *n] = (int)i, (*out)[2 * *n + 1] = (int)j;
        (*n)++;
        p += len;
        if (*p == ';' && !*++p) return cli_error(cmd, "--pixels ends with ';': '%.80s'", s);
    }
    return *n ? 0 : cli_error(cmd, "--pixels is empty");
}

/* PATH without its extension, then suffix. */
static void derived_path(const char *path, const char *suffix, char *out, size_t size) {
    snprintf(out, size, "%s", path);
    char *dot = strrchr(out, '.'), *slash = strrchr(out, '/');
    if (dot && (!slash || dot > slash + 1)) *dot = 0;
    size_t len = strlen(out);
    snprintf(out + len, size - len, "%s", suffix);
}

static int write_array(const char *path, const float *data, int ndim, const int64_t *shape, wcm_error *err) {
    wcm_array a = {0};
    a.ndim = ndim;
    memcpy(a.shape, shape, (size_t)ndim * sizeof *shape);
    a.data = (float *)data; /* borrowed: wcm_npy_write only reads it */
    return wcm_npy_write(path, &a, err);
}

/* Facts about one row p: D(y)[p] against sum_k J[p][k] y_k (homogeneity of
 * bias-free networks), the DC gain sum_k J[p][k], the centre weight J[p][p],
 * the row's norm and its support (entries above 1% of its peak). */
static void describe_row(wcm_json_buf *b, const float *row, const float *y, const float *value, int h, int w, int pi,
                         int pj) {
    const size_t n = (size_t)h * w, p = (size_t)pi * w + pj;
    double dot = 0, sum = 0, sq = 0, peak = 0;
    for (size_t k = 0; k < n; k++) {
        dot += (double)row[k] * y[k], sum += row[k], sq += (double)row[k] * row[k];
        peak = fabs(row[k]) > peak ? fabs(row[k]) : peak;
    }
    size_t support = 0;
    for (size_t k = 0; k < n; k++) support += fabs(row[k]) > 0.01 * peak;
    wcm_json_buf_printf(b, "  (%4d,%4d)  value %9.5f  sum J*y %9.5f  DC gain %7.4f  centre %7.4f  norm %7.4f  support %zu px\n",
                        pi, pj, value[p], dot, sum, row[p], sqrt(sq), support);
}

/* The default pixels of the figure for --full: the centre and four points between it and the corners. */
static int default_pixels(int h, int w, int *px) {
    const int c[5][2] = {{h / 2, w / 2}, {h / 4, w / 4}, {h / 4, 3 * w / 4}, {3 * h / 4, w / 4}, {3 * h / 4, 3 * w / 4}};
    for (int q = 0; q < 5; q++) px[2 * q] = c[q][0], px[2 * q + 1] = c[q][1];
    return 5;
}

static int run_jacobian(int argc, char **argv) {
    const char *cmd = "jacobian";
    cli_opt opts[] = {{"o", 1, 0, 0},        {"pixels", 1, 0, 0}, {"residual", 0, 0, 0}, {"lowpass-only", 0, 0, 0},
                      {"full", 0, 0, 0},     {"png", 1, 0, 0},    {"report", 1, 0, 0},   {"window", 1, 0, 0},
                      {"sigma", 1, 0, 0},    {"seed", 1, 0, 0}};
    const char *pos[2];
    int npos;
    if (cli_parse(cmd, argc, argv, opts, CLI_NOPTS(opts), pos, &npos, 2)) return 1;
    const int full = opts[4].set;
    if (npos != 2 || !opts[0].set || (!opts[1].set && !full))
        return cli_error(cmd, "usage: wcm jacobian MODEL INPUT -o OUT.npy --pixels I,J[;I,J...] [--full] ... (see --help)");
    int window = 0, seed = 0;
    double sigma255 = 0;
    if (cli_get_int_in(cmd, &opts[7], 1, 512, &window) || cli_get_double_in(cmd, &opts[8], 0, 1e4, &sigma255) ||
        cli_get_int(cmd, &opts[9], &seed))
        return 1;
    int *pixels = NULL, npix = 0;
    if (opts[1].set && parse_pixels(cmd, opts[1].value, &pixels, &npix)) {
        free(pixels);
        return 1;
    }
    const char *out_path = opts[0].value;
    char png_path[4096], report_path[4096], eig_path[4096];
    derived_path(out_path, ".png", png_path, sizeof png_path);
    derived_path(out_path, ".txt", report_path, sizeof report_path);
    derived_path(out_path, "_eigenvalues.npy", eig_path, sizeof eig_path);
    if (opts[5].set) snprintf(png_path, sizeof png_path, "%s", opts[5].value);
    if (opts[6].set) snprintf(report_path, sizeof report_path, "%s", opts[6].value);
    unsigned flags = (opts[2].set ? WCM_JACOBIAN_RESIDUAL : 0) | (opts[3].set ? WCM_JACOBIAN_LOWPASS_ONLY : 0);

    wcm_error err;
    wcm_model m;
    if (wcm_model_load(pos[0], &m, &err)) {
        free(pixels);
        return cli_lib_error(cmd, &err);
    }
    wcm_tensor img = {0}, tiles = {0};
    wcm_jacobian *jac = NULL;
    float *rows = NULL, *jfull = NULL;
    double *eig = NULL;
    wcm_json_buf rep;
    wcm_json_buf_init(&rep);
    int rc = wcm_image_read(pos[1], &img, &err);
    if (!rc && (img.n != 1 || img.c != 1))
        rc = wcm_fail(&err, WCM_ERR_SHAPE, "%s: expected one gray image (1,1,H,W), got %d images of %d channels", pos[1],
                      img.n, img.c);
    if (!rc && !wcm_tensor_all_finite(&img)) rc = wcm_fail(&err, WCM_ERR_NUMERIC, "%s contains NaN or Inf", pos[1]);
    const int h = img.h, w = img.w;
    const size_t n = (size_t)h * w;
    if (!rc && full && n > WCM_JACOBIAN_FULL_MAX)
        rc = wcm_fail(&err, WCM_ERR_ARG, "--full needs an image of at most %d pixels (64x64), got %dx%d",
                      WCM_JACOBIAN_FULL_MAX, h, w);
    if (!rc && opts[8].set) { /* a clean input made noisy */
        float *z = wcm_alloc(n * sizeof(float));
        if (!z) rc = wcm_fail(&err, WCM_ERR_NOMEM, "out of memory");
        else {
            wcm_noise_pattern(WCM_NOISE_TORCH, (uint64_t)seed, 1, n, z);
            wcm_noise_apply_255(img.data, z, n, sigma255, img.data);
            wcm_free(z);
        }
    }
    if (!rc && !pixels) {
        if (!(pixels = malloc(10 * sizeof(int)))) rc = wcm_fail(&err, WCM_ERR_NOMEM, "out of memory");
        else npix = default_pixels(h, w, pixels);
    }
    const double t0 = wcm_seconds();
    if (!rc) rc = wcm_jacobian_create(&jac, &m, img.data, h, w, flags, &err);
    if (!rc) {
        if (!(rows = wcm_alloc((size_t)npix * n * sizeof(float)))) rc = wcm_fail(&err, WCM_ERR_NOMEM, "out of memory");
        if (full && !(jfull = wcm_alloc(n * n * sizeof(float)))) rc = wcm_fail(&err, WCM_ERR_NOMEM, "out of memory");
    }
    if (!rc && !full) rc = wcm_jacobian_rows(jac, pixels, npix, rows, &err);
    if (!rc && full) rc = wcm_jacobian_full(jac, jfull, &err);
    const double t_rows = wcm_seconds() - t0;
    if (!rc && full) /* the figure's rows out of the whole Jacobian */
        for (int q = 0; q < npix; q++) {
            if (pixels[2 * q] >= h || pixels[2 * q + 1] >= w) {
                rc = wcm_fail(&err, WCM_ERR_ARG, "pixel (%d, %d) is outside the %dx%d image", pixels[2 * q],
                              pixels[2 * q + 1], h, w);
                break;
            }
            memcpy(rows + (size_t)q * n, jfull + ((size_t)pixels[2 * q] * w + pixels[2 * q + 1]) * n, n * sizeof(float));
        }
    wcm_jacobian_spectrum spec;
    double t_eig = 0;
    if (!rc && full) {
        const double t1 = wcm_seconds();
        if (!(eig = malloc(n * sizeof *eig))) rc = wcm_fail(&err, WCM_ERR_NOMEM, "out of memory");
        if (!rc) rc = wcm_jacobian_spectrum_compute(jfull, (int)n, eig, &spec, &err);
        t_eig = wcm_seconds() - t1;
    }
    /* The report. */
    if (!rc) {
        wcm_json_buf_printf(&rep, "Jacobian of %s%s of %s at %s (%dx%d)\n",
                            flags & WCM_JACOBIAN_RESIDUAL ? "the residual f(y) = y - D(y)" : "the denoiser D(y)",
                            flags & WCM_JACOBIAN_LOWPASS_ONLY ? " (low-pass only)" : "", pos[0], pos[1], h, w);
        wcm_json_buf_printf(&rep, "%s: %.3f s\n", full ? "whole Jacobian (backward passes)" : "rows (backward passes)",
                            t_rows);
        for (int q = 0; q < npix; q++)
            describe_row(&rep, rows + (size_t)q * n, img.data, wcm_jacobian_value(jac), h, w, pixels[2 * q],
                         pixels[2 * q + 1]);
        if (full) {
            wcm_json_buf_printf(&rep,
                                "trace (effective dimensionality) %.4f of %zu; eigenvalues of the symmetric part in "
                                "[%.5f, %.5f]; asymmetry ||J-J'||/||J+J'|| %.4f; ||J||_F %.4f; eigenvalues %.3f s\n",
                                spec.trace, n, spec.eig_min, spec.eig_max, spec.asymmetry, spec.frobenius, t_eig);
            wcm_json_buf_puts(&rep, "shrinkage profile (eigenvalue at rank 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000):");
            const int ranks[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000};
            for (size_t r = 0; r < sizeof ranks / sizeof *ranks; r++)
                if ((size_t)ranks[r] <= n) wcm_json_buf_printf(&rep, " %.4f", eig[ranks[r] - 1]);
            wcm_json_buf_puts(&rep, "\n");
        }
        if (rep.failed) rc = wcm_fail(&err, WCM_ERR_NOMEM, "out of memory for the report");
    }
    /* Outputs: the rows (or whole Jacobian), the eigenvalues, the figure, the report. */
    if (!rc) {
        const int64_t shape[3] = {full ? (int64_t)n : npix, h, w};
        rc = write_array(out_path, full ? jfull : rows, 3, shape, &err);
    }
    if (!rc && full) {
        float *ef = malloc(n * sizeof *ef);
        if (!ef) rc = wcm_fail(&err, WCM_ERR_NOMEM, "out of memory");
        for (size_t k = 0; !rc && k < n; k++) ef[k] = (float)eig[k];
        const int64_t shape[1] = {(int64_t)n};
        if (!rc) rc = write_array(eig_path, ef, 1, shape, &err);
        free(ef);
    }
    if (!rc) {
        if (!window) window = (h < w ? h : w) < 41 ? (h < w ? h : w) : 41;
        const int zoom = window >= 128 ? 1 : 128 / window;
        rc = wcm_jacobian_filter_tiles(img.data, h, w, rows, pixels, npix, window, zoom, &tiles, &err);
        if (!rc) rc = wcm_image_write_grid(png_path, &tiles, npix < 4 ? 2 * npix : 8, 4, &err);
    }
    if (!rc) rc = wcm_write_file_atomic(report_path, rep.data, rep.len, &err);
    if (!rc) {
        fputs(rep.data, stdout);
        printf("wrote %s, %s, %s%s%s\n", out_path, png_path, report_path, full ? ", " : "", full ? eig_path : "");
    }
    wcm_json_buf_free(&rep);
    wcm_jacobian_free(jac);
    wcm_free(rows);
    wcm_free(jfull);
    free(eig);
    free(pixels);
    wcm_tensor_free(&img);
    wcm_tensor_free(&tiles);
    wcm_model_free(&m);
    return rc ? cli_lib_error(cmd, &err) : 0;
}

const cli_command cmd_jacobian = {
    "jacobian", "exact Jacobian rows of a denoiser (its adaptive filters), or the whole Jacobian",
    "usage: wcm jacobian MODEL INPUT -o OUT.npy --pixels I,J[;I,J...]\n"
    "                    [--residual] [--lowpass-only] [--full] [--window N]\n"
    "                    [--png FILE] [--report FILE] [--sigma S] [--seed N]\n\n"
    "Rows of the Jacobian of the denoiser D(y) = y - f(y) at the noisy image\n"
    "INPUT (.npy of shape (1,1,H,W) or (H,W), or .png/.jpg), one per pixel\n"
    "(row I, column J): row p is the linear filter that gives denoised pixel p\n"
    "(bias-free networks are homogeneous: D(y)[p] = sum_k J[p,k] y_k). Rows are\n"
    "exact: each is a backward pass of a one-hot through every network (and,\n"
    "for multi-scale models, the inverse Haar, each conditional net, the\n"
    "low-pass net and the forward Haar). OUT.npy has shape (P,H,W).\n\n"
    "  --residual      the Jacobian of the network's output f(y) = y - D(y)\n"
    "  --lowpass-only  multi-scale models: of the low-pass-only denoiser\n"
    "  --full          the whole Jacobian (images up to 64x64): OUT.npy is\n"
    "                  (H*W,H,W); OUT_eigenvalues.npy holds the eigenvalues of\n"
    "                  its symmetric part (J+J')/2 in decreasing order (the\n"
    "                  shrinkage profile); the report gives the trace (effective\n"
    "                  dimensionality), the eigenvalue range and the asymmetry.\n"
    "                  --pixels then only chooses the figure's pixels.\n"
    "  --window N      side of the zoomed crops of the figure (default min(H,W,41))\n"
    "  --png FILE      the figure (default OUT.png): per pixel, the image and the\n"
    "                  filter around it (mid-gray 0, white positive)\n"
    "  --report FILE   the text report (default OUT.txt; also printed)\n"
    "  --sigma S       add Gaussian noise of std S/255 to INPUT first (seed --seed,\n"
    "                  as torch.manual_seed(N); torch.randn)\n",
    run_jacobian};

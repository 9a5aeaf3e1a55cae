/* `wcm eval-samples`: statistics of sets of samples against real images
 * (include/wcm/stats.h): Haar band marginals, power spectrum, pixel
 * histogram, stripe ratios, diverged samples and, with --train, the PSNR of
 * every sample to its nearest training image. Prints markdown tables and
 * writes eval_samples.json, eval_samples.csv and per_sample.csv. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "wcm/json.h"
#include "wcm/image.h"
#include "wcm/io.h"
#include "wcm/stats.h"

#define MAX_SETS 32
#define TRAIN_BATCH 64

typedef enum { ST_CONVERGED, ST_PLATEAU, ST_CAP, ST_DIVERGED, ST_UNKNOWN } sample_state;
static const char *const state_names[] = {"converged", "plateau", "cap", "diverged", "unknown"};

typedef struct {
    const char *dir;
    char **paths;
    int count;
    int from_log;          /* statuses read from DIR/log.json */
    sample_state *state;   /* [count] */
    wcm_tensor images;
    wcm_set_stats *stats;  /* heap: about 60 KB */
    wcm_stats_comparison cmp;
    int diverged, capped, plateau;
    double *nn_mse;        /* [count], with --train */
    int *nn_index;
    double *stripe_h, *stripe_v;
} sample_set;

/* Reading the sets -------------------------------------------------------------- */

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcasecmp(s + n - m, suffix);
}

/* The worst status of sample k over the nets of a `wcm sample` log. */
static sample_state log_state(const wcm_json *nets, size_t k) {
    sample_state s = ST_CONVERGED;
    for (size_t i = 0; i < wcm_json_count(nets); i++) {
        const char *st = wcm_json_string(wcm_json_at(wcm_json_get(wcm_json_at(nets, i), "sample_status"), k));
        if (!st) return ST_UNKNOWN;
        if (!strcmp(st, "diverged") || !strcmp(st, "skipped")) return ST_DIVERGED;
        if (!strcmp(st, "cap")) s = ST_CAP;
        else if (!strcmp(st, "plateau") && s != ST_CAP) s = ST_PLATEAU;
    }
    return s;
}

/* With DIR/log.json (written by `wcm sample`): sample_NNN.npy (or .png) for
 * every sample of the log, statuses from the log. Otherwise every image of
 * DIR, a .npy preferred to a .png or .jpg of the same name. */
static int list_set(sample_set *s, int max, wcm_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/log.json", s->dir);
    if (file_exists(path)) {
        unsigned char *text = NULL;
        size_t len = 0;
        wcm_json *log = NULL;
        int rc = wcm_read_file(path, &text, &len, err);
        if (!rc) rc = wcm_json_parse((const char *)text, len, &log, err);
        free(text);
        if (rc) return wcm_fail_context(err, rc, "%s", path);
        int64_t n = 0;
        const wcm_json *nets = wcm_json_get(log, "nets");
        if (wcm_json_int64(wcm_json_get(log, "samples"), &n) || n < 1 || n > 1000000 || !wcm_json_count(nets)) {
            wcm_json_free(log);
            return wcm_fail(err, WCM_ERR_FORMAT, "%s: not a wcm sample log (no \"samples\" count or \"nets\")", path);
        }
        s->count = (int)(max > 0 && max < n ? max : n);
        s->paths = calloc((size_t)s->count, sizeof *s->paths);
        s->state = calloc((size_t)s->count, sizeof *s->state);
        for (int k = 0; s->paths && s->state && k < s->count; k++) {
            snprintf(path, sizeof path, "%s/sample_%03d.npy", s->dir, k);
            if (!file_exists(path)) snprintf(path, sizeof path, "%s/sample_%03d.png", s->dir, k);
            if (!file_exists(path)) {
                wcm_json_free(log);
                return wcm_fail(err, WCM_ERR_IO, "%s: the log lists %lld samples but sample_%03d.npy/.png is missing",
                                s->dir, (long long)n, k);
            }
            s->paths[k] = strdup(path);
            s->state[k] = log_state(nets, (size_t)k);
            if (!s->paths[k]) break;
        }
        wcm_json_free(log);
        s->from_log = 1;
        for (int k = 0; k < s->count; k++)
            if (!s->paths || !s->state || !s->paths[k]) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
        return WCM_OK;
    }
    char **all;
    int n;
    int rc = wcm_list_images(s->dir, &all, &n, NULL, err);
    if (rc) return rc;
    s->paths = calloc((size_t)(n ? n : 1), sizeof *s->paths);
    s->state = calloc((size_t)(n ? n : 1), sizeof *s->state);
    if (!s->paths || !s->state) {
        wcm_free_paths(all, n);
        return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        /* Skip X.png / X.jpg when X.npy exists (the float copy `--npy` writes). */
        const char *dot = strrchr(all[i], '.');
        if (!ends_with(all[i], ".npy")) {
            snprintf(path, sizeof path, "%.*s.npy", (int)(dot - all[i]), all[i]);
            if (file_exists(path)) continue;
        }
        if (max > 0 && s->count >= max) break;
        s->paths[s->count] = all[i];
        s->state[s->count++] = ST_UNKNOWN;
        all[i] = NULL;
    }
    wcm_free_paths(all, n);
    if (!s->count) return wcm_fail(err, WCM_ERR_IO, "%s: no images (.npy, .png, .jpg)", s->dir);
    return WCM_OK;
}

/* Read images and centre-crop each to h x w into one batch. */
static int load_batch(char **paths, int n, int h, int w, wcm_tensor *batch, wcm_error *err) {
    int rc = wcm_tensor_alloc(batch, n, h, w, 1, err);
    for (int i = 0; !rc && i < n; i++) {
        wcm_tensor img = {0}, crop = {0};
        rc = wcm_image_read(paths[i], &img, err);
        if (!rc && (img.h < h || img.w < w))
            rc = wcm_fail(err, WCM_ERR_SHAPE, "%s is %dx%d, smaller than the %dx%d compared", paths[i], img.h, img.w, h, w);
        if (!rc) rc = wcm_image_center_crop(&img, h, w, &crop, err);
        if (!rc) memcpy(batch->data + (size_t)i * h * w, crop.data, (size_t)h * w * sizeof(float));
        if (rc && !strstr(err->msg, paths[i])) wcm_fail_context(err, rc, "%s", paths[i]);
        wcm_tensor_free(&img);
        wcm_tensor_free(&crop);
    }
    return rc;
}

/* Statuses, per-sample stripes, counts. Without a log a sample is diverged
 * when it is not finite or leaves the range. */
static int summarise_set(sample_set *s, const wcm_stats_binning *b, const wcm_set_stats *real, wcm_error *err) {
    const size_t hw = (size_t)s->images.h * s->images.w;
    s->stripe_h = malloc((size_t)s->count * sizeof(double));
    s->stripe_v = malloc((size_t)s->count * sizeof(double));
    s->stats = malloc(sizeof *s->stats);
    if (!s->stripe_h || !s->stripe_v || !s->stats) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    for (int k = 0; k < s->count; k++) {
        s->stripe_h[k] = s->stripe_v[k] = NAN;
        const int finite = wcm_image_finite(&s->images, k);
        if (finite) {
            int rc = wcm_stripe_ratio(&s->images, k, &s->stripe_h[k], &s->stripe_v[k], err);
            if (rc) return rc;
        }
        if (!s->from_log) {
            int outside = !finite;
            for (size_t i = 0; finite && i < hw; i++) {
                const float v = s->images.data[k * hw + i];
                outside |= v < b->range_min || v > b->range_max;
            }
            s->state[k] = outside ? ST_DIVERGED : ST_UNKNOWN;
        }
        s->diverged += s->state[k] == ST_DIVERGED;
        s->capped += s->state[k] == ST_CAP;
        s->plateau += s->state[k] == ST_PLATEAU;
    }
    int rc = wcm_set_stats_compute(&s->images, b, s->stats, err);
    if (!rc) rc = wcm_set_stats_compare(s->stats, real, b, &s->cmp, err);
    return rc;
}

/* Nearest training image of every sample of every set and of the real images. */
static int nearest_train(const char *cmd, const char *train_dir, int h, int w, sample_set *sets, int nsets,
                         char ***train_paths, int *ntrain, wcm_error *err) {
    int rc = wcm_list_images(train_dir, train_paths, ntrain, NULL, err);
    if (!rc && !*ntrain) rc = wcm_fail(err, WCM_ERR_IO, "%s: no training images", train_dir);
    for (int s = 0; !rc && s < nsets; s++) {
        sets[s].nn_mse = malloc((size_t)sets[s].count * sizeof(double));
        sets[s].nn_index = malloc((size_t)sets[s].count * sizeof(int));
        if (!sets[s].nn_mse || !sets[s].nn_index) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
        for (int k = 0; k < sets[s].count; k++) sets[s].nn_mse[k] = INFINITY, sets[s].nn_index[k] = -1;
    }
    const double start = wcm_seconds();
    for (int i = 0; !rc && i < *ntrain; i += TRAIN_BATCH) {
        const int m = *ntrain - i < TRAIN_BATCH ? *ntrain - i : TRAIN_BATCH;
        wcm_tensor batch = {0};
        rc = load_batch(*train_paths + i, m, h, w, &batch, err);
        for (int s = 0; !rc && s < nsets; s++)
            rc = wcm_nearest_update(&sets[s].images, &batch, i, sets[s].nn_mse, sets[s].nn_index, err);
        wcm_tensor_free(&batch);
        if (!rc && (i / TRAIN_BATCH) % 16 == 15)
            cli_progress("%s: nearest training image: %d of %d compared [%.1f s]\n", cmd, i + m, *ntrain,
                         wcm_seconds() - start);
    }
    return rc;
}

/* Output -------------------------------------------------------------------------- */

static const char *base_name(const char *path) {
    const char *b = strrchr(path, '/');
    return b && b[1] ? b + 1 : path;
}

/* A set's name in tables: its folder, without a trailing slash. */
static void set_name(const char *dir, char *out, size_t size) {
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    snprintf(out, size, "%.*s", (int)n, dir);
}

static void nn_summary(const sample_set *s, double *mean, double *max) {
    int n = 0;
    *mean = 0, *max = -INFINITY;
    for (int k = 0; k < s->count; k++) {
        if (s->nn_index[k] < 0 || !wcm_image_finite(&s->images, k)) continue;
        const double p = wcm_psnr_from_mse(s->nn_mse[k]);
        *mean += p, *max = fmax(*max, p), n++;
    }
    *mean = n ? *mean / n : NAN;
    if (!n) *max = NAN;
}

static void print_tables(const sample_set *sets, int nsets, const sample_set *real, const wcm_stats_binning *b,
                         int with_train) {
    char name[256];
    printf("\nSamples against %d real images (%dx%d): KL(samples || real) in nats per Haar band H/V/D of each level\n"
           "(0 = finest) and of the pixel and coarsest low-pass histograms; stripe ratios (real: %.3f / %.3f).\n\n",
           real->stats->images, b->h, b->w, real->stats->stripe_h, real->stats->stripe_v);
    printf("| set | n | diverged | pixel KL |");
    for (int j = 0; j < b->levels; j++) printf(" level %d H/V/D KL |", j);
    printf(" low KL | stripe h | stripe v |%s\n", with_train ? " nearest train PSNR mean / max |" : "");
    printf("|---|---:|---:|---:|");
    for (int j = 0; j < b->levels; j++) printf("---|");
    printf("---:|---:|---:|%s\n", with_train ? "---|" : "");
    for (int s = 0; s < nsets; s++) {
        const sample_set *x = &sets[s];
        set_name(x->dir, name, sizeof name);
        printf("| %s | %d | %d%s | %.4f |", name, x->count, x->diverged, x->from_log ? "" : "*", x->cmp.pixel_kl);
        for (int j = 0; j < b->levels; j++)
            printf(" %.3f / %.3f / %.3f |", x->cmp.band_kl[j][0], x->cmp.band_kl[j][1], x->cmp.band_kl[j][2]);
        printf(" %.4f | %.3f ± %.3f | %.3f ± %.3f |", x->cmp.low_kl, x->cmp.stripe_h, x->cmp.stripe_h_se, x->cmp.stripe_v,
               x->cmp.stripe_v_se);
        if (with_train) {
            double mean, max;
            nn_summary(x, &mean, &max);
            printf(" %.2f / %.2f |", mean, max);
        }
        printf("\n");
    }
    if (with_train) {
        double mean, max;
        nn_summary(real, &mean, &max);
        printf("| (real images) | %d | | | ", real->count);
        for (int j = 0; j < b->levels; j++) printf(" |");
        printf(" | %.3f | %.3f | %.2f / %.2f |\n", real->stats->stripe_h, real->stats->stripe_v, mean, max);
    }
    int any_values = 0;
    for (int s = 0; s < nsets; s++) any_values |= !sets[s].from_log;
    if (any_values)
        printf("\n* no log.json: diverged = not finite or a value outside [%g, %g] (PNG samples are clipped to [0, 1])\n",
               b->range_min, b->range_max);
    const wcm_radial_spectrum *sp = &real->stats->spectrum;
    printf("\nRadially averaged power spectrum, 10 log10(P_samples / P_real) in dB per octave band of |f| (cycles/pixel):\n\n| set |");
    for (int k = 0; k < sp->bands; k++) printf(" %.3g-%.3g |", sp->lo[k], sp->hi[k]);
    printf("\n|---|");
    for (int k = 0; k < sp->bands; k++) printf("---:|");
    printf("\n");
    for (int s = 0; s < nsets; s++) {
        set_name(sets[s].dir, name, sizeof name);
        printf("| %s |", name);
        for (int k = 0; k < sp->bands; k++) printf(" %+.2f |", sets[s].cmp.spectrum_db[k]);
        printf("\n");
    }
}

static void json_num(wcm_json_buf *b, const char *key, double v) {
    wcm_json_buf_printf(b, "\"%s\": ", key);
    wcm_json_buf_number(b, v);
}

/* [[H, V, D] of level 0, ...] */
static void json_bands(wcm_json_buf *j, const double (*v)[3], int levels) {
    for (int l = 0; l < levels; l++)
        for (int band = 0; band < 3; band++) {
            wcm_json_buf_puts(j, band ? ", " : l ? "], [" : "[[");
            wcm_json_buf_number(j, v[l][band]);
        }
    wcm_json_buf_puts(j, "]]");
}

static void json_set(wcm_json_buf *j, const sample_set *s, const wcm_stats_binning *b, char **train, int with_train) {
    wcm_json_buf_puts(j, "  {\"dir\": ");
    wcm_json_buf_string(j, s->dir);
    wcm_json_buf_printf(j, ", \"images\": %d, \"status_source\": \"%s\", \"diverged\": %d, \"cap\": %d, \"plateau\": %d, "
                           "\"nonfinite\": %d, \"out_of_range\": %d,\n   ",
                        s->count, s->from_log ? "log" : "values", s->diverged, s->capped, s->plateau, s->stats->nonfinite,
                        s->stats->out_of_range);
    json_num(j, "diverged_fraction", (double)s->diverged / s->count);
    wcm_json_buf_puts(j, ", ");
    json_num(j, "pixel_kl", s->cmp.pixel_kl);
    wcm_json_buf_puts(j, ", ");
    json_num(j, "low_kl", s->cmp.low_kl);
    wcm_json_buf_puts(j, ",\n   \"band_kl\": ");
    json_bands(j, s->cmp.band_kl, b->levels);
    wcm_json_buf_puts(j, ",\n   \"band_std_ratio\": ");
    json_bands(j, s->cmp.band_std_ratio, b->levels);
    wcm_json_buf_puts(j, ",\n   \"spectrum_db\": [");
    for (int k = 0; k < s->cmp.spectrum_bands; k++) {
        wcm_json_buf_puts(j, k ? ", " : "");
        wcm_json_buf_number(j, s->cmp.spectrum_db[k]);
    }
    wcm_json_buf_puts(j, "],\n   ");
    json_num(j, "stripe_h", s->cmp.stripe_h);
    wcm_json_buf_puts(j, ", ");
    json_num(j, "stripe_v", s->cmp.stripe_v);
    wcm_json_buf_puts(j, ", ");
    json_num(j, "stripe_h_se", s->cmp.stripe_h_se);
    wcm_json_buf_puts(j, ", ");
    json_num(j, "stripe_v_se", s->cmp.stripe_v_se);
    wcm_json_buf_puts(j, ",\n   \"per_sample\": [");
    for (int k = 0; k < s->count; k++) {
        wcm_json_buf_puts(j, k ? ",\n    {\"file\": " : "\n    {\"file\": ");
        wcm_json_buf_string(j, base_name(s->paths[k]));
        wcm_json_buf_printf(j, ", \"status\": \"%s\", ", state_names[s->state[k]]);
        json_num(j, "stripe_h", s->stripe_h[k]);
        wcm_json_buf_puts(j, ", ");
        json_num(j, "stripe_v", s->stripe_v[k]);
        if (with_train) {
            wcm_json_buf_puts(j, ", ");
            json_num(j, "nearest_train_psnr", wcm_image_finite(&s->images, k) ? wcm_psnr_from_mse(s->nn_mse[k]) : NAN);
            wcm_json_buf_puts(j, ", \"nearest_train\": ");
            wcm_json_buf_string(j, s->nn_index[k] >= 0 ? base_name(train[s->nn_index[k]]) : "");
        }
        wcm_json_buf_puts(j, "}");
    }
    wcm_json_buf_puts(j, "]}");
}

/* A CSV field in quotes, its quotes doubled (folder names may hold commas). */
static void csv_quoted(wcm_json_buf *b, const char *s) {
    wcm_json_buf_puts(b, "\"");
    for (const char *q; (q = strchr(s, '"')); s = q + 1) {
        wcm_json_buf_append(b, s, (size_t)(q - s));
        wcm_json_buf_puts(b, "\"\"");
    }
    wcm_json_buf_puts(b, s);
    wcm_json_buf_puts(b, "\"");
}

static int write_outputs(const char *dir, const sample_set *sets, int nsets, const sample_set *real,
                         const wcm_stats_binning *b, char **train, int with_train, wcm_error *err) {
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return wcm_fail(err, WCM_ERR_IO, "%s: cannot create directory: %s", dir, strerror(errno));
    wcm_json_buf j, csv, per;
    wcm_json_buf_init(&j);
    wcm_json_buf_init(&csv);
    wcm_json_buf_init(&per);
    const wcm_radial_spectrum *sp = &real->stats->spectrum;
    wcm_json_buf_printf(&j, "{\n \"size\": [%d, %d], \"levels\": %d, \"bins\": %d, \"smoothing\": ", b->h, b->w, b->levels,
                        b->pixel.bins);
    wcm_json_buf_number(&j, b->smoothing);
    wcm_json_buf_printf(&j, ",\n \"kl\": \"KL(samples || real), nats\", \"spectrum\": \"10 log10(P_samples / P_real), dB\",\n"
                            " \"spectrum_bands\": [");
    for (int k = 0; k < sp->bands; k++) {
        wcm_json_buf_printf(&j, "%s[", k ? ", " : "");
        wcm_json_buf_number(&j, sp->lo[k]);
        wcm_json_buf_puts(&j, ", ");
        wcm_json_buf_number(&j, sp->hi[k]);
        wcm_json_buf_puts(&j, "]");
    }
    wcm_json_buf_puts(&j, "],\n \"real\": {\"dir\": ");
    wcm_json_buf_string(&j, real->dir);
    wcm_json_buf_printf(&j, ", \"images\": %d, ", real->stats->images);
    json_num(&j, "stripe_h", real->stats->stripe_h);
    wcm_json_buf_puts(&j, ", ");
    json_num(&j, "stripe_v", real->stats->stripe_v);
    double mean = NAN, max = NAN;
    if (with_train) {
        nn_summary(real, &mean, &max);
        wcm_json_buf_puts(&j, ", ");
        json_num(&j, "nearest_train_psnr_mean", mean);
        wcm_json_buf_puts(&j, ", ");
        json_num(&j, "nearest_train_psnr_max", max);
    }
    wcm_json_buf_puts(&j, "},\n \"sets\": [\n");
    wcm_json_buf_puts(&csv, "set,images,diverged,diverged_fraction,pixel_kl,low_kl");
    for (int l = 0; l < b->levels; l++) wcm_json_buf_printf(&csv, ",kl_level%d_h,kl_level%d_v,kl_level%d_d", l, l, l);
    for (int k = 0; k < sp->bands; k++) wcm_json_buf_printf(&csv, ",spectrum_db_%.4g_%.4g", sp->lo[k], sp->hi[k]);
    wcm_json_buf_puts(&csv, ",stripe_h,stripe_v,nearest_train_psnr_mean,nearest_train_psnr_max,stripe_h_se,stripe_v_se\n");
    wcm_json_buf_puts(&per, "set,file,status,stripe_h,stripe_v,nearest_train_psnr,nearest_train\n");
    for (int s = 0; s < nsets; s++) {
        const sample_set *x = &sets[s];
        json_set(&j, x, b, train, with_train);
        wcm_json_buf_puts(&j, s + 1 < nsets ? ",\n" : "\n");
        char name[256];
        set_name(x->dir, name, sizeof name);
        csv_quoted(&csv, name);
        wcm_json_buf_printf(&csv, ",%d,%d,%.6g,%.6g,%.6g", x->count, x->diverged, (double)x->diverged / x->count,
                            x->cmp.pixel_kl, x->cmp.low_kl);
        for (int l = 0; l < b->levels; l++)
            for (int band = 0; band < 3; band++) wcm_json_buf_printf(&csv, ",%.6g", x->cmp.band_kl[l][band]);
        for (int k = 0; k < sp->bands; k++) wcm_json_buf_printf(&csv, ",%.6g", x->cmp.spectrum_db[k]);
        if (with_train) nn_summary(x, &mean, &max);
        wcm_json_buf_printf(&csv, ",%.6g,%.6g,%.6g,%.6g,%.6g,%.6g\n", x->cmp.stripe_h, x->cmp.stripe_v,
                            with_train ? mean : NAN, with_train ? max : NAN, x->cmp.stripe_h_se, x->cmp.stripe_v_se);
        for (int k = 0; k < x->count; k++) {
            csv_quoted(&per, name);
            wcm_json_buf_printf(&per, ",%s,%s,%.6g,%.6g,%.6g,%s\n", base_name(x->paths[k]), state_names[x->state[k]],
                                x->stripe_h[k], x->stripe_v[k],
                                with_train && wcm_image_finite(&x->images, k) ? wcm_psnr_from_mse(x->nn_mse[k]) : NAN,
                                with_train && x->nn_index[k] >= 0 ? base_name(train[x->nn_index[k]]) : "");
        }
    }
    wcm_json_buf_puts(&j, " ]\n}\n");
    char path[4096];
    int rc = j.failed || csv.failed || per.failed ? wcm_fail(err, WCM_ERR_NOMEM, "out of memory for the outputs") : 0;
    snprintf(path, sizeof path, "%s/eval_samples.json", dir);
    if (!rc) rc = wcm_write_file_atomic(path, j.data, j.len, err);
    snprintf(path, sizeof path, "%s/eval_samples.csv", dir);
    if (!rc) rc = wcm_write_file_atomic(path, csv.data, csv.len, err);
    snprintf(path, sizeof path, "%s/per_sample.csv", dir);
    if (!rc) rc = wcm_write_file_atomic(path, per.data, per.len, err);
    wcm_json_buf_free(&j);
    wcm_json_buf_free(&csv);
    wcm_json_buf_free(&per);
    return rc;
}

/* The command ---------------------------------------------------------------------- */

static void set_free(sample_set *s) {
    if (s->paths) wcm_free_paths(s->paths, s->count);
    free(s->state);
    wcm_tensor_free(&s->images);
    free(s->stats);
    free(s->nn_mse);
    free(s->nn_index);
    free(s->stripe_h);
    free(s->stripe_v);
}

static int run_eval_samples(int argc, char **argv) {
    const char *cmd = "eval-samples";
    enum { O_TRAIN, O_OUT, O_CROP, O_MAX, O_LEVELS, O_BINS, NOPTS };
    cli_opt opts[NOPTS] = {{"train", 1, 0, 0}, {"out", 1, 0, 0},    {"crop", 1, 0, 0},
                           {"max", 1, 0, 0},   {"levels", 1, 0, 0}, {"bins", 1, 0, 0}};
    const char *pos[MAX_SETS + 1];
    int npos, crop = 0, max = 0;
    if (cli_parse(cmd, argc, argv, opts, NOPTS, pos, &npos, MAX_SETS + 1)) return 1;
    if (npos < 2) return cli_error(cmd, "usage: wcm eval-samples SAMPLES_DIR... REAL_DIR [--train DIR] [--out DIR] (see --help)");
    wcm_stats_options so;
    wcm_stats_options_default(&so);
    if (cli_get_int(cmd, &opts[O_CROP], &crop) || cli_get_int(cmd, &opts[O_MAX], &max) ||
        cli_get_int(cmd, &opts[O_LEVELS], &so.levels) || cli_get_int(cmd, &opts[O_BINS], &so.bins))
        return 1;
    if (opts[O_CROP].set && (crop < 8 || crop > 16384)) return cli_error(cmd, "--crop must be in 8..16384, got %d", crop);
    if (opts[O_MAX].set && max < 1) return cli_error(cmd, "--max must be at least 1, got %d", max);
    if (so.levels < 1 || so.levels > 6) return cli_error(cmd, "--levels must be in 1..6, got %d", so.levels);
    if (so.bins < 2 || so.bins > WCM_STATS_MAX_BINS)
        return cli_error(cmd, "--bins must be in 2..%d, got %d", WCM_STATS_MAX_BINS, so.bins);
    const int nsets = npos - 1;
    sample_set sets[MAX_SETS + 1], real; /* + 1: the real set joins the nearest-image search */
    memset(sets, 0, sizeof sets);
    memset(&real, 0, sizeof real);
    real.dir = pos[nsets];
    char **train = NULL;
    int ntrain = 0, h = crop, w = crop, rc = 0;
    wcm_stats_binning bin;
    wcm_error err;
    for (int s = 0; !rc && s < nsets; s++) {
        sets[s].dir = pos[s];
        rc = list_set(&sets[s], max, &err);
    }
    if (!rc) rc = list_set(&real, max, &err);
    if (!rc && !crop) { /* the first sample's size */
        wcm_tensor first = {0};
        rc = wcm_image_read(sets[0].paths[0], &first, &err);
        h = first.h, w = first.w;
        wcm_tensor_free(&first);
    }
    const int f = 1 << so.levels;
    if (!rc && (h % f || w % f)) {
        cli_progress("%s: comparing the centre %dx%d (divisible by 2^%d)\n", cmd, h / f * f, w / f * f, so.levels);
        h = h / f * f, w = w / f * f;
        if (!h || !w) rc = wcm_fail(&err, WCM_ERR_SHAPE, "images of %dx%d are too small for %d levels", h, w, so.levels);
    }
    const double start = wcm_seconds();
    if (!rc) rc = load_batch(real.paths, real.count, h, w, &real.images, &err);
    if (!rc) rc = wcm_stats_binning_from_real(&real.images, &so, &bin, &err);
    if (!rc && !(real.stats = malloc(sizeof *real.stats))) rc = wcm_fail(&err, WCM_ERR_NOMEM, "out of memory");
    if (!rc) rc = wcm_set_stats_compute(&real.images, &bin, real.stats, &err);
    for (int s = 0; !rc && s < nsets; s++) {
        rc = load_batch(sets[s].paths, sets[s].count, h, w, &sets[s].images, &err);
        if (!rc) rc = summarise_set(&sets[s], &bin, real.stats, &err);
    }
    if (!rc)
        cli_progress("%s: %d real image%s, %d set%s of samples, %dx%d [%.1f s]\n", cmd, real.count,
                     real.count == 1 ? "" : "s", nsets, nsets == 1 ? "" : "s", h, w, wcm_seconds() - start);
    /* The real images against the training set: the distance a new face has. */
    sets[nsets] = real;
    if (!rc && opts[O_TRAIN].set)
        rc = nearest_train(cmd, opts[O_TRAIN].value, h, w, sets, nsets + 1, &train, &ntrain, &err);
    real = sets[nsets];
    if (!rc) print_tables(sets, nsets, &real, &bin, opts[O_TRAIN].set);
    if (!rc && opts[O_OUT].set) {
        rc = write_outputs(opts[O_OUT].value, sets, nsets, &real, &bin, train, opts[O_TRAIN].set, &err);
        if (!rc) printf("\n%s: wrote %s/{eval_samples.json, eval_samples.csv, per_sample.csv}\n", cmd, opts[O_OUT].value);
    }
    for (int s = 0; s < nsets; s++) set_free(&sets[s]);
    set_free(&real);
    if (train) wcm_free_paths(train, ntrain);
    return rc ? cli_lib_error(cmd, &err) : 0;
}

const cli_command cmd_eval_samples = {
    "eval-samples", "statistics of samples against real images (marginals, spectrum, stripes, memorisation)",
    "usage: wcm eval-samples SAMPLES_DIR [SAMPLES_DIR...] REAL_DIR [--train DIR]\n"
    "                        [--out DIR] [--crop N] [--max N] [--levels J] [--bins B]\n\n"
    "Compares each set of samples with the real images (the last folder):\n"
    "  - KL(samples || real), in nats, of the histograms of every Haar detail band\n"
    "    (H, V, D of levels 0..J-1, 0 the finest), of the coarsest low-pass and of\n"
    "    the pixels. Bins are fixed by the real images: pixels and low-pass B bins\n"
    "    over [0, 1]; details B bins uniform in asinh(c / s) up to the real images'\n"
    "    largest |c| (s: their standard deviation); one more bin each side catches\n"
    "    values the real images never take. Every count gets +0.5 before\n"
    "    normalising, so identical histograms give 0 and empty bins stay finite;\n"
    "  - the radially averaged power spectrum (mean removed, no window) as\n"
    "    10 log10(P_samples / P_real) in dB per octave band of spatial frequency;\n"
    "  - the stripe ratios: mean |horizontal difference| at even columns over odd\n"
    "    columns, and the same for rows (1 for natural images; 2-periodic stripes\n"
    "    move it), averaged over the samples, with its standard error (the sd over\n"
    "    the samples / sqrt(n): compare two sets by it, not by the means alone);\n"
    "  - diverged samples: from SAMPLES_DIR/log.json when `wcm sample` wrote the\n"
    "    folder (a sample diverged or skipped at any net), else the samples that\n"
    "    are not finite or leave [-0.5, 1.5] (use --npy samples: PNGs are clipped);\n"
    "  - with --train DIR: for every sample the PSNR to its nearest training image\n"
    "    (centre-cropped alike; exact copies give the cap, 100 dB), beside the same\n"
    "    for the real images (how close a new image comes to the training set).\n\n"
    "A folder written by `wcm sample` contributes sample_NNN.npy (or .png) of its\n"
    "log; any other folder contributes every image (.npy preferred to a .png or\n"
    ".jpg of the same name).\n\n"
    "  --train DIR   training images for the nearest-neighbour PSNR\n"
    "  --out DIR     write eval_samples.json, eval_samples.csv and per_sample.csv\n"
    "  --crop N      compare the centre N x N of every image (default: the size of\n"
    "                the first sample; then cropped to a multiple of 2^J)\n"
    "  --max N       at most the first N images of each folder (samples and real;\n"
    "                the training folder is always used whole)\n"
    "  --levels J    Haar levels of the band statistics (3)\n"
    "  --bins B      histogram bins (64)\n",
    run_eval_samples};

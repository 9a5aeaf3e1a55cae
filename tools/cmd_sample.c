/* The generative commands: `wcm sample` (Algorithm 2 synthesis), `wcm superres`
 * (the cascade from a given low-pass) and `wcm inverse` (the pixel-domain
 * constrained sampler of Kadkhodaie & Simoncelli 2021). All three share the
 * Algorithm-1 options, progress lines and the JSON run log. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli_images.h"
#include "wcm/json.h"
#include "wcm/comm.h"
#include "wcm/denoise.h"
#include "wcm/image.h"
#include "wcm/inverse.h"
#include "wcm/io.h"
#include "wcm/synth.h"

/* Algorithm-1 options: --KEY (every net) and --KEY-low / --KEY-cond<j> ------- */

enum { K_H0, K_SIGMA0, K_SIGMAL, K_BETA, K_MAX_ITERS, K_DIVERGE, K_STD_JUMP, K_PLATEAU, K_FIXED, K_ASCENDING, NKEYS };
static const char *const key_names[NKEYS] = {"h0",       "sigma0",  "sigmaL",     "beta",          "max-iters", "diverge",
                                             "std-jump", "plateau", "fixed-step", "ascending-step"};
#define NSUFFIX (2 + WCM_MAX_LEVELS) /* "", "-low", "-cond0" ... */
#define MAX_BASE_OPTS 16

typedef struct {
    cli_opt opt[MAX_BASE_OPTS + NKEYS * NSUFFIX];
    char names[NSUFFIX][NKEYS][32];
    int nbase, nsuffix, n;
} opt_table;

static void suffix_text(int s, char *buf, size_t size) {
    if (s == 0) buf[0] = 0;
    else if (s == 1) snprintf(buf, size, "-low");
    else snprintf(buf, size, "-cond%d", s - 2);
}

/* base: the command's own options; per_net: also the -low / -cond<j> forms. */
static void table_init(opt_table *t, const cli_opt *base, int nbase, int per_net) {
    memset(t, 0, sizeof *t);
    memcpy(t->opt, base, (size_t)nbase * sizeof *base);
    t->nbase = nbase;
    t->nsuffix = per_net ? NSUFFIX : 1;
    t->n = nbase;
    for (int s = 0; s < t->nsuffix; s++) {
        char suf[16];
        suffix_text(s, suf, sizeof suf);
        for (int k = 0; k < NKEYS; k++) {
            snprintf(t->names[s][k], sizeof t->names[s][k], "%s%s", key_names[k], suf);
            cli_opt o = {t->names[s][k], k < K_FIXED, NULL, 0};
            t->opt[t->n++] = o;
        }
    }
}

static cli_opt *sopt(opt_table *t, int s, int k) { return &t->opt[t->nbase + s * NKEYS + k]; }

/* The first option given with suffix s, or NULL. */
static const cli_opt *suffix_used(opt_table *t, int s) {
    for (int k = 0; k < NKEYS; k++)
        if (sopt(t, s, k)->set) return sopt(t, s, k);
    return NULL;
}

/* Apply the options of suffix s on top of p, checking every value. */
static int apply_params(const char *cmd, opt_table *t, int s, wcm_sampler_params *p) {
    cli_opt *o;
    double v;
    int iv;
#define GET_D(key, cond, what, field)                                                                   \
    o = sopt(t, s, key);                                                                                \
    if (o->set) {                                                                                       \
        if (cli_get_double(cmd, o, &v)) return 1;                                                       \
        if (!(cond) || !isfinite(v)) return cli_error(cmd, "--%s must be %s, got %s", o->name, what, o->value); \
        p->field = v;                                                                                   \
    }
    GET_D(K_H0, v > 0 && v <= 1, "in (0, 1]", h0)
    GET_D(K_SIGMA0, v > 0, "positive", sigma_0)
    GET_D(K_SIGMAL, v > 0, "positive", sigma_L)
    GET_D(K_BETA, v >= 0 && v <= 1, "in [0, 1]", beta)
    GET_D(K_DIVERGE, v > 0, "positive", divergence_threshold)
    GET_D(K_STD_JUMP, v == 0 || v > 1, "0 (off) or above 1", std_jump)
#undef GET_D
    o = sopt(t, s, K_MAX_ITERS);
    if (o->set) {
        if (cli_get_int(cmd, o, &iv)) return 1;
        if (iv < 1) return cli_error(cmd, "--%s must be at least 1, got %s", o->name, o->value);
        p->max_iters = iv;
    }
    o = sopt(t, s, K_PLATEAU);
    if (o->set) {
        if (cli_get_int(cmd, o, &iv)) return 1;
        if (iv < 0 || iv > 1000000) return cli_error(cmd, "--%s must be in 0..1000000, got %s", o->name, o->value);
        p->plateau_iters = iv;
    }
    if (sopt(t, s, K_FIXED)->set && sopt(t, s, K_ASCENDING)->set)
        return cli_error(cmd, "--%s and --%s contradict each other", sopt(t, s, K_FIXED)->name,
                         sopt(t, s, K_ASCENDING)->name);
    if (sopt(t, s, K_FIXED)->set) p->fixed_step = 1;
    if (sopt(t, s, K_ASCENDING)->set) p->fixed_step = 0;
    return 0;
}

/* Fill the synthesis options from the table: global first, then per net.
 * uses_low: the command samples the unconditional net; levels: conditional nets. */
static int apply_synth_params(const char *cmd, opt_table *t, int uses_low, int levels, wcm_synth_options *so) {
    if (apply_params(cmd, t, 0, &so->low)) return 1;
    for (int j = 0; j < WCM_MAX_LEVELS; j++)
        if (apply_params(cmd, t, 0, &so->cond[j])) return 1;
    if (suffix_used(t, 1)) {
        if (!uses_low) cli_progress("wcm %s: note: the -low options are ignored (the low-pass is given)\n", cmd);
        else if (apply_params(cmd, t, 1, &so->low)) return 1;
    }
    for (int j = 0; j < WCM_MAX_LEVELS; j++) {
        const cli_opt *used = suffix_used(t, 2 + j);
        if (!used) continue;
        if (j >= levels)
            return levels ? cli_error(cmd, "--%s: the model has conditional nets cond0..cond%d only", used->name, levels - 1)
                          : cli_error(cmd, "--%s: the model has no conditional nets", used->name);
        if (apply_params(cmd, t, 2 + j, &so->cond[j])) return 1;
    }
    return 0;
}

#define SAMPLER_HELP                                                                              \
    "Algorithm-1 options (docs/model.md §6; defaults are the paper's):\n"                       \
    "  --h0 X            first step size (0.01), in (0, 1]\n"                                     \
    "  --sigma0 X        initial noise std sigma_0 (1)\n"                                         \
    "  --sigmaL X        target sigma_L (0.01)\n"                                                 \
    "  --beta X          noise injection (0.1; 1 = none), in [0, 1]\n"                            \
    "  --fixed-step      h_t = h0 (default: ascending h_t = h0 t / (1 + h0 (t-1)));\n"            \
    "  --ascending-step  ... or back to ascending\n"                                              \
    "  --max-iters N     iteration cap per net (2000); a net that reaches it stops\n"             \
    "                    with a warning, recorded in the log\n"                                   \
    "  --diverge X       divergence threshold on sigma_t (1.5)\n"                                 \
    "  --std-jump X      a sample whose std(y) grows past X times its smallest value\n"          \
    "                    so far is blowing up (2; 0 = off)\n"                                    \
    "  --plateau K       also stop a sample whose SNR came within 3 dB of the\n"               \
    "                    target but has not improved for K iterations (0 = off,\n"            \
    "                    the paper's rule; 20 keeps samples that would never quite\n"          \
    "                    reach 40 dB from drifting away)\n"
#define HEALTH_HELP                                                                               \
    "Health checks: a sample is marked diverged when sigma_t passes --diverge, a\n"              \
    "value is not finite, std(y) jumps (--std-jump), or its image leaves --range.\n"            \
    "  --range LO,HI     allowed image values at every scale (-0.5,1.5; equal = off)\n"          \
    "  --retry K         draw a diverged sample again, up to K times, with fresh\n"             \
    "                    noise (0); the log records the redraws\n"                              \
    "A sample still diverged after its retries is kept as it is (the log names\n"               \
    "it, finer nets skip it); the other samples go on. Exit status: 0 when every\n"             \
    "sample converged or stopped at the cap (a warning), 3 when some diverged\n"               \
    "(every image and the log are still written), 1 on any other error.\n"
#define PER_NET_HELP                                                                              \
    "Each also exists per net: append -low (the low-pass net, or the net of a flat\n"             \
    "model) or -cond<j> (conditional net j, 0 = finest), e.g. --beta 0.1 --beta-low 0.01\n"      \
    "--sigmaL-low 0.2 --fixed-step-low --max-iters-cond0 500. Per-net values win.\n"

/* Progress and warnings --------------------------------------------------------- */

typedef struct {
    const char *cmd;
    double last_print;
    int last_t;
} progress_state;

static void describe_net(const char *name, int scale, char *buf, size_t size) {
    if (scale >= 0) snprintf(buf, size, "scale %d (%s)", scale, name);
    else if (!strcmp(name, "low")) snprintf(buf, size, "low-pass (low)");
    else snprintf(buf, size, "image (%s)", name);
}

static void on_progress(void *user, const wcm_synth_progress_info *pi) {
    progress_state *ps = user;
    char net[48];
    describe_net(pi->net, pi->scale, net, sizeof net);
    if (pi->iteration) {
        const wcm_progress_info *it = pi->iteration;
        double now = wcm_seconds();
        int due = it->t == 1 || now - ps->last_print >= 2.0 || (it->t - ps->last_t >= 50 && now - ps->last_print >= 0.5);
        if (!due) return;
        ps->last_print = now;
        ps->last_t = it->t;
        cli_progress("%s: %s it %d/%d sigma %.4g active %d/%d [%.1f s]\n", ps->cmd, net, it->t, it->max_iters,
                     it->max_sigma_active, it->active, it->batch, it->seconds);
        return;
    }
    const wcm_synth_stage *st = pi->finished;
    int conv = 0, plateau = 0, imin = 1 << 30, imax = 0;
    double smin = INFINITY, smax = 0;
    for (int k = 0; k < st->batch; k++) {
        const wcm_sample_result *r = &st->results[k];
        conv += r->status == WCM_SAMPLE_CONVERGED || r->status == WCM_SAMPLE_PLATEAU;
        plateau += r->status == WCM_SAMPLE_PLATEAU;
        imin = r->iterations < imin ? r->iterations : imin;
        imax = r->iterations > imax ? r->iterations : imax;
        smin = fmin(smin, r->final_sigma);
        smax = fmax(smax, r->final_sigma);
    }
    cli_progress("%s: %s done in %.1f s (%.3g s/iteration): iterations %d..%d, final sigma %.4g..%.4g, "
                 "%d converged%s, %d at the cap, %d diverged\n",
                 ps->cmd, net, st->seconds, st->max_iterations ? st->seconds / st->max_iterations : 0.0, imin, imax,
                 smin, smax, conv, plateau ? " (some at a plateau)" : "", st->cap_samples, st->diverged_samples);
    if (st->cap_samples) {
        char w[512];
        wcm_synth_cap_warning(st, w, sizeof w);
        fprintf(stderr, "wcm %s: warning: %s; raise --max-iters or check the network\n", ps->cmd, w);
    }
    if (st->diverged_samples || st->retried_samples) {
        char w[1024];
        wcm_synth_divergence_summary(st, w, sizeof w);
        fprintf(stderr, "wcm %s: %s%s\n", ps->cmd, st->diverged_samples ? "warning: " : "", w);
    }
    ps->last_print = 0;
    ps->last_t = 0;
}

/* JSON run log ------------------------------------------------------------------ */

static int write_json(const char *path, wcm_json_buf *b, wcm_error *err) {
    if (b->failed || !b->data) return wcm_fail(err, WCM_ERR_NOMEM, "%s: out of memory for the log", path);
    return wcm_write_file_atomic(path, b->data, b->len, err);
}

/* Small helpers --------------------------------------------------------------------- */

/* "40" or "40x60" (height x width), each side in 1..16384. */
static int get_size(const char *cmd, cli_opt *o, int *h, int *w) {
    if (!o->set) return 0;
    char part[2][32] = {"", ""};
    size_t n = strcspn(o->value, "xX");
    int64_t a, b;
    int ok = n < sizeof part[0] && strlen(o->value + n) < sizeof part[1] + 1;
    if (ok) {
        memcpy(part[0], o->value, n);
        snprintf(part[1], sizeof part[1], "%s", o->value[n] ? o->value + n + 1 : part[0]);
    }
    if (!ok || wcm_parse_int64(part[0], 1, 16384, &a) || wcm_parse_int64(part[1], 1, 16384, &b))
        return cli_error(cmd, "--%s expects N or HxW (positive, at most 16384), got '%s'", o->name, o->value);
    *h = (int)a, *w = (int)b;
    return 0;
}

/* The output holds finite numbers (inputs far outside [0, 1] can overflow
 * the networks' float arithmetic). */
static int check_finite_output(const wcm_tensor *t, double max_dev, wcm_error *err) {
    if (t && wcm_tensor_all_finite(t) && isfinite(max_dev)) return WCM_OK;
    return wcm_fail(err, WCM_ERR_NUMERIC, "the output is not finite (input values too large for the networks?); nothing written");
}

/* out path without its extension (".png" / ".npy"); error if neither. */
static int output_stem(const char *cmd, const char *path, char *stem, size_t size) {
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash) || (strcasecmp(dot, ".png") && strcasecmp(dot, ".npy")))
        return cli_error(cmd, "output %s must end in .png or .npy", path);
    snprintf(stem, size, "%.*s", (int)(dot - path), path);
    return 0;
}

/* Fail early (before a long run) when the folder of `path` does not exist. */
static int check_parent_dir(const char *cmd, const char *path) {
    char dir[4096];
    const char *slash = strrchr(path, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) + 1 : 1, slash ? path : ".");
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return cli_error(cmd, "%s: folder %s does not exist", path, dir);
    return 0;
}

/* Write image `index`; with npy_twin a .png also gets a float32 .npy next to it. */
static int write_image(const char *path, const wcm_tensor *t, int index, int npy_twin, wcm_error *err) {
    int rc = wcm_image_write(path, t, index, 8, err);
    size_t n = strlen(path);
    if (!rc && npy_twin && n > 4 && !strcasecmp(path + n - 4, ".png")) {
        char twin[4096];
        snprintf(twin, sizeof twin, "%.*s.npy", (int)(n - 4), path);
        rc = wcm_image_write(twin, t, index, 8, err);
    }
    return rc;
}

static int make_dir(const char *dir, wcm_error *err) {
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return wcm_fail(err, WCM_ERR_IO, "%s: cannot create directory: %s", dir, strerror(errno));
    return WCM_OK;
}

/* k copies of a single image. */
static int replicate(const wcm_tensor *one, int k, wcm_tensor *out, wcm_error *err) {
    int rc = wcm_tensor_alloc(out, k, one->h, one->w, one->c, err);
    const size_t per = (size_t)one->h * one->w * one->c;
    for (int i = 0; !rc && i < k; i++) memcpy(out->data + i * per, one->data, per * sizeof(float));
    return rc;
}

static int batch_mean(const wcm_tensor *b, wcm_tensor *mean, wcm_error *err) {
    int rc = wcm_tensor_alloc(mean, 1, b->h, b->w, b->c, err);
    const size_t per = (size_t)b->h * b->w * b->c;
    for (size_t i = 0; !rc && i < per; i++) {
        double s = 0;
        for (int k = 0; k < b->n; k++) s += b->data[k * per + i];
        mean->data[i] = (float)(s / b->n);
    }
    return rc;
}

/* Centre-crop to a multiple of `f` (saying so). */
static int crop_to_multiple(const char *cmd, wcm_tensor *img, int f, wcm_error *err) {
    if (img->h % f == 0 && img->w % f == 0) return WCM_OK;
    int ch = img->h / f * f, cw = img->w / f * f;
    if (ch == 0 || cw == 0) return wcm_fail(err, WCM_ERR_SHAPE, "image %dx%d is smaller than the factor %d", img->h, img->w, f);
    cli_progress("wcm %s: centre-cropping %dx%d to %dx%d (divisible by %d)\n", cmd, img->h, img->w, ch, cw, f);
    wcm_tensor c;
    int rc = wcm_image_center_crop(img, ch, cw, &c, err);
    if (rc) return rc;
    wcm_tensor_free(img);
    *img = c;
    return WCM_OK;
}

/* Writes OUT (sample 1); with K > 1 also STEM_1..K and STEM_mean. */
static int write_samples(const char *out, const char *stem, const wcm_tensor *s, int npy, wcm_error *err) {
    int rc = write_image(out, s, 0, npy, err);
    const char *ext = out + strlen(stem);
    char path[4096];
    for (int k = 0; !rc && s->n > 1 && k < s->n; k++) {
        snprintf(path, sizeof path, "%s_%d%s", stem, k + 1, ext);
        rc = write_image(path, s, k, npy, err);
    }
    if (!rc && s->n > 1) {
        wcm_tensor mean = {0};
        rc = batch_mean(s, &mean, err);
        snprintf(path, sizeof path, "%s_mean%s", stem, ext);
        if (!rc) rc = write_image(path, &mean, 0, npy, err);
        wcm_tensor_free(&mean);
    }
    return rc;
}

/* PSNRs of sample 1, the mean of the samples and the mean over samples, vs ref. */
typedef struct {
    double first, of_mean, mean_of, baseline;
    int have_baseline;
} psnr_report;

static int compute_psnrs(const wcm_tensor *ref, const wcm_tensor *s, psnr_report *p, wcm_error *err) {
    const size_t n = (size_t)ref->h * ref->w;
    wcm_tensor mean = {0};
    int rc = batch_mean(s, &mean, err);
    if (rc) return rc;
    p->first = wcm_psnr_clamped(ref->data, s->data, n);
    p->of_mean = wcm_psnr_clamped(ref->data, mean.data, n);
    p->mean_of = 0;
    for (int k = 0; k < s->n; k++) p->mean_of += wcm_psnr_clamped(ref->data, s->data + k * n, n) / s->n;
    wcm_tensor_free(&mean);
    return WCM_OK;
}

static void print_psnrs(const char *cmd, const psnr_report *p, int k, const char *baseline_name) {
    printf("%s: PSNR vs the reference image: sample 1 %.2f dB", cmd, p->first);
    if (k > 1) printf(", mean of %d samples %.2f dB (per-sample average %.2f dB)", k, p->of_mean, p->mean_of);
    if (p->have_baseline) printf(", %s %.2f dB", baseline_name, p->baseline);
    printf("\n");
}

static void json_psnrs(wcm_json_buf *b, const psnr_report *p, const char *baseline_key) {
    wcm_json_buf_puts(b, " \"psnr\": {\"sample_1\": ");
    wcm_json_buf_number(b, p->first);
    wcm_json_buf_puts(b, ", \"mean_image\": ");
    wcm_json_buf_number(b, p->of_mean);
    wcm_json_buf_puts(b, ", \"per_sample_average\": ");
    wcm_json_buf_number(b, p->mean_of);
    if (p->have_baseline) {
        wcm_json_buf_printf(b, ", \"%s\": ", baseline_key);
        wcm_json_buf_number(b, p->baseline);
    }
    wcm_json_buf_puts(b, "},\n");
}


/* Opens the log object with the members every command shares. */
static void json_head(wcm_json_buf *b, const char *cmd, const char *model, int samples, uint64_t seed) {
    wcm_json_buf_puts(b, "{\n \"command\": ");
    wcm_json_buf_string(b, cmd);
    wcm_json_buf_puts(b, ",\n \"model\": ");
    wcm_json_buf_string(b, model);
    wcm_json_buf_printf(b, ",\n \"samples\": %d,\n \"seed\": %llu,\n", samples, (unsigned long long)seed);
}

/* Finish and write the log; returns the write status (reported as a warning
 * when the run itself failed, so the run's error is the one printed). */
static int finish_log(const char *cmd, const char *path, wcm_json_buf *b, const wcm_synth_result *r, int run_failed) {
    char *members = wcm_synth_log_json(r);
    wcm_json_buf_puts(b, members ? members : "");
    wcm_json_buf_puts(b, "\n}\n");
    if (!members) b->failed = 1;
    free(members);
    wcm_error err;
    int rc = write_json(path, b, &err);
    if (rc && run_failed) fprintf(stderr, "wcm %s: warning: %s\n", cmd, err.msg);
    else if (rc) cli_lib_error(cmd, &err);
    return rc;
}

/* --range LO,HI and --retry K into the synthesis options. */
static int apply_health(const char *cmd, cli_opt *range, cli_opt *retry, wcm_synth_options *so) {
    if (range->set) {
        char *end;
        double lo = strtod(range->value, &end), hi = NAN;
        if (*end == ',') hi = strtod(end + 1, &end);
        if (*end || !isfinite(lo) || !isfinite(hi) || lo > hi)
            return cli_error(cmd, "--range expects LO,HI with LO <= HI, got '%s'", range->value);
        so->range_min = lo, so->range_max = hi;
    }
    if (cli_get_int(cmd, retry, &so->retries)) return 1;
    if (so->retries < 0 || so->retries > 1000) return cli_error(cmd, "--retry must be in 0..1000, got %d", so->retries);
    return 0;
}

/* The run's end when samples diverged: every output was written; say so and
 * exit with status 3. */
static int diverged_exit(const char *cmd, const char *msg, const char *log_path, int log_written) {
    fprintf(stderr, "wcm %s: error: %s (images written%s%s)\n", cmd, msg, log_written ? "; see " : "",
            log_written ? log_path : "");
    return 3;
}

static int run_error(const char *cmd, int rc, const wcm_error *err, const char *log_path, int log_written) {
    if (rc == WCM_ERR_NUMERIC && log_written)
        return cli_error(cmd, "%s (see %s)", err->msg, log_path);
    return cli_lib_error(cmd, err);
}

/* wcm sample ------------------------------------------------------------------ */

static int run_sample(int argc, char **argv) {
    const char *cmd = "sample";
    enum { O_N, O_LOW_SIZE, O_SIZE, O_SEED, O_OUT, O_NO_RESCALE, O_NPY, O_RANGE, O_RETRY, NBASE };
    const cli_opt base[NBASE] = {{"n", 1, 0, 0},   {"low-size", 1, 0, 0},   {"size", 1, 0, 0}, {"seed", 1, 0, 0},
                                 {"out", 1, 0, 0}, {"no-rescale", 0, 0, 0}, {"npy", 0, 0, 0}, {"range", 1, 0, 0},
                                 {"retry", 1, 0, 0}};
    opt_table t;
    table_init(&t, base, NBASE, 1);
    const char *pos[1];
    int npos;
    if (cli_parse(cmd, argc, argv, t.opt, t.n, pos, &npos, 1)) return 1;
    if (npos != 1 || !t.opt[O_OUT].set)
        return cli_error(cmd, "usage: wcm sample MODEL --out DIR [--n 4] [--low-size 40] [--seed S] ... (see --help)");
    int n = 4, lh = 40, lw = 40, sh = 0, sw = 0;
    uint64_t seed = 0;
    if (cli_get_int(cmd, &t.opt[O_N], &n) || get_size(cmd, &t.opt[O_LOW_SIZE], &lh, &lw) ||
        get_size(cmd, &t.opt[O_SIZE], &sh, &sw) || cli_get_seed(cmd, &t.opt[O_SEED], &seed))
        return 1;
    if (n < 1 || n > 4096) return cli_error(cmd, "--n must be in 1..4096, got %d", n);
    if (t.opt[O_LOW_SIZE].set && t.opt[O_SIZE].set) return cli_error(cmd, "give --low-size or --size, not both");
    wcm_error err;
    wcm_model m;
    if (wcm_model_load(pos[0], &m, &err)) return cli_lib_error(cmd, &err);
    const int levels = m.multiscale ? m.levels : 0, f = 1 << levels;
    wcm_synth_options so;
    wcm_synth_options_default(&so);
    so.seed = seed;
    so.rescale_low = !t.opt[O_NO_RESCALE].set;
    int rc = 0;
    if (!m.multiscale && wcm_net_get_kind(m.net) == WCM_NET_CONDITIONAL)
        rc = cli_error(cmd, "%s is a lone conditional network: it cannot synthesise from nothing (try wcm superres)", pos[0]);
    else if (t.opt[O_SIZE].set && (sh % f || sw % f))
        rc = cli_error(cmd, "--size %dx%d is not divisible by 2^J = %d", sh, sw, f);
    else if (apply_synth_params(cmd, &t, 1, levels, &so) || apply_health(cmd, &t.opt[O_RANGE], &t.opt[O_RETRY], &so))
        rc = 1;
    if (rc) {
        wcm_model_free(&m);
        return rc;
    }
    if (t.opt[O_SIZE].set) lh = sh / f, lw = sw / f;
    wcm_error err0;
    if (wcm_check_pixels(n, (int64_t)lh * f, (int64_t)lw * f, "sample", &err0)) {
        wcm_model_free(&m);
        return cli_lib_error(cmd, &err0);
    }
    /* Under mpirun each rank draws a contiguous share of the samples (sample k
     * depends only on the seed and k), writes its own files, and rank 0 the
     * grid of all of them and log.json (its own samples'). */
    wcm_comm *comm;
    if (wcm_comm_world(&comm, &err)) {
        wcm_model_free(&m);
        return cli_lib_error(cmd, &err);
    }
    const int rank = wcm_comm_rank(comm), ranks = wcm_comm_size(comm);
    int first = 0, count = n;
    wcm_comm_share(n, rank, ranks, &first, &count);
    so.sample_offset = first;
    if (rank) cli_quiet = 1;
    progress_state ps = {cmd, 0, 0};
    so.progress = on_progress;
    so.progress_user = &ps;
    const char *dir = t.opt[O_OUT].value;
    char path[4096], log_path[4096];
    snprintf(log_path, sizeof log_path, "%s/log.json", dir);
    wcm_synth_result r;
    memset(&r, 0, sizeof r);
    rc = make_dir(dir, &err);
    if (!rc) {
        cli_progress("sample: %d sample%s of %dx%d (coarsest %dx%d, J = %d), seed %llu, %d thread%s\n", n,
                     n == 1 ? "" : "s", lh * f, lw * f, lh, lw, levels, (unsigned long long)seed, wcm_get_threads(),
                     wcm_get_threads() == 1 ? "" : "s");
        if (count > 0) rc = wcm_synth_sample(&m, count, lh, lw, &so, &r, &err);
    }
    char diverged[sizeof err.msg] = "";
    if (rc == WCM_ERR_NUMERIC && r.complete) {
        snprintf(diverged, sizeof diverged, "%s", err.msg);
        rc = 0;
    }
    int log_written = 0;
    if (r.nstages > 0 && rank == 0) {
        wcm_json_buf b;
        wcm_json_buf_init(&b);
        json_head(&b, cmd, pos[0], count, seed);
        wcm_json_buf_printf(&b, " \"levels\": %d,\n \"low_size\": [%d, %d],\n \"image_size\": [%d, %d],\n \"rescale_low\": ",
                            levels, lh, lw, lh * f, lw * f);
        if (so.rescale_low) wcm_json_buf_number(&b, so.rescale_max);
        else wcm_json_buf_puts(&b, "null");
        wcm_json_buf_puts(&b, ",\n");
        int lrc = finish_log(cmd, log_path, &b, &r, rc != 0);
        wcm_json_buf_free(&b);
        log_written = !lrc;
        if (lrc && !rc) rc = -1000; /* already reported */
    }
    const wcm_tensor *final = wcm_synth_final(&r);
    for (int k = 0; !rc && final && k < count; k++)
        for (int s = 0; !rc && s < r.nscales; s++) {
            if (s == r.nscales - 1) snprintf(path, sizeof path, "%s/sample_%03d.png", dir, first + k);
            else if (s == 0) snprintf(path, sizeof path, "%s/sample_%03d_low.png", dir, first + k);
            else snprintf(path, sizeof path, "%s/sample_%03d_scale%d.png", dir, first + k, levels - s);
            rc = write_image(path, &r.scale[s], k, t.opt[O_NPY].set, &err);
        }
    wcm_tensor all = {0};
    if (rc && ranks > 1) { /* the other ranks wait in the gather below */
        run_error(cmd, rc, &err, log_path, log_written);
        wcm_comm_abort(comm, 1);
    }
    if (ranks > 1) { /* every rank's samples into one batch: a sum over ranks of zeros and one's own share */
        const size_t per = (size_t)lh * f * lw * f;
        rc = wcm_tensor_alloc(&all, n, lh * f, lw * f, 1, &err);
        if (!rc) memset(all.data, 0, per * n * sizeof(float));
        if (!rc && final) memcpy(all.data + per * first, final->data, per * count * sizeof(float));
        if (!rc) rc = wcm_comm_allreduce_float(comm, all.data, per * n, &err);
        final = rc || rank ? NULL : &all;
    }
    if (!rc && final) {
        snprintf(path, sizeof path, "%s/grid.png", dir);
        rc = wcm_image_write_grid(path, final, (int)ceil(sqrt((double)n)), 2, &err);
    }
    wcm_tensor_free(&all);
    if (!rc && rank == 0)
        printf("sample: %d sample%s of %dx%d in %.1f s -> %s/{sample_*.png, grid.png, log.json}%s\n", n,
               n == 1 ? "" : "s", lh * f, lw * f, r.seconds, dir,
               r.diverged ? " (with diverged samples)" : r.cap_samples ? " (with cap warnings)" : "");
    wcm_synth_result_free(&r);
    wcm_model_free(&m);
    if (rc == -1000) return 1;
    if (rc) return run_error(cmd, rc, &err, log_path, log_written);
    return diverged[0] ? diverged_exit(cmd, diverged, log_path, log_written) : 0;
}

const cli_command cmd_sample = {
    "sample", "draw images from a model (Algorithm 2 through all scales)",
    "usage: wcm sample MODEL --out DIR [--n 4] [--low-size 40 | --size S] [--seed S]\n"
    "                  [--no-rescale] [--npy] [Algorithm-1 options]\n\n"
    "Multi-scale model (docs/model.md §7): samples the coarsest low-pass with\n"
    "the low-pass net (Algorithm 1), min-max rescales each to [0, 0.8] as the\n"
    "reference does, then for j = J-1 ... 0 samples the details with conditional\n"
    "net j given the current low-pass and reconstructs (inverse Haar). A flat\n"
    "model samples one scale (the image size is --low-size or --size). The n\n"
    "samples run as one batch; sample k depends only on the seed and k (not on\n"
    "n or --threads).\n\n"
    "  --out DIR       output folder (created): sample_K.png (final), per scale\n"
    "                  sample_K_low.png and sample_K_scale<j>.png (after net j;\n"
    "                  scale 0 is the final image), grid.png, log.json\n"
    "  --n N           number of samples (4)\n"
    "  --low-size S    coarsest low-pass size, S or HxW (40); final = S * 2^J\n"
    "  --size S        final image size instead (divisible by 2^J)\n"
    "  --seed S        random seed (0); each net has its own random stream\n"
    "  --no-rescale    keep the sampled low-pass as it is (no [0, 0.8] rescale)\n"
    "  --npy           also write float32 .npy next to every PNG\n"
    "  --memory MB     working memory of one network pass (default " CLI_DEFAULT_MEMORY_TEXT "); larger\n"
    "                  scales run in exact tiles (the same bits; docs/large-images.md)\n"
    "A folder IN super-resolves every image in it into OUT_DIR/NAME.png (one\n"
    "sample each), with a progress line and ETA, summary.csv and log.json.\n\n" SAMPLER_HELP PER_NET_HELP "\n" HEALTH_HELP
    "\nlog.json: per net (low, cond<j>): iterations, final sigma, final std, status\n"
    "(converged / cap / diverged / skipped), divergence reason and redraws per\n"
    "sample, seconds per sample and per iteration, and the parameters used;\n"
    "warnings; the run's status. Progress goes to stderr (--quiet silences it).\n",
    run_sample};

/* wcm superres ------------------------------------------------------------------ */

static int run_superres(int argc, char **argv) {
    const char *cmd = "superres";
    enum { O_SAMPLES, O_SEED, O_FROM_HR, O_LOG, O_NPY, O_RANGE, O_RETRY, O_MEMORY, NBASE };
    const cli_opt base[NBASE] = {{"samples", 1, 0, 0}, {"seed", 1, 0, 0}, {"from-highres", 0, 0, 0},
                                 {"log", 1, 0, 0},     {"npy", 0, 0, 0},  {"range", 1, 0, 0},
                                 {"retry", 1, 0, 0},   {"memory", 1, 0, 0}};
    opt_table t;
    table_init(&t, base, NBASE, 1);
    const char *pos[3];
    int npos, K = 1;
    uint64_t seed = 0;
    char stem[4096], log_path[4096], path[4096];
    if (cli_parse(cmd, argc, argv, t.opt, t.n, pos, &npos, 3)) return 1;
    if (npos != 3) return cli_error(cmd, "usage: wcm superres MODEL IN OUT [--from-highres] [--samples K] [--seed S] (see --help)");
    double memory_mb = CLI_DEFAULT_MEMORY_MB;
    const int folder = cli_is_dir(pos[1]);
    if (cli_get_double_in(cmd, &t.opt[O_MEMORY], 16, 1 << 30, &memory_mb)) return 1;
    if (folder && (t.opt[O_SAMPLES].set || t.opt[O_LOG].set || t.opt[O_NPY].set))
        return cli_error(cmd, "with a folder IN, --samples, --log and --npy do not apply (one sample per image, OUT_DIR/log.json)");
    if (cli_get_int(cmd, &t.opt[O_SAMPLES], &K) || cli_get_seed(cmd, &t.opt[O_SEED], &seed) ||
        (!folder && (output_stem(cmd, pos[2], stem, sizeof stem) || check_parent_dir(cmd, pos[2]))) ||
        (t.opt[O_LOG].set && check_parent_dir(cmd, t.opt[O_LOG].value)))
        return 1;
    if (K < 1 || K > 4096) return cli_error(cmd, "--samples must be in 1..4096, got %d", K);
    snprintf(log_path, sizeof log_path, "%s", t.opt[O_LOG].set ? t.opt[O_LOG].value : "");
    if (!t.opt[O_LOG].set) snprintf(log_path, sizeof log_path, "%s_log.json", stem);
    wcm_error err;
    wcm_model m;
    if (wcm_model_load(pos[0], &m, &err)) return cli_lib_error(cmd, &err);
    int levels = m.multiscale ? m.levels : (wcm_net_get_kind(m.net) == WCM_NET_CONDITIONAL ? 1 : 0);
    if (!levels) {
        cli_error(cmd, "%s is a single %s network: super-resolution needs a multi-scale model "
                       "(for a flat denoiser use wcm inverse --task superres)", pos[0], wcm_net_kind_name(wcm_net_get_kind(m.net)));
        wcm_model_free(&m);
        return 1;
    }
    const int f = 1 << levels;
    wcm_synth_options so;
    wcm_synth_options_default(&so);
    so.seed = seed;
    if (apply_synth_params(cmd, &t, 0, levels, &so) || apply_health(cmd, &t.opt[O_RANGE], &t.opt[O_RETRY], &so)) {
        wcm_model_free(&m);
        return 1;
    }
    so.tiling.memory = (size_t)(memory_mb * (1 << 20));
    if (folder) {
        const int frc = cli_superres_folder(cmd, pos[0], &m, levels, &so, t.opt[O_FROM_HR].set, pos[1], pos[2]);
        wcm_model_free(&m);
        return frc;
    }
    progress_state ps = {cmd, 0, 0};
    so.progress = on_progress;
    so.progress_user = &ps;
    wcm_tensor img = {0}, low = {0}, batch = {0}, blocky = {0}, check = {0}, padded = {0}, cropped = {0};
    int pad_bottom = 0, pad_right = 0;
    wcm_synth_result r;
    memset(&r, 0, sizeof r);
    const int from_hr = t.opt[O_FROM_HR].set;
    int rc = wcm_image_read(pos[1], &img, &err);
    if (!rc && !wcm_tensor_all_finite(&img)) rc = wcm_fail(&err, WCM_ERR_NUMERIC, "%s contains NaN or Inf", pos[1]);
    if (!rc && from_hr) {
        /* Any size: padded by symmetric reflection to a multiple of 2^J, the outputs cropped back. */
        pad_bottom = wcm_padded_size(img.h, f) - img.h, pad_right = wcm_padded_size(img.w, f) - img.w;
        if (pad_bottom || pad_right) {
            cli_progress("wcm %s: padding %dx%d by %d right and %d bottom (symmetric) to a multiple of 2^J = %d; "
                         "the outputs are cropped back\n", cmd, img.w, img.h, pad_right, pad_bottom, f);
            rc = wcm_pad_symmetric(&img, img.h + pad_bottom, img.w + pad_right, &padded, &err);
        }
        if (!rc) rc = wcm_synth_lowpass(padded.data ? &padded : &img, levels, &low, &err);
    } else if (!rc) {
        low = img;
        memset(&img, 0, sizeof img);
    }
    /* Under mpirun each rank draws a contiguous share of the K samples (sample k
     * depends only on the seed and k); rank 0 gathers them and writes everything. */
    wcm_comm *comm = wcm_comm_serial();
    if (!rc) rc = wcm_comm_world(&comm, &err);
    const int rank = wcm_comm_rank(comm), ranks = wcm_comm_size(comm);
    int first = 0, count = K;
    wcm_comm_share(K, rank, ranks, &first, &count);
    so.sample_offset = first;
    if (rank) cli_quiet = 1;
    if (!rc) rc = wcm_check_pixels(K, (int64_t)low.h * f, (int64_t)low.w * f, "superres output", &err);
    if (!rc && count) rc = replicate(&low, count, &batch, &err);
    if (!rc) {
        cli_progress("superres: %dx%d -> %dx%d (x%d, J = %d), %d sample%s, seed %llu, %d thread%s\n", low.h, low.w,
                     low.h * f, low.w * f, f, levels, K, K == 1 ? "" : "s", (unsigned long long)seed,
                     wcm_get_threads(), wcm_get_threads() == 1 ? "" : "s");
        if (count) rc = wcm_synth_superres(&m, &batch, &so, &r, &err);
    }
    char diverged[sizeof err.msg] = "";
    if (rc == WCM_ERR_NUMERIC && r.complete) {
        snprintf(diverged, sizeof diverged, "%s", err.msg);
        rc = 0;
    }
    const wcm_tensor *final = wcm_synth_final(&r);
    wcm_tensor all = {0};
    if (rc && ranks > 1) { /* the other ranks wait in the gather below */
        run_error(cmd, rc, &err, log_path, 0);
        wcm_comm_abort(comm, 1);
    }
    if (ranks > 1) { /* every rank's samples into one batch: a sum over ranks of zeros and one's own share */
        const size_t per = (size_t)low.h * f * low.w * f;
        rc = wcm_tensor_alloc(&all, K, low.h * f, low.w * f, 1, &err);
        if (!rc) memset(all.data, 0, per * K * sizeof(float));
        if (!rc && final) memcpy(all.data + per * first, final->data, per * count * sizeof(float));
        if (!rc) rc = wcm_comm_allreduce_float(comm, all.data, per * K, &err);
        final = rc || rank ? NULL : &all;
        if (!rc && final) wcm_tensor_free(&batch), rc = replicate(&low, K, &batch, &err); /* the check of all K */
    }
    /* Consistency: the coarsest Haar low-pass of every output equals the input. */
    double max_dev = 0;
    if (!rc && final) rc = wcm_synth_lowpass(final, levels, &check, &err);
    for (size_t i = 0; !rc && final && i < wcm_tensor_count(&check); i++)
        max_dev = fmax(max_dev, fabs((double)check.data[i] - batch.data[i]));
    if (!rc && final) rc = check_finite_output(final, max_dev, &err);
    if (!rc && final && (pad_bottom || pad_right)) {
        rc = wcm_image_crop(final, 0, 0, img.h, img.w, &cropped, &err);
        final = &cropped;
    }
    psnr_report pr = {0};
    if (!rc && final && from_hr) {
        rc = wcm_synth_lowpass_only(&low, levels, &blocky, &err);
        if (!rc && (pad_bottom || pad_right)) {
            wcm_tensor c;
            rc = wcm_image_crop(&blocky, 0, 0, img.h, img.w, &c, &err);
            if (!rc) wcm_tensor_free(&blocky), blocky = c;
        }
        if (!rc) rc = compute_psnrs(&img, final, &pr, &err);
        if (!rc) {
            pr.have_baseline = 1;
            pr.baseline = wcm_psnr_clamped(img.data, blocky.data, wcm_tensor_count(&img));
        }
    }
    int log_written = 0;
    if (r.nstages > 0 && rank == 0) {
        wcm_json_buf b;
        wcm_json_buf_init(&b);
        json_head(&b, cmd, pos[0], K, seed);
        wcm_json_buf_puts(&b, " \"input\": ");
        wcm_json_buf_string(&b, pos[1]);
        wcm_json_buf_printf(&b, ",\n \"from_highres\": %s,\n \"factor\": %d,\n \"levels\": %d,\n \"input_size\": [%d, %d],\n"
                                " \"output_size\": [%d, %d],\n \"padding\": {\"bottom\": %d, \"right\": %d},\n"
                                " \"memory_mb\": %.0f,\n",
                            from_hr ? "true" : "false", f, levels, low.h, low.w, low.h * f - pad_bottom,
                            low.w * f - pad_right, pad_bottom, pad_right, memory_mb);
        if (final) {
            wcm_json_buf_puts(&b, " \"consistency_max_abs\": ");
            wcm_json_buf_number(&b, max_dev);
            wcm_json_buf_puts(&b, ",\n");
        }
        if (final && from_hr) json_psnrs(&b, &pr, "lowpass_only");
        int lrc = finish_log(cmd, log_path, &b, &r, rc != 0);
        wcm_json_buf_free(&b);
        log_written = !lrc;
        if (lrc && !rc) rc = -1000;
    }
    if (!rc && final) rc = write_samples(pos[2], stem, final, t.opt[O_NPY].set, &err);
    if (!rc && final && from_hr) {
        snprintf(path, sizeof path, "%s_lowpass%s", stem, pos[2] + strlen(stem));
        rc = write_image(path, &blocky, 0, t.opt[O_NPY].set, &err);
    }
    if (!rc && final) {
        printf("superres: wrote %s%s in %.1f s; max |low-pass(output) - input| = %.3g\n", pos[2],
               K > 1 ? " (+ _1.._K and _mean)" : "", r.seconds, max_dev);
        if (from_hr) print_psnrs(cmd, &pr, K, "low-pass only");
        if (max_dev > 1e-5) fprintf(stderr, "wcm %s: warning: the output's low-pass deviates from the input by %g\n", cmd, max_dev);
    }
    wcm_tensor_free(&all);
    wcm_tensor_free(&img);
    wcm_tensor_free(&low);
    wcm_tensor_free(&batch);
    wcm_tensor_free(&blocky);
    wcm_tensor_free(&check);
    wcm_tensor_free(&padded);
    wcm_tensor_free(&cropped);
    wcm_synth_result_free(&r);
    wcm_model_free(&m);
    if (rc == -1000) return 1;
    if (rc) return run_error(cmd, rc, &err, log_path, log_written);
    return diverged[0] ? diverged_exit(cmd, diverged, log_path, log_written) : 0;
}

const cli_command cmd_superres = {
    "superres", "super-resolution by 2^J with a multi-scale model (Algorithm 2 from a low-pass)",
    "usage: wcm superres MODEL IN OUT [--from-highres] [--samples K] [--seed S]\n"
    "                    [--log FILE] [--npy] [--memory MB] [Algorithm-1 options]\n"
    "       wcm superres MODEL IN_DIR OUT_DIR [--from-highres] [--seed S] [...]\n\n"
    "IN is the low-resolution image: the coarsest low-pass (local means, so an\n"
    "ordinary downsampled image in [0, 1]). The cascade samples the details of\n"
    "every scale given the current low-pass (docs/model.md §7); OUT is 2^J times\n"
    "larger and its J-level Haar low-pass equals IN (the largest deviation is\n"
    "printed).\n"
    "A lone conditional network gives x2.\n\n"
    "  --from-highres  IN is a high-resolution image: it is padded (symmetric\n"
    "                  reflection) to a multiple of 2^J and the outputs cropped\n"
    "                  back to its size; its coarsest low-pass is the input and it\n"
    "                  is the reference: prints the PSNR of sample 1, of the mean\n"
    "                  of the K samples and of the low-pass-only reconstruction\n"
    "                  (details = 0; written to OUTSTEM_lowpass.png). PSNRs clamp\n"
    "                  the estimate to [-1, 2] as the reference evaluation does\n"
    "  --samples K     K samples in one batch (1). OUT is sample 1; with K > 1\n"
    "                  also OUTSTEM_1..OUTSTEM_K and OUTSTEM_mean (OUTSTEM = OUT\n"
    "                  without its .png/.npy extension)\n"
    "  --seed S        random seed (0); sample k uses its own sub-stream\n"
    "  --log FILE      run log (default OUTSTEM_log.json): per net iterations,\n"
    "                  final sigma, status, seconds; PSNRs; consistency\n"
    "  --npy           also write float32 .npy next to every PNG\n"
    "  --memory MB     working memory of one network pass (default " CLI_DEFAULT_MEMORY_TEXT "); larger\n"
    "                  scales run in exact tiles (the same bits; docs/large-images.md)\n"
    "A folder IN super-resolves every image in it into OUT_DIR/NAME.png (one\n"
    "sample each), with a progress line and ETA, summary.csv and log.json.\n\n" SAMPLER_HELP PER_NET_HELP
    "(-low options are ignored here: the low-pass is given.)\n\n" HEALTH_HELP,
    run_superres};

/* wcm inverse ------------------------------------------------------------------- */

/* Build the measurement and x_c for one image; gt (ground truth) may stay empty. */
static int setup_inverse(const char *cmd, opt_table *t, int task, int samples, wcm_tensor *img, wcm_measurement *ms,
                         float **measured, int *oh, int *ow, int *have_gt, uint64_t seed, wcm_error *err) {
    enum { O_TASK, O_FACTOR, O_MASK, O_FRACTION, O_FROM_HR };
    int rc = 0, factor = 4;
    double fraction = 0.1;
    if (cli_get_int(cmd, &t->opt[O_FACTOR], &factor) || cli_get_double(cmd, &t->opt[O_FRACTION], &fraction)) return -1000;
    if (factor < 1 || factor > 64 || !(fraction > 0 && fraction <= 1)) {
        cli_error(cmd, factor < 1 || factor > 64 ? "--factor must be in 1..64" : "--fraction must be in (0, 1]");
        return -1000;
    }
    *have_gt = task != 0 || t->opt[O_FROM_HR].set;
    if (task == 0) {
        if (t->opt[O_FROM_HR].set) {
            rc = crop_to_multiple(cmd, img, factor, err);
            *oh = img->h, *ow = img->w;
        } else {
            if ((int64_t)img->h * factor > 16384 || (int64_t)img->w * factor > 16384)
                return wcm_fail(err, WCM_ERR_ARG, "output %dx%d times %d is too large", img->h, img->w, factor);
            *oh = img->h * factor, *ow = img->w * factor;
        }
        if (!rc) rc = wcm_check_pixels(samples, *oh, *ow, "inverse output", err);
        if (!rc) rc = wcm_measurement_block_average(ms, *oh, *ow, 1, factor, err);
    } else if (task == 1) {
        wcm_tensor mask = {0};
        rc = wcm_image_read(t->opt[O_MASK].value, &mask, err);
        if (!rc && (mask.h != img->h || mask.w != img->w))
            rc = wcm_fail(err, WCM_ERR_SHAPE, "mask %s is %dx%d but the image is %dx%d", t->opt[O_MASK].value, mask.h,
                          mask.w, img->h, img->w);
        uint8_t *known = rc ? NULL : malloc((size_t)img->h * img->w);
        if (!rc && !known) rc = wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
        size_t nknown = 0;
        for (size_t i = 0; !rc && i < (size_t)img->h * img->w; i++) nknown += known[i] = mask.data[i] >= 0.5f;
        if (!rc && nknown == 0) rc = wcm_fail(err, WCM_ERR_ARG, "mask %s has no known (white) pixels", t->opt[O_MASK].value);
        if (!rc) rc = wcm_measurement_mask(ms, img->h, img->w, 1, known, err);
        free(known);
        wcm_tensor_free(&mask);
        *oh = img->h, *ow = img->w;
    } else {
        rc = wcm_measurement_random_pixels(ms, img->h, img->w, 1, fraction, seed, err);
        *oh = img->h, *ow = img->w;
    }
    if (rc) return rc;
    *measured = malloc(ms->count * sizeof(float));
    if (!*measured) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    if (*have_gt) ms->measure(ms, img->data, *measured);
    else
        for (size_t j = 0; j < ms->count; j++) (*measured)[j] = (float)factor * img->data[j]; /* x_c = F * L */
    return WCM_OK;
}

static int run_inverse(int argc, char **argv) {
    const char *cmd = "inverse";
    enum { O_TASK, O_FACTOR, O_MASK, O_FRACTION, O_FROM_HR, O_SAMPLES, O_SEED, O_LOG, O_NPY, O_RANGE, O_RETRY, NBASE };
    const cli_opt base[NBASE] = {{"task", 1, 0, 0},    {"factor", 1, 0, 0}, {"mask", 1, 0, 0},
                                 {"fraction", 1, 0, 0}, {"from-highres", 0, 0, 0}, {"samples", 1, 0, 0},
                                 {"seed", 1, 0, 0},     {"log", 1, 0, 0},   {"npy", 0, 0, 0},
                                 {"range", 1, 0, 0},    {"retry", 1, 0, 0}};
    static const char *const tasks[] = {"superres", "inpaint", "randpix"};
    opt_table t;
    table_init(&t, base, NBASE, 0);
    const char *pos[3];
    int npos, K = 1, task = -1;
    uint64_t seed = 0;
    char stem[4096], log_path[4096], path[4096];
    if (cli_parse(cmd, argc, argv, t.opt, t.n, pos, &npos, 3)) return 1;
    if (npos != 3 || !t.opt[O_TASK].set)
        return cli_error(cmd, "usage: wcm inverse FLATMODEL --task superres|inpaint|randpix IN OUT ... (see --help)");
    for (int i = 0; i < 3; i++)
        if (!strcmp(t.opt[O_TASK].value, tasks[i])) task = i;
    if (task < 0) return cli_error(cmd, "--task must be superres, inpaint or randpix, got '%s'", t.opt[O_TASK].value);
    if (t.opt[O_FACTOR].set && task != 0) return cli_error(cmd, "--factor applies to --task superres only");
    if (t.opt[O_FROM_HR].set && task != 0) return cli_error(cmd, "--from-highres applies to --task superres only");
    if (t.opt[O_FRACTION].set && task != 2) return cli_error(cmd, "--fraction applies to --task randpix only");
    if (t.opt[O_MASK].set != (task == 1)) return cli_error(cmd, task == 1 ? "--task inpaint needs --mask M.png" : "--mask applies to --task inpaint only");
    if (cli_get_int(cmd, &t.opt[O_SAMPLES], &K) || cli_get_seed(cmd, &t.opt[O_SEED], &seed) ||
        output_stem(cmd, pos[2], stem, sizeof stem) || check_parent_dir(cmd, pos[2]) ||
        (t.opt[O_LOG].set && check_parent_dir(cmd, t.opt[O_LOG].value)))
        return 1;
    if (K < 1 || K > 4096) return cli_error(cmd, "--samples must be in 1..4096, got %d", K);
    wcm_sampler_params p;
    wcm_sampler_params_default(&p);
    wcm_synth_options so;
    wcm_synth_options_default(&so);
    if (apply_params(cmd, &t, 0, &p) || apply_health(cmd, &t.opt[O_RANGE], &t.opt[O_RETRY], &so)) return 1;
    snprintf(log_path, sizeof log_path, "%s", t.opt[O_LOG].set ? t.opt[O_LOG].value : "");
    if (!t.opt[O_LOG].set) snprintf(log_path, sizeof log_path, "%s_log.json", stem);
    wcm_error err;
    wcm_model m;
    if (wcm_model_load(pos[0], &m, &err)) return cli_lib_error(cmd, &err);
    if (m.multiscale || wcm_net_get_kind(m.net) == WCM_NET_CONDITIONAL) {
        wcm_model_free(&m);
        return cli_error(cmd, "%s is not a flat denoiser: the constrained sampler needs a single 1 -> 1 network "
                              "(for a multi-scale model use wcm superres)", pos[0]);
    }
    wcm_tensor img = {0}, measured_img = {0};
    const wcm_tensor *y = NULL;
    wcm_measurement ms;
    memset(&ms, 0, sizeof ms);
    float *one = NULL, *measured = NULL, *check = NULL;
    int oh = 0, ow = 0, have_gt = 0;
    wcm_synth_result r;
    memset(&r, 0, sizeof r);
    int rc = wcm_image_read(pos[1], &img, &err);
    if (!rc && !wcm_tensor_all_finite(&img)) rc = wcm_fail(&err, WCM_ERR_NUMERIC, "%s contains NaN or Inf", pos[1]);
    if (!rc) rc = setup_inverse(cmd, &t, task, K, &img, &ms, &one, &oh, &ow, &have_gt, seed, &err);
    if (rc == -1000) goto done;
    if (!rc) rc = wcm_check_pixels(K, oh, ow, "inverse output", &err); /* inpaint, randpix: the input's size */
    if (!rc) {
        measured = malloc((size_t)K * ms.count * sizeof(float));
        check = malloc((size_t)K * ms.count * sizeof(float));
        if (!measured || !check) rc = wcm_fail(&err, WCM_ERR_NOMEM, "out of memory");
    }
    for (int k = 0; !rc && k < K; k++) memcpy(measured + k * ms.count, one, ms.count * sizeof(float));
    if (!rc) {
        progress_state ps = {cmd, 0, 0};
        so.low = p;
        so.seed = seed; /* net stream 1; the random pixels use stream 0 */
        so.progress = on_progress;
        so.progress_user = &ps;
        cli_progress("inverse: %s, %dx%d output, %zu measured values, %d sample%s, seed %llu\n", tasks[task], oh, ow,
                     ms.count, K, K == 1 ? "" : "s", (unsigned long long)seed);
        rc = wcm_synth_inverse(&m, &ms, measured, K, &so, &r, &err);
        y = wcm_synth_final(&r);
    }
    char diverged[sizeof err.msg] = "";
    if (rc == WCM_ERR_NUMERIC && r.complete) {
        snprintf(diverged, sizeof diverged, "%s", err.msg);
        rc = 0;
    }
    /* Consistency: M^T(output) = x_c. */
    double max_dev = 0;
    if (!rc) rc = wcm_measurement_apply(&ms, y, check, &err);
    for (size_t i = 0; !rc && i < (size_t)K * ms.count; i++) max_dev = fmax(max_dev, fabs((double)check[i] - measured[i]));
    if (!rc) rc = check_finite_output(y, max_dev, &err);
    psnr_report pr = {0};
    if (!rc) rc = wcm_tensor_alloc(&measured_img, 1, oh, ow, 1, &err);
    if (!rc) rc = wcm_measurement_back_project(&ms, one, &measured_img, &err);
    if (!rc && have_gt) {
        rc = compute_psnrs(&img, y, &pr, &err);
        if (task == 0) {
            pr.have_baseline = 1;
            pr.baseline = wcm_psnr_clamped(img.data, measured_img.data, (size_t)oh * ow);
        }
    }
    int log_written = 0;
    if (r.nstages > 0) {
        wcm_json_buf b;
        wcm_json_buf_init(&b);
        json_head(&b, cmd, pos[0], K, seed);
        wcm_json_buf_printf(&b, " \"task\": \"%s\",\n \"input\": ", tasks[task]);
        wcm_json_buf_string(&b, pos[1]);
        wcm_json_buf_printf(&b, ",\n \"output_size\": [%d, %d],\n \"measured_values\": %zu,\n", oh, ow, ms.count);
        if (!rc) {
            wcm_json_buf_puts(&b, " \"consistency_max_abs\": ");
            wcm_json_buf_number(&b, max_dev);
            wcm_json_buf_puts(&b, ",\n");
        }
        if (!rc && have_gt) json_psnrs(&b, &pr, "measurement_only");
        int lrc = finish_log(cmd, log_path, &b, &r, rc != 0);
        wcm_json_buf_free(&b);
        log_written = !lrc;
        if (lrc && !rc) rc = -1000;
    }
    if (!rc) rc = write_samples(pos[2], stem, y, t.opt[O_NPY].set, &err);
    if (!rc) {
        snprintf(path, sizeof path, "%s_measured%s", stem, pos[2] + strlen(stem));
        rc = write_image(path, &measured_img, 0, t.opt[O_NPY].set, &err);
    }
    if (!rc) {
        printf("inverse: wrote %s%s in %.1f s; max |M^T output - measurement| = %.3g\n", pos[2],
               K > 1 ? " (+ _1.._K and _mean)" : "", r.seconds, max_dev);
        if (have_gt) print_psnrs(cmd, &pr, K, "block average (measurement only)");
    }
done:
    wcm_tensor_free(&img);
    wcm_tensor_free(&measured_img);
    wcm_measurement_free(&ms);
    free(one);
    free(measured);
    free(check);
    wcm_synth_result_free(&r);
    wcm_model_free(&m);
    if (rc == -1000) return 1;
    if (rc) return run_error(cmd, rc, &err, log_path, log_written);
    return diverged[0] ? diverged_exit(cmd, diverged, log_path, log_written) : 0;
}

const cli_command cmd_inverse = {
    "inverse", "linear inverse problems with a flat denoiser (constrained sampler, docs/model.md §7)",
    "usage: wcm inverse FLATMODEL --task superres|inpaint|randpix IN OUT\n"
    "                   [--factor F] [--from-highres] [--mask M.png] [--fraction P]\n"
    "                   [--samples K] [--seed S] [--log FILE] [--npy] [Algorithm-1 options]\n\n"
    "The pixel-domain baseline (Kadkhodaie & Simoncelli 2021): Algorithm 1 with\n"
    "d = (I - MM^T) f(y) + MM^T y - M x_c for a measurement x_c = M^T x with\n"
    "orthonormal rows, started at M x_c + 0.5 (I - MM^T) 1, stopped when\n"
    "sigma_t <= sigma_L. The output satisfies the measurement exactly (the largest\n"
    "deviation is printed).\n\n"
    "  --task superres  block averaging by --factor F (4): IN is the low-resolution\n"
    "                   image, OUT is F times larger; with --from-highres IN is the\n"
    "                   high-resolution image (centre-cropped to a multiple of F)\n"
    "                   and the reference for PSNRs\n"
    "  --task inpaint   --mask M.png (same size as IN; white = known pixel)\n"
    "  --task randpix   keep a random fraction P (--fraction, 0.1) of IN's pixels,\n"
    "                   chosen by --seed\n"
    "  For inpaint and randpix IN is the complete image (its unknown pixels are\n"
    "  only used for the printed PSNRs, which clamp the estimate to [-1, 2]).\n"
    "  --samples K      K samples in one batch (1). OUT is sample 1; with K > 1\n"
    "                   also OUTSTEM_1..K and OUTSTEM_mean; always OUTSTEM_measured\n"
    "                   (M x_c: the block-average image, or the known pixels on 0)\n"
    "  --seed S         random seed (0)\n"
    "  --log FILE       run log (default OUTSTEM_log.json)\n"
    "  --npy            also write float32 .npy next to every PNG\n\n" SAMPLER_HELP "\n" HEALTH_HELP,
    run_inverse};

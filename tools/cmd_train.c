/* wcm train: the reference training procedure (SPEC §4) for flat,
 * conditional and low-pass BF-CNNs, with exact resumption. */
#include "cli.h"
#include "svgplot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wcm/dataset.h"
#include "wcm/io.h"
#include "wcm/model.h"
#include "wcm/train.h"
#include "wcm/train_state.h"

#define CMD "train"
/* Test batches use draws far above any training step (SPEC: noise is a pure
 * function of the seed and the draw), so every epoch sees the same test noise. */
#define TEST_DRAW_BASE (1ULL << 39)
#define CALIBRATION_DRAW_BASE (1ULL << 38)
#define EVAL_CHUNK 64

typedef struct {
    wcm_net_kind kind;
    int rf, scale, levels, crop, celeba, resize, patch, batch, epochs, halve, quadratic, intensity, bn_frozen;
    int max_images, max_test, no_cache, resume, force, save_every, max_steps;
    const char *init;  /* --init: start from this model's weights (fine-tuning) */
    double lr, test_fraction, minutes, save_minutes;
    uint64_t seed;
    const char *data, *test_dir, *out, *cache;
} train_args;

/* ---- options ------------------------------------------------------------- */

/* An option with two values, the first the default: *is_first = 1 or 0. */
static int parse_choice(const cli_opt *o, const char *first, const char *second, int *is_first) {
    *is_first = !o->set || !strcmp(o->value, first);
    if (o->set && !*is_first && strcmp(o->value, second))
        return cli_error(CMD, "--%s must be %s or %s, got '%s'", o->name, first, second, o->value);
    return 0;
}

static int parse_args(int argc, char **argv, train_args *a) {
    cli_opt o[] = {{"kind", 1, 0, 0},       {"rf", 1, 0, 0},          {"scale", 1, 0, 0},       {"levels", 1, 0, 0},
                   {"data", 1, 0, 0},       {"test", 1, 0, 0},        {"test-fraction", 1, 0, 0}, {"crop", 1, 0, 0},
                   {"celeba-crop", 0, 0, 0}, {"resize", 1, 0, 0},     {"patch", 1, 0, 0},       {"batch", 1, 0, 0},
                   {"epochs", 1, 0, 0},     {"lr", 1, 0, 0},          {"lr-halve-every", 1, 0, 0}, {"noise", 1, 0, 0},
                   {"seed", 1, 0, 0},       {"o", 1, 0, 0},           {"output", 1, 0, 0},      {"resume", 0, 0, 0},
                   {"force", 0, 0, 0},      {"max-images", 1, 0, 0},  {"max-test-images", 1, 0, 0}, {"minutes", 1, 0, 0},
                   {"save-minutes", 1, 0, 0}, {"save-every", 1, 0, 0}, {"steps", 1, 0, 0},       {"cache", 1, 0, 0},
                   {"no-cache", 0, 0, 0},   {"init", 1, 0, 0},         {"intensity", 1, 0, 0},
                   {"batch-norm", 1, 0, 0}};
    const int n = CLI_NOPTS(o);
    const char *pos[1];
    int npos;
    if (cli_parse(CMD, argc, argv, o, n, pos, &npos, 0)) return 1;
    memset(a, 0, sizeof *a);
    a->rf = 0, a->levels = 2, a->crop = 160, a->batch = 512, a->epochs = -1, a->halve = -1, a->quadratic = 1;
    a->lr = 1e-3, a->test_fraction = -1, a->save_minutes = 10;
    const char *kind = cli_find(o, n, "kind")->value;
    if (!kind) return cli_error(CMD, "missing --kind flat|conditional|lowpass");
    if (wcm_net_kind_parse(kind, &a->kind)) return cli_error(CMD, "--kind must be flat, conditional or lowpass, got '%s'", kind);
    if (cli_get_int(CMD, cli_find(o, n, "rf"), &a->rf) || cli_get_int(CMD, cli_find(o, n, "scale"), &a->scale) ||
        cli_get_int(CMD, cli_find(o, n, "levels"), &a->levels) || cli_get_int(CMD, cli_find(o, n, "crop"), &a->crop) ||
        cli_get_int(CMD, cli_find(o, n, "resize"), &a->resize) || cli_get_int(CMD, cli_find(o, n, "patch"), &a->patch) ||
        cli_get_int(CMD, cli_find(o, n, "batch"), &a->batch) || cli_get_int(CMD, cli_find(o, n, "epochs"), &a->epochs) ||
        cli_get_int(CMD, cli_find(o, n, "lr-halve-every"), &a->halve) ||
        cli_get_int(CMD, cli_find(o, n, "max-images"), &a->max_images) ||
        cli_get_int(CMD, cli_find(o, n, "max-test-images"), &a->max_test) ||
        cli_get_int(CMD, cli_find(o, n, "save-every"), &a->save_every) ||
        cli_get_int(CMD, cli_find(o, n, "steps"), &a->max_steps) || cli_get_double(CMD, cli_find(o, n, "lr"), &a->lr) ||
        cli_get_double_in(CMD, cli_find(o, n, "test-fraction"), 0, 0.999999, &a->test_fraction) ||
        cli_get_double_in(CMD, cli_find(o, n, "minutes"), 0, 1e9, &a->minutes) ||
        cli_get_double_in(CMD, cli_find(o, n, "save-minutes"), 0, 1e9, &a->save_minutes) ||
        cli_get_seed(CMD, cli_find(o, n, "seed"), &a->seed))
        return 1;
    cli_opt *intensity = cli_find(o, n, "intensity");
    int bn_batch;
    if (parse_choice(cli_find(o, n, "noise"), "quadratic", "uniform", &a->quadratic) ||
        parse_choice(intensity, "uniform", "none", &a->intensity) ||
        parse_choice(cli_find(o, n, "batch-norm"), "batch", "frozen", &bn_batch))
        return 1;
    a->bn_frozen = !bn_batch;
    if (intensity->set && a->kind == WCM_NET_CONDITIONAL)
        return cli_error(CMD, "--intensity applies to flat and low-pass nets (conditional nets see the data as it is)");
    a->data = cli_find(o, n, "data")->value;
    a->test_dir = cli_find(o, n, "test")->value;
    a->out = cli_find(o, n, "o")->set ? cli_find(o, n, "o")->value : cli_find(o, n, "output")->value;
    a->cache = cli_find(o, n, "cache")->value;
    a->celeba = cli_find(o, n, "celeba-crop")->set;
    a->resume = cli_find(o, n, "resume")->set;
    a->force = cli_find(o, n, "force")->set;
    a->no_cache = cli_find(o, n, "no-cache")->set;
    a->init = cli_find(o, n, "init")->value;
    if (a->init && a->resume) return cli_error(CMD, "--init starts a new run from a model; it cannot be combined with --resume");
    if (!a->data) return cli_error(CMD, "missing --data DIR (a folder of .png/.jpg images)");
    if (!a->out) return cli_error(CMD, "missing -o OUT.safetensors");
    size_t ol = strlen(a->out);
    if (ol < 12 || strcmp(a->out + ol - 12, ".safetensors"))
        return cli_error(CMD, "-o must name a .safetensors file, got '%s'", a->out);
    if (a->kind != WCM_NET_LOWPASS && !cli_find(o, n, "rf")->set)
        return cli_error(CMD, "missing --rf R (receptive field: 5, 9, 13, 23, 43, ...)");
    if (a->kind == WCM_NET_LOWPASS) a->rf = 40;
    if (a->levels < 1 || a->levels > WCM_MAX_LEVELS) return cli_error(CMD, "--levels must be in 1..%d", WCM_MAX_LEVELS);
    if (a->kind == WCM_NET_CONDITIONAL && (a->scale < 0 || a->scale >= a->levels))
        return cli_error(CMD, "--scale must be in 0..%d (J = --levels %d)", a->levels - 1, a->levels);
    if (a->crop < 0 || a->resize < 0 || a->patch < 0 || a->max_images < 0 || a->max_test < 0 || a->save_every < 0 ||
        a->max_steps < 0)
        return cli_error(CMD, "sizes and counts must not be negative");
    if (a->batch < 1) return cli_error(CMD, "--batch must be at least 1");
    if (!(a->lr > 0) || !isfinite(a->lr)) return cli_error(CMD, "--lr must be a positive number");
    if (a->test_dir && a->test_fraction >= 0) return cli_error(CMD, "give --test DIR or --test-fraction F, not both");
    if (a->test_fraction < 0) a->test_fraction = a->test_dir ? 0 : 0.1;
    /* The reference multiplies epochs and the halving period by 4^j at scale j
     * (the low-pass net counts as scale J-1): the images are 4^j times smaller. */
    int j = a->kind == WCM_NET_CONDITIONAL ? a->scale : a->kind == WCM_NET_LOWPASS ? a->levels - 1 : 0;
    if (a->epochs < 0) a->epochs = 500 << (2 * j);
    if (a->halve < 0) a->halve = 50 << (2 * j);
    if (a->halve < 1) return cli_error(CMD, "--lr-halve-every must be at least 1");
    return 0;
}

/* The options a checkpoint must share with a run that resumes it. */
static void args_meta(const train_args *a, wcm_array_list *m, int noise_high, wcm_error *err) {
    char v[64];
#define PUT(key, ...) (snprintf(v, sizeof v, __VA_ARGS__), wcm_array_list_set_meta(m, "wcm.train." key, v, err))
    PUT("kind", "%s", wcm_net_kind_name(a->kind));
    PUT("rf", "%d", a->rf);
    PUT("scale", "%d", a->kind == WCM_NET_CONDITIONAL ? a->scale : -1);
    PUT("levels", "%d", a->levels);
    PUT("crop", "%d", a->crop);
    PUT("celeba_crop", "%d", a->celeba);
    PUT("resize", "%d", a->resize);
    PUT("patch", "%d", a->patch);
    PUT("batch_size", "%d", a->batch);
    PUT("lr", "%.17g", a->lr);
    PUT("lr_halve_every", "%d", a->halve);
    PUT("noise", "%s", a->quadratic ? "quadratic" : "uniform");
    PUT("noise_high", "%d", noise_high);
    PUT("intensity", "%s", a->intensity ? "uniform" : "none"); /* conditional nets: always the default, unused */
    PUT("batch_norm", "%s", a->bn_frozen ? "frozen" : "batch");
    PUT("seed", "%llu", (unsigned long long)a->seed);
    PUT("epochs", "%d", a->epochs);
#undef PUT
    wcm_array_list_set_meta(m, "wcm.train.data", a->data, err);
}

/* Options a resumed run must repeat: key, option, and the value to assume
 * when a checkpoint predates the key (NULL: the key is required). */
static const char *const same_keys[][3] = {
    {"scale", "--scale", NULL}, {"levels", "--levels", NULL}, {"crop", "--crop", NULL},
    {"celeba_crop", "--celeba-crop", NULL}, {"resize", "--resize", NULL}, {"patch", "--patch", NULL},
    {"batch_size", "--batch", NULL}, {"lr", "--lr", NULL}, {"lr_halve_every", "--lr-halve-every", NULL},
    {"noise", "--noise", NULL}, {"seed", "--seed", NULL}, {"noise_high", "(noise bound from the data)", NULL},
    {"intensity", "--intensity", "uniform"}, {"batch_norm", "--batch-norm", "batch"},
};

static int check_resume_args(const char *path, const wcm_array_list *have, const wcm_array_list *want) {
    for (size_t i = 0; i < sizeof same_keys / sizeof same_keys[0]; i++) {
        char key[64];
        snprintf(key, sizeof key, "wcm.train.%s", same_keys[i][0]);
        const char *h = wcm_array_list_get_meta(have, key), *w = wcm_array_list_get_meta(want, key);
        if (!h) h = same_keys[i][2];
        if (!h) return cli_error(CMD, "%s: checkpoint lacks %s; cannot resume it", path, key);
        if (strcmp(h, w))
            return cli_error(CMD, "%s was trained with %s %s, this run asks for %s %s; give the same options to --resume",
                             path, same_keys[i][1], h, same_keys[i][1], w);
    }
    return 0;
}

/* --batch-norm frozen, fresh run (not from a net trained frozen): running_sd
 * becomes the root mean batch variance over the first CALIBRATION_BATCHES
 * batches of epoch 1, then stays fixed (the running average of batch sds is
 * biased low and lags the weights). */
#define CALIBRATION_BATCHES 16
static int calibrate_batch_norm(wcm_trainer *t, wcm_dataset *ds, const wcm_batch_spec *spec, int *order, int ntrain,
                                int batch, uint64_t seed, wcm_error *err) {
    double *acc = calloc((size_t)wcm_net_nlayers(t->net) * WCM_CHANNELS, sizeof(double));
    if (!acc) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    wcm_tensor noisy = {0}, noise = {0};
    wcm_epoch_order(seed, 0, ntrain, order);
    int nb = 0, rc = 0;
    for (; nb < CALIBRATION_BATCHES && nb * batch < ntrain && !rc; nb++) {
        int first = nb * batch, cnt = ntrain - first < batch ? ntrain - first : batch;
        rc = wcm_make_batch(ds, spec, order + first, cnt, CALIBRATION_DRAW_BASE + (uint64_t)nb, &noisy, &noise, err);
        if (!rc) rc = wcm_train_bn_accumulate(t, &noisy, acc, err);
    }
    if (!rc) {
        double before = 0, after = 0;
        int count = 0;
        for (int l = 0; l < wcm_net_nlayers(t->net); l++) {
            const wcm_layer *L = wcm_net_layer(t->net, l);
            if (L->bn)
                for (int c = 0; c < L->cout; c++, count++)
                    before += log(L->running_sd[c]), after += 0.5 * log(acc[(size_t)l * WCM_CHANNELS + c] / nb);
        }
        wcm_train_bn_set_running(t, acc, nb);
        cli_progress("batch norm frozen: running_sd from the statistics of %d batches (geometric mean change x%.3f)\n",
                     nb, count ? exp((after - before) / count) : 1.0);
    }
    wcm_tensor_free(&noisy), wcm_tensor_free(&noise);
    free(acc);
    return rc;
}

/* --init: copy the weights and batch-norm buffers of a single-network model
 * of the same architecture (a fresh optimiser, e.g. to fine-tune at a lower
 * learning rate). */
static int init_from_model(const char *path, wcm_net *net, int *bn_was_frozen) {
    wcm_model m;
    wcm_error err;
    if (wcm_model_load(path, &m, &err)) return cli_lib_error(CMD, &err);
    wcm_net *src = m.multiscale ? NULL : m.net;
    int ok = src && wcm_net_get_kind(src) == wcm_net_get_kind(net) && wcm_net_nparams(src) == wcm_net_nparams(net) &&
             wcm_net_nrunning(src) == wcm_net_nrunning(net) && wcm_net_nominal_rf(src) == wcm_net_nominal_rf(net);
    if (ok) {
        memcpy(wcm_net_params(net), wcm_net_params(src), wcm_net_nparams(net) * sizeof(float));
        memcpy(wcm_net_running_sd(net), wcm_net_running_sd(src), wcm_net_nrunning(net) * sizeof(float));
        const char *bn = wcm_array_list_get_meta(&m.meta, "wcm.train.batch_norm");
        *bn_was_frozen = bn && !strcmp(bn, "frozen");
        wcm_net_invalidate(net);
        cli_progress("initialised from %s\n", path);
    }
    wcm_model_free(&m);
    return ok ? 0 : cli_error(CMD, "--init %s: not a single %s network of this architecture", path,
                              wcm_net_kind_name(wcm_net_get_kind(net)));
}

/* ---- outputs ----------------------------------------------------------------- */

static int save_checkpoint(const char *path, const wcm_trainer *t, const train_args *a, const wcm_train_state *s,
                           int noise_high, wcm_error *err) {
    wcm_array_list m;
    wcm_array_list_init(&m);
    args_meta(a, &m, noise_high, err);
    int rc = wcm_train_state_to_meta(s, &m, err);
    if (!rc) rc = wcm_train_checkpoint_save(path, t, &m, err);
    wcm_array_list_free(&m);
    return rc;
}

static void with_suffix(char *buf, size_t size, const char *out, const char *suffix) {
    size_t n = strlen(out) - strlen(".safetensors");
    snprintf(buf, size, "%.*s%s", (int)n, out, suffix);
}

static int write_logs(const char *out, const wcm_train_state *s, wcm_error *err) {
    char path[4096];
    char *csv;
    size_t used;
    int rc = wcm_train_state_log_csv(s, &csv, &used, err);
    if (rc) return rc;
    with_suffix(path, sizeof path, out, ".log.csv");
    rc = wcm_write_file_atomic(path, csv, used, err);
    free(csv);
    if (rc) return rc;
    /* Two plots stacked in one SVG: the loss, and the train/test PSNR. */
    double *x = malloc(sizeof(double) * 4 * ((size_t)s->nrows + 1));
    if (!x) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    double *loss = x + s->nrows + 1, *psnr = loss + s->nrows + 1, *tpsnr = psnr + s->nrows + 1;
    for (int i = 0; i < s->nrows; i++)
        x[i] = s->rows[i].epoch, loss[i] = s->rows[i].loss, psnr[i] = s->rows[i].psnr, tpsnr[i] = s->rows[i].test_psnr;
    svg_plot p1 = {"training loss", "epoch", "loss (sum of squares / batch)", 0, 760, 400};
    svg_plot p2 = {"PSNR of the denoised values", "epoch", "PSNR (dB)", 0, 760, 400};
    svg_series s1[] = {{"train loss", x, loss, s->nrows, 0, NULL}};
    svg_series s2[] = {{"train", x, psnr, s->nrows, 0, NULL}, {"test", x, tpsnr, s->nrows, 1, NULL}};
    char *a = svg_plot_render(&p1, s1, 1), *b = svg_plot_render(&p2, s2, 2);
    free(x);
    if (!a || !b) {
        free(a), free(b);
        return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    }
    size_t n = strlen(a) + strlen(b) + 512;
    char *svg = malloc(n);
    if (svg)
        snprintf(svg, n,
                 "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"760\" height=\"800\" viewBox=\"0 0 760 800\">\n"
                 "<g>\n%s</g>\n<g transform=\"translate(0 400)\">\n%s</g>\n</svg>\n",
                 a, b);
    free(a), free(b);
    if (!svg) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    with_suffix(path, sizeof path, out, ".svg");
    rc = wcm_write_file_atomic(path, svg, strlen(svg), err);
    free(svg);
    return rc;
}

/* ---- evaluation --------------------------------------------------------------- */

/* Mean per-image PSNR of the denoised test images (whole images, inference
 * mode with running_sd, the same noise every epoch). */
static int evaluate(wcm_net *net, const wcm_dataset *ds, const int *ids, int n, const wcm_batch_spec *train_spec,
                    double *psnr, wcm_error *err) {
    wcm_batch_spec spec = *train_spec;
    spec.patch = 0;
    wcm_tensor noisy = {0}, noise = {0}, out = {0};
    double sum = 0;
    int rc = 0;
    for (int b = 0; !rc && b * EVAL_CHUNK < n; b++) {
        int cnt = n - b * EVAL_CHUNK < EVAL_CHUNK ? n - b * EVAL_CHUNK : EVAL_CHUNK;
        rc = wcm_make_batch(ds, &spec, ids + b * EVAL_CHUNK, cnt, TEST_DRAW_BASE + (uint64_t)b, &noisy, &noise, err);
        if (!rc) rc = wcm_net_forward(net, &noisy, &out, err);
        if (!rc) sum += wcm_batch_psnr(&out, &noise) * cnt;
    }
    wcm_tensor_free(&noisy), wcm_tensor_free(&noise), wcm_tensor_free(&out);
    *psnr = n ? sum / n : NAN;
    return rc;
}

static void progress_bar(const train_args *a, const wcm_train_state *s, int nbatches, double loss, double psnr, double ips) {
    if (cli_quiet || !isatty(2)) return;
    char bar[21];
    int fill = (int)(20.0 * s->batch / nbatches);
    for (int i = 0; i < 20; i++) bar[i] = i < fill ? '#' : '.';
    bar[20] = 0;
    fprintf(stderr, "\r  epoch %d/%d [%s] %d/%d  loss %.5g  PSNR %.2f dB  %.1f images/s   ", s->epoch + 1, a->epochs,
            bar, s->batch, nbatches, loss, psnr, ips);
    fflush(stderr);
}

/* ---- the command --------------------------------------------------------------- */

static int open_data(const train_args *a, const char *dir, int max_images, wcm_dataset *ds) {
    wcm_dataset_options o = {a->celeba ? 0 : a->crop, a->celeba, a->resize, max_images, a->cache, a->no_cache};
    wcm_error err;
    if (wcm_dataset_open(ds, dir, &o, &err)) return cli_lib_error(CMD, &err);
    cli_progress("%s: %d images of %dx%d%s (%d unreadable and %d too small skipped)%s%s\n", dir, ds->count, ds->w, ds->h,
                 a->celeba ? " (CelebA crop)" : "", ds->unreadable, ds->too_small, ds->cache_hit ? ", cache " : "",
                 ds->cache_hit ? ds->cache_path : "");
    return 0;
}

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static int run_train(int argc, char **argv) {
    train_args a;
    if (parse_args(argc, argv, &a)) return 1;
    if (!a.resume && !a.force && file_exists(a.out))
        return cli_error(CMD, "%s exists: add --resume to continue that run, or --force to start over", a.out);
    wcm_error err;
    wcm_dataset train_ds = {0}, test_store = {0};
    if (open_data(&a, a.data, a.max_images, &train_ds)) return 1;
    const wcm_dataset *test_ds = &train_ds;
    int ntrain = train_ds.count, ntest = 0, test_first = 0;
    if (a.test_dir) {
        if (open_data(&a, a.test_dir, a.max_test, &test_store)) {
            wcm_dataset_close(&train_ds);
            return 1;
        }
        test_ds = &test_store, ntest = test_store.count;
        if (test_store.h != train_ds.h || test_store.w != train_ds.w) {
            wcm_dataset_close(&train_ds), wcm_dataset_close(&test_store);
            return cli_error(CMD, "test images are %dx%d, training images %dx%d", test_store.w, test_store.h, train_ds.w,
                             train_ds.h);
        }
    } else if (a.test_fraction > 0) {
        ntest = (int)(a.test_fraction * train_ds.count + 0.5);
        if (ntest >= train_ds.count) ntest = train_ds.count - 1;
        if (a.max_test > 0 && ntest > a.max_test) ntest = a.max_test;
        ntrain = train_ds.count - ntest, test_first = ntrain;
    }
    int *order = malloc(sizeof(int) * (size_t)ntrain), *ids = malloc(sizeof(int) * (size_t)ntrain),
        *test_ids = malloc(sizeof(int) * ((size_t)ntest + 1));
    if (!order || !ids || !test_ids) {
        free(order), free(ids), free(test_ids);
        wcm_dataset_close(&train_ds);
        if (a.test_dir) wcm_dataset_close(&test_store);
        return cli_error(CMD, "out of memory");
    }
    for (int i = 0; i < ntest; i++) test_ids[i] = test_first + i;
    wcm_batch_spec spec = {a.kind, a.scale, a.levels, a.patch, a.quadratic, 255, a.kind != WCM_NET_CONDITIONAL && a.intensity, 0, a.seed};
    for (int i = 0; i < ntrain; i++) order[i] = i;
    double detail_max = 0;
    if (a.kind == WCM_NET_CONDITIONAL) {
        detail_max = wcm_dataset_detail_max(&train_ds, order, ntrain, a.scale);
        spec.noise_high = wcm_noise_high_for_scale(detail_max);
    }
    int h, w, rc = 1;
    wcm_trainer *t = NULL;
    wcm_net *net = NULL;
    wcm_train_state s = {0};
    wcm_tensor noisy = {0}, noise = {0}, out = {0};
    if (wcm_batch_geometry(&train_ds, &spec, &h, &w, &err)) {
        cli_lib_error(CMD, &err);
        goto done;
    }
    wcm_array_list want;
    wcm_array_list_init(&want);
    args_meta(&a, &want, spec.noise_high, &err);
    int resumed = a.resume && file_exists(a.out), init_frozen = 0;
    if (resumed) {
        wcm_array_list have;
        if (wcm_train_checkpoint_load(a.out, &t, &have, &err)) {
            wcm_array_list_free(&want);
            cli_error(CMD, "cannot resume: %s", err.msg);
            goto done;
        }
        net = t->net;
        const char *hk = wcm_array_list_get_meta(&have, "wcm.train.kind");
        if (wcm_net_get_kind(net) != a.kind || (a.kind != WCM_NET_LOWPASS && wcm_net_nominal_rf(net) != a.rf) || !hk) {
            cli_error(CMD, "cannot resume: %s holds a %s network of RF %d, this run asks for a %s network of RF %d "
                      "(a checkpoint of another architecture)", a.out, wcm_net_kind_name(wcm_net_get_kind(net)), wcm_net_rf(net),
                      wcm_net_kind_name(a.kind), a.rf);
        } else if (!check_resume_args(a.out, &have, &want)) {
            if (wcm_train_state_from_meta(&have, &s, &err))
                cli_error(CMD, "cannot resume: %s has a damaged training state: %s", a.out, err.msg);
            else if (s.batch >= (ntrain + a.batch - 1) / a.batch)
                cli_error(CMD, "cannot resume: %s stopped at batch %d of an epoch, but the data gives %d batches of %d "
                          "(did the data change?)", a.out, s.batch, (ntrain + a.batch - 1) / a.batch, a.batch);
            else rc = 0;
        }
        wcm_array_list_free(&have);
        if (rc) {
            wcm_array_list_free(&want);
            goto done;
        }
        rc = 1;
        cli_progress("resuming %s at epoch %d, batch %d (step %lld)\n", a.out, s.epoch + 1, s.batch, s.step);
    } else {
        if (a.resume) cli_progress("no checkpoint at %s yet: starting from the beginning\n", a.out);
        if (wcm_net_create(&net, a.kind, a.rf, &err) || wcm_trainer_create(&t, net, &err)) {
            wcm_array_list_free(&want);
            cli_lib_error(CMD, &err);
            goto done;
        }
        wcm_net_init_reference(net, a.seed);
        if (a.init && init_from_model(a.init, net, &init_frozen)) {
            wcm_array_list_free(&want);
            goto done;
        }
    }
    wcm_array_list_free(&want);
    t->bn_frozen = a.bn_frozen;
    if (a.bn_frozen && !resumed && !init_frozen && calibrate_batch_norm(t, &train_ds, &spec, order, ntrain, a.batch, a.seed, &err)) {
        cli_lib_error(CMD, &err);
        goto done;
    }
    char desc[256];
    wcm_net_describe(net, desc, sizeof desc);
    int nbatches = (ntrain + a.batch - 1) / a.batch;
    cli_progress("training %s\n  %d training images (%s %dx%d), %d test images; batch %d, %d batches per epoch\n"
                 "  noise: %s, k < %d%s%s; lr %g halved every %d epochs; %d epochs; activations %.2f GB\n",
                 desc, ntrain, a.patch ? "patches" : "whole", w, h, ntest, a.batch, nbatches,
                 a.quadratic ? "sigma = (k/255)^2" : "sigma = k/255", spec.noise_high,
                 a.kind == WCM_NET_CONDITIONAL ? " (255 x max|detail|)" : "", spec.rescale ? ", intensity x U(0,1)" : "",
                 a.lr, a.halve, a.epochs, (double)a.batch * h * w * WCM_CHANNELS * sizeof(float) * (wcm_net_nlayers(net) + 2) / 1e9);
    /* Refuse batches whose activations cannot fit, rather than swap or be killed. */
    double need = (double)a.batch * h * w * WCM_CHANNELS * sizeof(float) * (wcm_net_nlayers(net) + 2);
    double ram = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    if (ram > 0 && need > 0.8 * ram) {
        cli_error(CMD, "a batch of %d at %dx%d needs %.1f GB of activations, this machine has %.1f GB: use --patch or a "
                  "smaller --batch", a.batch, w, h, need / 1e9, ram / 1e9);
        goto done;
    }
    double run_start = wcm_seconds(), last_save = run_start, ips = 0;
    long long saved_step = s.step;
    int saved_epoch = s.epoch, stop = 0;
    while (s.epoch < a.epochs && !stop) {
        double lr = a.lr * pow(0.5, (double)(s.epoch / a.halve)), epoch_start = wcm_seconds();
        long long images = 0;
        wcm_epoch_order(a.seed, (uint64_t)s.epoch, ntrain, order);
        while (s.batch < nbatches) {
            int first = s.batch * a.batch, cnt = ntrain - first < a.batch ? ntrain - first : a.batch;
            memcpy(ids, order + first, sizeof(int) * (size_t)cnt);
            double loss;
            if (wcm_make_batch(&train_ds, &spec, ids, cnt, (uint64_t)s.step, &noisy, &noise, &err) ||
                wcm_train_gradient(t, &noisy, &noise, &loss, &out, &err)) {
                cli_lib_error(CMD, &err);
                goto done;
            }
            if (!isfinite(loss) || !wcm_trainer_grad_finite(t)) {
                cli_error(CMD, "the %s became NaN or infinite at epoch %d, batch %d (step %lld): stopping; try a lower --lr "
                          "or check the data", isfinite(loss) ? "gradient" : "loss", s.epoch + 1, s.batch + 1, s.step + 1);
                if (saved_step > 0 || saved_epoch > 0 || file_exists(a.out))
                    fprintf(stderr, "wcm train: %s keeps the last good checkpoint (step %lld)\n", a.out, saved_step);
                else
                    fprintf(stderr, "wcm train: no checkpoint was written\n");
                goto done;
            }
            double psnr = wcm_batch_psnr(&out, &noise);
            wcm_adam_step(t, lr);
            s.loss_sum += loss, s.psnr_sum += psnr, s.step++, s.batch++;
            images += cnt;
            double now = wcm_seconds();
            ips = images / (now - epoch_start);
            progress_bar(&a, &s, nbatches, s.loss_sum / s.batch, s.psnr_sum / s.batch, ips);
            int out_of_time = a.minutes > 0 && now - run_start >= a.minutes * 60;
            int step_limit = a.max_steps > 0 && s.step >= a.max_steps;
            int due = (a.save_every > 0 && s.step % a.save_every == 0) ||
                      (a.save_minutes > 0 && now - last_save >= a.save_minutes * 60);
            if ((out_of_time || step_limit || due) && s.batch < nbatches) {
                s.seconds += now - epoch_start, epoch_start = now, images = 0; /* ips: since this restart */
                if (save_checkpoint(a.out, t, &a, &s, spec.noise_high, &err)) {
                    cli_lib_error(CMD, &err);
                    goto done;
                }
                saved_step = s.step, last_save = wcm_seconds();
            }
            if ((out_of_time || step_limit) && s.batch < nbatches) {
                stop = 1;
                break;
            }
        }
        if (stop) break;
        double test_psnr = NAN;
        if (ntest && evaluate(net, test_ds, test_ids, ntest, &spec, &test_psnr, &err)) {
            cli_lib_error(CMD, &err);
            goto done;
        }
        s.seconds += wcm_seconds() - epoch_start;
        wcm_epoch_row row = {s.epoch + 1, s.loss_sum / nbatches, s.psnr_sum / nbatches, test_psnr, lr, s.seconds};
        if (wcm_train_state_add_row(&s, &row, &err)) {
            cli_lib_error(CMD, &err);
            goto done;
        }
        if (!cli_quiet && isatty(2)) fputs("\r\033[K", stderr); /* clear the progress bar */
        char test_text[48] = "no test set";
        if (ntest) snprintf(test_text, sizeof test_text, "test PSNR %.2f dB", test_psnr);
        cli_progress("epoch %d/%d: train loss %.5g, PSNR %.2f dB; %s; lr %g; %.1f images/s; %.0f s\n", s.epoch + 1,
                     a.epochs, s.loss_sum / nbatches, s.psnr_sum / nbatches, test_text, lr, ips, s.seconds);
        s.epoch++, s.batch = 0, s.loss_sum = s.psnr_sum = 0;
        if (save_checkpoint(a.out, t, &a, &s, spec.noise_high, &err) || write_logs(a.out, &s, &err)) {
            cli_lib_error(CMD, &err);
            goto done;
        }
        saved_step = s.step, saved_epoch = s.epoch, last_save = wcm_seconds();
        if ((a.max_steps > 0 && s.step >= a.max_steps) || (a.minutes > 0 && wcm_seconds() - run_start >= a.minutes * 60))
            stop = s.epoch < a.epochs;
    }
    if (stop && !cli_quiet && isatty(2)) fputs("\r\033[K", stderr);
    if (stop)
        cli_progress("stopped at epoch %d, batch %d (step %lld, %.1f images/s): checkpoint %s; continue with --resume\n",
                     s.epoch + 1, s.batch, s.step, ips, a.out);
    else
        cli_progress("done: %d epochs, %lld steps; model %s, log %.*s.log.csv\n", s.epoch, s.step, a.out,
                     (int)(strlen(a.out) - 12), a.out);
    rc = 0;
done:
    wcm_tensor_free(&noisy), wcm_tensor_free(&noise), wcm_tensor_free(&out);
    wcm_trainer_free(t);
    wcm_net_free(net);
    wcm_train_state_free(&s);
    free(order), free(ids), free(test_ids);
    wcm_dataset_close(&train_ds);
    if (a.test_dir) wcm_dataset_close(&test_store);
    return rc;
}

const cli_command cmd_train = {
    "train", "train a flat, conditional or low-pass denoiser as the reference does",
    "usage: wcm train --kind flat|conditional|lowpass [--rf R] [--scale j] [--levels J]\n"
    "                 --data DIR [--test DIR | --test-fraction F] -o OUT.safetensors [options]\n\n"
    "Trains one BF-CNN with the reference procedure (SPEC §4): reference\n"
    "initialisation; per image a noise level sigma = (k/255)^2 (quadratic) or k/255\n"
    "with k uniform in [0, 255); for a conditional net at scale j the bound 255 is\n"
    "multiplied by the largest |detail coefficient| of the training set and noise\n"
    "goes on the 3 detail channels only; flat and low-pass nets first scale each\n"
    "clean image by a U(0,1) intensity. Loss sum((f(noisy) - noise)^2) / batch,\n"
    "Adam (betas 0.9, 0.999), lr halved every --lr-halve-every epochs.\n"
    "The data: a folder of images, made gray, centre-cropped and optionally resized\n"
    "once into a memory-mapped cache. Conditional nets see the Haar coefficients of\n"
    "scale j, the low-pass net the coarsest low-pass (level J-1); --patch P draws a\n"
    "random P x P patch of those per image and epoch (the nets are local).\n"
    "OUT.safetensors is a single-network model (wcm info / denoise / bundle read it)\n"
    "that also holds the Adam state: it is rewritten atomically after every epoch\n"
    "and every --save-minutes, and --resume continues exactly (bit-identical for\n"
    "the same thread count). Also written: OUT.log.csv (epoch, train loss, train\n"
    "PSNR, test PSNR, lr, seconds) and OUT.svg (loss and PSNR curves).\n\n"
    "  --kind K              flat (1 -> 1), conditional (4 -> 3) or lowpass (BF_CNN)\n"
    "  --rf R                receptive field of flat/conditional nets (5, 9, 13, 23, 43, ...)\n"
    "  --scale j             conditional: Haar scale, 0 = finest (default 0)\n"
    "  --levels J            pyramid depth (default 2); the low-pass net uses level J-1\n"
    "  --data DIR            training images (.png .jpg .jpeg .npy)\n"
    "  --test DIR            test images (default: hold out --test-fraction, 0.1, of DIR)\n"
    "  --test-fraction F     fraction of DIR (the last images by name) used for testing\n"
    "  --crop N              centre crop N x N (default 160; 0: keep sizes)\n"
    "  --celeba-crop         aligned-CelebA crop [29:-29, 9:-9] instead of --crop\n"
    "  --resize N            resize to N x N after cropping (bicubic)\n"
    "  --patch P             random P x P patches of the network input (default: whole)\n"
    "  --batch B             batch size (default 512)\n"
    "  --epochs E            epochs (default 500 x 4^j; j = scale, J-1 for lowpass)\n"
    "  --lr LR               Adam learning rate (default 1e-3)\n"
    "  --lr-halve-every N    halve the lr every N epochs (default 50 x 4^j)\n"
    "  --noise LAW           quadratic (default) or uniform\n"
    "  --intensity LAW       flat and low-pass nets: uniform (default, the reference:\n"
    "                        clean x U(0,1)) or none (images as they are; the prior\n"
    "                        then has no pull towards dark images when sampling)\n"
    "  --batch-norm MODE     batch (default, the reference: batch statistics) or frozen\n"
    "                        (each batch norm divides by a fixed running_sd, as when\n"
    "                        the net is used; a fresh run first sets running_sd from\n"
    "                        16 batches, unless --init names a net trained frozen;\n"
    "                        for fine-tuning with --init)\n"
    "  --seed S              seed of the initialisation, order, patches and noise (default 0)\n"
    "  -o, --output FILE     the model / checkpoint (.safetensors)\n"
    "  --resume              continue the run stored in FILE (same options required)\n"
    "  --init MODEL          start from the weights of MODEL (same architecture), with a\n"
    "                        fresh optimiser: fine-tuning, e.g. at a lower --lr\n"
    "  --force               overwrite an existing FILE instead of refusing\n"
    "  --max-images N        use only the first N images of DIR (by name)\n"
    "  --max-test-images N   at most N test images\n"
    "  --minutes M           stop after M minutes (checkpoint kept; --resume continues)\n"
    "  --steps N             stop after N optimiser steps in total (quick runs, benchmarks)\n"
    "  --save-minutes M      also checkpoint every M minutes within an epoch (default 10)\n"
    "  --save-every N        also checkpoint every N steps (0: off)\n"
    "  --cache DIR           folder of the preprocessed-image cache\n"
    "                        (default $WCM_CACHE_DIR, $XDG_CACHE_HOME/wcm or ~/.cache/wcm)\n"
    "  --no-cache            preprocess in memory only\n",
    run_train};

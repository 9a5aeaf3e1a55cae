/* The options of a training run: defaults, their record in a checkpoint's
 * metadata, and what a resumed run may change (include/wcm/trainer.h). */
#include "trainer_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void wcm_train_options_default(wcm_train_options *o) {
    memset(o, 0, sizeof *o);
    o->kind = WCM_NET_FLAT;
    o->levels = 2;
    o->crop = 160;
    o->test_fraction = -1;
    o->batch = 512;
    o->accumulate = 1;
    o->epochs = -1;
    o->lr = 1e-3;
    o->lr_schedule = WCM_LR_STEP;
    o->lr_halve_every = -1;
    o->noise = WCM_NOISE_QUADRATIC;
    o->intensity = 1;
    o->bn_running_warmup = 1;
    o->save_minutes = 10;
}

static const char *const noise_names[] = {"quadratic", "uniform", "log-uniform"};
static const char *const schedule_names[] = {"step", "cosine"};

const char *wcm_noise_law_name(wcm_noise_law n) { return noise_names[n]; }
const char *wcm_lr_schedule_name(wcm_lr_schedule s) { return schedule_names[s]; }

int wcm_train_options_resolve(wcm_train_options *o, wcm_error *err) {
    if (!o->data) return wcm_fail(err, WCM_ERR_ARG, "no training data folder");
    if (!o->output) return wcm_fail(err, WCM_ERR_ARG, "no output file");
    size_t ol = strlen(o->output);
    if (ol < 12 || strcmp(o->output + ol - 12, ".safetensors"))
        return wcm_fail(err, WCM_ERR_ARG, "the output must be a .safetensors file, got '%s'", o->output);
    if (o->kind == WCM_NET_LOWPASS) o->rf = 40;
    if (o->levels < 1 || o->levels > WCM_MAX_LEVELS) return wcm_fail(err, WCM_ERR_ARG, "levels must be in 1..%d", WCM_MAX_LEVELS);
    if (o->kind == WCM_NET_CONDITIONAL && (o->scale < 0 || o->scale >= o->levels))
        return wcm_fail(err, WCM_ERR_ARG, "scale must be in 0..%d (J = %d levels)", o->levels - 1, o->levels);
    if (o->kind != WCM_NET_CONDITIONAL) o->scale = 0;
    if (o->crop < 0 || o->resize < 0 || o->patch < 0 || o->max_images < 0 || o->max_test_images < 0 || o->save_every < 0 ||
        o->max_steps < 0 || o->warmup_steps < 0)
        return wcm_fail(err, WCM_ERR_ARG, "sizes and counts must not be negative");
    if (o->batch < 1) return wcm_fail(err, WCM_ERR_ARG, "the batch must hold at least 1 image");
    if (o->accumulate < 1 || o->accumulate > o->batch)
        return wcm_fail(err, WCM_ERR_ARG, "accumulate must be in 1..batch (%d), got %d", o->batch, o->accumulate);
    if (!(o->lr > 0) || !isfinite(o->lr)) return wcm_fail(err, WCM_ERR_ARG, "the learning rate must be a positive number");
    if (!(o->ema >= 0 && o->ema < 1)) return wcm_fail(err, WCM_ERR_ARG, "the EMA decay must be in [0, 1), got %g", o->ema);
    if (o->test_dir && o->test_fraction > 0)
        return wcm_fail(err, WCM_ERR_ARG, "give a test folder or a test fraction, not both");
    if (o->test_fraction < 0) o->test_fraction = o->test_dir ? 0 : 0.1;
    if (!(o->test_fraction < 1)) return wcm_fail(err, WCM_ERR_ARG, "the test fraction must be below 1");
    /* The reference multiplies epochs and the halving period by 4^j at scale j
     * (the low-pass net counts as scale J-1): the images are 4^j times smaller. */
    const int j = o->kind == WCM_NET_CONDITIONAL ? o->scale : o->kind == WCM_NET_LOWPASS ? o->levels - 1 : 0;
    if (o->epochs < 0) o->epochs = 500 << (2 * j);
    if (o->lr_halve_every < 0) o->lr_halve_every = 50 << (2 * j);
    if (o->lr_halve_every < 1) return wcm_fail(err, WCM_ERR_ARG, "the halving period must be at least 1 epoch");
    return WCM_OK;
}

double wcm_train_lr(const wcm_train_options *o, int epoch, long long step, long long total_steps) {
    double lr = o->lr;
    if (o->lr_schedule == WCM_LR_COSINE) {
        const double progress = total_steps > 0 ? (double)step / (double)total_steps : 0;
        lr = 0.5 * o->lr * (1 + cos(M_PI * (progress < 1 ? progress : 1)));
    } else {
        lr = o->lr * pow(0.5, (double)(epoch / o->lr_halve_every));
    }
    if (o->warmup_steps > 0 && step < o->warmup_steps) lr *= (double)(step + 1) / (double)o->warmup_steps;
    return lr;
}

/* ---- the record in a checkpoint ----------------------------------------- */

#define PUT(key, ...) (snprintf(v, sizeof v, __VA_ARGS__), rc = rc ? rc : wcm_array_list_set_meta(m, "wcm.train." key, v, err))

int wcm_train_options_to_meta(const wcm_train_options *o, int noise_high, wcm_array_list *m, wcm_error *err) {
    char v[64];
    int rc = WCM_OK;
    PUT("kind", "%s", wcm_net_kind_name(o->kind));
    PUT("rf", "%d", o->rf);
    PUT("scale", "%d", o->kind == WCM_NET_CONDITIONAL ? o->scale : -1);
    PUT("levels", "%d", o->levels);
    PUT("crop", "%d", o->crop);
    PUT("celeba_crop", "%d", o->celeba_crop);
    PUT("resize", "%d", o->resize);
    PUT("patch", "%d", o->patch);
    PUT("batch_size", "%d", o->batch);
    PUT("accumulate", "%d", o->accumulate);
    PUT("lr", "%.17g", o->lr);
    PUT("lr_schedule", "%s", schedule_names[o->lr_schedule]);
    PUT("lr_halve_every", "%d", o->lr_halve_every);
    PUT("warmup_steps", "%d", o->warmup_steps);
    PUT("noise", "%s", noise_names[o->noise]);
    PUT("noise_high", "%d", noise_high);
    PUT("intensity", "%s", o->intensity ? "uniform" : "none"); /* conditional nets: always the default, unused */
    PUT("batch_norm", "%s", o->bn_frozen ? "frozen" : "batch");
    PUT("bn_running", "%s", o->bn_running_warmup ? "warmup" : "reference");
    PUT("flip", "%d", o->flip);
    PUT("sums", "%s", o->exact_sums ? "exact" : "fast");
    PUT("ema", "%.17g", o->ema);
    PUT("seed", "%llu", (unsigned long long)o->seed);
    PUT("epochs", "%d", o->epochs);
    PUT("max_images", "%d", o->max_images);
    PUT("max_test_images", "%d", o->max_test_images);
    PUT("test_fraction", "%.17g", o->test_fraction);
    if (!rc) rc = wcm_array_list_set_meta(m, "wcm.train.data", o->data, err);
    if (!rc) rc = wcm_array_list_set_meta(m, "wcm.train.test", o->test_dir ? o->test_dir : "", err);
    return rc;
}
#undef PUT

/* Options a resumed run keeps: metadata key, option, and the value to assume
 * when a checkpoint predates the key (NULL: not compared then). */
static const char *const kept_keys[][3] = {
    {"scale", "--scale", NULL},           {"levels", "--levels", NULL},
    {"crop", "--crop", NULL},             {"celeba_crop", "--celeba-crop", NULL},
    {"resize", "--resize", NULL},         {"patch", "--patch", NULL},
    {"batch_size", "--batch", NULL},      {"lr", "--lr", NULL},
    {"lr_schedule", "--lr-schedule", "step"}, {"lr_halve_every", "--lr-halve-every", NULL},
    {"warmup_steps", "--warmup", "0"},    {"noise", "--noise", NULL},
    {"seed", "--seed", NULL},             {"noise_high", "(the noise bound from the data)", NULL},
    {"intensity", "--intensity", "uniform"}, {"batch_norm", "--batch-norm", "batch"},
    {"bn_running", "--bn-running", "reference"}, {"flip", "--flip", "0"},
    {"ema", "--ema", "0"},                {"max_images", "--max-images", NULL},
    {"test_fraction", "--test-fraction", NULL}, {"test", "--test", NULL},
};

int wcm_train_check_resume(const char *path, const wcm_array_list *have, const wcm_array_list *want, wcm_error *err) {
    for (size_t i = 0; i < sizeof kept_keys / sizeof kept_keys[0]; i++) {
        char key[64];
        snprintf(key, sizeof key, "wcm.train.%s", kept_keys[i][0]);
        const char *h = wcm_array_list_get_meta(have, key), *w = wcm_array_list_get_meta(want, key);
        if (!h) h = kept_keys[i][2];
        if (!h || !w || !strcmp(h, w)) continue;
        return wcm_fail(err, WCM_ERR_ARG,
                        "%s was trained with %s %s, this run asks for %s %s: a resumed run keeps it (leave the option out, "
                        "or start a new run with --init)",
                        path, kept_keys[i][1], *h ? h : "(none)", kept_keys[i][1], *w ? w : "(none)");
    }
    return WCM_OK;
}

/* ---- options back from a checkpoint ------------------------------------- */

static int get_int(const wcm_array_list *m, const char *key, int64_t lo, int64_t hi, int *out, wcm_error *err) {
    char k[64];
    snprintf(k, sizeof k, "wcm.train.%s", key);
    const char *s = wcm_array_list_get_meta(m, k);
    int64_t v;
    if (!s) return WCM_OK;
    if (wcm_parse_int64(s, lo, hi, &v)) return wcm_fail(err, WCM_ERR_FORMAT, "%s '%.40s' is not a valid value", k, s);
    *out = (int)v;
    return WCM_OK;
}

static int get_double(const wcm_array_list *m, const char *key, double lo, double hi, double *out, wcm_error *err) {
    char k[64];
    snprintf(k, sizeof k, "wcm.train.%s", key);
    const char *s = wcm_array_list_get_meta(m, k);
    if (!s) return WCM_OK;
    if (wcm_parse_double(s, lo, hi, out)) return wcm_fail(err, WCM_ERR_FORMAT, "%s '%.40s' is not a valid value", k, s);
    return WCM_OK;
}

/* A key with one of `n` names: *out = its index. */
static int get_name(const wcm_array_list *m, const char *key, const char *const *names, int n, int *out, wcm_error *err) {
    char k[64];
    snprintf(k, sizeof k, "wcm.train.%s", key);
    const char *s = wcm_array_list_get_meta(m, k);
    if (!s) return WCM_OK;
    for (int i = 0; i < n; i++)
        if (!strcmp(s, names[i])) {
            *out = i;
            return WCM_OK;
        }
    return wcm_fail(err, WCM_ERR_FORMAT, "%s '%.40s' is not a known value", k, s);
}

int wcm_train_options_from_checkpoint(const char *path, wcm_train_options *o, wcm_array_list *meta, wcm_error *err) {
    wcm_array_list_init(meta);
    wcm_array_list l;
    wcm_array_list_init(&l);
    int rc = wcm_safetensors_read(path, &l, err);
    for (int i = 0; !rc && i < l.meta_count; i++) rc = wcm_array_list_set_meta(meta, l.meta_keys[i], l.meta_vals[i], err);
    wcm_array_list_free(&l);
    if (!rc) rc = wcm_train_options_from_meta(meta, o, err);
    if (rc) {
        wcm_array_list_free(meta);
        return wcm_fail_context(err, rc, "%s", path);
    }
    return WCM_OK;
}

int wcm_train_options_from_meta(const wcm_array_list *meta, wcm_train_options *o, wcm_error *err) {
    int rc = WCM_OK;
    const char *kind = wcm_array_list_get_meta(meta, "wcm.train.kind");
    if (!rc && (!kind || wcm_net_kind_parse(kind, &o->kind)))
        rc = wcm_fail(err, WCM_ERR_FORMAT, "no wcm.train.kind: not a checkpoint of wcm train");
    static const char *const on_off[][2] = {{"none", "uniform"}, {"batch", "frozen"}, {"reference", "warmup"}};
    int noise = o->noise, schedule = o->lr_schedule, intensity = o->intensity, frozen = o->bn_frozen,
        warm = 0, seed_ok = 0, scale = o->scale;
    const int BIG = 1 << 30;
    if (!rc) rc = get_int(meta, "rf", 0, 1000, &o->rf, err);
    if (!rc) rc = get_int(meta, "scale", -1, WCM_MAX_LEVELS, &scale, err);
    if (!rc) rc = get_int(meta, "levels", 1, WCM_MAX_LEVELS, &o->levels, err);
    if (!rc) rc = get_int(meta, "crop", 0, BIG, &o->crop, err);
    if (!rc) rc = get_int(meta, "celeba_crop", 0, 1, &o->celeba_crop, err);
    if (!rc) rc = get_int(meta, "resize", 0, BIG, &o->resize, err);
    if (!rc) rc = get_int(meta, "patch", 0, BIG, &o->patch, err);
    if (!rc) rc = get_int(meta, "batch_size", 1, BIG, &o->batch, err);
    if (!rc) rc = get_int(meta, "accumulate", 1, BIG, &o->accumulate, err);
    if (!rc) rc = get_double(meta, "lr", 1e-300, 1e300, &o->lr, err);
    if (!rc) rc = get_name(meta, "lr_schedule", schedule_names, 2, &schedule, err);
    if (!rc) rc = get_int(meta, "lr_halve_every", 1, BIG, &o->lr_halve_every, err);
    if (!rc) rc = get_int(meta, "warmup_steps", 0, BIG, &o->warmup_steps, err);
    if (!rc) rc = get_name(meta, "noise", noise_names, 3, &noise, err);
    if (!rc) rc = get_name(meta, "intensity", on_off[0], 2, &intensity, err);
    if (!rc) rc = get_name(meta, "batch_norm", on_off[1], 2, &frozen, err);
    if (!rc) rc = get_name(meta, "bn_running", on_off[2], 2, &warm, err); /* absent: the reference (older runs) */
    if (!rc) rc = get_int(meta, "flip", 0, 1, &o->flip, err);
    static const char *const sums[] = {"fast", "exact"};
    if (!rc) rc = get_name(meta, "sums", sums, 2, &o->exact_sums, err); /* absent: fast (older runs) */
    if (!rc) rc = get_double(meta, "ema", 0, 0.999999999, &o->ema, err);
    if (!rc) rc = get_int(meta, "epochs", 0, WCM_TRAIN_MAX_EPOCH, &o->epochs, err);
    if (!rc) rc = get_int(meta, "max_images", 0, BIG, &o->max_images, err);
    if (!rc) rc = get_int(meta, "max_test_images", 0, BIG, &o->max_test_images, err);
    if (!rc) rc = get_double(meta, "test_fraction", 0, 0.999999, &o->test_fraction, err);
    const char *seed = rc ? NULL : wcm_array_list_get_meta(meta, "wcm.train.seed");
    if (seed) {
        seed_ok = !wcm_parse_uint64(seed, UINT64_MAX, &o->seed);
        if (!seed_ok) rc = wcm_fail(err, WCM_ERR_FORMAT, "wcm.train.seed '%.40s' is not a seed", seed);
    }
    if (!rc) {
        o->scale = scale < 0 ? 0 : scale;
        o->noise = (wcm_noise_law)noise, o->lr_schedule = (wcm_lr_schedule)schedule;
        o->intensity = intensity, o->bn_frozen = frozen, o->bn_running_warmup = warm;
        const char *data = wcm_array_list_get_meta(meta, "wcm.train.data"), *test = wcm_array_list_get_meta(meta, "wcm.train.test");
        if (data) o->data = data;
        if (test) o->test_dir = *test ? test : NULL;
    }
    return rc;
}

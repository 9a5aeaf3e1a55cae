/* A whole training run (include/wcm/trainer.h): data, schedule, the
 * data-parallel step, evaluation, checkpoints and resumption. */
#include "trainer_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wcm/dataset.h"
#include "wcm/model.h"

/* Test batches use draws far above any training step (noise is a pure
 * function of the seed and the draw), so every epoch sees the same test noise. */
#define TEST_DRAW_BASE (1ULL << 39)
#define LEVEL_DRAW_BASE (1ULL << 40)
#define CALIBRATION_DRAW_BASE (1ULL << 38)
#define EVAL_CHUNK 64
#define CALIBRATION_BATCHES 16
/* rms(output) / rms(noise) below this: the net outputs ~0 in evaluation. */
#define COLLAPSE_RATIO 1e-3

static const double eval_sigma255[WCM_TRAIN_EVAL_LEVELS] = {5, 25, 100};

/* Everything a run holds. */
typedef struct {
    wcm_train_options o;
    wcm_train_callback cb;
    void *user;
    wcm_comm *comm;
    int rank, size;
    wcm_dataset train_ds, test_store;
    const wcm_dataset *test_ds;
    int ntrain, ntest, test_first, nbatches;
    int *order, *test_ids;
    wcm_batch_spec spec;
    wcm_net *net;
    wcm_trainer *t;
    wcm_train_state s;
    float *ema;        /* nparams + nrunning: the average of params and running_sd (o.ema > 0) */
    long long ema_updates;
    float *grad_sum;   /* nparams: the step's gradient over micro-batches and ranks */
    wcm_tensor noisy, noise, out;
    double baseline_sum; /* zero-output loss summed over this process's steps */
    long long baseline_steps;
    double test_noisy_psnr;
    double comm_seconds; /* in the gradient all-reduce, this process */
    long long saved_step; /* of the last checkpoint written (-1: none) */
    wcm_array_list resume_meta;
} run_state;

static double seconds_now(void) { return wcm_seconds(); }

static int report(run_state *r, wcm_train_progress *p) {
    return r->cb && r->rank == 0 ? r->cb(p, r->user) : 0;
}

static void say(run_state *r, wcm_train_event ev, const char *fmt, ...) {
    if (!r->cb || r->rank != 0) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    wcm_train_progress p = {0};
    p.event = ev;
    p.message = line;
    r->cb(&p, r->user);
}

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* ---- data ---------------------------------------------------------------- */

/* Rank 0 builds the cache first, so the other ranks map it instead of all building it. */
static int open_data(run_state *r, const char *dir, int max_images, wcm_dataset *ds, wcm_error *err) {
    const wcm_train_options *o = &r->o;
    wcm_dataset_options d = {o->celeba_crop ? 0 : o->crop, o->celeba_crop, o->resize, max_images, o->cache_dir, o->no_cache};
    int rc = r->rank == 0 ? wcm_dataset_open(ds, dir, &d, err) : WCM_OK;
    int bad = rc != 0;
    if (r->size > 1) {
        wcm_comm_broadcast(r->comm, &bad, sizeof bad, 0, NULL);
        if (bad && r->rank != 0) return wcm_fail(err, WCM_ERR_IO, "%s: rank 0 could not open the data", dir);
        if (r->rank != 0) rc = wcm_dataset_open(ds, dir, &d, err);
    }
    if (rc) return rc;
    say(r, WCM_TRAIN_INFO, "%s: %d images of %dx%d%s (%d unreadable and %d too small skipped)%s%s", dir, ds->count, ds->w,
        ds->h, o->celeba_crop ? " (CelebA crop)" : "", ds->unreadable, ds->too_small, ds->cache_hit ? ", cache " : "",
        ds->cache_hit ? ds->cache_path : "");
    return WCM_OK;
}

static int load_data(run_state *r, wcm_error *err) {
    wcm_train_options *o = &r->o;
    int rc = open_data(r, o->data, o->max_images, &r->train_ds, err);
    if (rc) return rc;
    r->test_ds = &r->train_ds;
    r->ntrain = r->train_ds.count;
    if (o->test_dir) {
        if ((rc = open_data(r, o->test_dir, o->max_test_images, &r->test_store, err))) return rc;
        r->test_ds = &r->test_store, r->ntest = r->test_store.count;
        if (r->test_store.h != r->train_ds.h || r->test_store.w != r->train_ds.w)
            return wcm_fail(err, WCM_ERR_SHAPE, "test images are %dx%d, training images %dx%d", r->test_store.w,
                            r->test_store.h, r->train_ds.w, r->train_ds.h);
    } else if (o->test_fraction > 0) {
        int ntest = (int)(o->test_fraction * r->train_ds.count + 0.5);
        if (ntest >= r->train_ds.count) ntest = r->train_ds.count - 1;
        if (o->max_test_images > 0 && ntest > o->max_test_images) ntest = o->max_test_images;
        r->ntest = ntest, r->ntrain = r->train_ds.count - ntest, r->test_first = r->ntrain;
    }
    r->order = malloc(sizeof(int) * (size_t)r->ntrain);
    r->test_ids = malloc(sizeof(int) * ((size_t)r->ntest + 1));
    if (!r->order || !r->test_ids) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    for (int i = 0; i < r->ntest; i++) r->test_ids[i] = r->test_first + i;
    if (o->batch > r->ntrain) {
        say(r, WCM_TRAIN_WARNING, "batch %d is larger than the %d training images: using batches of %d (one step per epoch)",
            o->batch, r->ntrain, r->ntrain);
        o->batch = r->ntrain;
    }
    if (o->accumulate > o->batch) o->accumulate = o->batch;
    wcm_batch_spec spec = {o->kind, o->scale, o->levels, o->patch, o->noise == WCM_NOISE_QUADRATIC, 255,
                           o->kind != WCM_NET_CONDITIONAL && o->intensity, 0, o->seed, o->flip,
                           o->noise == WCM_NOISE_LOG_UNIFORM};
    for (int i = 0; i < r->ntrain; i++) r->order[i] = i;
    if (o->kind == WCM_NET_CONDITIONAL)
        spec.noise_high = wcm_noise_high_for_scale(wcm_dataset_detail_max(&r->train_ds, r->order, r->ntrain, o->scale));
    r->spec = spec;
    r->nbatches = (r->ntrain + o->batch - 1) / o->batch;
    int h, w;
    return wcm_batch_geometry(&r->train_ds, &r->spec, &h, &w, err);
}

/* ---- the network: fresh, from --init, or resumed ------------------------ */

/* --init MODEL[:NET]: the weights and batch-norm buffers of a network of the same
 * architecture: a single-network model, or the net "low" / "0".."J-1" of a
 * multi-scale model (":NET" is split off only when MODEL itself does not exist). */
static int init_from_model(run_state *r, int *bn_was_frozen, wcm_error *err) {
    char path[4096];
    const char *which;
    int rc = wcm_model_split_net_spec(r->o.init, path, sizeof path, &which, err);
    if (rc) return rc;
    wcm_model m;
    rc = wcm_model_load(path, &m, err);
    if (rc) return rc;
    wcm_net *src = which ? wcm_model_get_net(&m, which) : (m.multiscale ? NULL : m.net), *net = r->net;
    int ok = src && wcm_net_get_kind(src) == wcm_net_get_kind(net) && wcm_net_nparams(src) == wcm_net_nparams(net) &&
             wcm_net_nrunning(src) == wcm_net_nrunning(net) && wcm_net_nominal_rf(src) == wcm_net_nominal_rf(net);
    if (ok) {
        memcpy(wcm_net_params(net), wcm_net_params(src), wcm_net_nparams(net) * sizeof(float));
        memcpy(wcm_net_running_sd(net), wcm_net_running_sd(src), wcm_net_nrunning(net) * sizeof(float));
        const char *bn = wcm_array_list_get_meta(&m.meta, "wcm.train.batch_norm");
        /* A net of an assembled model carries the running_sd it is used with:
         * frozen fine-tuning keeps them rather than recalibrating. */
        *bn_was_frozen = m.multiscale || (bn && !strcmp(bn, "frozen"));
        wcm_net_invalidate(net);
        say(r, WCM_TRAIN_INFO, "initialised from %s", r->o.init);
    }
    const int multiscale = m.multiscale;
    wcm_model_free(&m);
    if (ok) return WCM_OK;
    if (multiscale && !which)
        return wcm_fail(err, WCM_ERR_ARG, "--init %s: a multi-scale model; name one of its networks as %s:low, %s:0, ...",
                        r->o.init, r->o.init, r->o.init);
    return wcm_fail(err, WCM_ERR_ARG, "--init %s: not a single %s network of this architecture", r->o.init,
                    wcm_net_kind_name(wcm_net_get_kind(net)));
}

/* With an EMA, the checkpoint's "net.*" hold the average (what every other
 * command uses) and "train.params" / "train.running" the trained weights. */
static int load_resume_arrays(run_state *r, wcm_error *err) {
    wcm_array_list l;
    wcm_array_list_init(&l);
    int rc = wcm_safetensors_read(r->o.output, &l, err);
    const size_t np = wcm_net_nparams(r->net), nr = wcm_net_nrunning(r->net);
    const wcm_array *p = rc ? NULL : wcm_array_list_find(&l, "train.params");
    const wcm_array *q = rc ? NULL : wcm_array_list_find(&l, "train.running");
    const char *updates = rc ? NULL : wcm_array_list_get_meta(&l, "wcm.train.ema_updates");
    if (!rc && r->ema) {
        int64_t n = 0;
        if (!p || !q || wcm_array_count(p) != (int64_t)np || wcm_array_count(q) != (int64_t)nr || !updates ||
            wcm_parse_int64(updates, 0, INT64_MAX / 2, &n))
            rc = wcm_fail(err, WCM_ERR_FORMAT, "%s: the weight average's state (train.params, train.running) is missing",
                          r->o.output);
        else {
            memcpy(r->ema, wcm_net_params(r->net), np * sizeof(float));
            memcpy(r->ema + np, wcm_net_running_sd(r->net), nr * sizeof(float));
            memcpy(wcm_net_params(r->net), p->data, np * sizeof(float));
            memcpy(wcm_net_running_sd(r->net), q->data, nr * sizeof(float));
            wcm_net_invalidate(r->net);
            r->ema_updates = n;
        }
    }
    wcm_array_list_free(&l);
    return rc;
}

static int resume(run_state *r, const wcm_array_list *want, wcm_error *err) {
    const wcm_train_options *o = &r->o;
    wcm_array_list have;
    int rc = wcm_train_checkpoint_load(o->output, &r->t, &have, err);
    if (rc) return wcm_fail_context(err, rc, "cannot resume");
    r->net = r->t->net;
    const char *hk = wcm_array_list_get_meta(&have, "wcm.train.kind");
    if (wcm_net_get_kind(r->net) != o->kind || (o->kind != WCM_NET_LOWPASS && wcm_net_nominal_rf(r->net) != o->rf) || !hk)
        rc = wcm_fail(err, WCM_ERR_ARG,
                      "cannot resume: %s holds a %s network of RF %d, this run asks for a %s network of RF %d "
                      "(a checkpoint of another architecture)",
                      o->output, wcm_net_kind_name(wcm_net_get_kind(r->net)), wcm_net_rf(r->net), wcm_net_kind_name(o->kind),
                      o->rf);
    if (!rc) rc = wcm_train_check_resume(o->output, &have, want, err);
    if (!rc && (rc = wcm_train_state_from_meta(&have, &r->s, err)))
        rc = wcm_fail_context(err, rc, "cannot resume: %s has a damaged training state", o->output);
    if (!rc && r->s.batch >= r->nbatches)
        rc = wcm_fail(err, WCM_ERR_ARG,
                      "cannot resume: %s stopped at batch %d of an epoch, but the data gives %d batches of %d "
                      "(did the data change?)",
                      o->output, r->s.batch, r->nbatches, o->batch);
    const char *tn = wcm_array_list_get_meta(&have, "wcm.train.test_noisy_psnr");
    r->test_noisy_psnr = tn ? atof(tn) : NAN;
    wcm_array_list_free(&have);
    return rc;
}

/* --batch-norm frozen, fresh run (not from a net trained frozen): running_sd
 * becomes the root mean batch variance over the first CALIBRATION_BATCHES
 * batches of epoch 1, then stays fixed. Every rank computes the same. */
static int calibrate_batch_norm(run_state *r, wcm_error *err) {
    wcm_trainer *t = r->t;
    double *acc = calloc((size_t)wcm_net_nlayers(t->net) * WCM_CHANNELS, sizeof(double));
    if (!acc) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    wcm_epoch_order(r->o.seed, 0, r->ntrain, r->order);
    int nb = 0, rc = 0, batch = r->o.batch;
    for (; nb < CALIBRATION_BATCHES && nb * batch < r->ntrain && !rc; nb++) {
        int first = nb * batch, cnt = r->ntrain - first < batch ? r->ntrain - first : batch;
        rc = wcm_make_batch(&r->train_ds, &r->spec, r->order + first, cnt, CALIBRATION_DRAW_BASE + (uint64_t)nb, &r->noisy,
                            &r->noise, err);
        if (!rc) rc = wcm_train_bn_accumulate(t, &r->noisy, acc, err);
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
        say(r, WCM_TRAIN_INFO, "batch norm frozen: running_sd from the statistics of %d batches (geometric mean change x%.3f)",
            nb, count ? exp((after - before) / count) : 1.0);
    }
    free(acc);
    return rc;
}

static int setup_network(run_state *r, wcm_error *err) {
    const wcm_train_options *o = &r->o;
    wcm_array_list want;
    wcm_array_list_init(&want);
    int rc = wcm_train_options_to_meta(o, r->spec.noise_high, &want, err);
    const int resumed = o->resume && file_exists(o->output);
    int init_frozen = 0;
    if (!rc && resumed) {
        rc = resume(r, &want, err);
    } else if (!rc) {
        if (o->resume) say(r, WCM_TRAIN_INFO, "no checkpoint at %s yet: starting from the beginning", o->output);
        rc = wcm_net_create(&r->net, o->kind, o->rf, err);
        if (!rc) rc = wcm_trainer_create(&r->t, r->net, err);
        if (!rc) wcm_net_init_reference(r->net, o->seed);
        if (!rc && o->init) rc = init_from_model(r, &init_frozen, err);
    }
    wcm_array_list_free(&want);
    if (rc) return rc;
    wcm_trainer *t = r->t;
    const size_t np = wcm_net_nparams(r->net), nr = wcm_net_nrunning(r->net);
    r->grad_sum = malloc(np * sizeof(float));
    if (o->ema > 0) r->ema = malloc((np + nr) * sizeof(float));
    if (!r->grad_sum || (o->ema > 0 && !r->ema)) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    if (r->ema) {
        memcpy(r->ema, wcm_net_params(r->net), np * sizeof(float));
        memcpy(r->ema + np, wcm_net_running_sd(r->net), nr * sizeof(float));
        if (resumed && (rc = load_resume_arrays(r, err))) return rc;
    }
    t->bn_frozen = o->bn_frozen;
    t->exact = o->exact_sums;
    t->running_warmup = o->bn_running_warmup;
    t->comm = r->comm;
    if (resumed) r->saved_step = r->s.step;
    if (resumed)
        say(r, WCM_TRAIN_INFO, "resuming %s at epoch %d, batch %d (step %lld)", o->output, r->s.epoch + 1, r->s.batch,
            r->s.step);
    if (o->bn_frozen && !resumed && !init_frozen) rc = calibrate_batch_norm(r, err);
    return rc;
}

/* ---- evaluation ------------------------------------------------------------ */

/* Mean over images of 10 log10(1 / mean(noise^2)): the PSNR of the noisy input. */
static double noisy_psnr(const wcm_tensor *noise) {
    const size_t per = (size_t)noise->h * noise->w * noise->c;
    double sum = 0;
    for (int i = 0; i < noise->n; i++) {
        double se = 0;
        for (size_t k = 0; k < per; k++) se += (double)noise->data[i * per + k] * noise->data[i * per + k];
        const double mse = se / (double)per;
        sum += 10.0 * log10(1.0 / (mse > 1e-20 ? mse : 1e-20));
    }
    return sum;
}

static double sum_squares(const wcm_tensor *x) {
    double s = 0;
    const size_t n = wcm_tensor_count(x);
    for (size_t i = 0; i < n; i++) s += (double)x->data[i] * x->data[i];
    return s;
}

/* Swaps the network's parameters and running_sd with the weight average (twice: back). */
static void swap_ema(run_state *r) {
    if (!r->ema) return;
    const size_t np = wcm_net_nparams(r->net), nr = wcm_net_nrunning(r->net);
    float *p = wcm_net_params(r->net), *q = wcm_net_running_sd(r->net);
    for (size_t i = 0; i < np; i++) {
        float v = p[i];
        p[i] = r->ema[i], r->ema[i] = v;
    }
    for (size_t i = 0; i < nr; i++) {
        float v = q[i];
        q[i] = r->ema[np + i], r->ema[np + i] = v;
    }
    wcm_net_invalidate(r->net);
}

/* Whole test images in inference mode (the weight average when there is
 * one), the same noise every epoch: at the training noise law and at each
 * fixed level, the denoised and the noisy PSNR; chunks spread over ranks. */
static int evaluate(run_state *r, wcm_train_progress *p, wcm_error *err) {
    enum { PSNR, NOISY, OUT2, NOISE2, LEVELS };
    double acc[LEVELS + 2 * WCM_TRAIN_EVAL_LEVELS] = {0};
    wcm_batch_spec spec = r->spec;
    spec.patch = 0, spec.flip = 0;
    int rc = WCM_OK;
    swap_ema(r);
    for (int level = -1; level < WCM_TRAIN_EVAL_LEVELS && !rc; level++) {
        spec.fixed_sigma = level < 0 ? 0 : eval_sigma255[level] / 255.0;
        const uint64_t base = level < 0 ? TEST_DRAW_BASE : LEVEL_DRAW_BASE * (uint64_t)(level + 1);
        for (int b = 0; !rc && b * EVAL_CHUNK < r->ntest; b++) {
            if (b % r->size != r->rank) continue;
            int cnt = r->ntest - b * EVAL_CHUNK < EVAL_CHUNK ? r->ntest - b * EVAL_CHUNK : EVAL_CHUNK;
            rc = wcm_make_batch(r->test_ds, &spec, r->test_ids + b * EVAL_CHUNK, cnt, base + (uint64_t)b, &r->noisy,
                                &r->noise, err);
            if (!rc) rc = wcm_net_forward(r->net, &r->noisy, &r->out, err);
            if (rc) break;
            const double denoised = wcm_batch_psnr(&r->out, &r->noise) * cnt, noisy = noisy_psnr(&r->noise);
            if (level < 0) {
                acc[PSNR] += denoised, acc[NOISY] += noisy;
                acc[OUT2] += sum_squares(&r->out), acc[NOISE2] += sum_squares(&r->noise);
            } else {
                acc[LEVELS + 2 * level] += denoised, acc[LEVELS + 2 * level + 1] += noisy;
            }
        }
    }
    swap_ema(r);
    if (!rc) rc = wcm_comm_allreduce_double(r->comm, acc, sizeof acc / sizeof acc[0], err);
    if (rc) return rc;
    const double n = r->ntest;
    p->test_psnr = acc[PSNR] / n, p->test_noisy_psnr = acc[NOISY] / n;
    p->output_ratio = acc[NOISE2] > 0 ? sqrt(acc[OUT2] / acc[NOISE2]) : NAN;
    p->collapsed = p->output_ratio < COLLAPSE_RATIO;
    for (int l = 0; l < WCM_TRAIN_EVAL_LEVELS; l++) {
        p->sigma255[l] = eval_sigma255[l];
        p->level_psnr[l] = acc[LEVELS + 2 * l] / n, p->level_noisy_psnr[l] = acc[LEVELS + 2 * l + 1] / n;
    }
    r->test_noisy_psnr = p->test_noisy_psnr;
    return WCM_OK;
}

/* ---- checkpoints --------------------------------------------------------- */

/* Rank 0 writes; every rank learns whether that worked. */
static int save(run_state *r, wcm_error *err) {
    int rc = WCM_OK;
    if (r->rank == 0) {
        wcm_array_list m, extra;
        wcm_array_list_init(&m), wcm_array_list_init(&extra);
        rc = wcm_train_options_to_meta(&r->o, r->spec.noise_high, &m, err);
        if (!rc) rc = wcm_train_state_to_meta(&r->s, &m, err);
        char v[64];
        snprintf(v, sizeof v, "%.17g", r->baseline_steps ? r->baseline_sum / r->baseline_steps : 0.0);
        if (!rc) rc = wcm_array_list_set_meta(&m, "wcm.train.baseline_loss", v, err);
        snprintf(v, sizeof v, "%.17g", r->test_noisy_psnr);
        if (!rc && isfinite(r->test_noisy_psnr)) rc = wcm_array_list_set_meta(&m, "wcm.train.test_noisy_psnr", v, err);
        const float *ep = NULL, *er = NULL;
        if (!rc && r->ema) {
            const size_t np = wcm_net_nparams(r->net), nr = wcm_net_nrunning(r->net);
            snprintf(v, sizeof v, "%lld", r->ema_updates);
            rc = wcm_array_list_set_meta(&m, "wcm.train.ema_updates", v, err);
            wcm_array a = {0}, b = {0};
            a.name = strdup("train.params"), b.name = strdup("train.running");
            a.ndim = b.ndim = 1, a.shape[0] = (int64_t)np, b.shape[0] = (int64_t)nr;
            a.data = malloc(np * sizeof(float)), b.data = malloc(nr * sizeof(float));
            if (!rc && (!a.name || !b.name || !a.data || !b.data)) rc = wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
            if (!rc) {
                memcpy(a.data, wcm_net_params(r->net), np * sizeof(float));
                memcpy(b.data, wcm_net_running_sd(r->net), nr * sizeof(float));
                rc = wcm_array_list_push(&extra, &a, err);
                if (!rc) rc = wcm_array_list_push(&extra, &b, err);
            }
            wcm_array_free(&a), wcm_array_free(&b);
            ep = r->ema, er = r->ema + np;
        }
        if (!rc) rc = wcm_train_checkpoint_save_with(r->o.output, r->t, &m, &extra, ep, er, err);
        if (!rc) r->saved_step = r->s.step;
        wcm_array_list_free(&m), wcm_array_list_free(&extra);
    }
    if (r->size > 1) {
        int bad = rc != 0;
        wcm_comm_broadcast(r->comm, &bad, sizeof bad, 0, NULL);
        if (bad && r->rank != 0) rc = wcm_fail(err, WCM_ERR_IO, "rank 0 could not write the checkpoint");
    }
    return rc;
}

static int write_log(run_state *r, wcm_error *err) {
    if (r->rank != 0) return WCM_OK;
    char path[4096], *csv;
    size_t used;
    int rc = wcm_train_state_log_csv(&r->s, &csv, &used, err);
    if (rc) return rc;
    snprintf(path, sizeof path, "%.*s.log.csv", (int)(strlen(r->o.output) - 12), r->o.output);
    rc = wcm_write_file_atomic(path, csv, used, err);
    free(csv);
    return rc;
}

/* ---- one optimiser step ---------------------------------------------------- */

double wcm_ema_update(float *ema, const float *x, size_t n, double d, long long t) {
    const double warm = (1.0 + (double)t) / (10.0 + (double)t), decay = warm < d ? warm : d;
    const float a = (float)decay, b = (float)(1.0 - decay);
    for (size_t i = 0; i < n; i++) ema[i] = a * ema[i] + b * x[i];
    return decay;
}

/* The step's batch (global positions first .. first + G - 1 of the epoch
 * order) split over ranks, then micro-batches; sums the gradient, loss, PSNR
 * and zero-output loss over all parts; one Adam step. With exact sums each
 * micro-batch's gradient is already that of all ranks' parts (the "group"),
 * the same on every rank, so only the micro-batches are added. */
static int train_step(run_state *r, int first, int G, double lr, double *loss, double *psnr, wcm_error *err) {
    wcm_trainer *t = r->t;
    const int K = r->o.accumulate;
    const size_t np = wcm_net_nparams(r->net);
    /* the gradient stays where backward left it */
    const int whole = K == 1 && (r->size == 1 || t->exact);
    int rfirst, rcount, rc = WCM_OK;
    wcm_comm_share(G, r->rank, r->size, &rfirst, &rcount);
    double sums[3] = {0}; /* loss, PSNR x images, zero-output loss */
    t->loss_batch = G;
    if (!whole) memset(r->grad_sum, 0, np * sizeof(float));
    for (int k = 0; k < K && !rc; k++) {
        int mf, mc, anywhere = 0, before = 0;
        for (int q = 0; q < r->size; q++) { /* micro-batch k on rank q (every rank knows every share) */
            int qf, qc, kf, kc;
            wcm_comm_share(G, q, r->size, &qf, &qc);
            wcm_comm_share(qc, k, K, &kf, &kc);
            anywhere += kc;
            before += q < r->rank ? kc : 0;
        }
        t->group_images = anywhere, t->group_first = before;
        if (!anywhere) continue; /* a small last batch: no rank has this micro-batch */
        wcm_comm_share(rcount, k, K, &mf, &mc);
        if (!mc) {
            rc = wcm_train_participate(t, err);
            continue;
        }
        double part_loss;
        rc = wcm_make_batch_part(&r->train_ds, &r->spec, r->order + first, rfirst + mf, mc, (uint64_t)r->s.step, &r->noisy,
                                 &r->noise, err);
        if (!rc) rc = wcm_train_gradient(t, &r->noisy, &r->noise, &part_loss, &r->out, err);
        if (rc) break;
        sums[0] += part_loss;
        sums[1] += wcm_batch_psnr(&r->out, &r->noise) * mc;
        sums[2] += sum_squares(&r->noise) / G;
        if (!whole) {
            const float *g = t->grad;
            float *host = NULL;
            if (!wcm_context_host_visible(wcm_ctx(t->ctx))) {
                if (!(host = malloc(np * sizeof(float)))) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
                rc = wcm_memcpy_to_host(wcm_ctx(t->ctx), host, t->grad, np * sizeof(float), err);
                g = host;
            }
            for (size_t i = 0; !rc && i < np; i++) r->grad_sum[i] += g[i];
            free(host);
        }
    }
    if (rc) return rc;
    const double c0 = seconds_now();
    if (!whole && !t->exact) rc = wcm_comm_allreduce_float(r->comm, r->grad_sum, np, err);
    if (!rc) rc = wcm_comm_allreduce_double(r->comm, sums, 3, err);
    r->comm_seconds += seconds_now() - c0;
    if (!rc && !whole) rc = wcm_memcpy_to_backend(wcm_ctx(t->ctx), t->grad, r->grad_sum, np * sizeof(float), err);
    if (rc) return rc;
    *loss = sums[0], *psnr = sums[1] / G;
    r->baseline_sum += sums[2], r->baseline_steps++;
    if (!isfinite(*loss) || !wcm_trainer_grad_finite(t)) return WCM_ERR_NUMERIC; /* message by the caller */
    wcm_adam_step(t, lr);
    if (r->ema) {
        wcm_ema_update(r->ema, wcm_net_params(r->net), np, r->o.ema, r->ema_updates);
        wcm_ema_update(r->ema + np, wcm_net_running_sd(r->net), wcm_net_nrunning(r->net), r->o.ema, r->ema_updates);
        r->ema_updates++;
    }
    return WCM_OK;
}

/* ---- the run ---------------------------------------------------------------- */

static void free_run(run_state *r) {
    wcm_tensor_free(&r->noisy), wcm_tensor_free(&r->noise), wcm_tensor_free(&r->out);
    wcm_trainer_free(r->t);
    wcm_net_free(r->net);
    wcm_train_state_free(&r->s);
    free(r->order), free(r->test_ids), free(r->ema), free(r->grad_sum);
    wcm_dataset_close(&r->train_ds);
    if (r->o.test_dir) wcm_dataset_close(&r->test_store);
}

static void describe_run(run_state *r) {
    const wcm_train_options *o = &r->o;
    int h, w;
    wcm_batch_geometry(&r->train_ds, &r->spec, &h, &w, NULL);
    char desc[256];
    wcm_net_describe(r->net, desc, sizeof desc);
    const char *law = o->noise == WCM_NOISE_LOG_UNIFORM ? "sigma log-uniform over 3 decades below k/255"
                      : o->noise == WCM_NOISE_QUADRATIC ? "sigma = (k/255)^2" : "sigma = k/255";
    say(r, WCM_TRAIN_INFO,
        "training %s\n  %d training images (%s %dx%d%s), %d test images; batch %d%s, %d steps per epoch%s\n"
        "  noise: %s, k < %d%s%s; lr %g (%s%s); %d epochs%s",
        desc, r->ntrain, o->patch ? "patches" : "whole", w, h, o->flip ? ", random flips" : "", r->ntest, o->batch,
        o->accumulate > 1 ? " in micro-batches" : "", r->nbatches, r->size > 1 ? " over several processes" : "", law,
        r->spec.noise_high, o->kind == WCM_NET_CONDITIONAL ? " (255 x max|detail|)" : "",
        r->spec.rescale ? ", intensity x U(0,1)" : "", o->lr, wcm_lr_schedule_name(o->lr_schedule),
        o->warmup_steps ? ", warm-up" : "", o->epochs, o->ema > 0 ? "; weight average (EMA)" : "");
    if (r->size > 1 || o->accumulate > 1)
        say(r, WCM_TRAIN_INFO, "  %d process%s x %d micro-batch%s per step (%s communicator)", r->size,
            r->size > 1 ? "es" : "", o->accumulate, o->accumulate > 1 ? "es" : "", wcm_comm_name(r->comm));
}

/* Activations of this process's micro-batch, refused when they cannot fit rather than swap. */
static int check_memory(run_state *r, wcm_error *err) {
    int h, w;
    wcm_batch_geometry(&r->train_ds, &r->spec, &h, &w, NULL);
    const double micro = ceil((double)r->o.batch / r->size / r->o.accumulate);
    const double need = micro * h * w * WCM_CHANNELS * sizeof(float) * (wcm_net_nlayers(r->net) + 2);
    const double ram = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    if (ram > 0 && need > 0.8 * ram)
        return wcm_fail(err, WCM_ERR_NOMEM,
                        "a micro-batch of %.0f at %dx%d needs %.1f GB of activations, this machine has %.1f GB: use "
                        "--patch, --accumulate or a smaller --batch",
                        micro, w, h, need / 1e9, ram / 1e9);
    return WCM_OK;
}

static int run_epochs(run_state *r, wcm_error *err) {
    const wcm_train_options *o = &r->o;
    wcm_train_state *s = &r->s;
    const long long total = (long long)o->epochs * r->nbatches, start_step = s->step;
    const double run_start = seconds_now();
    double last_save = run_start;
    long long images = 0;
    int stop = 0;
    wcm_train_progress p = {0};
    p.epochs = o->epochs, p.nbatches = r->nbatches, p.total_steps = total;
    while (s->epoch < o->epochs && !stop) {
        double epoch_start = seconds_now(), lr = 0;
        wcm_epoch_order(o->seed, (uint64_t)s->epoch, r->ntrain, r->order);
        while (s->batch < r->nbatches && !stop) {
            const int first = s->batch * o->batch, G = r->ntrain - first < o->batch ? r->ntrain - first : o->batch;
            double loss = 0, psnr = 0;
            lr = wcm_train_lr(o, s->epoch, s->step, total);
            int rc = train_step(r, first, G, lr, &loss, &psnr, err);
            if (rc == WCM_ERR_NUMERIC) {
                char kept[4200] = "no checkpoint was written";
                if (r->saved_step >= 0)
                    snprintf(kept, sizeof kept, "%s keeps the last good checkpoint (step %lld)", o->output, r->saved_step);
                return wcm_fail(err, WCM_ERR_NUMERIC,
                                "the %s became NaN or infinite at epoch %d, batch %d (step %lld): stopping; try a lower "
                                "--lr or check the data; %s",
                                isfinite(loss) ? "gradient" : "loss", s->epoch + 1, s->batch + 1, s->step + 1, kept);
            }
            if (rc) return rc;
            s->loss_sum += loss, s->psnr_sum += psnr, s->step++, s->batch++;
            images += G;
            const double now = seconds_now(), elapsed = now - run_start;
            p.event = WCM_TRAIN_STEP, p.epoch = s->epoch + 1, p.batch = s->batch, p.step = s->step;
            p.loss = s->loss_sum / s->batch, p.psnr = s->psnr_sum / s->batch, p.lr = lr;
            p.step_loss = loss, p.comm_seconds = r->comm_seconds + r->t->exact_comm_seconds;
            p.images_per_s = elapsed > 0 ? images / elapsed : 0;
            long long left = total - s->step;
            if (o->max_steps > 0 && o->max_steps - s->step < left) left = o->max_steps - s->step;
            p.eta_s = left * elapsed / (double)(s->step - start_step);
            if (o->minutes > 0 && o->minutes * 60 - elapsed < p.eta_s) p.eta_s = o->minutes * 60 - elapsed;
            p.seconds = s->seconds + (now - epoch_start);
            int want_stop = report(r, &p) != 0;
            want_stop |= (o->minutes > 0 && elapsed >= o->minutes * 60) || (o->max_steps > 0 && s->step >= o->max_steps);
            int flags[2] = {want_stop, (o->save_every > 0 && s->step % o->save_every == 0) ||
                                           (o->save_minutes > 0 && now - last_save >= o->save_minutes * 60)};
            if (r->size > 1 && (rc = wcm_comm_broadcast(r->comm, flags, sizeof flags, 0, err))) return rc;
            stop = flags[0];
            if ((stop || flags[1]) && s->batch < r->nbatches) {
                s->seconds += seconds_now() - epoch_start, epoch_start = seconds_now();
                if ((rc = save(r, err))) return rc;
                last_save = seconds_now();
            }
        }
        if (stop && s->batch < r->nbatches) break;
        p.test_psnr = p.test_noisy_psnr = p.output_ratio = NAN;
        p.collapsed = 0;
        int rc = r->ntest ? evaluate(r, &p, err) : WCM_OK;
        if (rc) return rc;
        s->seconds += seconds_now() - epoch_start;
        wcm_epoch_row row = {s->epoch + 1, s->loss_sum / r->nbatches, s->psnr_sum / r->nbatches, p.test_psnr, lr, s->seconds};
        if ((rc = wcm_train_state_add_row(s, &row, err))) return rc;
        s->epoch++, s->batch = 0, s->loss_sum = s->psnr_sum = 0;
        if ((rc = save(r, err)) || (rc = write_log(r, err))) return rc;
        last_save = seconds_now();
        p.event = WCM_TRAIN_EPOCH, p.epoch = s->epoch, p.batch = r->nbatches, p.row = &s->rows[s->nrows - 1];
        p.loss = row.loss, p.psnr = row.psnr, p.seconds = s->seconds, p.state = s;
        p.baseline_loss = r->baseline_steps ? r->baseline_sum / r->baseline_steps : NAN;
        p.stopped = stop && s->epoch < o->epochs;
        int want_stop = report(r, &p) != 0;
        want_stop |= (o->max_steps > 0 && s->step >= o->max_steps) ||
                     (o->minutes > 0 && seconds_now() - run_start >= o->minutes * 60);
        if (r->size > 1 && (rc = wcm_comm_broadcast(r->comm, &want_stop, sizeof want_stop, 0, err))) return rc;
        stop = want_stop && s->epoch < o->epochs;
    }
    if (stop) {
        say(r, WCM_TRAIN_INFO, "stopped at epoch %d, batch %d (step %lld): checkpoint %s; continue with --resume",
            s->epoch + 1, s->batch, s->step, o->output);
    } else {
        say(r, WCM_TRAIN_INFO, "done: %d epochs, %lld steps; model %s, log %.*s.log.csv", s->epoch, s->step, o->output,
            (int)(strlen(o->output) - 12), o->output);
    }
    if (r->size > 1 || o->accumulate > 1) {
        const double comm = r->comm_seconds + r->t->exact_comm_seconds, total = seconds_now() - run_start;
        say(r, WCM_TRAIN_INFO, "%s: %.3f s of %.3f s (%.1f%%)",
            r->t->exact ? "collectives (exact sums and the step's totals)" : "gradient all-reduce", comm, total,
            100.0 * comm / total);
    }
    return WCM_OK;
}

int wcm_train_run(const wcm_train_options *opts, wcm_train_callback cb, void *user, wcm_error *err) {
    run_state *r = calloc(1, sizeof *r);
    if (!r) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    r->o = *opts, r->cb = cb, r->user = user;
    r->comm = opts->comm ? opts->comm : wcm_comm_serial();
    r->rank = wcm_comm_rank(r->comm), r->size = wcm_comm_size(r->comm);
    r->test_noisy_psnr = NAN;
    r->saved_step = -1;
    int rc = wcm_train_options_resolve(&r->o, err);
    if (!rc && !r->o.resume && !r->o.force && file_exists(r->o.output))
        rc = wcm_fail(err, WCM_ERR_ARG, "%s exists: add --resume to continue that run, or --force to start over",
                      r->o.output);
    if (!rc && r->o.init && r->o.resume)
        rc = wcm_fail(err, WCM_ERR_ARG, "--init starts a new run from a model; it cannot be combined with --resume");
    if (!rc && r->o.intensity == 0 && r->o.kind == WCM_NET_CONDITIONAL)
        rc = wcm_fail(err, WCM_ERR_ARG, "--intensity applies to flat and low-pass nets (conditional nets see the data as it is)");
    if (!rc) rc = load_data(r, err);
    if (!rc) rc = setup_network(r, err);
    if (!rc) {
        describe_run(r);
        rc = check_memory(r, err);
    }
    if (!rc) rc = run_epochs(r, err);
    free_run(r);
    free(r);
    return rc;
}

/* The library trainer (wcm/trainer.h) from C, on a folder of 12 synthetic
 * 24x24 images (no ../shared needed):
 *  - a run calls the progress callback for every step and epoch, with the
 *    test and noisy-input PSNRs per noise level, an ETA and images/s;
 *  - stopped after 5 steps and resumed (options from the checkpoint):
 *    equal, bit for bit, to the uninterrupted run;
 *  - a batch larger than the data is reduced with a warning;
 *  - a resumed run refuses a changed --batch by name;
 *  - running_sd from 1 with momentum 0.1 (the reference) makes a young net's
 *    evaluation output ~0 and the run reports it collapsed; the warm-up start
 *    does not;
 *  - EMA: the update rule, and the model written is the average while the
 *    trained weights stay in the checkpoint for --resume;
 *  - gradient accumulation: 2 micro-batches equal one batch (frozen batch
 *    norm) to float tolerance;
 *  - batches: a part of a batch equals that part of the whole batch; flips
 *    mirror images and keep their values; the log-uniform law stays in its
 *    range; the learning-rate schedules. */
#include "testutil.h"
#include "train_fixtures.h"
#include "wcm/dataset.h"
#include "wcm/image.h"
#include "wcm/io.h"
#include "wcm/model.h"
#include "wcm/trainer.h"

#define NIMG 12
#define SIZE 24

static char data_dir[300], cache_dir[300];

typedef struct {
    int steps, epochs, warnings, collapsed;
    double eta, ips, test_psnr, noisy_psnr, level_psnr, level_noisy, ratio;
} counts;

static int count_events(const wcm_train_progress *p, void *user) {
    counts *c = user;
    if (p->event == WCM_TRAIN_STEP) c->steps++, c->eta = p->eta_s, c->ips = p->images_per_s;
    if (p->event == WCM_TRAIN_WARNING) c->warnings++;
    if (p->event == WCM_TRAIN_EPOCH) {
        c->epochs++, c->collapsed = p->collapsed, c->ratio = p->output_ratio;
        c->test_psnr = p->test_psnr, c->noisy_psnr = p->test_noisy_psnr;
        c->level_psnr = p->level_psnr[1], c->level_noisy = p->level_noisy_psnr[1];
    }
    return 0;
}

static void base_options(wcm_train_options *o, const char *out) {
    wcm_train_options_default(o);
    o->kind = WCM_NET_FLAT, o->rf = 5, o->data = data_dir, o->crop = SIZE, o->patch = 8, o->batch = 4;
    o->epochs = 3, o->seed = 5, o->test_fraction = 0.25, o->cache_dir = cache_dir, o->output = out, o->force = 1;
}

static int load(const char *path, wcm_array_list *l) {
    wcm_error err;
    wcm_array_list_init(l);
    return wcm_safetensors_read(path, l, &err) == 0;
}

static int same_file_tensors(const char *a, const char *b) {
    wcm_array_list la, lb;
    int same = load(a, &la) && load(b, &lb) && la.count == lb.count;
    for (int i = 0; same && i < la.count; i++) {
        const wcm_array *y = wcm_array_list_find(&lb, la.items[i].name);
        same = y && wcm_array_count(y) == wcm_array_count(&la.items[i]) &&
               !memcmp(y->data, la.items[i].data, sizeof(float) * (size_t)wcm_array_count(y));
    }
    wcm_array_list_free(&la), wcm_array_list_free(&lb);
    return same;
}

static void check_runs(void) {
    wcm_error err;
    wcm_train_options o;
    char a[400], b[400];
    snprintf(a, sizeof a, "%s", t_at("a.safetensors"));
    snprintf(b, sizeof b, "%s", t_at("b.safetensors"));

    /* The uninterrupted run: 9 training images, batches of 4: 3 steps per epoch. */
    counts c = {0};
    base_options(&o, a);
    REQUIRE_OK(wcm_train_run(&o, count_events, &c, &err), &err);
    CHECK(c.steps == 9 && c.epochs == 3, "callback: %d step and %d epoch reports (9 and 3)", c.steps, c.epochs);
    CHECK(c.eta == 0 && c.ips > 0, "last step: ETA %.3g s (0), %.1f images/s", c.eta, c.ips);
    CHECK(isfinite(c.test_psnr) && isfinite(c.noisy_psnr) && c.level_noisy > 19 && c.level_noisy < 21 &&
              isfinite(c.level_psnr),
          "evaluation: test PSNR %.2f beside noisy %.2f; at sigma 25: %.2f beside noisy %.2f (20.17 expected)",
          c.test_psnr, c.noisy_psnr, c.level_psnr, c.level_noisy);

    /* Stop after 5 steps, then resume from the checkpoint's own options. */
    base_options(&o, b);
    o.max_steps = 5;
    REQUIRE_OK(wcm_train_run(&o, NULL, NULL, &err), &err);
    wcm_train_options r;
    wcm_array_list meta;
    wcm_train_options_default(&r);
    REQUIRE_OK(wcm_train_options_from_checkpoint(b, &r, &meta, &err), &err);
    CHECK(r.batch == 4 && r.patch == 8 && r.seed == 5 && r.crop == SIZE && r.rf == 5 && !strcmp(r.data, data_dir),
          "options read back from the checkpoint (batch %d, patch %d, seed %llu)", r.batch, r.patch,
          (unsigned long long)r.seed);
    r.output = b, r.resume = 1, r.cache_dir = cache_dir;
    REQUIRE_OK(wcm_train_run(&r, NULL, NULL, &err), &err);
    CHECK(same_file_tensors(a, b), "stopped at step 5 + resumed equals the uninterrupted run bit for bit");
    r.batch = 3;
    int rc = wcm_train_run(&r, NULL, NULL, &err);
    CHECK(rc && strstr(err.msg, "--batch 4") && strstr(err.msg, "--batch 3"), "a resumed run refuses another batch: %s",
          rc ? err.msg : "accepted");
    wcm_array_list_free(&meta);

    /* A batch larger than the data. */
    c = (counts){0};
    base_options(&o, b);
    o.batch = 512, o.epochs = 1;
    REQUIRE_OK(wcm_train_run(&o, count_events, &c, &err), &err);
    wcm_array_list l;
    const char *bs = load(b, &l) ? wcm_array_list_get_meta(&l, "wcm.train.batch_size") : NULL;
    CHECK(c.warnings == 1 && c.steps == 1 && bs && !strcmp(bs, "9"), "batch 512 of 9 images: a warning, 1 step, batch %s",
          bs ? bs : "?");
    wcm_array_list_free(&l);

    /* Running statistics from 1 (the reference) after 3 steps: collapsed; warm-up: not. */
    c = (counts){0};
    base_options(&o, b);
    o.epochs = 1, o.bn_running_warmup = 0;
    REQUIRE_OK(wcm_train_run(&o, count_events, &c, &err), &err);
    const double ref_ratio = c.ratio;
    CHECK(c.collapsed, "reference running_sd after 3 steps: evaluation output rms %.2g of the noise's, reported collapsed",
          ref_ratio);
    c = (counts){0};
    o.bn_running_warmup = 1;
    REQUIRE_OK(wcm_train_run(&o, count_events, &c, &err), &err);
    CHECK(!c.collapsed && c.ratio > 0.05, "warm-up running_sd: output rms %.3g of the noise's, not collapsed", c.ratio);
}

static void check_ema_and_accumulation(void) {
    wcm_error err;
    /* The rule: decay min(d, (1 + t) / (10 + t)). */
    float ema[2] = {1, 2}, x[2] = {3, -1};
    double d0 = wcm_ema_update(ema, x, 2, 0.99, 0);
    CHECK(fabs(d0 - 0.1) < 1e-15 && ema[0] == 0.1f * 1 + 0.9f * 3 && ema[1] == 0.1f * 2 + 0.9f * -1,
          "EMA update 0: decay %.3g, values %.7g %.7g", d0, ema[0], ema[1]);
    double d1 = wcm_ema_update(ema, x, 2, 0.99, 1000000);
    CHECK(d1 == 0.99, "EMA update 10^6: decay %.6g (the given 0.99)", d1);

    char a[400], b[400];
    snprintf(a, sizeof a, "%s", t_at("ema_a.safetensors"));
    snprintf(b, sizeof b, "%s", t_at("ema_b.safetensors"));
    wcm_train_options o;
    base_options(&o, a);
    o.ema = 0.9;
    REQUIRE_OK(wcm_train_run(&o, NULL, NULL, &err), &err);
    wcm_model m;
    int loaded = !wcm_model_load(a, &m, &err);
    wcm_array_list l;
    int ok = loaded && load(a, &l);
    const wcm_array *raw = ok ? wcm_array_list_find(&l, "train.params") : NULL;
    int differs = raw && memcmp(raw->data, wcm_net_params(m.net), wcm_net_nparams(m.net) * sizeof(float)) != 0;
    CHECK(loaded && raw && differs, "the model loads as the average, which differs from the trained weights");
    if (ok) wcm_array_list_free(&l);
    if (loaded) wcm_model_free(&m);
    base_options(&o, b);
    o.ema = 0.9, o.max_steps = 4;
    REQUIRE_OK(wcm_train_run(&o, NULL, NULL, &err), &err);
    o.max_steps = 0, o.resume = 1, o.force = 0;
    REQUIRE_OK(wcm_train_run(&o, NULL, NULL, &err), &err);
    CHECK(same_file_tensors(a, b), "with EMA, stopped at step 4 + resumed equals the uninterrupted run bit for bit");

    /* Accumulation: frozen batch norm, batch 8 in 2 micro-batches against one. */
    base_options(&o, a);
    o.batch = 8, o.epochs = 2, o.bn_frozen = 1, o.test_fraction = 0.1;
    REQUIRE_OK(wcm_train_run(&o, NULL, NULL, &err), &err);
    base_options(&o, b);
    o.batch = 8, o.epochs = 2, o.bn_frozen = 1, o.test_fraction = 0.1, o.accumulate = 2;
    REQUIRE_OK(wcm_train_run(&o, NULL, NULL, &err), &err);
    const double worst = t_params_diff(a, b);
    /* Adam turns gradients of ~0 into steps of +-lr, so rounding differences grow: a loose bound here, the exact
     * check is on the gradient below. */
    CHECK(worst < 1e-3, "run with accumulate 2 x 4 against batch 8 after 4 Adam steps: max difference %.2g "
          "of the largest parameter", worst);
}

/* The pieces of the gradient checks: the image folder, a fresh net of `kind`
 * and rf with the reference initialisation (seed), and its trainer. */
static void open_fixture(wcm_net_kind kind, int rf, uint64_t seed, wcm_dataset *ds, wcm_net **net, wcm_trainer **t) {
    wcm_error err;
    wcm_dataset_options dopt = {SIZE, 0, 0, 0, NULL, 1};
    REQUIRE_OK(wcm_dataset_open(ds, data_dir, &dopt, &err), &err);
    REQUIRE_OK(wcm_net_create(net, kind, rf, &err), &err);
    REQUIRE_OK(wcm_trainer_create(t, *net, &err), &err);
    wcm_net_init_reference(*net, seed);
}

/* The gradient of 2 micro-batches of 4 (the loss divided by 8) summed
 * equals the gradient of the batch of 8 (frozen batch norm). */
static void check_accumulated_gradient(void) {
    wcm_error err;
    wcm_dataset ds = {0};
    wcm_net *net;
    wcm_trainer *t;
    open_fixture(WCM_NET_FLAT, 5, 3, &ds, &net, &t);
    int ids[8] = {0, 2, 4, 6, 8, 10, 1, 3};
    wcm_batch_spec spec = {WCM_NET_FLAT, 0, 2, 8, 1, 255, 1, 0, 7, 1, 0};
    wcm_tensor x = {0}, y = {0};
    /* running_sd from the batch's statistics first (from 1 the signal underflows in 20 layers) */
    double *acc = calloc((size_t)wcm_net_nlayers(net) * WCM_CHANNELS, sizeof(double));
    REQUIRE_OK(wcm_make_batch(&ds, &spec, ids, 8, 10, &x, &y, &err), &err);
    REQUIRE_OK(wcm_train_bn_accumulate(t, &x, acc, &err), &err);
    wcm_train_bn_set_running(t, acc, 1);
    free(acc);
    t->bn_frozen = 1;
    const size_t np = wcm_net_nparams(net);
    float *whole = malloc(np * sizeof(float)), *sum = calloc(np, sizeof(float));
    double loss, l0, l1;
    REQUIRE_OK(wcm_make_batch(&ds, &spec, ids, 8, 11, &x, &y, &err), &err);
    REQUIRE_OK(wcm_train_gradient(t, &x, &y, &loss, NULL, &err), &err);
    memcpy(whole, t->grad, np * sizeof(float));
    t->loss_batch = 8;
    REQUIRE_OK(wcm_make_batch_part(&ds, &spec, ids, 0, 4, 11, &x, &y, &err), &err);
    REQUIRE_OK(wcm_train_gradient(t, &x, &y, &l0, NULL, &err), &err);
    for (size_t i = 0; i < np; i++) sum[i] += t->grad[i];
    REQUIRE_OK(wcm_make_batch_part(&ds, &spec, ids, 4, 4, 11, &x, &y, &err), &err);
    REQUIRE_OK(wcm_train_gradient(t, &x, &y, &l1, NULL, &err), &err);
    double worst = 0, big = 0;
    for (size_t i = 0; i < np; i++) {
        sum[i] += t->grad[i];
        worst = fmax(worst, fabs((double)sum[i] - whole[i])), big = fmax(big, fabs((double)whole[i]));
    }
    CHECK(big > 0 && worst <= 1e-5 * big && fabs(l0 + l1 - loss) <= 1e-12 * loss,
          "gradient of 2 micro-batches of 4 = batch of 8: max difference %.2g of the largest %.3g; loss %.9g + %.9g = %.9g",
          worst / big, big, l0, l1, loss);
    free(whole), free(sum);
    wcm_tensor_free(&x), wcm_tensor_free(&y);
    wcm_trainer_free(t);
    wcm_net_free(net);
    wcm_dataset_close(&ds);
}

/* Exact sums (batch statistics): the gradient of a batch of 8 equals the
 * ordinary one to float rounding, and is the same bits on 1, 2 and 3 threads. */
static void check_exact_gradient(void) {
    wcm_error err;
    wcm_dataset ds = {0};
    wcm_net *net;
    wcm_trainer *t;
    open_fixture(WCM_NET_CONDITIONAL, 5, 4, &ds, &net, &t);
    int ids[8] = {0, 2, 4, 6, 8, 10, 1, 3};
    wcm_batch_spec spec = {WCM_NET_CONDITIONAL, 0, 2, 0, 0, 255, 0, 0, 7, 1, 0};
    wcm_tensor x = {0}, y = {0};
    REQUIRE_OK(wcm_make_batch(&ds, &spec, ids, 8, 12, &x, &y, &err), &err);
    t->update_running_sd = 0;
    const size_t np = wcm_net_nparams(net);
    float *fast = malloc(np * sizeof(float)), *exact[3];
    double loss;
    REQUIRE_OK(wcm_train_gradient(t, &x, &y, &loss, NULL, &err), &err);
    memcpy(fast, t->grad, np * sizeof(float));
    t->exact = 1;
    int same = 1;
    for (int k = 0; k < 3; k++) {
        wcm_set_threads(k + 1);
        exact[k] = malloc(np * sizeof(float));
        REQUIRE_OK(wcm_train_gradient(t, &x, &y, &loss, NULL, &err), &err);
        memcpy(exact[k], t->grad, np * sizeof(float));
        same &= !memcmp(exact[k], exact[0], np * sizeof(float));
    }
    wcm_set_threads(2);
    double worst = 0, big = 0;
    for (size_t i = 0; i < np; i++)
        worst = fmax(worst, fabs((double)exact[0][i] - fast[i])), big = fmax(big, fabs((double)fast[i]));
    CHECK(big > 0 && worst <= 1e-5 * big, "exact sums: gradient of a batch of 8 (batch statistics) within %.2g of the "
          "largest of the ordinary gradient", worst / big);
    CHECK(same, "exact sums: the gradient on 1, 2 and 3 threads is the same bits");
    free(fast);
    for (int k = 0; k < 3; k++) free(exact[k]);
    wcm_tensor_free(&x), wcm_tensor_free(&y);
    wcm_trainer_free(t);
    wcm_net_free(net);
    wcm_dataset_close(&ds);
}

static void check_batches(void) {
    wcm_error err;
    wcm_dataset ds = {0};
    wcm_dataset_options dopt = {SIZE, 0, 0, 0, NULL, 1};
    REQUIRE_OK(wcm_dataset_open(&ds, data_dir, &dopt, &err), &err);
    int ids[8] = {3, 1, 4, 1, 5, 9, 2, 6};
    wcm_batch_spec spec = {WCM_NET_CONDITIONAL, 0, 2, 8, 1, 100, 0, 0, 7, 1, 0};
    wcm_tensor n1 = {0}, z1 = {0}, n2 = {0}, z2 = {0};
    REQUIRE_OK(wcm_make_batch(&ds, &spec, ids, 8, 42, &n1, &z1, &err), &err);
    REQUIRE_OK(wcm_make_batch_part(&ds, &spec, ids, 3, 4, 42, &n2, &z2, &err), &err);
    const size_t pin = (size_t)n1.h * n1.w * n1.c, pout = (size_t)z1.h * z1.w * z1.c;
    CHECK(!memcmp(n1.data + 3 * pin, n2.data, 4 * pin * sizeof(float)) &&
              !memcmp(z1.data + 3 * pout, z2.data, 4 * pout * sizeof(float)),
          "images 3..6 of a batch (patches, flips, noise) equal those of the whole batch");
    /* Flips: flat, no noise, no intensity: each image is the patch or its mirror. */
    wcm_batch_spec flat = {WCM_NET_FLAT, 0, 2, 0, 1, 1, 0, 0, 7, 1, 0};
    int all[NIMG], mirrored = 0, plain = 0, other = 0;
    for (int i = 0; i < NIMG; i++) all[i] = i;
    REQUIRE_OK(wcm_make_batch(&ds, &flat, all, NIMG, 3, &n1, &z1, &err), &err);
    for (int i = 0; i < NIMG; i++) {
        const float *src = ds.pixels + (size_t)i * SIZE * SIZE, *got = n1.data + (size_t)i * SIZE * SIZE;
        int same = 1, mirror = 1;
        for (int y = 0; y < SIZE; y++)
            for (int x = 0; x < SIZE; x++) {
                same &= got[y * SIZE + x] == src[y * SIZE + x];
                mirror &= got[y * SIZE + x] == src[y * SIZE + SIZE - 1 - x];
            }
        plain += same, mirrored += mirror && !same, other += !same && !mirror;
    }
    CHECK(other == 0 && plain > 0 && mirrored > 0, "flips: %d images as they are, %d mirrored, %d changed otherwise",
          plain, mirrored, other);
    /* Log-uniform noise: per-image sd in [bound / 1000, bound], bound = 255/255. */
    wcm_batch_spec lu = {WCM_NET_FLAT, 0, 2, 0, 1, 255, 0, 0, 9, 0, 1};
    double lo = 1e9, hi = 0;
    for (int draw = 0; draw < 8; draw++) {
        REQUIRE_OK(wcm_make_batch(&ds, &lu, all, NIMG, (uint64_t)draw, &n1, &z1, &err), &err);
        for (int i = 0; i < NIMG; i++) {
            double ss = 0;
            for (int k = 0; k < SIZE * SIZE; k++) ss += (double)z1.data[i * SIZE * SIZE + k] * z1.data[i * SIZE * SIZE + k];
            double sd = sqrt(ss / (SIZE * SIZE));
            lo = fmin(lo, sd), hi = fmax(hi, sd);
        }
    }
    CHECK(lo > 0.8e-3 && hi < 1.2 && hi / lo > 30, "log-uniform noise: per-image sd from %.2g to %.2g", lo, hi);
    wcm_tensor_free(&n1), wcm_tensor_free(&z1), wcm_tensor_free(&n2), wcm_tensor_free(&z2);
    wcm_dataset_close(&ds);

    /* Schedules. */
    wcm_train_options o;
    wcm_train_options_default(&o);
    o.lr = 1e-3, o.lr_halve_every = 2, o.warmup_steps = 4;
    double w0 = wcm_train_lr(&o, 0, 0, 100), w3 = wcm_train_lr(&o, 0, 3, 100), s5 = wcm_train_lr(&o, 5, 50, 100);
    o.lr_schedule = WCM_LR_COSINE, o.warmup_steps = 0;
    double c0 = wcm_train_lr(&o, 0, 0, 100), c50 = wcm_train_lr(&o, 0, 50, 100), c100 = wcm_train_lr(&o, 0, 100, 100);
    CHECK(fabs(w0 - 2.5e-4) < 1e-15 && fabs(w3 - 1e-3) < 1e-15 && fabs(s5 - 2.5e-4) < 1e-15 && c0 == 1e-3 &&
              fabs(c50 - 5e-4) < 1e-15 && fabs(c100) < 1e-15,
          "lr: warm-up %.3g then %.3g; step schedule at epoch 5 %.3g; cosine %.3g, %.3g, %.3g", w0, w3, s5, c0, c50, c100);
}

int main(void) {
    t_temp_dir("trainer");
    snprintf(data_dir, sizeof data_dir, "%s", t_at("data"));
    snprintf(cache_dir, sizeof cache_dir, "%s", t_at("cache"));
    mkdir(data_dir, 0755);
    wcm_set_threads(2);
    t_write_images(data_dir, NIMG, SIZE, 0.1);
    check_batches();
    check_accumulated_gradient();
    check_exact_gradient();
    check_runs();
    check_ema_and_accumulation();
    t_temp_dir_remove();
    return t_done("test_trainer");
}

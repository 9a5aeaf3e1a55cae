/* wcm train: a thin CLI over the library trainer (wcm/trainer.h): options
 * in, progress lines, the SVG plot of the log and one line on error. */
#include "cli.h"
#include "wcm/plot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wcm/io.h"
#include "wcm/trainer.h"

#define CMD "train"

/* ---- options ------------------------------------------------------------- */

/* An option naming one of n values: *index (untouched when absent). */
static int parse_name(const cli_opt *o, const char *const *names, int n, int *index) {
    if (!o->set) return 0;
    for (int i = 0; i < n; i++)
        if (!strcmp(o->value, names[i])) {
            *index = i;
            return 0;
        }
    char list[256] = "";
    for (int i = 0; i < n; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? (i == n - 1 ? " or " : ", ") : "", names[i]);
    return cli_error(CMD, "--%s must be %s, got '%s'", o->name, list, o->value);
}

enum {
    O_KIND, O_RF, O_SCALE, O_LEVELS, O_DATA, O_TEST, O_TEST_FRACTION, O_CROP, O_CELEBA, O_RESIZE, O_PATCH, O_BATCH,
    O_EPOCHS, O_LR, O_HALVE, O_NOISE, O_SEED, O_O, O_OUTPUT, O_RESUME, O_FORCE, O_MAX_IMAGES, O_MAX_TEST, O_MINUTES,
    O_SAVE_MINUTES, O_SAVE_EVERY, O_STEPS, O_CACHE, O_NO_CACHE, O_INIT, O_INTENSITY, O_BATCH_NORM, O_BN_RUNNING,
    O_ACCUMULATE, O_EMA, O_FLIP, O_LR_SCHEDULE, O_WARMUP, O_SUMS, O_COUNT
};

/* The given options over *o (the defaults, or a resumed run's own). */
static int apply_options(cli_opt *opt, wcm_train_options *o) {
#define GET_INT(id, field) (opt[id].set && cli_get_int(CMD, &opt[id], &o->field))
    double save_every = o->save_every, steps = (double)o->max_steps;
    if (GET_INT(O_RF, rf) || GET_INT(O_SCALE, scale) || GET_INT(O_LEVELS, levels) || GET_INT(O_CROP, crop) ||
        GET_INT(O_RESIZE, resize) || GET_INT(O_PATCH, patch) || GET_INT(O_BATCH, batch) || GET_INT(O_EPOCHS, epochs) ||
        GET_INT(O_HALVE, lr_halve_every) || GET_INT(O_MAX_IMAGES, max_images) || GET_INT(O_MAX_TEST, max_test_images) ||
        GET_INT(O_ACCUMULATE, accumulate) || GET_INT(O_WARMUP, warmup_steps) ||
        cli_get_double_in(CMD, &opt[O_SAVE_EVERY], 0, 1e15, &save_every) ||
        cli_get_double_in(CMD, &opt[O_STEPS], 0, 1e15, &steps) || cli_get_double(CMD, &opt[O_LR], &o->lr) ||
        cli_get_double_in(CMD, &opt[O_TEST_FRACTION], 0, 0.999999, &o->test_fraction) ||
        cli_get_double_in(CMD, &opt[O_MINUTES], 0, 1e9, &o->minutes) ||
        cli_get_double_in(CMD, &opt[O_SAVE_MINUTES], 0, 1e9, &o->save_minutes) ||
        cli_get_double_in(CMD, &opt[O_EMA], 0, 0.999999999, &o->ema) || cli_get_seed(CMD, &opt[O_SEED], &o->seed))
        return 1;
#undef GET_INT
    o->save_every = (int)save_every, o->max_steps = (long long)steps;
    static const char *const noise[] = {"quadratic", "uniform", "log-uniform"}, *const schedule[] = {"step", "cosine"},
                             *const intensity[] = {"none", "uniform"}, *const bn[] = {"batch", "frozen"},
                             *const running[] = {"reference", "warmup"}, *const sums[] = {"fast", "exact"};
    int n = (int)o->noise, sch = (int)o->lr_schedule;
    if (parse_name(&opt[O_NOISE], noise, 3, &n) || parse_name(&opt[O_LR_SCHEDULE], schedule, 2, &sch) ||
        parse_name(&opt[O_INTENSITY], intensity, 2, &o->intensity) || parse_name(&opt[O_BATCH_NORM], bn, 2, &o->bn_frozen) ||
        parse_name(&opt[O_BN_RUNNING], running, 2, &o->bn_running_warmup) || parse_name(&opt[O_SUMS], sums, 2, &o->exact_sums))
        return 1;
    o->noise = (wcm_noise_law)n, o->lr_schedule = (wcm_lr_schedule)sch;
    if (opt[O_INTENSITY].set && o->kind == WCM_NET_CONDITIONAL)
        return cli_error(CMD, "--intensity applies to flat and low-pass nets (conditional nets see the data as it is)");
    if (opt[O_DATA].set) o->data = opt[O_DATA].value;
    if (opt[O_TEST].set) o->test_dir = opt[O_TEST].value;
    if (opt[O_TEST].set && !opt[O_TEST_FRACTION].set) o->test_fraction = -1;
    if (opt[O_TEST_FRACTION].set && !opt[O_TEST].set) o->test_dir = NULL;
    if (opt[O_CACHE].set) o->cache_dir = opt[O_CACHE].value;
    if (opt[O_CELEBA].set) o->celeba_crop = 1;
    if (opt[O_NO_CACHE].set) o->no_cache = 1;
    if (opt[O_FLIP].set) o->flip = 1;
    if (opt[O_INIT].set) o->init = opt[O_INIT].value;
    return 0;
}

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* ---- progress and the plot --------------------------------------------------- */

static void format_duration(double s, char *buf, size_t n) {
    if (!(s >= 0) || !isfinite(s)) snprintf(buf, n, "?");
    else if (s < 120) snprintf(buf, n, "%.0f s", s);
    else if (s < 7200) snprintf(buf, n, "%.0f min", s / 60);
    else if (s < 172800) snprintf(buf, n, "%.1f h", s / 3600);
    else snprintf(buf, n, "%.1f days", s / 86400);
}

static void with_suffix(char *buf, size_t size, const char *out, const char *suffix) {
    size_t n = strlen(out) - strlen(".safetensors");
    snprintf(buf, size, "%.*s%s", (int)n, out, suffix);
}

/* The loss on a log axis with the zero-output (noisy input) loss, and the
 * train/test PSNR with the noisy input's test PSNR, stacked in one SVG. */
static int write_plot(const char *out, const wcm_train_progress *p, wcm_error *err) {
    const wcm_train_state *s = p->state;
    double *x = malloc(sizeof(double) * 6 * ((size_t)s->nrows + 1));
    if (!x) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    double *loss = x + s->nrows + 1, *psnr = loss + s->nrows + 1, *tpsnr = psnr + s->nrows + 1;
    double *base = tpsnr + s->nrows + 1, *noisy = base + s->nrows + 1;
    for (int i = 0; i < s->nrows; i++) {
        x[i] = s->rows[i].epoch, loss[i] = s->rows[i].loss, psnr[i] = s->rows[i].psnr, tpsnr[i] = s->rows[i].test_psnr;
        base[i] = p->baseline_loss, noisy[i] = p->test_noisy_psnr;
    }
    wcm_plot p1 = {"training loss", "epoch", "loss (sum of squares / batch, log scale)", 0, 760, 400};
    wcm_plot p2 = {"PSNR of the denoised values", "epoch", "PSNR (dB)", 0, 760, 400};
    wcm_plot_series s1[] = {{"train loss", x, loss, s->nrows, 0, NULL}, {"noisy input", x, base, s->nrows, 1, "#7f7f7f"}};
    wcm_plot_series s2[] = {{"train", x, psnr, s->nrows, 0, NULL}, {"test", x, tpsnr, s->nrows, 1, NULL},
                       {"test, noisy input", x, noisy, s->nrows, 1, "#7f7f7f"}};
    char *a = wcm_plot_render_svg_log(&p1, s1, 2), *b = wcm_plot_render_svg(&p2, s2, isfinite(p->test_noisy_psnr) ? 3 : 2);
    free(x);
    size_t n = a && b ? strlen(a) + strlen(b) + 512 : 0;
    char *svg = n ? malloc(n) : NULL;
    if (svg)
        snprintf(svg, n,
                 "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"760\" height=\"800\" viewBox=\"0 0 760 800\">\n"
                 "<g>\n%s</g>\n<g transform=\"translate(0 400)\">\n%s</g>\n</svg>\n",
                 a, b);
    free(a), free(b);
    if (!svg) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    char path[4096];
    with_suffix(path, sizeof path, out, ".svg");
    int rc = wcm_write_file_atomic(path, svg, strlen(svg), err);
    free(svg);
    return rc;
}

typedef struct {
    const char *out;
    int plot_failed;
    wcm_error plot_err;
} progress_ctx;

static void print_epoch(const wcm_train_progress *p) {
    char test[512] = "no test set";
    if (isfinite(p->test_psnr)) {
        int n = snprintf(test, sizeof test, "test PSNR %.2f dB (noisy %.2f)", p->test_psnr, p->test_noisy_psnr);
        for (int l = 0; l < WCM_TRAIN_EVAL_LEVELS && n < (int)sizeof test; l++)
            n += snprintf(test + n, sizeof test - n, "%s sigma %g: %.2f (noisy %.2f)", l ? "," : ";", p->sigma255[l],
                          p->level_psnr[l], p->level_noisy_psnr[l]);
    }
    cli_progress("epoch %d/%d: train loss %.5g, PSNR %.2f dB; %s; lr %g; %.0f s\n", p->epoch, p->epochs, p->loss, p->psnr,
                 test, p->row->lr, p->seconds);
    if (p->collapsed)
        cli_progress("warning: the network's evaluation output is ~0 (rms %.2g of the noise's): it has collapsed in "
                     "inference mode, so its test PSNR is the noisy input's; train longer before judging it, or check the "
                     "batch-norm statistics (--bn-running warmup)\n", p->output_ratio);
}

static int on_progress(const wcm_train_progress *p, void *user) {
    progress_ctx *c = user;
    const int tty = !cli_quiet && isatty(2);
    if (p->event == WCM_TRAIN_STEP) {
        if (!tty) return 0;
        char bar[21], eta[32];
        int fill = (int)(20.0 * p->batch / p->nbatches);
        for (int i = 0; i < 20; i++) bar[i] = i < fill ? '#' : '.';
        bar[20] = 0;
        format_duration(p->eta_s, eta, sizeof eta);
        fprintf(stderr, "\r  epoch %d/%d [%s] %d/%d  loss %.5g  PSNR %.2f dB  %.1f images/s  ETA %s   ", p->epoch,
                p->epochs, bar, p->batch, p->nbatches, p->loss, p->psnr, p->images_per_s, eta);
        fflush(stderr);
        return 0;
    }
    if (tty) fputs("\r\033[K", stderr); /* clear the progress bar */
    if (p->event == WCM_TRAIN_EPOCH) {
        print_epoch(p);
        if (!c->plot_failed && write_plot(c->out, p, &c->plot_err)) c->plot_failed = 1;
        return c->plot_failed; /* stop: the error is reported after the run */
    }
    if (p->event == WCM_TRAIN_WARNING) cli_progress("warning: %s\n", p->message);
    else cli_progress("%s\n", p->message);
    return 0;
}

/* ---- the command --------------------------------------------------------------- */

static int run_train(int argc, char **argv) {
    cli_opt opt[O_COUNT] = {
        [O_KIND] = {"kind", 1, 0, 0},         [O_RF] = {"rf", 1, 0, 0},
        [O_SCALE] = {"scale", 1, 0, 0},       [O_LEVELS] = {"levels", 1, 0, 0},
        [O_DATA] = {"data", 1, 0, 0},         [O_TEST] = {"test", 1, 0, 0},
        [O_TEST_FRACTION] = {"test-fraction", 1, 0, 0}, [O_CROP] = {"crop", 1, 0, 0},
        [O_CELEBA] = {"celeba-crop", 0, 0, 0}, [O_RESIZE] = {"resize", 1, 0, 0},
        [O_PATCH] = {"patch", 1, 0, 0},       [O_BATCH] = {"batch", 1, 0, 0},
        [O_EPOCHS] = {"epochs", 1, 0, 0},     [O_LR] = {"lr", 1, 0, 0},
        [O_HALVE] = {"lr-halve-every", 1, 0, 0}, [O_NOISE] = {"noise", 1, 0, 0},
        [O_SEED] = {"seed", 1, 0, 0},         [O_O] = {"o", 1, 0, 0},
        [O_OUTPUT] = {"output", 1, 0, 0},     [O_RESUME] = {"resume", 0, 0, 0},
        [O_FORCE] = {"force", 0, 0, 0},       [O_MAX_IMAGES] = {"max-images", 1, 0, 0},
        [O_MAX_TEST] = {"max-test-images", 1, 0, 0}, [O_MINUTES] = {"minutes", 1, 0, 0},
        [O_SAVE_MINUTES] = {"save-minutes", 1, 0, 0}, [O_SAVE_EVERY] = {"save-every", 1, 0, 0},
        [O_STEPS] = {"steps", 1, 0, 0},       [O_CACHE] = {"cache", 1, 0, 0},
        [O_NO_CACHE] = {"no-cache", 0, 0, 0}, [O_INIT] = {"init", 1, 0, 0},
        [O_INTENSITY] = {"intensity", 1, 0, 0}, [O_BATCH_NORM] = {"batch-norm", 1, 0, 0},
        [O_BN_RUNNING] = {"bn-running", 1, 0, 0}, [O_ACCUMULATE] = {"accumulate", 1, 0, 0},
        [O_EMA] = {"ema", 1, 0, 0},           [O_FLIP] = {"flip", 0, 0, 0},
        [O_LR_SCHEDULE] = {"lr-schedule", 1, 0, 0}, [O_WARMUP] = {"warmup", 1, 0, 0},
        [O_SUMS] = {"sums", 1, 0, 0},
    };
    const char *pos[1];
    int npos;
    if (cli_parse(CMD, argc, argv, opt, O_COUNT, pos, &npos, 0)) return 1;
    wcm_train_options o;
    wcm_train_options_default(&o);
    o.output = opt[O_O].set ? opt[O_O].value : opt[O_OUTPUT].value;
    o.resume = opt[O_RESUME].set, o.force = opt[O_FORCE].set;
    if (!o.output) return cli_error(CMD, "missing -o OUT.safetensors");
    wcm_error err;
    wcm_comm *comm;
    if (wcm_comm_world(&comm, &err)) return cli_lib_error(CMD, &err);
    o.comm = comm;
    if (wcm_comm_rank(comm) != 0) cli_quiet = 1;
    /* --resume: the checkpoint's options, then only what is given here. */
    wcm_array_list meta;
    wcm_array_list_init(&meta);
    const int resuming = o.resume && file_exists(o.output);
    if (resuming && wcm_train_options_from_checkpoint(o.output, &o, &meta, &err))
        return cli_error(CMD, "cannot resume: %s", err.msg);
    int rc = 1;
    if (opt[O_KIND].set) {
        wcm_net_kind kind;
        if (wcm_net_kind_parse(opt[O_KIND].value, &kind)) {
            cli_error(CMD, "--kind must be flat, conditional or lowpass, got '%s'", opt[O_KIND].value);
            goto done;
        }
        if (resuming && kind != o.kind) {
            cli_error(CMD, "cannot resume: %s holds a %s network, this run asks for a %s network (a checkpoint of another "
                      "architecture)", o.output, wcm_net_kind_name(o.kind), wcm_net_kind_name(kind));
            goto done;
        }
        o.kind = kind;
    } else if (!resuming) {
        cli_error(CMD, "missing --kind flat|conditional|lowpass");
        goto done;
    }
    if (apply_options(opt, &o)) goto done;
    if (!o.data) {
        cli_error(CMD, "missing --data DIR (a folder of .png/.jpg images)");
        goto done;
    }
    if (!resuming && o.kind != WCM_NET_LOWPASS && !opt[O_RF].set) {
        cli_error(CMD, "missing --rf R (receptive field: 5, 9, 13, 23, 43, ...)");
        goto done;
    }
    progress_ctx pc;
    memset(&pc, 0, sizeof pc);
    pc.out = o.output;
    if (wcm_train_run(&o, on_progress, &pc, &err)) {
        cli_lib_error(CMD, &err);
        wcm_comm_abort(comm, 1);
        goto done;
    }
    if (pc.plot_failed) {
        cli_lib_error(CMD, &pc.plot_err);
        goto done;
    }
    rc = 0;
done:
    wcm_array_list_free(&meta);
    return rc;
}

const cli_command cmd_train = {
    "train", "train a flat, conditional or low-pass denoiser as the reference does",
    "usage: wcm train --kind flat|conditional|lowpass [--rf R] [--scale j] [--levels J]\n"
    "                 --data DIR [--test DIR | --test-fraction F] -o OUT.safetensors [options]\n\n"
    "Trains one BF-CNN with the reference procedure (docs/model.md §4): reference\n"
    "initialisation; per image a noise level sigma = (k/255)^2 (quadratic) or k/255\n"
    "with k uniform in [0, 255); for a conditional net at scale j the bound 255 is\n"
    "multiplied by the largest |detail coefficient| of the training set and noise\n"
    "goes on the 3 detail channels only; flat and low-pass nets first scale each\n"
    "clean image by a U(0,1) intensity. Loss sum((f(noisy) - noise)^2) / batch,\n"
    "Adam (betas 0.9, 0.999), lr halved every --lr-halve-every epochs.\n"
    "Under mpirun (an MPI build), the processes share each batch: the same run\n"
    "as one process with the same --batch (docs/training.md).\n"
    "The data: a folder of images, made gray, centre-cropped and optionally resized\n"
    "once into a memory-mapped cache. Conditional nets see the Haar coefficients of\n"
    "scale j, the low-pass net the coarsest low-pass (level J-1); --patch P draws a\n"
    "random P x P patch of those per image and epoch (the nets are local).\n"
    "OUT.safetensors is a single-network model (wcm info / denoise / bundle read it)\n"
    "that also holds the Adam state: it is rewritten atomically after every epoch\n"
    "and every --save-minutes, and --resume continues exactly (bit-identical for\n"
    "the same thread count), with the options stored in FILE: give only what\n"
    "changes (--epochs, --minutes, ...); options that would change the run are\n"
    "refused by name. Also written: OUT.log.csv (epoch, train loss, train PSNR,\n"
    "test PSNR, lr, seconds) and OUT.svg (loss on a log axis and PSNR curves, with\n"
    "the noisy input's). Each epoch prints the test PSNR beside the noisy input's,\n"
    "at the training noise law and at sigma 5, 25 and 100 (of 255).\n\n"
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
    "  --batch B             images per optimiser step (default 512; at most the\n"
    "                        number of training images)\n"
    "  --accumulate K        split each batch into K micro-batches (memory; the\n"
    "                        gradient is the whole batch's)\n"
    "  --epochs E            epochs (default 500 x 4^j; j = scale, J-1 for lowpass)\n"
    "  --lr LR               Adam learning rate (default 1e-3)\n"
    "  --lr-halve-every N    halve the lr every N epochs (default 50 x 4^j)\n"
    "  --lr-schedule S       step (default: the halving above) or cosine (from --lr\n"
    "                        to 0 over all epochs)\n"
    "  --warmup N            raise the lr linearly over the first N steps (0)\n"
    "  --noise LAW           quadratic (default), uniform, or log-uniform (sigma spread\n"
    "                        evenly over the 3 decades below the bound)\n"
    "  --flip                mirror each training image left-right at random\n"
    "  --ema D               keep an exponential moving average of the weights with\n"
    "                        decay D (e.g. 0.999): evaluated, and written as the model\n"
    "  --bn-running MODE     warmup (default: running_sd starts from the first\n"
    "                        batches) or reference (from 1, momentum 0.1)\n"
    "  --intensity LAW       flat and low-pass nets: uniform (default, the reference:\n"
    "                        clean x U(0,1)) or none (images as they are; the prior\n"
    "                        then has no pull towards dark images when sampling)\n"
    "  --batch-norm MODE     batch (default, the reference: batch statistics) or frozen\n"
    "                        (each batch norm divides by a fixed running_sd, as when\n"
    "                        the net is used; a fresh run first sets running_sd from\n"
    "                        16 batches, unless --init names a net trained frozen;\n"
    "                        for fine-tuning with --init)\n"
    "  --sums MODE           fast (default) or exact: every sum over the batch (batch\n"
    "                        statistics, gradients) built from per-image terms added\n"
    "                        exactly, so a step gives the same bits on any number of\n"
    "                        processes (mpirun) and threads (CPU; docs/training.md)\n"
    "  --seed S              seed of the initialisation, order, patches and noise (default 0)\n"
    "  -o, --output FILE     the model / checkpoint (.safetensors)\n"
    "  --resume              continue the run stored in FILE with its options\n"
    "  --init MODEL[:NET]    start from the weights of MODEL (same architecture; NET picks\n"
    "                        low, 0, 1, ... of a multi-scale model), with a\n"
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

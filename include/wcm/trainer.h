/* wcm — a whole training run as a library call: the data (a folder of
 * images, cached), the test split, the schedule, evaluation, checkpoints,
 * resumption, and data parallelism over the ranks of a communicator, with
 * progress reported through a callback. `wcm train` is a thin CLI over it.
 *
 *     wcm_train_options o;
 *     wcm_train_options_default(&o);
 *     o.kind = WCM_NET_CONDITIONAL, o.rf = 13, o.data = "faces/", o.output = "c13.safetensors";
 *     o.batch = 64, o.epochs = 10;
 *     wcm_error err;
 *     if (wcm_train_run(&o, NULL, NULL, &err)) fprintf(stderr, "%s\n", err.msg);
 *
 * A run is defined by its global batch: each optimiser step draws one batch
 * of `batch` images (ids, patches, flips, noise: pure functions of the seed
 * and the step), which `accumulate` micro-batches and the ranks of `comm`
 * share in contiguous parts. Gradients are summed over the parts, batch
 * statistics over the ranks (each micro-batch normalises by its own
 * statistics, so accumulation with batch statistics is ghost batch norm;
 * with frozen batch norm it equals the whole batch). Rank 0 reports progress
 * and writes the checkpoint (atomically) and the log. */
#ifndef WCM_TRAINER_H
#define WCM_TRAINER_H

#include "wcm/comm.h"
#include "wcm/train.h"
#include "wcm/train_state.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { WCM_NOISE_QUADRATIC, WCM_NOISE_UNIFORM, WCM_NOISE_LOG_UNIFORM } wcm_noise_law;
typedef enum { WCM_LR_STEP, WCM_LR_COSINE } wcm_lr_schedule;

typedef struct {
    /* what is trained */
    wcm_net_kind kind;
    int rf;              /* flat and conditional nets */
    int scale, levels;   /* conditional: Haar scale j; pyramid depth J (2) */
    /* data */
    const char *data;          /* folder of training images */
    const char *test_dir;      /* NULL: the last test_fraction of data */
    double test_fraction;      /* < 0: 0.1 (0 with test_dir) */
    int crop, celeba_crop, resize, patch, max_images, max_test_images;
    const char *cache_dir;
    int no_cache;
    /* schedule */
    int batch;                 /* images per optimiser step (512); reduced to the data with a warning */
    int accumulate;            /* micro-batches per step (1) */
    int epochs;                /* < 0: 500 * 4^j */
    double lr;                 /* 1e-3 */
    wcm_lr_schedule lr_schedule;
    int lr_halve_every;        /* WCM_LR_STEP: halve every N epochs (< 0: 50 * 4^j) */
    int warmup_steps;          /* linear warm-up of the learning rate over N steps (0) */
    /* noise and data law */
    wcm_noise_law noise;
    int intensity;             /* flat, low-pass: clean x U(0, 1) (1, the reference) */
    int bn_frozen;             /* batch norm divides by fixed running_sd in training */
    int bn_running_warmup;     /* running_sd starts from the first batch's sd (1); 0: from 1, the reference */
    int flip;                  /* random left-right flips */
    int exact_sums;            /* sums over the batch exact: the same bits on any number of ranks (wcm_trainer.exact) */
    double ema;                /* decay of an exponential moving average of the weights (0: none) */
    uint64_t seed;
    /* run control */
    const char *output;        /* checkpoint and model (.safetensors); also OUT.log.csv */
    int resume;                /* continue the run in output (if it exists) */
    int force;                 /* overwrite output */
    const char *init;          /* start from this model's weights, fresh optimiser */
    double minutes, save_minutes; /* stop after; checkpoint every (10) */
    int save_every;            /* checkpoint every N steps (0: off) */
    long long max_steps;       /* stop after N steps in all (0: off) */
    wcm_comm *comm;            /* NULL: one process */
} wcm_train_options;

void wcm_train_options_default(wcm_train_options *o);
/* The options of the run stored in checkpoint `path` (over *o, which keeps
 * what the checkpoint does not record). Strings point into *meta, which
 * receives the checkpoint's metadata: keep it until the run is over, then
 * wcm_array_list_free it. */
int wcm_train_options_from_checkpoint(const char *path, wcm_train_options *o, wcm_array_list *meta, wcm_error *err);
/* The same from metadata already read (the "wcm.train.*" keys); every value
 * is parsed and range-checked, a bad one refused by name. Strings point into
 * meta. */
int wcm_train_options_from_meta(const wcm_array_list *meta, wcm_train_options *o, wcm_error *err);

typedef enum {
    WCM_TRAIN_INFO,    /* message: a line about the run */
    WCM_TRAIN_WARNING, /* message: something the user should know (e.g. a reduced batch) */
    WCM_TRAIN_STEP,    /* after every optimiser step */
    WCM_TRAIN_EPOCH,   /* after every epoch, with its evaluation */
} wcm_train_event;

#define WCM_TRAIN_EVAL_LEVELS 3

typedef struct {
    wcm_train_event event;
    const char *message;
    int epoch, epochs;               /* epoch: 1-based, the current one */
    int batch, nbatches;             /* steps done in the epoch, steps per epoch */
    long long step, total_steps;
    double loss, psnr;               /* epoch means so far */
    double step_loss;                /* WCM_TRAIN_STEP: this step's loss */
    double comm_seconds;             /* in the gradient all-reduce so far (this run) */
    double lr, images_per_s, eta_s, seconds;
    /* WCM_TRAIN_EPOCH */
    const wcm_epoch_row *row;
    double test_psnr, test_noisy_psnr;                 /* at the training noise law (NaN: no test set) */
    double sigma255[WCM_TRAIN_EVAL_LEVELS];           /* fixed noise levels on 0-255 */
    double level_psnr[WCM_TRAIN_EVAL_LEVELS], level_noisy_psnr[WCM_TRAIN_EVAL_LEVELS];
    double output_ratio;             /* rms(net output) / rms(noise) on the test set */
    int collapsed;                   /* output_ratio < 1e-3: the net outputs ~0 in evaluation */
    double baseline_loss;            /* loss of the zero output (the noisy input) on the training batches */
    const wcm_train_state *state;    /* history so far */
    int stopped;                     /* last report of a run stopped early (--minutes, --steps, the callback) */
} wcm_train_progress;

/* Called on rank 0; a non-zero return stops the run after this step (with a checkpoint). */
typedef int (*wcm_train_callback)(const wcm_train_progress *p, void *user);

int wcm_train_run(const wcm_train_options *o, wcm_train_callback cb, void *user, wcm_error *err);

/* The learning rate of step `step` (0-based) in epoch `epoch` (0-based). */
double wcm_train_lr(const wcm_train_options *o, int epoch, long long step, long long total_steps);
/* ema = decay ema + (1 - decay) x for n values, with decay min(d, (1 + t) / (10 + t)) at update t (0-based):
 * the average forgets its start quickly. Returns the decay used. */
double wcm_ema_update(float *ema, const float *x, size_t n, double d, long long t);

#ifdef __cplusplus
}
#endif
#endif

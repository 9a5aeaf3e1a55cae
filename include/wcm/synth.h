/* wcm — Algorithm 2 (docs/model.md §7): wavelet conditional synthesis and
 * super-resolution with a model's networks as Algorithm-1 denoisers.
 *
 * Synthesis (wcm_synth_sample) with a multi-scale model of J scales:
 *   1. sample the coarsest low-pass (n x low_h x low_w) with Algorithm 1 and
 *      the low-pass net; by default min-max rescale every sample to
 *      [0, rescale_max] (0.8), as the reference does;
 *   2. for j = J-1 ... 0: sample the details (3 channels H, V, D) with
 *      Algorithm 1 and conditional net j given the current low-pass, then
 *      low <- inverse Haar(low, details).
 * The Haar pyramid is normalised to local means (docs/model.md §2), so the low-pass
 * needs no rescaling between scales. With a single flat (or lone low-pass)
 * network only step 1 runs. Final size: low size * 2^J.
 *
 * Super-resolution (wcm_synth_superres): step 2 alone, started from given
 * low-pass images. Every output's J-level Haar low-pass equals the input
 * (up to float rounding): the last inverse Haar uses the given low-pass.
 * A lone conditional network does factor-2 super-resolution.
 *
 * Randomness: every net runs Algorithm 1 with the options' seed and its own
 * stream (WCM_SYNTH_STREAM_LOW / WCM_SYNTH_STREAM_COND(j)); sample k of the
 * batch uses sub-stream sample_offset + k (wcm/sampler.h). A sample therefore
 * depends on (seed, its index) only, never on the batch size or threads.
 *
 * Status: a net that hits its iteration cap is not an error (results say
 * WCM_SAMPLE_CAP and r->cap_samples counts them; callers should warn).
 *
 * Health checks: besides Algorithm 1's own checks (sigma_t above the
 * threshold, non-finite values, a jump of std(y): wcm/sampler.h), each net's
 * result is checked as an image: the image at that scale (the low-pass
 * sample, or inverse Haar of the low-pass and the sampled details) must stay
 * within [range_min, range_max] (default [-0.5, 1.5] for [0, 1] images). A
 * sample failing any check is marked diverged (reason in its result) and, with
 * retries > 0, drawn again up to `retries` times with fresh noise: attempt a
 * uses stream WCM_SYNTH_RETRY_STREAM(stream, a), same sub-stream index. A
 * sample still diverged after its retries is left as it is (its values show
 * the blow-up), skipped by the finer nets (status WCM_SAMPLE_SKIPPED, zero
 * details), and counted in r->diverged; the other samples go on. The cascade
 * then returns WCM_ERR_NUMERIC with r->complete set, so every image, and a
 * log naming the diverged samples, can still be written. */
#ifndef WCM_SYNTH_H
#define WCM_SYNTH_H

#include "wcm/inverse.h"
#include "wcm/model.h"
#include "wcm/sampler.h"
#include "wcm/tiling.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WCM_SYNTH_STREAM_LOW 1
#define WCM_SYNTH_STREAM_COND(j) (2 + (uint64_t)(j))
#define WCM_SYNTH_MAX_STAGES (WCM_MAX_LEVELS + 1)
/* Stream of retry attempt a (1, 2, ...) of a net whose first draw used `stream`. */
#define WCM_SYNTH_RETRY_STREAM(stream, a) ((uint64_t)(stream) + ((uint64_t)(a) << 32))

/* Denoiser callbacks (wcm_denoiser_fn) -------------------------------------- */

/* Unconditional: ctx is a wcm_net* (flat or low-pass); residual = net(y). */
int wcm_net_denoiser(void *ctx, const wcm_tensor *y, wcm_tensor *residual, wcm_error *err);

/* Conditional: holds the fixed low-pass x_c and builds the 4-channel input
 * [x_c, y] for a conditional net; residual = the predicted noise on H, V, D. */
typedef struct {
    wcm_net *net;          /* conditional, 4 -> 3 */
    const wcm_tensor *low; /* x_c: [n][h][w][1], not owned */
    wcm_tensor input;      /* [n][h][w][4] work buffer, owned */
    const wcm_tiling *tiling; /* NULL or network passes in exact tiles (wcm/tiling.h) */
} wcm_cond_denoiser_ctx;

int wcm_cond_denoiser_init(wcm_cond_denoiser_ctx *cd, wcm_net *net, const wcm_tensor *low, wcm_error *err);
void wcm_cond_denoiser_free(wcm_cond_denoiser_ctx *cd);
/* ctx is a wcm_cond_denoiser_ctx*; y: [n][h][w][3] with n, h, w those of low. */
int wcm_cond_denoiser(void *ctx, const wcm_tensor *y, wcm_tensor *residual, wcm_error *err);

/* The cascade ------------------------------------------------------------------ */

/* One net's run of Algorithm 1. */
typedef struct {
    char name[16];               /* "low", "net" (flat model) or "cond<j>" */
    int scale;                   /* -1: the unconditional net; else j */
    int h, w, c;                 /* shape of one sampled value block */
    wcm_sampler_params params;   /* as used (seed, stream, offset filled; callbacks cleared) */
    int batch;
    wcm_sample_result *results;  /* [batch], owned */
    double seconds;              /* wall time of the whole net (batch) */
    int max_iterations;          /* largest iteration count over the batch */
    int cap_samples;             /* samples that hit the cap */
    int diverged_samples;        /* samples diverged after their retries */
    int retried_samples;         /* samples drawn again at least once */
    int skipped_samples;         /* samples that had diverged at a coarser net */
} wcm_synth_stage;

/* Reported to the progress callback: after every iteration (iteration != NULL)
 * and once when a net is finished (iteration == NULL, stage filled). */
typedef struct {
    const char *net;                     /* stage name */
    int scale;                           /* -1 for the unconditional net */
    int stage, nstages;                  /* 0-based index in the cascade, count */
    const wcm_progress_info *iteration;  /* from the sampler, or NULL */
    const wcm_synth_stage *finished;     /* when a net is done, else NULL */
} wcm_synth_progress_info;

typedef void (*wcm_synth_progress_fn)(void *user, const wcm_synth_progress_info *info);

typedef struct {
    wcm_sampler_params low;                  /* the unconditional net (low-pass or flat) */
    wcm_sampler_params cond[WCM_MAX_LEVELS]; /* conditional net j */
    /* In the per-net params, seed, stream, sample_offset, init_mean and
     * progress are ignored (set from here); trace is passed through. */
    uint64_t seed;                           /* 0 */
    int64_t sample_offset;                   /* 0: sample k uses sub-stream offset + k */
    int rescale_low;                         /* 1: min-max rescale the unconditional sample */
    double rescale_max;                      /* 0.8: ... to [0, rescale_max], per sample */
    double range_min, range_max;             /* -0.5, 1.5: allowed image values (health check);
                                                equal values disable the check */
    int retries;                             /* 0: redraws of a diverged sample, per net */
    wcm_synth_progress_fn progress;          /* NULL or progress reports */
    void *progress_user;
    wcm_tiling tiling;                       /* zero: whole images; else the conditional nets'
                                                passes run in exact tiles (the same bits, the
                                                sampler's sigma_t and std(y) over the whole image) */
} wcm_synth_options;

typedef struct {
    int nstages;                                /* nets run (the last may have diverged) */
    wcm_synth_stage stage[WCM_SYNTH_MAX_STAGES];/* in run order: low, cond J-1, ..., cond 0 */
    int nscales;                                /* images in `scale` */
    wcm_tensor scale[WCM_SYNTH_MAX_STAGES];     /* coarsest first ([0]: the (rescaled) low-pass
                                                   or the given input), last = final image */
    int cap_samples;                            /* sum over nets of samples that hit the cap */
    int diverged;                               /* samples diverged (after retries) at some net */
    int complete;                               /* every net ran; scale[nscales-1] is final
                                                   (diverged samples included, flagged) */
    double seconds;                             /* wall time of the whole cascade */
} wcm_synth_result;

/* Paper defaults for every net (wcm_sampler_params_default: h0 0.01,
 * sigma_0 1, beta 0.1, sigma_L 0.01, ascending step, cap 2000), seed 0,
 * rescale to [0, 0.8] on, range [-0.5, 1.5], no retries. */
void wcm_synth_options_default(wcm_synth_options *o);

/* Synthesis of n samples whose coarsest low-pass is low_h x low_w (for a flat
 * model: the image size). r is initialised here; free it with
 * wcm_synth_result_free whatever the return value. */
int wcm_synth_sample(const wcm_model *m, int n, int low_h, int low_w, const wcm_synth_options *o,
                     wcm_synth_result *r, wcm_error *err);

/* Super-resolution of every image of `low` ([n][h][w][1]) by 2^J. To draw K
 * samples of one image, pass it K times (each copy gets its own sub-stream).
 * options->low and the rescale settings are not used. */
int wcm_synth_superres(const wcm_model *m, const wcm_tensor *low, const wcm_synth_options *o,
                       wcm_synth_result *r, wcm_error *err);

/* The pixel-domain baseline (docs/model.md §7, wcm/inverse.h) in the same form: n
 * samples from the measurement x_c = measured (n * ms->count values) with the
 * flat (or lone low-pass) net of `m`, using options->low (stop rule default:
 * sigma_t <= sigma_L), seed and sample_offset, stream WCM_SYNTH_STREAM_LOW.
 * One net, named "net"; the output is r->scale[0] (n x ms->h x ms->w x 1). */
int wcm_synth_inverse(const wcm_model *m, const wcm_measurement *ms, const float *measured, int n,
                      const wcm_synth_options *o, wcm_synth_result *r, wcm_error *err);

void wcm_synth_result_free(wcm_synth_result *r);
/* The final images, or NULL unless the cascade completed. */
const wcm_tensor *wcm_synth_final(const wcm_synth_result *r);

/* Per sample, min-max rescale to [0, max] in place (a constant sample becomes 0). */
void wcm_rescale_range(wcm_tensor *x, double max);

/* The coarsest low-pass of a J-level Haar pyramid of img ([n][h][w][1], sizes
 * divisible by 2^J): low is [n][h/2^J][w/2^J][1]. */
int wcm_synth_lowpass(const wcm_tensor *img, int levels, wcm_tensor *low, wcm_error *err);
/* The low-pass-only reconstruction (every detail 0): each value repeated over
 * its 2^J x 2^J block. */
int wcm_synth_lowpass_only(const wcm_tensor *low, int levels, wcm_tensor *out, wcm_error *err);

/* Run log -------------------------------------------------------------------------- */

/* "converged", "cap" or "diverged" (the worst over the net's samples). */
const char *wcm_synth_stage_status(const wcm_synth_stage *st);
/* One line about a net's samples that hit the cap (empty if none). */
void wcm_synth_cap_warning(const wcm_synth_stage *st, char *buf, size_t size);
/* "cond0: 2 of 4 samples diverged (2 std-jump); 2 samples redrawn; diverged
 * samples: 2, 3" (empty when nothing diverged or was redrawn). */
void wcm_synth_divergence_summary(const wcm_synth_stage *st, char *buf, size_t size);
/* JSON object members (no braces; the caller wraps them with its own):
 *   "status": "ok" | "cap" | "diverged", "seconds", "threads", "warnings": [...],
 *   "nets": { NAME: {"scale", "size", "channels", "status", "seconds",
 *             "seconds_per_iteration", "iterations": [per sample], "final_sigma",
 *             "final_std", "sample_seconds", "sample_status", "params": {...}} }
 * in run order. malloc'd; NULL when out of memory. */
char *wcm_synth_log_json(const wcm_synth_result *r);

#ifdef __cplusplus
}
#endif
#endif

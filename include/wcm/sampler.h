/* wcm — Algorithm 1 (docs/model.md §6): sampling by ascent of log p using a denoiser's
 * residual, for a batch of samples with one denoiser call per iteration.
 *
 * Per sample (N = values per sample = h*w*c), with t = 1, 2, ...:
 *     h_t     = h0 t / (1 + h0 (t-1))          (h0 when fixed_step)
 *     d       = f(y)                            (the predicted noise)
 *     sigma_t = ||d|| / sqrt(N)
 *     gamma_t = sigma_t sqrt((1 - beta h_t)^2 - (1 - h_t)^2)
 *     if sigma_t > divergence_threshold (or not finite): status DIVERGED, y kept
 *     y       = y - h_t d + gamma_t z
 *     if std(y) is not finite, or exceeds std_jump times the smallest std(y)
 *       of the sample's earlier iterations: status DIVERGED (health check)
 *     stop (CONVERGED) when  WCM_STOP_SNR:   std(y) / sigma_t >= 1 / sigma_L
 *                            WCM_STOP_SIGMA: sigma_t <= sigma_L
 *     optional (plateau_iters > 0, SNR rule only): stop (PLATEAU) when the
 *       SNR came within plateau_db of the target but has not reached a new
 *       maximum for plateau_iters iterations
 *     after max_iters iterations without stopping: status CAP (not an error)
 * std(y) is the population standard deviation over the sample's N values.
 * A finished sample is frozen (the denoiser still sees the whole batch; only
 * running samples are updated). Output: y - f(y) from one final denoiser call.
 *
 * Why the std check: a sample can blow up slowly while the denoiser, which
 * never saw such values, reports little noise; std(y) then grows while
 * sigma_t stays small, and the SNR stopping rule is met by the blown-up
 * sample. In a healthy run std(y) falls from about sigma_0 towards the
 * signal's std and never doubles (measured with the authors' networks).
 * Why the plateau rule: with the authors' finest-scale nets the residual on a
 * clean sample has a floor near 1% of the details' std, so 20 log10(std(y) /
 * sigma_t) can settle 0.3 dB short of the 40 dB target; the sampler then
 * keeps applying the denoiser to an already clean sample until it drifts
 * away (their own code blows up the same way). Stopping at the plateau keeps
 * the sample at its best point. It is off by default (the paper's rule).
 *
 * Random numbers (wcm/rng.h): sample k of the batch uses normals of
 * (seed, stream) starting at index  base_k = (sample_offset + k) * 2^44:
 * the initial y = init_mean + sigma_0 * normals [base_k, base_k + N), the
 * noise z of iteration t is normals [base_k + t N, base_k + (t+1) N).
 * So a sample depends on its own index, never on the batch size or the number
 * of threads, and a cascade of nets should use a different `stream` per net.
 *
 * The library prints nothing; progress and per-iteration values go through
 * the optional callbacks. */
#ifndef WCM_SAMPLER_H
#define WCM_SAMPLER_H

#include "wcm/common.h"
#include "wcm/tensor.h"

typedef struct wcm_context wcm_context;

#ifdef __cplusplus
extern "C" {
#endif

/* Given the current batch y (NHWC), write the predicted noise f(y) into
 * `residual` (same shape, preallocated). Both are in the memory of the
 * sampler's context (host memory on the CPU). Return WCM_OK or an error code.
 * (A conditional net keeps its fixed low-pass x_c in ctx and builds [x_c, y].) */
typedef int (*wcm_denoiser_fn)(void *ctx, const wcm_tensor *y, wcm_tensor *residual, wcm_error *err);

typedef enum {
    WCM_STOP_DEFAULT = 0, /* SNR for wcm_sample, SIGMA for wcm_sample_constrained */
    WCM_STOP_SNR = 1,     /* std(y) / sigma_t >= 1 / sigma_L  (docs/model.md §6) */
    WCM_STOP_SIGMA = 2,   /* sigma_t <= sigma_L                (docs/model.md §7 baseline) */
} wcm_stop_rule;

typedef enum {
    WCM_SAMPLE_RUNNING = 0,   /* only seen inside callbacks */
    WCM_SAMPLE_CONVERGED = 1, /* the stopping rule was met */
    WCM_SAMPLE_CAP = 2,       /* max_iters reached without stopping (caller warns) */
    WCM_SAMPLE_DIVERGED = 3,  /* failed a health check (see wcm_divergence_reason) */
    WCM_SAMPLE_SKIPPED = 4,   /* not sampled: it diverged at an earlier net of a cascade */
    WCM_SAMPLE_PLATEAU = 5,   /* stopped: the SNR settled just short of the target (plateau rule) */
} wcm_sample_status;

/* Why a sample was marked diverged. */
typedef enum {
    WCM_DIVERGED_NONE = 0,
    WCM_DIVERGED_SIGMA = 1,     /* sigma_t above divergence_threshold */
    WCM_DIVERGED_NONFINITE = 2, /* sigma_t or std(y) not finite */
    WCM_DIVERGED_STD_JUMP = 3,  /* std(y) grew past std_jump x its smallest value */
    WCM_DIVERGED_RANGE = 4,     /* the image left the allowed range (checked by the cascade, wcm/synth.h) */
} wcm_divergence_reason;

/* One iteration of one sample, as passed to the trace callback. */
typedef struct {
    int sample;       /* index in the batch */
    int t;            /* iteration, from 1 */
    double h;         /* h_t */
    double sigma;     /* sigma_t */
    double gamma;     /* gamma_t (0 when the sample diverged this iteration) */
    double std_y;     /* std of y after the update (before it on divergence) */
    double snr_db;    /* 20 log10(std_y / sigma_t) */
    int status;       /* wcm_sample_status after this iteration */
} wcm_trace_entry;

typedef void (*wcm_trace_fn)(void *user, const wcm_trace_entry *entry);

/* Called once per iteration after all samples were updated. */
typedef struct {
    int t;                  /* iteration just done, from 1 */
    int max_iters;
    int batch;              /* samples in the batch */
    int active;             /* samples still running after this iteration */
    const double *sigma;    /* [batch]: latest sigma_t of every sample */
    double max_sigma_active;/* largest sigma_t among samples running at t (0 if none) */
    double seconds;         /* wall time since the start */
} wcm_progress_info;

typedef void (*wcm_progress_fn)(void *user, const wcm_progress_info *info);

typedef struct {
    double sigma_0;              /* initial noise std (1) */
    double sigma_L;              /* target (0.01) */
    double h0;                   /* first step size (0.01), in (0, 1] */
    double beta;                 /* noise injection (0.1; 1 = none), in [0, 1] */
    int fixed_step;              /* 0: ascending h_t; 1: h_t = h0 */
    int max_iters;               /* cap (2000) */
    double divergence_threshold; /* abort a sample when sigma_t exceeds it (1.5) */
    double std_jump;             /* 2: abort a sample whose std(y) exceeds this factor times its
                                    smallest std(y) so far; 0 disables the check */
    wcm_stop_rule stop_rule;     /* WCM_STOP_DEFAULT */
    int plateau_iters;           /* 0 (off): stop a sample whose SNR came within plateau_db of the
                                    target and has not improved for this many iterations */
    double plateau_db;           /* 3 */
    uint64_t seed;               /* 0 */
    uint64_t stream;             /* 0; give each net of a cascade its own */
    int64_t sample_offset;       /* 0; sample k uses random sub-stream sample_offset + k */
    const int64_t *sample_index; /* NULL, or [batch]: sample k uses sub-stream sample_index[k]
                                    instead (sub-batches of a larger set, retries) */
    const wcm_tensor *init_mean; /* NULL (zero mean) or same shape as y */
    wcm_trace_fn trace;          /* NULL or per-iteration values */
    void *trace_user;
    wcm_progress_fn progress;    /* NULL or called every iteration */
    void *progress_user;
    wcm_context *context;        /* where the vector updates, noise fills and sums run
                                    (NULL: the calling thread's default context) */
} wcm_sampler_params;

typedef struct {
    int iterations;     /* iterations done (updates of y, plus the diverging one) */
    double final_sigma; /* sigma_t of the last iteration */
    double final_std;   /* std(y) before the final denoising step */
    int status;         /* wcm_sample_status */
    int reason;         /* wcm_divergence_reason when status is DIVERGED */
    int retries;        /* redraws after divergence (set by the cascade, wcm/synth.h) */
    double seconds;     /* wall time until the sample finished + the final call */
} wcm_sample_result;

void wcm_sampler_params_default(wcm_sampler_params *p);

/* Run Algorithm 1 on the batch `y` (allocated by the caller with the wanted
 * shape n x h x w x c; its contents are overwritten; on return it holds the
 * samples y - f(y)). `results` (may be NULL) receives y->n entries.
 * Returns WCM_OK, WCM_ERR_NUMERIC when a sample diverged (results and y are
 * still filled for every sample), or the denoiser's / argument error. */
int wcm_sample(wcm_denoiser_fn denoiser, void *ctx, const wcm_sampler_params *params,
               wcm_tensor *y, wcm_sample_result *results, wcm_error *err);

/* Index of the first normal of sample k (see the header comment). */
uint64_t wcm_sampler_noise_base(const wcm_sampler_params *params, int k);

const char *wcm_sample_status_name(int status);
/* "sigma", "non-finite", "std-jump", "range" or "" (WCM_DIVERGED_NONE). */
const char *wcm_divergence_reason_name(int reason);

#ifdef __cplusplus
}
#endif
#endif

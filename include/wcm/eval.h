/* wcm — the paper's Figure 3: mean PSNR of denoisers across noise levels on
 * a folder of images, and its report (CSV, JSON, SVG plot, HTML page).
 *
 * The experiment takes the first n images of a folder sorted by name,
 * centre-crops them, adds one seeded Gaussian noise pattern scaled to every
 * level (as the authors' scripts do) and measures the mean PSNR of every
 * model and, for each multi-scale model, of its low-pass-only baseline. */
#ifndef WCM_EVAL_H
#define WCM_EVAL_H

#include "wcm/comm.h"
#include "wcm/denoise.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WCM_EVAL_MAX_SIGMAS 64
#define WCM_EVAL_MAX_CURVES 64

typedef struct {
    const char *images_dir;
    int n;              /* images (first by name; fewer if the folder has fewer), default 50 */
    int crop;           /* centre crop side, default 160 */
    int nsigmas;        /* default 10: 10^(0.5 ... 2.8) */
    double sigmas255[WCM_EVAL_MAX_SIGMAS]; /* noise levels in 0-255 units */
    int seed;
    wcm_noise_kind noise; /* default WCM_NOISE_TORCH */
    /* Where the example images (clean, noisy and each curve's result at the
     * level closest to 100) are written; NULL: none. Created (one level)
     * once the images have been read, so bad input leaves no folder. */
    const char *examples_dir;
    /* Progress lines (may be NULL), e.g. "skipped 2 non-image entries". */
    void (*progress)(void *user, const char *line);
    void *progress_user;
    /* NULL: one process. Otherwise every rank calls wcm_eval_denoise with the
     * same options; the images are shared out in contiguous parts, and every
     * rank returns the whole result, equal bit for bit to one process's (the
     * per-image PSNRs are gathered, then averaged in image order). Only the
     * rank holding image 0 (rank 0) writes the examples. */
    wcm_comm *comm;
} wcm_eval_denoise_options;

typedef struct {
    char name[256];     /* the model's name, plus ":lowpass-only" for the baseline */
    int model;          /* index into the models */
    int lowpass_only;
    int multiscale;
    int rf;             /* receptive field of the flat net or of the finest conditional net */
    double psnr[WCM_EVAL_MAX_SIGMAS];
} wcm_eval_curve;

typedef struct {
    char images_dir[4096];
    int n, crop, seed;
    wcm_noise_kind noise;
    char **image_names; /* n base names */
    int nsigmas;
    double sigmas255[WCM_EVAL_MAX_SIGMAS];
    double noisy_psnr[WCM_EVAL_MAX_SIGMAS];
    int ncurves;
    wcm_eval_curve curves[WCM_EVAL_MAX_CURVES];
    int example_sigma;  /* index of the level of the example images */
    double seconds;
} wcm_eval_denoise_result;

void wcm_eval_denoise_options_default(wcm_eval_denoise_options *o);
/* names[i] names models[i] in the results (e.g. the file stem). Lone
 * conditional networks and crops not divisible by 2^J are refused before
 * any image is read. */
int wcm_eval_denoise(const wcm_model *models, const char *const *names, int nmodels, const wcm_eval_denoise_options *o,
                     wcm_eval_denoise_result *r, wcm_error *err);
void wcm_eval_denoise_result_free(wcm_eval_denoise_result *r);
/* Writes results.csv (model,sigma255,psnr_noisy,psnr_denoised), results.json,
 * figure3.svg and report.html into dir (which must exist); the page shows
 * the example images written by wcm_eval_denoise into the same folder. */
int wcm_eval_denoise_write_report(const wcm_eval_denoise_result *r, const char *dir, wcm_error *err);

#ifdef __cplusplus
}
#endif
#endif

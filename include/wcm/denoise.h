/* wcm — denoising with a model (docs/model.md §5) and the quality measure.
 *
 * A single flat network denoises in one pass: x = y - f(y). A multi-scale
 * model decomposes y into J Haar levels, denoises the coarsest low-pass with
 * the low-pass net, then for j = J-1 ... 0 denoises the details given the
 * current low-pass, details = noisy details - f_j([low, noisy details]), and
 * reconstructs low <- inverse Haar(low, details). The "low-pass only"
 * baseline sets every detail to zero. */
#ifndef WCM_DENOISE_H
#define WCM_DENOISE_H

#include "wcm/model.h"
#include "wcm/tiling.h"

#ifdef __cplusplus
extern "C" {
#endif

/* noisy: [n][h][w][1]; out is allocated to the same shape. For a multi-scale
 * model h and w must be divisible by 2^J. lowpass_only applies only to
 * multi-scale models (error otherwise). */
int wcm_denoise(const wcm_model *m, const wcm_tensor *noisy, int lowpass_only, wcm_tensor *out, wcm_error *err);

/* Denoising of any image size in bounded memory (wcm/tiling.h). */
typedef struct {
    int lowpass_only;  /* multi-scale models: keep only the denoised low-pass */
    int pad;           /* sizes not divisible by 2^J: pad by symmetric reflection to the
                          next multiple, crop the result back (0: an error) */
    wcm_tiling tiling; /* every network pass tiled under this bound (host tensors);
                          the result is bit-identical to the whole-image pass */
} wcm_denoise_options;

/* What a run did: the padding added at the bottom and right, and the tile
 * side of each network (0: whole image): tile[0] the flat or low-pass net,
 * tile[1 + j] conditional net j. */
typedef struct {
    int pad_bottom, pad_right;
    int tile[1 + WCM_MAX_LEVELS];
} wcm_denoise_info;

/* wcm_denoise with options (o NULL: all zero); info may be NULL. */
int wcm_denoise_ex(const wcm_model *m, const wcm_tensor *noisy, const wcm_denoise_options *o, wcm_tensor *out,
                   wcm_denoise_info *info, wcm_error *err);
/* The same with the result written over x (host): a multi-scale model then
 * needs memory for x and its pyramid (4/3 of x) only, plus one tile's
 * activations. On error x is undefined. */
int wcm_denoise_in_place(const wcm_model *m, wcm_tensor *x, const wcm_denoise_options *o, wcm_denoise_info *info,
                         wcm_error *err);

/* Units: every sigma in the API is in the pixels' [0, 1] units, except where
 * a name ends in _255: those take the paper's and the command line's 0-255
 * scale, sigma_255 = 255 * sigma (docs/model.md §1). */

/* Add Gaussian noise of standard deviation `sigma` (in [0,1] units) in place.
 * Noise value i of image k is normal number i of (seed, stream = k + 1) of
 * the counter-based generator in wcm/rng.h, so it depends on neither the
 * thread count nor the batch composition. */
int wcm_add_noise(wcm_tensor *x, double sigma, uint64_t seed, uint64_t first_image_index, wcm_error *err);

/* Noise generators for experiments:
 *  WCM_NOISE_TORCH  - PyTorch-compatible (wcm/rng_torch.h): the noise of
 *                     torch.manual_seed(seed); torch.randn(n, 1, h, w), i.e.
 *                     the authors' evaluation scripts, for the whole batch;
 *  WCM_NOISE_PHILOX - counter-based (wcm/rng.h): value i of image k is normal
 *                     number i of (seed, stream k + 1).
 * Both are sequential-equivalent: results never depend on the thread count. */
typedef enum { WCM_NOISE_TORCH = 0, WCM_NOISE_PHILOX = 1 } wcm_noise_kind;
int wcm_noise_kind_parse(const char *s, wcm_noise_kind *kind);
/* z[0 .. n_images * per_image) = standard normal noise of the chosen kind. */
void wcm_noise_pattern(wcm_noise_kind kind, uint64_t seed, int n_images, size_t per_image, float *z);
/* noisy = clean + z * sigma255 / 255, in float32 in the order PyTorch uses
 * (the authors' evaluation adds noise given on the 0-255 scale this way). */
void wcm_noise_apply_255(const float *clean, const float *z, size_t n, double sigma255, float *noisy);
/* The former name of wcm_noise_apply_255 (same arguments, sigma on the
 * 0-255 scale), kept for existing callers. */
void wcm_noise_apply(const float *clean, const float *z, size_t n, double sigma255, float *noisy);

/* PSNR in dB with peak 1: 10 log10(1 / MSE). Infinity for identical inputs. */
double wcm_psnr(const float *a, const float *b, size_t n);
/* PSNR of an estimate against a reference as the reference evaluation of
 * samples (super-resolution, inverse problems) computes it: each estimated
 * value is first clamped to [-1, 2] (docs/model.md §1). */
double wcm_psnr_clamped(const float *reference, const float *estimate, size_t n);

#ifdef __cplusplus
}
#endif
#endif

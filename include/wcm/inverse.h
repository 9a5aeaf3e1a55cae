/* wcm — linear inverse problems with the pixel-domain constrained sampler
 * (docs/model.md §7 baseline, Kadkhodaie & Simoncelli 2021).
 *
 * A measurement is x_c = M^T x with M having orthonormal columns (M^T M = I),
 * i.e. the rows of M^T are orthonormal. Algorithm 1 then runs with
 *     d = (I - M M^T) f(y) + M M^T y - M x_c
 * from  y ~ N(M x_c + 0.5 (I - M M^T) 1, sigma_0^2)  and stops when
 * sigma_t <= sigma_L. The output y - d satisfies M^T(output) = x_c exactly
 * (up to float rounding).
 *
 * Ready-made measurements (per sample of shape h x w x c, NHWC order):
 *   block average, factor F: one value per F x F block and channel,
 *       M^T x = F * (block mean)   (so a low-res image L gives x_c = F * L),
 *       M c   = c / F on every value of the block;
 *   mask (inpainting): M^T x = the values at known pixels (every channel), in
 *       increasing index order; M c puts them back, zeros elsewhere;
 *   random pixels: a mask keeping round(fraction * h * w) pixels chosen by a
 *       seeded partial Fisher-Yates shuffle (wcm_rng, stream 0).
 * Custom measurements fill the struct's fields and callbacks themselves; the
 * callbacks may run concurrently for different samples (OpenMP), so they must
 * not write shared state. */
#ifndef WCM_INVERSE_H
#define WCM_INVERSE_H

#include "wcm/common.h"
#include "wcm/sampler.h"
#include "wcm/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wcm_measurement wcm_measurement;
struct wcm_measurement {
    int h, w, c;  /* shape of one sample */
    size_t count; /* measured values per sample (columns of M) */
    /* coeffs[count] = M^T image[h*w*c]  (one sample) */
    void (*measure)(const wcm_measurement *m, const float *image, float *coeffs);
    /* image[h*w*c] += M coeffs[count]   (one sample) */
    void (*back_project_add)(const wcm_measurement *m, const float *coeffs, float *image);
    /* state of the built-in measurements (owned; freed by wcm_measurement_free) */
    int factor;
    size_t *kept_index; /* mask: the count kept value indices, increasing */
    void *user;         /* for custom measurements; not freed */
};

/* Super-resolution by `factor` (h and w must be divisible by it). */
int wcm_measurement_block_average(wcm_measurement *m, int h, int w, int c, int factor, wcm_error *err);
/* Inpainting: known[y*w + x] != 0 marks a known pixel (all its channels). */
int wcm_measurement_mask(wcm_measurement *m, int h, int w, int c, const uint8_t *known, wcm_error *err);
/* A random `fraction` (0..1] of the pixels is known; the choice depends only on seed. */
int wcm_measurement_random_pixels(wcm_measurement *m, int h, int w, int c, double fraction,
                                  uint64_t seed, wcm_error *err);
void wcm_measurement_free(wcm_measurement *m);

/* coeffs[k * count + j] = (M^T images_k)_j for every sample k. */
int wcm_measurement_apply(const wcm_measurement *m, const wcm_tensor *images, float *coeffs, wcm_error *err);
/* images_k = M coeffs_k (overwrites; e.g. the blocky image M M^T x). */
int wcm_measurement_back_project(const wcm_measurement *m, const float *coeffs, wcm_tensor *images,
                                 wcm_error *err);

/* The projected denoiser d(y) above, as a wcm_denoiser_fn around the user's. */
typedef struct {
    wcm_denoiser_fn denoiser;
    void *denoiser_ctx;
    const wcm_measurement *measurement;
    const float *measured; /* x_c: batch * count values, not owned */
    int batch;
    float *work;           /* 2 * batch * count, owned */
} wcm_constrained_ctx;

int wcm_constrained_init(wcm_constrained_ctx *cc, const wcm_measurement *m, const float *measured, int batch,
                         wcm_denoiser_fn denoiser, void *denoiser_ctx, wcm_error *err);
void wcm_constrained_free(wcm_constrained_ctx *cc);
/* ctx is a wcm_constrained_ctx*. */
int wcm_constrained_denoiser(void *ctx, const wcm_tensor *y, wcm_tensor *residual, wcm_error *err);
/* mean_k = M x_c,k + 0.5 (I - M M^T) 1, for a preallocated batch `mean`. */
int wcm_constrained_init_mean(const wcm_measurement *m, const float *measured, wcm_tensor *mean, wcm_error *err);

/* Everything together: sample y (preallocated, n x h x w x c matching m) given
 * x_c = measured (n * count values). params->stop_rule WCM_STOP_DEFAULT means
 * WCM_STOP_SIGMA here; params->init_mean must be NULL (it is set internally).
 * Returns like wcm_sample. */
int wcm_sample_constrained(const wcm_measurement *m, const float *measured, wcm_denoiser_fn denoiser,
                           void *denoiser_ctx, const wcm_sampler_params *params, wcm_tensor *y,
                           wcm_sample_result *results, wcm_error *err);

#ifdef __cplusplus
}
#endif
#endif

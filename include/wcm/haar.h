/* wcm — orthogonal Haar pyramid normalised to local means (docs/model.md §2).
 *
 * For a 2x2 block a b / c d of the current low-pass:
 *   low = (a+b+c+d)/4  H = (a+b-c-d)/4  V = (a-b+c-d)/4  D = (a-b-c+d)/4
 * Level j (0-based, finest first) is an NHWC tensor with 4 channels
 * [low, H, V, D] of size h/2^(j+1) x w/2^(j+1): exactly the input layout of
 * the conditional network at that scale. */
#ifndef WCM_HAAR_H
#define WCM_HAAR_H

#include "wcm/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WCM_MAX_LEVELS 8

typedef struct {
    int levels;
    wcm_tensor level[WCM_MAX_LEVELS];
} wcm_pyramid;

/* One level: x (c = 1, even h and w) -> out (c = 4, half size). */
int wcm_haar_split(const wcm_tensor *x, wcm_tensor *out, wcm_error *err);
/* Inverse of one level: low (c = 1) and details taken from channels 1..3 of
 * `coeffs` (c = 4, channel 0 ignored) or channels 0..2 when c = 3. */
int wcm_haar_merge(const wcm_tensor *low, const wcm_tensor *coeffs, wcm_tensor *out, wcm_error *err);

/* J-level decomposition of single-channel images; sizes must be divisible by 2^J. */
int wcm_haar_forward(const wcm_tensor *img, int levels, wcm_pyramid *p, wcm_error *err);
/* Reconstruct from the coarsest low-pass and every level's details. */
int wcm_haar_inverse(const wcm_pyramid *p, wcm_tensor *img, wcm_error *err);

/* The same on tensors in a context's memory (results allocated there):
 * the functions above are these on host tensors with a host context. */
typedef struct wcm_context wcm_context;
int wcm_haar_split_on(wcm_context *ctx, const wcm_tensor *x, wcm_tensor *out, wcm_error *err);
int wcm_haar_merge_on(wcm_context *ctx, const wcm_tensor *low, const wcm_tensor *coeffs, wcm_tensor *out,
                      wcm_error *err);
int wcm_haar_forward_on(wcm_context *ctx, const wcm_tensor *img, int levels, wcm_pyramid *p, wcm_error *err);
int wcm_haar_inverse_on(wcm_context *ctx, const wcm_pyramid *p, wcm_tensor *img, wcm_error *err);
void wcm_pyramid_free(wcm_pyramid *p);

#ifdef __cplusplus
}
#endif
#endif

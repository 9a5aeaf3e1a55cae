/* wcm — statistics of images that judge samples without a reference. */
#ifndef WCM_STATS_H
#define WCM_STATS_H

#include "wcm/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Stripe ratio of image `index` of a 1-channel batch: the mean absolute
 * difference between horizontal neighbours whose left pixel is on an even
 * column (a pair inside one 2x2 Haar block) divided by the same for odd
 * columns (a pair across two blocks); `vertical` is the same along columns.
 * Natural images give 1.00 within a few percent; a model whose finest-scale
 * details are wrong leaves 2-periodic stripes that move it away from 1.
 * Either output may be NULL. Needs h, w >= 3. */
int wcm_stripe_ratio(const wcm_tensor *t, int index, double *horizontal, double *vertical, wcm_error *err);

#ifdef __cplusplus
}
#endif
#endif

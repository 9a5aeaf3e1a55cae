/* The trainer's exact sums (src/train_exact.c; not part of the public API):
 * the pieces of a training forward and backward whose sums over the batch
 * must not depend on how the batch is split (wcm_trainer.exact). Each is a
 * collective over t->comm: every rank calls it, in the same order, a rank
 * without images with n = 0. */
#ifndef WCM_TRAIN_EXACT_H
#define WCM_TRAIN_EXACT_H

#include "backend_impl.h"
#include "wcm/train.h"

typedef struct wcm_exact_state wcm_exact_state;
void wcm_exact_free(wcm_exact_state *s);

/* The group's size and this rank's first image in it, for a part of n images. */
int wcm_exact_group(const wcm_trainer *t, int n, int *images, int *first, wcm_error *err);
/* Batch statistics of layer l's conv output x (n images of hw pixels) over
 * the group, into t->bn_mean and t->bn_sd (the state keeps the mean). */
int wcm_exact_bn_stats(wcm_exact_state **s, wcm_trainer *t, wcm_context *ctx, int l, const float *x, int n, size_t hw,
                       wcm_error *err);
/* Backward of layer l's batch norm and ReLU: dy (the gradient at its output)
 * becomes the gradient at x in place; the group's gamma gradient goes into
 * t->grad. */
int wcm_exact_bn_backward(wcm_exact_state **s, wcm_trainer *t, wcm_context *ctx, int l, const float *x, float *dy, int n,
                          size_t hw, wcm_error *err);
/* Before a backward: the fixed-point sums start at 0. */
void wcm_exact_weights_begin(wcm_exact_state *s, const wcm_trainer *t);
/* Layer l's weight gradient for the shape's n images (input x, output gradient dy), added in fixed point. */
int wcm_exact_weight_grad(wcm_exact_state **s, wcm_trainer *t, wcm_context *ctx, int l, const wcm_conv_shape *sh,
                          const float *x, const float *dy, wcm_error *err);
/* After a backward: the fixed-point sums added over the ranks, into t->grad's weights. */
int wcm_exact_finish(wcm_exact_state **s, wcm_trainer *t, wcm_error *err);

#endif

/* wcm — the progress of a training run, stored in its checkpoint's metadata
 * so that `wcm train --resume` continues exactly: where the run stands
 * (completed epochs, batches done in the current one, optimiser steps), the
 * running sums of the current epoch, the training time, and one history row
 * per completed epoch (the training log).
 *
 * Metadata keys: wcm.train.epoch, wcm.train.batch_in_epoch, wcm.train.step,
 * wcm.state.loss_sum, wcm.state.psnr_sum, wcm.state.seconds and
 * wcm.state.history ("epoch,loss,psnr,test_psnr,lr,seconds" rows joined by
 * ';'; test_psnr is "nan" without a test set).
 *
 * A checkpoint is untrusted input: every number is parsed strictly and range
 * checked, and the history must hold exactly one row per completed epoch,
 * numbered 1, 2, .... Nothing here depends on the rest of the training code. */
#ifndef WCM_TRAIN_STATE_H
#define WCM_TRAIN_STATE_H

#include "wcm/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    double epoch, loss, psnr, test_psnr, lr, seconds;
} wcm_epoch_row;

typedef struct {
    int epoch, batch;          /* completed epochs; batches done in the current one */
    long long step;            /* optimiser steps done */
    double loss_sum, psnr_sum; /* over the batches done in the current epoch */
    double seconds;            /* training time so far (all runs) */
    wcm_epoch_row *rows;       /* one per completed epoch (malloc'd) */
    int nrows, cap;
} wcm_train_state;

/* Limits of a valid state (far beyond any real run). */
#define WCM_TRAIN_MAX_EPOCH 100000000
#define WCM_TRAIN_MAX_STEP ((long long)1 << 53)

void wcm_train_state_free(wcm_train_state *s);
/* Append the row of a completed epoch (the array grows as needed). */
int wcm_train_state_add_row(wcm_train_state *s, const wcm_epoch_row *row, wcm_error *err);
/* Write the state's keys into `meta` (other keys are left alone). */
int wcm_train_state_to_meta(const wcm_train_state *s, wcm_array_list *meta, wcm_error *err);
/* Read a state back; *s is empty on error (a message names the bad key). */
int wcm_train_state_from_meta(const wcm_array_list *meta, wcm_train_state *s, wcm_error *err);
/* The training log as CSV: "epoch,train_loss,train_psnr,test_psnr,lr,seconds"
 * and one line per row (malloc'd text). */
int wcm_train_state_log_csv(const wcm_train_state *s, char **text, size_t *len, wcm_error *err);

#ifdef __cplusplus
}
#endif
#endif

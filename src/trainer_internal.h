/* Shared between the trainer's files (not part of the public API). */
#ifndef WCM_TRAINER_INTERNAL_H
#define WCM_TRAINER_INTERNAL_H

#include "backend_impl.h"
#include "wcm/io.h"
#include "wcm/model.h"
#include "wcm/trainer.h"

const char *wcm_noise_law_name(wcm_noise_law n);
const char *wcm_lr_schedule_name(wcm_lr_schedule s);
/* Checks the options and fills the defaults that depend on others (epochs, halving period, test fraction). */
int wcm_train_options_resolve(wcm_train_options *o, wcm_error *err);
/* The options a checkpoint records ("wcm.train.*" keys). */
int wcm_train_options_to_meta(const wcm_train_options *o, int noise_high, wcm_array_list *m, wcm_error *err);
/* Refuses, naming the option, a resumed run that changes what its checkpoint fixed. */
int wcm_train_check_resume(const char *path, const wcm_array_list *have, const wcm_array_list *want, wcm_error *err);
/* wcm_train_checkpoint_save with more arrays (may be NULL) and, when
 * export_params / export_running are given, those values as the model's
 * "net.*" tensors instead of the network's own. */
int wcm_train_checkpoint_save_with(const char *path, const wcm_trainer *t, const wcm_array_list *meta,
                                   const wcm_array_list *extra, const float *export_params, const float *export_running,
                                   wcm_error *err);

#endif

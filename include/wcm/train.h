/* wcm — training the BF-CNNs exactly as the reference does (docs/model.md §3–4).
 *
 * A trainer owns one flat block holding the gradients and both Adam moments
 * of a network, laid out exactly like net->params (conv weights
 * [k][k][cin][cout] then gammas, per layer), so the optimiser and the
 * checkpoint are single loops. It also owns the activations of one batch.
 *
 * Training mode (the reference's model.train()): every batch norm uses the
 * batch statistics, s_c = sqrt(var_c + 1e-5) with the biased variance of the
 * conv output over (N, H, W) (computed around the mean, which is not
 * subtracted from x), y = x / s_c * gamma_c, and running_sd becomes
 * 0.9 running_sd + 0.1 s_c. The gradient flows through s_c.
 * Frozen batch norm (not the reference; for fine-tuning): every batch norm
 * divides by its fixed running_sd, exactly as in evaluation, so what training
 * optimises is the function that is used afterwards (small batches mixing
 * noise levels make the batch statistics, and so the trained function, depend
 * on each batch's composition). running_sd is then a constant.
 * Loss: sum((f(noisy) - target)^2) / batch. Adam as PyTorch 1.13 (betas 0.9,
 * 0.999, eps 1e-8, bias-corrected).
 *
 * Every op runs on the backend of the network's context (wcm/backend.h).
 * Every reduction (batch-norm statistics, gamma gradients, the loss) sums
 * fixed chunks in a fixed order, and the backend's weight gradient does not
 * depend on the thread count: a training run is bit-reproducible for any
 * number of threads given the same backend and SIMD level. */
#ifndef WCM_TRAIN_H
#define WCM_TRAIN_H

#include "wcm/comm.h"
#include "wcm/net.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WCM_BN_EPS 1e-5
#define WCM_BN_MOMENTUM 0.1

typedef struct wcm_trainer_memory wcm_trainer_memory;

typedef struct wcm_trainer {
    wcm_net *net;
    wcm_context *ctx;         /* the network's context at creation (NULL: the calling thread's default) */
    /* One block of 3 * nparams floats in the context's memory: grad, then
     * adam_m, then adam_v (host memory on a host-visible backend such as the CPU). */
    float *block;
    float *grad, *adam_m, *adam_v;
    int64_t adam_step;        /* Adam steps taken (PyTorch's state["step"]) */
    double beta1, beta2, eps; /* 0.9, 0.999, 1e-8 */
    int update_running_sd;    /* 1 (default): training forward updates running_sd */
    int bn_frozen;            /* 0 (default): batch statistics; 1: fixed running_sd */
    /* 0 (default, the reference): running_sd = 0.9 running_sd + 0.1 s from
     * the first step, so it forgets its initial 1 only after ~50 steps (an
     * evaluation before then divides every layer by a far too large sd).
     * 1: the momentum is max(0.1, 1 / (updates + 1)), so running_sd starts
     * as the first batch's sd and is an average of the batch sds since. */
    int running_warmup;
    int64_t running_updates;  /* training forwards that updated running_sd */
    /* Data parallelism: the ranks of `comm` each hold a part of one batch.
     * Batch statistics are summed over the ranks (the same running_sd on
     * every rank); each rank's t->grad is its part's contribution, to be
     * summed over ranks by the caller. NULL: one process. Ranks whose part is
     * empty call wcm_train_participate instead of the gradient. */
    wcm_comm *comm;
    int loss_batch;           /* the loss divides by this (the whole batch); 0: the batch given */
    /* Exact sums (0 by default; a host-visible backend): every sum over the
     * batch (batch statistics, gamma and weight gradients) is made of
     * per-image terms, each computed on its own, added in image order or in
     * 64-bit fixed point, so a step gives the same bits however the batch is
     * split over ranks and threads. t->grad is then the gradient of the whole
     * group (all ranks' images), the same on every rank: nothing is left for
     * the caller to sum. group_images: images of the group over all ranks,
     * group_first: this rank's first among them (0, 0: this rank's batch
     * alone). */
    int exact;
    int group_images, group_first;
    double exact_comm_seconds; /* exact sums: time spent in their collectives (this process) */

    /* Activations of the last training forward (owned, in the context's memory; grown on demand). */
    size_t pixel_cap;         /* n*h*w the buffers hold */
    int n, h, w;              /* shape of the last batch */
    float **z;                /* per layer 0..nlayers-2: conv output before batch norm */
    float *scratch[2];        /* pixel_cap * 64 each */
    float *out_grad;          /* pixel_cap * cout: dLoss/dOutput */
    double *bn_mean, *bn_sd;  /* per layer * 64: batch statistics of z */
    /* The parameters and running_sd where the ops read them: the network's
     * own host blocks on a host-visible backend, else copies the trainer
     * keeps in step with them (the host blocks stay the authority). */
    float *params, *running;
    wcm_trainer_memory *memory; /* the buffers behind the pointers above */
} wcm_trainer;

int wcm_trainer_create(wcm_trainer **out, wcm_net *net, wcm_error *err);
void wcm_trainer_free(wcm_trainer *t);
/* Zero the Adam moments and step count (a fresh optimiser). */
void wcm_trainer_reset_adam(wcm_trainer *t);

/* Training-mode forward: out = f(in) with batch statistics (running_sd is
 * updated unless t->update_running_sd is 0). Keeps what backward needs.
 * out is (re)allocated to [n][h][w][cout] if its shape differs. */
int wcm_train_forward(wcm_trainer *t, const wcm_tensor *in, wcm_tensor *out, wcm_error *err);
/* Population statistics for frozen batch norm: a training-mode forward of
 * `in` (batch statistics, running_sd untouched, whatever bn_frozen says) that
 * adds each batch-norm layer's sd_c^2 (= var_c + 1e-5) to acc[l * 64 + c]
 * (acc: nlayers * 64 doubles, zeroed by the caller). Local to this process:
 * under a communicator, each rank passes the whole batch. */
int wcm_train_bn_accumulate(wcm_trainer *t, const wcm_tensor *in, double *acc, wcm_error *err);
/* running_sd = sqrt(acc / batches) in every batch-norm layer. */
void wcm_train_bn_set_running(wcm_trainer *t, const double *acc, int batches);
/* Gradient of the last forward's parameters given dLoss/dOutput (NHWC,
 * [n][h][w][cout], in the trainer context's memory); overwrites t->grad.
 * `in` is the forward's input. */
int wcm_train_backward(wcm_trainer *t, const wcm_tensor *in, const float *dout, wcm_error *err);
/* forward + loss + backward: t->grad = dLoss/dParams at the current
 * parameters. *loss = sum((out - target)^2) / n. `out` may be NULL. */
int wcm_train_gradient(wcm_trainer *t, const wcm_tensor *in, const wcm_tensor *target, double *loss,
                       wcm_tensor *out, wcm_error *err);
/* A rank without images in this part of the batch: takes part in the
 * collectives of a training forward and backward (batch statistics, the
 * running_sd update) with nothing of its own; t->grad becomes 0. */
int wcm_train_participate(wcm_trainer *t, wcm_error *err);
/* One Adam update of net->params from t->grad with learning rate lr
 * (also invalidates the network's folded inference weights). */
void wcm_adam_step(wcm_trainer *t, double lr);
/* Non-zero if every gradient value is finite. */
int wcm_trainer_grad_finite(const wcm_trainer *t);

/* Checkpoint: one safetensors file that wcm_model_load reads as a
 * single-network model ("net.*" tensors, metadata wcm.model=single), plus
 * the Adam moments "train.adam_m" / "train.adam_v" (1-D, in the layout of
 * net->params), "wcm.train.adam_step" and every pair of `meta` (may be NULL).
 * Written atomically; refused if the parameters are not finite. */
int wcm_train_checkpoint_save(const char *path, const wcm_trainer *t, const wcm_array_list *meta, wcm_error *err);
/* Loads a checkpoint: a new network and its trainer (free the network with
 * wcm_net_free(t->net) after wcm_trainer_free(t)); `meta` receives the
 * file's metadata (initialised here, free with wcm_array_list_free). */
int wcm_train_checkpoint_load(const char *path, wcm_trainer **t, wcm_array_list *meta, wcm_error *err);

/* ---- building blocks (NHWC host buffers of m pixels with c <= 64 channels):
 * the ops of wcm/backend.h on the calling thread's default context (a CPU
 * context when that one is a device's). They report no status: when memory
 * for their partial sums runs out, wcm_loss_sse returns NaN and the others
 * leave their outputs unwritten (the wcm_op_* functions return the status). */

/* Loss sum((out - target)^2) / batch in double (fixed-order chunked sum);
 * dout (may be NULL) = 2 (out - target) / batch. */
double wcm_loss_sse(const float *out, const float *target, size_t count, int batch, float *dout);
/* Batch statistics of x: mean_c and sd_c = sqrt(biased var_c + 1e-5), in double. */
void wcm_bn_stats(const float *x, size_t m, int c, double *mean, double *sd);
/* y = x / sd_c * gamma_c, then max(y, 0) when relu. y may alias x. */
void wcm_bn_apply(const float *x, size_t m, int c, const float *gamma, const double *sd, int relu, float *y);
/* Backward of y = [relu](x / sd_c(x) * gamma_c) with the batch statistics of
 * x, given dy: dx (may alias dy) and dgamma (written, c values). With
 * mean == NULL, sd is a constant (frozen batch norm): no gradient through it. */
void wcm_bn_backward(const float *x, const float *dy, size_t m, int c, const float *gamma, const double *mean,
                     const double *sd, int relu, float *dx, float *dgamma);
/* ReLU backward from its output: dx = dy where y > 0, else 0 (dx may alias dy). */
void wcm_relu_backward(const float *y, const float *dy, size_t count, float *dx);

#ifdef __cplusplus
}
#endif
#endif

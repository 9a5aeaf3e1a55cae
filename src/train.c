/* Training-mode forward and backward of the BF-CNNs, the reference loss and
 * Adam (docs/model.md §3–4), as ops of the network context's backend. See
 * include/wcm/train.h for the conventions. */
#include "wcm/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "net_internal.h"
#include "train_exact.h"
#include "trainer_internal.h"
#include "wcm/io.h"

/* ---- building blocks: the ops on host buffers -------------------------- */

double wcm_loss_sse(const float *out, const float *target, size_t count, int batch, float *dout) {
    double loss;
    return wcm_op_loss_sse(wcm_context_host(), count, out, target, batch, dout, &loss, NULL) ? NAN : loss;
}

void wcm_bn_stats(const float *x, size_t m, int c, double *mean, double *sd) {
    wcm_op_bn_stats(wcm_context_host(), x, m, c, mean, sd, NULL);
}

void wcm_bn_apply(const float *x, size_t m, int c, const float *gamma, const double *sd, int relu, float *y) {
    wcm_op_bn_apply(wcm_context_host(), x, m, c, gamma, sd, relu, y, NULL);
}

void wcm_bn_backward(const float *x, const float *dy, size_t m, int c, const float *gamma, const double *mean,
                     const double *sd, int relu, float *dx, float *dgamma) {
    wcm_op_bn_backward(wcm_context_host(), x, dy, m, c, gamma, mean, sd, relu, dx, dgamma, NULL);
}

void wcm_relu_backward(const float *y, const float *dy, size_t count, float *dx) {
    wcm_op_relu_backward(wcm_context_host(), count, y, dy, dx, NULL);
}

/* ---- the trainer's memory ---------------------------------------------- */

struct wcm_trainer_memory {
    int host_visible;     /* of the backend the trainer was made for */
    wcm_buffer *block;    /* grad, adam_m, adam_v */
    wcm_buffer *stats;    /* bn_mean, bn_sd */
    wcm_buffer *values;   /* params, running (not host-visible only) */
    wcm_buffer **z;       /* nlayers - 1 */
    wcm_buffer *scratch[2], *out_grad;
    /* Data parallelism: the batch statistics summed over ranks, on the host. */
    double *dist_mean;    /* nlayers * 64 */
    double dist_pixels;   /* pixels of the whole batch */
    wcm_exact_state *exact; /* t->exact: the exact sums' buffers */
};

static wcm_context *trainer_ctx(const wcm_trainer *t) { return wcm_ctx(t->ctx); }

/* The backend copy of a host parameter pointer (a layer's weight or gamma). */
static float *param_at(const wcm_trainer *t, const float *host) { return t->params + (host - t->net->params); }
static float *running_at(const wcm_trainer *t, const float *host) { return t->running + (host - t->net->running_sd); }

/* Whether t->params and t->running are copies, and the context still the kind it was made for. */
static int check_residency(const wcm_trainer *t, wcm_context *ctx, wcm_error *err) {
    if (wcm_context_host_visible(ctx) == t->memory->host_visible) return WCM_OK;
    return wcm_fail(err, WCM_ERR_ARG, "trainer: its context's backend changed to %s since the trainer was made",
                    wcm_backend_name(wcm_context_backend(ctx)));
}

/* Copies the host parameters and running_sd to the backend (no-op when host-visible). */
static int values_to_backend(wcm_trainer *t, wcm_context *ctx, wcm_error *err) {
    if (t->memory->host_visible) return WCM_OK;
    const wcm_net *net = t->net;
    int rc = wcm_memcpy_to_backend(ctx, t->params, net->params, net->nparams * sizeof(float), err);
    return rc ? rc : wcm_memcpy_to_backend(ctx, t->running, net->running_sd, net->nrunning * sizeof(float), err);
}

static int values_to_host(wcm_trainer *t, wcm_context *ctx, int params, wcm_error *err) {
    if (t->memory->host_visible) return WCM_OK;
    const wcm_net *net = t->net;
    return params ? wcm_memcpy_to_host(ctx, net->params, t->params, net->nparams * sizeof(float), err)
                  : wcm_memcpy_to_host(ctx, net->running_sd, t->running, net->nrunning * sizeof(float), err);
}

static void free_activations(wcm_trainer *t) {
    wcm_trainer_memory *m = t->memory;
    if (m->z)
        for (int l = 0; l < t->net->nlayers - 1; l++) wcm_buffer_free(m->z[l]);
    free(m->z);
    free(t->z);
    m->z = NULL;
    t->z = NULL;
    wcm_buffer_free(m->scratch[0]);
    wcm_buffer_free(m->scratch[1]);
    wcm_buffer_free(m->out_grad);
    m->scratch[0] = m->scratch[1] = m->out_grad = NULL;
    t->scratch[0] = t->scratch[1] = t->out_grad = NULL;
    t->pixel_cap = 0;
}

void wcm_trainer_free(wcm_trainer *t) {
    if (!t) return;
    if (t->memory) {
        free_activations(t);
        wcm_buffer_free(t->memory->block);
        wcm_buffer_free(t->memory->stats);
        wcm_buffer_free(t->memory->values);
        free(t->memory->dist_mean);
        wcm_exact_free(t->memory->exact);
        free(t->memory);
    }
    free(t);
}

int wcm_trainer_create(wcm_trainer **out, wcm_net *net, wcm_error *err) {
    *out = NULL;
    wcm_trainer *t = calloc(1, sizeof *t);
    if (t) t->memory = calloc(1, sizeof *t->memory);
    if (!t || !t->memory) {
        free(t);
        return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    }
    t->net = net;
    t->ctx = net->context;
    wcm_context *ctx = trainer_ctx(t);
    wcm_trainer_memory *m = t->memory;
    m->host_visible = wcm_context_host_visible(ctx);
    const size_t stats = (size_t)net->nlayers * WCM_CHANNELS;
    int rc = wcm_buffer_alloc(ctx, 3 * net->nparams * sizeof(float), &m->block, err);
    if (!rc) rc = wcm_buffer_alloc(ctx, 2 * stats * sizeof(double), &m->stats, err);
    if (!rc && !m->host_visible) rc = wcm_buffer_alloc(ctx, (net->nparams + net->nrunning) * sizeof(float), &m->values, err);
    if (rc) {
        wcm_trainer_free(t);
        return wcm_fail_context(err, rc, "trainer");
    }
    t->block = m->block->data;
    t->grad = t->block;
    t->adam_m = t->block + net->nparams;
    t->adam_v = t->block + 2 * net->nparams;
    t->bn_mean = m->stats->data;
    t->bn_sd = t->bn_mean + stats;
    t->params = m->values ? m->values->data : net->params;
    t->running = m->values ? t->params + net->nparams : net->running_sd;
    rc = wcm_op_fill(ctx, 3 * net->nparams, t->block, 0.0f, err);
    double *zeros = rc ? NULL : calloc(2 * stats, sizeof(double));
    if (!rc && !zeros) rc = wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    if (!rc) rc = wcm_memcpy_to_backend(ctx, t->bn_mean, zeros, 2 * stats * sizeof(double), err);
    free(zeros);
    if (rc) {
        wcm_trainer_free(t);
        return rc;
    }
    t->beta1 = 0.9;
    t->beta2 = 0.999;
    t->eps = 1e-8;
    t->update_running_sd = 1;
    *out = t;
    return WCM_OK;
}

void wcm_trainer_reset_adam(wcm_trainer *t) {
    wcm_op_fill(trainer_ctx(t), 2 * t->net->nparams, t->adam_m, 0.0f, NULL);
    t->adam_step = 0;
}

static int ensure_activations(wcm_trainer *t, wcm_context *ctx, size_t pixels, wcm_error *err) {
    if (pixels <= t->pixel_cap) return WCM_OK;
    free_activations(t);
    const wcm_net *net = t->net;
    wcm_trainer_memory *m = t->memory;
    const size_t per = pixels * WCM_CHANNELS * sizeof(float);
    m->z = calloc((size_t)net->nlayers, sizeof *m->z);
    t->z = calloc((size_t)net->nlayers, sizeof *t->z);
    int rc = m->z && t->z ? WCM_OK : WCM_ERR_NOMEM;
    for (int l = 0; !rc && l < net->nlayers - 1; l++)
        if (!(rc = wcm_buffer_alloc(ctx, per, &m->z[l], NULL))) t->z[l] = m->z[l]->data;
    for (int b = 0; !rc && b < 2; b++)
        if (!(rc = wcm_buffer_alloc(ctx, per, &m->scratch[b], NULL))) t->scratch[b] = m->scratch[b]->data;
    if (!rc && !(rc = wcm_buffer_alloc(ctx, pixels * (size_t)net->cout * sizeof(float), &m->out_grad, NULL)))
        t->out_grad = m->out_grad->data;
    if (rc) {
        free_activations(t);
        return wcm_fail(err, WCM_ERR_NOMEM, "out of memory for training activations (%.1f GB for %zu pixels per batch)",
                        (double)per * (net->nlayers + 1) / 1e9, pixels);
    }
    t->pixel_cap = pixels;
    return WCM_OK;
}

/* Input of layer l >= 1: the previous conv output, through batch norm and
 * ReLU when the previous layer has them (materialised into `buf`). */
static int layer_input(wcm_trainer *t, wcm_context *ctx, int l, size_t pixels, float *buf, const float **src,
                       wcm_error *err) {
    const wcm_layer *P = &t->net->layers[l - 1];
    *src = t->z[l - 1];
    if (!P->bn) return WCM_OK;
    *src = buf;
    return wcm_op_bn_apply(ctx, t->z[l - 1], pixels, P->cout, param_at(t, P->gamma),
                           t->bn_sd + (size_t)(l - 1) * WCM_CHANNELS, 1, buf, err);
}

static double running_momentum(const wcm_trainer *t) {
    if (!t->running_warmup) return WCM_BN_MOMENTUM;
    const double cumulative = 1.0 / (double)(t->running_updates + 1);
    return cumulative > WCM_BN_MOMENTUM ? cumulative : WCM_BN_MOMENTUM;
}

static int exact_supported(const wcm_trainer *t, wcm_error *err) {
    if (!t->exact || t->memory->host_visible) return WCM_OK;
    return wcm_fail(err, WCM_ERR_ARG, "exact sums need a host-visible backend (the CPU); the %s backend is not",
                    wcm_backend_name(wcm_context_backend(trainer_ctx(t))));
}

static int distributed(const wcm_trainer *t) { return wcm_comm_size(t->comm) > 1 && !t->bn_frozen; }

/* Batch statistics over every rank's part: per-channel sums of this rank's
 * m pixels of layer l (m = 0: none), summed over the ranks, then the squared
 * deviations around the global mean likewise. Leaves mean and sd in the
 * trainer's statistics and the global mean on the host for backward. */
static int distributed_bn_stats(wcm_trainer *t, wcm_context *ctx, int l, const float *x, size_t m, wcm_error *err) {
    const int c = t->net->layers[l].cout;
    wcm_trainer_memory *mem = t->memory;
    if (!mem->dist_mean && !(mem->dist_mean = calloc((size_t)t->net->nlayers * WCM_CHANNELS, sizeof(double))))
        return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    double sums[WCM_CHANNELS + 1] = {0}, sd[WCM_CHANNELS];
    double *mean = mem->dist_mean + (size_t)l * WCM_CHANNELS;
    int rc = m ? wcm_op_channel_reduce(ctx, WCM_REDUCE_SUM, m, c, x, NULL, 1024, sums, err) : WCM_OK;
    sums[c] = (double)m;
    if (!rc) rc = wcm_comm_allreduce_double(t->comm, sums, (size_t)c + 1, err);
    if (!rc && !(sums[c] > 0)) rc = wcm_fail(err, WCM_ERR_SHAPE, "no rank has images in this batch");
    if (rc) return rc;
    mem->dist_pixels = sums[c];
    for (int ch = 0; ch < c; ch++) mean[ch] = sums[ch] / sums[c];
    memset(sums, 0, sizeof sums);
    rc = m ? wcm_op_channel_reduce(ctx, WCM_REDUCE_SUMSQ, m, c, x, mean, 1024, sums, err) : WCM_OK;
    if (!rc) rc = wcm_comm_allreduce_double(t->comm, sums, (size_t)c, err);
    if (rc) return rc;
    for (int ch = 0; ch < c; ch++) sd[ch] = sqrt(sums[ch] / mem->dist_pixels + WCM_BN_EPS);
    rc = wcm_memcpy_to_backend(ctx, t->bn_mean + (size_t)l * WCM_CHANNELS, mean, (size_t)c * sizeof(double), err);
    return rc ? rc : wcm_memcpy_to_backend(ctx, t->bn_sd + (size_t)l * WCM_CHANNELS, sd, (size_t)c * sizeof(double), err);
}

/* Backward of a batch norm with statistics over every rank: the constant-sd
 * part from the backend op (dgamma = S_local / sd), then the term through
 * sd, -gamma / sd * S (x - mean) / (sd^2 M), with S = sum(dy x) over all
 * ranks. dgamma stays this rank's own share. x = NULL, m = 0: no pixels. */
static int distributed_bn_backward(wcm_trainer *t, wcm_context *ctx, int l, const float *x, float *dy, size_t m,
                                   float *dgamma, wcm_error *err) {
    const wcm_layer *L = &t->net->layers[l];
    const int c = L->cout;
    double sd[WCM_CHANNELS], S[WCM_CHANNELS] = {0};
    float dg[WCM_CHANNELS] = {0}, gamma[WCM_CHANNELS];
    const double *sd_dev = t->bn_sd + (size_t)l * WCM_CHANNELS;
    int rc = wcm_memcpy_to_host(ctx, sd, sd_dev, (size_t)c * sizeof(double), err);
    if (!rc) rc = wcm_memcpy_to_host(ctx, gamma, param_at(t, L->gamma), (size_t)c * sizeof(float), err);
    if (!rc && m) rc = wcm_op_bn_backward(ctx, x, dy, m, c, param_at(t, L->gamma), NULL, sd_dev, 1, dy, dgamma, err);
    if (!rc && m) rc = wcm_memcpy_to_host(ctx, dg, dgamma, (size_t)c * sizeof(float), err);
    for (int ch = 0; ch < c; ch++) S[ch] = (double)dg[ch] * sd[ch];
    if (!rc) rc = wcm_comm_allreduce_double(t->comm, S, (size_t)c, err);
    if (rc || !m) return rc;
    if (!t->memory->host_visible)
        return wcm_fail(err, WCM_ERR_ARG, "batch statistics over several processes need a host-visible backend "
                                          "(use --batch-norm frozen on %s)", wcm_backend_name(wcm_context_backend(ctx)));
    const double *mean = t->memory->dist_mean + (size_t)l * WCM_CHANNELS;
    double coef[WCM_CHANNELS];
    for (int ch = 0; ch < c; ch++)
        coef[ch] = gamma[ch] / sd[ch] * S[ch] / (sd[ch] * sd[ch] * t->memory->dist_pixels);
#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < m; p++)
        for (int ch = 0; ch < c; ch++) dy[p * c + ch] -= (float)(coef[ch] * ((double)x[p * c + ch] - mean[ch]));
    return WCM_OK;
}

/* The layers' forward from x into y (both in the context's memory). */
static int forward_layers(wcm_trainer *t, wcm_context *ctx, const wcm_tensor *in, const float *x, float *y,
                          wcm_error *err) {
    wcm_net *net = t->net;
    const size_t pixels = (size_t)in->n * in->h * in->w;
    int rc = WCM_OK;
    for (int l = 0; !rc && l < net->nlayers; l++) {
        const wcm_layer *L = &net->layers[l];
        const float *src = x;
        if (l > 0 && (rc = layer_input(t, ctx, l, pixels, t->scratch[0], &src, err))) break;
        float *dst = l == net->nlayers - 1 ? y : t->z[l];
        const wcm_conv_shape s = {in->n, in->h, in->w, L->cin, L->cout, L->k};
        rc = wcm_op_conv_forward(ctx, &s, src, param_at(t, L->weight), dst, 0, err);
        if (rc || !L->bn) continue;
        double *mean = t->bn_mean + (size_t)l * WCM_CHANNELS, *sd = t->bn_sd + (size_t)l * WCM_CHANNELS;
        float *running = running_at(t, L->running_sd);
        if (t->bn_frozen) { /* backward then ignores mean */
            rc = wcm_op_bn_running(ctx, WCM_BN_RUNNING_LOAD, L->cout, sd, running, NULL, 0, err);
            continue;
        }
        if (t->exact)
            rc = wcm_exact_bn_stats(&t->memory->exact, t, ctx, l, dst, in->n, (size_t)in->h * in->w, err);
        else
            rc = distributed(t) ? distributed_bn_stats(t, ctx, l, dst, pixels, err)
                                : wcm_op_bn_stats(ctx, dst, pixels, L->cout, mean, sd, err);
        if (!rc && t->update_running_sd)
            rc = wcm_op_bn_running(ctx, WCM_BN_RUNNING_UPDATE, L->cout, sd, running, NULL, running_momentum(t), err);
    }
    if (!rc && t->update_running_sd && !t->bn_frozen) t->running_updates++;
    return rc;
}

int wcm_train_forward(wcm_trainer *t, const wcm_tensor *in, wcm_tensor *out, wcm_error *err) {
    wcm_net *net = t->net;
    if (in->c != net->cin)
        return wcm_fail(err, WCM_ERR_SHAPE, "%s network expects %d input channel%s, got %d", wcm_net_kind_name(net->kind),
                        net->cin, net->cin == 1 ? "" : "s", in->c);
    if (in->n < 1 || in->h < 1 || in->w < 1) return wcm_fail(err, WCM_ERR_SHAPE, "empty training batch");
    wcm_context *ctx = trainer_ctx(t);
    int rc = check_residency(t, ctx, err);
    if (!rc) rc = exact_supported(t, err);
    if (!rc) rc = ensure_activations(t, ctx, (size_t)in->n * in->h * in->w, err);
    if (rc) return rc;
    t->n = in->n, t->h = in->h, t->w = in->w;
    wcm_io io;
    if ((rc = wcm_io_begin(ctx, in, out, net->cout, &io, err))) return rc;
    rc = values_to_backend(t, ctx, err);
    if (!rc) rc = forward_layers(t, ctx, in, io.x->data, io.y->data, err);
    rc = wcm_io_end(ctx, &io, rc, err);
    if (!rc && t->update_running_sd && !t->bn_frozen) {
        rc = values_to_host(t, ctx, 0, err);
        wcm_net_invalidate(net);
    }
    return rc;
}

/* The batch sd of every batch-norm layer where the host can read it
 * (in `copy` when the backend's memory is not host memory). */
static int host_bn_sd(wcm_trainer *t, wcm_context *ctx, double **copy, const double **sd, wcm_error *err) {
    *copy = NULL;
    *sd = t->bn_sd;
    if (t->memory->host_visible) return WCM_OK;
    const size_t count = (size_t)t->net->nlayers * WCM_CHANNELS;
    if (!(*copy = malloc(count * sizeof(double)))) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    *sd = *copy;
    return wcm_memcpy_to_host(ctx, *copy, t->bn_sd, count * sizeof(double), err);
}

int wcm_train_bn_accumulate(wcm_trainer *t, const wcm_tensor *in, double *acc, wcm_error *err) {
    /* Every rank passes the whole batch: its statistics are this process's own. */
    int frozen = t->bn_frozen, update = t->update_running_sd, group = t->group_images, first = t->group_first;
    wcm_comm *comm = t->comm;
    t->bn_frozen = 0, t->update_running_sd = 0, t->comm = NULL, t->group_images = t->group_first = 0;
    wcm_tensor out = {0};
    int rc = wcm_train_forward(t, in, &out, err);
    t->bn_frozen = frozen, t->update_running_sd = update, t->comm = comm, t->group_images = group, t->group_first = first;
    wcm_tensor_free(&out);
    if (rc) return rc;
    double *copy;
    const double *sd;
    wcm_context *host = wcm_context_host();
    rc = host_bn_sd(t, trainer_ctx(t), &copy, &sd, err);
    for (int l = 0; !rc && l < t->net->nlayers; l++)
        if (t->net->layers[l].bn)
            rc = wcm_op_bn_running(host, WCM_BN_RUNNING_ACCUMULATE, t->net->layers[l].cout,
                                   (double *)sd + (size_t)l * WCM_CHANNELS, NULL, acc + (size_t)l * WCM_CHANNELS, 0, err);
    free(copy);
    return rc;
}

void wcm_train_bn_set_running(wcm_trainer *t, const double *acc, int batches) {
    /* On the host blocks (the authority); the next training forward copies them over. */
    wcm_context *host = wcm_context_host();
    for (int l = 0; l < t->net->nlayers; l++) {
        wcm_layer *L = &t->net->layers[l];
        if (L->bn)
            wcm_op_bn_running(host, WCM_BN_RUNNING_SET, L->cout, NULL, L->running_sd,
                              (double *)acc + (size_t)l * WCM_CHANNELS, batches, NULL);
    }
    wcm_net_invalidate(t->net);
}

int wcm_train_backward(wcm_trainer *t, const wcm_tensor *in, const float *dout, wcm_error *err) {
    wcm_net *net = t->net;
    if (!t->pixel_cap || in->n != t->n || in->h != t->h || in->w != t->w || in->c != net->cin)
        return wcm_fail(err, WCM_ERR_SHAPE, "backward needs the input of the preceding training forward");
    wcm_context *ctx = trainer_ctx(t);
    const size_t pixels = (size_t)in->n * in->h * in->w;
    wcm_tensor in_copy;
    const wcm_tensor *x;
    int rc = check_residency(t, ctx, err);
    if (!rc) rc = wcm_tensor_stage(ctx, in, &in_copy, &x, err);
    if (rc) return rc;
    const float *dz = dout;
    const size_t hw = (size_t)in->h * in->w;
    if (t->exact) wcm_exact_weights_begin(t->memory->exact, t);
    int cur = 1; /* scratch[cur] holds dLoss/d(layer output) once past the last layer */
    for (int l = net->nlayers - 1; l >= 0 && !rc; l--) {
        const wcm_layer *L = &net->layers[l];
        float *gw = t->grad + (L->weight - net->params);
        if (l < net->nlayers - 1) dz = t->scratch[cur];
        if (L->bn && t->exact) {
            rc = wcm_exact_bn_backward(&t->memory->exact, t, ctx, l, t->z[l], t->scratch[cur], in->n, hw, err);
        } else if (L->bn && distributed(t)) {
            rc = distributed_bn_backward(t, ctx, l, t->z[l], t->scratch[cur], pixels, t->grad + (L->gamma - net->params),
                                         err);
        } else if (L->bn) {
            float *dg = t->grad + (L->gamma - net->params);
            rc = wcm_op_bn_backward(ctx, t->z[l], t->scratch[cur], pixels, L->cout, param_at(t, L->gamma),
                                    t->bn_frozen ? NULL : t->bn_mean + (size_t)l * WCM_CHANNELS,
                                    t->bn_sd + (size_t)l * WCM_CHANNELS, 1, t->scratch[cur], dg, err);
        }
        float *other = t->scratch[1 - cur];
        const float *a = x->data;
        if (!rc && l > 0) rc = layer_input(t, ctx, l, pixels, other, &a, err);
        const wcm_conv_shape s = {in->n, in->h, in->w, L->cin, L->cout, L->k};
        if (!rc) rc = t->exact ? wcm_exact_weight_grad(&t->memory->exact, t, ctx, l, &s, a, dz, err)
                               : wcm_op_conv_backward_weights(ctx, &s, a, dz, gw, 0, err);
        if (rc || l == 0) break;
        rc = wcm_op_conv_backward_data(ctx, &s, dz, param_at(t, L->weight), other, err); /* `a` is no longer needed */
        cur = 1 - cur;
    }
    if (!rc && t->exact) rc = wcm_exact_finish(&t->memory->exact, t, err);
    wcm_tensor_free(&in_copy);
    return rc;
}

int wcm_train_gradient(wcm_trainer *t, const wcm_tensor *in, const wcm_tensor *target, double *loss, wcm_tensor *out,
                       wcm_error *err) {
    wcm_tensor local = {0}, target_copy = {0};
    wcm_tensor *o = out ? out : &local;
    if (target->n != in->n || target->h != in->h || target->w != in->w || target->c != t->net->cout)
        return wcm_fail(err, WCM_ERR_SHAPE, "target %dx%dx%dx%d does not match the network output %dx%dx%dx%d", target->n,
                        target->h, target->w, target->c, in->n, in->h, in->w, t->net->cout);
    wcm_context *ctx = trainer_ctx(t);
    const wcm_tensor *tg, *ov;
    wcm_tensor out_copy = {0};
    int rc = wcm_train_forward(t, in, o, err);
    if (!rc) rc = wcm_tensor_stage(ctx, target, &target_copy, &tg, err);
    if (!rc) rc = wcm_tensor_stage(ctx, o, &out_copy, &ov, err);
    const int batch = t->loss_batch > 0 ? t->loss_batch : in->n;
    if (!rc) rc = wcm_op_loss_sse(ctx, wcm_tensor_count(o), ov->data, tg->data, batch, t->out_grad, loss, err);
    if (!rc) rc = wcm_train_backward(t, in, t->out_grad, err);
    wcm_tensor_free(&local);
    wcm_tensor_free(&target_copy);
    wcm_tensor_free(&out_copy);
    return rc;
}

/* A rank without images in exact mode: the exact sums' collectives of a
 * forward and backward, in their order (the weight gradient's bound gathers
 * and the final integer sum included), so t->grad is the group's gradient. */
static int participate_exact(wcm_trainer *t, wcm_context *ctx, wcm_error *err) {
    wcm_net *net = t->net;
    wcm_exact_state **s = &t->memory->exact;
    int rc = exact_supported(t, err);
    if (!rc) rc = values_to_backend(t, ctx, err);
    for (int l = 0; !rc && l < net->nlayers; l++) {
        const wcm_layer *L = &net->layers[l];
        if (!L->bn || t->bn_frozen) continue;
        rc = wcm_exact_bn_stats(s, t, ctx, l, NULL, 0, 0, err);
        if (!rc && t->update_running_sd)
            rc = wcm_op_bn_running(ctx, WCM_BN_RUNNING_UPDATE, L->cout, t->bn_sd + (size_t)l * WCM_CHANNELS,
                                   running_at(t, L->running_sd), NULL, running_momentum(t), err);
    }
    if (!rc && t->update_running_sd && !t->bn_frozen) {
        t->running_updates++;
        rc = values_to_host(t, ctx, 0, err);
        wcm_net_invalidate(net);
    }
    wcm_exact_weights_begin(*s, t);
    for (int l = net->nlayers - 1; !rc && l >= 0; l--) {
        const wcm_layer *L = &net->layers[l];
        const wcm_conv_shape none = {0, 0, 0, L->cin, L->cout, L->k};
        if (L->bn) rc = wcm_exact_bn_backward(s, t, ctx, l, NULL, NULL, 0, 0, err);
        if (!rc) rc = wcm_exact_weight_grad(s, t, ctx, l, &none, NULL, NULL, err);
    }
    return rc ? rc : wcm_exact_finish(s, t, err);
}

int wcm_train_participate(wcm_trainer *t, wcm_error *err) {
    wcm_context *ctx = trainer_ctx(t);
    wcm_net *net = t->net;
    int rc = wcm_op_fill(ctx, net->nparams, t->grad, 0.0f, err);
    if (!rc && t->exact) return participate_exact(t, ctx, err);
    if (rc || !distributed(t)) return rc;
    rc = values_to_backend(t, ctx, err);
    for (int l = 0; !rc && l < net->nlayers; l++) {
        const wcm_layer *L = &net->layers[l];
        if (!L->bn) continue;
        rc = distributed_bn_stats(t, ctx, l, NULL, 0, err);
        if (!rc && t->update_running_sd)
            rc = wcm_op_bn_running(ctx, WCM_BN_RUNNING_UPDATE, L->cout, t->bn_sd + (size_t)l * WCM_CHANNELS,
                                   running_at(t, L->running_sd), NULL, running_momentum(t), err);
    }
    if (!rc && t->update_running_sd) {
        t->running_updates++;
        rc = values_to_host(t, ctx, 0, err);
        wcm_net_invalidate(net);
    }
    for (int l = net->nlayers - 1; !rc && l >= 0; l--)
        if (net->layers[l].bn) rc = distributed_bn_backward(t, ctx, l, NULL, NULL, 0, NULL, err);
    return rc;
}

void wcm_adam_step(wcm_trainer *t, double lr) {
    /* PyTorch 1.13 Adam (single-tensor path): moments in float32, the bias
     * corrections in double. */
    t->adam_step++;
    const double bc1 = 1.0 - pow(t->beta1, (double)t->adam_step);
    const double bc2 = 1.0 - pow(t->beta2, (double)t->adam_step);
    const wcm_adam_hyper h = {(float)(lr / bc1),           (float)sqrt(bc2),           (float)t->eps,
                              (float)t->beta1,             (float)t->beta2,            (float)(1.0 - t->beta1),
                              (float)(1.0 - t->beta2)};
    wcm_context *ctx = trainer_ctx(t);
    if (!wcm_op_adam(ctx, t->net->nparams, t->params, t->grad, t->adam_m, t->adam_v, &h, NULL))
        values_to_host(t, ctx, 1, NULL);
    wcm_net_invalidate(t->net);
}

/* Non-finite values among n of the context's memory (n itself when the count fails). */
static double nonfinite(wcm_context *ctx, const float *x, size_t n) {
    double count = (double)n;
    if (wcm_op_reduce(ctx, WCM_REDUCE_NONFINITE, n, x, NULL, 0, 0, &count, NULL)) return (double)n;
    return count;
}

int wcm_trainer_grad_finite(const wcm_trainer *t) { return nonfinite(trainer_ctx(t), t->grad, t->net->nparams) == 0; }

/* ---- checkpoints ----------------------------------------------------------- */

/* A 1-D array copied from the trainer context's memory. */
static int push_vector(wcm_array_list *l, wcm_context *ctx, const char *name, const float *src, size_t n, wcm_error *err) {
    wcm_array a = {0};
    a.name = strdup(name);
    a.ndim = 1;
    a.shape[0] = (int64_t)n;
    a.data = malloc(n * sizeof(float));
    if (!a.name || !a.data) {
        wcm_array_free(&a);
        return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    }
    int rc = wcm_memcpy_to_host(ctx, a.data, src, n * sizeof(float), err);
    if (!rc) rc = wcm_array_list_push(l, &a, err);
    if (rc) wcm_array_free(&a);
    return rc;
}

int wcm_train_checkpoint_save(const char *path, const wcm_trainer *t, const wcm_array_list *meta, wcm_error *err) {
    return wcm_train_checkpoint_save_with(path, t, meta, NULL, NULL, NULL, err);
}

/* The network's arrays with other parameter values (an average of the weights). */
static int net_arrays_with(wcm_net *net, const float *params, const float *running, wcm_array_list *l, wcm_error *err) {
    if (!params) return wcm_net_to_arrays(net, "net.", l, err);
    float *keep = malloc((net->nparams + net->nrunning) * sizeof(float));
    if (!keep) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    memcpy(keep, net->params, net->nparams * sizeof(float));
    memcpy(keep + net->nparams, net->running_sd, net->nrunning * sizeof(float));
    memcpy(net->params, params, net->nparams * sizeof(float));
    memcpy(net->running_sd, running, net->nrunning * sizeof(float));
    int rc = wcm_net_to_arrays(net, "net.", l, err);
    memcpy(net->params, keep, net->nparams * sizeof(float));
    memcpy(net->running_sd, keep + net->nparams, net->nrunning * sizeof(float));
    free(keep);
    wcm_net_invalidate(net);
    return rc;
}

int wcm_train_checkpoint_save_with(const char *path, const wcm_trainer *t, const wcm_array_list *meta,
                                   const wcm_array_list *extra, const float *export_params, const float *export_running,
                                   wcm_error *err) {
    const wcm_net *net = t->net;
    if (nonfinite(wcm_context_host(), net->params, net->nparams) != 0)
        return wcm_fail(err, WCM_ERR_NUMERIC, "%s: not written, the parameters contain NaN or Inf", path);
    wcm_context *ctx = trainer_ctx(t);
    wcm_array_list l;
    wcm_array_list_init(&l);
    char buf[64];
    int rc = WCM_OK;
    for (int i = 0; meta && !rc && i < meta->meta_count; i++)
        rc = wcm_array_list_set_meta(&l, meta->meta_keys[i], meta->meta_vals[i], err);
    /* The keys wcm_model_save writes for a single network, so wcm_model_load reads it. */
    if (!rc) rc = wcm_array_list_set_meta(&l, "format", "pt", err);
    if (!rc) rc = wcm_array_list_set_meta(&l, "wcm.version", "1", err);
    if (!rc) rc = wcm_array_list_set_meta(&l, "wcm.model", "single", err);
    snprintf(buf, sizeof buf, "kind=%s rf=%d", wcm_net_kind_name(net->kind), net->rf);
    if (!rc) rc = wcm_array_list_set_meta(&l, "wcm.net.net", buf, err);
    snprintf(buf, sizeof buf, "%lld", (long long)t->adam_step);
    if (!rc) rc = wcm_array_list_set_meta(&l, "wcm.train.adam_step", buf, err);
    snprintf(buf, sizeof buf, "%lld", (long long)t->running_updates);
    if (!rc) rc = wcm_array_list_set_meta(&l, "wcm.train.running_updates", buf, err);
    if (!rc) rc = net_arrays_with(t->net, export_params, export_running, &l, err);
    if (!rc) rc = push_vector(&l, ctx, "train.adam_m", t->adam_m, net->nparams, err);
    if (!rc) rc = push_vector(&l, ctx, "train.adam_v", t->adam_v, net->nparams, err);
    for (int i = 0; extra && !rc && i < extra->count; i++)
        rc = push_vector(&l, wcm_context_host(), extra->items[i].name, extra->items[i].data,
                         (size_t)wcm_array_count(&extra->items[i]), err);
    if (!rc) rc = wcm_safetensors_write(path, &l, 0, err);
    wcm_array_list_free(&l);
    return rc;
}

int wcm_train_checkpoint_load(const char *path, wcm_trainer **out, wcm_array_list *meta, wcm_error *err) {
    *out = NULL;
    wcm_array_list l;
    wcm_array_list_init(&l);
    wcm_array_list_init(meta);
    wcm_net *net = NULL;
    wcm_trainer *t = NULL;
    int rc = wcm_safetensors_read(path, &l, err);
    if (!rc) rc = wcm_net_from_arrays(&l, "net.", &net, err);
    const wcm_array *m = rc ? NULL : wcm_array_list_find(&l, "train.adam_m");
    const wcm_array *v = rc ? NULL : wcm_array_list_find(&l, "train.adam_v");
    const char *steps = wcm_array_list_get_meta(&l, "wcm.train.adam_step");
    if (!rc && (!m || !v || !steps))
        rc = wcm_fail(err, WCM_ERR_FORMAT, "no optimiser state (train.adam_m, train.adam_v): not a checkpoint of wcm train");
    if (!rc && (wcm_array_count(m) != (int64_t)net->nparams || wcm_array_count(v) != (int64_t)net->nparams))
        rc = wcm_fail(err, WCM_ERR_SHAPE, "optimiser state has %lld values, the network %zu parameters",
                      (long long)wcm_array_count(m), net->nparams);
    int64_t adam_step = 0;
    if (!rc && wcm_parse_int64(steps, 0, INT64_MAX / 2, &adam_step))
        rc = wcm_fail(err, WCM_ERR_FORMAT, "wcm.train.adam_step '%.40s' is not a step count", steps);
    if (!rc) rc = wcm_trainer_create(&t, net, err);
    if (!rc) rc = wcm_memcpy_to_backend(trainer_ctx(t), t->adam_m, m->data, net->nparams * sizeof(float), err);
    if (!rc) rc = wcm_memcpy_to_backend(trainer_ctx(t), t->adam_v, v->data, net->nparams * sizeof(float), err);
    /* Checkpoints from before the count: as many updates as steps. */
    const char *updates = wcm_array_list_get_meta(&l, "wcm.train.running_updates");
    int64_t running_updates = adam_step;
    if (!rc && updates && wcm_parse_int64(updates, 0, INT64_MAX / 2, &running_updates))
        rc = wcm_fail(err, WCM_ERR_FORMAT, "wcm.train.running_updates '%.40s' is not a count", updates);
    if (!rc) {
        t->adam_step = adam_step;
        t->running_updates = running_updates;
        for (int i = 0; !rc && i < l.meta_count; i++)
            rc = wcm_array_list_set_meta(meta, l.meta_keys[i], l.meta_vals[i], err);
    }
    wcm_array_list_free(&l);
    if (rc) {
        wcm_trainer_free(t);
        wcm_net_free(net);
        wcm_array_list_free(meta);
        return wcm_fail_context(err, rc, "%s", path);
    }
    *out = t;
    return WCM_OK;
}

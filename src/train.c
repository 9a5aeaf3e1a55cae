/* Training-mode forward and backward of the BF-CNNs, the reference loss and
 * Adam (SPEC §3–4). See include/wcm/train.h for the conventions. */
#include "wcm/train.h"
#include "wcm/backend.h"
#include "wcm/io.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Reductions sum fixed blocks of pixels in parallel, then the blocks in
 * order: the result never depends on the thread count. */
#define REDUCE_CHUNK 1024

static size_t chunk_count(size_t m) { return (m + REDUCE_CHUNK - 1) / REDUCE_CHUNK; }

/* ---- building blocks --------------------------------------------------- */

double wcm_loss_sse(const float *out, const float *target, size_t count, int batch, float *dout) {
    size_t nchunks = chunk_count(count);
    double *partial = malloc(sizeof(double) * (nchunks ? nchunks : 1));
    double scale = 2.0 / batch;
    if (!partial) return NAN;
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < nchunks; k++) {
        size_t end = (k + 1) * REDUCE_CHUNK < count ? (k + 1) * REDUCE_CHUNK : count;
        double s = 0;
        for (size_t i = k * REDUCE_CHUNK; i < end; i++) {
            double d = (double)out[i] - target[i];
            s += d * d;
            if (dout) dout[i] = (float)(scale * d);
        }
        partial[k] = s;
    }
    double total = 0;
    for (size_t k = 0; k < nchunks; k++) total += partial[k];
    free(partial);
    return total / batch;
}

/* The per-pixel loops below are compiled for several instruction sets and
 * picked at run time. Results do not depend on the choice: every
 * accumulator sums its pixels in order (vectors run across channels) and
 * C11 mode does not contract a*b+c into FMA. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
/* (no-trapping-math lets the ReLU masks become vector selects; it changes no value) */
#define MULTI_TARGET __attribute__((target_clones("avx512f", "avx2", "default"), optimize("no-trapping-math")))
#else
#define MULTI_TARGET
#endif

enum { SUM_X, SUM_SQDEV, SUM_DY_X, SUM_DY_X_RELU };

/* acc[ch] += f(pixel, ch) over pixels [p0, p1). */
MULTI_TARGET static void sum_pixels(int what, const float *restrict x, const float *restrict dy, size_t p0, size_t p1,
                                    int c, const double *restrict mean, const float *restrict gamma,
                                    const float *restrict sdf, double *restrict acc) {
    for (size_t p = p0; p < p1; p++) {
        const float *restrict xp = x + p * c, *restrict gp = dy ? dy + p * c : NULL;
        if (what == SUM_X) {
#pragma omp simd
            for (int ch = 0; ch < c; ch++) acc[ch] += xp[ch];
        } else if (what == SUM_SQDEV) {
#pragma omp simd
            for (int ch = 0; ch < c; ch++) {
                double d = xp[ch] - mean[ch];
                acc[ch] += d * d;
            }
        } else if (what == SUM_DY_X_RELU) {
#pragma omp simd
            for (int ch = 0; ch < c; ch++) {
                float v = (xp[ch] / sdf[ch]) * gamma[ch], g = gp[ch];
                g = !(v > 0) ? 0.0f : g;
                acc[ch] += (double)g * xp[ch];
            }
        } else {
#pragma omp simd
            for (int ch = 0; ch < c; ch++) acc[ch] += (double)gp[ch] * xp[ch];
        }
    }
}

/* result[ch] = sum over all m pixels: fixed chunks in parallel, then the
 * chunk sums in order. */
static void channel_sums(int what, const float *x, const float *dy, size_t m, int c, const double *mean,
                         const float *gamma, const double *sd, double *result) {
    size_t nchunks = chunk_count(m);
    double *partial = calloc(nchunks ? nchunks * (size_t)c : 1, sizeof(double));
    if (!partial) {
        for (int ch = 0; ch < c; ch++) result[ch] = NAN;
        return;
    }
    float sdf[WCM_CHANNELS];
    for (int ch = 0; sd && ch < c; ch++) sdf[ch] = (float)sd[ch];
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < nchunks; k++) {
        size_t end = (k + 1) * REDUCE_CHUNK < m ? (k + 1) * REDUCE_CHUNK : m;
        sum_pixels(what, x, dy, k * REDUCE_CHUNK, end, c, mean, gamma, sdf, partial + k * (size_t)c);
    }
    for (int ch = 0; ch < c; ch++) result[ch] = 0;
    for (size_t k = 0; k < nchunks; k++)
        for (int ch = 0; ch < c; ch++) result[ch] += partial[k * (size_t)c + ch];
    free(partial);
}

void wcm_bn_stats(const float *x, size_t m, int c, double *mean, double *sd) {
    channel_sums(SUM_X, x, NULL, m, c, NULL, NULL, NULL, mean);
    for (int ch = 0; ch < c; ch++) mean[ch] /= (double)m;
    channel_sums(SUM_SQDEV, x, NULL, m, c, mean, NULL, NULL, sd);
    for (int ch = 0; ch < c; ch++) sd[ch] = sqrt(sd[ch] / (double)m + WCM_BN_EPS);
}

MULTI_TARGET static void apply_pixels(const float *x, size_t p0, size_t p1, int c, const float *restrict gamma,
                                      const float *restrict sdf, int relu, float *y) {
    for (size_t p = p0; p < p1; p++) {
        const float *xp = x + p * c;
        float *yp = y + p * c;
        if (relu) {
#pragma omp simd
            for (int ch = 0; ch < c; ch++) {
                float v = (xp[ch] / sdf[ch]) * gamma[ch];
                yp[ch] = v > 0 ? v : 0.0f;
            }
        } else {
#pragma omp simd
            for (int ch = 0; ch < c; ch++) yp[ch] = (xp[ch] / sdf[ch]) * gamma[ch];
        }
    }
}

/* The forward uses the statistics rounded to float, as PyTorch's float32
 * tensors do; backward recomputes the ReLU mask with the same expression. */
void wcm_bn_apply(const float *x, size_t m, int c, const float *gamma, const double *sd, int relu, float *y) {
    float sdf[WCM_CHANNELS];
    for (int ch = 0; ch < c; ch++) sdf[ch] = (float)sd[ch];
    size_t nchunks = chunk_count(m);
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < nchunks; k++)
        apply_pixels(x, k * REDUCE_CHUNK, (k + 1) * REDUCE_CHUNK < m ? (k + 1) * REDUCE_CHUNK : m, c, gamma, sdf, relu, y);
}

MULTI_TARGET static void bn_grad_pixels(const float *x, const float *dy, size_t p0, size_t p1, int c,
                                        const float *restrict gamma, const float *restrict sdf, const double *restrict mean,
                                        const double *restrict a, const double *restrict b, int relu, float *dx) {
    for (size_t p = p0; p < p1; p++) {
        const float *xp = x + p * c, *gp = dy + p * c;
        float *dp = dx + p * c; /* may be gp: each element is read before it is written */
#pragma omp simd
        for (int ch = 0; ch < c; ch++) {
            float xv = xp[ch], v = (xv / sdf[ch]) * gamma[ch], g = gp[ch];
            g = relu && !(v > 0) ? 0.0f : g;
            dp[ch] = (float)(a[ch] * ((double)g - b[ch] * (xv - mean[ch])));
        }
    }
}

void wcm_bn_backward(const float *x, const float *dy, size_t m, int c, const float *gamma, const double *mean,
                     const double *sd, int relu, float *dx, float *dgamma) {
    /* y = x * g / s(x), s = sqrt(mean((x - mu)^2) + eps). With S = sum(dy x):
     *   dgamma = S / s,  dx = (g / s) (dy - S (x - mu) / (s^2 m)).
     * (the mu term of dvar/dx sums to zero against sum(x - mu) = 0). */
    double S[WCM_CHANNELS], a[WCM_CHANNELS], b[WCM_CHANNELS];
    float sdf[WCM_CHANNELS];
    channel_sums(relu ? SUM_DY_X_RELU : SUM_DY_X, x, dy, m, c, NULL, gamma, sd, S);
    for (int ch = 0; ch < c; ch++) {
        sdf[ch] = (float)sd[ch];
        dgamma[ch] = (float)(S[ch] / sd[ch]);
        a[ch] = gamma[ch] / sd[ch];
        b[ch] = mean ? S[ch] / (sd[ch] * sd[ch] * (double)m) : 0.0;
    }
    static const double no_mean[WCM_CHANNELS];
    if (!mean) mean = no_mean;
    size_t nchunks = chunk_count(m);
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < nchunks; k++)
        bn_grad_pixels(x, dy, k * REDUCE_CHUNK, (k + 1) * REDUCE_CHUNK < m ? (k + 1) * REDUCE_CHUNK : m, c, gamma, sdf,
                       mean, a, b, relu, dx);
}

void wcm_relu_backward(const float *y, const float *dy, size_t count, float *dx) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < count; i++) dx[i] = y[i] > 0 ? dy[i] : 0.0f;
}

/* ---- trainer ----------------------------------------------------------- */

static void free_activations(wcm_trainer *t) {
    if (t->z)
        for (int l = 0; l < t->net->nlayers - 1; l++) wcm_free(t->z[l]);
    free(t->z);
    t->z = NULL;
    wcm_free(t->scratch[0]);
    wcm_free(t->scratch[1]);
    wcm_free(t->out_grad);
    t->scratch[0] = t->scratch[1] = t->out_grad = NULL;
    t->pixel_cap = 0;
}

int wcm_trainer_create(wcm_trainer **out, wcm_net *net, wcm_error *err) {
    *out = NULL;
    wcm_trainer *t = calloc(1, sizeof *t);
    if (!t) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    t->net = net;
    t->block = wcm_calloc(3 * net->nparams * sizeof(float));
    t->bn_mean = calloc((size_t)net->nlayers * WCM_CHANNELS, sizeof(double));
    t->bn_sd = calloc((size_t)net->nlayers * WCM_CHANNELS, sizeof(double));
    if (!t->block || !t->bn_mean || !t->bn_sd) {
        wcm_trainer_free(t);
        return wcm_fail(err, WCM_ERR_NOMEM, "out of memory for the optimiser state");
    }
    t->grad = t->block;
    t->adam_m = t->block + net->nparams;
    t->adam_v = t->block + 2 * net->nparams;
    t->beta1 = 0.9;
    t->beta2 = 0.999;
    t->eps = 1e-8;
    t->update_running_sd = 1;
    *out = t;
    return WCM_OK;
}

void wcm_trainer_free(wcm_trainer *t) {
    if (!t) return;
    free_activations(t);
    wcm_free(t->block);
    free(t->bn_mean);
    free(t->bn_sd);
    free(t);
}

void wcm_trainer_reset_adam(wcm_trainer *t) {
    memset(t->adam_m, 0, 2 * t->net->nparams * sizeof(float));
    t->adam_step = 0;
}

static int ensure_activations(wcm_trainer *t, size_t pixels, wcm_error *err) {
    if (pixels <= t->pixel_cap) return WCM_OK;
    free_activations(t);
    const wcm_net *net = t->net;
    size_t per = pixels * WCM_CHANNELS * sizeof(float);
    t->z = calloc((size_t)net->nlayers, sizeof *t->z);
    int ok = t->z != NULL;
    for (int l = 0; ok && l < net->nlayers - 1; l++) ok = (t->z[l] = wcm_alloc(per)) != NULL;
    if (ok) ok = (t->scratch[0] = wcm_alloc(per)) && (t->scratch[1] = wcm_alloc(per)) &&
                 (t->out_grad = wcm_alloc(pixels * (size_t)net->cout * sizeof(float)));
    if (!ok) {
        free_activations(t);
        return wcm_fail(err, WCM_ERR_NOMEM, "out of memory for training activations (%.1f GB for %zu pixels per batch)",
                        (double)per * (net->nlayers + 1) / 1e9, pixels);
    }
    t->pixel_cap = pixels;
    return WCM_OK;
}

/* Input of layer l >= 1: the previous conv output, through batch norm and
 * ReLU when the previous layer has them (materialised into `buf`). */
static const float *layer_input(wcm_trainer *t, int l, size_t pixels, float *buf) {
    const wcm_layer *P = &t->net->layers[l - 1];
    if (!P->bn) return t->z[l - 1];
    wcm_bn_apply(t->z[l - 1], pixels, P->cout, P->gamma, t->bn_sd + (size_t)(l - 1) * WCM_CHANNELS, 1, buf);
    return buf;
}

int wcm_train_forward(wcm_trainer *t, const wcm_tensor *in, wcm_tensor *out, wcm_error *err) {
    wcm_net *net = t->net;
    if (in->c != net->cin)
        return wcm_fail(err, WCM_ERR_SHAPE, "%s network expects %d input channel%s, got %d", wcm_net_kind_name(net->kind),
                        net->cin, net->cin == 1 ? "" : "s", in->c);
    if (in->n < 1 || in->h < 1 || in->w < 1) return wcm_fail(err, WCM_ERR_SHAPE, "empty training batch");
    size_t pixels = (size_t)in->n * in->h * in->w;
    int rc = ensure_activations(t, pixels, err);
    if (rc) return rc;
    if (out->data && (out->n != in->n || out->h != in->h || out->w != in->w || out->c != net->cout))
        wcm_tensor_free(out);
    if (!out->data && (rc = wcm_tensor_alloc(out, in->n, in->h, in->w, net->cout, err))) return rc;
    t->n = in->n, t->h = in->h, t->w = in->w;
    const wcm_backend *be = wcm_get_backend();
    for (int l = 0; l < net->nlayers; l++) {
        wcm_layer *L = &net->layers[l];
        const float *src = l == 0 ? in->data : layer_input(t, l, pixels, t->scratch[0]);
        float *dst = l == net->nlayers - 1 ? out->data : t->z[l];
        wcm_conv_shape s = {in->n, in->h, in->w, L->cin, L->cout, L->k};
        be->conv_forward(&s, src, L->weight, dst, 0);
        if (!L->bn) continue;
        double *mean = t->bn_mean + (size_t)l * WCM_CHANNELS, *sd = t->bn_sd + (size_t)l * WCM_CHANNELS;
        if (t->bn_frozen) {
            for (int c = 0; c < L->cout; c++) sd[c] = L->running_sd[c]; /* backward then ignores mean */
            continue;
        }
        wcm_bn_stats(dst, pixels, L->cout, mean, sd);
        if (t->update_running_sd)
            for (int c = 0; c < L->cout; c++)
                L->running_sd[c] = (float)(1.0 - WCM_BN_MOMENTUM) * L->running_sd[c] + (float)WCM_BN_MOMENTUM * (float)sd[c];
    }
    if (t->update_running_sd && !t->bn_frozen) wcm_net_invalidate(net);
    return WCM_OK;
}

int wcm_train_bn_accumulate(wcm_trainer *t, const wcm_tensor *in, double *acc, wcm_error *err) {
    int frozen = t->bn_frozen, update = t->update_running_sd;
    t->bn_frozen = 0, t->update_running_sd = 0;
    wcm_tensor out = {0};
    int rc = wcm_train_forward(t, in, &out, err);
    t->bn_frozen = frozen, t->update_running_sd = update;
    wcm_tensor_free(&out);
    if (rc) return rc;
    for (int l = 0; l < t->net->nlayers; l++)
        if (t->net->layers[l].bn)
            for (int c = 0; c < t->net->layers[l].cout; c++) {
                double sd = t->bn_sd[(size_t)l * WCM_CHANNELS + c];
                acc[(size_t)l * WCM_CHANNELS + c] += sd * sd;
            }
    return WCM_OK;
}

void wcm_train_bn_set_running(wcm_trainer *t, const double *acc, int batches) {
    for (int l = 0; l < t->net->nlayers; l++) {
        wcm_layer *L = &t->net->layers[l];
        if (L->bn)
            for (int c = 0; c < L->cout; c++)
                L->running_sd[c] = (float)sqrt(acc[(size_t)l * WCM_CHANNELS + c] / batches);
    }
    wcm_net_invalidate(t->net);
}

int wcm_train_backward(wcm_trainer *t, const wcm_tensor *in, const float *dout, wcm_error *err) {
    wcm_net *net = t->net;
    if (!t->pixel_cap || in->n != t->n || in->h != t->h || in->w != t->w || in->c != net->cin)
        return wcm_fail(err, WCM_ERR_SHAPE, "backward needs the input of the preceding training forward");
    size_t pixels = (size_t)in->n * in->h * in->w;
    const wcm_backend *be = wcm_get_backend();
    const float *dz = dout;
    int cur = 1; /* scratch[cur] holds dLoss/d(layer output) once past the last layer */
    for (int l = net->nlayers - 1; l >= 0; l--) {
        wcm_layer *L = &net->layers[l];
        float *gw = t->grad + (L->weight - net->params);
        if (l < net->nlayers - 1) dz = t->scratch[cur];
        if (L->bn) {
            float *dg = t->grad + (L->gamma - net->params);
            wcm_bn_backward(t->z[l], t->scratch[cur], pixels, L->cout, L->gamma,
                            t->bn_frozen ? NULL : t->bn_mean + (size_t)l * WCM_CHANNELS,
                            t->bn_sd + (size_t)l * WCM_CHANNELS, 1, t->scratch[cur], dg);
        }
        float *other = t->scratch[1 - cur];
        const float *a = l == 0 ? in->data : layer_input(t, l, pixels, other);
        wcm_conv_shape s = {in->n, in->h, in->w, L->cin, L->cout, L->k};
        be->conv_backward_weights(&s, a, dz, gw, 0);
        if (l == 0) break;
        be->conv_backward_data(&s, dz, L->weight, other); /* `a` is no longer needed */
        cur = 1 - cur;
    }
    return WCM_OK;
}

int wcm_train_gradient(wcm_trainer *t, const wcm_tensor *in, const wcm_tensor *target, double *loss, wcm_tensor *out,
                       wcm_error *err) {
    wcm_tensor local = {0};
    wcm_tensor *o = out ? out : &local;
    if (target->n != in->n || target->h != in->h || target->w != in->w || target->c != t->net->cout)
        return wcm_fail(err, WCM_ERR_SHAPE, "target %dx%dx%dx%d does not match the network output %dx%dx%dx%d", target->n,
                        target->h, target->w, target->c, in->n, in->h, in->w, t->net->cout);
    int rc = wcm_train_forward(t, in, o, err);
    if (!rc) {
        *loss = wcm_loss_sse(o->data, target->data, wcm_tensor_count(o), in->n, t->out_grad);
        rc = wcm_train_backward(t, in, t->out_grad, err);
    }
    wcm_tensor_free(&local);
    return rc;
}

void wcm_adam_step(wcm_trainer *t, double lr) {
    /* PyTorch 1.13 Adam (single-tensor path): moments in float32, the bias
     * corrections in double. */
    t->adam_step++;
    const double bc1 = 1.0 - pow(t->beta1, (double)t->adam_step);
    const double bc2 = 1.0 - pow(t->beta2, (double)t->adam_step);
    const float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2), eps = (float)t->eps;
    const float b1 = (float)t->beta1, b2 = (float)t->beta2, one_b1 = (float)(1.0 - t->beta1),
                one_b2 = (float)(1.0 - t->beta2);
    float *p = t->net->params, *g = t->grad, *m = t->adam_m, *v = t->adam_v;
    const size_t n = t->net->nparams;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        m[i] = m[i] * b1 + g[i] * one_b1;
        v[i] = v[i] * b2 + g[i] * g[i] * one_b2;
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] += -step_size * (m[i] / denom);
    }
    wcm_net_invalidate(t->net);
}

int wcm_trainer_grad_finite(const wcm_trainer *t) {
    int ok = 1;
    for (size_t i = 0; i < t->net->nparams; i++)
        if (!isfinite(t->grad[i])) ok = 0;
    return ok;
}

/* ---- checkpoints ----------------------------------------------------------- */

static int push_vector(wcm_array_list *l, const char *name, const float *src, size_t n, wcm_error *err) {
    wcm_array a = {0};
    a.name = strdup(name);
    a.ndim = 1;
    a.shape[0] = (int64_t)n;
    a.data = malloc(n * sizeof(float));
    if (!a.name || !a.data) {
        wcm_array_free(&a);
        return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    }
    memcpy(a.data, src, n * sizeof(float));
    int rc = wcm_array_list_push(l, &a, err);
    if (rc) wcm_array_free(&a);
    return rc;
}

int wcm_train_checkpoint_save(const char *path, const wcm_trainer *t, const wcm_array_list *meta, wcm_error *err) {
    const wcm_net *net = t->net;
    for (size_t i = 0; i < net->nparams; i++)
        if (!isfinite(net->params[i]))
            return wcm_fail(err, WCM_ERR_NUMERIC, "%s: not written, the parameters contain NaN or Inf", path);
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
    if (!rc) rc = wcm_net_to_arrays(net, "net.", &l, err);
    if (!rc) rc = push_vector(&l, "train.adam_m", t->adam_m, net->nparams, err);
    if (!rc) rc = push_vector(&l, "train.adam_v", t->adam_v, net->nparams, err);
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
    if (!rc) {
        memcpy(t->adam_m, m->data, net->nparams * sizeof(float));
        memcpy(t->adam_v, v->data, net->nparams * sizeof(float));
        t->adam_step = adam_step;
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

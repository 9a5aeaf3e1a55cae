/* The backend registry, the process-wide defaults, and the op dispatcher:
 * every wcm_op_* resolves its context and backend, runs the backend's op with
 * the context's threads, and turns a failure into a message naming the
 * backend and the op. */
#include <stdio.h>
#include <string.h>

#include "backend_impl.h"

/* ---- registry and defaults ---------------------------------------------------- */

#define MAX_BACKENDS 16

static const wcm_backend *g_extra[MAX_BACKENDS];
static int g_extra_count = 0;

/* The built-in backends: the reference, the CPU, and CUDA when built in. */
#ifdef WCM_HAVE_CUDA
#define BUILT_IN 3
#else
#define BUILT_IN 2
#endif

int wcm_backend_count(void) { return BUILT_IN + __atomic_load_n(&g_extra_count, __ATOMIC_ACQUIRE); }

const wcm_backend *wcm_backend_at(int i) {
    if (i == 0) return wcm_backend_reference();
    if (i == 1) return wcm_backend_cpu();
#ifdef WCM_HAVE_CUDA
    if (i == 2) return wcm_backend_cuda();
#endif
    return i >= BUILT_IN && i < wcm_backend_count() ? g_extra[i - BUILT_IN] : NULL;
}

int wcm_backend_register(const wcm_backend *b) {
    for (int i = 0; i < wcm_backend_count(); i++)
        if (wcm_backend_at(i) == b) return i;
    const int k = __atomic_load_n(&g_extra_count, __ATOMIC_ACQUIRE);
    if (k >= MAX_BACKENDS) return -1;
    g_extra[k] = b;
    __atomic_store_n(&g_extra_count, k + 1, __ATOMIC_RELEASE);
    return k + BUILT_IN;
}

const wcm_backend *wcm_backend_by_name(const char *name) {
    for (int i = 0; i < wcm_backend_count(); i++)
        if (!strcmp(wcm_backend_at(i)->name, name)) return wcm_backend_at(i);
    return NULL;
}

const char *wcm_backend_name(const wcm_backend *b) { return b->name; }
int wcm_backend_host_visible(const wcm_backend *b) { return b->host_visible; }
int wcm_backend_variant_count(const wcm_backend *b) { return b->variant_count ? b->variant_count() : 1; }

const char *wcm_backend_variant_name(const wcm_backend *b, int v) {
    if (v < 0 || v >= wcm_backend_variant_count(b)) return "none";
    return b->variant_name ? b->variant_name(v) : "default";
}

static const wcm_backend *g_backend = NULL;
static int g_winograd = 1;

void wcm_set_backend(const wcm_backend *b) { __atomic_store_n(&g_backend, b, __ATOMIC_RELEASE); }

const wcm_backend *wcm_get_backend(void) {
    const wcm_backend *b = __atomic_load_n(&g_backend, __ATOMIC_ACQUIRE);
    return b ? b : wcm_backend_cpu();
}

void wcm_set_winograd(int enabled) { __atomic_store_n(&g_winograd, enabled ? 1 : 0, __ATOMIC_RELAXED); }
int wcm_get_winograd(void) { return __atomic_load_n(&g_winograd, __ATOMIC_RELAXED); }

const char *wcm_cpu_simd_level(void) {
    const wcm_backend *cpu = wcm_backend_cpu();
    return wcm_backend_variant_name(cpu, cpu->variant_default());
}

/* ---- ops ------------------------------------------------------------------------- */

static const char *const op_names[WCM_OP_COUNT] = {
    [WCM_OP_CONV_FORWARD] = "conv_forward",
    [WCM_OP_CONV_BACKWARD_DATA] = "conv_backward_data",
    [WCM_OP_CONV_BACKWARD_WEIGHTS] = "conv_backward_weights",
    [WCM_OP_BN_STATS] = "bn_stats",
    [WCM_OP_BN_APPLY] = "bn_apply",
    [WCM_OP_BN_BACKWARD] = "bn_backward",
    [WCM_OP_BN_RUNNING] = "bn_running",
    [WCM_OP_BN_FOLD] = "bn_fold",
    [WCM_OP_BN_FOLD_BACKWARD] = "bn_fold_backward",
    [WCM_OP_RELU] = "relu",
    [WCM_OP_RELU_BACKWARD] = "relu_backward",
    [WCM_OP_LOSS_SSE] = "loss_sse",
    [WCM_OP_ADAM] = "adam",
    [WCM_OP_FILL] = "fill",
    [WCM_OP_AXPY] = "axpy",
    [WCM_OP_SCALE] = "scale",
    [WCM_OP_NOISE_STEP] = "noise_step",
    [WCM_OP_ADD_NOISE] = "add_noise",
    [WCM_OP_ADD_NOISE_255] = "add_noise_255",
    [WCM_OP_RESCALE] = "rescale",
    [WCM_OP_REDUCE] = "reduce",
    [WCM_OP_CHANNEL_REDUCE] = "channel_reduce",
    [WCM_OP_CHANNEL_PARTIALS] = "channel_partials",
    [WCM_OP_HAAR_SPLIT] = "haar_split",
    [WCM_OP_HAAR_MERGE] = "haar_merge",
    [WCM_OP_CHANNELS] = "channels",
    [WCM_OP_UPSAMPLE] = "upsample",
    [WCM_OP_FILL_NORMAL] = "fill_normal",
    [WCM_OP_FILL_UNIFORM] = "fill_uniform",
    [WCM_OP_FILL_NORMAL_TORCH] = "fill_normal_torch",
    [WCM_OP_NET_FORWARD] = "net_forward",
};

const char *wcm_op_name(wcm_op_id op) { return op >= 0 && op < WCM_OP_COUNT ? op_names[op] : "unknown"; }

int wcm_backend_claims(const wcm_backend *b, wcm_op_id op) {
    switch (op) {
        case WCM_OP_CONV_FORWARD: return b->conv_forward != NULL;
        case WCM_OP_CONV_BACKWARD_DATA: return b->conv_backward_data != NULL;
        case WCM_OP_CONV_BACKWARD_WEIGHTS: return b->conv_backward_weights != NULL;
        case WCM_OP_BN_STATS: return b->bn_stats != NULL;
        case WCM_OP_BN_APPLY: return b->bn_apply != NULL;
        case WCM_OP_BN_BACKWARD: return b->bn_backward != NULL;
        case WCM_OP_BN_RUNNING: return b->bn_running != NULL;
        case WCM_OP_BN_FOLD: return b->bn_fold != NULL;
        case WCM_OP_BN_FOLD_BACKWARD: return b->bn_fold_backward != NULL;
        case WCM_OP_RELU: return b->relu != NULL;
        case WCM_OP_RELU_BACKWARD: return b->relu_backward != NULL;
        case WCM_OP_LOSS_SSE: return b->loss_sse != NULL;
        case WCM_OP_ADAM: return b->adam != NULL;
        case WCM_OP_FILL: return b->fill != NULL;
        case WCM_OP_AXPY: return b->axpy != NULL;
        case WCM_OP_SCALE: return b->scale != NULL;
        case WCM_OP_NOISE_STEP: return b->noise_step != NULL;
        case WCM_OP_ADD_NOISE: return b->add_noise != NULL;
        case WCM_OP_ADD_NOISE_255: return b->add_noise_255 != NULL;
        case WCM_OP_RESCALE: return b->rescale != NULL;
        case WCM_OP_REDUCE: return b->reduce != NULL;
        case WCM_OP_CHANNEL_REDUCE: return b->channel_reduce != NULL;
        case WCM_OP_CHANNEL_PARTIALS: return b->channel_partials != NULL;
        case WCM_OP_HAAR_SPLIT: return b->haar_split != NULL;
        case WCM_OP_HAAR_MERGE: return b->haar_merge != NULL;
        case WCM_OP_CHANNELS: return b->channels != NULL;
        case WCM_OP_UPSAMPLE: return b->upsample != NULL;
        case WCM_OP_FILL_NORMAL: return b->fill_normal != NULL;
        case WCM_OP_FILL_UNIFORM: return b->fill_uniform != NULL;
        case WCM_OP_FILL_NORMAL_TORCH: return b->fill_normal_torch != NULL;
        case WCM_OP_NET_FORWARD: return b->net_compile != NULL;
        case WCM_OP_COUNT: break;
    }
    return 0;
}

/* The context's backend, its per-context state set up for it. */
static const wcm_backend *prepare(wcm_context *ctx, wcm_error *err, int *rc) {
    const wcm_backend *be = wcm_context_backend(ctx);
    *rc = WCM_OK;
    if (ctx->state_backend == be) return be;
    if (ctx->state_backend && ctx->state_backend->context_free) ctx->state_backend->context_free(ctx);
    ctx->state = NULL;
    ctx->state_backend = NULL;
    ctx->msg[0] = 0;
    if (be->context_init && (*rc = be->context_init(ctx)) != WCM_OK) {
        *rc = wcm_fail(err, *rc, "%s backend: cannot set up a context%s%s", be->name, ctx->msg[0] ? ": " : "", ctx->msg);
        return NULL;
    }
    ctx->state_backend = be;
    return be;
}

static int op_failed(const wcm_backend *be, wcm_context *ctx, wcm_op_id op, int rc, wcm_error *err) {
    if (!ctx->msg[0]) snprintf(ctx->msg, sizeof ctx->msg, "%s", rc == WCM_ERR_NOMEM ? "out of memory" : "failed");
    return wcm_fail(err, rc, "%s backend, %s: %s", be->name, wcm_op_name(op), ctx->msg);
}

/* The body of every wcm_op_*: `field` is the backend's entry for op `id`,
 * called with the resolved context and the remaining arguments. */
#define DISPATCH(ctx_in, id, field, ...)                                                                       \
    do {                                                                                                       \
        wcm_context *c_ = wcm_ctx(ctx_in);                                                                     \
        int rc_;                                                                                               \
        const wcm_backend *b_ = prepare(c_, err, &rc_);                                                        \
        if (!b_) return rc_;                                                                                   \
        if (!b_->field) return wcm_fail(err, WCM_ERR_ARG, "%s backend has no op %s", b_->name, wcm_op_name(id)); \
        c_->msg[0] = 0;                                                                                        \
        const wcm_threads_scope t_ = wcm_threads_enter(c_);                                                    \
        rc_ = b_->field(c_, __VA_ARGS__);                                                                      \
        wcm_threads_leave(t_);                                                                                 \
        return rc_ ? op_failed(b_, c_, id, rc_, err) : WCM_OK;                                                 \
    } while (0)

static int bad_channels(int c, wcm_error *err) {
    return c < 1 || c > WCM_CHANNELS ? wcm_fail(err, WCM_ERR_SHAPE, "batch norm needs 1..%d channels, got %d", WCM_CHANNELS, c)
                                     : WCM_OK;
}

int wcm_op_conv_forward(wcm_context *ctx, const wcm_conv_shape *s, const float *x, const float *w, float *y, int flags,
                        wcm_error *err) {
    DISPATCH(ctx, WCM_OP_CONV_FORWARD, conv_forward, s, x, w, y, flags);
}

int wcm_op_conv_backward_data(wcm_context *ctx, const wcm_conv_shape *s, const float *dy, const float *w, float *dx,
                              wcm_error *err) {
    DISPATCH(ctx, WCM_OP_CONV_BACKWARD_DATA, conv_backward_data, s, dy, w, dx);
}

int wcm_op_conv_backward_weights(wcm_context *ctx, const wcm_conv_shape *s, const float *x, const float *dy, float *dw,
                                 int flags, wcm_error *err) {
    DISPATCH(ctx, WCM_OP_CONV_BACKWARD_WEIGHTS, conv_backward_weights, s, x, dy, dw, flags);
}

int wcm_op_bn_stats(wcm_context *ctx, const float *x, size_t m, int c, double *mean, double *sd, wcm_error *err) {
    if (bad_channels(c, err)) return WCM_ERR_SHAPE;
    DISPATCH(ctx, WCM_OP_BN_STATS, bn_stats, x, m, c, mean, sd);
}

int wcm_op_bn_apply(wcm_context *ctx, const float *x, size_t m, int c, const float *gamma, const double *sd, int relu,
                    float *y, wcm_error *err) {
    if (bad_channels(c, err)) return WCM_ERR_SHAPE;
    DISPATCH(ctx, WCM_OP_BN_APPLY, bn_apply, x, m, c, gamma, sd, relu, y);
}

int wcm_op_bn_backward(wcm_context *ctx, const float *x, const float *dy, size_t m, int c, const float *gamma,
                       const double *mean, const double *sd, int relu, float *dx, float *dgamma, wcm_error *err) {
    if (bad_channels(c, err)) return WCM_ERR_SHAPE;
    DISPATCH(ctx, WCM_OP_BN_BACKWARD, bn_backward, x, dy, m, c, gamma, mean, sd, relu, dx, dgamma);
}

int wcm_op_bn_running(wcm_context *ctx, wcm_bn_running_mode mode, int c, double *sd, float *running, double *acc,
                      double value, wcm_error *err) {
    if (bad_channels(c, err)) return WCM_ERR_SHAPE;
    DISPATCH(ctx, WCM_OP_BN_RUNNING, bn_running, mode, c, sd, running, acc, value);
}

int wcm_op_bn_fold(wcm_context *ctx, size_t rows, int cout, const float *w, const float *gamma, const float *running,
                   float *out, wcm_error *err) {
    DISPATCH(ctx, WCM_OP_BN_FOLD, bn_fold, rows, cout, w, gamma, running, out);
}

int wcm_op_bn_fold_backward(wcm_context *ctx, size_t rows, int cout, const float *w, const float *gamma,
                            const float *running, const float *dout, float *dw, float *dgamma, wcm_error *err) {
    DISPATCH(ctx, WCM_OP_BN_FOLD_BACKWARD, bn_fold_backward, rows, cout, w, gamma, running, dout, dw, dgamma);
}

int wcm_op_relu(wcm_context *ctx, size_t n, const float *x, float *y, wcm_error *err) {
    DISPATCH(ctx, WCM_OP_RELU, relu, n, x, y);
}

int wcm_op_relu_backward(wcm_context *ctx, size_t n, const float *y, const float *dy, float *dx, wcm_error *err) {
    DISPATCH(ctx, WCM_OP_RELU_BACKWARD, relu_backward, n, y, dy, dx);
}

int wcm_op_loss_sse(wcm_context *ctx, size_t n, const float *out, const float *target, int batch, float *dout,
                    double *loss, wcm_error *err) {
    if (batch < 1) return wcm_fail(err, WCM_ERR_ARG, "loss: batch must be >= 1, got %d", batch);
    DISPATCH(ctx, WCM_OP_LOSS_SSE, loss_sse, n, out, target, batch, dout, loss);
}

int wcm_op_adam(wcm_context *ctx, size_t n, float *params, const float *grad, float *m, float *v,
                const wcm_adam_hyper *h, wcm_error *err) {
    DISPATCH(ctx, WCM_OP_ADAM, adam, n, params, grad, m, v, h);
}

int wcm_op_fill(wcm_context *ctx, size_t n, float *x, float value, wcm_error *err) {
    DISPATCH(ctx, WCM_OP_FILL, fill, n, x, value);
}

int wcm_op_axpy(wcm_context *ctx, size_t n, float alpha, const float *x, float *y, wcm_error *err) {
    DISPATCH(ctx, WCM_OP_AXPY, axpy, n, alpha, x, y);
}

int wcm_op_scale(wcm_context *ctx, size_t n, float alpha, float *x, const float *base, wcm_error *err) {
    DISPATCH(ctx, WCM_OP_SCALE, scale, n, alpha, x, base);
}

int wcm_op_noise_step(wcm_context *ctx, size_t n, float *y, float h, const float *d, float gamma, const float *z,
                      wcm_error *err) {
    DISPATCH(ctx, WCM_OP_NOISE_STEP, noise_step, n, y, h, d, gamma, z);
}

int wcm_op_add_noise(wcm_context *ctx, size_t n, const float *x, const float *z, double sigma, float *y, wcm_error *err) {
    DISPATCH(ctx, WCM_OP_ADD_NOISE, add_noise, n, x, z, sigma, y);
}

int wcm_op_add_noise_255(wcm_context *ctx, size_t n, const float *x, const float *z, float sigma255, float *y,
                         wcm_error *err) {
    DISPATCH(ctx, WCM_OP_ADD_NOISE_255, add_noise_255, n, x, z, sigma255, y);
}

int wcm_op_rescale(wcm_context *ctx, size_t n, float *x, float lo, double range, double max, wcm_error *err) {
    DISPATCH(ctx, WCM_OP_RESCALE, rescale, n, x, lo, range, max);
}

int wcm_op_reduce(wcm_context *ctx, wcm_reduce_kind kind, size_t n, const float *x, const float *y, double center,
                  size_t chunk, double *result, wcm_error *err) {
    if (kind == WCM_REDUCE_MINMAX && n == 0) return wcm_fail(err, WCM_ERR_ARG, "reduce: min/max of no values");
    if (kind == WCM_REDUCE_SQDIFF && !y) return wcm_fail(err, WCM_ERR_ARG, "reduce: a squared difference needs y");
    DISPATCH(ctx, WCM_OP_REDUCE, reduce, kind, n, x, y, center, chunk, result);
}

/* The arguments both per-channel sums share. */
static int bad_channel_sums(const char *op, wcm_reduce_kind kind, int c, const double *center, wcm_error *err) {
    if (kind != WCM_REDUCE_SUM && kind != WCM_REDUCE_SUMSQ)
        return wcm_fail(err, WCM_ERR_ARG, "%s: only sums and sums of squares per channel", op);
    if (kind == WCM_REDUCE_SUMSQ && !center) return wcm_fail(err, WCM_ERR_ARG, "%s: sums of squares need centers", op);
    if (c < 1) return wcm_fail(err, WCM_ERR_SHAPE, "%s: %d channels", op, c);
    return WCM_OK;
}

int wcm_op_channel_reduce(wcm_context *ctx, wcm_reduce_kind kind, size_t m, int c, const float *x,
                          const double *center, size_t chunk, double *result, wcm_error *err) {
    int bad = bad_channel_sums("channel reduce", kind, c, center, err);
    if (bad) return bad;
    DISPATCH(ctx, WCM_OP_CHANNEL_REDUCE, channel_reduce, kind, m, c, x, center, chunk, result);
}

int wcm_op_channel_partials(wcm_context *ctx, wcm_reduce_kind kind, size_t m, int c, const float *x,
                            const double *center, size_t part, double *parts, wcm_error *err) {
    int bad = bad_channel_sums("channel partials", kind, c, center, err);
    if (bad) return bad;
    if (part < 1) return wcm_fail(err, WCM_ERR_SHAPE, "channel partials: parts of %zu pixels", part);
    DISPATCH(ctx, WCM_OP_CHANNEL_PARTIALS, channel_partials, kind, m, c, x, center, part, parts);
}

int wcm_op_haar_split(wcm_context *ctx, int n, int h, int w, const float *x, float *out, wcm_error *err) {
    if (n < 0 || h < 0 || w < 0 || h % 2 || w % 2)
        return wcm_fail(err, WCM_ERR_SHAPE, "Haar split needs even sizes, got %dx%d", h, w);
    DISPATCH(ctx, WCM_OP_HAAR_SPLIT, haar_split, n, h, w, x, out);
}

int wcm_op_haar_merge(wcm_context *ctx, int n, int h, int w, const float *low, const float *coeffs, int c, float *out,
                      wcm_error *err) {
    if (n < 0 || h < 0 || w < 0 || (c != 3 && c != 4))
        return wcm_fail(err, WCM_ERR_SHAPE, "Haar merge needs 3 or 4 coefficient channels, got %d", c);
    DISPATCH(ctx, WCM_OP_HAAR_MERGE, haar_merge, n, h, w, low, coeffs, c, out);
}

int wcm_op_channels(wcm_context *ctx, wcm_channels_mode mode, size_t pixels, int count, const float *src, int src_c,
                    int src_off, float *dst, int dst_c, int dst_off, wcm_error *err) {
    if (count < 0 || dst_off < 0 || dst_off + count > dst_c ||
        (mode != WCM_CHANNELS_ZERO && (src_off < 0 || src_off + count > src_c)))
        return wcm_fail(err, WCM_ERR_SHAPE, "channels %d..%d of %d from channels %d..%d of %d do not exist", dst_off,
                        dst_off + count - 1, dst_c, src_off, src_off + count - 1, src_c);
    DISPATCH(ctx, WCM_OP_CHANNELS, channels, mode, pixels, count, src, src_c, src_off, dst, dst_c, dst_off);
}

int wcm_op_upsample(wcm_context *ctx, int n, int h, int w, int c, int factor, const float *x, float *y, wcm_error *err) {
    if (factor < 1 || n < 0 || h < 0 || w < 0 || c < 0)
        return wcm_fail(err, WCM_ERR_ARG, "upsample: bad factor %d or shape %dx%dx%dx%d", factor, n, h, w, c);
    DISPATCH(ctx, WCM_OP_UPSAMPLE, upsample, n, h, w, c, factor, x, y);
}

int wcm_op_fill_normal(wcm_context *ctx, uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float *out,
                       wcm_error *err) {
    DISPATCH(ctx, WCM_OP_FILL_NORMAL, fill_normal, seed, stream, offset, n, out);
}

int wcm_op_fill_uniform(wcm_context *ctx, uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float *out,
                        wcm_error *err) {
    DISPATCH(ctx, WCM_OP_FILL_UNIFORM, fill_uniform, seed, stream, offset, n, out);
}

int wcm_op_fill_normal_torch(wcm_context *ctx, uint64_t seed, size_t n, float *out, wcm_error *err) {
    DISPATCH(ctx, WCM_OP_FILL_NORMAL_TORCH, fill_normal_torch, seed, n, out);
}

int wcm_context_synchronize(wcm_context *ctx, wcm_error *err) {
    ctx = wcm_ctx(ctx);
    int rc;
    const wcm_backend *be = prepare(ctx, err, &rc);
    if (!be || !be->synchronize) return rc;
    ctx->msg[0] = 0;
    rc = be->synchronize(ctx);
    return rc ? wcm_fail(err, rc, "%s backend: synchronize failed%s%s", be->name, ctx->msg[0] ? ": " : "", ctx->msg) : WCM_OK;
}

/* ---- networks ------------------------------------------------------------------ */

typedef struct {
    int (*compile)(wcm_context *, const wcm_net_desc *, wcm_net_plan **);
    int (*load)(wcm_context *, wcm_net_plan *, const wcm_net_desc *);
    int (*fits)(wcm_context *, const wcm_net_plan *);
    int (*forward)(wcm_context *, wcm_net_plan *, int, int, int, const float *, float *);
    void (*release)(wcm_net_plan *);
} net_entries;

/* The backend's own network entries, or the generic plan's. */
static net_entries net_entries_of(const wcm_backend *be) {
    if (be->net_compile) return (net_entries){be->net_compile, be->net_load, be->net_fits, be->net_forward, be->net_free};
    return (net_entries){wcm_generic_net_compile, wcm_generic_net_load, wcm_generic_net_fits, wcm_generic_net_forward,
                         wcm_generic_net_free};
}

/* compile (what = 0), load (1) or forward (2) under the context's threads. */
static int net_call(wcm_context *ctx, int what, const wcm_net_desc *d, wcm_net_plan **plan, int n, int h, int w,
                    const float *x, float *y, wcm_error *err) {
    ctx = wcm_ctx(ctx);
    int rc;
    const wcm_backend *be = prepare(ctx, err, &rc);
    if (!be) return rc;
    const net_entries e = net_entries_of(be);
    ctx->msg[0] = 0;
    const wcm_threads_scope ts = wcm_threads_enter(ctx);
    rc = what == 0 ? e.compile(ctx, d, plan) : what == 1 ? e.load(ctx, *plan, d) : e.forward(ctx, *plan, n, h, w, x, y);
    wcm_threads_leave(ts);
    if (!rc) return WCM_OK;
    if (!ctx->msg[0]) snprintf(ctx->msg, sizeof ctx->msg, "%s", rc == WCM_ERR_NOMEM ? "out of memory" : "failed");
    return wcm_fail(err, rc, "%s backend, network %s: %s", be->name, what == 0 ? "plan" : what == 1 ? "weights" : "forward",
                    ctx->msg);
}

int wcm_dispatch_net_compile(wcm_context *ctx, const wcm_net_desc *d, wcm_net_plan **out, wcm_error *err) {
    *out = NULL;
    return net_call(ctx, 0, d, out, 0, 0, 0, NULL, NULL, err);
}

int wcm_dispatch_net_load(wcm_context *ctx, wcm_net_plan *p, const wcm_net_desc *d, wcm_error *err) {
    return net_call(ctx, 1, d, &p, 0, 0, 0, NULL, NULL, err);
}

int wcm_dispatch_net_fits(wcm_context *ctx, const wcm_backend *made_by, const wcm_net_plan *p) {
    ctx = wcm_ctx(ctx);
    return p && made_by == wcm_context_backend(ctx) && net_entries_of(made_by).fits(ctx, p);
}

int wcm_dispatch_net_forward(wcm_context *ctx, wcm_net_plan *p, int n, int h, int w, const float *x, float *y,
                             wcm_error *err) {
    return net_call(ctx, 2, NULL, &p, n, h, w, x, y, err);
}

void wcm_dispatch_net_free(const wcm_backend *made_by, wcm_net_plan *p) {
    if (p) net_entries_of(made_by).release(p);
}

/* The CUDA backend: device memory, one stream (and cuDNN handle, made by the
 * first convolution) per context,
 * convolutions through cuDNN (conv_cudnn.c) and wcm's own kernels for
 * everything else (kernels_*.cu). Variants are the devices ("cuda:0", ...);
 * a context without a variant of its own uses the process default device
 * (wcm_set_device). Results: the CPU backend's bits for every op but the
 * convolutions (see cuda_kernels.h); convolutions are FP32 (FMA math, no
 * TF32 unless WCM_CUDA_TF32=1 is set) with deterministic algorithms only, so
 * a run repeats bit for bit on one GPU. Networks run through the generic
 * plan: every layer, activation and batch-norm fold stays on the device. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>

#include "cuda/cuda_backend.h"
#include "cuda/cuda_kernels.h"
#include "cuda/cuda_select.h"
#include "rng_internal.h"
#include "wcm/rng_torch.h"

/* ---- devices ------------------------------------------------------------------ */

#define MAX_DEVICES 16

static pthread_once_t g_probe_once = PTHREAD_ONCE_INIT;
static int g_devices;
static char g_no_device[160];
static char g_names[MAX_DEVICES][16];
static int g_default_device;

static void probe(void) {
    int count = 0;
    const cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count <= 0) {
        snprintf(g_no_device, sizeof g_no_device, "%s",
                 e != cudaSuccess ? cudaGetErrorString(e) : "the driver reports no CUDA device");
        count = 0;
    }
    if (count > MAX_DEVICES) count = MAX_DEVICES;
    for (int d = 0; d < count; d++) snprintf(g_names[d], sizeof g_names[d], "cuda:%d", d);
    g_devices = count;
}

int wcm_cuda_device_count(char *why, size_t size) {
    pthread_once(&g_probe_once, probe);
    if (!g_devices && why) snprintf(why, size, "%s", g_no_device);
    return g_devices;
}

void wcm_cuda_set_default_device(int device) { __atomic_store_n(&g_default_device, device, __ATOMIC_RELEASE); }

static int variant_count(void) { return wcm_cuda_device_count(NULL, 0); }
static const char *variant_name(int v) { return v >= 0 && v < variant_count() ? g_names[v] : "none"; }
static int variant_default(void) { return __atomic_load_n(&g_default_device, __ATOMIC_ACQUIRE); }

/* ---- errors, contexts, scratch ------------------------------------------------------ */

int wcm_cuda_check(wcm_context *ctx, int cuda_error, const char *what) {
    if (cuda_error == cudaSuccess) return WCM_OK;
    const int code = cuda_error == cudaErrorMemoryAllocation ? WCM_ERR_NOMEM : WCM_ERR_ARG;
    return wcm_ctx_fail(ctx, code, "%s: %s", what, cudaGetErrorString((cudaError_t)cuda_error));
}

int wcm_cudnn_check(wcm_context *ctx, cudnnStatus_t st, const char *what) {
    if (st == CUDNN_STATUS_SUCCESS) return WCM_OK;
    return wcm_ctx_fail(ctx, st == CUDNN_STATUS_ALLOC_FAILED ? WCM_ERR_NOMEM : WCM_ERR_ARG, "%s: %s", what,
                        cudnnGetErrorString(st));
}

void *wcm_cuda_scratch(wcm_context *ctx, size_t bytes) {
    wcm_cuda_state *st = cuda_state(ctx);
    if (bytes <= st->scratch_bytes) return st->scratch;
    size_t want = st->scratch_bytes * 2 > bytes ? st->scratch_bytes * 2 : bytes;
    if (want < ((size_t)1 << 20)) want = (size_t)1 << 20;
    if (st->scratch) cudaFree(st->scratch); /* synchronizes: earlier ops are done with it */
    st->scratch = NULL;
    st->scratch_bytes = 0;
    const cudaError_t e = cudaMalloc(&st->scratch, want);
    if (e != cudaSuccess) {
        st->scratch = NULL;
        wcm_ctx_fail(ctx, WCM_ERR_NOMEM, "out of device memory for %zu bytes of scratch (%s)", want, cudaGetErrorString(e));
        return NULL;
    }
    st->scratch_bytes = want;
    return st->scratch;
}

static void cuda_context_free(wcm_context *ctx) {
    wcm_cuda_state *st = cuda_state(ctx);
    if (!st) return;
    cudaSetDevice(st->device);
    if (st->stream) cudaStreamSynchronize(st->stream);
    if (st->cudnn) cudnnDestroy(st->cudnn);
    if (st->scratch) cudaFree(st->scratch);
    if (st->own_stream && st->stream) cudaStreamDestroy(st->stream);
    free(st);
    ctx->state = NULL;
}

int wcm_cuda_cudnn(wcm_context *ctx) {
    wcm_cuda_state *st = cuda_state(ctx);
    if (st->cudnn) return WCM_OK;
    int rc = wcm_cudnn_check(ctx, cudnnCreate(&st->cudnn), "cudnnCreate");
    if (!rc) rc = wcm_cudnn_check(ctx, cudnnSetStream(st->cudnn, st->stream), "cudnnSetStream");
    if (rc && st->cudnn) {
        cudnnDestroy(st->cudnn);
        st->cudnn = NULL;
    }
    return rc;
}

static int cuda_context_init(wcm_context *ctx) {
    char why[160];
    const int count = wcm_cuda_device_count(why, sizeof why);
    if (!count) return wcm_ctx_fail(ctx, WCM_ERR_ARG, "no CUDA device is usable: %s", why);
    const int device = wcm_context_variant(ctx);
    if (device < 0 || device >= count)
        return wcm_ctx_fail(ctx, WCM_ERR_ARG, "CUDA device %d asked for, this machine has %d", device, count);
    wcm_cuda_state *st = calloc(1, sizeof *st);
    if (!st) return wcm_ctx_fail(ctx, WCM_ERR_NOMEM, "out of memory for a CUDA context");
    ctx->state = st;
    st->device = device;
    const char *tf32 = getenv("WCM_CUDA_TF32");
    st->tf32 = tf32 && !strcmp(tf32, "1");
    const char *conv = getenv("WCM_CUDA_CONV");
    st->direct = conv && !strcmp(conv, "direct");
    int rc = wcm_cuda_check(ctx, cudaSetDevice(device), "cudaSetDevice");
    if (!rc && ctx->stream) st->stream = (cudaStream_t)ctx->stream;
    else if (!rc) {
        rc = wcm_cuda_check(ctx, cudaStreamCreateWithFlags(&st->stream, cudaStreamNonBlocking), "cudaStreamCreate");
        st->own_stream = !rc;
    }
    if (rc) cuda_context_free(ctx);
    return rc;
}

/* The context's state with its device current (every entry starts here). */
static wcm_cuda_state *enter(wcm_context *ctx) {
    wcm_cuda_state *st = cuda_state(ctx);
    cudaSetDevice(st->device);
    return st;
}

static int cuda_synchronize(wcm_context *ctx) {
    return wcm_cuda_check(ctx, cudaStreamSynchronize(enter(ctx)->stream), "cudaStreamSynchronize");
}

/* ---- buffers ---------------------------------------------------------------------- */

static int cuda_buffer_alloc(wcm_context *ctx, size_t bytes, void **data) {
    enter(ctx);
    const cudaError_t e = cudaMalloc(data, bytes ? bytes : 1);
    if (e == cudaSuccess) return WCM_OK;
    *data = NULL;
    return wcm_ctx_fail(ctx, WCM_ERR_NOMEM, "out of device memory for %zu bytes (%s)", bytes, cudaGetErrorString(e));
}

static void cuda_buffer_free(void *data) {
    if (data) cudaFree(data);
}

static int copy_sync(wcm_context *ctx, void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind,
                     const char *what) {
    wcm_cuda_state *st = enter(ctx);
    if (!bytes) return WCM_OK;
    int rc = wcm_cuda_check(ctx, cudaMemcpyAsync(dst, src, bytes, kind, st->stream), what);
    if (!rc) rc = wcm_cuda_check(ctx, cudaStreamSynchronize(st->stream), what);
    return rc;
}

/* The host copy may be reused as soon as the call returns: both wait. */
static int cuda_to_backend(wcm_context *ctx, void *dst, const void *src, size_t bytes) {
    return copy_sync(ctx, dst, src, bytes, cudaMemcpyHostToDevice, "copy to the device");
}

static int cuda_to_host(wcm_context *ctx, void *dst, const void *src, size_t bytes) {
    return copy_sync(ctx, dst, src, bytes, cudaMemcpyDeviceToHost, "copy to the host");
}

static int cuda_in_backend(wcm_context *ctx, void *dst, const void *src, size_t bytes) {
    wcm_cuda_state *st = enter(ctx);
    if (!bytes || dst == src) return WCM_OK;
    return wcm_cuda_check(ctx, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, st->stream), "device copy");
}

/* ---- ops ------------------------------------------------------------------------- */

/* The body of an op whose launcher takes the stream and the op's arguments. */
#define KERNEL(ctx, name, launcher, ...) \
    return wcm_cuda_check(ctx, launcher(enter(ctx)->stream, __VA_ARGS__), name)

static int cuda_fill(wcm_context *ctx, size_t n, float *x, float value) { KERNEL(ctx, "fill", wcm_cu_fill, n, x, value); }
static int cuda_axpy(wcm_context *ctx, size_t n, float alpha, const float *x, float *y) {
    KERNEL(ctx, "axpy", wcm_cu_axpy, n, alpha, x, y);
}
static int cuda_scale(wcm_context *ctx, size_t n, float alpha, float *x, const float *base) {
    KERNEL(ctx, "scale", wcm_cu_scale, n, alpha, x, base);
}
static int cuda_noise_step(wcm_context *ctx, size_t n, float *y, float h, const float *d, float gamma, const float *z) {
    KERNEL(ctx, "noise step", wcm_cu_noise_step, n, y, h, d, gamma, z);
}
static int cuda_add_noise(wcm_context *ctx, size_t n, const float *x, const float *z, double sigma, float *y) {
    KERNEL(ctx, "add noise", wcm_cu_add_noise, n, x, z, sigma, y);
}
static int cuda_add_noise_255(wcm_context *ctx, size_t n, const float *x, const float *z, float sigma255, float *y) {
    KERNEL(ctx, "add noise", wcm_cu_add_noise_255, n, x, z, sigma255, y);
}
static int cuda_rescale(wcm_context *ctx, size_t n, float *x, float lo, double range, double max) {
    KERNEL(ctx, "rescale", wcm_cu_rescale, n, x, lo, range, max);
}
static int cuda_relu(wcm_context *ctx, size_t n, const float *x, float *y) { KERNEL(ctx, "relu", wcm_cu_relu, n, x, y); }
static int cuda_relu_backward(wcm_context *ctx, size_t n, const float *y, const float *dy, float *dx) {
    KERNEL(ctx, "relu backward", wcm_cu_relu_backward, n, y, dy, dx);
}
static int cuda_adam(wcm_context *ctx, size_t n, float *p, const float *g, float *m, float *v, const wcm_adam_hyper *h) {
    KERNEL(ctx, "adam", wcm_cu_adam, n, p, g, m, v, h);
}
static int cuda_haar_split(wcm_context *ctx, int n, int h, int w, const float *x, float *out) {
    KERNEL(ctx, "haar split", wcm_cu_haar_split, n, h, w, x, out);
}
static int cuda_haar_merge(wcm_context *ctx, int n, int h, int w, const float *low, const float *coeffs, int c,
                           float *out) {
    KERNEL(ctx, "haar merge", wcm_cu_haar_merge, n, h, w, low, coeffs, c, out);
}
static int cuda_channels(wcm_context *ctx, wcm_channels_mode mode, size_t pixels, int count, const float *src, int src_c,
                         int src_off, float *dst, int dst_c, int dst_off) {
    KERNEL(ctx, "channels", wcm_cu_channels, mode, pixels, count, src, src_c, src_off, dst, dst_c, dst_off);
}
static int cuda_upsample(wcm_context *ctx, int n, int h, int w, int c, int factor, const float *x, float *y) {
    KERNEL(ctx, "upsample", wcm_cu_upsample, n, h, w, c, factor, x, y);
}
static int cuda_bn_apply(wcm_context *ctx, const float *x, size_t m, int c, const float *gamma, const double *sd,
                         int relu, float *y) {
    KERNEL(ctx, "batch norm", wcm_cu_bn_apply, x, m, c, gamma, sd, relu, y);
}
static int cuda_bn_running(wcm_context *ctx, wcm_bn_running_mode mode, int c, double *sd, float *running, double *acc,
                           double value) {
    if (mode < WCM_BN_RUNNING_UPDATE || mode > WCM_BN_RUNNING_SET)
        return wcm_ctx_fail(ctx, WCM_ERR_ARG, "unknown running-statistics mode %d", (int)mode);
    KERNEL(ctx, "running statistics", wcm_cu_bn_running, mode, c, sd, running, acc, value);
}
static int cuda_bn_fold(wcm_context *ctx, size_t rows, int cout, const float *w, const float *gamma,
                        const float *running, float *out) {
    KERNEL(ctx, "batch-norm fold", wcm_cu_bn_fold, rows, cout, w, gamma, running, out);
}
static int cuda_bn_fold_backward(wcm_context *ctx, size_t rows, int cout, const float *w, const float *gamma,
                                 const float *running, const float *dout, float *dw, float *dgamma) {
    KERNEL(ctx, "batch-norm fold backward", wcm_cu_bn_fold_backward, rows, cout, w, gamma, running, dout, dw, dgamma);
}

/* Device scratch for the partial sums of m values (or pixels of c channels)
 * in chunks of `chunk`, plus `extra` doubles after them; NULL after a failure. */
static double *partials(wcm_context *ctx, size_t m, size_t chunk, int c, size_t extra, double **tail) {
    const size_t count = wcm_cu_partials(m, chunk, c);
    double *p = wcm_cuda_scratch(ctx, (count + extra) * sizeof(double));
    if (p && tail) *tail = p + count;
    return p;
}

static int cuda_bn_stats(wcm_context *ctx, const float *x, size_t m, int c, double *mean, double *sd) {
    wcm_cuda_state *st = enter(ctx);
    double *p = partials(ctx, m, 0, c, 0, NULL);
    if (!p) return WCM_ERR_NOMEM;
    return wcm_cuda_check(ctx, wcm_cu_bn_stats(st->stream, x, m, c, mean, sd, p), "batch-norm statistics");
}

static int cuda_bn_backward(wcm_context *ctx, const float *x, const float *dy, size_t m, int c, const float *gamma,
                            const double *mean, const double *sd, int relu, float *dx, float *dgamma) {
    wcm_cuda_state *st = enter(ctx);
    double *ab, *p = partials(ctx, m, 0, c, 2 * (size_t)c, &ab);
    if (!p) return WCM_ERR_NOMEM;
    return wcm_cuda_check(ctx, wcm_cu_bn_backward(st->stream, x, dy, m, c, gamma, mean, sd, relu, dx, dgamma, p, ab),
                          "batch-norm backward");
}

/* Copies `count` result doubles from the device to the host and waits. */
static int results_to_host(wcm_context *ctx, double *host, const double *dev, size_t count) {
    return copy_sync(ctx, host, dev, count * sizeof(double), cudaMemcpyDeviceToHost, "copy of a result to the host");
}

static int cuda_loss_sse(wcm_context *ctx, size_t n, const float *out, const float *target, int batch, float *dout,
                         double *loss) {
    wcm_cuda_state *st = enter(ctx);
    double *res, *p = partials(ctx, n, 0, 1, 1, &res);
    if (!p) return WCM_ERR_NOMEM;
    const int rc = wcm_cuda_check(ctx, wcm_cu_loss_sse(st->stream, n, out, target, batch, dout, p, res), "loss");
    return rc ? rc : results_to_host(ctx, loss, res, 1);
}

static int cuda_reduce(wcm_context *ctx, wcm_reduce_kind kind, size_t n, const float *x, const float *y, double center,
                       size_t chunk, double *result) {
    wcm_cuda_state *st = enter(ctx);
    double *res, *p = partials(ctx, n, chunk, 1, 2, &res);
    if (!p) return WCM_ERR_NOMEM;
    const int rc = wcm_cuda_check(ctx, wcm_cu_reduce(st->stream, kind, n, x, y, center, chunk, p, res), "reduce");
    return rc ? rc : results_to_host(ctx, result, res, kind == WCM_REDUCE_MINMAX ? 2 : 1);
}

static int cuda_channel_reduce(wcm_context *ctx, wcm_reduce_kind kind, size_t m, int c, const float *x,
                               const double *center, size_t chunk, double *result) {
    wcm_cuda_state *st = enter(ctx);
    double *dev_center, *p = partials(ctx, m, chunk ? chunk : m, c, 2 * (size_t)c, &dev_center);
    if (!p) return WCM_ERR_NOMEM;
    double *res = dev_center + c;
    int rc = WCM_OK;
    if (center)
        rc = wcm_cuda_check(ctx, cudaMemcpyAsync(dev_center, center, sizeof(double) * (size_t)c, cudaMemcpyHostToDevice,
                                                 st->stream),
                            "copy of the centers");
    if (!rc)
        rc = wcm_cuda_check(ctx,
                            wcm_cu_channel_reduce(st->stream, kind, m, c, x, center ? dev_center : NULL, chunk, p, res),
                            "channel reduce");
    return rc ? rc : results_to_host(ctx, result, res, (size_t)c);
}

/* ---- noise ---------------------------------------------------------------------------- */

/* Indices of normals the host recomputes per fill (more: the host fills all). */
#define SUSPECT_CAP 1024

static int fill_on_host(wcm_context *ctx, int uniform, uint64_t seed, uint64_t stream, uint64_t offset, size_t n,
                        float *out) {
    float *h = malloc(n * sizeof(float));
    if (!h) return wcm_ctx_fail(ctx, WCM_ERR_NOMEM, "out of memory for %zu noise values", n);
    wcm_cpu_fill_philox(uniform, seed, stream, offset, n, h);
    const int rc = cuda_to_backend(ctx, out, h, n * sizeof(float));
    free(h);
    return rc;
}

static int cuda_fill_philox(wcm_context *ctx, int uniform, uint64_t seed, uint64_t stream, uint64_t offset, size_t n,
                            float *out) {
    wcm_cuda_state *st = enter(ctx);
    if (!n) return WCM_OK;
    unsigned long long *suspect = wcm_cuda_scratch(ctx, (1 + SUSPECT_CAP) * sizeof(unsigned long long));
    if (!suspect) return WCM_ERR_NOMEM;
    int rc = wcm_cuda_check(ctx, cudaMemsetAsync(suspect, 0, sizeof *suspect, st->stream), "noise fill");
    if (!rc)
        rc = wcm_cuda_check(ctx, wcm_cu_fill_philox(st->stream, uniform, seed, stream, offset, n, out, suspect, SUSPECT_CAP),
                            "noise fill");
    if (rc || uniform) return rc;
    unsigned long long list[1 + SUSPECT_CAP];
    rc = copy_sync(ctx, list, suspect, sizeof list[0], cudaMemcpyDeviceToHost, "noise fill");
    if (rc || !list[0]) return rc;
    if (list[0] > SUSPECT_CAP) return fill_on_host(ctx, uniform, seed, stream, offset, n, out);
    rc = copy_sync(ctx, list + 1, suspect + 1, list[0] * sizeof list[0], cudaMemcpyDeviceToHost, "noise fill");
    for (unsigned long long k = 0; !rc && k < list[0]; k++) {
        const uint64_t index = offset + list[1 + k];
        float pair[2];
        wcm_rng_pair(0, seed, stream, index / 2, pair);
        rc = cuda_to_backend(ctx, out + list[1 + k], &pair[index % 2], sizeof(float));
    }
    return rc;
}

static int cuda_fill_normal(wcm_context *ctx, uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float *out) {
    return cuda_fill_philox(ctx, 0, seed, stream, offset, n, out);
}

static int cuda_fill_uniform(wcm_context *ctx, uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float *out) {
    return cuda_fill_philox(ctx, 1, seed, stream, offset, n, out);
}

/* torch.randn's MT19937 is sequential: generated on the host and uploaded. */
static int cuda_fill_normal_torch(wcm_context *ctx, uint64_t seed, size_t n, float *out) {
    if (!n) return WCM_OK;
    float *h = malloc(n * sizeof(float));
    if (!h) return wcm_ctx_fail(ctx, WCM_ERR_NOMEM, "out of memory for %zu noise values", n);
    wcm_randn_torch(seed, h, n);
    const int rc = cuda_to_backend(ctx, out, h, n * sizeof(float));
    free(h);
    return rc;
}

static const wcm_backend cuda_backend = {
    .name = "cuda",
    .host_visible = 0,
    .variant_count = variant_count,
    .variant_name = variant_name,
    .variant_default = variant_default,
    .context_init = cuda_context_init,
    .context_free = cuda_context_free,
    .synchronize = cuda_synchronize,
    .buffer_alloc = cuda_buffer_alloc,
    .buffer_free = cuda_buffer_free,
    .memcpy_to_backend = cuda_to_backend,
    .memcpy_to_host = cuda_to_host,
    .memcpy_in_backend = cuda_in_backend,
    .conv_forward = wcm_cuda_conv_forward,
    .conv_backward_data = wcm_cuda_conv_backward_data,
    .conv_backward_weights = wcm_cuda_conv_backward_weights,
    .bn_stats = cuda_bn_stats,
    .bn_apply = cuda_bn_apply,
    .bn_backward = cuda_bn_backward,
    .bn_running = cuda_bn_running,
    .bn_fold = cuda_bn_fold,
    .bn_fold_backward = cuda_bn_fold_backward,
    .relu = cuda_relu,
    .relu_backward = cuda_relu_backward,
    .loss_sse = cuda_loss_sse,
    .adam = cuda_adam,
    .fill = cuda_fill,
    .axpy = cuda_axpy,
    .scale = cuda_scale,
    .noise_step = cuda_noise_step,
    .add_noise = cuda_add_noise,
    .add_noise_255 = cuda_add_noise_255,
    .rescale = cuda_rescale,
    .reduce = cuda_reduce,
    .channel_reduce = cuda_channel_reduce,
    .haar_split = cuda_haar_split,
    .haar_merge = cuda_haar_merge,
    .channels = cuda_channels,
    .upsample = cuda_upsample,
    .fill_normal = cuda_fill_normal,
    .fill_uniform = cuda_fill_uniform,
    .fill_normal_torch = cuda_fill_normal_torch,
    .net_compile = wcm_generic_net_compile,
    .net_load = wcm_generic_net_load,
    .net_fits = wcm_generic_net_fits,
    .net_forward = wcm_generic_net_forward,
    .net_free = wcm_generic_net_free,
};

const wcm_backend *wcm_backend_cuda(void) { return &cuda_backend; }

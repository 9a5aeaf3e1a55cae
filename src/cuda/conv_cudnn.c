/* The CUDA backend's convolutions through cuDNN, on wcm's NHWC tensors.
 * Weights are transposed from wcm's [k][k][cin][cout] to cuDNN's NHWC
 * filter layout [cout][k][k][cin] in scratch (and back for the weight
 * gradient). A "same" convolution with an even kernel (k = 2, 4) has one
 * output row and column more in cuDNN's symmetric padding than in wcm: the
 * forward crops them off, the backwards read a zero-padded gradient.
 *
 * Precision: FP32 with FMA math (no TF32) unless the context allows TF32
 * (WCM_CUDA_TF32=1). Only deterministic algorithms are used and, in FP32,
 * only the GEMM-like ones (implicit GEMM, precomputed implicit GEMM, GEMM,
 * direct; no FFT or Winograd, whose rounding is coarser), so a convolution
 * repeats bit for bit and stays within the CPU's direct-kernel tolerance.
 * The choice per shape comes from cuDNN's heuristics and is cached in the
 * context. Shapes without such an algorithm, and every shape when
 * WCM_CUDA_CONV=direct is set, run wcm's direct kernels (kernels_conv.cu). */
#include <string.h>

#include "cuda/cuda_backend.h"
#include "cuda/cuda_kernels.h"

enum { OP_FORWARD, OP_BACKWARD_DATA, OP_BACKWARD_FILTER };
#define MAX_ALGOS 16

typedef struct {
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    int oh, ow; /* cuDNN's output size (h, w for odd k) */
} conv_descs;

static void descs_free(conv_descs *d) {
    if (d->x) cudnnDestroyTensorDescriptor(d->x);
    if (d->y) cudnnDestroyTensorDescriptor(d->y);
    if (d->w) cudnnDestroyFilterDescriptor(d->w);
    if (d->conv) cudnnDestroyConvolutionDescriptor(d->conv);
}

static int descs_make(wcm_context *ctx, const wcm_conv_shape *s, conv_descs *d) {
    memset(d, 0, sizeof *d);
    const int pad = s->k / 2;
    d->oh = s->h + 2 * pad - s->k + 1;
    d->ow = s->w + 2 * pad - s->k + 1;
    const cudnnMathType_t math = cuda_state(ctx)->tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
    const int rc_handle = wcm_cuda_cudnn(ctx);
    if (rc_handle) return rc_handle;
    cudnnStatus_t st = cudnnCreateTensorDescriptor(&d->x);
    if (!st) st = cudnnCreateTensorDescriptor(&d->y);
    if (!st) st = cudnnCreateFilterDescriptor(&d->w);
    if (!st) st = cudnnCreateConvolutionDescriptor(&d->conv);
    if (!st) st = cudnnSetTensor4dDescriptor(d->x, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, s->n, s->cin, s->h, s->w);
    if (!st) st = cudnnSetTensor4dDescriptor(d->y, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, s->n, s->cout, d->oh, d->ow);
    if (!st) st = cudnnSetFilter4dDescriptor(d->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, s->cout, s->cin, s->k, s->k);
    if (!st)
        st = cudnnSetConvolution2dDescriptor(d->conv, pad, pad, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT);
    if (!st) st = cudnnSetConvolutionMathType(d->conv, math);
    const int rc = wcm_cudnn_check(ctx, st, "convolution descriptors");
    if (rc) {
        descs_free(d);
        memset(d, 0, sizeof *d);
    }
    return rc;
}

/* Algorithms whose rounding matches a direct FP32 convolution's. */
static int precise_algo(int op, int algo) {
    if (op == OP_FORWARD)
        return algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM || algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM ||
               algo == CUDNN_CONVOLUTION_FWD_ALGO_GEMM || algo == CUDNN_CONVOLUTION_FWD_ALGO_DIRECT;
    if (op == OP_BACKWARD_DATA)
        return algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0 || algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
    return algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 || algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1 ||
           algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3;
}

/* One heuristic candidate, whatever the op. */
typedef struct {
    int algo;
    cudnnStatus_t status;
    size_t memory;
    cudnnDeterminism_t determinism;
    cudnnMathType_t math;
} candidate;

static int candidates(wcm_context *ctx, int op, const conv_descs *d, candidate *out, int *count) {
    cudnnHandle_t h = cuda_state(ctx)->cudnn;
    int n = 0;
    cudnnStatus_t st;
    if (op == OP_FORWARD) {
        cudnnConvolutionFwdAlgoPerf_t p[MAX_ALGOS];
        st = cudnnGetConvolutionForwardAlgorithm_v7(h, d->x, d->w, d->conv, d->y, MAX_ALGOS, &n, p);
        for (int i = 0; !st && i < n; i++) out[i] = (candidate){p[i].algo, p[i].status, p[i].memory, p[i].determinism, p[i].mathType};
    } else if (op == OP_BACKWARD_DATA) {
        cudnnConvolutionBwdDataAlgoPerf_t p[MAX_ALGOS];
        st = cudnnGetConvolutionBackwardDataAlgorithm_v7(h, d->w, d->y, d->conv, d->x, MAX_ALGOS, &n, p);
        for (int i = 0; !st && i < n; i++) out[i] = (candidate){p[i].algo, p[i].status, p[i].memory, p[i].determinism, p[i].mathType};
    } else {
        cudnnConvolutionBwdFilterAlgoPerf_t p[MAX_ALGOS];
        st = cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d->x, d->y, d->conv, d->w, MAX_ALGOS, &n, p);
        for (int i = 0; !st && i < n; i++) out[i] = (candidate){p[i].algo, p[i].status, p[i].memory, p[i].determinism, p[i].mathType};
    }
    *count = st ? 0 : n;
    return wcm_cudnn_check(ctx, st, "convolution algorithm heuristics");
}

static int pick_algo(wcm_context *ctx, int op, const wcm_conv_shape *s, const conv_descs *d, int *algo, int *math,
                     size_t *workspace);

/* The algorithm for op on shape s (cached per context) with its math type
 * set on the descriptor, and its workspace size; -1 when cuDNN offers no
 * suitable one (or WCM_CUDA_CONV=direct): the direct kernels then run. */
static int choose(wcm_context *ctx, int op, const wcm_conv_shape *s, const conv_descs *d, int *algo, size_t *workspace) {
    int math = 0;
    if (cuda_state(ctx)->direct) {
        *algo = -1;
        *workspace = 0;
        return WCM_OK;
    }
    int rc = pick_algo(ctx, op, s, d, algo, &math, workspace);
    return rc ? rc : wcm_cudnn_check(ctx, cudnnSetConvolutionMathType(d->conv, (cudnnMathType_t)math), "convolution math type");
}

/* The cached or heuristic choice. */
static int pick_algo(wcm_context *ctx, int op, const wcm_conv_shape *s, const conv_descs *d, int *algo, int *math,
                     size_t *workspace) {
    wcm_cuda_state *st = cuda_state(ctx);
    const wcm_cuda_algo key = {op, s->n, s->h, s->w, s->cin, s->cout, s->k, st->tf32, 0, 0, 0};
    for (int i = 0; i < st->nalgos; i++) {
        const wcm_cuda_algo *a = &st->algos[i];
        if (a->op == key.op && a->n == key.n && a->h == key.h && a->w == key.w && a->cin == key.cin &&
            a->cout == key.cout && a->k == key.k && a->tf32 == key.tf32) {
            *algo = a->algo;
            *math = a->math;
            *workspace = a->workspace;
            return WCM_OK;
        }
    }
    candidate c[MAX_ALGOS];
    int n;
    int rc = candidates(ctx, op, d, c, &n);
    if (rc) return rc;
    int pick = -1;
    for (int i = 0; i < n && pick < 0; i++) {
        const int usable = c[i].status == CUDNN_STATUS_SUCCESS && c[i].determinism == CUDNN_DETERMINISTIC;
        const int fp32 = c[i].math != CUDNN_TENSOR_OP_MATH && c[i].math != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
        if (usable && (st->tf32 || (fp32 && precise_algo(op, c[i].algo)))) pick = i;
    }
    wcm_cuda_algo *slot = &st->algos[st->nalgos < WCM_CUDA_ALGO_CACHE ? st->nalgos++ : st->next_algo++ % WCM_CUDA_ALGO_CACHE];
    *slot = key;
    /* None: the direct kernels (algo -1). */
    slot->algo = *algo = pick < 0 ? -1 : c[pick].algo;
    slot->math = *math = st->tf32 && pick >= 0 ? (int)c[pick].math : (int)CUDNN_FMA_MATH;
    slot->workspace = *workspace = pick < 0 ? 0 : c[pick].memory;
    return WCM_OK;
}

static size_t align256(size_t bytes) { return (bytes + 255) & ~(size_t)255; }

/* Scratch carved into: transposed weights, a padded tensor (even k), the workspace. */
typedef struct {
    float *weights, *padded;
    void *workspace;
} carve;

static int take_scratch(wcm_context *ctx, const wcm_conv_shape *s, const conv_descs *d, int padded_c, size_t workspace,
                        carve *out) {
    const size_t wbytes = align256(sizeof(float) * (size_t)s->k * s->k * s->cin * s->cout);
    const int even = d->oh != s->h || d->ow != s->w;
    const size_t pbytes = even ? align256(sizeof(float) * (size_t)s->n * d->oh * d->ow * padded_c) : 0;
    char *base = wcm_cuda_scratch(ctx, wbytes + pbytes + workspace + 256);
    if (!base) return WCM_ERR_NOMEM;
    out->weights = (float *)base;
    out->padded = even ? (float *)(base + wbytes) : NULL;
    out->workspace = workspace ? base + wbytes + pbytes : NULL;
    return WCM_OK;
}

static const float ONE = 1.0f, ZERO = 0.0f;

int wcm_cuda_conv_forward(wcm_context *ctx, const wcm_conv_shape *s, const float *x, const float *w, float *y, int flags) {
    wcm_cuda_state *st = cuda_state(ctx);
    cudaSetDevice(st->device);
    if (!s->n || !s->h || !s->w || !s->cout) return WCM_OK;
    conv_descs d;
    int rc = descs_make(ctx, s, &d), algo = 0;
    size_t ws = 0;
    carve c;
    if (!rc) rc = choose(ctx, OP_FORWARD, s, &d, &algo, &ws);
    if (!rc && algo < 0) {
        descs_free(&d);
        return wcm_cuda_check(ctx, wcm_cu_conv_forward_direct(st->stream, s, x, w, y, flags & WCM_CONV_RELU), "convolution");
    }
    if (!rc) rc = take_scratch(ctx, s, &d, s->cout, ws, &c);
    if (!rc) rc = wcm_cuda_check(ctx, wcm_cu_weights_to_krsc(st->stream, s->k, s->cin, s->cout, w, c.weights), "weights");
    if (!rc)
        rc = wcm_cudnn_check(ctx,
                             cudnnConvolutionForward(st->cudnn, &ONE, d.x, x, d.w, c.weights, d.conv,
                                                     (cudnnConvolutionFwdAlgo_t)algo, c.workspace, ws, &ZERO, d.y,
                                                     c.padded ? c.padded : y),
                             "cudnnConvolutionForward");
    if (!rc && c.padded)
        rc = wcm_cuda_check(ctx, wcm_cu_crop(st->stream, s->n, s->h, s->w, s->cout, d.oh, d.ow, c.padded, y), "crop");
    if (!rc && (flags & WCM_CONV_RELU))
        rc = wcm_cuda_check(ctx, wcm_cu_relu(st->stream, (size_t)s->n * s->h * s->w * s->cout, y, y), "relu");
    descs_free(&d);
    return rc;
}

int wcm_cuda_conv_backward_data(wcm_context *ctx, const wcm_conv_shape *s, const float *dy, const float *w, float *dx) {
    wcm_cuda_state *st = cuda_state(ctx);
    cudaSetDevice(st->device);
    if (!s->n || !s->h || !s->w || !s->cin) return WCM_OK;
    conv_descs d;
    int rc = descs_make(ctx, s, &d), algo = 0;
    size_t ws = 0;
    carve c;
    if (!rc) rc = choose(ctx, OP_BACKWARD_DATA, s, &d, &algo, &ws);
    if (!rc && algo < 0) {
        descs_free(&d);
        return wcm_cuda_check(ctx, wcm_cu_conv_backward_data_direct(st->stream, s, dy, w, dx), "convolution backward");
    }
    if (!rc) rc = take_scratch(ctx, s, &d, s->cout, ws, &c);
    if (!rc) rc = wcm_cuda_check(ctx, wcm_cu_weights_to_krsc(st->stream, s->k, s->cin, s->cout, w, c.weights), "weights");
    if (!rc && c.padded)
        rc = wcm_cuda_check(ctx, wcm_cu_pad(st->stream, s->n, s->h, s->w, s->cout, d.oh, d.ow, dy, c.padded), "pad");
    if (!rc)
        rc = wcm_cudnn_check(ctx,
                             cudnnConvolutionBackwardData(st->cudnn, &ONE, d.w, c.weights, d.y, c.padded ? c.padded : dy,
                                                          d.conv, (cudnnConvolutionBwdDataAlgo_t)algo, c.workspace, ws,
                                                          &ZERO, d.x, dx),
                             "cudnnConvolutionBackwardData");
    descs_free(&d);
    return rc;
}

int wcm_cuda_conv_backward_weights(wcm_context *ctx, const wcm_conv_shape *s, const float *x, const float *dy, float *dw,
                                   int flags) {
    wcm_cuda_state *st = cuda_state(ctx);
    cudaSetDevice(st->device);
    const size_t count = (size_t)s->k * s->k * s->cin * s->cout;
    if (!count) return WCM_OK;
    if (!s->n || !s->h || !s->w)
        return (flags & WCM_CONV_ACCUMULATE) ? WCM_OK
                                             : wcm_cuda_check(ctx, cudaMemsetAsync(dw, 0, count * sizeof(float), st->stream),
                                                              "weight gradient");
    conv_descs d;
    int rc = descs_make(ctx, s, &d), algo = 0;
    size_t ws = 0;
    carve c;
    if (!rc) rc = choose(ctx, OP_BACKWARD_FILTER, s, &d, &algo, &ws);
    if (!rc && algo < 0) {
        descs_free(&d);
        return wcm_cuda_check(ctx,
                              wcm_cu_conv_backward_weights_direct(st->stream, s, x, dy, dw, flags & WCM_CONV_ACCUMULATE),
                              "weight gradient");
    }
    if (!rc) rc = take_scratch(ctx, s, &d, s->cout, ws, &c);
    if (!rc && c.padded)
        rc = wcm_cuda_check(ctx, wcm_cu_pad(st->stream, s->n, s->h, s->w, s->cout, d.oh, d.ow, dy, c.padded), "pad");
    if (!rc)
        rc = wcm_cudnn_check(ctx,
                             cudnnConvolutionBackwardFilter(st->cudnn, &ONE, d.x, x, d.y, c.padded ? c.padded : dy, d.conv,
                                                            (cudnnConvolutionBwdFilterAlgo_t)algo, c.workspace, ws, &ZERO,
                                                            d.w, c.weights),
                             "cudnnConvolutionBackwardFilter");
    if (!rc)
        rc = wcm_cuda_check(ctx,
                            wcm_cu_weights_to_wcm(st->stream, s->k, s->cin, s->cout, c.weights, dw,
                                                  flags & WCM_CONV_ACCUMULATE),
                            "weight gradient");
    descs_free(&d);
    return rc;
}

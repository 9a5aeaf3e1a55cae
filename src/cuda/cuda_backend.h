/* The CUDA backend's per-context state and the helpers its host files
 * share (src/cuda/backend_cuda.c, conv_cudnn.c). */
#ifndef WCM_CUDA_BACKEND_H
#define WCM_CUDA_BACKEND_H

#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "backend_impl.h"

/* A cached convolution algorithm choice for one shape and op. */
typedef struct {
    int op, n, h, w, cin, cout, k, tf32;
    int algo, math; /* cudnnConvolution*Algo_t, cudnnMathType_t */
    size_t workspace;
} wcm_cuda_algo;

#define WCM_CUDA_ALGO_CACHE 64

typedef struct {
    int device;
    cudaStream_t stream;
    int own_stream;
    cudnnHandle_t cudnn; /* NULL until the first convolution (wcm_cuda_cudnn) */
    int tf32;   /* TF32 tensor cores allowed in convolutions (WCM_CUDA_TF32=1) */
    int direct; /* wcm's direct convolution kernels, not cuDNN (WCM_CUDA_CONV=direct) */
    /* Device scratch for one op at a time (ops run in stream order, so the
     * next op may reuse it): grows, never shrinks. */
    void *scratch;
    size_t scratch_bytes;
    wcm_cuda_algo algos[WCM_CUDA_ALGO_CACHE];
    int nalgos, next_algo;
} wcm_cuda_state;

static inline wcm_cuda_state *cuda_state(wcm_context *ctx) { return (wcm_cuda_state *)ctx->state; }

/* WCM_OK, or a failure naming `what` and the CUDA error (recorded in ctx). */
int wcm_cuda_check(wcm_context *ctx, int cuda_error, const char *what);
int wcm_cudnn_check(wcm_context *ctx, cudnnStatus_t st, const char *what);
/* Makes the context's cuDNN handle (on its stream) if it has none yet. */
int wcm_cuda_cudnn(wcm_context *ctx);
/* At least `bytes` of device scratch (its previous contents are lost), or NULL after wcm_ctx_fail. */
void *wcm_cuda_scratch(wcm_context *ctx, size_t bytes);

/* The convolutions (conv_cudnn.c). */
int wcm_cuda_conv_forward(wcm_context *ctx, const wcm_conv_shape *s, const float *x, const float *w, float *y, int flags);
int wcm_cuda_conv_backward_data(wcm_context *ctx, const wcm_conv_shape *s, const float *dy, const float *w, float *dx);
int wcm_cuda_conv_backward_weights(wcm_context *ctx, const wcm_conv_shape *s, const float *x, const float *dy, float *dw,
                                   int flags);

#endif

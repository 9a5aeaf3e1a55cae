/* wcm — compute backends and contexts (in the spirit of ggml's backends).
 *
 * A backend implements the numerical ops of wcm on its own memory: the CPU
 * backend (SIMD kernels, Winograd, OpenMP) and the double-precision reference
 * backend are built in; a device backend (CUDA) slots in behind the same
 * table (src/backend_impl.h, docs/backend.md).
 *
 * A context carries everything an op needs besides its operands: the
 * backend, the backend variant (CPU: the SIMD level), the thread count, the
 * convolution algorithm choice, a scratch arena and, for devices, a stream.
 * One thread uses a context at a time; two contexts may run at once on two
 * threads and give exactly what each gives alone. NULL wherever a context is
 * asked for means the calling thread's default context, whose settings follow
 * the process-wide defaults below (wcm_set_threads, wcm_set_winograd,
 * wcm_set_backend, WCM_SIMD in the environment).
 *
 * Ops take pointers into the context backend's memory (host memory for a
 * host-visible backend such as the CPU), return WCM_OK or a negative
 * wcm_status (an allocation failure is WCM_ERR_NOMEM, never a slower path)
 * and fill `err` (may be NULL). Reductions return their results in host
 * memory. Every op's exact arithmetic is stated below: backends that promise
 * bits (the CPU backend at every SIMD level and thread count) reproduce it. */
#ifndef WCM_BACKEND_H
#define WCM_BACKEND_H

#include "wcm/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wcm_backend wcm_backend; /* an op table: src/backend_impl.h */
typedef struct wcm_context wcm_context;

/* ---- backends ------------------------------------------------------------ */

/* The fast CPU backend (the default). */
const wcm_backend *wcm_backend_cpu(void);
/* Naive loops accumulating in double: the ground truth every backend is tested against. */
const wcm_backend *wcm_backend_reference(void);
/* Registered backends (reference and CPU first, then any added with
 * wcm_backend_register): i in [0, wcm_backend_count()). */
int wcm_backend_count(void);
const wcm_backend *wcm_backend_at(int i);
const wcm_backend *wcm_backend_by_name(const char *name);
const char *wcm_backend_name(const wcm_backend *b);
/* Non-zero when the backend's buffers are ordinary host memory. */
int wcm_backend_host_visible(const wcm_backend *b);
/* Variants of a backend (CPU: "portable", "avx2", "avx512" as far as this
 * machine has them): v in [0, count); the default is the best one, capped
 * for the CPU by WCM_SIMD=portable|avx2|avx512 in the environment. */
int wcm_backend_variant_count(const wcm_backend *b);
const char *wcm_backend_variant_name(const wcm_backend *b, int v);

/* The CUDA backend (src/cuda/, docs/cuda.md), or NULL when this wcm was
 * built without it (WCM_CUDA=OFF, or no nvcc and cuDNN at configure time).
 * Its variants are the devices, "cuda:0", "cuda:1", ...: none when the
 * machine has no usable GPU (a context on it then fails to set up). */
const wcm_backend *wcm_backend_cuda(void);

/* Selects where the process computes: "cpu", "cuda" (device 0) or
 * "cuda:N"; NULL or "" reads the WCM_DEVICE environment variable (unset or
 * empty: cpu). Sets the default backend (wcm_set_backend) and, for CUDA,
 * the device that contexts without a variant of their own use. Fails with
 * WCM_ERR_ARG and a message saying why when the name is malformed, when
 * CUDA is not built in, or when the device does not exist or no GPU is
 * usable; the defaults are then unchanged. */
int wcm_set_device(const char *spec, wcm_error *err);

/* Process-wide default backend (NULL restores the CPU one). */
void wcm_set_backend(const wcm_backend *b);
const wcm_backend *wcm_get_backend(void);
/* The SIMD level of the default context: "avx512", "avx2" or "portable". */
const char *wcm_cpu_simd_level(void);
/* Winograd for 3x3 layers with many channels (default on): F(4x4,3x3), and
 * for the forward at images of 96x96 and more where it pays, F(6x6,3x3). */
void wcm_set_winograd(int enabled);
int wcm_get_winograd(void);

/* ---- contexts ------------------------------------------------------------ */

typedef struct {
    const wcm_backend *backend; /* NULL: the process default (wcm_get_backend) */
    int variant;                /* -1: the backend's default variant */
    int threads;                /* 0: the process default (wcm_set_threads) */
    int winograd;               /* -1: the process default; 0 off; 1 on */
    void *stream;               /* device backends: the stream to run on (NULL: the default one) */
} wcm_context_options;

void wcm_context_options_default(wcm_context_options *o);
int wcm_context_create(wcm_context **out, const wcm_context_options *o, wcm_error *err);
/* Networks bound to ctx (wcm_net_set_context) must be freed or bound
 * elsewhere first. A thread's default context cannot be freed. */
void wcm_context_free(wcm_context *ctx);
/* The calling thread's default context (created on first use, freed when the thread ends). */
wcm_context *wcm_context_default(void);
/* The settings a context resolves to now. */
const wcm_backend *wcm_context_backend(wcm_context *ctx);
int wcm_context_variant(wcm_context *ctx);
const char *wcm_context_variant_name(wcm_context *ctx);
int wcm_context_threads(wcm_context *ctx);
int wcm_context_winograd(wcm_context *ctx);
int wcm_context_host_visible(wcm_context *ctx);
/* Waits for the context's queued work (a no-op on the CPU). */
int wcm_context_synchronize(wcm_context *ctx, wcm_error *err);

/* ---- buffers and device residency ---------------------------------------- */

/* A block of a backend's memory. Tensors whose `buffer` is NULL are host memory. */
struct wcm_buffer {
    const wcm_backend *backend;
    void *data;
    size_t bytes;
};

int wcm_buffer_alloc(wcm_context *ctx, size_t bytes, wcm_buffer **out, wcm_error *err);
void wcm_buffer_free(wcm_buffer *b);
/* Copies between host memory and the context backend's memory, and within it. */
int wcm_memcpy_to_backend(wcm_context *ctx, void *dst, const void *src_host, size_t bytes, wcm_error *err);
int wcm_memcpy_to_host(wcm_context *ctx, void *dst_host, const void *src, size_t bytes, wcm_error *err);
int wcm_memcpy_in_backend(wcm_context *ctx, void *dst, const void *src, size_t bytes, wcm_error *err);

/* A tensor in the context backend's memory (plain host memory, buffer NULL,
 * when the backend is host-visible). Free with wcm_tensor_free. */
int wcm_tensor_alloc_on(wcm_context *ctx, wcm_tensor *t, int n, int h, int w, int c, wcm_error *err);
/* Non-zero when the tensor's data is host memory. */
int wcm_tensor_is_host(const wcm_tensor *t);
/* Non-zero when ops of ctx can read the tensor where it is. */
int wcm_tensor_on(wcm_context *ctx, const wcm_tensor *t);
/* *view = t when ops of ctx can read t where it is, else a copy of t in the
 * backend's memory that the caller frees with wcm_tensor_free(storage)
 * (storage is left empty when no copy was needed). */
int wcm_tensor_stage(wcm_context *ctx, const wcm_tensor *t, wcm_tensor *storage, const wcm_tensor **view, wcm_error *err);
/* dst (allocated to src's shape on the host when empty or of another shape)
 * = the host copy of src. */
int wcm_tensor_to_host(wcm_context *ctx, const wcm_tensor *src, wcm_tensor *dst, wcm_error *err);

/* ---- ops ------------------------------------------------------------------- */

/* Ops a backend may implement; a backend "claims" the ops it has, and the
 * conformance test (tests/test_backend_ops.c) has a case for each. */
typedef enum {
    WCM_OP_CONV_FORWARD,
    WCM_OP_CONV_BACKWARD_DATA,
    WCM_OP_CONV_BACKWARD_WEIGHTS,
    WCM_OP_BN_STATS,
    WCM_OP_BN_APPLY,
    WCM_OP_BN_BACKWARD,
    WCM_OP_BN_RUNNING,
    WCM_OP_BN_FOLD,
    WCM_OP_BN_FOLD_BACKWARD,
    WCM_OP_RELU,
    WCM_OP_RELU_BACKWARD,
    WCM_OP_LOSS_SSE,
    WCM_OP_ADAM,
    WCM_OP_FILL,
    WCM_OP_AXPY,
    WCM_OP_SCALE,
    WCM_OP_NOISE_STEP,
    WCM_OP_ADD_NOISE,
    WCM_OP_ADD_NOISE_255,
    WCM_OP_RESCALE,
    WCM_OP_REDUCE,
    WCM_OP_CHANNEL_REDUCE,
    WCM_OP_HAAR_SPLIT,
    WCM_OP_HAAR_MERGE,
    WCM_OP_CHANNELS,
    WCM_OP_UPSAMPLE,
    WCM_OP_FILL_NORMAL,
    WCM_OP_FILL_UNIFORM,
    WCM_OP_FILL_NORMAL_TORCH,
    WCM_OP_NET_FORWARD,
    WCM_OP_CHANNEL_PARTIALS,
    WCM_OP_COUNT
} wcm_op_id;

const char *wcm_op_name(wcm_op_id op);
/* Non-zero when the backend implements the op. */
int wcm_backend_claims(const wcm_backend *b, wcm_op_id op);

/* Convolution: a stride-1 "same" convolution without bias on NHWC tensors.
 * x: [n][h][w][cin], y: [n][h][w][cout], weights: [k][k][cin][cout], any k >= 1
 * (the networks use 1 and 3). */
typedef struct {
    int n, h, w, cin, cout, k;
} wcm_conv_shape;

enum {
    WCM_CONV_RELU = 1,       /* forward: y = max(conv, 0) */
    WCM_CONV_ACCUMULATE = 2, /* backward-weights: dw += instead of dw = */
};

/* y = conv(x, w), ReLU fused with WCM_CONV_RELU. */
int wcm_op_conv_forward(wcm_context *ctx, const wcm_conv_shape *s, const float *x, const float *w, float *y, int flags,
                        wcm_error *err);
/* dx = the transposed convolution of dy with w (the gradient of the input). */
int wcm_op_conv_backward_data(wcm_context *ctx, const wcm_conv_shape *s, const float *dy, const float *w, float *dx,
                              wcm_error *err);
/* dw (=, += with WCM_CONV_ACCUMULATE) sum over pixels of x (shifted) * dy. */
int wcm_op_conv_backward_weights(wcm_context *ctx, const wcm_conv_shape *s, const float *x, const float *dy, float *dw,
                                 int flags, wcm_error *err);

/* Bias-free batch norm on m pixels of c <= 64 channels (NHWC). Statistics
 * are doubles in the backend's memory.
 * Batch statistics: mean_c, sd_c = sqrt(biased var_c + 1e-5) (var around the
 * mean, summed in chunks of 1024 pixels, the chunks in order). */
int wcm_op_bn_stats(wcm_context *ctx, const float *x, size_t m, int c, double *mean, double *sd, wcm_error *err);
/* Forward (batch statistics or frozen): y = x / (float)sd_c * gamma_c, then
 * max(y, 0) when relu; y may alias x. */
int wcm_op_bn_apply(wcm_context *ctx, const float *x, size_t m, int c, const float *gamma, const double *sd, int relu,
                    float *y, wcm_error *err);
/* Backward of y = [relu](x / sd_c(x) * gamma_c): dx (may alias dy) and
 * dgamma (c values). mean != NULL: batch statistics (the gradient flows
 * through sd); mean == NULL: frozen (sd a constant). */
int wcm_op_bn_backward(wcm_context *ctx, const float *x, const float *dy, size_t m, int c, const float *gamma,
                       const double *mean, const double *sd, int relu, float *dx, float *dgamma, wcm_error *err);
/* Running-statistics bookkeeping, per channel:
 *   WCM_BN_RUNNING_UPDATE:     running = (float)(1 - value) * running + (float)value * (float)sd
 *   WCM_BN_RUNNING_LOAD:       sd = running (frozen batch norm)
 *   WCM_BN_RUNNING_ACCUMULATE: acc += sd * sd
 *   WCM_BN_RUNNING_SET:        running = (float)sqrt(acc / value)   */
typedef enum {
    WCM_BN_RUNNING_UPDATE,
    WCM_BN_RUNNING_LOAD,
    WCM_BN_RUNNING_ACCUMULATE,
    WCM_BN_RUNNING_SET,
} wcm_bn_running_mode;
int wcm_op_bn_running(wcm_context *ctx, wcm_bn_running_mode mode, int c, double *sd, float *running, double *acc,
                      double value, wcm_error *err);
/* Inference-folded batch norm: out[r][co] = w[r][co] * (gamma_co / running_co)
 * for `rows` rows of cout values (gamma NULL: * 1.0f, a layer without batch norm). */
int wcm_op_bn_fold(wcm_context *ctx, size_t rows, int cout, const float *w, const float *gamma, const float *running,
                   float *out, wcm_error *err);
/* Its backward given dout: dw = dout * gamma / running; dgamma_co = sum over
 * rows of dout * w / running (in double, rows in order). */
int wcm_op_bn_fold_backward(wcm_context *ctx, size_t rows, int cout, const float *w, const float *gamma,
                            const float *running, const float *dout, float *dw, float *dgamma, wcm_error *err);

/* y = max(x, 0); backward from the output: dx = y > 0 ? dy : 0 (dx may alias dy). */
int wcm_op_relu(wcm_context *ctx, size_t n, const float *x, float *y, wcm_error *err);
int wcm_op_relu_backward(wcm_context *ctx, size_t n, const float *y, const float *dy, float *dx, wcm_error *err);

/* *loss = sum((out - target)^2) / batch in double (chunks of 1024, in order);
 * dout (may be NULL) = (float)(2 / batch * (out - target)). */
int wcm_op_loss_sse(wcm_context *ctx, size_t n, const float *out, const float *target, int batch, float *dout,
                    double *loss, wcm_error *err);

/* One Adam step, PyTorch 1.13's single-tensor arithmetic in float:
 * m = m b1 + g (1 - b1); v = v b2 + g g (1 - b2); p += -step_size (m / (sqrt(v) / bc2_sqrt + eps)). */
typedef struct {
    float step_size, bc2_sqrt, eps, beta1, beta2, one_minus_beta1, one_minus_beta2;
} wcm_adam_hyper;
int wcm_op_adam(wcm_context *ctx, size_t n, float *params, const float *grad, float *m, float *v,
                const wcm_adam_hyper *h, wcm_error *err);

/* Vector updates (float arithmetic exactly as written):
 * fill:       x = value
 * axpy:       y = y + alpha x
 * scale:      x = (base ? base : 0.0f) + alpha x        (Algorithm 1's start)
 * noise_step: y = y - h d + gamma z                      (Algorithm 1's update)
 * add_noise:  y = x + (float)(sigma * (double)z)         (y may alias x)
 * add_noise_255: y = x + (z * sigma255) / 255.0f        (noise in 0-255 units)
 * rescale:    x = range > 0 ? (float)(((double)x - lo) / range * max) : 0 */
int wcm_op_fill(wcm_context *ctx, size_t n, float *x, float value, wcm_error *err);
int wcm_op_axpy(wcm_context *ctx, size_t n, float alpha, const float *x, float *y, wcm_error *err);
int wcm_op_scale(wcm_context *ctx, size_t n, float alpha, float *x, const float *base, wcm_error *err);
int wcm_op_noise_step(wcm_context *ctx, size_t n, float *y, float h, const float *d, float gamma, const float *z,
                      wcm_error *err);
int wcm_op_add_noise(wcm_context *ctx, size_t n, const float *x, const float *z, double sigma, float *y, wcm_error *err);
int wcm_op_add_noise_255(wcm_context *ctx, size_t n, const float *x, const float *z, float sigma255, float *y,
                         wcm_error *err);
int wcm_op_rescale(wcm_context *ctx, size_t n, float *x, float lo, double range, double max, wcm_error *err);

/* Deterministic reductions into host doubles. The n values are summed in
 * consecutive chunks of `chunk` values (0: one chunk), each in order, then
 * the chunk sums in order, so results do not depend on threads.
 *   WCM_REDUCE_SUM:       result[0] = sum x
 *   WCM_REDUCE_SUMSQ:     result[0] = sum (x - center)^2
 *   WCM_REDUCE_SQDIFF:    result[0] = sum (x - y)^2
 *   WCM_REDUCE_MINMAX:    result[0], result[1] = min, max (as a sequential
 *                         scan from x[0] with < and >; NaNs after x[0] skipped)
 *   WCM_REDUCE_NONFINITE: result[0] = number of NaN and infinite values */
typedef enum {
    WCM_REDUCE_SUM,
    WCM_REDUCE_SUMSQ,
    WCM_REDUCE_SQDIFF,
    WCM_REDUCE_MINMAX,
    WCM_REDUCE_NONFINITE,
} wcm_reduce_kind;
int wcm_op_reduce(wcm_context *ctx, wcm_reduce_kind kind, size_t n, const float *x, const float *y, double center,
                  size_t chunk, double *result, wcm_error *err);
/* Per channel of m pixels x c channels, chunks of `chunk` pixels:
 * WCM_REDUCE_SUM: result[ch] = sum x; WCM_REDUCE_SUMSQ: sum (x - center[ch])^2
 * (center in host memory). */
int wcm_op_channel_reduce(wcm_context *ctx, wcm_reduce_kind kind, size_t m, int c, const float *x,
                          const double *center, size_t chunk, double *result, wcm_error *err);
/* The same sums per part of `part` pixels, not added up: parts[k * c + ch]
 * sums pixels [k * part, min(m, (k + 1) * part)) in pixel order, for the
 * ceil(m / part) parts (host memory). With part = the pixels of one image,
 * the per-image sums that make a batch's statistics independent of how the
 * batch is split (the trainer's exact sums). */
int wcm_op_channel_partials(wcm_context *ctx, wcm_reduce_kind kind, size_t m, int c, const float *x,
                            const double *center, size_t part, double *parts, wcm_error *err);

/* Haar (docs/model.md §2): x [n][h][w][1] (even h, w) -> out [n][h/2][w/2][4] =
 * [(a+b+c+d), (a+b-c-d), (a-b+c-d), (a-b-c+d)] * 0.25f per 2x2 block a b / c d;
 * merge: low [n][h][w][1] and details (channels off..off+2 of coeffs with c
 * channels, off = 1 when c == 4 else 0) -> out [n][2h][2w][1]. */
int wcm_op_haar_split(wcm_context *ctx, int n, int h, int w, const float *x, float *out, wcm_error *err);
int wcm_op_haar_merge(wcm_context *ctx, int n, int h, int w, const float *low, const float *coeffs, int c, float *out,
                      wcm_error *err);

/* Channel slicing and concatenation over `pixels` pixels: channels
 * [dst_off, dst_off + count) of dst (dst_c per pixel) from channels
 * [src_off, ...) of src (src_c per pixel): copied, subtracted from, or zeroed. */
typedef enum { WCM_CHANNELS_COPY, WCM_CHANNELS_SUB, WCM_CHANNELS_ZERO } wcm_channels_mode;
int wcm_op_channels(wcm_context *ctx, wcm_channels_mode mode, size_t pixels, int count, const float *src, int src_c,
                    int src_off, float *dst, int dst_c, int dst_off, wcm_error *err);
/* Nearest-neighbour upsampling: x [n][h][w][c] -> y [n][h f][w f][c]. */
int wcm_op_upsample(wcm_context *ctx, int n, int h, int w, int c, int factor, const float *x, float *y, wcm_error *err);

/* Noise fills, bit-identical to the host generators: Philox normals and
 * uniforms (wcm/rng.h: out[i] = value offset + i of (seed, stream)) and
 * PyTorch's torch.randn (wcm/rng_torch.h). */
int wcm_op_fill_normal(wcm_context *ctx, uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float *out,
                       wcm_error *err);
int wcm_op_fill_uniform(wcm_context *ctx, uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float *out,
                        wcm_error *err);
int wcm_op_fill_normal_torch(wcm_context *ctx, uint64_t seed, size_t n, float *out, wcm_error *err);

#ifdef __cplusplus
}
#endif
#endif

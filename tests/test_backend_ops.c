/* Every op of every registered backend against the reference backend, in
 * the spirit of ggml's test-backend-ops: one table of op cases (odd sizes,
 * batches, cin != cout, every mode); each case runs on every variant of every
 * backend in the registry (the reference, the CPU at every SIMD level this
 * machine has, and whatever backend is registered later, with no edit here),
 * with its inputs in the backend's own memory, and its outputs
 *  - are compared with the reference's under the case's stated tolerance
 *    (relative RMS error; 0 means bit-identical),
 *  - are bit-identical for 1, 2 and 3 threads,
 *  - for ops with a backward, agree with finite differences of the forward.
 * Backends that promise the CPU's bits for everything but convolutions
 * (the CUDA backend, the emulated device) are also compared with the CPU
 * backend bit for bit on every other case. A backend with no variant on
 * this machine (CUDA without a GPU) has nothing to run; when --backend
 * selects only such backends the test is skipped (exit 77).
 * A backend that claims an op without a case here fails the test. The test
 * registers one backend of its own, an emulated device whose memory the
 * host cannot touch (tests/emulated_device.h), so that the harness and the
 * generic network plan are exercised as a device backend would use them.
 *
 * usage: test_backend_ops [--perf] [--backend NAME] [--op NAME]
 *   --perf times every case on every backend variant (best of several runs)
 *   and asserts nothing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_impl.h"
#include "emulated_device.h"
#include "testutil.h"
#include "wcm/net.h"

/* ---- the table ---------------------------------------------------------- */

enum { NO_GRAD = 0, GRAD = 1 };

typedef struct {
    wcm_op_id op;
    int s[6];   /* sizes, per op (see the layouts below) */
    int mode;   /* flags, mode or kind, per op */
    double tol; /* relative RMS error against the reference (0: bit-identical) */
    int grad;   /* GRAD: finite-difference check of the op's backward */
} op_case;

/* Convolution flags / batch-norm bits. */
#define RELU WCM_CONV_RELU
#define ACC WCM_CONV_ACCUMULATE
#define FROZEN 2

static const op_case cases[] = {
    /* conv: n, h, w, cin, cout, k. Direct kernels: 2e-6; Winograd (64->64
     * layers of 4x4 and more, on by default): 1e-5. */
    {WCM_OP_CONV_FORWARD, {2, 5, 7, 3, 4, 3}, 0, 2e-6, GRAD},
    {WCM_OP_CONV_FORWARD, {2, 5, 7, 8, 5, 1}, RELU, 2e-6, GRAD},
    {WCM_OP_CONV_FORWARD, {1, 6, 6, 16, 16, 3}, 0, 1e-5, GRAD},
    {WCM_OP_CONV_FORWARD, {2, 13, 17, 64, 64, 3}, RELU, 1e-5, NO_GRAD},
    {WCM_OP_CONV_FORWARD, {3, 13, 17, 17, 17, 3}, 0, 2e-6, NO_GRAD},
    {WCM_OP_CONV_FORWARD, {1, 13, 17, 4, 64, 3}, RELU, 2e-6, NO_GRAD},
    {WCM_OP_CONV_FORWARD, {2, 13, 17, 64, 3, 3}, 0, 2e-6, NO_GRAD},
    {WCM_OP_CONV_FORWARD, {2, 20, 30, 64, 64, 1}, RELU, 2e-6, NO_GRAD},
    {WCM_OP_CONV_FORWARD, {1, 96, 100, 64, 64, 3}, RELU, 1e-5, NO_GRAD},
    {WCM_OP_CONV_FORWARD, {1, 5, 170, 64, 64, 3}, 0, 1e-5, NO_GRAD},
    {WCM_OP_CONV_FORWARD, {1, 5, 6, 3, 4, 9}, 0, 2e-6, NO_GRAD},
    {WCM_OP_CONV_BACKWARD_DATA, {2, 13, 17, 64, 64, 3}, 0, 1e-5, NO_GRAD},
    {WCM_OP_CONV_BACKWARD_DATA, {2, 9, 7, 4, 64, 3}, 0, 2e-6, NO_GRAD},
    {WCM_OP_CONV_BACKWARD_DATA, {3, 5, 3, 3, 17, 1}, 0, 2e-6, NO_GRAD},
    {WCM_OP_CONV_BACKWARD_DATA, {1, 6, 7, 4, 5, 2}, 0, 2e-6, NO_GRAD},
    {WCM_OP_CONV_BACKWARD_WEIGHTS, {2, 13, 17, 64, 64, 3}, 0, 1e-5, NO_GRAD},
    {WCM_OP_CONV_BACKWARD_WEIGHTS, {2, 13, 17, 64, 64, 3}, ACC, 1e-5, NO_GRAD},
    {WCM_OP_CONV_BACKWARD_WEIGHTS, {4, 11, 9, 4, 64, 3}, 0, 2e-6, NO_GRAD},
    {WCM_OP_CONV_BACKWARD_WEIGHTS, {2, 7, 9, 20, 80, 1}, ACC, 2e-6, NO_GRAD},
    {WCM_OP_CONV_BACKWARD_WEIGHTS, {2, 13, 17, 64, 3, 3}, 0, 2e-6, NO_GRAD},
    {WCM_OP_CONV_BACKWARD_WEIGHTS, {1, 5, 4, 3, 6, 4}, 0, 2e-6, NO_GRAD},
    /* batch norm: m pixels, c channels (the rows of bn_fold: rows, cout, with gamma) */
    {WCM_OP_BN_STATS, {3 * 5 * 7, 5}, 0, 1e-12, NO_GRAD},
    {WCM_OP_BN_STATS, {2 * 13 * 17, 64}, 0, 1e-12, NO_GRAD},
    {WCM_OP_BN_STATS, {2100, 3}, 0, 1e-12, NO_GRAD},
    {WCM_OP_BN_APPLY, {3 * 5 * 7, 5}, 0, 1e-6, GRAD},
    {WCM_OP_BN_APPLY, {3 * 5 * 7, 5}, RELU, 1e-6, GRAD},
    {WCM_OP_BN_APPLY, {3 * 5 * 7, 5}, RELU | FROZEN, 1e-6, GRAD},
    {WCM_OP_BN_APPLY, {2 * 13 * 17, 64}, RELU, 1e-6, NO_GRAD},
    {WCM_OP_BN_BACKWARD, {3 * 5 * 7, 5}, 0, 1e-5, NO_GRAD},
    {WCM_OP_BN_BACKWARD, {2 * 13 * 17, 64}, RELU, 1e-5, NO_GRAD},
    {WCM_OP_BN_BACKWARD, {2100, 7}, RELU | FROZEN, 1e-5, NO_GRAD},
    {WCM_OP_BN_RUNNING, {64}, WCM_BN_RUNNING_UPDATE, 1e-6, NO_GRAD},
    {WCM_OP_BN_RUNNING, {5}, WCM_BN_RUNNING_LOAD, 0, NO_GRAD},
    {WCM_OP_BN_RUNNING, {64}, WCM_BN_RUNNING_ACCUMULATE, 0, NO_GRAD},
    {WCM_OP_BN_RUNNING, {7}, WCM_BN_RUNNING_SET, 0, NO_GRAD},
    {WCM_OP_BN_FOLD, {9 * 64, 64, 1}, 0, 1e-6, GRAD},
    {WCM_OP_BN_FOLD, {9 * 4, 64, 1}, 0, 1e-6, NO_GRAD},
    {WCM_OP_BN_FOLD, {9 * 64, 3, 0}, 0, 0, NO_GRAD},
    {WCM_OP_BN_FOLD_BACKWARD, {9 * 17, 5, 1}, 0, 1e-6, NO_GRAD},
    {WCM_OP_BN_FOLD_BACKWARD, {64, 64, 0}, 0, 0, NO_GRAD},
    /* elementwise and reductions: n values (and a chunk, a batch, a mode) */
    {WCM_OP_RELU, {1001}, 0, 0, GRAD},
    {WCM_OP_RELU_BACKWARD, {40000}, 0, 0, NO_GRAD},
    {WCM_OP_LOSS_SSE, {315, 3, 1}, 0, 1e-7, GRAD},
    {WCM_OP_LOSS_SSE, {50000, 16, 0}, 0, 1e-12, NO_GRAD},
    {WCM_OP_ADAM, {4099}, 0, 1e-6, NO_GRAD},
    {WCM_OP_FILL, {33333}, 0, 0, NO_GRAD},
    {WCM_OP_AXPY, {40001}, 0, 1e-7, NO_GRAD},
    {WCM_OP_SCALE, {5000, 1}, 0, 1e-7, NO_GRAD},
    {WCM_OP_SCALE, {40001, 0}, 0, 1e-7, NO_GRAD},
    {WCM_OP_NOISE_STEP, {76800}, 0, 1e-7, NO_GRAD},
    {WCM_OP_ADD_NOISE, {4801}, 0, 1e-7, NO_GRAD},
    {WCM_OP_ADD_NOISE_255, {40000}, 0, 1e-7, NO_GRAD},
    {WCM_OP_RESCALE, {1601, 1}, 0, 1e-7, NO_GRAD},
    {WCM_OP_RESCALE, {99, 0}, 0, 0, NO_GRAD},
    {WCM_OP_REDUCE, {76800, 1024}, WCM_REDUCE_SUM, 1e-12, NO_GRAD},
    {WCM_OP_REDUCE, {4800, 1024}, WCM_REDUCE_SUMSQ, 1e-12, NO_GRAD},
    {WCM_OP_REDUCE, {25600, 0}, WCM_REDUCE_SQDIFF, 1e-12, NO_GRAD},
    {WCM_OP_REDUCE, {40000, 1000}, WCM_REDUCE_MINMAX, 0, NO_GRAD},
    {WCM_OP_REDUCE, {5000, 0}, WCM_REDUCE_MINMAX, 0, NO_GRAD},
    {WCM_OP_REDUCE, {70001, 512}, WCM_REDUCE_NONFINITE, 0, NO_GRAD},
    {WCM_OP_CHANNEL_REDUCE, {2 * 13 * 17, 64, 1024}, WCM_REDUCE_SUM, 1e-12, NO_GRAD},
    {WCM_OP_CHANNEL_REDUCE, {3001, 3, 1000}, WCM_REDUCE_SUMSQ, 1e-12, NO_GRAD},
    {WCM_OP_CHANNEL_PARTIALS, {5 * 13 * 17, 64, 13 * 17}, WCM_REDUCE_SUM, 1e-12, NO_GRAD},
    {WCM_OP_CHANNEL_PARTIALS, {3001, 3, 1000}, WCM_REDUCE_SUMSQ, 1e-12, NO_GRAD},
    /* image ops: n, h, w (, c, factor); channels: pixels, count, src_c, src_off, dst_c, dst_off */
    {WCM_OP_HAAR_SPLIT, {2, 14, 18}, 0, 1e-7, NO_GRAD},
    {WCM_OP_HAAR_SPLIT, {1, 160, 160}, 0, 1e-7, NO_GRAD},
    {WCM_OP_HAAR_MERGE, {2, 7, 9, 4}, 0, 1e-7, NO_GRAD},
    {WCM_OP_HAAR_MERGE, {1, 40, 40, 3}, 0, 1e-7, NO_GRAD},
    {WCM_OP_CHANNELS, {221, 3, 3, 0, 4, 1}, WCM_CHANNELS_COPY, 0, NO_GRAD},
    {WCM_OP_CHANNELS, {20000, 1, 4, 0, 1, 0}, WCM_CHANNELS_COPY, 0, NO_GRAD},
    {WCM_OP_CHANNELS, {221, 3, 3, 0, 4, 1}, WCM_CHANNELS_SUB, 1e-7, NO_GRAD},
    {WCM_OP_CHANNELS, {221, 3, 0, 0, 4, 1}, WCM_CHANNELS_ZERO, 0, NO_GRAD},
    {WCM_OP_UPSAMPLE, {2, 5, 7, 1, 4}, 0, 0, NO_GRAD},
    {WCM_OP_UPSAMPLE, {1, 40, 40, 3, 2}, 0, 0, NO_GRAD},
    /* noise fills: n values from offset */
    {WCM_OP_FILL_NORMAL, {76800, 17}, 0, 0, NO_GRAD},
    {WCM_OP_FILL_NORMAL, {5, 0}, 0, 0, NO_GRAD},
    {WCM_OP_FILL_UNIFORM, {20001, 3}, 0, 0, NO_GRAD},
    {WCM_OP_FILL_NORMAL_TORCH, {25600}, 0, 0, NO_GRAD},
    {WCM_OP_FILL_NORMAL_TORCH, {1000}, 0, 0, NO_GRAD},
    {WCM_OP_FILL_NORMAL_TORCH, {7}, 0, 0, NO_GRAD},
    /* networks: kind, rf, n, h, w (batch norm folded, Winograd layers where
     * they qualify: 20 of them in the low-pass net add up to about 1e-5) */
    {WCM_OP_NET_FORWARD, {WCM_NET_FLAT, 5, 2, 23, 37}, 0, 1e-5, NO_GRAD},
    {WCM_OP_NET_FORWARD, {WCM_NET_CONDITIONAL, 13, 3, 17, 9}, 0, 1e-5, NO_GRAD},
    {WCM_OP_NET_FORWARD, {WCM_NET_LOWPASS, 40, 1, 24, 20}, 0, 3e-5, NO_GRAD},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

/* ---- operands -------------------------------------------------------------- */

enum { MAX_ARRAYS = 8 };
/* Where an operand lives and whether the op writes it. Outputs start out
 * random too, so that a value an op fails to write shows up. */
typedef enum { IN, OUT, HOST_IN, HOST_OUT } role;
/* Value ranges of the random contents. */
typedef enum { ANY, POSITIVE, NONNEG, OFFSET, SPRINKLED } range;

typedef struct {
    size_t n;
    int dbl; /* doubles, else floats */
    role role;
    range range;
} operand;

typedef struct {
    int count;
    operand a[MAX_ARRAYS];
} layout;

static void add(layout *l, size_t n, int dbl, role r, range g) { l->a[l->count++] = (operand){n ? n : 1, dbl, r, g}; }

static size_t conv_x(const op_case *c) { return (size_t)c->s[0] * c->s[1] * c->s[2] * c->s[3]; }
static size_t conv_y(const op_case *c) { return (size_t)c->s[0] * c->s[1] * c->s[2] * c->s[4]; }
static size_t conv_w(const op_case *c) { return (size_t)c->s[5] * c->s[5] * c->s[3] * c->s[4]; }
static wcm_conv_shape conv_shape(const op_case *c) { return (wcm_conv_shape){c->s[0], c->s[1], c->s[2], c->s[3], c->s[4], c->s[5]}; }
static int net_cin(const op_case *c) { return c->s[0] == WCM_NET_CONDITIONAL ? 4 : 1; }
static int net_cout(const op_case *c) { return c->s[0] == WCM_NET_CONDITIONAL ? 3 : 1; }

/* The operands of a case, in the order its run function takes them. */
static layout layout_of(const op_case *c) {
    layout l = {0};
    const size_t m = (size_t)c->s[0], ch = (size_t)c->s[1];
    switch (c->op) {
        case WCM_OP_CONV_FORWARD: add(&l, conv_x(c), 0, IN, ANY), add(&l, conv_w(c), 0, IN, ANY), add(&l, conv_y(c), 0, OUT, ANY); break;
        case WCM_OP_CONV_BACKWARD_DATA: add(&l, conv_y(c), 0, IN, ANY), add(&l, conv_w(c), 0, IN, ANY), add(&l, conv_x(c), 0, OUT, ANY); break;
        case WCM_OP_CONV_BACKWARD_WEIGHTS: add(&l, conv_x(c), 0, IN, ANY), add(&l, conv_y(c), 0, IN, ANY), add(&l, conv_w(c), 0, OUT, ANY); break;
        case WCM_OP_BN_STATS: add(&l, m * ch, 0, IN, OFFSET), add(&l, ch, 1, OUT, ANY), add(&l, ch, 1, OUT, ANY); break;
        case WCM_OP_BN_APPLY: add(&l, m * ch, 0, IN, OFFSET), add(&l, ch, 0, IN, ANY), add(&l, ch, 1, IN, POSITIVE), add(&l, m * ch, 0, OUT, ANY); break;
        case WCM_OP_BN_BACKWARD:
            add(&l, m * ch, 0, IN, OFFSET), add(&l, m * ch, 0, IN, ANY), add(&l, ch, 0, IN, ANY), add(&l, ch, 1, IN, ANY);
            add(&l, ch, 1, IN, POSITIVE), add(&l, m * ch, 0, OUT, ANY), add(&l, ch, 0, OUT, ANY);
            break;
        case WCM_OP_BN_RUNNING: add(&l, m, 1, OUT, POSITIVE), add(&l, m, 0, OUT, POSITIVE), add(&l, m, 1, OUT, NONNEG); break;
        case WCM_OP_BN_FOLD: add(&l, m * ch, 0, IN, ANY), add(&l, ch, 0, IN, ANY), add(&l, ch, 0, IN, POSITIVE), add(&l, m * ch, 0, OUT, ANY); break;
        case WCM_OP_BN_FOLD_BACKWARD:
            add(&l, m * ch, 0, IN, ANY), add(&l, ch, 0, IN, ANY), add(&l, ch, 0, IN, POSITIVE), add(&l, m * ch, 0, IN, ANY);
            add(&l, m * ch, 0, OUT, ANY), add(&l, ch, 0, OUT, ANY);
            break;
        case WCM_OP_RELU: add(&l, m, 0, IN, ANY), add(&l, m, 0, OUT, ANY); break;
        case WCM_OP_RELU_BACKWARD: add(&l, m, 0, IN, ANY), add(&l, m, 0, IN, ANY), add(&l, m, 0, OUT, ANY); break;
        case WCM_OP_LOSS_SSE: add(&l, m, 0, IN, ANY), add(&l, m, 0, IN, ANY), add(&l, m, 0, OUT, ANY), add(&l, 1, 1, HOST_OUT, ANY); break;
        case WCM_OP_ADAM: add(&l, m, 0, OUT, ANY), add(&l, m, 0, IN, ANY), add(&l, m, 0, OUT, ANY), add(&l, m, 0, OUT, NONNEG); break;
        case WCM_OP_FILL: add(&l, m, 0, OUT, ANY); break;
        case WCM_OP_AXPY: add(&l, m, 0, IN, ANY), add(&l, m, 0, OUT, ANY); break;
        case WCM_OP_SCALE: add(&l, m, 0, OUT, ANY), add(&l, m, 0, IN, ANY); break;
        case WCM_OP_NOISE_STEP: add(&l, m, 0, OUT, ANY), add(&l, m, 0, IN, ANY), add(&l, m, 0, IN, ANY); break;
        case WCM_OP_ADD_NOISE:
        case WCM_OP_ADD_NOISE_255: add(&l, m, 0, IN, ANY), add(&l, m, 0, IN, ANY), add(&l, m, 0, OUT, ANY); break;
        case WCM_OP_RESCALE: add(&l, m, 0, OUT, ANY); break;
        case WCM_OP_REDUCE: add(&l, m, 0, IN, c->mode == WCM_REDUCE_NONFINITE ? SPRINKLED : ANY), add(&l, m, 0, IN, ANY), add(&l, 2, 1, HOST_OUT, ANY); break;
        case WCM_OP_CHANNEL_REDUCE: add(&l, m * ch, 0, IN, OFFSET), add(&l, ch, 1, HOST_IN, ANY), add(&l, ch, 1, HOST_OUT, ANY); break;
        case WCM_OP_CHANNEL_PARTIALS: {
            const size_t parts = (m + (size_t)c->s[2] - 1) / (size_t)c->s[2];
            add(&l, m * ch, 0, IN, OFFSET), add(&l, ch, 1, HOST_IN, ANY), add(&l, parts * ch, 1, HOST_OUT, ANY);
            break;
        }
        case WCM_OP_HAAR_SPLIT: add(&l, (size_t)c->s[0] * c->s[1] * c->s[2], 0, IN, ANY), add(&l, (size_t)c->s[0] * c->s[1] * c->s[2], 0, OUT, ANY); break;
        case WCM_OP_HAAR_MERGE: {
            const size_t px = (size_t)c->s[0] * c->s[1] * c->s[2];
            add(&l, px, 0, IN, ANY), add(&l, px * c->s[3], 0, IN, ANY), add(&l, 4 * px, 0, OUT, ANY);
            break;
        }
        case WCM_OP_CHANNELS: add(&l, m * c->s[2], 0, IN, ANY), add(&l, m * c->s[4], 0, OUT, ANY); break;
        case WCM_OP_UPSAMPLE: {
            const size_t n = (size_t)c->s[0] * c->s[1] * c->s[2] * c->s[3];
            add(&l, n, 0, IN, ANY), add(&l, n * c->s[4] * c->s[4], 0, OUT, ANY);
            break;
        }
        case WCM_OP_FILL_NORMAL:
        case WCM_OP_FILL_UNIFORM:
        case WCM_OP_FILL_NORMAL_TORCH: add(&l, m, 0, OUT, ANY); break;
        case WCM_OP_NET_FORWARD: {
            const size_t px = (size_t)c->s[2] * c->s[3] * c->s[4];
            add(&l, px * net_cin(c), 0, HOST_IN, ANY), add(&l, px * net_cout(c), 0, HOST_OUT, ANY);
            break;
        }
        case WCM_OP_COUNT: break;
    }
    return l;
}

/* ---- running one case ------------------------------------------------------- */

/* A network with random weights of Kaiming scale and gammas near 1, so that
 * activations keep their size through every layer. */
static int run_net(wcm_context *ctx, const op_case *c, void **p, wcm_error *err) {
    wcm_net *net;
    int rc = wcm_net_create(&net, (wcm_net_kind)c->s[0], c->s[1], err);
    if (rc) return rc;
    unsigned long long seed = 11;
    for (int l = 0; l < wcm_net_nlayers(net); l++) {
        const wcm_layer *L = wcm_net_layer(net, l);
        const float scale = sqrtf(6.0f / (float)(L->k * L->k * L->cin));
        for (size_t j = 0; j < (size_t)L->k * L->k * L->cin * L->cout; j++) L->weight[j] = scale * t_rand(&seed);
        for (int k = 0; L->bn && k < L->cout; k++) {
            L->gamma[k] = 1.0f + 0.3f * t_rand(&seed);
            L->running_sd[k] = 1.0f + 0.2f * t_rand(&seed) * t_rand(&seed);
        }
    }
    wcm_net_invalidate(net);
    wcm_net_set_context(net, ctx);
    wcm_tensor in = wcm_tensor_view(p[0], c->s[2], c->s[3], c->s[4], net_cin(c)), out = {0};
    rc = wcm_net_forward(net, &in, &out, err);
    if (!rc) memcpy(p[1], out.data, wcm_tensor_count(&out) * sizeof(float));
    wcm_tensor_free(&out);
    wcm_net_free(net);
    return rc;
}

/* The case's op on operands p (in the context's memory, or the host's for HOST_*). */
static int run_case(wcm_context *ctx, const op_case *c, void **p, wcm_error *err) {
    float **f = (float **)p;
    double **d = (double **)p;
    const size_t m = (size_t)c->s[0];
    const int ch = c->s[1];
    const wcm_conv_shape s = conv_shape(c);
    switch (c->op) {
        case WCM_OP_CONV_FORWARD: return wcm_op_conv_forward(ctx, &s, f[0], f[1], f[2], c->mode, err);
        case WCM_OP_CONV_BACKWARD_DATA: return wcm_op_conv_backward_data(ctx, &s, f[0], f[1], f[2], err);
        case WCM_OP_CONV_BACKWARD_WEIGHTS: return wcm_op_conv_backward_weights(ctx, &s, f[0], f[1], f[2], c->mode, err);
        case WCM_OP_BN_STATS: return wcm_op_bn_stats(ctx, f[0], m, ch, d[1], d[2], err);
        case WCM_OP_BN_APPLY: return wcm_op_bn_apply(ctx, f[0], m, ch, f[1], d[2], c->mode & RELU, f[3], err);
        case WCM_OP_BN_BACKWARD:
            return wcm_op_bn_backward(ctx, f[0], f[1], m, ch, f[2], c->mode & FROZEN ? NULL : d[3], d[4], c->mode & RELU,
                                      f[5], f[6], err);
        case WCM_OP_BN_RUNNING:
            return wcm_op_bn_running(ctx, (wcm_bn_running_mode)c->mode, (int)m, d[0], f[1], d[2],
                                     c->mode == WCM_BN_RUNNING_SET ? 3.0 : 0.1, err);
        case WCM_OP_BN_FOLD: return wcm_op_bn_fold(ctx, m, ch, f[0], c->s[2] ? f[1] : NULL, f[2], f[3], err);
        case WCM_OP_BN_FOLD_BACKWARD:
            return wcm_op_bn_fold_backward(ctx, m, ch, f[0], c->s[2] ? f[1] : NULL, f[2], f[3], f[4], f[5], err);
        case WCM_OP_RELU: return wcm_op_relu(ctx, m, f[0], f[1], err);
        case WCM_OP_RELU_BACKWARD: return wcm_op_relu_backward(ctx, m, f[0], f[1], f[2], err);
        case WCM_OP_LOSS_SSE: return wcm_op_loss_sse(ctx, m, f[0], f[1], c->s[1], c->s[2] ? f[2] : NULL, d[3], err);
        case WCM_OP_ADAM: {
            const wcm_adam_hyper h = {1e-3f / 0.19f, 0.0447f, 1e-8f, 0.9f, 0.999f, 0.1f, 0.001f};
            return wcm_op_adam(ctx, m, f[0], f[1], f[2], f[3], &h, err);
        }
        case WCM_OP_FILL: return wcm_op_fill(ctx, m, f[0], 0.5f, err);
        case WCM_OP_AXPY: return wcm_op_axpy(ctx, m, -0.7f, f[0], f[1], err);
        case WCM_OP_SCALE: return wcm_op_scale(ctx, m, 0.83f, f[0], c->s[1] ? f[1] : NULL, err);
        case WCM_OP_NOISE_STEP: return wcm_op_noise_step(ctx, m, f[0], 0.03f, f[1], 0.2f, f[2], err);
        case WCM_OP_ADD_NOISE: return wcm_op_add_noise(ctx, m, f[0], f[1], 0.37, f[2], err);
        case WCM_OP_ADD_NOISE_255: return wcm_op_add_noise_255(ctx, m, f[0], f[1], 25.0f, f[2], err);
        case WCM_OP_RESCALE: return wcm_op_rescale(ctx, m, f[0], -0.9f, c->s[1] ? 1.8 : 0.0, 0.8, err);
        case WCM_OP_REDUCE:
            return wcm_op_reduce(ctx, (wcm_reduce_kind)c->mode, m, f[0], f[1], 0.1, (size_t)c->s[1], d[2], err);
        case WCM_OP_CHANNEL_REDUCE:
            return wcm_op_channel_reduce(ctx, (wcm_reduce_kind)c->mode, m, ch, f[0], d[1], (size_t)c->s[2], d[2], err);
        case WCM_OP_CHANNEL_PARTIALS:
            return wcm_op_channel_partials(ctx, (wcm_reduce_kind)c->mode, m, ch, f[0], d[1], (size_t)c->s[2], d[2], err);
        case WCM_OP_HAAR_SPLIT: return wcm_op_haar_split(ctx, c->s[0], c->s[1], c->s[2], f[0], f[1], err);
        case WCM_OP_HAAR_MERGE: return wcm_op_haar_merge(ctx, c->s[0], c->s[1], c->s[2], f[0], f[1], c->s[3], f[2], err);
        case WCM_OP_CHANNELS:
            return wcm_op_channels(ctx, (wcm_channels_mode)c->mode, m, c->s[1], f[0], c->s[2], c->s[3], f[1], c->s[4],
                                   c->s[5], err);
        case WCM_OP_UPSAMPLE: return wcm_op_upsample(ctx, c->s[0], c->s[1], c->s[2], c->s[3], c->s[4], f[0], f[1], err);
        case WCM_OP_FILL_NORMAL: return wcm_op_fill_normal(ctx, 7, 3, (uint64_t)c->s[1], m, f[0], err);
        case WCM_OP_FILL_UNIFORM: return wcm_op_fill_uniform(ctx, 7, 3, (uint64_t)c->s[1], m, f[0], err);
        case WCM_OP_FILL_NORMAL_TORCH: return wcm_op_fill_normal_torch(ctx, 1234, m, f[0], err);
        case WCM_OP_NET_FORWARD: return run_net(ctx, c, p, err);
        case WCM_OP_COUNT: break;
    }
    return WCM_ERR_ARG;
}

static size_t bytes_of(const operand *a) { return a->n * (a->dbl ? sizeof(double) : sizeof(float)); }

/* Deterministic contents of operand k of case i. */
static void *initial(int i, int k, const operand *a) {
    void *h = malloc(bytes_of(a));
    unsigned long long seed = 1000003ull * (unsigned long long)(i + 1) + 7919ull * (unsigned long long)k;
    for (size_t j = 0; j < a->n; j++) {
        double v = t_rand(&seed);
        if (a->range == POSITIVE) v = 1.25 + 0.75 * v;
        else if (a->range == NONNEG) v = 0.5 + 0.5 * v;
        else if (a->range == OFFSET) v = 0.3 + v;
        else if (a->range == SPRINKLED && j % 97 == 5) v = j % 3 ? INFINITY : NAN;
        if (a->dbl) ((double *)h)[j] = v;
        else ((float *)h)[j] = (float)v;
    }
    return h;
}

/* Runs case i in ctx on copies of its initial operands; returns the host
 * copies of every operand afterwards (outputs[k], malloc'd), or NULL. */
static void **run_copy(wcm_context *ctx, int i, wcm_error *err, int *rc) {
    const layout l = layout_of(&cases[i]);
    void **out = calloc(MAX_ARRAYS, sizeof *out);
    wcm_buffer *buf[MAX_ARRAYS] = {0};
    void *p[MAX_ARRAYS] = {0};
    *rc = WCM_OK;
    for (int k = 0; k < l.count && !*rc; k++) {
        out[k] = initial(i, k, &l.a[k]);
        if (l.a[k].role == HOST_IN || l.a[k].role == HOST_OUT) p[k] = out[k];
        else if (!(*rc = wcm_buffer_alloc(ctx, bytes_of(&l.a[k]), &buf[k], err)))
            *rc = wcm_memcpy_to_backend(ctx, p[k] = buf[k]->data, out[k], bytes_of(&l.a[k]), err);
    }
    if (!*rc) *rc = run_case(ctx, &cases[i], p, err);
    for (int k = 0; k < l.count && !*rc; k++)
        if (buf[k]) *rc = wcm_memcpy_to_host(ctx, out[k], buf[k]->data, bytes_of(&l.a[k]), err);
    for (int k = 0; k < l.count; k++) wcm_buffer_free(buf[k]);
    if (*rc) {
        for (int k = 0; k < MAX_ARRAYS; k++) free(out[k]);
        free(out);
        return NULL;
    }
    return out;
}

static void free_copy(void **a) {
    if (!a) return;
    for (int k = 0; k < MAX_ARRAYS; k++) free(a[k]);
    free(a);
}

static double value_at(const operand *a, const void *p, size_t j) {
    return a->dbl ? ((const double *)p)[j] : ((const float *)p)[j];
}

/* Relative RMS error of every written operand against the reference's;
 * values that are NaN or infinite in one and not alike in the other count as
 * infinitely wrong. */
static double compare(const layout *l, void **got, void **want) {
    double num = 0, den = 0;
    for (int k = 0; k < l->count; k++) {
        if (l->a[k].role == IN || l->a[k].role == HOST_IN) continue;
        for (size_t j = 0; j < l->a[k].n; j++) {
            const double g = value_at(&l->a[k], got[k], j), w = value_at(&l->a[k], want[k], j);
            if (!isfinite(w) || !isfinite(g)) {
                if (!(isnan(w) && isnan(g)) && g != w) return INFINITY;
                continue;
            }
            num += (g - w) * (g - w);
            den += w * w;
        }
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static int bit_identical(const layout *l, void **a, void **b) {
    for (int k = 0; k < l->count; k++)
        if (memcmp(a[k], b[k], bytes_of(&l->a[k]))) return 0;
    return 1;
}

static void describe(const op_case *c, char *buf, size_t size) {
    snprintf(buf, size, "%s [%d %d %d %d %d %d] mode %d", wcm_op_name(c->op), c->s[0], c->s[1], c->s[2], c->s[3], c->s[4],
             c->s[5], c->mode);
}

#include "backend_ops_grad.h"

/* The reference's and the CPU's results, computed once per case. */
static void **g_reference[NCASES], **g_cpu[NCASES];

static void free_reference_cache(void) {
    for (int i = 0; i < NCASES; i++) free_copy(g_reference[i]), free_copy(g_cpu[i]);
}

/* Backends whose ops other than convolutions (and the networks made of
 * them) give the CPU backend's bits. */
static int promises_cpu_bits(const wcm_backend *b) {
    return !strcmp(wcm_backend_name(b), "cuda") || !strcmp(wcm_backend_name(b), "emulated-device");
}

static int convolution_based(wcm_op_id op) { return op <= WCM_OP_CONV_BACKWARD_WEIGHTS || op == WCM_OP_NET_FORWARD; }

/* Case i on ctx[t] (the same backend, variant and Winograd setting with t +
 * 1 threads) against the reference, across thread counts, and by finite
 * differences. */
static void check_case(wcm_context *ref_ctx, wcm_context *cpu_ctx, wcm_context **ctx, int i, const char *label) {
    const op_case *c = &cases[i];
    const layout l = layout_of(c);
    wcm_error err;
    int rc;
    if (!g_reference[i]) g_reference[i] = run_copy(ref_ctx, i, &err, &rc);
    if (!g_reference[i]) {
        CHECK(0, "%s: the reference failed: %s", label, err.msg);
        return;
    }
    void **got[3] = {0};
    for (int t = 0; t < 3; t++)
        if (!(got[t] = run_copy(ctx[t], i, &err, &rc))) {
            CHECK(0, "%s, %d thread%s: %s", label, t + 1, t ? "s" : "", err.msg);
            for (int u = 0; u < t; u++) free_copy(got[u]);
            return;
        }
    const double e = compare(&l, got[1], g_reference[i]);
    if (c->tol == 0) CHECK(e == 0, "%s: bit-identical to the reference (rel RMS %.1e)", label, e);
    else CHECK(e <= c->tol, "%s: rel RMS error %.2e against the reference (<= %.0e)", label, e, c->tol);
    CHECK(bit_identical(&l, got[0], got[1]) && bit_identical(&l, got[0], got[2]), "%s: 1, 2 and 3 threads bit-identical",
          label);
    if (cpu_ctx && !convolution_based(c->op)) {
        if (!g_cpu[i]) g_cpu[i] = run_copy(cpu_ctx, i, &err, &rc);
        if (!g_cpu[i]) CHECK(0, "%s: the CPU backend failed: %s", label, err.msg);
        else CHECK(bit_identical(&l, got[1], g_cpu[i]), "%s: bit-identical to the CPU backend", label);
    }
    for (int t = 0; t < 3; t++) free_copy(got[t]);
    if (c->grad) grad_check(ctx[0], c, label); /* one thread: many small ops */
}

/* ---- the test ------------------------------------------------------------------ */

static int make_ctx(wcm_context **ctx, const wcm_backend *b, int variant, int threads, int winograd) {
    wcm_context_options o;
    wcm_context_options_default(&o);
    o.backend = b;
    o.variant = variant;
    o.threads = threads;
    o.winograd = winograd;
    wcm_error err;
    if (wcm_context_create(ctx, &o, &err)) {
        printf("FAIL context: %s\n", err.msg);
        return -1;
    }
    return 0;
}

/* Every op the backend claims has a case. */
static void check_coverage(const wcm_backend *b) {
    int missing = 0;
    for (int op = 0; op < WCM_OP_COUNT; op++) {
        if (!wcm_backend_claims(b, (wcm_op_id)op)) continue;
        int have = 0;
        for (int i = 0; i < NCASES; i++) have += cases[i].op == (wcm_op_id)op;
        if (!have) {
            printf("     %s claims %s, which has no case\n", wcm_backend_name(b), wcm_op_name((wcm_op_id)op));
            missing++;
        }
    }
    CHECK(missing == 0, "%s: every op it claims has a case (%d without)", wcm_backend_name(b), missing);
}

static double best_time(wcm_context *ctx, int i) {
    double best = INFINITY, total = 0;
    int rc;
    wcm_error err;
    for (int r = 0; r < 50 && (r < 3 || total < 0.2); r++) {
        const double t0 = wcm_seconds();
        void **o = run_copy(ctx, i, &err, &rc);
        const double t = wcm_seconds() - t0;
        free_copy(o);
        if (rc) return NAN;
        best = fmin(best, t), total += t;
    }
    return best;
}

static int selected(const char *filter, const char *name) { return !filter || strstr(name, filter); }

int main(int argc, char **argv) {
    int perf = 0;
    const char *only_backend = NULL, *only_op = NULL;
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--perf")) perf = 1;
        else if (!strcmp(argv[a], "--backend") && a + 1 < argc) only_backend = argv[++a];
        else if (!strcmp(argv[a], "--op") && a + 1 < argc) only_op = argv[++a];
        else {
            fprintf(stderr, "usage: test_backend_ops [--perf] [--backend NAME] [--op NAME]\n");
            return 2;
        }
    }
    CHECK(wcm_backend_register(emulated_device()) >= 2, "emulated device registered beside the built-in backends");
    const wcm_backend *ref = wcm_backend_reference();
    wcm_context *ref_ctx, *cpu_ctx;
    if (make_ctx(&ref_ctx, ref, -1, 0, -1) || make_ctx(&cpu_ctx, wcm_backend_cpu(), -1, 1, -1)) return 1;
    if (perf) printf("%-58s %-22s %12s\n", "case", "backend", "best s");
    int runnable = 0;
    for (int bi = 0; bi < wcm_backend_count(); bi++) {
        const wcm_backend *b = wcm_backend_at(bi);
        if (!selected(only_backend, wcm_backend_name(b))) continue;
        if (!perf) check_coverage(b);
        runnable += wcm_backend_variant_count(b);
        if (!wcm_backend_variant_count(b)) printf("--- %s: no variant on this machine (no device), nothing to run ---\n", wcm_backend_name(b));
        for (int v = 0; v < wcm_backend_variant_count(b); v++) {
            printf("--- %s, variant %s ---\n", wcm_backend_name(b), wcm_backend_variant_name(b, v));
            for (int i = 0; i < NCASES; i++) {
                const op_case *c = &cases[i];
                char name[160];
                describe(c, name, sizeof name);
                if (!wcm_backend_claims(b, c->op) || !selected(only_op, wcm_op_name(c->op))) continue;
                /* Convolutions with Winograd off and on (the reference has no Winograd). */
                const int conv = c->op <= WCM_OP_CONV_BACKWARD_WEIGHTS && b != ref;
                for (int winograd = conv ? 0 : 1; winograd <= 1; winograd++) {
                    wcm_context *ctx[3] = {0};
                    int bad = 0;
                    for (int t = 0; t < 3; t++) bad |= make_ctx(&ctx[t], b, v, t + 1, winograd);
                    if (bad) continue;
                    char label[256];
                    snprintf(label, sizeof label, "%s%s", name, conv ? (winograd ? ", winograd on" : ", winograd off") : "");
                    if (perf) {
                        char who[64];
                        snprintf(who, sizeof who, "%s/%s", wcm_backend_name(b), wcm_backend_variant_name(b, v));
                        printf("%-58s %-22s %12.6f\n", label, who, best_time(ctx[1], i));
                    } else {
                        check_case(ref_ctx, promises_cpu_bits(b) ? cpu_ctx : NULL, ctx, i, label);
                    }
                    for (int t = 0; t < 3; t++) wcm_context_free(ctx[t]);
                }
            }
        }
    }
    free_reference_cache();
    wcm_context_free(ref_ctx);
    wcm_context_free(cpu_ctx);
    if (!runnable) SKIP("no selected backend has a variant on this machine (%s)", only_backend ? only_backend : "all");
    if (perf) return 0;
    return t_done("test_backend_ops");
}

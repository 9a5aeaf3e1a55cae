/* wcm — bias-free CNN denoisers (docs/model.md §3).
 *
 *  - BF_CNN_RF, 21 conv layers: flat (1 -> 1) or conditional (4 -> 3, input
 *    [low, H, V, D], output the predicted noise on H, V, D). Middle layer l is
 *    3x3 when fmod(l, P) == 0 with P = 20 / ((R-1)/2 - 1), R = RF (8 for 9).
 *  - BF_CNN, the low-pass net: 20 conv layers, all 3x3.
 * Every middle layer is followed by bias-free batch norm and ReLU. Networks
 * predict the noise: denoised = noisy - f(noisy).
 *
 * Parameters live in one flat host block (wcm_net_params: conv weights then
 * gammas, per layer) and buffers in another (wcm_net_running_sd), so
 * optimisers and checkpoints are single loops. Weights are stored
 * [k][k][cin][cout]. A network is a list of layers; the backend of the
 * network's context compiles it into a plan (batch norm folded, weights in
 * the backend's layouts) and runs inference with it (wcm/backend.h). */
#ifndef WCM_NET_H
#define WCM_NET_H

#include "wcm/tensor.h"

typedef struct wcm_context wcm_context;

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    WCM_NET_FLAT = 0,        /* BF_CNN_RF, 1 -> 1 */
    WCM_NET_CONDITIONAL = 1, /* BF_CNN_RF, 4 -> 3 */
    WCM_NET_LOWPASS = 2,     /* BF_CNN, 20 layers of 3x3, 1 -> 1 */
} wcm_net_kind;

#define WCM_CHANNELS 64

/* One layer of the list: its shape and where its values are. */
typedef struct {
    int k, cin, cout;
    int bn;               /* followed by BF batch norm + ReLU */
    float *weight;        /* into the parameters: [k][k][cin][cout] */
    float *gamma;         /* into the parameters, cout values, if bn */
    float *running_sd;    /* into the running_sd block, cout values, if bn */
} wcm_layer;

/* A network (opaque): its architecture, the parameter blocks, the context it
 * runs in and the plan its backend compiled. */
typedef struct wcm_net wcm_net;

/* Build a network with zero weights, gammas 1 and running_sd 1.
 * rf is the nominal receptive field (5, 9, 13, 23, 43, any odd 5..43) for
 * FLAT/CONDITIONAL, ignored for LOWPASS. */
int wcm_net_create(wcm_net **out, wcm_net_kind kind, int rf, wcm_error *err);
void wcm_net_free(wcm_net *net);
const char *wcm_net_kind_name(wcm_net_kind kind);
int wcm_net_kind_parse(const char *s, wcm_net_kind *kind);
/* Kernel size of middle layer l (1..19) of a BF_CNN_RF with nominal RF `rf`. */
int wcm_rf_layer_kernel(int rf, int l);

/* Reference initialisation (docs/model.md §3.4): Kaiming-normal fan-in weights, clamped
 * N(0,1)*(2/9/64) gammas, running_sd = 1. Deterministic given `seed`. */
void wcm_net_init_reference(wcm_net *net, uint64_t seed);

/* What a network is. */
wcm_net_kind wcm_net_get_kind(const wcm_net *net);
int wcm_net_rf(const wcm_net *net);         /* receptive field: 2 * (number of 3x3 layers) + 1 */
int wcm_net_nominal_rf(const wcm_net *net); /* the RF the architecture rule was built from (lowpass: 40) */
int wcm_net_cin(const wcm_net *net);
int wcm_net_cout(const wcm_net *net);
int wcm_net_nlayers(const wcm_net *net);
/* Layer l (0 .. nlayers-1); its value pointers may be written through (then
 * call wcm_net_invalidate). */
const wcm_layer *wcm_net_layer(const wcm_net *net, int l);
/* The parameter block (all trainable values) and the batch-norm buffers, host memory. */
float *wcm_net_params(wcm_net *net);
size_t wcm_net_nparams(const wcm_net *net);
float *wcm_net_running_sd(wcm_net *net);
size_t wcm_net_nrunning(const wcm_net *net);

/* The context the network runs in (NULL, the default: the calling thread's
 * default context). Forward passes then run on its backend with its
 * settings; its plan is recompiled when they change. */
void wcm_net_set_context(wcm_net *net, wcm_context *ctx);
wcm_context *wcm_net_context(const wcm_net *net);

/* Frees the compiled plan with its activation buffers (they grow to the
 * largest input seen); the next forward compiles again. Large-image
 * pipelines call it when a network is done, so that the buffers of several
 * networks never add up. */
void wcm_net_release(wcm_net *net);

/* Call after changing the parameters or running_sd so the compiled plan
 * reloads them (batch norm folded again). */
void wcm_net_invalidate(wcm_net *net);

/* Inference: out = f(in), the predicted noise. in: [n][h][w][cin] NHWC, host
 * memory or the network context's backend memory; out is (re)allocated to
 * [n][h][w][cout] if its shape differs (where `in` is, when empty). Any h,
 * w >= 1. After the first call at a size, repeated calls allocate nothing. */
int wcm_net_forward(wcm_net *net, const wcm_tensor *in, wcm_tensor *out, wcm_error *err);

/* Parameter range checked when a network is loaded: every weight, gamma and
 * running_sd lies within +-WCM_MAX_PARAM = FLT_MAX / (9 * 64), beyond which a
 * single 3x3 layer over 64 channels overflows float32 even on inputs in
 * [0, 1] (trained networks stay below 10; a run blown up by a huge learning
 * rate, about 1e30, still loads). running_sd must also be positive. */
#define WCM_MAX_PARAM (3.4028234663852886e38 / 576.0)

/* State-dict conversion with PyTorch names and layouts
 * ("<prefix>conv_layers.{l}.weight" [out,in,kh,kw], "<prefix>BN_layers.{k}.gammas"
 * and ".running_sd" [1,64,1,1]). The architecture is inferred from the kernel
 * shapes; `module.` after the prefix is accepted. */
int wcm_net_from_arrays(const wcm_array_list *l, const char *prefix, wcm_net **out, wcm_error *err);
int wcm_net_to_arrays(const wcm_net *net, const char *prefix, wcm_array_list *l, wcm_error *err);
/* One line such as "conditional BF_CNN_RF, RF 13, 21 layers (6 of 3x3), 4->3 channels, 94,656 parameters". */
void wcm_net_describe(const wcm_net *net, char *buf, size_t size);
/* Multiply-adds of one forward pass per pixel (for GFLOP/s figures). */
double wcm_net_macs_per_pixel(const wcm_net *net);

#ifdef __cplusplus
}
#endif
#endif

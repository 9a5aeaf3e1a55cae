/* wcm — bias-free CNN denoisers (SPEC §3).
 *
 *  - BF_CNN_RF, 21 conv layers: flat (1 -> 1) or conditional (4 -> 3, input
 *    [low, H, V, D], output the predicted noise on H, V, D). Middle layer l is
 *    3x3 when fmod(l, P) == 0 with P = 20 / ((R-1)/2 - 1), R = RF (8 for 9).
 *  - BF_CNN, the low-pass net: 20 conv layers, all 3x3.
 * Every middle layer is followed by bias-free batch norm and ReLU. Networks
 * predict the noise: denoised = noisy - f(noisy).
 *
 * Parameters live in one flat block (`params`: conv weights then gammas, per
 * layer) and buffers in another (`running_sd`), so optimisers and checkpoints
 * are single loops. Weights are stored [k][k][cin][cout]. */
#ifndef WCM_NET_H
#define WCM_NET_H

#include "wcm/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    WCM_NET_FLAT = 0,        /* BF_CNN_RF, 1 -> 1 */
    WCM_NET_CONDITIONAL = 1, /* BF_CNN_RF, 4 -> 3 */
    WCM_NET_LOWPASS = 2,     /* BF_CNN, 20 layers of 3x3, 1 -> 1 */
} wcm_net_kind;

#define WCM_CHANNELS 64

typedef struct {
    int k, cin, cout;
    int bn;               /* followed by BF batch norm + ReLU */
    float *weight;        /* into net->params: [k][k][cin][cout] */
    float *gamma;         /* into net->params, cout values, if bn */
    float *running_sd;    /* into net->running_sd, cout values, if bn */
} wcm_layer;

typedef struct wcm_net {
    wcm_net_kind kind;
    int rf;               /* receptive field: 2 * (number of 3x3 layers) + 1 */
    int nominal_rf;       /* the RF the architecture rule was built from (lowpass: 40) */
    int cin, cout;
    int nlayers;
    wcm_layer *layers;
    float *params;        /* all trainable values */
    size_t nparams;
    float *running_sd;    /* batch-norm buffers */
    size_t nrunning;
    /* Inference cache (owned): weights with batch norm folded in, and
     * activation buffers reused across calls (no allocation while sampling). */
    float *folded;
    int folded_valid;
    float *work[2];
    size_t work_size;
    /* Backend plans of the folded weights (per layer, at plan_offset[l]) and
     * the working memory of the backend, both reused across calls. */
    float *plans;
    size_t *plan_offset;
    const void *plan_backend; /* backend and Winograd setting they were made for */
    int plan_winograd;
    int plans_valid;
    float *scratch;
    size_t scratch_size;
} wcm_net;

/* Build a network with zero weights, gammas 1 and running_sd 1.
 * rf is the nominal receptive field (5, 9, 13, 23, 43, any odd 5..43) for
 * FLAT/CONDITIONAL, ignored for LOWPASS. */
int wcm_net_create(wcm_net **out, wcm_net_kind kind, int rf, wcm_error *err);
void wcm_net_free(wcm_net *net);
const char *wcm_net_kind_name(wcm_net_kind kind);
int wcm_net_kind_parse(const char *s, wcm_net_kind *kind);
/* Kernel size of middle layer l (1..19) of a BF_CNN_RF with nominal RF `rf`. */
int wcm_rf_layer_kernel(int rf, int l);

/* Reference initialisation (SPEC §3): Kaiming-normal fan-in weights, clamped
 * N(0,1)*(2/9/64) gammas, running_sd = 1. Deterministic given `seed`. */
void wcm_net_init_reference(wcm_net *net, uint64_t seed);

/* Call after changing params/running_sd so the folded inference weights are rebuilt. */
void wcm_net_invalidate(wcm_net *net);

/* Inference: out = f(in), the predicted noise. in: [n][h][w][cin] NHWC;
 * out is (re)allocated to [n][h][w][cout] if its shape differs. Any h, w >= 1. */
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

/* Bias-free CNN architectures (SPEC §3), inference and state-dict conversion. */
#include "wcm/net.h"
#include "wcm/backend.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RF_NET_LAYERS 21
#define LOWPASS_LAYERS 20

int wcm_rf_layer_kernel(int rf, int l) {
    /* The reference builds the 3x3 positions from P = 20 / ((R-1)/2 - 1) in
     * floating point, with R = 8 standing in for RF 9. */
    double R = rf == 9 ? 8.0 : (double)rf;
    double P = 20.0 / ((R - 1.0) / 2.0 - 1.0);
    return fmod((double)l, P) == 0.0 ? 3 : 1;
}

/* RF actually produced by the rule for nominal `rf` (2 * #3x3 + 1). */
static int rule_rf(int rf) {
    int n3 = 2; /* first and last layers */
    for (int l = 1; l < RF_NET_LAYERS - 1; l++) n3 += wcm_rf_layer_kernel(rf, l) == 3;
    return 2 * n3 + 1;
}

const char *wcm_net_kind_name(wcm_net_kind kind) {
    switch (kind) {
    case WCM_NET_FLAT: return "flat";
    case WCM_NET_CONDITIONAL: return "conditional";
    case WCM_NET_LOWPASS: return "lowpass";
    }
    return "unknown";
}

int wcm_net_kind_parse(const char *s, wcm_net_kind *kind) {
    if (!strcmp(s, "flat")) *kind = WCM_NET_FLAT;
    else if (!strcmp(s, "conditional")) *kind = WCM_NET_CONDITIONAL;
    else if (!strcmp(s, "lowpass") || !strcmp(s, "low")) *kind = WCM_NET_LOWPASS;
    else return WCM_ERR_ARG;
    return WCM_OK;
}

/* Lay out layers given kernel sizes; allocates the parameter blocks. */
static int net_build(wcm_net **out, wcm_net_kind kind, int nominal_rf, const int *kernels, int nlayers, int cin,
                     int cout, wcm_error *err) {
    wcm_net *net = calloc(1, sizeof *net);
    if (!net) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    net->kind = kind;
    net->nominal_rf = nominal_rf;
    net->cin = cin;
    net->cout = cout;
    net->nlayers = nlayers;
    net->layers = calloc((size_t)nlayers, sizeof *net->layers);
    if (!net->layers) {
        free(net);
        return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    }
    size_t np = 0, nr = 0;
    int n3 = 0;
    for (int l = 0; l < nlayers; l++) {
        wcm_layer *L = &net->layers[l];
        L->k = kernels[l];
        L->cin = l == 0 ? cin : WCM_CHANNELS;
        L->cout = l == nlayers - 1 ? cout : WCM_CHANNELS;
        L->bn = l > 0 && l < nlayers - 1;
        n3 += L->k == 3;
        np += (size_t)L->k * L->k * L->cin * L->cout + (L->bn ? (size_t)L->cout : 0);
        nr += L->bn ? (size_t)L->cout : 0;
    }
    net->rf = 2 * n3 + 1;
    net->nparams = np;
    net->nrunning = nr;
    net->params = wcm_calloc(np * sizeof(float));
    net->running_sd = wcm_calloc((nr ? nr : 1) * sizeof(float));
    net->folded = wcm_calloc(np * sizeof(float));
    if (!net->params || !net->running_sd || !net->folded) {
        wcm_net_free(net);
        return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    }
    float *p = net->params, *r = net->running_sd;
    for (int l = 0; l < nlayers; l++) {
        wcm_layer *L = &net->layers[l];
        L->weight = p;
        p += (size_t)L->k * L->k * L->cin * L->cout;
        if (L->bn) {
            L->gamma = p;
            p += L->cout;
            L->running_sd = r;
            r += L->cout;
            for (int c = 0; c < L->cout; c++) L->gamma[c] = 1, L->running_sd[c] = 1;
        }
    }
    *out = net;
    return WCM_OK;
}

int wcm_net_create(wcm_net **out, wcm_net_kind kind, int rf, wcm_error *err) {
    int kernels[RF_NET_LAYERS];
    *out = NULL;
    if (kind == WCM_NET_LOWPASS) {
        for (int l = 0; l < LOWPASS_LAYERS; l++) kernels[l] = 3;
        return net_build(out, kind, 40, kernels, LOWPASS_LAYERS, 1, 1, err);
    }
    if (kind != WCM_NET_FLAT && kind != WCM_NET_CONDITIONAL) return wcm_fail(err, WCM_ERR_ARG, "unknown network kind");
    if (rf < 5 || rf > 43 || rf % 2 == 0 || rule_rf(rf) != rf)
        return wcm_fail(err, WCM_ERR_ARG,
                        "receptive field %d is not produced by the BF_CNN_RF rule (e.g. 5, 7, 9, 11, 13, 23, 43)", rf);
    kernels[0] = kernels[RF_NET_LAYERS - 1] = 3;
    for (int l = 1; l < RF_NET_LAYERS - 1; l++) kernels[l] = wcm_rf_layer_kernel(rf, l);
    int cin = kind == WCM_NET_CONDITIONAL ? 4 : 1, cout = kind == WCM_NET_CONDITIONAL ? 3 : 1;
    return net_build(out, kind, rf, kernels, RF_NET_LAYERS, cin, cout, err);
}

void wcm_net_free(wcm_net *net) {
    if (!net) return;
    wcm_free(net->params);
    wcm_free(net->running_sd);
    wcm_free(net->folded);
    wcm_free(net->work[0]);
    wcm_free(net->work[1]);
    wcm_free(net->plans);
    wcm_free(net->plan_offset);
    wcm_free(net->scratch);
    free(net->layers);
    free(net);
}

void wcm_net_invalidate(wcm_net *net) {
    net->folded_valid = 0;
    net->plans_valid = 0;
}

/* Inference weights: batch norm y = x / running_sd * gamma is a per-output
 * channel scale, folded into the preceding convolution. The folded block has
 * the same layout as params (gamma slots unused). */
static void fold_weights(wcm_net *net) {
    for (int l = 0; l < net->nlayers; l++) {
        const wcm_layer *L = &net->layers[l];
        size_t off = (size_t)(L->weight - net->params);
        size_t rows = (size_t)L->k * L->k * L->cin;
        float *dst = net->folded + off;
        for (size_t r = 0; r < rows; r++)
            for (int c = 0; c < L->cout; c++) {
                float scale = L->bn ? L->gamma[c] / L->running_sd[c] : 1.0f;
                dst[r * L->cout + c] = L->weight[r * L->cout + c] * scale;
            }
    }
    net->folded_valid = 1;
    net->plans_valid = 0;
}

static wcm_conv_shape layer_shape(const wcm_net *net, int l, int n, int h, int w) {
    const wcm_layer *L = &net->layers[l];
    return (wcm_conv_shape){n, h, w, L->cin, L->cout, L->k};
}

/* The backend's prepared form of every folded layer, made once (again after
 * the weights, the backend or the Winograd setting change). */
static int make_plans(wcm_net *net, const wcm_backend *be, wcm_error *err) {
    if (!net->plan_offset) {
        net->plan_offset = wcm_alloc(sizeof(size_t) * (size_t)net->nlayers);
        if (!net->plan_offset) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory for layer plans");
    }
    size_t total = 0;
    for (int l = 0; l < net->nlayers; l++) {
        const wcm_conv_shape s = layer_shape(net, l, 1, 1, 1);
        net->plan_offset[l] = total;
        total += (be->plan_size(&s) + 15) & ~(size_t)15; /* keep each plan 64-byte aligned */
    }
    wcm_free(net->plans);
    net->plans = wcm_alloc(sizeof(float) * (total ? total : 1));
    if (!net->plans) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory for layer plans (%zu floats)", total);
    for (int l = 0; l < net->nlayers; l++) {
        const wcm_conv_shape s = layer_shape(net, l, 1, 1, 1);
        be->plan(&s, net->folded + (net->layers[l].weight - net->params), net->plans + net->plan_offset[l]);
    }
    net->plan_backend = be;
    net->plan_winograd = wcm_get_winograd();
    net->plans_valid = 1;
    return WCM_OK;
}

/* Length of the run of 1x1 layers starting at layer l (0 if layer l is not 1x1). */
static int pointwise_run(const wcm_net *net, int l) {
    int run = 0;
    while (l + run < net->nlayers && net->layers[l + run].k == 1) run++;
    return run;
}

/* Grow the backend's working memory to what this input size needs. */
static int ensure_scratch(wcm_net *net, const wcm_backend *be, int n, int h, int w, wcm_error *err) {
    size_t need = 0;
    int fused = 0;
    for (int l = 0; l < net->nlayers; l++) {
        const wcm_conv_shape s = layer_shape(net, l, n, h, w);
        const size_t z = be->scratch_size(&s, 0);
        if (z > need) need = z;
        fused |= be->forward_pointwise && pointwise_run(net, l) >= 2;
    }
    if (fused) {
        int maxc = WCM_CHANNELS > net->cin ? WCM_CHANNELS : net->cin;
        maxc = net->cout > maxc ? net->cout : maxc;
        const wcm_conv_shape s = {n, h, w, maxc, maxc, 1};
        const size_t z = be->scratch_size(&s, 1);
        if (z > need) need = z;
    }
    if (need <= net->scratch_size) return WCM_OK;
    wcm_free(net->scratch);
    net->scratch = wcm_alloc(sizeof(float) * need);
    net->scratch_size = net->scratch ? need : 0;
    if (!net->scratch) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory for convolution scratch (%zu floats)", need);
    return WCM_OK;
}

int wcm_net_forward(wcm_net *net, const wcm_tensor *in, wcm_tensor *out, wcm_error *err) {
    /* Activations cost about 520 bytes per pixel: check the budget first. */
    int budget_rc = wcm_check_pixels(in->n, in->h, in->w, "network input", err);
    if (budget_rc) return budget_rc;
    if (in->c != net->cin)
        return wcm_fail(err, WCM_ERR_SHAPE, "%s network expects %d input channel%s, got %d",
                        wcm_net_kind_name(net->kind), net->cin, net->cin == 1 ? "" : "s", in->c);
    if (out->data && (out->n != in->n || out->h != in->h || out->w != in->w || out->c != net->cout)) {
        wcm_tensor_free(out);
    }
    if (!out->data) {
        int rc = wcm_tensor_alloc(out, in->n, in->h, in->w, net->cout, err);
        if (rc) return rc;
    }
    const wcm_backend *be = wcm_get_backend();
    const int planned = be->plan_size && be->plan && be->scratch_size && be->forward_plan;
    /* Shifted layers need WCM_SHIFT_ROWS spare rows in their buffer. */
    const int shifting = planned && be->can_shift && be->forward_shifted;
    const size_t margin = shifting ? (size_t)WCM_SHIFT_ROWS * in->w * WCM_CHANNELS : 0;
    size_t need = (size_t)in->n * in->h * in->w * WCM_CHANNELS + margin;
    if (need > net->work_size) {
        wcm_free(net->work[0]);
        wcm_free(net->work[1]);
        net->work[0] = wcm_alloc(need * sizeof(float));
        net->work[1] = wcm_alloc(need * sizeof(float));
        net->work_size = need;
        if (!net->work[0] || !net->work[1]) {
            net->work_size = 0;
            return wcm_fail(err, WCM_ERR_NOMEM, "out of memory for activations (%zu floats)", need);
        }
    }
    if (!net->folded_valid) fold_weights(net);
    if (planned) {
        if (!net->plans_valid || net->plan_backend != (const void *)be || net->plan_winograd != wcm_get_winograd()) {
            int rc = make_plans(net, be, err);
            if (rc) return rc;
        }
        int rc = ensure_scratch(net, be, in->n, in->h, in->w, err);
        if (rc) return rc;
    }
    /* Ping-pong between the two work buffers; the last layer writes out. A
     * shifted layer stays in its buffer, moving the activations between its
     * start and `margin` floats in (the spare rows alternate sides). */
    const float *src = in->data;
    int buf = -1, at_margin = 0; /* src: work[buf] (+ margin), or the input */
    for (int l = 0; l < net->nlayers;) {
        if (shifting && buf >= 0 && l + 1 < net->nlayers && net->layers[l].k != 1) {
            const wcm_conv_shape s = layer_shape(net, l, in->n, in->h, in->w);
            const float *plan = net->plans + net->plan_offset[l];
            float *x = net->work[buf] + (at_margin ? margin : 0);
            if (be->can_shift(&s, plan) &&
                be->forward_shifted(&s, x, plan, !at_margin, net->layers[l].bn ? WCM_CONV_RELU : 0, net->scratch) == 0) {
                at_margin = !at_margin;
                src = net->work[buf] + (at_margin ? margin : 0);
                l++;
                continue;
            }
        }
        int run = planned && be->forward_pointwise ? pointwise_run(net, l) : 0;
        if (run > RF_NET_LAYERS) run = RF_NET_LAYERS;
        const int count = run >= 2 ? run : 1;
        buf = buf < 0 ? 0 : buf ^ 1;
        at_margin = 0;
        float *dst = l + count == net->nlayers ? out->data : net->work[buf];
        if (count > 1) {
            wcm_conv_shape shapes[RF_NET_LAYERS + 1];
            const float *plans[RF_NET_LAYERS + 1];
            int flags[RF_NET_LAYERS + 1];
            for (int q = 0; q < count; q++) {
                shapes[q] = layer_shape(net, l + q, in->n, in->h, in->w);
                plans[q] = net->plans + net->plan_offset[l + q];
                flags[q] = net->layers[l + q].bn ? WCM_CONV_RELU : 0;
            }
            be->forward_pointwise(count, shapes, plans, flags, src, dst, net->scratch);
        } else {
            const wcm_conv_shape s = layer_shape(net, l, in->n, in->h, in->w);
            const int flags = net->layers[l].bn ? WCM_CONV_RELU : 0;
            if (planned)
                be->forward_plan(&s, src, net->plans + net->plan_offset[l], dst, flags, net->scratch);
            else
                be->conv_forward(&s, src, net->folded + (net->layers[l].weight - net->params), dst, flags);
        }
        src = dst;
        l += count;
    }
    return WCM_OK;
}

double wcm_net_macs_per_pixel(const wcm_net *net) {
    double m = 0;
    for (int l = 0; l < net->nlayers; l++) {
        const wcm_layer *L = &net->layers[l];
        m += (double)L->k * L->k * L->cin * L->cout;
    }
    return m;
}

void wcm_net_describe(const wcm_net *net, char *buf, size_t size) {
    int n3 = 0;
    for (int l = 0; l < net->nlayers; l++) n3 += net->layers[l].k == 3;
    if (net->kind == WCM_NET_LOWPASS)
        snprintf(buf, size, "lowpass BF_CNN (\"RF 40\"), receptive field %d, %d layers (all 3x3), %d->%d channels, %zu parameters",
                 net->rf, net->nlayers, net->cin, net->cout, net->nparams);
    else
        snprintf(buf, size, "%s BF_CNN_RF, RF %d, %d layers (%d of 3x3), %d->%d channels, %zu parameters",
                 wcm_net_kind_name(net->kind), net->rf, net->nlayers, n3, net->cin, net->cout, net->nparams);
}

/* ---- state dict (PyTorch names and layouts) ----------------------------- */

/* Look up "<prefix>name" or "<prefix>module.name". */
static const wcm_array *find_key(const wcm_array_list *l, const char *prefix, const char *name) {
    char key[256];
    snprintf(key, sizeof key, "%s%s", prefix, name);
    const wcm_array *a = wcm_array_list_find(l, key);
    if (!a) {
        snprintf(key, sizeof key, "%smodule.%s", prefix, name);
        a = wcm_array_list_find(l, key);
    }
    return a;
}

int wcm_net_from_arrays(const wcm_array_list *l, const char *prefix, wcm_net **out, wcm_error *err) {
    *out = NULL;
    const wcm_array *conv[RF_NET_LAYERS + 1] = {0};
    int nlayers = 0;
    for (; nlayers <= RF_NET_LAYERS; nlayers++) {
        char name[64];
        snprintf(name, sizeof name, "conv_layers.%d.weight", nlayers);
        conv[nlayers] = find_key(l, prefix, name);
        if (!conv[nlayers]) break;
    }
    if (nlayers != RF_NET_LAYERS && nlayers != LOWPASS_LAYERS)
        return wcm_fail(err, WCM_ERR_FORMAT,
                        "%sconv_layers: found %d consecutive layers, expected 21 (BF_CNN_RF) or 20 (BF_CNN)%s", prefix,
                        nlayers, nlayers == 0 ? " (missing key conv_layers.0.weight)" : "");
    int kernels[RF_NET_LAYERS];
    for (int i = 0; i < nlayers; i++) {
        const wcm_array *a = conv[i];
        int64_t co = a->shape[0], ci = a->ndim == 4 ? a->shape[1] : 0;
        int inner_in = i > 0, inner_out = i < nlayers - 1;
        if (a->ndim != 4 || a->shape[2] != a->shape[3] || (a->shape[2] != 1 && a->shape[2] != 3) ||
            (inner_in && ci != WCM_CHANNELS) || (inner_out && co != WCM_CHANNELS) || co < 1 || ci < 1 || co > 64 || ci > 64)
            return wcm_fail(err, WCM_ERR_SHAPE, "%sconv_layers.%d.weight has unexpected shape [%lld,%lld,%lld,%lld]",
                            prefix, i, (long long)a->shape[0], (long long)(a->ndim > 1 ? a->shape[1] : 0),
                            (long long)(a->ndim > 2 ? a->shape[2] : 0), (long long)(a->ndim > 3 ? a->shape[3] : 0));
        kernels[i] = (int)a->shape[2];
    }
    int cin = (int)conv[0]->shape[1], cout = (int)conv[nlayers - 1]->shape[0];
    wcm_net_kind kind;
    int nominal = 40;
    if (kernels[0] != 3 || kernels[nlayers - 1] != 3)
        return wcm_fail(err, WCM_ERR_SHAPE, "%sfirst and last layers must be 3x3", prefix);
    if (nlayers == LOWPASS_LAYERS) {
        for (int i = 0; i < nlayers; i++)
            if (kernels[i] != 3) return wcm_fail(err, WCM_ERR_SHAPE, "%sBF_CNN layer %d is not 3x3", prefix, i);
        if (cin != 1 || cout != 1)
            return wcm_fail(err, WCM_ERR_SHAPE, "%sBF_CNN low-pass net must map 1 -> 1 channels, got %d -> %d", prefix, cin, cout);
        kind = WCM_NET_LOWPASS;
    } else {
        if (cin == 1 && cout == 1) kind = WCM_NET_FLAT;
        else if (cin == 4 && cout == 3) kind = WCM_NET_CONDITIONAL;
        else
            return wcm_fail(err, WCM_ERR_SHAPE, "%sBF_CNN_RF must map 1 -> 1 (flat) or 4 -> 3 (conditional), got %d -> %d",
                            prefix, cin, cout);
        int n3 = 0;
        for (int i = 0; i < nlayers; i++) n3 += kernels[i] == 3;
        nominal = 2 * n3 + 1;
        for (int i = 1; i < nlayers - 1; i++)
            if (wcm_rf_layer_kernel(nominal, i) != kernels[i])
                return wcm_fail(err, WCM_ERR_SHAPE, "%skernel pattern does not follow the BF_CNN_RF rule for RF %d (layer %d)",
                                prefix, nominal, i);
    }
    wcm_net *net = NULL;
    int rc = net_build(&net, kind, nominal, kernels, nlayers, cin, cout, err);
    if (rc) return rc;
    for (int i = 0; i < nlayers; i++) {
        wcm_layer *L = &net->layers[i];
        const float *src = conv[i]->data;
        int K = L->k;
        /* torch [out][in][kh][kw] -> wcm [kh][kw][in][out] */
        for (int o = 0; o < L->cout; o++)
            for (int c = 0; c < L->cin; c++)
                for (int ky = 0; ky < K; ky++)
                    for (int kx = 0; kx < K; kx++)
                        L->weight[(((size_t)ky * K + kx) * L->cin + c) * L->cout + o] =
                            src[(((size_t)o * L->cin + c) * K + ky) * K + kx];
        if (!L->bn) continue;
        const char *what[2] = {"gammas", "running_sd"};
        float *dst[2] = {L->gamma, L->running_sd};
        for (int t = 0; t < 2; t++) {
            char name[64];
            snprintf(name, sizeof name, "BN_layers.%d.%s", i - 1, what[t]);
            const wcm_array *a = find_key(l, prefix, name);
            if (!a) {
                wcm_net_free(net);
                return wcm_fail(err, WCM_ERR_FORMAT, "missing key %s%s", prefix, name);
            }
            if (wcm_array_count(a) != L->cout) {
                wcm_net_free(net);
                return wcm_fail(err, WCM_ERR_SHAPE, "%s%s has %lld values, expected %d", prefix, name,
                                (long long)wcm_array_count(a), L->cout);
            }
            memcpy(dst[t], a->data, sizeof(float) * (size_t)L->cout);
        }
        for (int c = 0; c < L->cout; c++)
            if (!(L->running_sd[c] > 0 && L->running_sd[c] <= WCM_MAX_PARAM) || !(fabsf(L->gamma[c]) <= WCM_MAX_PARAM)) {
                double gamma = L->gamma[c], sd = L->running_sd[c];
                wcm_net_free(net);
                return wcm_fail(err, WCM_ERR_NUMERIC, "%sBN_layers.%d has a gamma beyond +-%.3g or a running_sd outside (0, %.3g] "
                                "(gamma %g, running_sd %g)", prefix, i - 1, WCM_MAX_PARAM,
                                WCM_MAX_PARAM, gamma, sd);
            }
    }
    for (size_t i = 0; i < net->nparams; i++)
        if (!(fabsf(net->params[i]) <= WCM_MAX_PARAM)) {
            double value = net->params[i];
            wcm_net_free(net);
            return wcm_fail(err, WCM_ERR_NUMERIC, "%snetwork weights contain NaN, Inf or values beyond +-%.3g (%g): a layer "
                            "would overflow float32", prefix, WCM_MAX_PARAM, value);
        }
    *out = net;
    return WCM_OK;
}

static int push_array(wcm_array_list *l, const char *prefix, const char *name, int ndim, const int64_t *shape,
                      const float *src, wcm_error *err) {
    wcm_array a = {0};
    size_t n = strlen(prefix) + strlen(name) + 1;
    a.name = malloc(n);
    a.ndim = ndim;
    int64_t count = 1;
    for (int i = 0; i < ndim; i++) a.shape[i] = shape[i], count *= shape[i];
    a.data = malloc((size_t)count * sizeof(float));
    if (!a.name || !a.data) {
        wcm_array_free(&a);
        return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    }
    snprintf(a.name, n, "%s%s", prefix, name);
    memcpy(a.data, src, (size_t)count * sizeof(float));
    int rc = wcm_array_list_push(l, &a, err);
    if (rc) wcm_array_free(&a);
    return rc;
}

int wcm_net_to_arrays(const wcm_net *net, const char *prefix, wcm_array_list *l, wcm_error *err) {
    for (int i = 0; i < net->nlayers; i++) {
        const wcm_layer *L = &net->layers[i];
        int K = L->k;
        size_t count = (size_t)K * K * L->cin * L->cout;
        float *t = malloc(count * sizeof(float));
        if (!t) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
        for (int o = 0; o < L->cout; o++)
            for (int c = 0; c < L->cin; c++)
                for (int ky = 0; ky < K; ky++)
                    for (int kx = 0; kx < K; kx++)
                        t[(((size_t)o * L->cin + c) * K + ky) * K + kx] =
                            L->weight[(((size_t)ky * K + kx) * L->cin + c) * L->cout + o];
        char name[64];
        snprintf(name, sizeof name, "conv_layers.%d.weight", i);
        int64_t shape[4] = {L->cout, L->cin, K, K};
        int rc = push_array(l, prefix, name, 4, shape, t, err);
        free(t);
        if (rc) return rc;
    }
    for (int i = 0; i < net->nlayers; i++) {
        const wcm_layer *L = &net->layers[i];
        if (!L->bn) continue;
        int64_t shape[4] = {1, L->cout, 1, 1};
        char name[64];
        snprintf(name, sizeof name, "BN_layers.%d.gammas", i - 1);
        int rc = push_array(l, prefix, name, 4, shape, L->gamma, err);
        if (rc) return rc;
        snprintf(name, sizeof name, "BN_layers.%d.running_sd", i - 1);
        rc = push_array(l, prefix, name, 4, shape, L->running_sd, err);
        if (rc) return rc;
    }
    return WCM_OK;
}

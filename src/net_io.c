/* State-dict conversion of the BF-CNNs: PyTorch names and layouts
 * ("conv_layers.{l}.weight" [out][in][kh][kw], "BN_layers.{k}.gammas" and
 * ".running_sd") to and from a network's host parameter blocks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_internal.h"

#define RF_NET_LAYERS 21
#define LOWPASS_LAYERS 20

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
    int rc = wcm_net_build(&net, kind, nominal, kernels, nlayers, cin, cout, err);
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

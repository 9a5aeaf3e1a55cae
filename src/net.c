/* Bias-free CNN architectures (docs/model.md §3) as layer lists, and inference
 * through the plan the context's backend compiles from them. */
#include "net_internal.h"

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

/* Lay out layers given kernel sizes; allocates the parameter blocks. */
int wcm_net_build(wcm_net **out, wcm_net_kind kind, int nominal_rf, const int *kernels, int nlayers, int cin,
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
    if (!net->params || !net->running_sd) {
        wcm_net_free(net);
        return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    }
    float *p = net->params, *r = net->running_sd;
    wcm_context *host = wcm_context_host();
    int rc = WCM_OK;
    for (int l = 0; l < nlayers && !rc; l++) {
        wcm_layer *L = &net->layers[l];
        L->weight = p;
        p += (size_t)L->k * L->k * L->cin * L->cout;
        if (L->bn) {
            L->gamma = p;
            p += L->cout;
            L->running_sd = r;
            r += L->cout;
            rc = wcm_op_fill(host, (size_t)L->cout, L->gamma, 1.0f, err);
            if (!rc) rc = wcm_op_fill(host, (size_t)L->cout, L->running_sd, 1.0f, err);
        }
    }
    if (rc) {
        wcm_net_free(net);
        return rc;
    }
    *out = net;
    return WCM_OK;
}

int wcm_net_create(wcm_net **out, wcm_net_kind kind, int rf, wcm_error *err) {
    int kernels[RF_NET_LAYERS];
    *out = NULL;
    if (kind == WCM_NET_LOWPASS) {
        for (int l = 0; l < LOWPASS_LAYERS; l++) kernels[l] = 3;
        return wcm_net_build(out, kind, 40, kernels, LOWPASS_LAYERS, 1, 1, err);
    }
    if (kind != WCM_NET_FLAT && kind != WCM_NET_CONDITIONAL) return wcm_fail(err, WCM_ERR_ARG, "unknown network kind");
    if (rf < 5 || rf > 43 || rf % 2 == 0 || rule_rf(rf) != rf)
        return wcm_fail(err, WCM_ERR_ARG,
                        "receptive field %d is not produced by the BF_CNN_RF rule (e.g. 5, 7, 9, 11, 13, 23, 43)", rf);
    kernels[0] = kernels[RF_NET_LAYERS - 1] = 3;
    for (int l = 1; l < RF_NET_LAYERS - 1; l++) kernels[l] = wcm_rf_layer_kernel(rf, l);
    int cin = kind == WCM_NET_CONDITIONAL ? 4 : 1, cout = kind == WCM_NET_CONDITIONAL ? 3 : 1;
    return wcm_net_build(out, kind, rf, kernels, RF_NET_LAYERS, cin, cout, err);
}

void wcm_net_free(wcm_net *net) {
    if (!net) return;
    wcm_dispatch_net_free(net->plan_backend, net->plan);
    wcm_free(net->params);
    wcm_free(net->running_sd);
    free(net->layers);
    free(net);
}

void wcm_net_release(wcm_net *net) {
    if (!net || !net->plan) return;
    wcm_dispatch_net_free(net->plan_backend, net->plan);
    net->plan = NULL;
    net->plan_backend = NULL;
}

wcm_net_kind wcm_net_get_kind(const wcm_net *net) { return net->kind; }
int wcm_net_rf(const wcm_net *net) { return net->rf; }
int wcm_net_nominal_rf(const wcm_net *net) { return net->nominal_rf; }
int wcm_net_cin(const wcm_net *net) { return net->cin; }
int wcm_net_cout(const wcm_net *net) { return net->cout; }
int wcm_net_nlayers(const wcm_net *net) { return net->nlayers; }
const wcm_layer *wcm_net_layer(const wcm_net *net, int l) { return l >= 0 && l < net->nlayers ? &net->layers[l] : NULL; }
float *wcm_net_params(wcm_net *net) { return net->params; }
size_t wcm_net_nparams(const wcm_net *net) { return net->nparams; }
float *wcm_net_running_sd(wcm_net *net) { return net->running_sd; }
size_t wcm_net_nrunning(const wcm_net *net) { return net->nrunning; }
wcm_context *wcm_net_context(const wcm_net *net) { return net->context; }

void wcm_net_set_context(wcm_net *net, wcm_context *ctx) {
    if (ctx == net->context) return;
    net->context = ctx; /* the plan is checked against it at the next forward */
}

void wcm_net_invalidate(wcm_net *net) { net->plan_stale = 1; }

wcm_net_desc wcm_net_describe_layers(const wcm_net *net) {
    return (wcm_net_desc){net->nlayers, net->cin,      net->cout,     net->layers,
                          net->params,  net->running_sd, net->nparams, net->nrunning};
}

/* A plan for ctx with the current values: compiled when there is none or it
 * was made for another backend or other settings, reloaded when stale. */
static int ready_plan(wcm_net *net, wcm_context *ctx, wcm_error *err) {
    const wcm_net_desc d = wcm_net_describe_layers(net);
    if (net->plan && !wcm_dispatch_net_fits(ctx, net->plan_backend, net->plan)) {
        wcm_dispatch_net_free(net->plan_backend, net->plan);
        net->plan = NULL;
    }
    int rc = WCM_OK;
    if (!net->plan) {
        rc = wcm_dispatch_net_compile(ctx, &d, &net->plan, err);
        net->plan_backend = net->plan ? wcm_context_backend(ctx) : NULL;
    } else if (net->plan_stale) {
        rc = wcm_dispatch_net_load(ctx, net->plan, &d, err);
    }
    if (!rc) net->plan_stale = 0;
    return rc;
}

int wcm_net_forward(wcm_net *net, const wcm_tensor *in, wcm_tensor *out, wcm_error *err) {
    /* Activations cost about 520 bytes per pixel: check the budget first. */
    int budget_rc = wcm_check_pixels(in->n, in->h, in->w, "network input", err);
    if (budget_rc) return budget_rc;
    if (in->c != net->cin)
        return wcm_fail(err, WCM_ERR_SHAPE, "%s network expects %d input channel%s, got %d",
                        wcm_net_kind_name(net->kind), net->cin, net->cin == 1 ? "" : "s", in->c);
    wcm_context *ctx = wcm_ctx(net->context);
    /* Host tensors and a device context: through copies in the backend's memory. */
    wcm_io io;
    int rc = wcm_io_begin(ctx, in, out, net->cout, &io, err);
    if (rc) return rc;
    rc = ready_plan(net, ctx, err);
    if (!rc) rc = wcm_dispatch_net_forward(ctx, net->plan, in->n, in->h, in->w, io.x->data, io.y->data, err);
    return wcm_io_end(ctx, &io, rc, err);
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


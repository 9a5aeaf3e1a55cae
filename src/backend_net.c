/* The generic network plan: batch norm folded into the convolution weights
 * with the backend's bn_fold, then one conv_forward per layer between two
 * activation buffers of the backend's memory. Backends without a network
 * compiler of their own (the reference; a new device backend at first) run
 * networks this way; the CPU backend's compiler adds its fused and in-place
 * layers on top of the same arithmetic. */
#include <stdlib.h>
#include <string.h>

#include "backend_impl.h"

typedef struct {
    int k, cin, cout, bn;
    size_t weight, gamma, running; /* offsets into the parameter and running_sd blocks */
} generic_layer;

typedef struct {
    int nlayers;
    generic_layer *layers;
    size_t nparams, nrunning;
    /* The parameters where the backend reads them: host memory for a
     * host-visible backend, else copies in `staged` (params, then running). */
    wcm_buffer *staged;
    const float *params, *running;
    wcm_buffer *folded;
    wcm_buffer *work[2];
    size_t work_floats;
} generic_plan;

static int take(wcm_context *ctx, wcm_buffer **b, size_t floats) {
    wcm_error err;
    if (!wcm_buffer_alloc(ctx, (floats ? floats : 1) * sizeof(float), b, &err)) return WCM_OK;
    return wcm_ctx_fail(ctx, WCM_ERR_NOMEM, "%s", err.msg);
}

/* Copies the host parameters to where the backend reads them and folds
 * batch norm into the weights. */
int wcm_generic_net_load(wcm_context *ctx, wcm_net_plan *plan, const wcm_net_desc *d) {
    generic_plan *p = (generic_plan *)plan;
    wcm_error err;
    int rc = WCM_OK;
    if (p->staged) {
        float *dst = p->staged->data;
        rc = wcm_memcpy_to_backend(ctx, dst, d->params, d->nparams * sizeof(float), &err);
        if (!rc) rc = wcm_memcpy_to_backend(ctx, dst + d->nparams, d->running, d->nrunning * sizeof(float), &err);
    } else {
        p->params = d->params;
        p->running = d->running;
    }
    for (int l = 0; !rc && l < p->nlayers; l++) {
        const generic_layer *L = &p->layers[l];
        rc = wcm_op_bn_fold(ctx, (size_t)L->k * L->k * L->cin, L->cout, p->params + L->weight,
                            L->bn ? p->params + L->gamma : NULL, L->bn ? p->running + L->running : NULL,
                            (float *)p->folded->data + L->weight, &err);
    }
    return rc ? wcm_ctx_fail(ctx, rc, "%s", err.msg) : WCM_OK;
}

int wcm_generic_net_compile(wcm_context *ctx, const wcm_net_desc *d, wcm_net_plan **out) {
    generic_plan *p = calloc(1, sizeof *p);
    if (!p || !(p->layers = calloc((size_t)d->nlayers, sizeof *p->layers))) {
        free(p);
        return wcm_ctx_fail(ctx, WCM_ERR_NOMEM, "out of memory for a network plan");
    }
    p->nlayers = d->nlayers;
    p->nparams = d->nparams;
    p->nrunning = d->nrunning;
    for (int l = 0; l < d->nlayers; l++) {
        const wcm_layer *L = &d->layers[l];
        p->layers[l] = (generic_layer){L->k, L->cin, L->cout, L->bn, (size_t)(L->weight - d->params),
                                       L->bn ? (size_t)(L->gamma - d->params) : 0,
                                       L->bn ? (size_t)(L->running_sd - d->running) : 0};
    }
    int rc = take(ctx, &p->folded, d->nparams);
    if (!rc && !wcm_context_host_visible(ctx)) {
        rc = take(ctx, &p->staged, d->nparams + d->nrunning);
        if (!rc) {
            p->params = p->staged->data;
            p->running = (const float *)p->staged->data + d->nparams;
        }
    }
    if (!rc) rc = wcm_generic_net_load(ctx, (wcm_net_plan *)p, d);
    if (rc) {
        wcm_generic_net_free((wcm_net_plan *)p);
        return rc;
    }
    *out = (wcm_net_plan *)p;
    return WCM_OK;
}

int wcm_generic_net_fits(wcm_context *ctx, const wcm_net_plan *p) {
    (void)ctx, (void)p;
    return 1; /* folded weights depend on no setting */
}

int wcm_generic_net_forward(wcm_context *ctx, wcm_net_plan *plan, int n, int h, int w, const float *x, float *y) {
    generic_plan *p = (generic_plan *)plan;
    const size_t need = (size_t)n * h * w * WCM_CHANNELS;
    if (need > p->work_floats) {
        for (int b = 0; b < 2; b++) {
            wcm_buffer_free(p->work[b]);
            p->work[b] = NULL;
        }
        p->work_floats = 0;
        for (int b = 0; b < 2; b++) {
            const int rc = take(ctx, &p->work[b], need);
            if (rc) return rc;
        }
        p->work_floats = need;
    }
    wcm_error err;
    const float *src = x;
    for (int l = 0; l < p->nlayers; l++) {
        const generic_layer *L = &p->layers[l];
        float *dst = l == p->nlayers - 1 ? y : p->work[l % 2]->data;
        const wcm_conv_shape s = {n, h, w, L->cin, L->cout, L->k};
        const int rc = wcm_op_conv_forward(ctx, &s, src, (const float *)p->folded->data + L->weight, dst,
                                           L->bn ? WCM_CONV_RELU : 0, &err);
        if (rc) return wcm_ctx_fail(ctx, rc, "layer %d: %s", l, err.msg);
        src = dst;
    }
    return WCM_OK;
}

void wcm_generic_net_free(wcm_net_plan *plan) {
    generic_plan *p = (generic_plan *)plan;
    if (!p) return;
    wcm_buffer_free(p->staged);
    wcm_buffer_free(p->folded);
    wcm_buffer_free(p->work[0]);
    wcm_buffer_free(p->work[1]);
    free(p->layers);
    free(p);
}

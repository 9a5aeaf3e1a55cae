/* The CPU backend's network compiler: batch norm folded into the weights,
 * one layer plan per layer (Winograd transforms made once), and a forward
 * pass that fuses runs of 1x1 layers tile by tile and writes Winograd layers
 * over their own input buffer where that pays (see plan_cpu.c), growing its
 * buffers only for a larger input: repeated passes allocate nothing. Every
 * path computes what the layer-by-layer forward computes, bit for bit. */
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_conv.h"

#define MAX_LAYERS 32

typedef struct {
    int k, cin, cout, bn;
    size_t weight, gamma, running; /* offsets into the parameter and running_sd blocks */
    size_t plan;                   /* offset of the layer's plan */
} cpu_layer;

typedef struct {
    wcm_cpu_exec exec; /* level and Winograd setting the plans were made for (no arena) */
    int nlayers, cout;
    cpu_layer *layers;
    float *folded; /* weights with batch norm folded in, laid out as the parameters */
    float *plans;
    float *work[2]; /* activations, with WCM_SHIFT_ROWS spare rows for shifted layers */
    size_t work_size;
    float *scratch;
    size_t scratch_size;
} cpu_plan;

static wcm_conv_shape layer_shape(const cpu_plan *p, int l, int n, int h, int w) {
    const cpu_layer *L = &p->layers[l];
    return (wcm_conv_shape){n, h, w, L->cin, L->cout, L->k};
}

void wcm_cpu_net_free(wcm_net_plan *plan) {
    cpu_plan *p = (cpu_plan *)plan;
    if (!p) return;
    float *owned[] = {p->folded, p->plans, p->work[0], p->work[1], p->scratch};
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++) wcm_free(owned[i]);
    free(p->layers);
    free(p);
}

int wcm_cpu_net_load(wcm_context *ctx, wcm_net_plan *plan, const wcm_net_desc *d) {
    cpu_plan *p = (cpu_plan *)plan;
    for (int l = 0; l < p->nlayers; l++) {
        const cpu_layer *L = &p->layers[l];
        const wcm_conv_shape s = layer_shape(p, l, 1, 1, 1);
        float *folded = p->folded + L->weight;
        wcm_cpu_bn_fold(ctx, (size_t)L->k * L->k * L->cin, L->cout, d->params + L->weight,
                        L->bn ? d->params + L->gamma : NULL, L->bn ? d->running + L->running : NULL, folded);
        wcm_cpu_plan(&p->exec, &s, folded, p->plans + L->plan);
    }
    return WCM_OK;
}

int wcm_cpu_net_compile(wcm_context *ctx, const wcm_net_desc *d, wcm_net_plan **out) {
    if (d->nlayers < 1 || d->nlayers > MAX_LAYERS)
        return wcm_ctx_fail(ctx, WCM_ERR_ARG, "%d layers (at most %d)", d->nlayers, MAX_LAYERS);
    cpu_plan *p = calloc(1, sizeof *p);
    if (!p || !(p->layers = calloc((size_t)d->nlayers, sizeof *p->layers))) {
        free(p);
        return wcm_ctx_fail(ctx, WCM_ERR_NOMEM, "out of memory for a network plan");
    }
    p->exec = wcm_cpu_exec_of(ctx);
    p->exec.arena = NULL;
    p->nlayers = d->nlayers;
    p->cout = d->cout;
    size_t total = 0;
    for (int l = 0; l < d->nlayers; l++) {
        const wcm_layer *L = &d->layers[l];
        cpu_layer *C = &p->layers[l];
        *C = (cpu_layer){L->k, L->cin, L->cout, L->bn, (size_t)(L->weight - d->params),
                         L->bn ? (size_t)(L->gamma - d->params) : 0, L->bn ? (size_t)(L->running_sd - d->running) : 0,
                         total};
        const wcm_conv_shape s = layer_shape(p, l, 1, 1, 1);
        total += (wcm_cpu_plan_size(&p->exec, &s) + 15) & ~(size_t)15; /* keep each plan 64-byte aligned */
    }
    p->folded = wcm_alloc(sizeof(float) * (d->nparams ? d->nparams : 1));
    p->plans = wcm_alloc(sizeof(float) * (total ? total : 1));
    if (!p->folded || !p->plans) {
        wcm_cpu_net_free((wcm_net_plan *)p);
        return wcm_ctx_fail(ctx, WCM_ERR_NOMEM, "out of memory for layer plans (%zu floats)", total);
    }
    wcm_cpu_net_load(ctx, (wcm_net_plan *)p, d);
    *out = (wcm_net_plan *)p;
    return WCM_OK;
}

int wcm_cpu_net_fits(wcm_context *ctx, const wcm_net_plan *plan) {
    const cpu_plan *p = (const cpu_plan *)plan;
    const wcm_cpu_exec now = wcm_cpu_exec_of(ctx);
    return p->exec.variant == now.variant && p->exec.winograd == now.winograd;
}

/* Length of the run of 1x1 layers starting at layer l (0 if layer l is not 1x1). */
static int pointwise_run(const cpu_plan *p, int l) {
    int run = 0;
    while (l + run < p->nlayers && p->layers[l + run].k == 1) run++;
    return run;
}

/* Grow the working memory to what this input size needs. */
static int ensure_scratch(wcm_context *ctx, cpu_plan *p, int n, int h, int w) {
    size_t need = 0;
    int fused = 0, maxc = 0;
    for (int l = 0; l < p->nlayers; l++) {
        const wcm_conv_shape s = layer_shape(p, l, n, h, w);
        const size_t z = wcm_cpu_scratch_size(&p->exec, &s, 0);
        if (z > need) need = z;
        fused |= pointwise_run(p, l) >= 2;
        maxc = s.cin > maxc ? s.cin : maxc;
        maxc = s.cout > maxc ? s.cout : maxc;
    }
    if (fused) {
        const wcm_conv_shape s = {n, h, w, maxc, maxc, 1};
        const size_t z = wcm_cpu_scratch_size(&p->exec, &s, 1);
        if (z > need) need = z;
    }
    if (need <= p->scratch_size) return WCM_OK;
    wcm_free(p->scratch);
    p->scratch = wcm_alloc(sizeof(float) * need);
    p->scratch_size = p->scratch ? need : 0;
    if (!p->scratch) return wcm_ctx_fail(ctx, WCM_ERR_NOMEM, "out of memory for convolution scratch (%zu floats)", need);
    return WCM_OK;
}

/* Two activation buffers of the middle layers' width, plus the spare rows of a shifted layer. */
static int ensure_work(wcm_context *ctx, cpu_plan *p, int n, int h, int w, size_t margin) {
    const size_t need = (size_t)n * h * w * WCM_CHANNELS + margin;
    if (need <= p->work_size) return WCM_OK;
    wcm_free(p->work[0]);
    wcm_free(p->work[1]);
    p->work[0] = wcm_alloc(need * sizeof(float));
    p->work[1] = wcm_alloc(need * sizeof(float));
    p->work_size = need;
    if (!p->work[0] || !p->work[1]) {
        p->work_size = 0;
        return wcm_ctx_fail(ctx, WCM_ERR_NOMEM, "out of memory for activations (%zu floats)", need);
    }
    return WCM_OK;
}

int wcm_cpu_net_forward(wcm_context *ctx, wcm_net_plan *plan, int n, int h, int w, const float *x, float *y) {
    cpu_plan *p = (cpu_plan *)plan;
    if (n < 1 || h < 1 || w < 1) return WCM_OK;
    /* A tile of a larger image takes that image's size-dependent routes. */
    wcm_cpu_exec exec = p->exec;
    exec.route_h = ctx->route_h;
    exec.route_w = ctx->route_w;
    const wcm_cpu_exec *e = &exec;
    /* Shifted layers need WCM_SHIFT_ROWS spare rows in their buffer. */
    const size_t margin = (size_t)WCM_SHIFT_ROWS * w * WCM_CHANNELS;
    int rc = ensure_work(ctx, p, n, h, w, margin);
    if (!rc) rc = ensure_scratch(ctx, p, n, h, w);
    if (rc) return rc;
    /* Ping-pong between the two work buffers; the last layer writes y. A
     * shifted layer stays in its buffer, moving the activations between its
     * start and `margin` floats in (the spare rows alternate sides). */
    const float *src = x;
    int buf = -1, at_margin = 0; /* src: work[buf] (+ margin), or the input */
    for (int l = 0; l < p->nlayers;) {
        const cpu_layer *L = &p->layers[l];
        if (buf >= 0 && l + 1 < p->nlayers && L->k != 1) {
            const wcm_conv_shape s = layer_shape(p, l, n, h, w);
            const float *lp = p->plans + L->plan;
            float *xs = p->work[buf] + (at_margin ? margin : 0);
            if (wcm_cpu_can_shift(e, &s, lp) &&
                wcm_cpu_forward_shifted(e, &s, xs, lp, !at_margin, L->bn ? WCM_CONV_RELU : 0, p->scratch) == 0) {
                at_margin = !at_margin;
                src = p->work[buf] + (at_margin ? margin : 0);
                l++;
                continue;
            }
        }
        const int run = pointwise_run(p, l);
        const int count = run >= 2 ? run : 1;
        buf = buf < 0 ? 0 : buf ^ 1;
        at_margin = 0;
        float *dst = l + count == p->nlayers ? y : p->work[buf];
        if (count > 1) {
            wcm_conv_shape shapes[MAX_LAYERS];
            const float *plans[MAX_LAYERS];
            int flags[MAX_LAYERS];
            for (int q = 0; q < count; q++) {
                shapes[q] = layer_shape(p, l + q, n, h, w);
                plans[q] = p->plans + p->layers[l + q].plan;
                flags[q] = p->layers[l + q].bn ? WCM_CONV_RELU : 0;
            }
            rc = wcm_cpu_forward_pointwise(e, count, shapes, plans, flags, src, dst, p->scratch);
        } else {
            const wcm_conv_shape s = layer_shape(p, l, n, h, w);
            rc = wcm_cpu_forward_plan(e, &s, src, p->plans + L->plan, dst, L->bn ? WCM_CONV_RELU : 0, p->scratch);
        }
        if (rc) return wcm_ctx_fail(ctx, rc, "layer %d: its plan does not fit the route it takes", l);
        src = dst;
        l += count;
    }
    return WCM_OK;
}

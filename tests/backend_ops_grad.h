/* Finite-difference checks of the ops that have a backward, on one backend
 * context, for tests/test_backend_ops.c (included there, after the table).
 * Each compares the backend's analytic gradient of a scalar L = <r, f(a, b)>
 * with central differences of the backend's own forward op at probe entries
 * of its two inputs a and b; the figure is max|analytic - numeric| /
 * max|numeric|. Linear ops (convolutions, the fold, ReLU away from its kink,
 * the quadratic loss) are exact up to rounding, so their steps are large
 * (measured: convolutions up to 8e-6, the fold 5e-8, ReLU and the loss 1e-6;
 * tolerances 1e-4, 1e-6, 1e-5); batch norm uses h = 1e-2, whose truncation
 * and float rounding measured up to 2.4e-5 (tolerance 2e-4). */
#ifndef WCM_BACKEND_OPS_GRAD_H
#define WCM_BACKEND_OPS_GRAD_H

enum { PROBES = 12, POOL_MAX = 12 };

/* Operands in a context's memory, freed together. */
typedef struct {
    wcm_context *ctx;
    wcm_buffer *b[POOL_MAX];
    int n, failed;
    wcm_error err;
} pool;

static void *pool_take(pool *p, size_t bytes) {
    if (p->failed || p->n == POOL_MAX || wcm_buffer_alloc(p->ctx, bytes ? bytes : 1, &p->b[p->n], &p->err)) {
        p->failed = 1;
        return NULL;
    }
    return p->b[p->n++]->data;
}

static void up(pool *p, float *dev, const float *host, size_t n) {
    if (!p->failed && wcm_memcpy_to_backend(p->ctx, dev, host, n * sizeof(float), &p->err)) p->failed = 1;
}

static float *pool_up(pool *p, const float *host, size_t n) {
    float *d = pool_take(p, n * sizeof(float));
    up(p, d, host, n);
    return d;
}

static void down(pool *p, float *host, const float *dev, size_t n) {
    if (!p->failed && wcm_memcpy_to_host(p->ctx, host, dev, n * sizeof(float), &p->err)) p->failed = 1;
}

static void pool_free(pool *p) {
    for (int k = 0; k < p->n; k++) wcm_buffer_free(p->b[k]);
}

/* An op's failure marks the pool (its message in p->err). */
static void op(pool *p, int rc) {
    if (rc) p->failed = 1;
}

static float *host_rand(size_t n, unsigned long long seed, float offset, float scale) {
    float *h = malloc(n * sizeof(float));
    for (size_t j = 0; j < n; j++) h[j] = offset + scale * t_rand(&seed);
    return h;
}

/* The function under test: L(a, b) from host copies of its two inputs, run
 * on the backend (the pool's context) with operands A, B in its memory; y
 * (n values) receives the forward output where the function has one. */
typedef struct fd_fn fd_fn;
struct fd_fn {
    pool *p;
    float *a, *b, *A, *B, *Y, *y;
    const float *r;
    size_t na, nb, n;
    double (*loss)(fd_fn *f);
    const void *op; /* the case's own data */
};

/* <r, y> after the forward of the current a, b. */
static double fd_eval(fd_fn *f) {
    up(f->p, f->A, f->a, f->na);
    up(f->p, f->B, f->b, f->nb);
    return f->loss(f);
}

/* (L(v_i + h) - L(v_i - h)) / 2h, v being a or b. */
static double slope(fd_fn *f, float *v, size_t i, float h) {
    const float keep = v[i];
    v[i] = keep + h;
    const double lp = fd_eval(f);
    v[i] = keep - h;
    const double lm = fd_eval(f);
    v[i] = keep;
    return (lp - lm) / (2.0 * h);
}

/* Probe k spread over n entries. */
static size_t probe_at(int k, size_t n) { return (size_t)((k * 7919ull + 13) % n); }

/* Compares da, db (analytic, host) with slopes at up to PROBES entries of a
 * and of b (skip(f, i) != 0 excludes entry i of a: a kink within reach). */
static void fd_compare(fd_fn *f, const float *da, const float *db, float h, int (*skip)(const fd_fn *, size_t), cmp *ca,
                       cmp *cb) {
    for (int k = 0; k < 4 * PROBES && !f->p->failed && ca->n < PROBES; k++) {
        const size_t i = probe_at(k, f->na);
        if (!skip || !skip(f, i)) cmp_add(ca, da[i], slope(f, f->a, i, h));
    }
    for (int k = 0; da != db && k < PROBES && !f->p->failed && f->nb; k++) {
        const size_t i = probe_at(k, f->nb);
        cmp_add(cb, db[i], slope(f, f->b, i, h));
    }
}

/* ---- convolution: a = x, b = w; dL/dx = backward-data(r), dL/dw = backward-weights(x, r) ---- */

static double conv_loss(fd_fn *f) {
    const op_case *c = f->op;
    const wcm_conv_shape s = conv_shape(c);
    op(f->p, wcm_op_conv_forward(f->p->ctx, &s, f->A, f->B, f->Y, 0, &f->p->err));
    down(f->p, f->y, f->Y, f->n);
    return t_dot(f->y, f->r, f->n);
}

static void grad_conv(wcm_context *ctx, const op_case *c, const char *label) {
    pool p = {.ctx = ctx};
    const wcm_conv_shape s = conv_shape(c);
    fd_fn f = {&p, host_rand(conv_x(c), 1, 0, 1), host_rand(conv_w(c), 2, 0, 0.5f), NULL, NULL, NULL,
               malloc(conv_y(c) * sizeof(float)), host_rand(conv_y(c), 3, 0, 1), conv_x(c), conv_w(c), conv_y(c),
               conv_loss, c};
    f.A = pool_up(&p, f.a, f.na), f.B = pool_up(&p, f.b, f.nb), f.Y = pool_take(&p, f.n * sizeof(float));
    float *R = pool_up(&p, f.r, f.n), *DX = pool_take(&p, f.na * sizeof(float)), *DW = pool_take(&p, f.nb * sizeof(float));
    float *dx = malloc(f.na * sizeof(float)), *dw = malloc(f.nb * sizeof(float));
    if (!p.failed) op(&p, wcm_op_conv_backward_data(ctx, &s, R, f.B, DX, &p.err));
    if (!p.failed) op(&p, wcm_op_conv_backward_weights(ctx, &s, f.A, R, DW, 0, &p.err));
    down(&p, dx, DX, f.na);
    down(&p, dw, DW, f.nb);
    cmp cx = {0}, cw = {0};
    fd_compare(&f, dx, dw, 0.5f, NULL, &cx, &cw); /* linear: no truncation error */
    CHECK(!p.failed && cmp_rel(&cx) < 1e-4 && cmp_rel(&cw) < 1e-4,
          "%s: gradient of <r, conv> by finite differences: input %.1e, weights %.1e (< 1e-4)%s%s", label, cmp_rel(&cx),
          cmp_rel(&cw), p.failed ? ": " : "", p.failed ? p.err.msg : "");
    pool_free(&p);
    free(f.a), free(f.b), free(f.y), free((float *)f.r), free(dx), free(dw);
}

/* ---- batch norm: a = x, b = gamma; sd from the batch or fixed (frozen) ---- */

typedef struct {
    const op_case *c;
    double *MEAN, *SD;
    float *y0; /* the output at the point */
} bn_data;

static double bn_loss(fd_fn *f) {
    const bn_data *d = f->op;
    const size_t m = (size_t)d->c->s[0];
    const int ch = d->c->s[1];
    if (!(d->c->mode & FROZEN)) op(f->p, wcm_op_bn_stats(f->p->ctx, f->A, m, ch, d->MEAN, d->SD, &f->p->err));
    if (!f->p->failed) op(f->p, wcm_op_bn_apply(f->p->ctx, f->A, m, ch, f->B, d->SD, d->c->mode & RELU, f->Y, &f->p->err));
    down(f->p, f->y, f->Y, f->n);
    return t_dot(f->y, f->r, f->n);
}

/* The output at the point is within 0.05 of the ReLU's kink. */
static int near_kink(const fd_fn *f, size_t i) { return fabsf(((const bn_data *)f->op)->y0[i]) < 0.05f; }

static void grad_bn(wcm_context *ctx, const op_case *c, const char *label) {
    pool p = {.ctx = ctx};
    const size_t n = (size_t)c->s[0] * c->s[1];
    const int ch = c->s[1], frozen = (c->mode & FROZEN) != 0;
    bn_data d = {c, pool_take(&p, ch * sizeof(double)), pool_take(&p, ch * sizeof(double)), malloc(n * sizeof(float))};
    fd_fn f = {&p, host_rand(n, 4, 0.3f, 1), malloc(ch * sizeof(float)), NULL, NULL, NULL, malloc(n * sizeof(float)),
               host_rand(n, 5, 0, 1), n, (size_t)ch, n, bn_loss, &d};
    double sd[WCM_CHANNELS];
    for (int k = 0; k < ch; k++) f.b[k] = (k % 2 ? -1.0f : 1.0f) * (0.6f + 0.1f * k), sd[k] = 0.7 + 0.2 * k;
    f.A = pool_up(&p, f.a, n), f.B = pool_up(&p, f.b, (size_t)ch), f.Y = pool_take(&p, n * sizeof(float));
    if (!p.failed && frozen) op(&p, wcm_memcpy_to_backend(ctx, d.SD, sd, ch * sizeof(double), &p.err));
    float *R = pool_up(&p, f.r, n), *DX = pool_take(&p, n * sizeof(float)), *DG = pool_take(&p, ch * sizeof(float));
    float *dx = malloc(n * sizeof(float)), *dg = malloc(ch * sizeof(float));
    fd_eval(&f); /* the statistics and outputs at the point */
    memcpy(d.y0, f.y, n * sizeof(float));
    if (!p.failed)
        op(&p, wcm_op_bn_backward(ctx, f.A, R, (size_t)c->s[0], ch, f.B, frozen ? NULL : d.MEAN, d.SD, c->mode & RELU, DX,
                                  DG, &p.err));
    down(&p, dx, DX, n);
    down(&p, dg, DG, (size_t)ch);
    cmp cx = {0}, cg = {0};
    fd_compare(&f, dx, dg, 1e-2f, c->mode & RELU ? near_kink : NULL, &cx, &cg);
    CHECK(!p.failed && cmp_rel(&cx) < 2e-4 && cmp_rel(&cg) < 2e-4,
          "%s: %s batch norm gradient by finite differences: input %.1e (%d probes), gammas %.1e (< 2e-4)%s%s", label,
          frozen ? "frozen" : "batch-statistics", cmp_rel(&cx), cx.n, cmp_rel(&cg), p.failed ? ": " : "",
          p.failed ? p.err.msg : "");
    pool_free(&p);
    free(f.a), free(f.b), free(f.y), free((float *)f.r), free(dx), free(dg), free(d.y0);
}

/* ---- the inference fold: a = w, b = gamma; out = w * gamma / running ---- */

typedef struct {
    const op_case *c;
    float *RUN;
} fold_data;

static double fold_loss(fd_fn *f) {
    const fold_data *d = f->op;
    op(f->p, wcm_op_bn_fold(f->p->ctx, (size_t)d->c->s[0], d->c->s[1], f->A, f->B, d->RUN, f->Y, &f->p->err));
    down(f->p, f->y, f->Y, f->n);
    return t_dot(f->y, f->r, f->n);
}

static void grad_fold(wcm_context *ctx, const op_case *c, const char *label) {
    pool p = {.ctx = ctx};
    const size_t n = (size_t)c->s[0] * c->s[1];
    const int cout = c->s[1];
    float *run = host_rand((size_t)cout, 9, 1.25f, 0.75f);
    fold_data d = {c, pool_up(&p, run, (size_t)cout)};
    fd_fn f = {&p, host_rand(n, 6, 0, 1), host_rand((size_t)cout, 8, 0, 1), NULL, NULL, NULL, malloc(n * sizeof(float)),
               host_rand(n, 7, 0, 1), n, (size_t)cout, n, fold_loss, &d};
    f.A = pool_up(&p, f.a, n), f.B = pool_up(&p, f.b, (size_t)cout), f.Y = pool_take(&p, n * sizeof(float));
    float *R = pool_up(&p, f.r, n), *DW = pool_take(&p, n * sizeof(float)), *DG = pool_take(&p, cout * sizeof(float));
    float *dw = malloc(n * sizeof(float)), *dg = malloc(cout * sizeof(float));
    if (!p.failed) op(&p, wcm_op_bn_fold_backward(ctx, (size_t)c->s[0], cout, f.A, f.B, d.RUN, R, DW, DG, &p.err));
    down(&p, dw, DW, n);
    down(&p, dg, DG, (size_t)cout);
    cmp cw = {0}, cg = {0};
    fd_compare(&f, dw, dg, 0.5f, NULL, &cw, &cg); /* linear in w and in gamma */
    CHECK(!p.failed && cmp_rel(&cw) < 1e-6 && cmp_rel(&cg) < 1e-6,
          "%s: folded batch norm gradient by finite differences: weights %.1e, gammas %.1e (< 1e-6)", label,
          cmp_rel(&cw), cmp_rel(&cg));
    pool_free(&p);
    free(f.a), free(f.b), free(f.y), free((float *)f.r), free(run), free(dw), free(dg);
}

/* ---- ReLU (a = x: L = <r, relu(x)>) and the loss (a = out, b = target: L = loss) ---- */

static double relu_loss(fd_fn *f) {
    const op_case *c = f->op;
    double l = 0;
    if (c->op == WCM_OP_LOSS_SSE) {
        op(f->p, wcm_op_loss_sse(f->p->ctx, f->n, f->A, f->B, c->s[1], NULL, &l, &f->p->err));
        return l;
    }
    op(f->p, wcm_op_relu(f->p->ctx, f->n, f->A, f->Y, &f->p->err));
    down(f->p, f->y, f->Y, f->n);
    return t_dot(f->y, f->r, f->n);
}

/* Within the step of the ReLU's kink at 0. */
static int near_zero(const fd_fn *f, size_t i) { return fabsf(f->a[i]) < 2e-2f; }

static void grad_relu_or_loss(wcm_context *ctx, const op_case *c, const char *label) {
    pool p = {.ctx = ctx};
    const int loss = c->op == WCM_OP_LOSS_SSE;
    const size_t n = (size_t)c->s[0];
    fd_fn f = {&p, host_rand(n, 10, 0, 1), host_rand(n, 11, 0, 1), NULL, NULL, NULL, malloc(n * sizeof(float)),
               NULL, n, n, n, relu_loss, c};
    f.r = f.b; /* relu: <r, y> with r = b; loss: the target */
    f.A = pool_up(&p, f.a, n), f.B = pool_up(&p, f.b, n), f.Y = pool_take(&p, n * sizeof(float));
    float *G = pool_take(&p, n * sizeof(float)), *g = malloc(n * sizeof(float));
    double l0;
    if (!p.failed && loss) op(&p, wcm_op_loss_sse(ctx, n, f.A, f.B, c->s[1], G, &l0, &p.err));
    if (!p.failed && !loss) op(&p, wcm_op_relu(ctx, n, f.A, f.Y, &p.err));
    if (!p.failed && !loss) op(&p, wcm_op_relu_backward(ctx, n, f.Y, f.B, G, &p.err));
    down(&p, g, G, n);
    f.nb = 0; /* b is fixed: no slopes along it */
    cmp cx = {0}, none = {0};
    fd_compare(&f, g, NULL, 1e-2f, loss ? NULL : near_zero, &cx, &none);
    CHECK(!p.failed && cmp_rel(&cx) < 1e-5, "%s: %s gradient by finite differences: %.1e over %d probes (< 1e-5)", label,
          loss ? "loss" : "ReLU", cmp_rel(&cx), cx.n);
    pool_free(&p);
    free(f.a), free(f.b), free(f.y), free(g);
}

static void grad_check(wcm_context *ctx, const op_case *c, const char *label) {
    switch (c->op) {
        case WCM_OP_CONV_FORWARD: grad_conv(ctx, c, label); break;
        case WCM_OP_BN_APPLY: grad_bn(ctx, c, label); break;
        case WCM_OP_BN_FOLD: grad_fold(ctx, c, label); break;
        case WCM_OP_RELU:
        case WCM_OP_LOSS_SSE: grad_relu_or_loss(ctx, c, label); break;
        default: CHECK(0, "%s: no gradient check for this op", label);
    }
}

#endif

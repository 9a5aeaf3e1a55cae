/* Finite-difference checks of the ops that have a backward, on one backend
 * context, for tests/test_backend_ops.c (included there, after the table).
 * Each compares the backend's analytic gradient of a scalar L = <r, f(...)>
 * with central differences of the backend's own forward op at a few probe
 * entries; the figure is max|analytic - numeric| / max|numeric|. Linear ops
 * (convolutions, the fold, ReLU away from its kink, the quadratic loss) are
 * exact up to rounding, so their steps are large (measured: convolutions up
 * to 8e-6, the fold 5e-8, ReLU and the loss 1e-6; tolerances 1e-4, 1e-6,
 * 1e-5); batch norm uses h = 1e-2, whose truncation and float rounding
 * measured up to 2.4e-5 (tolerance 2e-4). */
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

static float *pool_up(pool *p, const float *host, size_t n) {
    float *d = pool_take(p, n * sizeof(float));
    if (d && wcm_memcpy_to_backend(p->ctx, d, host, n * sizeof(float), &p->err)) p->failed = 1;
    return d;
}

static void up(pool *p, float *dev, const float *host, size_t n) {
    if (!p->failed && wcm_memcpy_to_backend(p->ctx, dev, host, n * sizeof(float), &p->err)) p->failed = 1;
}

static void down(pool *p, float *host, const float *dev, size_t n) {
    if (!p->failed && wcm_memcpy_to_host(p->ctx, host, dev, n * sizeof(float), &p->err)) p->failed = 1;
}

static void pool_free(pool *p) {
    for (int k = 0; k < p->n; k++) wcm_buffer_free(p->b[k]);
}

static float *host_rand(size_t n, unsigned long long seed, float offset, float scale) {
    float *h = malloc(n * sizeof(float));
    for (size_t j = 0; j < n; j++) h[j] = offset + scale * t_rand(&seed);
    return h;
}

static double dot_d(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t j = 0; j < n; j++) s += (double)a[j] * b[j];
    return s;
}

typedef struct {
    double max_diff, max_ref;
    int n;
} fd_cmp;

static void fd_add(fd_cmp *c, double analytic, double numeric) {
    c->max_diff = fmax(c->max_diff, fabs(analytic - numeric));
    c->max_ref = fmax(c->max_ref, fabs(numeric));
    c->n++;
}

static double fd_rel(const fd_cmp *c) { return c->max_diff / (c->max_ref > 0 ? c->max_ref : 1); }

/* Probe k of PROBES spread over n entries. */
static size_t probe_at(int k, size_t n) { return (size_t)((k * 7919ull + 13) % n); }

/* L = <r, conv(x, w)>: dL/dx = backward-data(r), dL/dw = backward-weights(x, r). */
typedef struct {
    pool *p;
    wcm_conv_shape s;
    float *X, *W, *Y;
    float *y;
    const float *r;
} conv_fd;

static double conv_loss(conv_fd *f, const float *x, const float *w) {
    const size_t nx = (size_t)f->s.n * f->s.h * f->s.w * f->s.cin, nw = (size_t)f->s.k * f->s.k * f->s.cin * f->s.cout;
    const size_t ny = (size_t)f->s.n * f->s.h * f->s.w * f->s.cout;
    up(f->p, f->X, x, nx);
    up(f->p, f->W, w, nw);
    if (!f->p->failed && wcm_op_conv_forward(f->p->ctx, &f->s, f->X, f->W, f->Y, 0, &f->p->err)) f->p->failed = 1;
    down(f->p, f->y, f->Y, ny);
    return dot_d(f->y, f->r, ny);
}

static void grad_conv(wcm_context *ctx, const op_case *c, const char *label) {
    pool p = {.ctx = ctx};
    const wcm_conv_shape s = conv_shape(c);
    const size_t nx = conv_x(c), nw = conv_w(c), ny = conv_y(c);
    float *x = host_rand(nx, 1, 0, 1), *w = host_rand(nw, 2, 0, 0.5f), *r = host_rand(ny, 3, 0, 1);
    float *dx = malloc(nx * sizeof(float)), *dw = malloc(nw * sizeof(float)), *y = malloc(ny * sizeof(float));
    conv_fd f = {&p, s, pool_up(&p, x, nx), pool_up(&p, w, nw), pool_take(&p, ny * sizeof(float)), y, r};
    float *R = pool_up(&p, r, ny), *DX = pool_take(&p, nx * sizeof(float)), *DW = pool_take(&p, nw * sizeof(float));
    if (!p.failed && (wcm_op_conv_backward_data(ctx, &s, R, f.W, DX, &p.err) ||
                      wcm_op_conv_backward_weights(ctx, &s, f.X, R, DW, 0, &p.err)))
        p.failed = 1;
    down(&p, dx, DX, nx);
    down(&p, dw, DW, nw);
    const float h = 0.5f; /* linear: no truncation error */
    fd_cmp cx = {0}, cw = {0};
    for (int k = 0; k < PROBES && !p.failed; k++) {
        const size_t i = probe_at(k, nx), j = probe_at(k, nw);
        const float xi = x[i], wj = w[j];
        x[i] = xi + h;
        double lp = conv_loss(&f, x, w);
        x[i] = xi - h;
        double lm = conv_loss(&f, x, w);
        x[i] = xi;
        fd_add(&cx, dx[i], (lp - lm) / (2.0 * h));
        w[j] = wj + h;
        lp = conv_loss(&f, x, w);
        w[j] = wj - h;
        lm = conv_loss(&f, x, w);
        w[j] = wj;
        fd_add(&cw, dw[j], (lp - lm) / (2.0 * h));
    }
    CHECK(!p.failed && fd_rel(&cx) < 1e-4 && fd_rel(&cw) < 1e-4,
          "%s: gradient of <r, conv> by finite differences: input %.1e, weights %.1e (< 1e-4)%s%s", label, fd_rel(&cx),
          fd_rel(&cw), p.failed ? ": " : "", p.failed ? p.err.msg : "");
    pool_free(&p);
    free(x), free(w), free(r), free(dx), free(dw), free(y);
}

/* L = <r, bn_apply(x; sd(x) or a fixed sd, gamma, relu)> and its backward. */
typedef struct {
    pool *p;
    size_t m;
    int c, relu, frozen;
    float *X, *G, *Y;
    double *MEAN, *SD;
    float *y;
    const float *r;
} bn_fd;

static double bn_loss(bn_fd *f, const float *x, const float *g) {
    const size_t n = f->m * f->c;
    up(f->p, f->X, x, n);
    up(f->p, f->G, g, (size_t)f->c);
    wcm_context *ctx = f->p->ctx;
    if (!f->p->failed && !f->frozen && wcm_op_bn_stats(ctx, f->X, f->m, f->c, f->MEAN, f->SD, &f->p->err)) f->p->failed = 1;
    if (!f->p->failed && wcm_op_bn_apply(ctx, f->X, f->m, f->c, f->G, f->SD, f->relu, f->Y, &f->p->err)) f->p->failed = 1;
    down(f->p, f->y, f->Y, n);
    return dot_d(f->y, f->r, n);
}

static void grad_bn(wcm_context *ctx, const op_case *c, const char *label) {
    pool p = {.ctx = ctx};
    const size_t m = (size_t)c->s[0], n = m * c->s[1];
    const int ch = c->s[1], frozen = (c->mode & FROZEN) != 0;
    float *x = host_rand(n, 4, 0.3f, 1), *r = host_rand(n, 5, 0, 1), *g = malloc(ch * sizeof(float));
    float *dx = malloc(n * sizeof(float)), *dg = malloc(ch * sizeof(float)), *y = malloc(n * sizeof(float));
    double sd[WCM_CHANNELS];
    for (int k = 0; k < ch; k++) g[k] = (k % 2 ? -1.0f : 1.0f) * (0.6f + 0.1f * k), sd[k] = 0.7 + 0.2 * k;
    bn_fd f = {&p, m, ch, c->mode & RELU, frozen, pool_up(&p, x, n), pool_up(&p, g, (size_t)ch),
               pool_take(&p, n * sizeof(float)), pool_take(&p, ch * sizeof(double)), pool_take(&p, ch * sizeof(double)),
               y, r};
    if (!p.failed && frozen && wcm_memcpy_to_backend(ctx, f.SD, sd, ch * sizeof(double), &p.err)) p.failed = 1;
    float *R = pool_up(&p, r, n), *DX = pool_take(&p, n * sizeof(float)), *DG = pool_take(&p, ch * sizeof(float));
    bn_loss(&f, x, g); /* the statistics and outputs at the point */
    const float *y0 = y;
    float *ykeep = malloc(n * sizeof(float));
    memcpy(ykeep, y0, n * sizeof(float));
    if (!p.failed && wcm_op_bn_backward(ctx, f.X, R, m, ch, f.G, frozen ? NULL : f.MEAN, f.SD, f.relu, DX, DG, &p.err))
        p.failed = 1;
    down(&p, dx, DX, n);
    down(&p, dg, DG, (size_t)ch);
    const float h = 1e-2f;
    fd_cmp cx = {0}, cg = {0};
    for (int k = 0; k < 4 * PROBES && !p.failed && cx.n < PROBES; k++) {
        const size_t i = probe_at(k, n);
        if (f.relu && fabsf(ykeep[i]) < 0.05f) continue; /* a kink within reach of the step */
        const float xi = x[i];
        x[i] = xi + h;
        const double lp = bn_loss(&f, x, g);
        x[i] = xi - h;
        const double lm = bn_loss(&f, x, g);
        x[i] = xi;
        fd_add(&cx, dx[i], (lp - lm) / (2.0 * h));
    }
    for (int k = 0; k < ch && !p.failed; k++) {
        const float gk = g[k];
        g[k] = gk + h;
        const double lp = bn_loss(&f, x, g);
        g[k] = gk - h;
        const double lm = bn_loss(&f, x, g);
        g[k] = gk;
        fd_add(&cg, dg[k], (lp - lm) / (2.0 * h));
    }
    CHECK(!p.failed && fd_rel(&cx) < 2e-4 && fd_rel(&cg) < 2e-4,
          "%s: %s batch norm gradient by finite differences: input %.1e (%d probes), gammas %.1e (< 2e-4)%s%s", label,
          frozen ? "frozen" : "batch-statistics", fd_rel(&cx), cx.n, fd_rel(&cg), p.failed ? ": " : "",
          p.failed ? p.err.msg : "");
    pool_free(&p);
    free(x), free(r), free(g), free(dx), free(dg), free(y), free(ykeep);
}

/* L = <r, fold(w, gamma, running)>: the gradients of the inference fold. */
static void grad_fold(wcm_context *ctx, const op_case *c, const char *label) {
    pool p = {.ctx = ctx};
    const size_t rows = (size_t)c->s[0], n = rows * c->s[1];
    const int cout = c->s[1];
    float *w = host_rand(n, 6, 0, 1), *r = host_rand(n, 7, 0, 1), *g = host_rand((size_t)cout, 8, 0, 1);
    float *run = host_rand((size_t)cout, 9, 1.25f, 0.75f), *out = malloc(n * sizeof(float));
    float *dw = malloc(n * sizeof(float)), *dg = malloc(cout * sizeof(float));
    float *W = pool_up(&p, w, n), *G = pool_up(&p, g, (size_t)cout), *RUN = pool_up(&p, run, (size_t)cout);
    float *R = pool_up(&p, r, n), *OUT = pool_take(&p, n * sizeof(float)), *DW = pool_take(&p, n * sizeof(float));
    float *DG = pool_take(&p, cout * sizeof(float));
    if (!p.failed && wcm_op_bn_fold_backward(ctx, rows, cout, W, G, RUN, R, DW, DG, &p.err)) p.failed = 1;
    down(&p, dw, DW, n);
    down(&p, dg, DG, (size_t)cout);
    fd_cmp cw = {0}, cg = {0};
    const float h = 0.5f; /* linear in w and in gamma */
    for (int k = 0; k < 2 * PROBES && !p.failed; k++) {
        const int on_gamma = k >= PROBES;
        float *v = on_gamma ? g : w, *V = on_gamma ? G : W;
        const size_t i = probe_at(k, on_gamma ? (size_t)cout : n), len = on_gamma ? (size_t)cout : n;
        double l[2];
        const float keep = v[i];
        for (int side = 0; side < 2; side++) {
            v[i] = keep + (side ? -h : h);
            up(&p, V, v, len);
            if (!p.failed && wcm_op_bn_fold(ctx, rows, cout, W, G, RUN, OUT, &p.err)) p.failed = 1;
            down(&p, out, OUT, n);
            l[side] = dot_d(out, r, n);
        }
        v[i] = keep;
        up(&p, V, v, len);
        fd_add(on_gamma ? &cg : &cw, on_gamma ? dg[i] : dw[i], (l[0] - l[1]) / (2.0 * h));
    }
    CHECK(!p.failed && fd_rel(&cw) < 1e-6 && fd_rel(&cg) < 1e-6,
          "%s: folded batch norm gradient by finite differences: weights %.1e, gammas %.1e (< 1e-6)", label,
          fd_rel(&cw), fd_rel(&cg));
    pool_free(&p);
    free(w), free(r), free(g), free(run), free(out), free(dw), free(dg);
}

/* L = <r, relu(x)> and L = loss(out, target): gradients from their backward entries. */
static void grad_relu_or_loss(wcm_context *ctx, const op_case *c, const char *label) {
    pool p = {.ctx = ctx};
    const int loss = c->op == WCM_OP_LOSS_SSE, batch = loss ? c->s[1] : 1;
    const size_t n = (size_t)c->s[0];
    float *x = host_rand(n, 10, 0, 1), *r = host_rand(n, 11, 0, 1), *g = malloc(n * sizeof(float));
    float *y = malloc(n * sizeof(float));
    float *X = pool_up(&p, x, n), *R = pool_up(&p, r, n), *Y = pool_take(&p, n * sizeof(float));
    float *G = pool_take(&p, n * sizeof(float));
    double l0;
    if (!p.failed && (loss ? wcm_op_loss_sse(ctx, n, X, R, batch, G, &l0, &p.err)
                           : wcm_op_relu(ctx, n, X, Y, &p.err) || wcm_op_relu_backward(ctx, n, Y, R, G, &p.err)))
        p.failed = 1;
    down(&p, g, G, n);
    const float h = 1e-2f;
    fd_cmp cx = {0};
    for (int k = 0; k < 4 * PROBES && !p.failed && cx.n < PROBES; k++) {
        const size_t i = probe_at(k, n);
        if (!loss && fabsf(x[i]) < 2 * h) continue; /* the kink */
        double l[2];
        const float keep = x[i];
        for (int side = 0; side < 2; side++) {
            x[i] = keep + (side ? -h : h);
            up(&p, X, x, n);
            if (!p.failed && (loss ? wcm_op_loss_sse(ctx, n, X, R, batch, NULL, &l[side], &p.err)
                                   : wcm_op_relu(ctx, n, X, Y, &p.err)))
                p.failed = 1;
            if (!loss) {
                down(&p, y, Y, n);
                l[side] = dot_d(y, r, n);
            }
        }
        x[i] = keep;
        fd_add(&cx, g[i], (l[0] - l[1]) / (2.0 * h));
    }
    CHECK(!p.failed && fd_rel(&cx) < 1e-5, "%s: %s gradient by finite differences: %.1e over %d probes (< 1e-5)", label,
          loss ? "loss" : "ReLU", fd_rel(&cx), cx.n);
    pool_free(&p);
    free(x), free(r), free(g), free(y);
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

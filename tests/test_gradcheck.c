/* Finite-difference gradient checks of every training op and of whole
 * networks, on odd sizes, with the reference backend (double accumulation).
 * Each analytic gradient is compared with central differences of a scalar
 * function; the reported figure is max|analytic - numeric| / max|numeric|. */
#include "net_internal.h"
#include "testutil.h"
#include "wcm/backend.h"
#include "wcm/train.h"

static unsigned long long seed = 12345;

static void fill(float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = scale * t_rand(&seed);
}


/* ---- convolution: L = <R, conv(x, w)> ----------------------------------- */
static double conv_loss(const wcm_conv_shape *s, const float *x, const float *w, const float *r, float *y) {
    wcm_op_conv_forward(NULL, s, x, w, y, 0, NULL);
    return t_dot(y, r, (size_t)s->n * s->h * s->w * s->cout);
}

static void check_conv(int k) {
    wcm_conv_shape s = {2, 5, 7, 3, 4, k};
    size_t nx = (size_t)s.n * s.h * s.w * s.cin, ny = (size_t)s.n * s.h * s.w * s.cout, nw = (size_t)k * k * s.cin * s.cout;
    float *x = malloc(nx * 4), *w = malloc(nw * 4), *r = malloc(ny * 4), *y = malloc(ny * 4), *dx = malloc(nx * 4),
          *dw = malloc(nw * 4);
    fill(x, nx, 1), fill(w, nw, 0.5f), fill(r, ny, 1);
    wcm_op_conv_backward_data(NULL, &s, r, w, dx, NULL);
    wcm_op_conv_backward_weights(NULL, &s, x, r, dw, 0, NULL);
    const float h = 1e-2f;
    cmp cd = {0}, cw = {0};
    for (size_t i = 0; i < nx; i++) {
        float keep = x[i];
        x[i] = keep + h;
        double lp = conv_loss(&s, x, w, r, y);
        x[i] = keep - h;
        double lm = conv_loss(&s, x, w, r, y);
        x[i] = keep;
        cmp_add(&cd, dx[i], (lp - lm) / (2.0 * h));
    }
    for (size_t i = 0; i < nw; i++) {
        float keep = w[i];
        w[i] = keep + h;
        double lp = conv_loss(&s, x, w, r, y);
        w[i] = keep - h;
        double lm = conv_loss(&s, x, w, r, y);
        w[i] = keep;
        cmp_add(&cw, dw[i], (lp - lm) / (2.0 * h));
    }
    CHECK(cmp_rel(&cd) < 1e-4, "conv %dx%d backward data (2x5x7, 3->4): rel error %.2e over %d inputs", k, k, cmp_rel(&cd), cd.n);
    CHECK(cmp_rel(&cw) < 1e-4, "conv %dx%d backward weights: rel error %.2e over %d weights", k, k, cmp_rel(&cw), cw.n);
    /* Accumulate flag adds onto what is there. */
    float *dw2 = malloc(nw * 4);
    for (size_t i = 0; i < nw; i++) dw2[i] = 1.0f;
    wcm_op_conv_backward_weights(NULL, &s, x, r, dw2, WCM_CONV_ACCUMULATE, NULL);
    double e = 0;
    for (size_t i = 0; i < nw; i++) e = fmax(e, fabs(dw2[i] - 1.0f - dw[i]));
    CHECK(e < 1e-5, "conv %dx%d backward weights with ACCUMULATE adds to dw (max error %.1e)", k, k, e);
    free(x), free(w), free(r), free(y), free(dx), free(dw), free(dw2);
}

/* ---- batch norm (training mode), with and without the ReLU -------------- */
/* The same function in double precision (numeric reference). */
static double bn_loss(const float *xf, size_t m, int c, const float *gamma, int relu, const float *r, size_t pi, double delta,
                      int perturb_gamma) {
    double mean[8] = {0}, var[8] = {0}, g[8], loss = 0;
    double *x = malloc(m * c * sizeof(double));
    for (size_t i = 0; i < m * c; i++) x[i] = xf[i] + (!perturb_gamma && i == pi ? delta : 0);
    for (int ch = 0; ch < c; ch++) g[ch] = gamma[ch] + (perturb_gamma && (size_t)ch == pi ? delta : 0);
    for (size_t i = 0; i < m * c; i++) mean[i % c] += x[i] / m;
    for (size_t i = 0; i < m * c; i++) var[i % c] += (x[i] - mean[i % c]) * (x[i] - mean[i % c]) / m;
    for (size_t i = 0; i < m * c; i++) {
        double y = x[i] / sqrt(var[i % c] + WCM_BN_EPS) * g[i % c];
        if (relu && y < 0) y = 0;
        loss += y * r[i];
    }
    free(x);
    return loss;
}

static void check_bn(int relu) {
    const size_t m = 3 * 5 * 7;
    const int c = 5;
    float x[3 * 5 * 7 * 5], r[3 * 5 * 7 * 5], dx[3 * 5 * 7 * 5], gamma[5], dgamma[5];
    fill(x, m * c, 1), fill(r, m * c, 1);
    for (int ch = 0; ch < c; ch++) gamma[ch] = 0.5f + 0.2f * ch * (ch % 2 ? -1 : 1);
    for (size_t i = 0; i < m * c; i++) x[i] += 0.3f; /* a non-zero mean: var is taken around it */
    double mean[8], sd[8];
    wcm_bn_stats(x, m, c, mean, sd);
    /* Keep the ReLU's inputs away from its kink. */
    if (relu)
        for (size_t i = 0; i < m * c; i++) {
            int ch = (int)(i % c);
            double v = x[i] / sd[ch];
            if (fabs(v) < 0.05) x[i] += (float)(0.1 * sd[ch]);
        }
    wcm_bn_stats(x, m, c, mean, sd);
    wcm_bn_backward(x, r, m, c, gamma, mean, sd, relu, dx, dgamma);
    const double h = 1e-5;
    cmp cx = {0}, cg = {0};
    for (size_t i = 0; i < m * c; i++)
        cmp_add(&cx, dx[i], (bn_loss(x, m, c, gamma, relu, r, i, h, 0) - bn_loss(x, m, c, gamma, relu, r, i, -h, 0)) / (2 * h));
    for (int ch = 0; ch < c; ch++)
        cmp_add(&cg, dgamma[ch],
                (bn_loss(x, m, c, gamma, relu, r, (size_t)ch, h, 1) - bn_loss(x, m, c, gamma, relu, r, (size_t)ch, -h, 1)) / (2 * h));
    CHECK(cmp_rel(&cx) < 1e-5, "BF batch norm%s backward input (3x5x7 pixels, 5 channels, gradient through sd): rel error %.2e",
          relu ? " + ReLU" : "", cmp_rel(&cx));
    CHECK(cmp_rel(&cg) < 1e-5, "BF batch norm%s backward gammas: rel error %.2e", relu ? " + ReLU" : "", cmp_rel(&cg));
}

static void check_relu_and_loss(void) {
    const size_t n = 3 * 5 * 7;
    float x[3 * 5 * 7], y[3 * 5 * 7], r[3 * 5 * 7], dx[3 * 5 * 7], t[3 * 5 * 7], g[3 * 5 * 7];
    fill(x, n, 1), fill(r, n, 1), fill(t, n, 1);
    for (size_t i = 0; i < n; i++) {
        if (fabsf(x[i]) < 0.05f) x[i] = 0.1f;
        y[i] = x[i] > 0 ? x[i] : 0;
    }
    wcm_relu_backward(y, r, n, dx);
    const float h = 1e-2f;
    cmp c = {0};
    for (size_t i = 0; i < n; i++) {
        double lp = r[i] * fmax(x[i] + h, 0), lm = r[i] * fmax(x[i] - h, 0);
        cmp_add(&c, dx[i], (lp - lm) / (2.0 * h));
    }
    CHECK(cmp_rel(&c) < 1e-5, "ReLU backward: rel error %.2e over %d values", cmp_rel(&c), c.n);
    double loss = wcm_loss_sse(x, t, n, 3, g);
    cmp cl = {0};
    for (size_t i = 0; i < n; i++) {
        float keep = x[i];
        x[i] = keep + h;
        double lp = wcm_loss_sse(x, t, n, 3, NULL);
        x[i] = keep - h;
        double lm = wcm_loss_sse(x, t, n, 3, NULL);
        x[i] = keep;
        cmp_add(&cl, g[i], (lp - lm) / (2.0 * h));
    }
    double direct = 0;
    for (size_t i = 0; i < n; i++) direct += ((double)x[i] - t[i]) * ((double)x[i] - t[i]);
    CHECK(fabs(loss - direct / 3) < 1e-9 * direct, "loss = sum((out - target)^2) / batch (%.6f)", loss);
    CHECK(cmp_rel(&cl) < 1e-4, "loss backward: rel error %.2e", cmp_rel(&cl));
}

/* ---- whole networks ------------------------------------------------------ */
/* The network's training-mode loss computed entirely in double precision,
 * with parameter `pi` moved by `delta`: the numeric reference. With
 * frozen_bn, batch norm divides by running_sd (a constant). */
static int frozen_bn = 0;
static double net_loss_double(const wcm_net *net, const wcm_tensor *in, const wcm_tensor *target, size_t pi, double delta) {
    const int n = in->n, H = in->h, W = in->w;
    const size_t pixels = (size_t)n * H * W;
    double *p = malloc(net->nparams * sizeof(double));
    for (size_t i = 0; i < net->nparams; i++) p[i] = net->params[i] + (i == pi ? delta : 0);
    double *a = malloc(pixels * 64 * sizeof(double)), *z = malloc(pixels * 64 * sizeof(double));
    for (size_t i = 0; i < pixels * in->c; i++) a[i] = in->data[i];
    for (int l = 0; l < net->nlayers; l++) {
        const wcm_layer *L = &net->layers[l];
        const double *w = p + (L->weight - net->params);
        const int K = L->k, R = K / 2, CI = L->cin, CO = L->cout;
        for (int b = 0; b < n; b++)
            for (int i = 0; i < H; i++)
                for (int j = 0; j < W; j++) {
                    double *zp = z + (((size_t)b * H + i) * W + j) * CO;
                    for (int co = 0; co < CO; co++) zp[co] = 0;
                    for (int ky = 0; ky < K; ky++)
                        for (int kx = 0; kx < K; kx++) {
                            int yy = i + ky - R, xx = j + kx - R;
                            if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
                            const double *ap = a + (((size_t)b * H + yy) * W + xx) * CI;
                            for (int ci = 0; ci < CI; ci++)
                                for (int co = 0; co < CO; co++) zp[co] += ap[ci] * w[(((size_t)ky * K + kx) * CI + ci) * CO + co];
                        }
                }
        if (L->bn) {
            const double *g = p + (L->gamma - net->params);
            double mean[64] = {0}, var[64] = {0};
            for (size_t i = 0; i < pixels * CO; i++) mean[i % CO] += z[i] / pixels;
            for (size_t i = 0; i < pixels * CO; i++) var[i % CO] += (z[i] - mean[i % CO]) * (z[i] - mean[i % CO]) / pixels;
            for (size_t i = 0; i < pixels * CO; i++) {
                double sd = frozen_bn ? L->running_sd[i % CO] : sqrt(var[i % CO] + WCM_BN_EPS);
                double y = z[i] / sd * g[i % CO];
                z[i] = y > 0 ? y : 0;
            }
        }
        double *t = a;
        a = z, z = t;
    }
    double loss = 0;
    for (size_t i = 0; i < pixels * net->cout; i++) loss += (a[i] - target->data[i]) * (a[i] - target->data[i]);
    free(p), free(a), free(z);
    return loss / n;
}

/* with_bn: 0 none, 1 batch statistics (the reference), 2 frozen (running_sd). */
static void check_net(wcm_net_kind kind, int rf, int with_bn, int n, int h, int w) {
    wcm_error err;
    wcm_net *net;
    REQUIRE_OK(wcm_net_create(&net, kind, rf, &err), &err);
    wcm_net_init_reference(net, 7);
    for (int l = 0; l < net->nlayers; l++) {
        wcm_layer *L = &net->layers[l];
        /* gammas of order 1 (the reference's are ~0.003): stronger signals through the depth */
        if (L->bn)
            for (int c = 0; c < L->cout; c++) L->gamma[c] = (c % 3 ? 1.0f : -1.0f) * (0.6f + 0.4f * fabsf(t_rand(&seed)));
        if (!with_bn) L->bn = 0;
    }
    wcm_trainer *tr;
    REQUIRE_OK(wcm_trainer_create(&tr, net, &err), &err);
    wcm_tensor in, target, out = {0};
    REQUIRE_OK(wcm_tensor_alloc(&in, n, h, w, net->cin, &err), &err);
    REQUIRE_OK(wcm_tensor_alloc(&target, n, h, w, net->cout, &err), &err);
    fill(in.data, wcm_tensor_count(&in), 1), fill(target.data, wcm_tensor_count(&target), 0.5f);
    if (with_bn == 2) {
        /* running_sd calibrated on this batch (then frozen = batch statistics),
         * then moved by up to +-25% so the two modes differ */
        double *acc = calloc((size_t)net->nlayers * 64, sizeof(double));
        REQUIRE_OK(wcm_train_bn_accumulate(tr, &in, acc, &err), &err);
        REQUIRE_OK(wcm_train_bn_accumulate(tr, &in, acc, &err), &err);
        wcm_train_bn_set_running(tr, acc, 2);
        double e = 0;
        for (int l = 0; l < net->nlayers; l++)
            for (int c = 0; net->layers[l].bn && c < net->layers[l].cout; c++) {
                float *sd = &net->layers[l].running_sd[c];
                e = fmax(e, fabs(*sd / tr->bn_sd[l * 64 + c] - 1));
                *sd *= 1.0f + 0.25f * t_rand(&seed);
            }
        CHECK(e < 1e-6, "batch-norm calibration on one batch (twice) gives its batch sd (max rel diff %.1e)", e);
        free(acc);
    }
    tr->bn_frozen = frozen_bn = with_bn == 2;
    float running0 = net->running_sd[0];
    double loss;
    REQUIRE_OK(wcm_train_gradient(tr, &in, &target, &loss, &out, &err), &err);
    double loss_d = net_loss_double(net, &in, &target, (size_t)-1, 0);
    /* Per layer, a few weights and (with batch norm) a few gammas. */
    cmp cw = {0}, cg = {0};
    for (int l = 0; l < net->nlayers; l++) {
        wcm_layer *L = &net->layers[l];
        size_t count = (size_t)L->k * L->k * L->cin * L->cout;
        for (int probe = 0; probe < 4 + (L->bn ? 3 : 0); probe++) {
            int is_gamma = probe >= 4;
            size_t pi = is_gamma ? (size_t)(L->gamma - net->params) + (size_t)((probe * 17 + l) % L->cout)
                                 : (size_t)(L->weight - net->params) + ((size_t)probe * 7919 + l * 131) % count;
            /* One-sided slopes that disagree mean a ReLU kink lies within the
             * step (a 105-pixel batch has few units per channel): shrink it. */
            double numeric = 0;
            for (double hstep = 1e-6; hstep > 1e-10; hstep /= 10) {
                double plus = (net_loss_double(net, &in, &target, pi, hstep) - loss_d) / hstep;
                double minus = (loss_d - net_loss_double(net, &in, &target, pi, -hstep)) / hstep;
                numeric = 0.5 * (plus + minus);
                if (fabs(plus - minus) <= 1e-5 * fmax(1.0, fabs(numeric))) break;
            }
            cmp_add(is_gamma ? &cg : &cw, tr->grad[pi], numeric);
        }
    }
    const char *what = with_bn == 2 ? "with frozen batch norm" : with_bn ? "with batch norm" : "without batch norm";
    if (with_bn == 2) {
        CHECK(net->running_sd[0] == running0, "frozen batch norm: running_sd unchanged by the training forward");
        wcm_tensor ev = {0};
        REQUIRE_OK(wcm_net_forward(net, &in, &ev, &err), &err);
        double e = 0, r = 0;
        for (size_t i = 0; i < wcm_tensor_count(&ev); i++)
            e = fmax(e, fabs(ev.data[i] - out.data[i])), r = fmax(r, fabs(ev.data[i]));
        CHECK(e <= 1e-5 * r, "frozen batch norm: training forward = evaluation forward (max diff %.1e of %.2g)", e, r);
        wcm_tensor_free(&ev);
    }
    CHECK(fabs(loss - loss_d) <= 1e-5 * loss_d, "whole %s network %s, input %dx%dx%d: float loss %.7g vs double %.7g",
          wcm_net_kind_name(kind), what, n, h, w, loss, loss_d);
    CHECK(cmp_rel(&cw) < 1e-4, "whole %s network %s: conv weight gradients rel error %.2e (%d probes over all layers)",
          wcm_net_kind_name(kind), what, cmp_rel(&cw), cw.n);
    if (with_bn)
        CHECK(cmp_rel(&cg) < 1e-4, "whole %s network %s: gamma gradients rel error %.2e (%d probes)", wcm_net_kind_name(kind),
              what, cmp_rel(&cg), cg.n);
    wcm_tensor_free(&in), wcm_tensor_free(&target), wcm_tensor_free(&out);
    wcm_trainer_free(tr);
    wcm_net_free(net);
}

int main(void) {
    wcm_set_backend(wcm_backend_reference());
    check_conv(3);
    check_conv(1);
    check_bn(0);
    check_bn(1);
    check_relu_and_loss();
    check_net(WCM_NET_FLAT, 5, 1, 3, 5, 7);
    check_net(WCM_NET_CONDITIONAL, 13, 1, 2, 7, 5);
    check_net(WCM_NET_LOWPASS, 0, 1, 2, 3, 5);
    check_net(WCM_NET_FLAT, 5, 0, 3, 5, 7);
    check_net(WCM_NET_CONDITIONAL, 13, 2, 2, 7, 5);
    check_net(WCM_NET_LOWPASS, 0, 2, 2, 3, 5);
    frozen_bn = 0;
    return t_done("test_gradcheck");
}

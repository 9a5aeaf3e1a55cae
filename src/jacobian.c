/* Exact Jacobian rows of flat and multi-scale denoisers by backward passes
 * (vector-Jacobian products) through every network and Haar transform. */
#include "wcm/jacobian.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend_impl.h"
#include "net_internal.h"

/* ---- one network, linearised at its input -------------------------------- */

/* With batch norm frozen, layer l is the convolution with folded weights
 * followed, for middle layers (those with batch norm), by a ReLU whose
 * pattern the forward recorded; the first layer is linear. */
typedef struct {
    const wcm_net *net;
    int h, w;
    float **folded;  /* per layer: weights scaled by gamma / running_sd */
    float **active;  /* per middle layer: its output after the ReLU (1 x h x w x 64) */
} lin_net;

static void lin_net_free(lin_net *ln) {
    if (!ln->net) return;
    for (int l = 0; l < ln->net->nlayers; l++) {
        if (ln->folded) wcm_free(ln->folded[l]);
        if (ln->active) wcm_free(ln->active[l]);
    }
    free(ln->folded);
    free(ln->active);
    memset(ln, 0, sizeof *ln);
}

/* Forward of `net` on x (1 x h x w x cin, host) into y (1 x h x w x cout). */
static int lin_net_init(lin_net *ln, wcm_context *ctx, const wcm_net *net, int h, int w, const float *x, float *y,
                        wcm_error *err) {
    memset(ln, 0, sizeof *ln);
    ln->net = net, ln->h = h, ln->w = w;
    const int L = net->nlayers;
    ln->folded = calloc((size_t)L, sizeof *ln->folded);
    ln->active = calloc((size_t)L, sizeof *ln->active);
    int rc = ln->folded && ln->active ? WCM_OK : WCM_ERR_NOMEM;
    const size_t pixels = (size_t)h * w;
    for (int l = 0; !rc && l < L; l++) {
        const wcm_layer *ly = &net->layers[l];
        const size_t rows = (size_t)ly->k * ly->k * ly->cin;
        ln->folded[l] = wcm_alloc(rows * ly->cout * sizeof(float));
        if (l < L - 1) ln->active[l] = wcm_alloc(pixels * ly->cout * sizeof(float));
        if (!ln->folded[l] || (l < L - 1 && !ln->active[l])) {
            rc = WCM_ERR_NOMEM;
            break;
        }
        if (ly->bn) rc = wcm_op_bn_fold(ctx, rows, ly->cout, ly->weight, ly->gamma, ly->running_sd, ln->folded[l], err);
        else memcpy(ln->folded[l], ly->weight, rows * ly->cout * sizeof(float));
        const wcm_conv_shape s = {1, h, w, ly->cin, ly->cout, ly->k};
        const float *src = l ? ln->active[l - 1] : x;
        float *dst = l < L - 1 ? ln->active[l] : y;
        if (!rc) rc = wcm_op_conv_forward(ctx, &s, src, ln->folded[l], dst, ly->bn ? WCM_CONV_RELU : 0, err);
    }
    if (rc == WCM_ERR_NOMEM) wcm_fail(err, rc, "out of memory for the activations of a %dx%d Jacobian", h, w);
    if (rc) lin_net_free(ln);
    return rc;
}

/* dx (nb x h x w x cin) = J^T dy for nb cotangents dy (nb x h x w x cout);
 * work: two buffers of nb x h x w x 64 floats. */
static int lin_net_backward(const lin_net *ln, wcm_context *ctx, int nb, const float *dy, float *dx, float *work[2],
                            wcm_error *err) {
    const wcm_net *net = ln->net;
    const size_t pixels = (size_t)ln->h * ln->w;
    const float *cur = dy;
    int rc = WCM_OK;
    for (int l = net->nlayers - 1; !rc && l >= 0; l--) {
        const wcm_layer *ly = &net->layers[l];
        float *next = l ? work[l & 1] : dx;
        const wcm_conv_shape s = {nb, ln->h, ln->w, ly->cin, ly->cout, ly->k};
        rc = wcm_op_conv_backward_data(ctx, &s, cur, ln->folded[l], next, err);
        /* Through the ReLU of the previous layer (the first layer has none): zero where it was off. */
        for (int b = 0; !rc && l > 0 && net->layers[l - 1].bn && b < nb; b++) {
            float *g = next + (size_t)b * pixels * ly->cin;
            rc = wcm_op_relu_backward(ctx, pixels * ly->cin, ln->active[l - 1], g, g, err);
        }
        cur = next;
    }
    return rc;
}

/* ---- the model -------------------------------------------------------------- */

struct wcm_jacobian {
    const wcm_model *m;
    wcm_context *ctx;
    unsigned flags;
    int h, w, levels; /* levels 0: a flat model */
    float *value;     /* D(y) or f(y) */
    lin_net flat;     /* flat model, or the low-pass net */
    lin_net cond[WCM_MAX_LEVELS];
};

void wcm_jacobian_free(wcm_jacobian *jac) {
    if (!jac) return;
    lin_net_free(&jac->flat);
    for (int j = 0; j < WCM_MAX_LEVELS; j++) lin_net_free(&jac->cond[j]);
    wcm_free(jac->value);
    free(jac);
}

int wcm_jacobian_height(const wcm_jacobian *jac) { return jac->h; }
int wcm_jacobian_width(const wcm_jacobian *jac) { return jac->w; }
const float *wcm_jacobian_value(const wcm_jacobian *jac) { return jac->value; }

static int nomem(wcm_error *err) { return wcm_fail(err, WCM_ERR_NOMEM, "out of memory for a Jacobian"); }

/* The multi-scale cascade of wcm_denoise, keeping each network's linearisation. */
static int forward_multiscale(wcm_jacobian *jac, const wcm_tensor *x, wcm_error *err) {
    const wcm_model *m = jac->m;
    const int J = m->levels;
    wcm_pyramid p;
    int rc = wcm_haar_forward(x, J, &p, err);
    if (rc) return rc;
    wcm_tensor low = {0}, coarse = {0}, noise = {0}, up = {0};
    wcm_tensor *top = &p.level[J - 1];
    rc = wcm_tensor_alloc(&coarse, 1, top->h, top->w, 1, err);
    if (!rc) rc = wcm_tensor_alloc(&low, 1, top->h, top->w, 1, err);
    if (!rc) {
        for (size_t i = 0; i < wcm_tensor_count(&coarse); i++) coarse.data[i] = top->data[4 * i];
        rc = lin_net_init(&jac->flat, jac->ctx, m->low, top->h, top->w, coarse.data, low.data, err);
    }
    if (!rc)
        for (size_t i = 0; i < wcm_tensor_count(&coarse); i++) low.data[i] = coarse.data[i] - low.data[i];
    for (int j = J - 1; !rc && j >= 0; j--) {
        wcm_tensor *lvl = &p.level[j];
        const size_t px = (size_t)lvl->h * lvl->w;
        for (size_t i = 0; i < px; i++) lvl->data[4 * i] = low.data[i];
        if (jac->flags & WCM_JACOBIAN_LOWPASS_ONLY) {
            for (size_t i = 0; i < px; i++) lvl->data[4 * i + 1] = lvl->data[4 * i + 2] = lvl->data[4 * i + 3] = 0;
        } else {
            rc = wcm_tensor_alloc(&noise, 1, lvl->h, lvl->w, 3, err);
            if (!rc) rc = lin_net_init(&jac->cond[j], jac->ctx, m->cond[j], lvl->h, lvl->w, lvl->data, noise.data, err);
            for (size_t i = 0; !rc && i < px; i++)
                for (int c = 0; c < 3; c++) lvl->data[4 * i + 1 + c] -= noise.data[3 * i + c];
            wcm_tensor_free(&noise);
        }
        if (!rc) rc = wcm_haar_merge(&low, lvl, &up, err);
        wcm_tensor_free(&low);
        low = up;
        memset(&up, 0, sizeof up);
    }
    if (!rc) memcpy(jac->value, low.data, (size_t)jac->h * jac->w * sizeof(float));
    wcm_tensor_free(&low);
    wcm_tensor_free(&coarse);
    wcm_pyramid_free(&p);
    return rc;
}

int wcm_jacobian_create(wcm_jacobian **out, const wcm_model *m, const float *image, int h, int w, unsigned flags,
                        wcm_error *err) {
    *out = NULL;
    if (h < 1 || w < 1) return wcm_fail(err, WCM_ERR_SHAPE, "empty image for a Jacobian");
    if (flags & ~(unsigned)(WCM_JACOBIAN_RESIDUAL | WCM_JACOBIAN_LOWPASS_ONLY))
        return wcm_fail(err, WCM_ERR_ARG, "unknown Jacobian flags 0x%x", flags);
    if (!m->multiscale && (flags & WCM_JACOBIAN_LOWPASS_ONLY))
        return wcm_fail(err, WCM_ERR_ARG, "--lowpass-only needs a multi-scale model");
    if (!m->multiscale && wcm_net_get_kind(m->net) == WCM_NET_CONDITIONAL)
        return wcm_fail(err, WCM_ERR_ARG, "a lone conditional network cannot denoise images (it needs a low-pass)");
    if (m->multiscale && (h % (1 << m->levels) || w % (1 << m->levels)))
        return wcm_fail(err, WCM_ERR_SHAPE, "a %d-level model needs sizes divisible by %d, got %dx%d", m->levels,
                        1 << m->levels, h, w);
    int rc = wcm_check_pixels(1, h, w, "Jacobian input", err);
    if (rc) return rc;
    wcm_jacobian *jac = calloc(1, sizeof *jac);
    if (!jac) return nomem(err);
    jac->m = m, jac->ctx = wcm_context_host(), jac->flags = flags, jac->h = h, jac->w = w;
    jac->levels = m->multiscale ? m->levels : 0;
    const size_t n = (size_t)h * w;
    wcm_tensor x = {0};
    if (!(jac->value = wcm_alloc(n * sizeof(float)))) rc = nomem(err);
    if (!rc) rc = wcm_tensor_alloc(&x, 1, h, w, 1, err);
    if (!rc) {
        memcpy(x.data, image, n * sizeof(float));
        if (m->multiscale) rc = forward_multiscale(jac, &x, err);
        else rc = lin_net_init(&jac->flat, jac->ctx, m->net, h, w, x.data, jac->value, err);
        /* The flat value so far is f; the multi-scale one is D. */
        if (!rc && !m->multiscale && !(flags & WCM_JACOBIAN_RESIDUAL))
            for (size_t i = 0; i < n; i++) jac->value[i] = image[i] - jac->value[i];
        if (!rc && m->multiscale && (flags & WCM_JACOBIAN_RESIDUAL))
            for (size_t i = 0; i < n; i++) jac->value[i] = image[i] - jac->value[i];
    }
    wcm_tensor_free(&x);
    if (rc) {
        wcm_jacobian_free(jac);
        return rc;
    }
    *out = jac;
    return WCM_OK;
}

/* ---- backward passes -------------------------------------------------------- */

/* Scratch of one batch of nb cotangents. */
typedef struct {
    float *work[2];  /* nb x h x w x 64 */
    float *a, *b;    /* nb x h x w x 4 */
} scratch;

static void scratch_free(scratch *s) {
    wcm_free(s->work[0]);
    wcm_free(s->work[1]);
    wcm_free(s->a);
    wcm_free(s->b);
}

static int scratch_alloc(scratch *s, size_t pixels, wcm_error *err) {
    memset(s, 0, sizeof *s);
    s->work[0] = wcm_alloc(pixels * WCM_CHANNELS * sizeof(float));
    s->work[1] = wcm_alloc(pixels * WCM_CHANNELS * sizeof(float));
    s->a = wcm_alloc(pixels * 4 * sizeof(float));
    s->b = wcm_alloc(pixels * 4 * sizeof(float));
    if (s->work[0] && s->work[1] && s->a && s->b) return WCM_OK;
    scratch_free(s);
    return nomem(err);
}

/* The Haar transforms per 2x2 block a b / c d with the normalisation of
 * wcm/haar.h: split S = H / 4 and merge M = H with H the symmetric 4x4
 * Hadamard matrix, so the adjoint of the merge is 4 S and that of the split
 * is M / 4. haar_split4: x (nb x 2h x 2w) -> out (nb x h x w x 4) = 4 S x;
 * haar_merge4: in (nb x h x w x 4) -> x (nb x 2h x 2w) = M in / 4. */
static void haar_split4(int nb, int h, int w, const float *x, float *out) {
    for (int b = 0; b < nb; b++)
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++) {
                const float *r0 = x + ((size_t)b * 2 * h + 2 * i) * 2 * w + 2 * j, *r1 = r0 + 2 * w;
                const float a = r0[0], bb = r0[1], c = r1[0], d = r1[1];
                float *o = out + (((size_t)b * h + i) * w + j) * 4;
                o[0] = a + bb + c + d, o[1] = a + bb - c - d, o[2] = a - bb + c - d, o[3] = a - bb - c + d;
            }
}

static void haar_merge4(int nb, int h, int w, const float *in, float *x) {
    for (int b = 0; b < nb; b++)
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++) {
                const float *q = in + (((size_t)b * h + i) * w + j) * 4;
                float *r0 = x + ((size_t)b * 2 * h + 2 * i) * 2 * w + 2 * j, *r1 = r0 + 2 * w;
                r0[0] = 0.25f * (q[0] + q[1] + q[2] + q[3]);
                r0[1] = 0.25f * (q[0] + q[1] - q[2] - q[3]);
                r1[0] = 0.25f * (q[0] - q[1] + q[2] - q[3]);
                r1[1] = 0.25f * (q[0] - q[1] - q[2] + q[3]);
            }
}

/* g (nb x h x w, the cotangent of D(y)) becomes J_D^T g, in place. */
static int backward_multiscale(wcm_jacobian *jac, int nb, float *g, scratch *s, wcm_error *err) {
    const int J = jac->levels;
    const int lowpass_only = (jac->flags & WCM_JACOBIAN_LOWPASS_ONLY) != 0;
    /* Down the cascade: s->a holds the level's [low, details] cotangents; the
     * details' part of each level is kept in g's storage once consumed
     * (level j at offset sum of the finer levels' sizes), since g's first
     * quarter is all that the coarser levels need. */
    float *details[WCM_MAX_LEVELS];
    float *store = NULL;
    size_t total = 0;
    for (int j = 0; j < J; j++) total += (size_t)(jac->h >> (j + 1)) * (jac->w >> (j + 1)) * 3;
    if (!(store = wcm_alloc(total * nb * sizeof(float)))) return nomem(err);
    int rc = WCM_OK;
    float *cur = g; /* cotangent of the low-pass at the current size */
    size_t off = 0;
    for (int j = 0; !rc && j < J; j++) {
        const int h = jac->h >> (j + 1), w = jac->w >> (j + 1);
        const size_t px = (size_t)h * w;
        details[j] = store + off * nb;
        off += px * 3;
        haar_split4(nb, h, w, cur, s->a); /* adjoint of the merge: [low, denoised details] */
        float *d = details[j];
        if (lowpass_only) {
            memset(d, 0, px * 3 * nb * sizeof(float));
        } else {
            /* details' = details - f_j([low, details]): gd flows back as gd - (J_f^T gd)[1..3], and -(J_f^T gd)[0] to the low. */
            for (size_t i = 0; i < px * nb; i++) memcpy(d + 3 * i, s->a + 4 * i + 1, 3 * sizeof(float));
            rc = lin_net_backward(&jac->cond[j], jac->ctx, nb, d, s->b, s->work, err);
            for (size_t i = 0; !rc && i < px * nb; i++) {
                s->a[4 * i] -= s->b[4 * i];
                for (int c = 0; c < 3; c++) d[3 * i + c] -= s->b[4 * i + 1 + c];
            }
        }
        /* The low-pass cotangent moves into cur's first quarter (nb x h x w). */
        for (size_t i = 0; !rc && i < px * nb; i++) cur[i] = s->a[4 * i];
    }
    /* The coarsest low-pass: x_J = c - f_low(c). */
    const int hc = jac->h >> J, wc = jac->w >> J;
    const size_t pc = (size_t)hc * wc;
    if (!rc) rc = lin_net_backward(&jac->flat, jac->ctx, nb, cur, s->b, s->work, err);
    for (size_t i = 0; !rc && i < pc * nb; i++) cur[i] -= s->b[i];
    /* Up the forward pyramid: adjoint of each split, coarsest first. */
    for (int j = J - 1; !rc && j >= 0; j--) {
        const int h = jac->h >> (j + 1), w = jac->w >> (j + 1);
        const size_t px = (size_t)h * w;
        for (size_t i = 0; i < px * nb; i++) {
            s->a[4 * i] = cur[i];
            memcpy(s->a + 4 * i + 1, details[j] + 3 * i, 3 * sizeof(float));
        }
        haar_merge4(nb, h, w, s->a, cur);
    }
    wcm_free(store);
    return rc;
}

/* Rows of nb pixels (pixels: nb pairs) into rows (nb x h x w). */
static int rows_batch(wcm_jacobian *jac, const int *pixels, int nb, float *rows, scratch *s, wcm_error *err) {
    const size_t n = (size_t)jac->h * jac->w;
    const int residual = (jac->flags & WCM_JACOBIAN_RESIDUAL) != 0;
    memset(rows, 0, (size_t)nb * n * sizeof(float));
    for (int b = 0; b < nb; b++) rows[b * n + (size_t)pixels[2 * b] * jac->w + pixels[2 * b + 1]] = 1.0f;
    int rc;
    if (jac->levels) {
        rc = backward_multiscale(jac, nb, rows, s, err); /* rows of D */
        if (!rc && residual)                             /* f = y - D */
            for (size_t i = 0; i < (size_t)nb * n; i++) rows[i] = -rows[i];
    } else {
        rc = lin_net_backward(&jac->flat, jac->ctx, nb, rows, s->a, s->work, err); /* rows of f */
        if (!rc)
            for (size_t i = 0; i < (size_t)nb * n; i++) rows[i] = residual ? s->a[i] : -s->a[i];
    }
    if (!rc && (jac->levels ? residual : !residual)) /* the identity's one-hots */
        for (int b = 0; b < nb; b++) rows[b * n + (size_t)pixels[2 * b] * jac->w + pixels[2 * b + 1]] += 1.0f;
    return rc;
}

/* Cotangents per backward batch: larger batches keep the convolutions busy. */
#define JACOBIAN_BATCH 8

int wcm_jacobian_rows(wcm_jacobian *jac, const int *pixels, int npix, float *rows, wcm_error *err) {
    for (int q = 0; q < npix; q++)
        if (pixels[2 * q] < 0 || pixels[2 * q] >= jac->h || pixels[2 * q + 1] < 0 || pixels[2 * q + 1] >= jac->w)
            return wcm_fail(err, WCM_ERR_ARG, "pixel (%d, %d) is outside the %dx%d image", pixels[2 * q],
                            pixels[2 * q + 1], jac->h, jac->w);
    if (npix <= 0) return WCM_OK;
    const int batch = npix < JACOBIAN_BATCH ? npix : JACOBIAN_BATCH;
    const size_t n = (size_t)jac->h * jac->w;
    scratch s;
    int rc = scratch_alloc(&s, n * batch, err);
    if (rc) return rc;
    for (int q = 0; !rc && q < npix; q += batch) {
        const int nb = npix - q < batch ? npix - q : batch;
        rc = rows_batch(jac, pixels + 2 * q, nb, rows + (size_t)q * n, &s, err);
    }
    scratch_free(&s);
    return rc;
}

int wcm_jacobian_full(wcm_jacobian *jac, float *jacobian, wcm_error *err) {
    const int n = jac->h * jac->w;
    if (n > WCM_JACOBIAN_FULL_MAX)
        return wcm_fail(err, WCM_ERR_ARG, "the whole Jacobian of a %dx%d image is too large (at most %d pixels)", jac->h,
                        jac->w, WCM_JACOBIAN_FULL_MAX);
    int *pixels = malloc((size_t)n * 2 * sizeof(int));
    if (!pixels) return nomem(err);
    for (int p = 0; p < n; p++) pixels[2 * p] = p / jac->w, pixels[2 * p + 1] = p % jac->w;
    int rc = wcm_jacobian_rows(jac, pixels, n, jacobian, err);
    free(pixels);
    return rc;
}

/* ---- figures ------------------------------------------------------------------ */

int wcm_jacobian_filter_tiles(const float *image, int h, int w, const float *rows, const int *pixels, int npix,
                              int window, int zoom, wcm_tensor *out, wcm_error *err) {
    memset(out, 0, sizeof *out);
    if (npix < 1 || window < 1 || zoom < 1 || (int64_t)window * zoom > 4096)
        return wcm_fail(err, WCM_ERR_ARG, "filter tiles: %d pixels, window %d, zoom %d", npix, window, zoom);
    const int side = window * zoom;
    int rc = wcm_tensor_alloc(out, 2 * npix, side, side, 1, err);
    if (rc) return rc;
    const size_t n = (size_t)h * w;
    for (int q = 0; q < npix; q++) {
        const int pi = pixels[2 * q], pj = pixels[2 * q + 1];
        const float *row = rows + (size_t)q * n;
        float peak = 0;
        for (size_t k = 0; k < n; k++) peak = fabsf(row[k]) > peak ? fabsf(row[k]) : peak;
        float *img_tile = out->data + (size_t)2 * q * side * side, *filt_tile = img_tile + (size_t)side * side;
        for (int y = 0; y < side; y++)
            for (int x = 0; x < side; x++) {
                const int i = pi - window / 2 + y / zoom, j = pj - window / 2 + x / zoom;
                const int inside = i >= 0 && i < h && j >= 0 && j < w;
                const float v = inside ? image[(size_t)i * w + j] : 0.0f;
                const float f = inside ? row[(size_t)i * w + j] : 0.0f;
                img_tile[(size_t)y * side + x] = v < 0 ? 0 : v > 1 ? 1 : v;
                filt_tile[(size_t)y * side + x] = peak > 0 ? 0.5f + 0.5f * f / peak : 0.5f;
            }
    }
    return WCM_OK;
}

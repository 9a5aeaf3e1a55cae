/* The trainer's exact sums (wcm_trainer.exact): a training step whose bits
 * do not depend on how its batch is split over ranks, micro-batches' ranks
 * or threads.
 *
 * Every sum over the batch is rebuilt from per-image terms, each computed by
 * the backend on one image alone (so the same bits whichever rank holds the
 * image), then combined in a way that ignores the split:
 *  - batch statistics and the gamma gradient (a few numbers per image and
 *    channel): every rank puts its images' rows into a zeroed table of the
 *    whole group and the ranks sum the tables (each entry has one non-zero
 *    term, so the "sum" is an exact gather); every rank then adds the rows in
 *    image order, as one process does;
 *  - weight gradients (too large to gather per image): each image's
 *    gradient is rounded to 64-bit fixed point with a scale common to the
 *    group, and integer sums are exact in any order. The scale comes from a
 *    bound on every image's gradient (Cauchy-Schwarz: |dw| <= |x| |dy|),
 *    gathered like the statistics, with room for the whole group's sum, so
 *    nothing overflows; the rounding step is about 2^-61 of the group's
 *    largest possible sum, far below float resolution of the result.
 * Needs a host-visible backend (the fixed-point sums run on the host). */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "net_internal.h"
#include "train_exact.h"

struct wcm_exact_state {
    double *table;     /* group rows x width, for the gathers */
    size_t table_cap;  /* doubles */
    double *local;     /* this rank's rows */
    size_t local_cap;
    float *dw, *dg;    /* one image's weight gradient; per-image gamma gradients */
    size_t dw_cap, dg_cap;
    int64_t *acc;      /* nparams fixed-point weight gradients */
    int *scale_exp;    /* per layer: acc = grad * 2^scale_exp; INT_MIN: all zero; INT_MAX: not finite */
    double *mean;      /* nlayers x 64: the group's batch means */
    double pixels;     /* pixels of the whole group (batch statistics) */
};

void wcm_exact_free(wcm_exact_state *s) {
    if (!s) return;
    free(s->table), free(s->local), free(s->dw), free(s->dg), free(s->acc), free(s->scale_exp), free(s->mean);
    free(s);
}

static int grow(void **p, size_t *cap, size_t count, size_t size, wcm_error *err) {
    if (count <= *cap) return WCM_OK;
    void *q = realloc(*p, (count ? count : 1) * size);
    if (!q) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory for exact sums (%zu values)", count);
    *p = q;
    *cap = count;
    return WCM_OK;
}

static int state(wcm_exact_state **s, const wcm_trainer *t, wcm_error *err) {
    if (*s) return WCM_OK;
    *s = calloc(1, sizeof **s);
    if (*s) (*s)->acc = calloc(t->net->nparams, sizeof(int64_t));
    if (*s) (*s)->scale_exp = calloc((size_t)t->net->nlayers, sizeof(int));
    if (*s) (*s)->mean = calloc((size_t)t->net->nlayers * WCM_CHANNELS, sizeof(double));
    if (!*s || !(*s)->acc || !(*s)->scale_exp || !(*s)->mean) {
        wcm_exact_free(*s);
        *s = NULL;
        return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    }
    return WCM_OK;
}

int wcm_exact_group(const wcm_trainer *t, int n, int *images, int *first, wcm_error *err) {
    if (t->group_images > 0) {
        if (t->group_first < 0 || t->group_first + n > t->group_images)
            return wcm_fail(err, WCM_ERR_ARG, "exact sums: images %d..%d outside the group of %d", t->group_first,
                            t->group_first + n - 1, t->group_images);
        *images = t->group_images, *first = t->group_first;
        return WCM_OK;
    }
    if (wcm_comm_size(t->comm) > 1)
        return wcm_fail(err, WCM_ERR_ARG, "exact sums over several ranks need the group (group_images, group_first)");
    *images = n, *first = 0;
    return WCM_OK;
}

/* table[group x width] = every rank's rows (this rank's `local`, n rows, at
 * row `first`); the ranks' sum of disjoint rows is an exact gather. */
static int gather_rows(wcm_exact_state *s, wcm_trainer *t, int n, int width, wcm_error *err) {
    int group, first;
    int rc = wcm_exact_group(t, n, &group, &first, err);
    if (!rc) rc = grow((void **)&s->table, &s->table_cap, (size_t)group * width, sizeof(double), err);
    if (rc) return rc;
    memset(s->table, 0, sizeof(double) * (size_t)group * width);
    if (n) memcpy(s->table + (size_t)first * width, s->local, sizeof(double) * (size_t)n * width);
    const double t0 = wcm_seconds();
    rc = wcm_comm_allreduce_double(t->comm, s->table, (size_t)group * width, err);
    t->exact_comm_seconds += wcm_seconds() - t0;
    return rc;
}

/* out[k] = sum over the group's rows, in image order. */
static void add_rows(const wcm_exact_state *s, int group, int width, double *out) {
    for (int k = 0; k < width; k++) out[k] = 0;
    for (int i = 0; i < group; i++)
        for (int k = 0; k < width; k++) out[k] += s->table[(size_t)i * width + k];
}

static int group_size(const wcm_trainer *t, int n) {
    int group = n, first;
    wcm_exact_group(t, n, &group, &first, NULL);
    return group;
}

int wcm_exact_bn_stats(wcm_exact_state **sp, wcm_trainer *t, wcm_context *ctx, int l, const float *x, int n, size_t hw,
                       wcm_error *err) {
    const int c = t->net->layers[l].cout, group = group_size(t, n);
    int rc = state(sp, t, err);
    wcm_exact_state *s = *sp;
    /* Rows of c + 1: the image's sums per channel, then its pixel count (a rank without images knows no size). */
    if (!rc) rc = grow((void **)&s->local, &s->local_cap, (size_t)(n ? n : 1) * (c + 1), sizeof(double), err);
    if (!rc && n) rc = wcm_op_channel_partials(ctx, WCM_REDUCE_SUM, (size_t)n * hw, c, x, NULL, hw, s->local, err);
    for (int i = n - 1; !rc && i >= 0; i--) { /* spread rows of c into rows of c + 1, from the last */
        memmove(s->local + (size_t)i * (c + 1), s->local + (size_t)i * c, sizeof(double) * (size_t)c);
        s->local[(size_t)i * (c + 1) + c] = (double)hw;
    }
    if (!rc) rc = gather_rows(s, t, n, c + 1, err);
    if (rc) return rc;
    double *mean = s->mean + (size_t)l * WCM_CHANNELS, sd[WCM_CHANNELS], total[WCM_CHANNELS + 1] = {0};
    add_rows(s, group, c + 1, total);
    s->pixels = total[c];
    if (!(s->pixels > 0)) return wcm_fail(err, WCM_ERR_SHAPE, "no images in this batch");
    for (int ch = 0; ch < c; ch++) mean[ch] = total[ch] / s->pixels;
    if (n) rc = wcm_op_channel_partials(ctx, WCM_REDUCE_SUMSQ, (size_t)n * hw, c, x, mean, hw, s->local, err);
    if (!rc) rc = gather_rows(s, t, n, c, err);
    if (rc) return rc;
    add_rows(s, group, c, sd);
    for (int ch = 0; ch < c; ch++) sd[ch] = sqrt(sd[ch] / s->pixels + WCM_BN_EPS);
    memcpy(t->bn_mean + (size_t)l * WCM_CHANNELS, mean, sizeof(double) * (size_t)c);
    memcpy(t->bn_sd + (size_t)l * WCM_CHANNELS, sd, sizeof(double) * (size_t)c);
    return WCM_OK;
}

int wcm_exact_bn_backward(wcm_exact_state **sp, wcm_trainer *t, wcm_context *ctx, int l, const float *x, float *dy, int n,
                          size_t hw, wcm_error *err) {
    const wcm_net *net = t->net;
    const wcm_layer *L = &net->layers[l];
    const int c = L->cout, group = group_size(t, n);
    const float *gamma = t->params + (L->gamma - net->params);
    const double *sd = t->bn_sd + (size_t)l * WCM_CHANNELS;
    int rc = state(sp, t, err);
    wcm_exact_state *s = *sp;
    if (!rc) rc = grow((void **)&s->local, &s->local_cap, (size_t)(n ? n : 1) * c, sizeof(double), err);
    if (!rc) rc = grow((void **)&s->dg, &s->dg_cap, (size_t)c, sizeof(float), err);
    /* Per image: the constant-sd part of dx in place and dgamma_i = S_i / sd. */
    for (int i = 0; !rc && i < n; i++) {
        const size_t off = (size_t)i * hw * c;
        rc = wcm_op_bn_backward(ctx, x + off, dy + off, hw, c, gamma, NULL, sd, 1, dy + off, s->dg, err);
        for (int ch = 0; !rc && ch < c; ch++) s->local[(size_t)i * c + ch] = s->dg[ch];
    }
    if (!rc) rc = gather_rows(s, t, n, c, err);
    if (rc) return rc;
    double dgamma[WCM_CHANNELS];
    add_rows(s, group, c, dgamma);
    float *g = t->grad + (L->gamma - net->params);
    for (int ch = 0; ch < c; ch++) g[ch] = (float)dgamma[ch];
    if (t->bn_frozen || !n) return WCM_OK;
    /* The term through sd: -gamma / sd * S (x - mean) / (sd^2 M), S = dgamma * sd. */
    const double *mean = s->mean + (size_t)l * WCM_CHANNELS;
    double coef[WCM_CHANNELS];
    for (int ch = 0; ch < c; ch++) coef[ch] = gamma[ch] / sd[ch] * (dgamma[ch] * sd[ch]) / (sd[ch] * sd[ch] * s->pixels);
    const size_t m = (size_t)n * hw;
#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < m; p++)
        for (int ch = 0; ch < c; ch++) dy[p * c + ch] -= (float)(coef[ch] * ((double)x[p * c + ch] - mean[ch]));
    return WCM_OK;
}

void wcm_exact_weights_begin(wcm_exact_state *s, const wcm_trainer *t) {
    if (s) memset(s->acc, 0, sizeof(int64_t) * t->net->nparams);
}

int wcm_exact_weight_grad(wcm_exact_state **sp, wcm_trainer *t, wcm_context *ctx, int l, const wcm_conv_shape *sh,
                          const float *x, const float *dy, wcm_error *err) {
    const wcm_net *net = t->net;
    const wcm_layer *L = &net->layers[l];
    const size_t wsize = (size_t)L->k * L->k * L->cin * L->cout, hw = (size_t)sh->h * sh->w;
    const int n = sh->n, group = group_size(t, n);
    int rc = state(sp, t, err);
    wcm_exact_state *s = *sp;
    if (!rc) rc = grow((void **)&s->local, &s->local_cap, (size_t)(n ? n : 1), sizeof(double), err);
    if (!rc) rc = grow((void **)&s->dw, &s->dw_cap, (size_t)(n ? n : 1) * wsize, sizeof(float), err);
    /* Each image's gradient on its own, and its largest magnitude. */
    const wcm_conv_shape one = {1, sh->h, sh->w, sh->cin, sh->cout, sh->k};
    for (int i = 0; !rc && i < n; i++) {
        float *dw = s->dw + (size_t)i * wsize;
        rc = wcm_op_conv_backward_weights(ctx, &one, x + (size_t)i * hw * sh->cin, dy + (size_t)i * hw * sh->cout, dw, 0,
                                          err);
        float top = 0;
        int bad = 0;
        for (size_t j = 0; !rc && j < wsize; j++) {
            const float a = fabsf(dw[j]);
            bad |= !(a <= FLT_MAX);
            top = a > top ? a : top;
        }
        s->local[i] = bad ? NAN : top;
    }
    if (!rc) rc = gather_rows(s, t, n, 1, err);
    if (rc) return rc;
    double bound = 0;
    int finite = 1;
    for (int i = 0; i < group; i++) {
        finite &= isfinite(s->table[i]) != 0;
        bound = fmax(bound, s->table[i]);
    }
    int e = 0;
    frexp(bound * group, &e); /* the group's sum stays below 2^e, so below 2^61 after scaling by 2^(61 - e) */
    const int k = !finite ? INT_MAX : bound > 0 ? 61 - e : INT_MIN;
    s->scale_exp[l] = k;
    if (k == INT_MAX || k == INT_MIN || !n) return WCM_OK;
    const double scale = ldexp(1.0, k); /* a power of two: the products are exact */
    int64_t *acc = s->acc + (L->weight - net->params);
    const float *dw = s->dw;
#pragma omp parallel for schedule(static)
    for (size_t j = 0; j < wsize; j++) {
        int64_t sum = acc[j];
        for (int i = 0; i < n; i++) sum += llrint((double)dw[(size_t)i * wsize + j] * scale);
        acc[j] = sum;
    }
    return WCM_OK;
}

int wcm_exact_finish(wcm_exact_state **sp, wcm_trainer *t, wcm_error *err) {
    const wcm_net *net = t->net;
    int rc = state(sp, t, err);
    wcm_exact_state *s = *sp;
    const double t0 = wcm_seconds();
    if (!rc) rc = wcm_comm_allreduce_int64(t->comm, s->acc, net->nparams, err);
    t->exact_comm_seconds += wcm_seconds() - t0;
    if (rc) return rc;
    for (int l = 0; l < net->nlayers; l++) {
        const wcm_layer *L = &net->layers[l];
        const size_t wsize = (size_t)L->k * L->k * L->cin * L->cout, off = (size_t)(L->weight - net->params);
        const int k = s->scale_exp[l];
        float *g = t->grad + off;
        const int64_t *acc = s->acc + off;
        const double unscale = k == INT_MAX || k == INT_MIN ? 0 : ldexp(1.0, -k);
        for (size_t j = 0; j < wsize; j++) g[j] = k == INT_MAX ? NAN : k == INT_MIN ? 0.0f : (float)((double)acc[j] * unscale);
    }
    return WCM_OK;
}

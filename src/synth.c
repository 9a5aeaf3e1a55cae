/* Algorithm 2 (SPEC §7): the synthesis / super-resolution cascade over a
 * model's networks, each net run through Algorithm 1 (src/sampler.c).
 * See include/wcm/synth.h for the conventions. */
#include "wcm/synth.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_impl.h"
#include "json.h"

/* Denoiser callbacks --------------------------------------------------------- */

int wcm_net_denoiser(void *ctx, const wcm_tensor *y, wcm_tensor *residual, wcm_error *err) {
    wcm_net *net = ctx;
    if (!net) return wcm_fail(err, WCM_ERR_ARG, "net denoiser: no network");
    if (wcm_net_get_kind(net) == WCM_NET_CONDITIONAL)
        return wcm_fail(err, WCM_ERR_ARG, "net denoiser: a conditional network needs a low-pass (use the conditional denoiser)");
    if (y->c != wcm_net_cin(net))
        return wcm_fail(err, WCM_ERR_SHAPE, "net denoiser: input has %d channels, the network takes %d", y->c, wcm_net_cin(net));
    return wcm_net_forward(net, y, residual, err);
}

int wcm_cond_denoiser_init(wcm_cond_denoiser_ctx *cd, wcm_net *net, const wcm_tensor *low, wcm_error *err) {
    memset(cd, 0, sizeof *cd);
    if (!net || wcm_net_get_kind(net) != WCM_NET_CONDITIONAL || wcm_net_cin(net) != 4 || wcm_net_cout(net) != 3)
        return wcm_fail(err, WCM_ERR_ARG, "conditional denoiser: needs a conditional (4 -> 3) network");
    if (!low || !low->data || low->c != 1)
        return wcm_fail(err, WCM_ERR_SHAPE, "conditional denoiser: the low-pass must be a 1-channel batch");
    wcm_context *run = wcm_net_context(net);
    wcm_tensor low_copy;
    const wcm_tensor *lv;
    int rc = wcm_tensor_alloc_on(run, &cd->input, low->n, low->h, low->w, 4, err);
    if (!rc) rc = wcm_tensor_stage(run, low, &low_copy, &lv, err);
    if (rc) {
        wcm_tensor_free(&cd->input);
        return rc;
    }
    cd->net = net;
    cd->low = low;
    const size_t px = (size_t)low->n * low->h * low->w;
    rc = wcm_op_channels(run, WCM_CHANNELS_COPY, px, 1, lv->data, 1, 0, cd->input.data, 4, 0, err);
    wcm_tensor_free(&low_copy);
    if (rc) wcm_cond_denoiser_free(cd);
    return rc;
}

void wcm_cond_denoiser_free(wcm_cond_denoiser_ctx *cd) {
    if (!cd) return;
    wcm_tensor_free(&cd->input);
    cd->net = NULL;
    cd->low = NULL;
}

int wcm_cond_denoiser(void *ctx, const wcm_tensor *y, wcm_tensor *residual, wcm_error *err) {
    wcm_cond_denoiser_ctx *cd = ctx;
    if (!cd || !cd->net || !cd->input.data) return wcm_fail(err, WCM_ERR_ARG, "conditional denoiser: not initialised");
    const wcm_tensor *in = &cd->input;
    if (y->c != 3 || y->n != in->n || y->h != in->h || y->w != in->w)
        return wcm_fail(err, WCM_ERR_SHAPE, "conditional denoiser: details %dx%dx%dx%d do not match the low-pass %dx%dx%d",
                        y->n, y->h, y->w, y->c, in->n, in->h, in->w);
    /* Channel 0 (x_c) was filled once at init; only the details change. */
    const size_t px = (size_t)y->n * y->h * y->w;
    int rc = wcm_op_channels(wcm_net_context(cd->net), WCM_CHANNELS_COPY, px, 3, y->data, 3, 0, cd->input.data, 4, 1, err);
    return rc ? rc : wcm_net_forward(cd->net, in, residual, err);
}

/* Options and results ------------------------------------------------------------ */

void wcm_synth_options_default(wcm_synth_options *o) {
    memset(o, 0, sizeof *o);
    wcm_sampler_params_default(&o->low);
    for (int j = 0; j < WCM_MAX_LEVELS; j++) wcm_sampler_params_default(&o->cond[j]);
    o->rescale_low = 1;
    o->rescale_max = 0.8;
    o->range_min = -0.5;
    o->range_max = 1.5;
}

void wcm_synth_result_free(wcm_synth_result *r) {
    if (!r) return;
    for (int s = 0; s < WCM_SYNTH_MAX_STAGES; s++) {
        free(r->stage[s].results);
        wcm_tensor_free(&r->scale[s]);
    }
    memset(r, 0, sizeof *r);
}

const wcm_tensor *wcm_synth_final(const wcm_synth_result *r) {
    return r && r->complete && r->nscales > 0 ? &r->scale[r->nscales - 1] : NULL;
}

void wcm_rescale_range(wcm_tensor *x, double max) {
    wcm_context *run = wcm_context_host();
    const size_t per = (size_t)x->h * x->w * x->c;
    for (int k = 0; k < x->n; k++) {
        float *v = x->data + (size_t)k * per;
        double range[2];
        if (wcm_op_reduce(run, WCM_REDUCE_MINMAX, per, v, NULL, 0.0, 0, range, NULL)) continue;
        const float lo = (float)range[0], hi = (float)range[1];
        wcm_op_rescale(run, per, v, lo, (double)hi - (double)lo, max, NULL);
    }
}

/* One net ----------------------------------------------------------------------- */

typedef struct {
    const wcm_synth_options *options;
    const char *name;
    int scale, stage, nstages;
} stage_progress_ctx;

static void forward_progress(void *user, const wcm_progress_info *info) {
    const stage_progress_ctx *sp = user;
    wcm_synth_progress_info pi = {.net = sp->name, .scale = sp->scale, .stage = sp->stage,
                                  .nstages = sp->nstages, .iteration = info};
    sp->options->progress(sp->options->progress_user, &pi);
}

/* What a net samples from: the unconditional net alone, a conditional net
 * given low-pass images, or a flat net under a linear measurement. */
typedef struct {
    wcm_net *net;
    const wcm_tensor *low;      /* conditional: [n] low-pass images */
    const wcm_measurement *ms;  /* constrained: the measurement ... */
    const float *measured;      /* ... and x_c, [n][ms->count] */
} stage_source;

static void gather_rows(float *dst, const float *src, size_t per, const int *idx, int m) {
    for (int i = 0; i < m; i++) memcpy(dst + (size_t)i * per, src + (size_t)idx[i] * per, per * sizeof(float));
}

static void scatter_rows(float *dst, const float *src, size_t per, const int *idx, int m) {
    for (int i = 0; i < m; i++) memcpy(dst + (size_t)idx[i] * per, src + (size_t)i * per, per * sizeof(float));
}

/* Algorithm 1 for samples idx[0..m) of the batch y: each keeps its own random
 * sub-stream (sample_offset + its index in y), so the result of a sample does
 * not depend on which others run with it. Writes their rows of y and their
 * results; a diverged sample is a status, not an error. */
static int sample_rows(const stage_source *src, const wcm_sampler_params *base, const int *idx, int m,
                       wcm_tensor *y, wcm_sample_result *results, wcm_error *err) {
    const size_t per = (size_t)y->h * y->w * y->c, px = (size_t)y->h * y->w;
    wcm_tensor sub = {0}, low_sub = {0}, mean = {0};
    wcm_cond_denoiser_ctx cd;
    wcm_constrained_ctx cc;
    int have_cd = 0, have_cc = 0;
    float *measured = NULL;
    wcm_sample_result *res = calloc((size_t)m, sizeof *res);
    int64_t *index = malloc((size_t)m * sizeof *index);
    int rc = res && index ? wcm_tensor_alloc(&sub, m, y->h, y->w, y->c, err)
                          : wcm_fail(err, WCM_ERR_NOMEM, "sampler: out of memory");
    wcm_sampler_params p = *base;
    p.sample_index = index;
    /* The constrained denoiser's projections run on the host. */
    p.context = src->ms ? wcm_context_host() : wcm_net_context(src->net);
    for (int i = 0; !rc && i < m; i++) index[i] = base->sample_offset + idx[i];
    wcm_denoiser_fn fn = wcm_net_denoiser;
    void *ctx = src->net;
    if (!rc && src->low) {
        rc = wcm_tensor_alloc(&low_sub, m, y->h, y->w, 1, err);
        if (!rc) gather_rows(low_sub.data, src->low->data, px, idx, m);
        if (!rc) rc = wcm_cond_denoiser_init(&cd, src->net, &low_sub, err);
        have_cd = !rc;
        fn = wcm_cond_denoiser, ctx = &cd;
    } else if (!rc && src->ms) {
        const size_t count = src->ms->count;
        measured = malloc((size_t)m * count * sizeof(float));
        if (!measured) rc = wcm_fail(err, WCM_ERR_NOMEM, "sampler: out of memory");
        for (int i = 0; !rc && i < m; i++)
            memcpy(measured + (size_t)i * count, src->measured + (size_t)idx[i] * count, count * sizeof(float));
        if (!rc) rc = wcm_constrained_init(&cc, src->ms, measured, m, wcm_net_denoiser, src->net, err);
        have_cc = !rc;
        if (!rc) rc = wcm_tensor_alloc(&mean, m, y->h, y->w, y->c, err);
        if (!rc) rc = wcm_constrained_init_mean(src->ms, measured, &mean, err);
        p.init_mean = &mean;
        fn = wcm_constrained_denoiser, ctx = &cc;
    }
    if (!rc) {
        rc = wcm_sample(fn, ctx, &p, &sub, res, err);
        if (rc == WCM_ERR_NUMERIC) rc = WCM_OK; /* per-sample status, handled by the caller */
    }
    if (!rc) {
        scatter_rows(y->data, sub.data, per, idx, m);
        for (int i = 0; i < m; i++) {
            res[i].retries = results[idx[i]].retries;
            results[idx[i]] = res[i];
        }
    }
    if (have_cd) wcm_cond_denoiser_free(&cd);
    if (have_cc) wcm_constrained_free(&cc);
    wcm_tensor_free(&sub);
    wcm_tensor_free(&low_sub);
    wcm_tensor_free(&mean);
    free(measured);
    free(res);
    free(index);
    return rc;
}

/* Health check of the image each sample gives at this net's scale: finite and
 * within [range_min, range_max]. Marks failing samples (of those in check[])
 * diverged with reason RANGE. */
static int check_range(const stage_source *src, const wcm_synth_options *o, const wcm_tensor *y,
                       const unsigned char *check, wcm_sample_result *results, wcm_error *err) {
    if (!(o->range_max > o->range_min)) return WCM_OK;
    wcm_tensor merged = {0};
    const wcm_tensor *img = y;
    if (src->low) {
        int rc = wcm_haar_merge(src->low, y, &merged, err);
        if (rc) return rc;
        img = &merged;
    }
    const size_t per = (size_t)img->h * img->w * img->c;
    for (int k = 0; k < img->n; k++) {
        if (!check[k] || results[k].status == WCM_SAMPLE_DIVERGED) continue;
        const wcm_tensor sample = {1, img->h, img->w, img->c, img->data + (size_t)k * per, NULL};
        if (wcm_tensor_first_outside(&sample, (float)o->range_min, (float)o->range_max) < per) {
            results[k].status = WCM_SAMPLE_DIVERGED; /* out of range or NaN */
            results[k].reason = WCM_DIVERGED_RANGE;
        }
    }
    wcm_tensor_free(&merged);
    return WCM_OK;
}

/* Run Algorithm 1 for stage r->nstages on batch y (allocated to the wanted
 * shape) for the samples still alive, check them, redraw diverged ones up to
 * o->retries times, and record the stage. alive[k] is cleared for samples that
 * end diverged. Returns an error only for failures other than divergence. */
static int run_stage(wcm_synth_result *r, const wcm_synth_options *o, const char *name, int scale, int nstages,
                     const wcm_sampler_params *base, uint64_t stream, const stage_source *src,
                     unsigned char *alive, wcm_tensor *y, wcm_error *err) {
    const int index = r->nstages, n = y->n;
    const size_t per = (size_t)y->h * y->w * y->c;
    wcm_synth_stage *st = &r->stage[index];
    memset(st, 0, sizeof *st);
    snprintf(st->name, sizeof st->name, "%s", name);
    st->scale = scale;
    st->h = y->h, st->w = y->w, st->c = y->c;
    st->batch = n;
    st->results = calloc((size_t)n, sizeof *st->results);
    int *idx = malloc((size_t)n * sizeof *idx);
    unsigned char *todo = malloc((size_t)n);
    if (!st->results || !idx || !todo) {
        free(idx);
        free(todo);
        return wcm_fail(err, WCM_ERR_NOMEM, "%s: out of memory", name);
    }
    r->nstages = index + 1;

    wcm_sampler_params p = *base;
    p.seed = o->seed;
    p.stream = stream;
    p.sample_offset = o->sample_offset;
    p.sample_index = NULL;
    p.init_mean = NULL;
    stage_progress_ctx sp = {o, st->name, scale, index, nstages};
    p.progress = o->progress ? forward_progress : NULL;
    p.progress_user = o->progress ? &sp : NULL;

    const double t0 = wcm_seconds();
    int rc = WCM_OK;
    for (int k = 0; k < n; k++) {
        todo[k] = alive[k];
        if (!alive[k]) {
            st->results[k].status = WCM_SAMPLE_SKIPPED;
            memset(y->data + (size_t)k * per, 0, per * sizeof(float));
        }
    }
    for (int attempt = 0; !rc && attempt <= o->retries; attempt++) {
        int m = 0;
        for (int k = 0; k < n; k++)
            if (todo[k]) idx[m++] = k;
        if (!m) break;
        p.stream = attempt ? WCM_SYNTH_RETRY_STREAM(stream, attempt) : stream;
        for (int i = 0; i < m; i++) st->results[idx[i]].retries = attempt;
        rc = sample_rows(src, &p, idx, m, y, st->results, err);
        if (!rc) rc = check_range(src, o, y, todo, st->results, err);
        for (int k = 0; !rc && k < n; k++) todo[k] = todo[k] && st->results[k].status == WCM_SAMPLE_DIVERGED;
    }
    st->seconds = wcm_seconds() - t0;
    free(idx);
    free(todo);

    st->params = p;
    st->params.stream = stream;
    st->params.progress = NULL;
    st->params.progress_user = NULL;
    st->params.trace = NULL;
    st->params.trace_user = NULL;
    st->params.init_mean = NULL;
    st->params.sample_index = NULL;
    st->params.context = NULL;
    if (rc) return wcm_fail_context(err, rc, "%s", name);
    for (int k = 0; k < n; k++) {
        const wcm_sample_result *res = &st->results[k];
        if (res->iterations > st->max_iterations) st->max_iterations = res->iterations;
        st->cap_samples += res->status == WCM_SAMPLE_CAP;
        st->skipped_samples += res->status == WCM_SAMPLE_SKIPPED;
        st->retried_samples += res->retries > 0;
        if (res->status == WCM_SAMPLE_DIVERGED) {
            st->diverged_samples++;
            alive[k] = 0;
        }
    }
    r->cap_samples += st->cap_samples;
    r->diverged += st->diverged_samples;
    if (o->progress) {
        wcm_synth_progress_info pi = {.net = st->name, .scale = scale, .stage = index, .nstages = nstages,
                                      .finished = st};
        o->progress(o->progress_user, &pi);
    }
    return WCM_OK;
}

/* Push a copy of img as the next scale image. */
static int push_scale(wcm_synth_result *r, const wcm_tensor *img, wcm_error *err) {
    if (r->nscales >= WCM_SYNTH_MAX_STAGES) return wcm_fail(err, WCM_ERR_ARG, "synthesis: too many scales");
    int rc = wcm_tensor_copy(&r->scale[r->nscales], img, err);
    if (!rc) r->nscales++;
    return rc;
}

static int check_net(const wcm_net *net, const char *what, wcm_error *err) {
    if (!net) return wcm_fail(err, WCM_ERR_ARG, "model has no %s network", what);
    return WCM_OK;
}

/* The conditional cascade from r->scale[r->nscales - 1], using nets cond[levels-1..0]. */
static int run_cascade(wcm_net *const *cond, int levels, const wcm_synth_options *o, int nstages,
                       unsigned char *alive, wcm_synth_result *r, wcm_error *err) {
    int rc = WCM_OK;
    for (int j = levels - 1; j >= 0 && !rc; j--) {
        const wcm_tensor *low = &r->scale[r->nscales - 1];
        wcm_tensor details = {0}, merged = {0};
        char name[16];
        snprintf(name, sizeof name, "cond%d", j);
        rc = wcm_tensor_alloc(&details, low->n, low->h, low->w, 3, err);
        if (rc) return wcm_fail_context(err, rc, "%s", name);
        const stage_source src = {.net = cond[j], .low = low};
        rc = run_stage(r, o, name, j, nstages, &o->cond[j], WCM_SYNTH_STREAM_COND(j), &src, alive, &details, err);
        if (!rc) rc = wcm_haar_merge(low, &details, &merged, err);
        if (!rc) {
            /* Take ownership instead of copying. */
            r->scale[r->nscales++] = merged;
            memset(&merged, 0, sizeof merged);
        }
        wcm_tensor_free(&merged);
        wcm_tensor_free(&details);
    }
    return rc;
}

/* After a cascade that ran to its end: WCM_OK, or WCM_ERR_NUMERIC naming the
 * first diverged sample when some diverged (the result stays complete). */
static int cascade_status(const wcm_synth_result *r, int n, wcm_error *err) {
    if (!r->diverged) return WCM_OK;
    for (int s = 0; s < r->nstages; s++) {
        const wcm_synth_stage *st = &r->stage[s];
        for (int k = 0; k < st->batch; k++) {
            const wcm_sample_result *res = &st->results[k];
            if (res->status != WCM_SAMPLE_DIVERGED) continue;
            char retried[48] = "";
            if (res->retries) snprintf(retried, sizeof retried, " after %d redraw%s", res->retries, res->retries > 1 ? "s" : "");
            return wcm_fail(err, WCM_ERR_NUMERIC, "%d of %d sample%s diverged; first: sample %d at %s, %s at iteration %d%s",
                            r->diverged, n, n == 1 ? "" : "s", k, st->name, wcm_divergence_reason_name(res->reason),
                            res->iterations, retried);
        }
    }
    return wcm_fail(err, WCM_ERR_NUMERIC, "%d of %d samples diverged", r->diverged, n);
}

static int check_options(const wcm_synth_options *o, wcm_error *err) {
    if (!o) return WCM_OK;
    if (o->rescale_low && !(o->rescale_max > 0 && isfinite(o->rescale_max)))
        return wcm_fail(err, WCM_ERR_ARG, "synthesis: rescale maximum must be positive (got %g)", o->rescale_max);
    if (o->sample_offset < 0)
        return wcm_fail(err, WCM_ERR_ARG, "synthesis: sample offset must be >= 0 (got %lld)", (long long)o->sample_offset);
    if (!(o->range_min <= o->range_max) || isnan(o->range_min))
        return wcm_fail(err, WCM_ERR_ARG, "synthesis: bad value range [%g, %g]", o->range_min, o->range_max);
    if (o->retries < 0 || o->retries > 1000)
        return wcm_fail(err, WCM_ERR_ARG, "synthesis: retries must be in 0..1000 (got %d)", o->retries);
    return WCM_OK;
}

/* Shared entry of the public calls: NULL options mean the defaults; validate. */
static int begin_options(const wcm_synth_options **o, wcm_synth_options *defaults, wcm_error *err) {
    if (!*o) {
        wcm_synth_options_default(defaults);
        *o = defaults;
    }
    return check_options(*o, err);
}

static unsigned char *all_alive(int n, wcm_error *err) {
    unsigned char *alive = malloc((size_t)n);
    if (!alive) wcm_fail(err, WCM_ERR_NOMEM, "synthesis: out of memory");
    else memset(alive, 1, (size_t)n);
    return alive;
}

int wcm_synth_sample(const wcm_model *m, int n, int low_h, int low_w, const wcm_synth_options *o,
                     wcm_synth_result *r, wcm_error *err) {
    memset(r, 0, sizeof *r);
    wcm_synth_options defaults;
    int rc = begin_options(&o, &defaults, err);
    if (rc) return rc;
    if (n < 1) return wcm_fail(err, WCM_ERR_ARG, "synthesis: the number of samples must be at least 1 (got %d)", n);
    if (low_h < 1 || low_w < 1)
        return wcm_fail(err, WCM_ERR_ARG, "synthesis: bad low-pass size %dx%d", low_h, low_w);
    wcm_net *uncond = m->multiscale ? m->low : m->net;
    rc = check_net(uncond, m->multiscale ? "low-pass" : "", err);
    if (rc) return rc;
    if (wcm_net_get_kind(uncond) == WCM_NET_CONDITIONAL)
        return wcm_fail(err, WCM_ERR_ARG,
                        "a lone conditional network cannot synthesise images (it needs a low-pass; use super-resolution)");
    const int levels = m->multiscale ? m->levels : 0;
    for (int j = 0; j < levels; j++) {
        char what[32];
        snprintf(what, sizeof what, "conditional (scale %d)", j);
        if ((rc = check_net(m->cond[j], what, err))) return rc;
    }
    unsigned char *alive = all_alive(n, err);
    if (!alive) return WCM_ERR_NOMEM;
    const double t0 = wcm_seconds();
    wcm_tensor y = {0};
    rc = wcm_tensor_alloc(&y, n, low_h, low_w, 1, err);
    const stage_source src = {.net = uncond};
    if (!rc)
        rc = run_stage(r, o, m->multiscale ? "low" : "net", -1, levels + 1, &o->low, WCM_SYNTH_STREAM_LOW, &src,
                       alive, &y, err);
    if (!rc) {
        if (o->rescale_low) wcm_rescale_range(&y, o->rescale_max);
        r->scale[r->nscales++] = y; /* owned by the result now */
        memset(&y, 0, sizeof y);
        rc = run_cascade(m->cond, levels, o, levels + 1, alive, r, err);
    }
    wcm_tensor_free(&y);
    free(alive);
    r->complete = rc == WCM_OK;
    r->seconds = wcm_seconds() - t0;
    return rc ? rc : cascade_status(r, n, err);
}

int wcm_synth_superres(const wcm_model *m, const wcm_tensor *low, const wcm_synth_options *o,
                       wcm_synth_result *r, wcm_error *err) {
    memset(r, 0, sizeof *r);
    wcm_synth_options defaults;
    int rc = begin_options(&o, &defaults, err);
    if (rc) return rc;
    if (!low || !low->data || low->n < 1 || low->h < 1 || low->w < 1)
        return wcm_fail(err, WCM_ERR_ARG, "super-resolution: empty input");
    if (low->c != 1)
        return wcm_fail(err, WCM_ERR_SHAPE, "super-resolution needs gray (1-channel) images, got %d channels", low->c);
    if (!wcm_tensor_all_finite(low)) return wcm_fail(err, WCM_ERR_NUMERIC, "super-resolution: input contains NaN or Inf");
    if (o->range_max > o->range_min) {
        size_t bad = wcm_tensor_first_outside(low, (float)o->range_min, (float)o->range_max);
        if (bad < wcm_tensor_count(low))
            return wcm_fail(err, WCM_ERR_ARG,
                            "super-resolution: input value %g is outside the image range [%g, %g] "
                            "(images are in [0, 1])",
                            (double)low->data[bad], o->range_min, o->range_max);
    }
    wcm_net *lone[1];
    wcm_net *const *cond;
    int levels;
    if (m->multiscale) {
        cond = m->cond;
        levels = m->levels;
    } else if (m->net && wcm_net_get_kind(m->net) == WCM_NET_CONDITIONAL) {
        lone[0] = m->net;
        cond = lone;
        levels = 1;
    } else {
        return wcm_fail(err, WCM_ERR_ARG,
                        "super-resolution needs a multi-scale model or a conditional network "
                        "(for a flat denoiser use the constrained sampler, `wcm inverse`)");
    }
    for (int j = 0; j < levels; j++) {
        char what[32];
        snprintf(what, sizeof what, "conditional (scale %d)", j);
        if ((rc = check_net(cond[j], what, err))) return rc;
    }
    if ((double)low->h * (1 << levels) > 65536 || (double)low->w * (1 << levels) > 65536)
        return wcm_fail(err, WCM_ERR_ARG, "super-resolution: output %dx%d times %d is too large", low->h, low->w,
                        1 << levels);
    unsigned char *alive = all_alive(low->n, err);
    if (!alive) return WCM_ERR_NOMEM;
    const double t0 = wcm_seconds();
    rc = push_scale(r, low, err);
    if (!rc) rc = run_cascade(cond, levels, o, levels, alive, r, err);
    free(alive);
    r->complete = rc == WCM_OK;
    r->seconds = wcm_seconds() - t0;
    return rc ? rc : cascade_status(r, low->n, err);
}

int wcm_synth_inverse(const wcm_model *m, const wcm_measurement *ms, const float *measured, int n,
                      const wcm_synth_options *o, wcm_synth_result *r, wcm_error *err) {
    memset(r, 0, sizeof *r);
    wcm_synth_options defaults;
    int rc = begin_options(&o, &defaults, err);
    if (rc) return rc;
    if (m->multiscale || !m->net || wcm_net_get_kind(m->net) == WCM_NET_CONDITIONAL)
        return wcm_fail(err, WCM_ERR_ARG, "the constrained sampler needs a flat (1 -> 1) network, not a %s model",
                        m->multiscale ? "multi-scale" : "conditional");
    if (n < 1) return wcm_fail(err, WCM_ERR_ARG, "inverse: the number of samples must be at least 1 (got %d)", n);
    unsigned char *alive = all_alive(n, err);
    if (!alive) return WCM_ERR_NOMEM;
    const double t0 = wcm_seconds();
    wcm_sampler_params p = o->low;
    if (p.stop_rule == WCM_STOP_DEFAULT) p.stop_rule = WCM_STOP_SIGMA;
    wcm_tensor y = {0};
    rc = wcm_tensor_alloc(&y, n, ms->h, ms->w, ms->c, err);
    const stage_source src = {.net = m->net, .ms = ms, .measured = measured};
    if (!rc) rc = run_stage(r, o, "net", -1, 1, &p, WCM_SYNTH_STREAM_LOW, &src, alive, &y, err);
    if (!rc) {
        r->scale[r->nscales++] = y;
        memset(&y, 0, sizeof y);
    }
    wcm_tensor_free(&y);
    free(alive);
    r->complete = rc == WCM_OK;
    r->seconds = wcm_seconds() - t0;
    return rc ? rc : cascade_status(r, n, err);
}

int wcm_synth_lowpass(const wcm_tensor *img, int levels, wcm_tensor *low, wcm_error *err) {
    memset(low, 0, sizeof *low);
    if (levels < 1 || levels > WCM_MAX_LEVELS)
        return wcm_fail(err, WCM_ERR_ARG, "low-pass: levels must be in 1..%d (got %d)", WCM_MAX_LEVELS, levels);
    wcm_pyramid p;
    int rc = wcm_haar_forward(img, levels, &p, err);
    if (rc) return rc;
    const wcm_tensor *top = &p.level[levels - 1];
    rc = wcm_tensor_alloc(low, top->n, top->h, top->w, 1, err);
    if (!rc)
        rc = wcm_op_channels(wcm_context_host(), WCM_CHANNELS_COPY, wcm_tensor_count(low), 1, top->data, 4, 0, low->data,
                             1, 0, err);
    wcm_pyramid_free(&p);
    return rc;
}

int wcm_synth_lowpass_only(const wcm_tensor *low, int levels, wcm_tensor *out, wcm_error *err) {
    memset(out, 0, sizeof *out);
    if (levels < 0 || levels > WCM_MAX_LEVELS || low->c != 1)
        return wcm_fail(err, WCM_ERR_ARG, "low-pass only: needs 1 channel and 0..%d levels", WCM_MAX_LEVELS);
    const int f = 1 << levels;
    int rc = wcm_tensor_alloc(out, low->n, low->h * f, low->w * f, 1, err);
    if (!rc) rc = wcm_op_upsample(wcm_context_host(), low->n, low->h, low->w, 1, f, low->data, out->data, err);
    return rc;
}

/* Run log ---------------------------------------------------------------------------- */

const char *wcm_synth_stage_status(const wcm_synth_stage *st) {
    return st->diverged_samples ? "diverged" : st->cap_samples ? "cap" : "converged";
}

void wcm_synth_cap_warning(const wcm_synth_stage *st, char *buf, size_t size) {
    double lo = INFINITY, hi = 0;
    buf[0] = 0;
    if (!st->cap_samples) return;
    for (int k = 0; k < st->batch; k++)
        if (st->results[k].status == WCM_SAMPLE_CAP) {
            lo = fmin(lo, st->results[k].final_sigma);
            hi = fmax(hi, st->results[k].final_sigma);
        }
    snprintf(buf, size,
             "%s: %d of %d sample%s stopped at the iteration cap (%d) before the stopping rule was met "
             "(final sigma %.4g..%.4g)",
             st->name, st->cap_samples, st->batch, st->batch == 1 ? "" : "s", st->params.max_iters, lo, hi);
}

/* snprintf at buf + *len, keeping *len within size (truncates quietly). */
static void append(char *buf, size_t size, size_t *len, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void append(char *buf, size_t size, size_t *len, const char *fmt, ...) {
    if (*len >= size) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *len, size - *len, fmt, ap);
    va_end(ap);
    if (n > 0) *len = *len + (size_t)n < size ? *len + (size_t)n : size - 1;
}

void wcm_synth_divergence_summary(const wcm_synth_stage *st, char *buf, size_t size) {
    enum { NREASONS = WCM_DIVERGED_RANGE + 1 };
    int count[NREASONS] = {0};
    size_t len = 0;
    if (!size) return;
    buf[0] = 0;
    if (!st->diverged_samples && !st->retried_samples) return;
    for (int k = 0; k < st->batch; k++) {
        const wcm_sample_result *r = &st->results[k];
        if (r->status == WCM_SAMPLE_DIVERGED && r->reason > 0 && r->reason < NREASONS) count[r->reason]++;
    }
    append(buf, size, &len, "%s: %d of %d sample%s diverged", st->name, st->diverged_samples, st->batch,
           st->batch == 1 ? "" : "s");
    const char *sep = " (";
    for (int reason = 1; reason < NREASONS; reason++)
        if (count[reason]) {
            append(buf, size, &len, "%s%d %s", sep, count[reason], wcm_divergence_reason_name(reason));
            sep = ", ";
        }
    if (st->diverged_samples) append(buf, size, &len, ")");
    if (st->retried_samples)
        append(buf, size, &len, "; %d sample%s redrawn", st->retried_samples, st->retried_samples == 1 ? "" : "s");
    sep = "; diverged samples: ";
    for (int k = 0; k < st->batch; k++)
        if (st->results[k].status == WCM_SAMPLE_DIVERGED) {
            append(buf, size, &len, "%s%d", sep, k);
            sep = ", ";
        }
}

/* [v_0, ..., v_{batch-1}] of one per-sample field. */
static void json_per_sample(wcm_json_buf *b, const wcm_synth_stage *st, int field) {
    wcm_json_buf_puts(b, "[");
    for (int k = 0; k < st->batch; k++) {
        const wcm_sample_result *r = &st->results[k];
        if (k) wcm_json_buf_puts(b, ", ");
        if (field == 0) wcm_json_buf_printf(b, "%d", r->iterations);
        else if (field == 1) wcm_json_buf_number(b, r->final_sigma);
        else if (field == 2) wcm_json_buf_number(b, r->final_std);
        else if (field == 3) wcm_json_buf_number(b, r->seconds);
        else if (field == 4) wcm_json_buf_string(b, wcm_sample_status_name(r->status));
        else if (field == 5) wcm_json_buf_string(b, wcm_divergence_reason_name(r->reason));
        else wcm_json_buf_printf(b, "%d", r->retries);
    }
    wcm_json_buf_puts(b, "]");
}

static void json_params(wcm_json_buf *b, const wcm_sampler_params *p) {
    static const char *const names[] = {"h0", "sigma_0", "sigma_L", "beta", "divergence_threshold", "std_jump"};
    const double values[] = {p->h0, p->sigma_0, p->sigma_L, p->beta, p->divergence_threshold, p->std_jump};
    wcm_json_buf_puts(b, "{");
    for (int i = 0; i < 6; i++) {
        wcm_json_buf_printf(b, "%s\"%s\": ", i ? ", " : "", names[i]);
        wcm_json_buf_number(b, values[i]);
    }
    wcm_json_buf_printf(b, ", \"step\": \"%s\", \"max_iters\": %d, \"stop_rule\": \"%s\", \"seed\": %llu, "
                           "\"stream\": %llu, \"sample_offset\": %lld}",
                        p->fixed_step ? "fixed" : "ascending", p->max_iters,
                        p->stop_rule == WCM_STOP_SIGMA ? "sigma" : "snr", (unsigned long long)p->seed,
                        (unsigned long long)p->stream, (long long)p->sample_offset);
}

char *wcm_synth_log_json(const wcm_synth_result *r) {
    wcm_json_buf b;
    wcm_json_buf_init(&b);
    wcm_json_buf_printf(&b, " \"status\": \"%s\",\n \"diverged_samples\": %d,\n \"seconds\": ",
                        r->diverged ? "diverged" : r->cap_samples ? "cap" : "ok", r->diverged);
    wcm_json_buf_number(&b, r->seconds);
    wcm_json_buf_printf(&b, ",\n \"threads\": %d,\n \"warnings\": [", wcm_get_threads());
    int nw = 0;
    for (int s = 0; s < r->nstages; s++) {
        const wcm_synth_stage *st = &r->stage[s];
        char w[512];
        if (st->cap_samples) {
            wcm_synth_cap_warning(st, w, sizeof w);
            wcm_json_buf_puts(&b, nw++ ? ", " : "");
            wcm_json_buf_string(&b, w);
        }
        if (st->diverged_samples || st->retried_samples) {
            wcm_synth_divergence_summary(st, w, sizeof w);
            wcm_json_buf_puts(&b, nw++ ? ", " : "");
            wcm_json_buf_string(&b, w);
        }
    }
    wcm_json_buf_puts(&b, "],\n \"nets\": {");
    static const char *const fields[] = {"iterations", "final_sigma", "final_std", "sample_seconds", "sample_status",
                                         "divergence_reason", "retries"};
    for (int s = 0; s < r->nstages; s++) {
        const wcm_synth_stage *st = &r->stage[s];
        wcm_json_buf_printf(&b, "%s\n  ", s ? "," : "");
        wcm_json_buf_string(&b, st->name);
        if (st->scale >= 0) wcm_json_buf_printf(&b, ": {\n   \"scale\": %d", st->scale);
        else wcm_json_buf_printf(&b, ": {\n   \"scale\": \"%s\"", strcmp(st->name, "low") ? "image" : "low");
        wcm_json_buf_printf(&b, ", \"size\": [%d, %d], \"channels\": %d, \"status\": \"%s\",\n   \"seconds\": ", st->h,
                            st->w, st->c, wcm_synth_stage_status(st));
        wcm_json_buf_number(&b, st->seconds);
        wcm_json_buf_puts(&b, ", \"seconds_per_iteration\": ");
        wcm_json_buf_number(&b, st->max_iterations ? st->seconds / st->max_iterations : 0.0);
        for (int f = 0; f < 7; f++) {
            wcm_json_buf_printf(&b, ",\n   \"%s\": ", fields[f]);
            json_per_sample(&b, st, f);
        }
        wcm_json_buf_puts(&b, ",\n   \"params\": ");
        json_params(&b, &st->params);
        wcm_json_buf_puts(&b, "\n  }");
    }
    wcm_json_buf_puts(&b, "\n }");
    if (b.failed) {
        wcm_json_buf_free(&b);
        return NULL;
    }
    return b.data; /* ownership passes to the caller (free) */
}

/* Algorithm 2 (SPEC §7): the synthesis / super-resolution cascade over a
 * model's networks, each net run through Algorithm 1 (src/sampler.c).
 * See include/wcm/synth.h for the conventions. */
#include "wcm/synth.h"

#include <math.h>
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

/* Run Algorithm 1 for stage r->nstages on batch y (allocated to the wanted
 * shape); records the stage (also on divergence) and returns the sampler's code. */
static int run_stage(wcm_synth_result *r, const wcm_synth_options *o, const char *name, int scale, int nstages,
                     const wcm_sampler_params *base, uint64_t stream, wcm_denoiser_fn fn, void *ctx,
                     wcm_context *run, const wcm_tensor *init_mean, wcm_tensor *y, wcm_error *err) {
    const int index = r->nstages;
    wcm_synth_stage *st = &r->stage[index];
    memset(st, 0, sizeof *st);
    snprintf(st->name, sizeof st->name, "%s", name);
    st->scale = scale;
    st->h = y->h, st->w = y->w, st->c = y->c;
    st->batch = y->n;
    st->results = calloc((size_t)y->n, sizeof *st->results);
    if (!st->results) return wcm_fail(err, WCM_ERR_NOMEM, "%s: out of memory", name);
    r->nstages = index + 1;

    wcm_sampler_params p = *base;
    p.seed = o->seed;
    p.stream = stream;
    p.sample_offset = o->sample_offset;
    p.init_mean = init_mean;
    p.context = run;
    stage_progress_ctx sp = {o, st->name, scale, index, nstages};
    p.progress = o->progress ? forward_progress : NULL;
    p.progress_user = o->progress ? &sp : NULL;

    const double t0 = wcm_seconds();
    int rc = wcm_sample(fn, ctx, &p, y, st->results, err);
    st->seconds = wcm_seconds() - t0;

    st->params = p;
    st->params.progress = NULL;
    st->params.progress_user = NULL;
    st->params.trace = NULL;
    st->params.trace_user = NULL;
    st->params.init_mean = NULL;
    st->params.context = NULL;
    if (rc && rc != WCM_ERR_NUMERIC) return wcm_fail_context(err, rc, "%s", name);
    for (int k = 0; k < y->n; k++) {
        const wcm_sample_result *res = &st->results[k];
        if (res->iterations > st->max_iterations) st->max_iterations = res->iterations;
        if (res->status == WCM_SAMPLE_CAP) st->cap_samples++;
        if (res->status == WCM_SAMPLE_DIVERGED) st->diverged_samples++;
    }
    r->cap_samples += st->cap_samples;
    if (o->progress) {
        wcm_synth_progress_info pi = {.net = st->name, .scale = scale, .stage = index, .nstages = nstages,
                                      .finished = st};
        o->progress(o->progress_user, &pi);
    }
    if (rc == WCM_ERR_NUMERIC) {
        r->diverged = 1;
        return wcm_fail_context(err, rc, "%s", name);
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
                       wcm_synth_result *r, wcm_error *err) {
    int rc = WCM_OK;
    for (int j = levels - 1; j >= 0 && !rc; j--) {
        const wcm_tensor *low = &r->scale[r->nscales - 1];
        wcm_tensor details = {0}, merged = {0};
        wcm_cond_denoiser_ctx cd;
        char name[16];
        snprintf(name, sizeof name, "cond%d", j);
        rc = wcm_tensor_alloc(&details, low->n, low->h, low->w, 3, err);
        if (!rc) rc = wcm_cond_denoiser_init(&cd, cond[j], low, err);
        if (rc) {
            wcm_tensor_free(&details);
            return wcm_fail_context(err, rc, "%s", name);
        }
        rc = run_stage(r, o, name, j, nstages, &o->cond[j], WCM_SYNTH_STREAM_COND(j), wcm_cond_denoiser, &cd,
                       wcm_net_context(cond[j]), NULL, &details, err);
        wcm_cond_denoiser_free(&cd);
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

static int check_options(const wcm_synth_options *o, wcm_error *err) {
    if (!o) return WCM_OK;
    if (o->rescale_low && !(o->rescale_max > 0 && isfinite(o->rescale_max)))
        return wcm_fail(err, WCM_ERR_ARG, "synthesis: rescale maximum must be positive (got %g)", o->rescale_max);
    if (o->sample_offset < 0)
        return wcm_fail(err, WCM_ERR_ARG, "synthesis: sample offset must be >= 0 (got %lld)", (long long)o->sample_offset);
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
    const double t0 = wcm_seconds();
    wcm_tensor y = {0};
    rc = wcm_tensor_alloc(&y, n, low_h, low_w, 1, err);
    if (!rc)
        rc = run_stage(r, o, m->multiscale ? "low" : "net", -1, levels + 1, &o->low, WCM_SYNTH_STREAM_LOW,
                       wcm_net_denoiser, uncond, wcm_net_context(uncond), NULL, &y, err);
    if (!rc) {
        if (o->rescale_low) wcm_rescale_range(&y, o->rescale_max);
        r->scale[r->nscales++] = y; /* owned by the result now */
        memset(&y, 0, sizeof y);
        rc = run_cascade(m->cond, levels, o, levels + 1, r, err);
    }
    wcm_tensor_free(&y);
    r->complete = rc == WCM_OK;
    r->seconds = wcm_seconds() - t0;
    return rc;
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
    const double t0 = wcm_seconds();
    rc = push_scale(r, low, err);
    if (!rc) rc = run_cascade(cond, levels, o, levels, r, err);
    r->complete = rc == WCM_OK;
    r->seconds = wcm_seconds() - t0;
    return rc;
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
    const double t0 = wcm_seconds();
    wcm_sampler_params p = o->low;
    if (p.stop_rule == WCM_STOP_DEFAULT) p.stop_rule = WCM_STOP_SIGMA;
    wcm_constrained_ctx cc;
    wcm_tensor y = {0}, mean = {0};
    rc = wcm_constrained_init(&cc, ms, measured, n, wcm_net_denoiser, m->net, err);
    if (rc) return rc;
    rc = wcm_tensor_alloc(&y, n, ms->h, ms->w, ms->c, err);
    if (!rc) rc = wcm_tensor_alloc(&mean, n, ms->h, ms->w, ms->c, err);
    if (!rc) rc = wcm_constrained_init_mean(ms, measured, &mean, err);
    if (!rc)
        rc = run_stage(r, o, "net", -1, 1, &p, WCM_SYNTH_STREAM_LOW, wcm_constrained_denoiser, &cc, wcm_context_host(),
                       &mean, &y, err);
    if (!rc) {
        r->scale[r->nscales++] = y;
        memset(&y, 0, sizeof y);
    }
    wcm_tensor_free(&y);
    wcm_tensor_free(&mean);
    wcm_constrained_free(&cc);
    r->complete = rc == WCM_OK;
    r->seconds = wcm_seconds() - t0;
    return rc;
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
        else wcm_json_buf_string(b, wcm_sample_status_name(r->status));
    }
    wcm_json_buf_puts(b, "]");
}

static void json_params(wcm_json_buf *b, const wcm_sampler_params *p) {
    static const char *const names[] = {"h0", "sigma_0", "sigma_L", "beta", "divergence_threshold"};
    const double values[] = {p->h0, p->sigma_0, p->sigma_L, p->beta, p->divergence_threshold};
    wcm_json_buf_puts(b, "{");
    for (int i = 0; i < 5; i++) {
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
    wcm_json_buf_printf(&b, " \"status\": \"%s\",\n \"seconds\": ",
                        r->diverged ? "diverged" : r->cap_samples ? "cap" : "ok");
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
        if (st->diverged_samples) {
            snprintf(w, sizeof w, "%s: %d of %d sample%s diverged (sigma_t > %g)", st->name, st->diverged_samples,
                     st->batch, st->batch == 1 ? "" : "s", st->params.divergence_threshold);
            wcm_json_buf_puts(&b, nw++ ? ", " : "");
            wcm_json_buf_string(&b, w);
        }
    }
    wcm_json_buf_puts(&b, "],\n \"nets\": {");
    static const char *const fields[] = {"iterations", "final_sigma", "final_std", "sample_seconds", "sample_status"};
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
        for (int f = 0; f < 5; f++) {
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

/* Layer plans of the CPU backend (see cpu_conv.h): a layer's weights in the
 * layouts its route needs, made once, and the forward passes that use them,
 * including a run of 1x1 layers fused tile by tile and the Winograd forward
 * written over its own input. Plans are made and used with one wcm_cpu_exec
 * (level and Winograd setting); the network compiler (net_cpu.c) keeps the
 * two together. */
#include <omp.h>
#include <string.h>

#include "cpu/cpu_conv.h"

/* Layout: a header (an int of PLAN_* bits, padded to 64 bytes), the forward
 * weights, then the dot-kernel weights when the dot path applies, then the
 * Winograd transform U when Winograd was on and the layer qualifies, and
 * after it the F(6x6) transform U6 when the kernels have it (plans do not
 * know the image size; the layer takes F(6x6) at the sizes where it pays). */
enum { PLAN_HEADER = 16, PLAN_DOT = 1, PLAN_WINOGRAD = 2, PLAN_WINOGRAD6 = 4 };

/* Pixels per tile of a pointwise run: two 64-channel activation tiles per
 * thread (2 x 48 KB) stay in L2 while the run's layers pass over them. */
#define POINTWISE_PIXELS 192

static int shape_empty(const wcm_conv_shape *s) { return s->n <= 0 || s->h <= 0 || s->w <= 0 || s->cin <= 0 || s->cout <= 0; }
static size_t weight_floats(const wcm_conv_shape *s) { return (size_t)s->k * s->k * s->cin * s->cout; }
/* A Winograd weight transform: one cin x cout matrix per transform point (36 or 64). */
static size_t u_floats(const wcm_conv_shape *s, int points) { return (size_t)points * s->cin * s->cout; }

static int plan_parts(const wcm_cpu_exec *e, const wcm_conv_shape *s) {
    if (s->k < 1 || s->k > WCM_CPU_MAX_K) return 0;
    int parts = s->cout <= WCM_DOT_MAX_COLS && s->k * s->cin >= 16 ? PLAN_DOT : 0;
    wcm_conv_shape any = *s; /* qualification apart from the image size */
    any.h = any.w = 4;
    if (e->winograd && wcm_winograd_qualifies(e->ops, &any))
        parts |= PLAN_WINOGRAD | (e->ops->winograd6 ? PLAN_WINOGRAD6 : 0);
    return parts;
}

size_t wcm_cpu_plan_size(const wcm_cpu_exec *e, const wcm_conv_shape *s) {
    const int parts = plan_parts(e, s);
    return PLAN_HEADER + weight_floats(s) * (parts & PLAN_DOT ? 2 : 1) +
           (parts & PLAN_WINOGRAD ? u_floats(s, 36) : 0) + (parts & PLAN_WINOGRAD6 ? u_floats(s, 64) : 0);
}

void wcm_cpu_plan(const wcm_cpu_exec *e, const wcm_conv_shape *s, const float *w, float *plan) {
    const int parts = plan_parts(e, s);
    memset(plan, 0, sizeof(float) * PLAN_HEADER);
    memcpy(plan, &parts, sizeof parts);
    float *p = plan + PLAN_HEADER;
    memcpy(p, w, sizeof(float) * weight_floats(s));
    p += weight_floats(s);
    if (parts & PLAN_DOT) {
        wcm_dot_weights(s, w, p);
        p += weight_floats(s);
    }
    if (parts & PLAN_WINOGRAD) {
        wcm_winograd_weights(e->ops, s, w, p);
        p += u_floats(s, 36);
    }
    if (parts & PLAN_WINOGRAD6) wcm_winograd6_weights(e->ops, s, w, p);
}

size_t wcm_cpu_scratch_size(const wcm_cpu_exec *e, const wcm_conv_shape *s, int pointwise) {
    const size_t threads = (size_t)omp_get_max_threads();
    if (pointwise) return threads * 2 * POINTWISE_PIXELS * (size_t)(s->cin > s->cout ? s->cin : s->cout);
    return wcm_cpu_route_of(e, s) == WCM_ROUTE_WINOGRAD ? wcm_winograd_scratch_floats(s, (int)threads) : 0;
}

/* The Winograd transform U inside a layer's plan, or NULL when this layer
 * does not run through Winograd with it. */
static const float *plan_winograd_u(const wcm_cpu_exec *e, const wcm_conv_shape *s, const float *plan) {
    int parts;
    memcpy(&parts, plan, sizeof parts);
    if (wcm_cpu_route_of(e, s) != WCM_ROUTE_WINOGRAD || !(parts & PLAN_WINOGRAD)) return NULL;
    return plan + PLAN_HEADER + weight_floats(s) * (parts & PLAN_DOT ? 2 : 1);
}

/* The F(6x6) transform U6 inside a layer's plan (after U), or NULL as above. */
static const float *plan_winograd6_u(const wcm_cpu_exec *e, const wcm_conv_shape *s, const float *plan) {
    int parts;
    memcpy(&parts, plan, sizeof parts);
    const float *u = plan_winograd_u(e, s, plan);
    return u && (parts & PLAN_WINOGRAD6) ? u + u_floats(s, 36) : NULL;
}

/* One layer from its plan, on the route an unplanned call would take; flags
 * may include WCM_CPU_SERIAL (direct and dot paths only). WCM_ERR_ARG when
 * the plan lacks the part its route needs (a plan made under other
 * settings), or a Winograd layer has no scratch. */
static int plan_layer(const wcm_cpu_exec *e, const wcm_conv_shape *s, const float *x, const float *plan, float *y,
                      int flags, float *scratch) {
    int parts;
    memcpy(&parts, plan, sizeof parts);
    const float *w = plan + PLAN_HEADER;
    const float *extra = w + weight_floats(s);
    switch (wcm_cpu_route_of(e, s)) {
        case WCM_ROUTE_PLAIN: wcm_cpu_plain_forward(s, x, w, y, flags); return WCM_OK;
        case WCM_ROUTE_WINOGRAD: {
            const int f6 = wcm_winograd6_pays_as(e->ops, s, e->route_h, e->route_w);
            const float *u = f6 ? plan_winograd6_u(e, s, plan) : plan_winograd_u(e, s, plan);
            if (!u || !scratch) return WCM_ERR_ARG;
            (f6 ? wcm_winograd6_forward_scratch : wcm_winograd_forward_scratch)(e->ops, s, x, u, y, flags, scratch);
            return WCM_OK;
        }
        case WCM_ROUTE_DOT:
            if (!(parts & PLAN_DOT)) return WCM_ERR_ARG;
            wcm_dot_forward(e->ops, s, x, extra, y, flags);
            return WCM_OK;
        case WCM_ROUTE_DIRECT: wcm_direct_forward(e->ops, s, x, w, y, flags); return WCM_OK;
    }
    return WCM_ERR_ARG;
}

int wcm_cpu_forward_plan(const wcm_cpu_exec *e, const wcm_conv_shape *s, const float *x, const float *plan, float *y,
                         int flags, float *scratch) {
    if (shape_empty(s)) return WCM_OK;
    return plan_layer(e, s, x, plan, y, flags & ~WCM_CPU_SERIAL, scratch);
}

int wcm_cpu_can_shift(const wcm_cpu_exec *e, const wcm_conv_shape *s, const float *plan) {
    return !shape_empty(s) && plan_winograd_u(e, s, plan) && wcm_winograd_shift_pays(e->ops, s) &&
           !wcm_winograd6_pays_as(e->ops, s, e->route_h, e->route_w);
}

int wcm_cpu_forward_shifted(const wcm_cpu_exec *e, const wcm_conv_shape *s, float *x, const float *plan, int down,
                            int flags, float *scratch) {
    /* Never where the plain forward takes F(6x6): both must compute the same. */
    const int refused = shape_empty(s) || s->cin != s->cout || wcm_winograd6_pays_as(e->ops, s, e->route_h, e->route_w);
    const float *u = refused ? NULL : plan_winograd_u(e, s, plan);
    if (!u) return -1;
    wcm_winograd_forward_shifted(e->ops, s, x, u, down, flags & ~WCM_CPU_SERIAL, scratch);
    return 0;
}

int wcm_cpu_forward_pointwise(const wcm_cpu_exec *e, int nlayers, const wcm_conv_shape *shapes,
                              const float *const *plans, const int *flags, const float *x, float *y, float *scratch) {
    if (nlayers <= 0 || shape_empty(&shapes[0])) return WCM_OK;
    int maxc = 0;
    for (int l = 0; l < nlayers; l++) {
        maxc = shapes[l].cin > maxc ? shapes[l].cin : maxc;
        maxc = shapes[l].cout > maxc ? shapes[l].cout : maxc;
    }
    const long pixels = (long)shapes[0].n * shapes[0].h * shapes[0].w;
    const long tiles = (pixels + POINTWISE_PIXELS - 1) / POINTWISE_PIXELS;
    const int cin0 = shapes[0].cin, cout_last = shapes[nlayers - 1].cout;
    int rc = WCM_OK;
#pragma omp parallel reduction(| : rc)
    {
        float *buf[2];
        buf[0] = scratch + (size_t)omp_get_thread_num() * 2 * POINTWISE_PIXELS * (size_t)maxc;
        buf[1] = buf[0] + (size_t)POINTWISE_PIXELS * maxc;
#pragma omp for schedule(static)
        for (long t = 0; t < tiles; t++) {
            const long p0 = t * POINTWISE_PIXELS;
            const int np = (int)(pixels - p0 < POINTWISE_PIXELS ? pixels - p0 : POINTWISE_PIXELS);
            const float *src = x + (size_t)p0 * cin0;
            for (int l = 0; l < nlayers; l++) {
                float *dst = l == nlayers - 1 ? y + (size_t)p0 * cout_last : buf[l % 2];
                /* A tile is one row of np pixels: a 1x1 layer has no neighbours. */
                const wcm_conv_shape ts = {1, 1, np, shapes[l].cin, shapes[l].cout, 1};
                rc |= plan_layer(e, &ts, src, plans[l], dst, flags[l] | WCM_CPU_SERIAL, NULL);
                src = dst;
            }
        }
    }
    return rc ? WCM_ERR_ARG : WCM_OK;
}

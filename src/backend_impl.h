/* What a backend implements: the op table behind wcm/backend.h, the context
 * it runs in, and the network plans it compiles. docs/backend.md describes
 * the contract; src/cpu/backend_cpu.c and src/backend_ref.c are the two
 * implementations, tests/test_backend_ops.c checks every backend against the
 * reference. Not installed: a backend is built into the library and added to
 * the registry (wcm_backend_register, or the built-in list in backend.c). */
#ifndef WCM_BACKEND_IMPL_H
#define WCM_BACKEND_IMPL_H

#include "wcm/backend.h"
#include "wcm/net.h"

/* ---- scratch arena ----------------------------------------------------------
 * A context's working memory for transient buffers (reduction partials,
 * transformed weights, per-thread tiles): a chain of blocks that only grows,
 * so that once a workload has run, running it again allocates nothing.
 * Pushes are 64-byte aligned; an op saves the position first and restores it
 * when done. Not thread safe (push before a parallel region, not inside). */
typedef struct wcm_arena_block wcm_arena_block;
typedef struct {
    wcm_arena_block *head, *cur;
    size_t used; /* bytes used in cur */
} wcm_arena;
typedef struct {
    wcm_arena_block *block;
    size_t used;
} wcm_arena_mark;

/* NULL when memory runs out (the arena is unchanged then). */
void *wcm_arena_push(wcm_arena *a, size_t bytes);
wcm_arena_mark wcm_arena_save(const wcm_arena *a);
void wcm_arena_restore(wcm_arena *a, wcm_arena_mark m);
void wcm_arena_free(wcm_arena *a);

/* ---- contexts ----------------------------------------------------------- */
struct wcm_context {
    /* Options (see wcm_context_options): unset values follow the process defaults. */
    const wcm_backend *backend;
    int variant, threads, winograd;
    void *stream;
    int is_default; /* a thread's default context */
    /* While a network computes a tile of a larger image: that image's size
     * (wcm_conv_shape.route_h, route_w); 0 otherwise. */
    int route_h, route_w;
    /* The backend's own per-context state (context_init / context_free). */
    const wcm_backend *state_backend;
    void *state;
    wcm_arena arena;
    char msg[256]; /* detail of the last failed op (wcm_ctx_fail) */
};

/* For backends: record why an op failed (the dispatcher prefixes the
 * backend and op names); returns code. */
int wcm_ctx_fail(wcm_context *ctx, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Non-NULL: ctx itself or the calling thread's default context. */
wcm_context *wcm_ctx(wcm_context *ctx);
/* A context of the calling thread whose ops work on host memory: the
 * default one when its backend is host-visible, else a CPU context. */
wcm_context *wcm_context_host(void);

/* ---- a pass's input and output ------------------------------------------------
 * x: `in` where ctx's ops read it (in itself or a copy); y: where they write
 * the output (`out` itself or a copy that wcm_io_end copies back). out is
 * (re)allocated to in's n, h, w and out_c channels, where `in` is, when its
 * shape differs. wcm_io_end frees the copies and returns rc (or the copy's
 * failure). */
typedef struct {
    const wcm_tensor *x;
    wcm_tensor *y, *out;
    wcm_tensor x_copy, y_copy;
} wcm_io;
/* Makes `out` ready to receive an n x h x w x c result: an owned tensor of
 * another shape is freed (the caller then allocates), a view of another
 * shape is refused (WCM_ERR_SHAPE), anything of the right shape is kept. */
int wcm_tensor_prepare_output(wcm_tensor *out, int n, int h, int w, int c, wcm_error *err);
int wcm_io_begin(wcm_context *ctx, const wcm_tensor *in, wcm_tensor *out, int out_c, wcm_io *io, wcm_error *err);
int wcm_io_end(wcm_context *ctx, wcm_io *io, int rc, wcm_error *err);

/* ---- networks -------------------------------------------------------------
 * A network as the backend sees it: the layer list of net.c with the host
 * parameters (conv weights [k][k][cin][cout], gammas, running_sd) the layer
 * pointers point into. A backend compiles it into a plan for one context's
 * settings (its variant and algorithm choices) and runs inference with batch
 * norm folded into the convolutions. */
typedef struct {
    int nlayers, cin, cout;
    const wcm_layer *layers;
    const float *params, *running;
    size_t nparams, nrunning;
} wcm_net_desc;

typedef struct wcm_net_plan wcm_net_plan; /* each backend defines its own */

/* The plan every backend without its own gets: batch norm folded with
 * bn_fold, then layer by layer through conv_forward between two activation
 * buffers of the backend's memory. */
int wcm_generic_net_compile(wcm_context *ctx, const wcm_net_desc *d, wcm_net_plan **out);
int wcm_generic_net_load(wcm_context *ctx, wcm_net_plan *p, const wcm_net_desc *d);
int wcm_generic_net_fits(wcm_context *ctx, const wcm_net_plan *p);
int wcm_generic_net_forward(wcm_context *ctx, wcm_net_plan *p, int n, int h, int w, const float *x, float *y);
void wcm_generic_net_free(wcm_net_plan *p);

/* ---- the op table ---------------------------------------------------------
 * Every entry but name may be NULL: the backend then does not claim the op
 * (wcm_backend_claims), and calling it is an error naming the op. Pointers
 * are in the backend's memory unless said otherwise; ops return WCM_OK or a
 * negative wcm_status (with wcm_ctx_fail for the detail) and must not fall
 * back silently to a slower path when memory runs out. Semantics: the
 * wcm_op_* functions of wcm/backend.h. */
struct wcm_backend {
    const char *name;
    int host_visible; /* buffers are host memory: the library passes host pointers straight in */

    /* Variants (CPU: SIMD levels); NULL: one variant, "default". */
    int (*variant_count)(void);
    const char *(*variant_name)(int v);
    int (*variant_default)(void);

    /* Per-context state (device handles, streams); optional. */
    int (*context_init)(wcm_context *ctx);
    void (*context_free)(wcm_context *ctx);
    int (*synchronize)(wcm_context *ctx);

    /* Buffers. host_visible backends may leave these NULL (wcm_alloc/memcpy then). */
    int (*buffer_alloc)(wcm_context *ctx, size_t bytes, void **data);
    void (*buffer_free)(void *data);
    int (*memcpy_to_backend)(wcm_context *ctx, void *dst, const void *src_host, size_t bytes);
    int (*memcpy_to_host)(wcm_context *ctx, void *dst_host, const void *src, size_t bytes);
    int (*memcpy_in_backend)(wcm_context *ctx, void *dst, const void *src, size_t bytes);

    int (*conv_forward)(wcm_context *ctx, const wcm_conv_shape *s, const float *x, const float *w, float *y, int flags);
    int (*conv_backward_data)(wcm_context *ctx, const wcm_conv_shape *s, const float *dy, const float *w, float *dx);
    int (*conv_backward_weights)(wcm_context *ctx, const wcm_conv_shape *s, const float *x, const float *dy, float *dw,
                                 int flags);

    int (*bn_stats)(wcm_context *ctx, const float *x, size_t m, int c, double *mean, double *sd);
    int (*bn_apply)(wcm_context *ctx, const float *x, size_t m, int c, const float *gamma, const double *sd, int relu,
                    float *y);
    int (*bn_backward)(wcm_context *ctx, const float *x, const float *dy, size_t m, int c, const float *gamma,
                       const double *mean, const double *sd, int relu, float *dx, float *dgamma);
    int (*bn_running)(wcm_context *ctx, wcm_bn_running_mode mode, int c, double *sd, float *running, double *acc,
                      double value);
    int (*bn_fold)(wcm_context *ctx, size_t rows, int cout, const float *w, const float *gamma, const float *running,
                   float *out);
    int (*bn_fold_backward)(wcm_context *ctx, size_t rows, int cout, const float *w, const float *gamma,
                            const float *running, const float *dout, float *dw, float *dgamma);
    int (*relu)(wcm_context *ctx, size_t n, const float *x, float *y);
    int (*relu_backward)(wcm_context *ctx, size_t n, const float *y, const float *dy, float *dx);
    int (*loss_sse)(wcm_context *ctx, size_t n, const float *out, const float *target, int batch, float *dout,
                    double *loss);
    int (*adam)(wcm_context *ctx, size_t n, float *params, const float *grad, float *m, float *v,
                const wcm_adam_hyper *h);

    int (*fill)(wcm_context *ctx, size_t n, float *x, float value);
    int (*axpy)(wcm_context *ctx, size_t n, float alpha, const float *x, float *y);
    int (*scale)(wcm_context *ctx, size_t n, float alpha, float *x, const float *base);
    int (*noise_step)(wcm_context *ctx, size_t n, float *y, float h, const float *d, float gamma, const float *z);
    int (*add_noise)(wcm_context *ctx, size_t n, const float *x, const float *z, double sigma, float *y);
    int (*add_noise_255)(wcm_context *ctx, size_t n, const float *x, const float *z, float sigma255, float *y);
    int (*rescale)(wcm_context *ctx, size_t n, float *x, float lo, double range, double max);
    /* result: host memory */
    int (*reduce)(wcm_context *ctx, wcm_reduce_kind kind, size_t n, const float *x, const float *y, double center,
                  size_t chunk, double *result);
    int (*channel_reduce)(wcm_context *ctx, wcm_reduce_kind kind, size_t m, int c, const float *x, const double *center,
                          size_t chunk, double *result);
    int (*channel_partials)(wcm_context *ctx, wcm_reduce_kind kind, size_t m, int c, const float *x, const double *center,
                            size_t part, double *parts);

    int (*haar_split)(wcm_context *ctx, int n, int h, int w, const float *x, float *out);
    int (*haar_merge)(wcm_context *ctx, int n, int h, int w, const float *low, const float *coeffs, int c, float *out);
    int (*channels)(wcm_context *ctx, wcm_channels_mode mode, size_t pixels, int count, const float *src, int src_c,
                    int src_off, float *dst, int dst_c, int dst_off);
    int (*upsample)(wcm_context *ctx, int n, int h, int w, int c, int factor, const float *x, float *y);

    int (*fill_normal)(wcm_context *ctx, uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float *out);
    int (*fill_uniform)(wcm_context *ctx, uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float *out);
    int (*fill_normal_torch)(wcm_context *ctx, uint64_t seed, size_t n, float *out);

    /* Networks (claims WCM_OP_NET_FORWARD). compile allocates what depends on
     * the architecture and the context's settings and loads the weights;
     * load re-reads the weights into a compiled plan without allocating;
     * fits says whether a plan suits ctx's settings (else the network
     * recompiles); forward runs inference on n x h x w inputs (any h, w >= 1),
     * growing its activation buffers only when a larger input comes. NULL
     * compile: the generic plan above. */
    int (*net_compile)(wcm_context *ctx, const wcm_net_desc *d, wcm_net_plan **out);
    int (*net_load)(wcm_context *ctx, wcm_net_plan *p, const wcm_net_desc *d);
    int (*net_fits)(wcm_context *ctx, const wcm_net_plan *p);
    int (*net_forward)(wcm_context *ctx, wcm_net_plan *p, int n, int h, int w, const float *x, float *y);
    void (*net_free)(wcm_net_plan *p);
};

/* For net.c: a context backend's network entries (its own, or the generic
 * plan's), run like ops under the context's threads. A plan remembers the
 * backend that made it (made_by). */
int wcm_dispatch_net_compile(wcm_context *ctx, const wcm_net_desc *d, wcm_net_plan **out, wcm_error *err);
int wcm_dispatch_net_load(wcm_context *ctx, wcm_net_plan *p, const wcm_net_desc *d, wcm_error *err);
int wcm_dispatch_net_fits(wcm_context *ctx, const wcm_backend *made_by, const wcm_net_plan *p);
int wcm_dispatch_net_forward(wcm_context *ctx, wcm_net_plan *p, int n, int h, int w, const float *x, float *y,
                             wcm_error *err);
void wcm_dispatch_net_free(const wcm_backend *made_by, wcm_net_plan *p);

/* Adds a backend to the registry (tests, out-of-tree device backends);
 * returns its index, or -1 when the registry is full. */
int wcm_backend_register(const wcm_backend *b);

/* Threads: each op runs with the context's thread count as the calling
 * thread's OpenMP team size, restored afterwards (the dispatcher does this
 * for every op, so OpenMP backends need nothing more). */
typedef struct {
    int saved; /* 0: nothing to restore */
} wcm_threads_scope;
wcm_threads_scope wcm_threads_enter(wcm_context *ctx);
void wcm_threads_leave(wcm_threads_scope s);

#endif

/* Contexts (settings, scratch arena, backend state), the threads' default
 * contexts, buffers and the residency of tensors. */
#include <omp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_impl.h"

/* ---- scratch arena ---------------------------------------------------------- */

struct wcm_arena_block {
    wcm_arena_block *next;
    size_t cap;
    char *data; /* cap bytes, 64-byte aligned */
};

/* Smallest new block: transient buffers of one op usually fit together. */
#define ARENA_MIN_BLOCK ((size_t)1 << 20)

static size_t round64(size_t n) { return (n + 63) & ~(size_t)63; }

void *wcm_arena_push(wcm_arena *a, size_t bytes) {
    bytes = round64(bytes ? bytes : 1);
    if (bytes < bytes - 1) return NULL; /* wrapped */
    if (a->cur && a->cur->cap - a->used >= bytes) {
        void *p = a->cur->data + a->used;
        a->used += bytes;
        return p;
    }
    /* The next block when it is large enough, else a new one in front of it. */
    wcm_arena_block *next = a->cur ? a->cur->next : a->head;
    if (!next || next->cap < bytes) {
        const size_t prev = a->cur ? a->cur->cap : 0;
        size_t cap = bytes > 2 * prev ? bytes : 2 * prev;
        if (cap < ARENA_MIN_BLOCK) cap = ARENA_MIN_BLOCK;
        wcm_arena_block *b = malloc(sizeof *b);
        char *data = b ? wcm_alloc(cap) : NULL;
        if (!data) {
            free(b);
            return NULL;
        }
        b->cap = cap;
        b->data = data;
        b->next = next;
        if (a->cur) a->cur->next = b;
        else a->head = b;
        next = b;
    }
    a->cur = next;
    a->used = bytes;
    return next->data;
}

wcm_arena_mark wcm_arena_save(const wcm_arena *a) { return (wcm_arena_mark){a->cur, a->used}; }

void wcm_arena_restore(wcm_arena *a, wcm_arena_mark m) {
    a->cur = m.block;
    a->used = m.used;
}

void wcm_arena_free(wcm_arena *a) {
    for (wcm_arena_block *b = a->head, *next; b; b = next) {
        next = b->next;
        wcm_free(b->data);
        free(b);
    }
    memset(a, 0, sizeof *a);
}

/* ---- contexts ----------------------------------------------------------------- */

void wcm_context_options_default(wcm_context_options *o) {
    memset(o, 0, sizeof *o);
    o->variant = -1;
    o->winograd = -1;
}

static void release_state(wcm_context *ctx) {
    if (ctx->state_backend && ctx->state_backend->context_free) ctx->state_backend->context_free(ctx);
    ctx->state_backend = NULL;
    ctx->state = NULL;
}

static void context_clear(wcm_context *ctx) {
    release_state(ctx);
    wcm_arena_free(&ctx->arena);
}

int wcm_context_create(wcm_context **out, const wcm_context_options *o, wcm_error *err) {
    *out = NULL;
    wcm_context_options defaults;
    if (!o) {
        wcm_context_options_default(&defaults);
        o = &defaults;
    }
    if (o->threads < 0) return wcm_fail(err, WCM_ERR_ARG, "context: threads must be >= 0 (0: the default), got %d", o->threads);
    if (o->winograd < -1 || o->winograd > 1)
        return wcm_fail(err, WCM_ERR_ARG, "context: winograd must be -1 (default), 0 or 1, got %d", o->winograd);
    const int variants = o->backend ? wcm_backend_variant_count(o->backend) : 0;
    if (o->backend && o->variant >= variants)
        return wcm_fail(err, WCM_ERR_ARG, "context: backend %s has %d variant%s, variant %d asked for",
                        wcm_backend_name(o->backend), variants, variants == 1 ? "" : "s", o->variant);
    wcm_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory for a context");
    ctx->backend = o->backend;
    ctx->variant = o->variant < 0 ? -1 : o->variant;
    ctx->threads = o->threads;
    ctx->winograd = o->winograd;
    ctx->stream = o->stream;
    *out = ctx;
    return WCM_OK;
}

void wcm_context_free(wcm_context *ctx) {
    if (!ctx || ctx->is_default) return;
    context_clear(ctx);
    free(ctx);
}

/* A thread's own contexts live in its thread-local storage: the default
 * one, and for host memory when the default is a device's, one on the CPU
 * backend with the default settings. Their arenas and backend state are
 * released when the thread ends. */
typedef struct {
    wcm_context def, host;
    int ready;
} thread_contexts;

static _Thread_local thread_contexts t_contexts;
static pthread_key_t g_contexts_key;
static pthread_once_t g_contexts_once = PTHREAD_ONCE_INIT;

static void contexts_release(void *p) {
    thread_contexts *t = p;
    context_clear(&t->def);
    context_clear(&t->host);
}

static void contexts_key_create(void) { pthread_key_create(&g_contexts_key, contexts_release); }

static thread_contexts *thread_own(void) {
    thread_contexts *t = &t_contexts;
    if (!t->ready) {
        wcm_context *both[2] = {&t->def, &t->host};
        for (int i = 0; i < 2; i++) {
            both[i]->variant = -1;
            both[i]->winograd = -1;
            both[i]->is_default = 1;
        }
        t->host.backend = wcm_backend_cpu();
        pthread_once(&g_contexts_once, contexts_key_create);
        pthread_setspecific(g_contexts_key, t);
        t->ready = 1;
    }
    return t;
}

wcm_context *wcm_context_default(void) { return &thread_own()->def; }

wcm_context *wcm_ctx(wcm_context *ctx) { return ctx ? ctx : wcm_context_default(); }

wcm_context *wcm_context_host(void) {
    thread_contexts *t = thread_own();
    return wcm_context_host_visible(&t->def) ? &t->def : &t->host;
}

const wcm_backend *wcm_context_backend(wcm_context *ctx) {
    ctx = wcm_ctx(ctx);
    return ctx->backend ? ctx->backend : wcm_get_backend();
}

int wcm_context_variant(wcm_context *ctx) {
    ctx = wcm_ctx(ctx);
    const wcm_backend *b = wcm_context_backend(ctx);
    const int count = wcm_backend_variant_count(b);
    if (ctx->variant >= 0 && ctx->variant < count) return ctx->variant;
    return b->variant_default ? b->variant_default() : 0;
}

const char *wcm_context_variant_name(wcm_context *ctx) {
    return wcm_backend_variant_name(wcm_context_backend(ctx), wcm_context_variant(ctx));
}

int wcm_context_threads(wcm_context *ctx) {
    ctx = wcm_ctx(ctx);
    return ctx->threads > 0 ? ctx->threads : wcm_get_threads();
}

int wcm_context_winograd(wcm_context *ctx) {
    ctx = wcm_ctx(ctx);
    return ctx->winograd >= 0 ? ctx->winograd : wcm_get_winograd();
}

int wcm_context_host_visible(wcm_context *ctx) { return wcm_backend_host_visible(wcm_context_backend(ctx)); }

int wcm_ctx_fail(wcm_context *ctx, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->msg, sizeof ctx->msg, fmt, ap);
    va_end(ap);
    return code;
}

wcm_threads_scope wcm_threads_enter(wcm_context *ctx) {
    const int want = wcm_context_threads(ctx), have = omp_get_max_threads();
    if (want <= 0 || want == have) return (wcm_threads_scope){0};
    omp_set_num_threads(want);
    return (wcm_threads_scope){have};
}

void wcm_threads_leave(wcm_threads_scope s) {
    if (s.saved > 0) omp_set_num_threads(s.saved);
}

/* ---- buffers -------------------------------------------------------------------- */

int wcm_buffer_alloc(wcm_context *ctx, size_t bytes, wcm_buffer **out, wcm_error *err) {
    ctx = wcm_ctx(ctx);
    const wcm_backend *be = wcm_context_backend(ctx);
    *out = NULL;
    wcm_buffer *b = malloc(sizeof *b);
    if (!b) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    b->backend = be;
    b->bytes = bytes;
    b->data = NULL;
    int rc = WCM_OK;
    if (be->buffer_alloc) {
        wcm_threads_scope ts = wcm_threads_enter(ctx);
        ctx->msg[0] = 0;
        rc = be->buffer_alloc(ctx, bytes, &b->data);
        wcm_threads_leave(ts);
    } else if (!(b->data = wcm_alloc(bytes))) {
        rc = WCM_ERR_NOMEM;
    }
    if (rc) {
        free(b);
        return wcm_fail(err, rc, "%s backend: cannot allocate a buffer of %zu bytes%s%s", be->name, bytes,
                        ctx->msg[0] ? ": " : "", ctx->msg);
    }
    *out = b;
    return WCM_OK;
}

void wcm_buffer_free(wcm_buffer *b) {
    if (!b) return;
    if (b->backend->buffer_free) b->backend->buffer_free(b->data);
    else wcm_free(b->data);
    free(b);
}

enum { TO_BACKEND, TO_HOST, IN_BACKEND };

static int transfer(wcm_context *ctx, int way, void *dst, const void *src, size_t bytes, wcm_error *err) {
    ctx = wcm_ctx(ctx);
    const wcm_backend *be = wcm_context_backend(ctx);
    if (!bytes) return WCM_OK;
    int (*fn)(wcm_context *, void *, const void *, size_t) =
        way == TO_BACKEND ? be->memcpy_to_backend : way == TO_HOST ? be->memcpy_to_host : be->memcpy_in_backend;
    if (!fn) {
        if (!be->host_visible)
            return wcm_fail(err, WCM_ERR_ARG, "%s backend has no memory copy %s", be->name,
                            way == TO_BACKEND ? "from the host" : way == TO_HOST ? "to the host" : "within it");
        memmove(dst, src, bytes);
        return WCM_OK;
    }
    ctx->msg[0] = 0;
    const int rc = fn(ctx, dst, src, bytes);
    return rc ? wcm_fail(err, rc, "%s backend: memory copy of %zu bytes failed%s%s", be->name, bytes,
                         ctx->msg[0] ? ": " : "", ctx->msg)
              : WCM_OK;
}

int wcm_memcpy_to_backend(wcm_context *ctx, void *dst, const void *src_host, size_t bytes, wcm_error *err) {
    return transfer(ctx, TO_BACKEND, dst, src_host, bytes, err);
}

int wcm_memcpy_to_host(wcm_context *ctx, void *dst_host, const void *src, size_t bytes, wcm_error *err) {
    return transfer(ctx, TO_HOST, dst_host, src, bytes, err);
}

int wcm_memcpy_in_backend(wcm_context *ctx, void *dst, const void *src, size_t bytes, wcm_error *err) {
    return transfer(ctx, IN_BACKEND, dst, src, bytes, err);
}

/* ---- tensors and residency ------------------------------------------------------- */

int wcm_tensor_alloc_on(wcm_context *ctx, wcm_tensor *t, int n, int h, int w, int c, wcm_error *err) {
    ctx = wcm_ctx(ctx);
    if (wcm_context_host_visible(ctx)) return wcm_tensor_alloc(t, n, h, w, c, err);
    memset(t, 0, sizeof *t);
    if (n <= 0 || h <= 0 || w <= 0 || c <= 0)
        return wcm_fail(err, WCM_ERR_SHAPE, "invalid tensor shape %dx%dx%dx%d", n, h, w, c);
    const size_t count = (size_t)n * h * w * c;
    wcm_buffer *b;
    int rc = wcm_buffer_alloc(ctx, count * sizeof(float), &b, err);
    if (rc) return rc;
    t->n = n, t->h = h, t->w = w, t->c = c;
    t->data = b->data;
    t->buffer = b;
    /* Zeroed, as wcm_tensor_alloc's host tensors are. */
    rc = wcm_op_fill(ctx, count, t->data, 0.0f, err);
    if (rc) wcm_tensor_free(t);
    return rc;
}

int wcm_tensor_is_host(const wcm_tensor *t) { return !t->buffer || wcm_backend_host_visible(t->buffer->backend); }

int wcm_tensor_on(wcm_context *ctx, const wcm_tensor *t) {
    const wcm_backend *be = wcm_context_backend(ctx);
    return wcm_tensor_is_host(t) ? be->host_visible : t->buffer->backend == be;
}

int wcm_tensor_stage(wcm_context *ctx, const wcm_tensor *t, wcm_tensor *storage, const wcm_tensor **view, wcm_error *err) {
    memset(storage, 0, sizeof *storage);
    *view = t;
    if (wcm_tensor_on(ctx, t)) return WCM_OK;
    if (!wcm_tensor_is_host(t))
        return wcm_fail(err, WCM_ERR_ARG, "a tensor on the %s backend cannot be used by a context of the %s backend",
                        wcm_backend_name(t->buffer->backend), wcm_backend_name(wcm_context_backend(ctx)));
    int rc = wcm_tensor_alloc_on(ctx, storage, t->n, t->h, t->w, t->c, err);
    if (!rc) rc = wcm_memcpy_to_backend(ctx, storage->data, t->data, wcm_tensor_count(t) * sizeof(float), err);
    if (rc) {
        wcm_tensor_free(storage);
        return rc;
    }
    *view = storage;
    return WCM_OK;
}

int wcm_tensor_to_host(wcm_context *ctx, const wcm_tensor *src, wcm_tensor *dst, wcm_error *err) {
    if (dst->data && !wcm_tensor_is_host(dst)) wcm_tensor_free(dst);
    int rc = wcm_tensor_prepare_output(dst, src->n, src->h, src->w, src->c, err);
    if (rc) return rc;
    if (!dst->data) rc = wcm_tensor_alloc(dst, src->n, src->h, src->w, src->c, err);
    if (rc) return rc;
    const size_t bytes = wcm_tensor_count(src) * sizeof(float);
    if (wcm_tensor_is_host(src)) {
        memmove(dst->data, src->data, bytes);
        return WCM_OK;
    }
    return wcm_memcpy_to_host(ctx, dst->data, src->data, bytes, err);
}

int wcm_io_begin(wcm_context *ctx, const wcm_tensor *in, wcm_tensor *out, int out_c, wcm_io *io, wcm_error *err) {
    memset(io, 0, sizeof *io);
    io->x = in;
    io->y = io->out = out;
    int rc = wcm_tensor_prepare_output(out, in->n, in->h, in->w, out_c, err);
    if (rc) return rc;
    if (!out->data)
        rc = wcm_tensor_is_host(in) ? wcm_tensor_alloc(out, in->n, in->h, in->w, out_c, err)
                                    : wcm_tensor_alloc_on(ctx, out, in->n, in->h, in->w, out_c, err);
    if (!rc) rc = wcm_tensor_stage(ctx, in, &io->x_copy, &io->x, err);
    if (!rc && !wcm_tensor_on(ctx, out)) {
        io->y = &io->y_copy;
        rc = wcm_tensor_alloc_on(ctx, io->y, out->n, out->h, out->w, out->c, err);
    }
    return rc ? wcm_io_end(ctx, io, rc, err) : WCM_OK;
}

int wcm_io_end(wcm_context *ctx, wcm_io *io, int rc, wcm_error *err) {
    if (!rc && io->y != io->out) rc = wcm_tensor_to_host(ctx, io->y, io->out, err);
    wcm_tensor_free(&io->x_copy);
    wcm_tensor_free(&io->y_copy);
    return rc;
}

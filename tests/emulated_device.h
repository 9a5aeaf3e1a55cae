/* An emulated device backend for tests: its buffers are not host-visible
 * (their addresses, as the library sees them, are non-canonical, so any
 * access from the host faults), and every op hands the real addresses to
 * the CPU backend's entries. Whatever runs correctly on it keeps device data
 * on the device and moves it only through the backend's copies, as a CUDA
 * backend needs; its results equal the CPU's bit for bit, except networks,
 * which run through the generic plan (layer by layer, no fused or in-place
 * layers) as a new device backend's would at first. One variant: the CPU
 * entries run at the CPU's default SIMD level. */
#ifndef WCM_EMULATED_DEVICE_H
#define WCM_EMULATED_DEVICE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend_impl.h"

/* Bit 62 set: outside the canonical x86-64 (and any 48-bit) address space. */
#define EMU_MASK ((uintptr_t)1 << 62)

static void *emu_real(const void *p) { return p ? (void *)((uintptr_t)p ^ EMU_MASK) : NULL; }
#define R(p) emu_real(p)
#define CPU wcm_backend_cpu()


static int emu_alloc(wcm_context *ctx, size_t bytes, void **data) {
    void *p = wcm_alloc(bytes);
    if (!p) return wcm_ctx_fail(ctx, WCM_ERR_NOMEM, "emulated device: out of memory");
    *data = R(p);
    return WCM_OK;
}
static void emu_free(void *data) { wcm_free(R(data)); }
static int emu_to_backend(wcm_context *c, void *dst, const void *src, size_t n) {
    (void)c;
    memcpy(R(dst), src, n);
    return WCM_OK;
}
static int emu_to_host(wcm_context *c, void *dst, const void *src, size_t n) {
    (void)c;
    memcpy(dst, R(src), n);
    return WCM_OK;
}
static int emu_in_backend(wcm_context *c, void *dst, const void *src, size_t n) {
    (void)c;
    memmove(R(dst), R(src), n);
    return WCM_OK;
}

static int emu_conv_forward(wcm_context *c, const wcm_conv_shape *s, const float *x, const float *w, float *y, int f) {
    return CPU->conv_forward(c, s, R(x), R(w), R(y), f);
}
static int emu_conv_backward_data(wcm_context *c, const wcm_conv_shape *s, const float *dy, const float *w, float *dx) {
    return CPU->conv_backward_data(c, s, R(dy), R(w), R(dx));
}
static int emu_conv_backward_weights(wcm_context *c, const wcm_conv_shape *s, const float *x, const float *dy, float *dw,
                                     int f) {
    return CPU->conv_backward_weights(c, s, R(x), R(dy), R(dw), f);
}
static int emu_bn_stats(wcm_context *c, const float *x, size_t m, int ch, double *mean, double *sd) {
    return CPU->bn_stats(c, R(x), m, ch, R(mean), R(sd));
}
static int emu_bn_apply(wcm_context *c, const float *x, size_t m, int ch, const float *g, const double *sd, int relu,
                        float *y) {
    return CPU->bn_apply(c, R(x), m, ch, R(g), R(sd), relu, R(y));
}
static int emu_bn_backward(wcm_context *c, const float *x, const float *dy, size_t m, int ch, const float *g,
                           const double *mean, const double *sd, int relu, float *dx, float *dg) {
    return CPU->bn_backward(c, R(x), R(dy), m, ch, R(g), R(mean), R(sd), relu, R(dx), R(dg));
}
static int emu_bn_running(wcm_context *c, wcm_bn_running_mode mode, int ch, double *sd, float *run, double *acc,
                          double v) {
    return CPU->bn_running(c, mode, ch, R(sd), R(run), R(acc), v);
}
static int emu_bn_fold(wcm_context *c, size_t rows, int co, const float *w, const float *g, const float *run, float *o) {
    return CPU->bn_fold(c, rows, co, R(w), R(g), R(run), R(o));
}
static int emu_bn_fold_backward(wcm_context *c, size_t rows, int co, const float *w, const float *g, const float *run,
                                const float *dout, float *dw, float *dg) {
    return CPU->bn_fold_backward(c, rows, co, R(w), R(g), R(run), R(dout), R(dw), R(dg));
}
static int emu_relu(wcm_context *c, size_t n, const float *x, float *y) { return CPU->relu(c, n, R(x), R(y)); }
static int emu_relu_backward(wcm_context *c, size_t n, const float *y, const float *dy, float *dx) {
    return CPU->relu_backward(c, n, R(y), R(dy), R(dx));
}
static int emu_loss_sse(wcm_context *c, size_t n, const float *o, const float *t, int b, float *dout, double *loss) {
    return CPU->loss_sse(c, n, R(o), R(t), b, R(dout), loss);
}
static int emu_adam(wcm_context *c, size_t n, float *p, const float *g, float *m, float *v, const wcm_adam_hyper *h) {
    return CPU->adam(c, n, R(p), R(g), R(m), R(v), h);
}
static int emu_fill(wcm_context *c, size_t n, float *x, float v) { return CPU->fill(c, n, R(x), v); }
static int emu_axpy(wcm_context *c, size_t n, float a, const float *x, float *y) { return CPU->axpy(c, n, a, R(x), R(y)); }
static int emu_scale(wcm_context *c, size_t n, float a, float *x, const float *base) {
    return CPU->scale(c, n, a, R(x), R(base));
}
static int emu_noise_step(wcm_context *c, size_t n, float *y, float h, const float *d, float g, const float *z) {
    return CPU->noise_step(c, n, R(y), h, R(d), g, R(z));
}
static int emu_add_noise(wcm_context *c, size_t n, const float *x, const float *z, double s, float *y) {
    return CPU->add_noise(c, n, R(x), R(z), s, R(y));
}
static int emu_add_noise_255(wcm_context *c, size_t n, const float *x, const float *z, float s, float *y) {
    return CPU->add_noise_255(c, n, R(x), R(z), s, R(y));
}
static int emu_rescale(wcm_context *c, size_t n, float *x, float lo, double range, double max) {
    return CPU->rescale(c, n, R(x), lo, range, max);
}
static int emu_reduce(wcm_context *c, wcm_reduce_kind k, size_t n, const float *x, const float *y, double center,
                      size_t chunk, double *result) {
    return CPU->reduce(c, k, n, R(x), R(y), center, chunk, result);
}
static int emu_channel_reduce(wcm_context *c, wcm_reduce_kind k, size_t m, int ch, const float *x, const double *center,
                              size_t chunk, double *result) {
    return CPU->channel_reduce(c, k, m, ch, R(x), center, chunk, result);
}
static int emu_channel_partials(wcm_context *c, wcm_reduce_kind k, size_t m, int ch, const float *x, const double *center,
                                size_t part, double *parts) {
    return CPU->channel_partials(c, k, m, ch, R(x), center, part, parts);
}
static int emu_haar_split(wcm_context *c, int n, int h, int w, const float *x, float *o) {
    return CPU->haar_split(c, n, h, w, R(x), R(o));
}
static int emu_haar_merge(wcm_context *c, int n, int h, int w, const float *low, const float *co, int ch, float *o) {
    return CPU->haar_merge(c, n, h, w, R(low), R(co), ch, R(o));
}
static int emu_channels(wcm_context *c, wcm_channels_mode mode, size_t px, int count, const float *src, int sc, int so,
                        float *dst, int dc, int dof) {
    return CPU->channels(c, mode, px, count, R(src), sc, so, R(dst), dc, dof);
}
static int emu_upsample(wcm_context *c, int n, int h, int w, int ch, int f, const float *x, float *y) {
    return CPU->upsample(c, n, h, w, ch, f, R(x), R(y));
}
static int emu_fill_normal(wcm_context *c, uint64_t seed, uint64_t stream, uint64_t off, size_t n, float *o) {
    return CPU->fill_normal(c, seed, stream, off, n, R(o));
}
static int emu_fill_uniform(wcm_context *c, uint64_t seed, uint64_t stream, uint64_t off, size_t n, float *o) {
    return CPU->fill_uniform(c, seed, stream, off, n, R(o));
}
static int emu_fill_normal_torch(wcm_context *c, uint64_t seed, size_t n, float *o) {
    return CPU->fill_normal_torch(c, seed, n, R(o));
}

/* The backend: every op of the CPU backend, through the wrappers above. */
static const wcm_backend *emulated_device(void) {
    static wcm_backend b;
    if (b.name) return &b;
    b.host_visible = 0;
    b.buffer_alloc = emu_alloc;
    b.buffer_free = emu_free;
    b.memcpy_to_backend = emu_to_backend;
    b.memcpy_to_host = emu_to_host;
    b.memcpy_in_backend = emu_in_backend;
    b.conv_forward = emu_conv_forward;
    b.conv_backward_data = emu_conv_backward_data;
    b.conv_backward_weights = emu_conv_backward_weights;
    b.bn_stats = emu_bn_stats;
    b.bn_apply = emu_bn_apply;
    b.bn_backward = emu_bn_backward;
    b.bn_running = emu_bn_running;
    b.bn_fold = emu_bn_fold;
    b.bn_fold_backward = emu_bn_fold_backward;
    b.relu = emu_relu;
    b.relu_backward = emu_relu_backward;
    b.loss_sse = emu_loss_sse;
    b.adam = emu_adam;
    b.fill = emu_fill;
    b.axpy = emu_axpy;
    b.scale = emu_scale;
    b.noise_step = emu_noise_step;
    b.add_noise = emu_add_noise;
    b.add_noise_255 = emu_add_noise_255;
    b.rescale = emu_rescale;
    b.reduce = emu_reduce;
    b.channel_reduce = emu_channel_reduce;
    b.channel_partials = emu_channel_partials;
    b.haar_split = emu_haar_split;
    b.haar_merge = emu_haar_merge;
    b.channels = emu_channels;
    b.upsample = emu_upsample;
    b.fill_normal = emu_fill_normal;
    b.fill_uniform = emu_fill_uniform;
    b.fill_normal_torch = emu_fill_normal_torch;
    b.net_compile = wcm_generic_net_compile;
    b.net_load = wcm_generic_net_load;
    b.net_fits = wcm_generic_net_fits;
    b.net_forward = wcm_generic_net_forward;
    b.net_free = wcm_generic_net_free;
    b.name = "emulated-device";
    return &b;
}

#undef R
#undef CPU

#endif

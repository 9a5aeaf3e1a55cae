/* The reference backend's entries beyond convolutions (backend_ref_ops.c):
 * every op in double precision, sequential, the ground truth of the
 * conformance test. Semantics: the wcm_op_* functions of wcm/backend.h. */
#ifndef WCM_BACKEND_REF_H
#define WCM_BACKEND_REF_H

#include "backend_impl.h"

int wcm_ref_bn_stats(wcm_context *ctx, const float *x, size_t m, int c, double *mean, double *sd);
int wcm_ref_bn_apply(wcm_context *ctx, const float *x, size_t m, int c, const float *gamma, const double *sd, int relu,
                     float *y);
int wcm_ref_bn_backward(wcm_context *ctx, const float *x, const float *dy, size_t m, int c, const float *gamma,
                        const double *mean, const double *sd, int relu, float *dx, float *dgamma);
int wcm_ref_bn_running(wcm_context *ctx, wcm_bn_running_mode mode, int c, double *sd, float *running, double *acc,
                       double value);
int wcm_ref_bn_fold(wcm_context *ctx, size_t rows, int cout, const float *w, const float *gamma, const float *running,
                    float *out);
int wcm_ref_bn_fold_backward(wcm_context *ctx, size_t rows, int cout, const float *w, const float *gamma,
                             const float *running, const float *dout, float *dw, float *dgamma);
int wcm_ref_relu(wcm_context *ctx, size_t n, const float *x, float *y);
int wcm_ref_relu_backward(wcm_context *ctx, size_t n, const float *y, const float *dy, float *dx);
int wcm_ref_loss_sse(wcm_context *ctx, size_t n, const float *out, const float *target, int batch, float *dout,
                     double *loss);
int wcm_ref_adam(wcm_context *ctx, size_t n, float *params, const float *grad, float *m, float *v,
                 const wcm_adam_hyper *h);
int wcm_ref_fill(wcm_context *ctx, size_t n, float *x, float value);
int wcm_ref_axpy(wcm_context *ctx, size_t n, float alpha, const float *x, float *y);
int wcm_ref_scale(wcm_context *ctx, size_t n, float alpha, float *x, const float *base);
int wcm_ref_noise_step(wcm_context *ctx, size_t n, float *y, float h, const float *d, float gamma, const float *z);
int wcm_ref_add_noise(wcm_context *ctx, size_t n, const float *x, const float *z, double sigma, float *y);
int wcm_ref_add_noise_255(wcm_context *ctx, size_t n, const float *x, const float *z, float sigma255, float *y);
int wcm_ref_rescale(wcm_context *ctx, size_t n, float *x, float lo, double range, double max);
int wcm_ref_reduce(wcm_context *ctx, wcm_reduce_kind kind, size_t n, const float *x, const float *y, double center,
                   size_t chunk, double *result);
int wcm_ref_channel_reduce(wcm_context *ctx, wcm_reduce_kind kind, size_t m, int c, const float *x,
                           const double *center, size_t chunk, double *result);
int wcm_ref_haar_split(wcm_context *ctx, int n, int h, int w, const float *x, float *out);
int wcm_ref_haar_merge(wcm_context *ctx, int n, int h, int w, const float *low, const float *coeffs, int c, float *out);
int wcm_ref_channels(wcm_context *ctx, wcm_channels_mode mode, size_t pixels, int count, const float *src, int src_c,
                     int src_off, float *dst, int dst_c, int dst_off);
int wcm_ref_upsample(wcm_context *ctx, int n, int h, int w, int c, int factor, const float *x, float *y);
int wcm_ref_fill_normal(wcm_context *ctx, uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float *out);
int wcm_ref_fill_uniform(wcm_context *ctx, uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float *out);
int wcm_ref_fill_normal_torch(wcm_context *ctx, uint64_t seed, size_t n, float *out);

#endif

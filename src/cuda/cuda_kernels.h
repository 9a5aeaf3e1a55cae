/* The CUDA backend's kernel launchers (src/cuda/kernels_*.cu), callable from C.
 * Each enqueues its work on `s` and returns the launch's cudaError_t (0 when
 * it was enqueued). Pointers are device memory. The arithmetic of each is
 * the CPU backend's, expression for expression (the kernels are compiled
 * without FMA contraction, with IEEE division and square roots), so
 * elementwise results are the CPU's bits; reductions sum the CPU's fixed
 * chunks, each in order, then the chunk sums in order, and give the CPU's
 * bits too. */
#ifndef WCM_CUDA_KERNELS_H
#define WCM_CUDA_KERNELS_H

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#include "wcm/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- elementwise (kernels_vector.cu) ---- */
int wcm_cu_fill(cudaStream_t s, size_t n, float *x, float value);
int wcm_cu_axpy(cudaStream_t s, size_t n, float alpha, const float *x, float *y);
int wcm_cu_scale(cudaStream_t s, size_t n, float alpha, float *x, const float *base);
int wcm_cu_noise_step(cudaStream_t s, size_t n, float *y, float h, const float *d, float gamma, const float *z);
int wcm_cu_add_noise(cudaStream_t s, size_t n, const float *x, const float *z, double sigma, float *y);
int wcm_cu_add_noise_255(cudaStream_t s, size_t n, const float *x, const float *z, float sigma255, float *y);
int wcm_cu_rescale(cudaStream_t s, size_t n, float *x, float lo, double range, double max);
int wcm_cu_relu(cudaStream_t s, size_t n, const float *x, float *y);
int wcm_cu_relu_backward(cudaStream_t s, size_t n, const float *y, const float *dy, float *dx);
int wcm_cu_adam(cudaStream_t s, size_t n, float *p, const float *g, float *m, float *v, const wcm_adam_hyper *h);
/* y (n values) = x, or y += x when accumulate. */
int wcm_cu_copy_add(cudaStream_t s, size_t n, const float *x, float *y, int accumulate);

/* ---- images and layouts (kernels_image.cu) ---- */
int wcm_cu_haar_split(cudaStream_t s, int n, int h, int w, const float *x, float *out);
int wcm_cu_haar_merge(cudaStream_t s, int n, int h, int w, const float *low, const float *coeffs, int c, float *out);
int wcm_cu_channels(cudaStream_t s, wcm_channels_mode mode, size_t pixels, int count, const float *src, int src_c,
                    int src_off, float *dst, int dst_c, int dst_off);
int wcm_cu_upsample(cudaStream_t s, int n, int h, int w, int c, int factor, const float *x, float *y);
/* Weights [k][k][cin][cout] (wcm) <-> [cout][k][k][cin] (cuDNN's NHWC
 * filters); to_wcm with accumulate adds into dst. */
int wcm_cu_weights_to_krsc(cudaStream_t s, int k, int cin, int cout, const float *w, float *out);
int wcm_cu_weights_to_wcm(cudaStream_t s, int k, int cin, int cout, const float *krsc, float *dst, int accumulate);
/* Between [n][h][w][c] and a larger [n][ph][pw][c] holding it at the top
 * left: crop copies it out; pad writes it in and zeroes the rest. */
int wcm_cu_crop(cudaStream_t s, int n, int h, int w, int c, int ph, int pw, const float *big, float *small);
int wcm_cu_pad(cudaStream_t s, int n, int h, int w, int c, int ph, int pw, const float *small, float *big);

/* ---- batch norm, loss, reductions (kernels_reduce.cu) ----
 * `partial` is device scratch of wcm_cu_partials(...) doubles. */
size_t wcm_cu_partials(size_t m, size_t chunk, int c);
int wcm_cu_bn_stats(cudaStream_t s, const float *x, size_t m, int c, double *mean, double *sd, double *partial);
int wcm_cu_bn_apply(cudaStream_t s, const float *x, size_t m, int c, const float *gamma, const double *sd, int relu,
                    float *y);
/* ab: device scratch of 2 c doubles. */
int wcm_cu_bn_backward(cudaStream_t s, const float *x, const float *dy, size_t m, int c, const float *gamma,
                       const double *mean, const double *sd, int relu, float *dx, float *dgamma, double *partial,
                       double *ab);
int wcm_cu_bn_running(cudaStream_t s, wcm_bn_running_mode mode, int c, double *sd, float *running, double *acc,
                      double value);
int wcm_cu_bn_fold(cudaStream_t s, size_t rows, int cout, const float *w, const float *gamma, const float *running,
                   float *out);
int wcm_cu_bn_fold_backward(cudaStream_t s, size_t rows, int cout, const float *w, const float *gamma,
                            const float *running, const float *dout, float *dw, float *dgamma);
/* result (device, 1 double) = the loss. */
int wcm_cu_loss_sse(cudaStream_t s, size_t n, const float *out, const float *target, int batch, float *dout,
                    double *partial, double *result);
/* result (device, 2 doubles for min/max, else 1). */
int wcm_cu_reduce(cudaStream_t s, wcm_reduce_kind kind, size_t n, const float *x, const float *y, double center,
                  size_t chunk, double *partial, double *result);
/* result (device, c doubles); center (device, c doubles) for sums of squares. */
int wcm_cu_channel_reduce(cudaStream_t s, wcm_reduce_kind kind, size_t m, int c, const float *x, const double *center,
                          size_t chunk, double *partial, double *result);

/* ---- direct convolutions (kernels_conv.cu): wcm's layouts, double sums ---- */
int wcm_cu_conv_forward_direct(cudaStream_t st, const wcm_conv_shape *s, const float *x, const float *w, float *y,
                               int relu);
int wcm_cu_conv_backward_data_direct(cudaStream_t st, const wcm_conv_shape *s, const float *dy, const float *w,
                                     float *dx);
int wcm_cu_conv_backward_weights_direct(cudaStream_t st, const wcm_conv_shape *s, const float *x, const float *dy,
                                        float *dw, int accumulate);

/* ---- noise (kernels_rng.cu) ----
 * Philox values offset .. offset + n - 1 of (seed, stream). The normals'
 * Box-Muller uses the GPU's double log, sin and cos, a few ulps from the
 * host's: where the float rounding of a value could differ (it lies within
 * 2^-44 relative of a rounding boundary, about one value in 2^19), its
 * index is appended to `suspect` (the count in suspect[0], which the caller
 * zeroes, and at most `cap` indices after it) for the host to recompute. */
int wcm_cu_fill_philox(cudaStream_t s, int uniform, uint64_t seed, uint64_t stream, uint64_t offset, size_t n,
                       float *out, unsigned long long *suspect, unsigned cap);

#ifdef __cplusplus
}
#endif
#endif

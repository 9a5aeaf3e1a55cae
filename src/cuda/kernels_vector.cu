/* Elementwise kernels of the CUDA backend: Algorithm 1's vector updates,
 * noise, rescaling, ReLU and Adam, each value computed with the CPU
 * backend's float expression (src/cpu/vector_cpu.c, train_cpu.c). */
#include "cuda/cuda_kernels.h"
#include "cuda/cuda_launch.cuh"

__global__ void k_fill(size_t n, float *x, float v) {
    GRID_STRIDE(i, n) x[i] = v;
}
__global__ void k_axpy(size_t n, float alpha, const float *x, float *y) {
    GRID_STRIDE(i, n) y[i] = y[i] + alpha * x[i];
}
__global__ void k_scale(size_t n, float alpha, float *x, const float *base) {
    GRID_STRIDE(i, n) x[i] = (base ? base[i] : 0.0f) + alpha * x[i];
}
__global__ void k_noise_step(size_t n, float *y, float h, const float *d, float gamma, const float *z) {
    GRID_STRIDE(i, n) y[i] = y[i] - h * d[i] + gamma * z[i];
}
__global__ void k_add_noise(size_t n, const float *x, const float *z, double sigma, float *y) {
    GRID_STRIDE(i, n) y[i] = x[i] + (float)(sigma * z[i]);
}
__global__ void k_add_noise_255(size_t n, const float *x, const float *z, float sigma255, float *y) {
    GRID_STRIDE(i, n) y[i] = x[i] + (z[i] * sigma255) / 255.0f;
}
__global__ void k_rescale(size_t n, float *x, float lo, double range, double max) {
    GRID_STRIDE(i, n) x[i] = range > 0 ? (float)(((double)x[i] - lo) / range * max) : 0.0f;
}
__global__ void k_relu(size_t n, const float *x, float *y) {
    GRID_STRIDE(i, n) y[i] = x[i] > 0 ? x[i] : 0.0f;
}
__global__ void k_relu_backward(size_t n, const float *y, const float *dy, float *dx) {
    GRID_STRIDE(i, n) dx[i] = y[i] > 0 ? dy[i] : 0.0f;
}
__global__ void k_adam(size_t n, float *p, const float *g, float *m, float *v, wcm_adam_hyper h) {
    GRID_STRIDE(i, n) {
        const float mi = m[i] * h.beta1 + g[i] * h.one_minus_beta1;
        const float vi = v[i] * h.beta2 + g[i] * g[i] * h.one_minus_beta2;
        m[i] = mi;
        v[i] = vi;
        const float denom = sqrtf(vi) / h.bc2_sqrt + h.eps;
        p[i] += -h.step_size * (mi / denom);
    }
}
__global__ void k_copy_add(size_t n, const float *x, float *y, int accumulate) {
    GRID_STRIDE(i, n) y[i] = accumulate ? y[i] + x[i] : x[i];
}

extern "C" {
int wcm_cu_fill(cudaStream_t s, size_t n, float *x, float value) { LAUNCH_N(k_fill, s, n, n, x, value); }
int wcm_cu_axpy(cudaStream_t s, size_t n, float alpha, const float *x, float *y) {
    LAUNCH_N(k_axpy, s, n, n, alpha, x, y);
}
int wcm_cu_scale(cudaStream_t s, size_t n, float alpha, float *x, const float *base) {
    LAUNCH_N(k_scale, s, n, n, alpha, x, base);
}
int wcm_cu_noise_step(cudaStream_t s, size_t n, float *y, float h, const float *d, float gamma, const float *z) {
    LAUNCH_N(k_noise_step, s, n, n, y, h, d, gamma, z);
}
int wcm_cu_add_noise(cudaStream_t s, size_t n, const float *x, const float *z, double sigma, float *y) {
    LAUNCH_N(k_add_noise, s, n, n, x, z, sigma, y);
}
int wcm_cu_add_noise_255(cudaStream_t s, size_t n, const float *x, const float *z, float sigma255, float *y) {
    LAUNCH_N(k_add_noise_255, s, n, n, x, z, sigma255, y);
}
int wcm_cu_rescale(cudaStream_t s, size_t n, float *x, float lo, double range, double max) {
    LAUNCH_N(k_rescale, s, n, n, x, lo, range, max);
}
int wcm_cu_relu(cudaStream_t s, size_t n, const float *x, float *y) { LAUNCH_N(k_relu, s, n, n, x, y); }
int wcm_cu_relu_backward(cudaStream_t s, size_t n, const float *y, const float *dy, float *dx) {
    LAUNCH_N(k_relu_backward, s, n, n, y, dy, dx);
}
int wcm_cu_adam(cudaStream_t s, size_t n, float *p, const float *g, float *m, float *v, const wcm_adam_hyper *h) {
    LAUNCH_N(k_adam, s, n, n, p, g, m, v, *h);
}
int wcm_cu_copy_add(cudaStream_t s, size_t n, const float *x, float *y, int accumulate) {
    LAUNCH_N(k_copy_add, s, n, n, x, y, accumulate);
}
}

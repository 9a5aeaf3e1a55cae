/* Batch-norm kernels of the CUDA backend (src/cpu/train_cpu.c's arithmetic):
 * per-channel sums over fixed chunks of CHUNK pixels, each chunk summed in
 * pixel order by one thread, then the chunk sums in order by one thread per
 * channel, so that the statistics, gradients and channel reductions are the
 * CPU's bits; the per-pixel passes use the CPU's float expressions. */
#include "cuda/cuda_kernels.h"
#include "cuda/cuda_launch.cuh"

/* Pixels per chunk of a per-channel sum (the CPU's REDUCE_CHUNK). */
#define CHUNK 1024
#define BN_EPS 1e-5

enum { SUM_X, SUM_SQDEV, SUM_DY_X, SUM_DY_X_RELU };
enum { POST_NONE, POST_MEAN, POST_SD };

__host__ __device__ static size_t chunks_of(size_t m, size_t chunk) { return (m + chunk - 1) / chunk; }

/* partial[k][ch] = sum over the pixels of chunk k of f(pixel, ch). */
__global__ void k_channel_partials(int what, const float *x, const float *dy, size_t m, int c, size_t chunk,
                                   const double *mean, const float *gamma, const double *sd, double *partial) {
    const size_t total = chunks_of(m, chunk) * (size_t)c;
    GRID_STRIDE(t, total) {
        const size_t k = t / c;
        const int ch = (int)(t % c);
        const size_t end = (k + 1) * chunk < m ? (k + 1) * chunk : m;
        const double mu = mean ? mean[ch] : 0.0;
        const float sdf = sd ? (float)sd[ch] : 1.0f, gm = gamma ? gamma[ch] : 1.0f;
        double acc = 0;
        for (size_t p = k * chunk; p < end; p++) {
            const float xv = x[p * c + ch];
            if (what == SUM_X) {
                acc += xv;
            } else if (what == SUM_SQDEV) {
                const double d = xv - mu;
                acc += d * d;
            } else {
                float g = dy[p * c + ch];
                if (what == SUM_DY_X_RELU) {
                    const float v = (xv / sdf) * gm;
                    g = !(v > 0) ? 0.0f : g;
                }
                acc += (double)g * xv;
            }
        }
        partial[t] = acc;
    }
}

/* result[ch] = the chunk sums in order, then the post-processing. */
__global__ void k_channel_combine(const double *partial, size_t nchunks, int c, size_t m, int post, double *result) {
    const int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    double s = 0;
    for (size_t k = 0; k < nchunks; k++) s += partial[k * c + ch];
    if (post == POST_MEAN) s /= (double)m;
    else if (post == POST_SD) s = sqrt(s / (double)m + BN_EPS);
    result[ch] = s;
}

static int channel_sums(cudaStream_t s, int what, const float *x, const float *dy, size_t m, int c, size_t chunk,
                        const double *mean, const float *gamma, const double *sd, int post, double *partial,
                        double *result) {
    const size_t nchunks = chunks_of(m, chunk), total = nchunks * (size_t)c;
    if (total) k_channel_partials<<<blocks_for(total), THREADS, 0, s>>>(what, x, dy, m, c, chunk, mean, gamma, sd, partial);
    k_channel_combine<<<(c + 63) / 64, 64, 0, s>>>(partial, nchunks, c, m, post, result);
    return (int)cudaGetLastError();
}

__global__ void k_bn_apply(size_t n, const float *x, int c, const float *gamma, const double *sd, int relu, float *y) {
    GRID_STRIDE(i, n) {
        const int ch = (int)(i % c);
        const float v = (x[i] / (float)sd[ch]) * gamma[ch];
        y[i] = relu ? (v > 0 ? v : 0.0f) : v;
    }
}

/* From S = sum(dy x) in ab[0..c): dgamma, and the coefficients a (ab[0..c))
 * and b (ab[c..2c)) of dx = a (dy - b (x - mean)). */
__global__ void k_bn_coefficients(int c, size_t m, const float *gamma, const double *mean, const double *sd,
                                  float *dgamma, double *ab) {
    const int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    const double S = ab[ch];
    dgamma[ch] = (float)(S / sd[ch]);
    ab[ch] = gamma[ch] / sd[ch];
    ab[c + ch] = mean ? S / (sd[ch] * sd[ch] * (double)m) : 0.0;
}

__global__ void k_bn_grad(size_t n, const float *x, const float *dy, int c, const float *gamma, const double *sd,
                          const double *mean, const double *ab, int relu, float *dx) {
    GRID_STRIDE(i, n) {
        const int ch = (int)(i % c);
        const float xv = x[i], v = (xv / (float)sd[ch]) * gamma[ch];
        float g = dy[i];
        g = relu && !(v > 0) ? 0.0f : g;
        const double mu = mean ? mean[ch] : 0.0;
        dx[i] = (float)(ab[ch] * ((double)g - ab[c + ch] * (xv - mu)));
    }
}

__global__ void k_bn_running(wcm_bn_running_mode mode, int c, double *sd, float *running, double *acc, double value) {
    const int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    if (mode == WCM_BN_RUNNING_UPDATE) running[ch] = (float)(1.0 - value) * running[ch] + (float)value * (float)sd[ch];
    else if (mode == WCM_BN_RUNNING_LOAD) sd[ch] = running[ch];
    else if (mode == WCM_BN_RUNNING_ACCUMULATE) acc[ch] += sd[ch] * sd[ch];
    else running[ch] = (float)sqrt(acc[ch] / value);
}

__global__ void k_bn_fold(size_t n, int cout, const float *w, const float *gamma, const float *running, float *out) {
    GRID_STRIDE(i, n) {
        const int c = (int)(i % cout);
        const float scale = gamma ? gamma[c] / running[c] : 1.0f;
        out[i] = w[i] * scale;
    }
}

/* One thread per output channel: its rows in order, as the CPU does. */
__global__ void k_bn_fold_backward(size_t rows, int cout, const float *w, const float *gamma, const float *running,
                                   const float *dout, float *dw, float *dgamma) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cout) return;
    const float scale = gamma ? gamma[c] / running[c] : 1.0f;
    double s = 0;
    for (size_t r = 0; r < rows; r++) {
        dw[r * cout + c] = dout[r * cout + c] * scale;
        s += (double)dout[r * cout + c] * w[r * cout + c];
    }
    if (gamma) dgamma[c] = (float)(s / running[c]);
}

extern "C" {
size_t wcm_cu_partials(size_t m, size_t chunk, int c) {
    if (!chunk) chunk = CHUNK;
    return 2 * (chunks_of(m, chunk) + 1) * (size_t)(c > 0 ? c : 1);
}

int wcm_cu_bn_stats(cudaStream_t s, const float *x, size_t m, int c, double *mean, double *sd, double *partial) {
    int rc = channel_sums(s, SUM_X, x, NULL, m, c, CHUNK, NULL, NULL, NULL, POST_MEAN, partial, mean);
    if (!rc) rc = channel_sums(s, SUM_SQDEV, x, NULL, m, c, CHUNK, mean, NULL, NULL, POST_SD, partial, sd);
    return rc;
}

int wcm_cu_bn_apply(cudaStream_t s, const float *x, size_t m, int c, const float *gamma, const double *sd, int relu,
                    float *y) {
    const size_t n = m * (size_t)c;
    LAUNCH_N(k_bn_apply, s, n, n, x, c, gamma, sd, relu, y);
}

int wcm_cu_bn_backward(cudaStream_t s, const float *x, const float *dy, size_t m, int c, const float *gamma,
                       const double *mean, const double *sd, int relu, float *dx, float *dgamma, double *partial,
                       double *ab) {
    int rc = channel_sums(s, relu ? SUM_DY_X_RELU : SUM_DY_X, x, dy, m, c, CHUNK, NULL, gamma, sd, POST_NONE, partial, ab);
    if (rc) return rc;
    k_bn_coefficients<<<(c + 63) / 64, 64, 0, s>>>(c, m, gamma, mean, sd, dgamma, ab);
    if ((rc = (int)cudaGetLastError())) return rc;
    const size_t n = m * (size_t)c;
    LAUNCH_N(k_bn_grad, s, n, n, x, dy, c, gamma, sd, mean, ab, relu, dx);
}

int wcm_cu_bn_running(cudaStream_t s, wcm_bn_running_mode mode, int c, double *sd, float *running, double *acc,
                      double value) {
    k_bn_running<<<(c + 63) / 64, 64, 0, s>>>(mode, c, sd, running, acc, value);
    return (int)cudaGetLastError();
}

int wcm_cu_bn_fold(cudaStream_t s, size_t rows, int cout, const float *w, const float *gamma, const float *running,
                   float *out) {
    const size_t n = rows * (size_t)cout;
    LAUNCH_N(k_bn_fold, s, n, n, cout, w, gamma, running, out);
}

int wcm_cu_bn_fold_backward(cudaStream_t s, size_t rows, int cout, const float *w, const float *gamma,
                            const float *running, const float *dout, float *dw, float *dgamma) {
    if (cout <= 0) return 0;
    k_bn_fold_backward<<<(cout + 63) / 64, 64, 0, s>>>(rows, cout, w, gamma, running, dout, dw, dgamma);
    return (int)cudaGetLastError();
}

int wcm_cu_channel_reduce(cudaStream_t s, wcm_reduce_kind kind, size_t m, int c, const float *x, const double *center,
                          size_t chunk, double *partial, double *result) {
    if (!chunk) chunk = m ? m : 1;
    return channel_sums(s, kind == WCM_REDUCE_SUM ? SUM_X : SUM_SQDEV, x, NULL, m, c, chunk, center, NULL, NULL,
                        POST_NONE, partial, result);
}
}

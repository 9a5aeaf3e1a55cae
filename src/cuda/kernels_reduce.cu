/* Flat reductions and the loss of the CUDA backend (src/cpu/vector_cpu.c,
 * train_cpu.c): the values are summed in the caller's fixed chunks, each in
 * order, then the chunk sums in order, as on the CPU, so the results are the
 * CPU's bits. One warp takes a chunk: its lanes load 32 consecutive values
 * at a time and lane 0 adds them in order. Min/max and non-finite counts do
 * not depend on the order, so they run on chunks of their own size. */
#include <math.h>

#include "cuda/cuda_kernels.h"
#include "cuda/cuda_launch.cuh"

#define FULL_MASK 0xffffffffu
#define WARPS_PER_BLOCK (THREADS / 32)
/* Chunk of the order-independent kinds. */
#define FREE_CHUNK 8192
/* Values per chunk of the loss (the CPU's REDUCE_CHUNK). */
#define LOSS_CHUNK 1024

/* The summand of value i (doubles, as the CPU's reduce_chunk forms them). */
__device__ static double summand(wcm_reduce_kind kind, const float *x, const float *y, double center, size_t i) {
    if (kind == WCM_REDUCE_SUM) return (double)x[i];
    if (kind == WCM_REDUCE_SUMSQ) {
        const double v = (double)x[i] - center;
        return v * v;
    }
    if (kind == WCM_REDUCE_SQDIFF) {
        const double d = (double)x[i] - y[i];
        return d * d;
    }
    return isfinite(x[i]) ? 0.0 : 1.0;
}

/* partial[k] = the sum of chunk k in order (sums); min and max of chunk k
 * over its non-NaN values from +-infinity (MINMAX, 2 values per chunk). */
__global__ void k_reduce_partials(wcm_reduce_kind kind, size_t n, const float *x, const float *y, double center,
                                  size_t chunk, size_t nchunks, double *partial) {
    const size_t k = (size_t)blockIdx.x * WARPS_PER_BLOCK + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (k >= nchunks) return; /* the whole warp */
    const size_t b = k * chunk, e = b + chunk < n ? b + chunk : n;
    if (kind == WCM_REDUCE_MINMAX) {
        float lo = INFINITY, hi = -INFINITY;
        for (size_t i = b + lane; i < e; i += 32) {
            if (x[i] < lo) lo = x[i];
            if (x[i] > hi) hi = x[i];
        }
        for (int off = 16; off > 0; off /= 2) {
            lo = fminf(lo, __shfl_down_sync(FULL_MASK, lo, off));
            hi = fmaxf(hi, __shfl_down_sync(FULL_MASK, hi, off));
        }
        if (lane == 0) partial[2 * k] = lo, partial[2 * k + 1] = hi;
        return;
    }
    double s = 0;
    for (size_t base = b; base < e; base += 32) {
        const size_t i = base + lane;
        const double v = i < e ? summand(kind, x, y, center, i) : 0.0;
        const int valid = e - base < 32 ? (int)(e - base) : 32;
        for (int j = 0; j < 32; j++) {
            const double t = __shfl_sync(FULL_MASK, v, j);
            if (lane == 0 && j < valid) s += t;
        }
    }
    if (lane == 0) partial[k] = s;
}

/* The chunk results in order; MINMAX starts the scan from x[0] (a NaN there
 * stays, as in the sequential scan). */
__global__ void k_reduce_combine(wcm_reduce_kind kind, const float *x, const double *partial, size_t nchunks,
                                 double *result) {
    if (kind == WCM_REDUCE_MINMAX) {
        double lo = x[0], hi = x[0];
        for (size_t k = 0; k < nchunks; k++) {
            if (partial[2 * k] < lo) lo = partial[2 * k];
            if (partial[2 * k + 1] > hi) hi = partial[2 * k + 1];
        }
        result[0] = lo;
        result[1] = hi;
        return;
    }
    double total = 0.0;
    for (size_t k = 0; k < nchunks; k++) total += partial[k];
    result[0] = total;
}

/* The loss: dout per value, and chunk sums of squared differences. */
__global__ void k_loss_partials(size_t n, const float *out, const float *target, double scale, float *dout,
                                size_t nchunks, double *partial) {
    const size_t k = (size_t)blockIdx.x * WARPS_PER_BLOCK + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (k >= nchunks) return;
    const size_t b = k * LOSS_CHUNK, e = b + LOSS_CHUNK < n ? b + LOSS_CHUNK : n;
    double s = 0;
    for (size_t base = b; base < e; base += 32) {
        const size_t i = base + lane;
        double sq = 0.0;
        if (i < e) {
            const double d = (double)out[i] - target[i];
            sq = d * d;
            if (dout) dout[i] = (float)(scale * d);
        }
        const int valid = e - base < 32 ? (int)(e - base) : 32;
        for (int j = 0; j < 32; j++) {
            const double t = __shfl_sync(FULL_MASK, sq, j);
            if (lane == 0 && j < valid) s += t;
        }
    }
    if (lane == 0) partial[k] = s;
}

__global__ void k_loss_combine(const double *partial, size_t nchunks, int batch, double *result) {
    double total = 0;
    for (size_t k = 0; k < nchunks; k++) total += partial[k];
    result[0] = total / batch;
}

static unsigned warp_blocks(size_t nchunks) { return (unsigned)((nchunks + WARPS_PER_BLOCK - 1) / WARPS_PER_BLOCK); }

extern "C" {
int wcm_cu_reduce(cudaStream_t s, wcm_reduce_kind kind, size_t n, const float *x, const float *y, double center,
                  size_t chunk, double *partial, double *result) {
    if (kind == WCM_REDUCE_MINMAX || kind == WCM_REDUCE_NONFINITE) chunk = FREE_CHUNK;
    if (!chunk || chunk > n) chunk = n ? n : 1;
    const size_t nchunks = (n + chunk - 1) / chunk;
    if (nchunks) k_reduce_partials<<<warp_blocks(nchunks), THREADS, 0, s>>>(kind, n, x, y, center, chunk, nchunks, partial);
    k_reduce_combine<<<1, 1, 0, s>>>(kind, x, partial, nchunks, result);
    return (int)cudaGetLastError();
}

int wcm_cu_loss_sse(cudaStream_t s, size_t n, const float *out, const float *target, int batch, float *dout,
                    double *partial, double *result) {
    const size_t nchunks = (n + LOSS_CHUNK - 1) / LOSS_CHUNK;
    if (nchunks)
        k_loss_partials<<<warp_blocks(nchunks), THREADS, 0, s>>>(n, out, target, 2.0 / batch, dout, nchunks, partial);
    k_loss_combine<<<1, 1, 0, s>>>(partial, nchunks, batch, result);
    return (int)cudaGetLastError();
}
}

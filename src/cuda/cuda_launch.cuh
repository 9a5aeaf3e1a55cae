/* Launch geometry shared by the CUDA kernels: grid-stride loops over n
 * values in blocks of THREADS. */
#ifndef WCM_CUDA_LAUNCH_CUH
#define WCM_CUDA_LAUNCH_CUH

#include <cuda_runtime.h>
#include <stddef.h>

#define THREADS 256
#define MAX_BLOCKS 65535u

static inline unsigned blocks_for(size_t n) {
    size_t b = (n + THREADS - 1) / THREADS;
    return b == 0 ? 1u : b > MAX_BLOCKS ? MAX_BLOCKS : (unsigned)b;
}

#define GRID_STRIDE(i, n) \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

/* Launches kernel<<<blocks_for(n), THREADS, 0, s>>>(args) and returns the launch status. */
#define LAUNCH_N(kernel, s, n, ...)                                      \
    do {                                                                 \
        if ((n) == 0) return 0;                                          \
        kernel<<<blocks_for(n), THREADS, 0, (s)>>>(__VA_ARGS__);         \
        return (int)cudaGetLastError();                                  \
    } while (0)

#endif

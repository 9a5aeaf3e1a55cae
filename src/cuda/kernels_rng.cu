/* Philox noise fills of the CUDA backend: the streams of wcm/rng.h (src/rng.c),
 * one thread per block of two values. Uniform values are exact integer
 * arithmetic and match the host's bits. Normals use Box-Muller in double:
 * the GPU's log, sin and cos are within a few ulps of the host's, which
 * changes a value's float rounding only when the double lies next to a
 * rounding boundary; such values (about one in 2^19) are listed for the host
 * to recompute with its own functions, so every value is the host's. */
#include "cuda/cuda_kernels.h"
#include "cuda/cuda_launch.cuh"

#define PHILOX_MUL0 0xD2511F53u
#define PHILOX_MUL1 0xCD9E8D57u
#define PHILOX_BUMP0 0x9E3779B9u
#define PHILOX_BUMP1 0xBB67AE85u

__device__ static void block_words(uint64_t seed, uint64_t stream, uint64_t block, uint64_t w[2]) {
    uint32_t c0 = (uint32_t)block, c1 = (uint32_t)(block >> 32), c2 = (uint32_t)stream, c3 = (uint32_t)(stream >> 32);
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            k0 += PHILOX_BUMP0;
            k1 += PHILOX_BUMP1;
        }
        const uint64_t p = (uint64_t)PHILOX_MUL0 * c0, q = (uint64_t)PHILOX_MUL1 * c2;
        const uint32_t n0 = (uint32_t)(q >> 32) ^ c1 ^ k0, n1 = (uint32_t)q;
        const uint32_t n2 = (uint32_t)(p >> 32) ^ c3 ^ k1, n3 = (uint32_t)p;
        c0 = n0, c1 = n1, c2 = n2, c3 = n3;
    }
    w[0] = (uint64_t)c0 | ((uint64_t)c1 << 32);
    w[1] = (uint64_t)c2 | ((uint64_t)c3 << 32);
}

/* Non-zero when (float)v could differ from the float rounding of a double
 * within 2^-44 relative of v (the host's value is far closer than that). */
__device__ static int near_boundary(double v) {
    const double margin = fabs(v) * 0x1p-44;
    return (float)(v - margin) != (float)(v + margin);
}

__global__ void k_philox(int uniform, uint64_t seed, uint64_t stream, uint64_t offset, size_t n, uint64_t first_block,
                         size_t nblocks, float *out, unsigned long long *suspect, unsigned cap) {
    const double INV_2POW53 = 1.0 / 9007199254740992.0, TWO_PI = 6.283185307179586476925286766559;
    const float INV_2POW24 = 1.0f / 16777216.0f;
    GRID_STRIDE(k, nblocks) {
        const uint64_t block = first_block + k;
        uint64_t w[2];
        block_words(seed, stream, block, w);
        double v[2];
        float f[2];
        if (uniform) {
            f[0] = (float)(w[0] >> 40) * INV_2POW24;
            f[1] = (float)(w[1] >> 40) * INV_2POW24;
        } else {
            const double u_radius = (double)((w[0] >> 11) + 1) * INV_2POW53;
            const double radius = sqrt(-2.0 * log(u_radius));
            const double angle = TWO_PI * ((double)(w[1] >> 11) * INV_2POW53);
            v[0] = radius * cos(angle);
            v[1] = radius * sin(angle);
            f[0] = (float)v[0];
            f[1] = (float)v[1];
        }
        for (int j = 0; j < 2; j++) {
            const uint64_t index = 2 * block + (uint64_t)j;
            if (index < offset || index - offset >= n) continue;
            out[index - offset] = f[j];
            if (!uniform && near_boundary(v[j])) {
                const unsigned long long slot = atomicAdd(&suspect[0], 1ull);
                if (slot < cap) suspect[1 + slot] = index - offset;
            }
        }
    }
}

extern "C" int wcm_cu_fill_philox(cudaStream_t s, int uniform, uint64_t seed, uint64_t stream, uint64_t offset, size_t n,
                                  float *out, unsigned long long *suspect, unsigned cap) {
    if (n == 0) return 0;
    const uint64_t first_block = offset >> 1, last_block = (offset + n - 1) >> 1;
    const size_t nblocks = (size_t)(last_block - first_block + 1);
    k_philox<<<blocks_for(nblocks), THREADS, 0, s>>>(uniform, seed, stream, offset, n, first_block, nblocks, out, suspect,
                                                     cap);
    return (int)cudaGetLastError();
}

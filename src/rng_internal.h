/* The pieces of the Philox streams (wcm/rng.h) that every backend's noise
 * fill shares, so that all of them produce the same values. */
#ifndef WCM_RNG_INTERNAL_H
#define WCM_RNG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Values 2 block and 2 block + 1 of (seed, stream): normals, or uniform
 * floats when uniform != 0. */
void wcm_rng_pair(int uniform, uint64_t seed, uint64_t stream, uint64_t block, float out[2]);
/* The CPU backend's fill of host memory (src/cpu/image_cpu.c): out[i] =
 * normal (uniform != 0: uniform float) offset + i of (seed, stream), on the
 * calling thread's OpenMP team. */
void wcm_cpu_fill_philox(int uniform, uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float *out);

#endif

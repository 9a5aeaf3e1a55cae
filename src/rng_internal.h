/* The pieces of the Philox streams (wcm/rng.h) that every backend's noise
 * fill shares, so that all of them produce the same values. */
#ifndef WCM_RNG_INTERNAL_H
#define WCM_RNG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* The two 64-bit words of block `block` of (seed, stream). */
void wcm_rng_block_words(uint64_t seed, uint64_t stream, uint64_t block, uint64_t words[2]);
/* Normals 2 block and 2 block + 1 of (seed, stream), before rounding to float. */
void wcm_rng_normal_block(uint64_t seed, uint64_t stream, uint64_t block, double out[2]);
/* The uniform float of one word: (w >> 40) * 2^-24. */
float wcm_rng_uniform_float(uint64_t w);
/* The CPU backend's fill of host memory (src/cpu/image_cpu.c): out[i] =
 * normal (uniform != 0: uniform float) offset + i of (seed, stream), on the
 * calling thread's OpenMP team. */
void wcm_cpu_fill_philox(int uniform, uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float *out);

#endif

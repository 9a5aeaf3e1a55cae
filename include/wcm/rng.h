/* wcm — counter-based random numbers whose values never depend on threads.
 *
 * Algorithm (fixed; anyone can reproduce the streams from this description):
 *
 *   Block function: Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random
 *   numbers: as easy as 1, 2, 3", SC 2011). State: counter words c0..c3, key
 *   words k0,k1 (all uint32). One round:
 *       p = 0xD2511F53 * c0 (64-bit product),  q = 0xCD9E8D57 * c2
 *       (c0, c1, c2, c3) <- (hi(q) ^ c1 ^ k0, lo(q), hi(p) ^ c3 ^ k1, lo(p))
 *   Ten rounds; between consecutive rounds the key is bumped:
 *       k0 += 0x9E3779B9, k1 += 0xBB67AE85  (mod 2^32).
 *   Known answer: counter 0, key 0 -> 6627e8d5 e169c58d bc57ac4c 9b00dbd8.
 *
 *   Mapping of (seed, stream, index):
 *       key     = (k0, k1)         = (seed low 32 bits, seed high 32 bits)
 *       counter = (c0, c1, c2, c3) = (b low, b high, stream low, stream high)
 *   where b = index / 2 is the block number. A block's output words
 *   (o0, o1, o2, o3) form two 64-bit words  w0 = o0 | o1 << 32  and
 *   w1 = o2 | o3 << 32. "Word i" of (seed, stream) is w[i % 2] of block i / 2.
 *
 *   uniform double  u(w)  = (w >> 11) * 2^-53            in [0, 1)
 *   uniform float   uf(w) = (w >> 40) * 2^-24            in [0, 1)
 *   normal pair from block b (Box-Muller, in double, then rounded to float):
 *       r = sqrt(-2 ln(((w0 >> 11) + 1) * 2^-53)),  a = 2 pi u(w1)
 *       normal 2b = r cos a,  normal 2b+1 = r sin a
 *
 * Hence normal i (or uniform i) of (seed, stream) is a pure function of
 * (seed, stream, i): filling a buffer with any number of OpenMP threads gives
 * bit-identical results (given the same libm). Uniform and normal fills with
 * the same (seed, stream) use the same underlying words; give independent
 * uses different streams. */
#ifndef WCM_RNG_H
#define WCM_RNG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The raw block function: out = Philox4x32-10(counter, key). */
void wcm_philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]);

/* Word `index` of (seed, stream), as defined above. */
uint64_t wcm_rng_word(uint64_t seed, uint64_t stream, uint64_t index);

/* out[i] = normal number (offset + i) of (seed, stream); N(0, 1), float.
 * OpenMP-parallel for large n; the result does not depend on the thread count. */
void wcm_randn_fill(uint64_t seed, uint64_t stream, uint64_t offset, float *out, size_t n);

/* out[i] = uf(word offset + i) of (seed, stream): uniform floats in [0, 1). */
void wcm_rand_uniform_fill(uint64_t seed, uint64_t stream, uint64_t offset, float *out, size_t n);

/* A small sequential generator over the same words: the k-th call of
 * wcm_rng_next_u64 after wcm_rng_seed returns word k of (seed, stream). */
typedef struct {
    uint64_t seed, stream;
    uint64_t next_index; /* index of the next word to hand out */
} wcm_rng;

void wcm_rng_seed(wcm_rng *rng, uint64_t seed, uint64_t stream);
uint64_t wcm_rng_next_u64(wcm_rng *rng);
/* Uniform double in [0, 1) from one word (53 bits). */
double wcm_rng_uniform(wcm_rng *rng);
/* Standard normal double from two consecutive words (w0, w1), Box-Muller
 * cosine branch as above (the sine partner is not cached, so the value is a
 * pure function of the generator position). */
double wcm_rng_normal(wcm_rng *rng);
/* Unbiased integer in [0, n) by rejection: draws words w until
 * w >= (2^64 - n) mod n, returns w mod n. n == 0 returns 0 without drawing. */
uint64_t wcm_rng_below(wcm_rng *rng, uint64_t n);

#ifdef __cplusplus
}
#endif
#endif

/* Counter-based random numbers (Philox4x32-10); the algorithm is specified in
 * include/wcm/rng.h. Every value is a pure function of (seed, stream, index),
 * so parallel fills are independent of the thread count. */
#include "wcm/rng.h"

#include <math.h>

#include "rng_internal.h"

#define PHILOX_MUL0 0xD2511F53u
#define PHILOX_MUL1 0xCD9E8D57u
#define PHILOX_BUMP0 0x9E3779B9u
#define PHILOX_BUMP1 0xBB67AE85u
#define PHILOX_ROUNDS 10

static const double TWO_PI = 6.283185307179586476925286766559;
static const double INV_2POW53 = 1.0 / 9007199254740992.0;
static const float INV_2POW24 = 1.0f / 16777216.0f;

void wcm_philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < PHILOX_ROUNDS; round++) {
        if (round > 0) {
            k0 += PHILOX_BUMP0;
            k1 += PHILOX_BUMP1;
        }
        uint64_t p = (uint64_t)PHILOX_MUL0 * c0;
        uint64_t q = (uint64_t)PHILOX_MUL1 * c2;
        uint32_t n0 = (uint32_t)(q >> 32) ^ c1 ^ k0;
        uint32_t n1 = (uint32_t)q;
        uint32_t n2 = (uint32_t)(p >> 32) ^ c3 ^ k1;
        uint32_t n3 = (uint32_t)p;
        c0 = n0;
        c1 = n1;
        c2 = n2;
        c3 = n3;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

/* The two 64-bit words of block `block` of (seed, stream). */
static void block_words(uint64_t seed, uint64_t stream, uint64_t block, uint64_t words[2]) {
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    const uint32_t counter[4] = {(uint32_t)block, (uint32_t)(block >> 32), (uint32_t)stream,
                                 (uint32_t)(stream >> 32)};
    uint32_t o[4];
    wcm_philox4x32_10(counter, key, o);
    words[0] = (uint64_t)o[0] | ((uint64_t)o[1] << 32);
    words[1] = (uint64_t)o[2] | ((uint64_t)o[3] << 32);
}

uint64_t wcm_rng_word(uint64_t seed, uint64_t stream, uint64_t index) {
    uint64_t w[2];
    block_words(seed, stream, index >> 1, w);
    return w[index & 1];
}

static inline double uniform_from_word(uint64_t w) { return (double)(w >> 11) * INV_2POW53; }

/* Box-Muller on one word pair; the first uniform lies in (0, 1] so log is finite. */
static inline void normal_pair(uint64_t w0, uint64_t w1, double *cos_part, double *sin_part) {
    double u_radius = (double)((w0 >> 11) + 1) * INV_2POW53;
    double radius = sqrt(-2.0 * log(u_radius));
    double angle = TWO_PI * uniform_from_word(w1);
    *cos_part = radius * cos(angle);
    *sin_part = radius * sin(angle);
}

void wcm_rng_pair(int uniform, uint64_t seed, uint64_t stream, uint64_t block, float out[2]) {
    uint64_t w[2];
    block_words(seed, stream, block, w);
    if (uniform) {
        out[0] = (float)(w[0] >> 40) * INV_2POW24;
        out[1] = (float)(w[1] >> 40) * INV_2POW24;
        return;
    }
    double c, s;
    normal_pair(w[0], w[1], &c, &s);
    out[0] = (float)c;
    out[1] = (float)s;
}

/* Host buffers: the CPU backend's fills, on the calling thread's OpenMP team. */
void wcm_randn_fill(uint64_t seed, uint64_t stream, uint64_t offset, float *out, size_t n) {
    wcm_cpu_fill_philox(0, seed, stream, offset, n, out);
}

void wcm_rand_uniform_fill(uint64_t seed, uint64_t stream, uint64_t offset, float *out, size_t n) {
    wcm_cpu_fill_philox(1, seed, stream, offset, n, out);
}

void wcm_rng_seed(wcm_rng *rng, uint64_t seed, uint64_t stream) {
    rng->seed = seed;
    rng->stream = stream;
    rng->next_index = 0;
}

uint64_t wcm_rng_next_u64(wcm_rng *rng) {
    return wcm_rng_word(rng->seed, rng->stream, rng->next_index++);
}

double wcm_rng_uniform(wcm_rng *rng) { return uniform_from_word(wcm_rng_next_u64(rng)); }

double wcm_rng_normal(wcm_rng *rng) {
    uint64_t w0 = wcm_rng_next_u64(rng);
    uint64_t w1 = wcm_rng_next_u64(rng);
    double c, s;
    normal_pair(w0, w1, &c, &s);
    return c;
}

uint64_t wcm_rng_below(wcm_rng *rng, uint64_t n) {
    if (n == 0) return 0;
    /* 2^64 mod n, computed in 64-bit arithmetic; words below it would favour small results. */
    const uint64_t reject_below = (0 - n) % n;
    for (;;) {
        uint64_t w = wcm_rng_next_u64(rng);
        if (w >= reject_below) return w % n;
    }
}

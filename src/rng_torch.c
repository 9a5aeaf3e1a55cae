/* PyTorch-compatible normal noise: MT19937 + PyTorch's 16-wide Box-Muller. */
#include "wcm/rng_torch.h"

#include <math.h>

typedef struct {
    uint32_t mt[624];
    int index;
} mt19937;

static void mt_seed(mt19937 *g, uint32_t seed) {
    g->mt[0] = seed;
    for (int i = 1; i < 624; i++) g->mt[i] = 1812433253u * (g->mt[i - 1] ^ (g->mt[i - 1] >> 30)) + (uint32_t)i;
    g->index = 624;
}

static uint32_t mt_next(mt19937 *g) {
    if (g->index >= 624) {
        for (int i = 0; i < 624; i++) {
            uint32_t y = (g->mt[i] & 0x80000000u) | (g->mt[(i + 1) % 624] & 0x7fffffffu);
            g->mt[i] = g->mt[(i + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
        }
        g->index = 0;
    }
    uint32_t y = g->mt[g->index++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

static float mt_uniform(mt19937 *g) { return (float)((double)(mt_next(g) & 0xFFFFFFu) * (1.0 / 16777216.0)); }

/* Box-Muller on 16 uniforms in place: pairs (j, j + 8). */
static void normal_16(float *d) {
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - d[j], u2 = d[j + 8];
        float radius = sqrtf(-2.0f * logf(u1));
        float theta = (float)(2.0 * 3.14159265358979323846 * u2);
        d[j] = radius * cosf(theta);
        d[j + 8] = radius * sinf(theta);
    }
}

void wcm_randn_torch(uint64_t seed, float *out, size_t n) {
    if (n == 0) return;
    mt19937 g; /* 2.5 KB: on the stack, so that a fill cannot fail */
    mt_seed(&g, (uint32_t)seed);
    if (n < 16) {
        float block[16];
        for (int i = 0; i < 16; i++) block[i] = mt_uniform(&g);
        normal_16(block);
        for (size_t i = 0; i < n; i++) out[i] = block[i];
        return;
    }
    for (size_t i = 0; i < n; i++) out[i] = mt_uniform(&g);
    for (size_t i = 0; i + 16 <= n; i += 16) normal_16(out + i);
    if (n % 16) {
        float *tail = out + n - 16;
        for (int i = 0; i < 16; i++) tail[i] = mt_uniform(&g);
        normal_16(tail);
    }
}

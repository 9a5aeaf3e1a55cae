/* The reference initialisation of a BF-CNN (docs/model.md §3.4), drawn from the
 * counter-based generator so it is reproducible for any thread count. */
#include "net_internal.h"
#include "wcm/rng.h"

#include <math.h>

/* Streams of the seed reserved for initialisation: one per layer and use. */
#define INIT_STREAM_BASE 0x494E495400000000ULL /* "INIT" */

void wcm_net_init_reference(wcm_net *net, uint64_t seed) {
    for (int l = 0; l < net->nlayers; l++) {
        wcm_layer *L = &net->layers[l];
        size_t count = (size_t)L->k * L->k * L->cin * L->cout;
        /* Kaiming normal, fan-in, gain sqrt(2): std = sqrt(2 / (cin k k)). */
        float std = (float)sqrt(2.0 / ((double)L->cin * L->k * L->k));
        wcm_randn_fill(seed, INIT_STREAM_BASE + 2 * (uint64_t)l, 0, L->weight, count);
        for (size_t i = 0; i < count; i++) L->weight[i] *= std;
        if (!L->bn) continue;
        /* gammas N(0,1) * (2/9/64), clamped to [-0.025, 0.025]; running_sd 1. */
        wcm_randn_fill(seed, INIT_STREAM_BASE + 2 * (uint64_t)l + 1, 0, L->gamma, (size_t)L->cout);
        for (int c = 0; c < L->cout; c++) {
            float g = L->gamma[c] * (float)(2.0 / 9.0 / 64.0);
            L->gamma[c] = g < -0.025f ? -0.025f : g > 0.025f ? 0.025f : g;
            L->running_sd[c] = 1.0f;
        }
    }
    wcm_net_invalidate(net);
}

/* What the network benchmarks share: one case (a network at a batch and
 * size, forward or training step) and random weights of a trained
 * network's scale. */
#ifndef WCM_BENCH_COMMON_H
#define WCM_BENCH_COMMON_H

#include <math.h>

#include "wcm/net.h"
#include "wcm/rng.h"

typedef struct {
    const char *name;
    wcm_net_kind kind;
    int rf, batch, size, train;
} bench_case;

/* Random Kaiming-scaled weights and unit gammas keep activations O(1) (no
 * denormals), like a trained network. */
static inline void bench_randomise(wcm_net *net, uint64_t seed) {
    wcm_rng rng;
    wcm_rng_seed(&rng, seed, 0);
    for (int l = 0; l < wcm_net_nlayers(net); l++) {
        const wcm_layer *L = wcm_net_layer(net, l);
        double sd = sqrt(2.0 / (L->k * L->k * L->cin));
        size_t n = (size_t)L->k * L->k * L->cin * L->cout;
        for (size_t i = 0; i < n; i++) L->weight[i] = (float)(sd * wcm_rng_normal(&rng));
        if (L->bn)
            for (int c = 0; c < L->cout; c++) L->gamma[c] = 1, L->running_sd[c] = 1;
    }
    wcm_net_invalidate(net);
}

#endif

/* Networks with reference-initialised weights and every batch-norm gamma 1,
 * for tests that need no ../shared: the reference's tiny gammas would shrink
 * the activations to denormals, where the checks (rounding differences,
 * finite differences) become weak. */
#ifndef WCM_TEST_RANDOM_NET_H
#define WCM_TEST_RANDOM_NET_H

#include "testutil.h"
#include "wcm/backend.h"
#include "wcm/net.h"

static inline wcm_net *random_net(wcm_net_kind kind, int rf, uint64_t seed) {
    wcm_error err;
    wcm_net *net;
    REQUIRE_OK(wcm_net_create(&net, kind, rf, &err), &err);
    wcm_net_init_reference(net, seed);
    for (int l = 0; l < wcm_net_nlayers(net); l++) {
        const wcm_layer *L = wcm_net_layer(net, l);
        if (L->bn)
            for (int c = 0; c < L->cout; c++) L->gamma[c] = 1.0f;
    }
    wcm_net_invalidate(net);
    return net;
}

#endif

/* The inside of a network (wcm_net is opaque in wcm/net.h): the
 * architecture, the host parameter blocks, the context and the plan. */
#ifndef WCM_NET_INTERNAL_H
#define WCM_NET_INTERNAL_H

#include "backend_impl.h"
#include "wcm/net.h"

struct wcm_net {
    wcm_net_kind kind;
    int rf;               /* receptive field: 2 * (number of 3x3 layers) + 1 */
    int nominal_rf;       /* the RF the architecture rule was built from (lowpass: 40) */
    int cin, cout;
    int nlayers;
    wcm_layer *layers;
    float *params;        /* all trainable values */
    size_t nparams;
    float *running_sd;    /* batch-norm buffers */
    size_t nrunning;
    wcm_context *context; /* NULL: the calling thread's default context */
    /* The plan compiled by a backend (plan_backend) for the context's
     * settings; plan_stale when the values changed since it loaded them. */
    wcm_net_plan *plan;
    const wcm_backend *plan_backend;
    int plan_stale;
};

/* A network of nlayers layers with these kernel sizes (first layer cin
 * channels in, last cout out, WCM_CHANNELS between, batch norm after every
 * middle layer): zero weights, gammas and running_sd 1. */
int wcm_net_build(wcm_net **out, wcm_net_kind kind, int nominal_rf, const int *kernels, int nlayers, int cin, int cout,
                  wcm_error *err);
/* The layer list as backends see it. */
wcm_net_desc wcm_net_describe_layers(const wcm_net *net);

#endif

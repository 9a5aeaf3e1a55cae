/* Helpers of the tiling tests: random images and networks, bit comparisons. */
#ifndef WCM_TILING_UTIL_H
#define WCM_TILING_UTIL_H

#include "random_net.h"
#include "testutil.h"
#include "wcm/backend.h"
#include "wcm/denoise.h"
#include "wcm/image.h"
#include "wcm/tiling.h"

static inline void random_image(wcm_tensor *t, int n, int h, int w, int c, unsigned long long seed) {
    wcm_error err;
    REQUIRE_OK(wcm_tensor_alloc(t, n, h, w, c, &err), &err);
    for (size_t i = 0; i < wcm_tensor_count(t); i++) t->data[i] = t_rand(&seed);
}

static inline double max_diff(const wcm_tensor *a, const wcm_tensor *b) {
    double m = 0;
    for (size_t i = 0; i < wcm_tensor_count(a); i++) {
        const double d = fabs((double)a->data[i] - b->data[i]);
        m = d > m ? d : m;
    }
    return m;
}

static inline int same_bits(const wcm_tensor *a, const wcm_tensor *b) {
    return a->n == b->n && a->h == b->h && a->w == b->w && a->c == b->c &&
           !memcmp(a->data, b->data, wcm_tensor_count(a) * sizeof(float));
}

/* One network on an h x w image, whole and with output tiles of `tile`. */
static inline void net_case(const char *what, wcm_net *net, int h, int w, int tile) {
    wcm_error err;
    wcm_tensor x, whole = {0}, tiled = {0};
    random_image(&x, 1, h, w, wcm_net_cin(net), (unsigned long long)h * 7919 + w);
    REQUIRE_OK(wcm_net_forward(net, &x, &whole, &err), &err);
    const wcm_tiling t = {0, tile};
    const int side = wcm_net_tile_side(net, &t, h, w);
    REQUIRE_OK(wcm_net_forward_tiled(net, &x, &t, &tiled, &err), &err);
    CHECK(side > 0 && side < (h > w ? h : w), "%s %dx%d: tiles of %d (halo %d) really split the image", what, w, h, side,
          wcm_net_tile_halo(net));
    double rms = 0;
    for (size_t i = 0; i < wcm_tensor_count(&whole); i++) rms += (double)whole.data[i] * whole.data[i];
    rms = sqrt(rms / (double)wcm_tensor_count(&whole));
    CHECK(same_bits(&whole, &tiled), "%s %dx%d, tiles of %d: tiled == whole bit for bit (max |diff| %.3g, output rms %.3g)",
          what, w, h, side, max_diff(&whole, &tiled), rms);
    wcm_tensor_free(&x);
    wcm_tensor_free(&whole);
    wcm_tensor_free(&tiled);
}

static inline void random_model(wcm_model *m, int levels) {
    memset(m, 0, sizeof *m);
    m->multiscale = 1;
    m->levels = levels;
    m->low = random_net(WCM_NET_LOWPASS, 0, 10);
    for (int j = 0; j < levels; j++) m->cond[j] = random_net(WCM_NET_CONDITIONAL, 13, 11 + (uint64_t)j);
}

#endif

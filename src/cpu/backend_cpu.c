/* CPU backend: straightforward NHWC loops (vectorisable over output channels).
 * Placeholder until the tuned kernels land. */
#include "wcm/backend.h"

#include <stdlib.h>
#include <string.h>

static int g_winograd = 1;
void wcm_set_winograd(int enabled) { g_winograd = enabled; }
int wcm_get_winograd(void) { return g_winograd; }
const char *wcm_cpu_simd_level(void) { return "portable"; }

static void cpu_conv_forward(const wcm_conv_shape *s, const float *x, const float *w, float *y, int flags) {
    const int H = s->h, W = s->w, CI = s->cin, CO = s->cout, K = s->k, R = K / 2;
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < s->n; n++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++) {
                float acc[256];
                for (int co = 0; co < CO; co++) acc[co] = 0;
                for (int ky = 0; ky < K; ky++) {
                    int yy = i + ky - R;
                    if (yy < 0 || yy >= H) continue;
                    for (int kx = 0; kx < K; kx++) {
                        int xx = j + kx - R;
                        if (xx < 0 || xx >= W) continue;
                        const float *xp = x + (((size_t)n * H + yy) * W + xx) * CI;
                        const float *wp = w + ((size_t)ky * K + kx) * CI * CO;
                        for (int ci = 0; ci < CI; ci++) {
                            float xv = xp[ci];
                            const float *wr = wp + (size_t)ci * CO;
                            for (int co = 0; co < CO; co++) acc[co] += xv * wr[co];
                        }
                    }
                }
                float *yp = y + (((size_t)n * H + i) * W + j) * CO;
                for (int co = 0; co < CO; co++) yp[co] = ((flags & WCM_CONV_RELU) && acc[co] < 0) ? 0 : acc[co];
            }
}

static const wcm_backend cpu_backend = {
    .name = "cpu",
    .conv_forward = cpu_conv_forward,
    .conv_backward_data = 0,
    .conv_backward_weights = 0,
};

const wcm_backend *wcm_backend_cpu(void) {
    static wcm_backend b;
    if (!b.name) {
        b = cpu_backend;
        b.conv_backward_data = wcm_backend_reference()->conv_backward_data;
        b.conv_backward_weights = wcm_backend_reference()->conv_backward_weights;
    }
    return &b;
}

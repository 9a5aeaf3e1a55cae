/* The reference backend: plain loops accumulating in double. Slow and
 * obviously correct; every fast kernel is tested against it. */
#include "wcm/backend.h"

#include <stdlib.h>
#include <string.h>

static void ref_conv_forward(const wcm_conv_shape *s, const float *x, const float *w, float *y, int flags) {
    const int H = s->h, W = s->w, CI = s->cin, CO = s->cout, K = s->k, R = K / 2;
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < s->n; n++)
        for (int i = 0; i < H; i++) {
            double *acc = malloc(sizeof(double) * (size_t)CO);
            for (int j = 0; j < W; j++) {
                for (int co = 0; co < CO; co++) acc[co] = 0;
                for (int ky = 0; ky < K; ky++) {
                    int yy = i + ky - R;
                    if (yy < 0 || yy >= H) continue;
                    for (int kx = 0; kx < K; kx++) {
                        int xx = j + kx - R;
                        if (xx < 0 || xx >= W) continue;
                        const float *xp = x + (((size_t)n * H + yy) * W + xx) * CI;
                        const float *wp = w + ((size_t)ky * K + kx) * CI * CO;
                        for (int ci = 0; ci < CI; ci++)
                            for (int co = 0; co < CO; co++) acc[co] += (double)xp[ci] * wp[(size_t)ci * CO + co];
                    }
                }
                float *yp = y + (((size_t)n * H + i) * W + j) * CO;
                for (int co = 0; co < CO; co++) {
                    double v = acc[co];
                    if ((flags & WCM_CONV_RELU) && v < 0) v = 0;
                    yp[co] = (float)v;
                }
            }
            free(acc);
        }
}

static void ref_conv_backward_data(const wcm_conv_shape *s, const float *dy, const float *w, float *dx) {
    const int H = s->h, W = s->w, CI = s->cin, CO = s->cout, K = s->k, R = K / 2;
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < s->n; n++)
        for (int i = 0; i < H; i++) {
            double *acc = malloc(sizeof(double) * (size_t)CI);
            for (int j = 0; j < W; j++) {
                for (int ci = 0; ci < CI; ci++) acc[ci] = 0;
                /* x[i,j] contributed to y[i - ky + R, j - kx + R] through w[ky][kx]. */
                for (int ky = 0; ky < K; ky++) {
                    int yy = i - ky + R;
                    if (yy < 0 || yy >= H) continue;
                    for (int kx = 0; kx < K; kx++) {
                        int xx = j - kx + R;
                        if (xx < 0 || xx >= W) continue;
                        const float *gp = dy + (((size_t)n * H + yy) * W + xx) * CO;
                        const float *wp = w + ((size_t)ky * K + kx) * CI * CO;
                        for (int ci = 0; ci < CI; ci++) {
                            double a = 0;
                            for (int co = 0; co < CO; co++) a += (double)gp[co] * wp[(size_t)ci * CO + co];
                            acc[ci] += a;
                        }
                    }
                }
                float *dp = dx + (((size_t)n * H + i) * W + j) * CI;
                for (int ci = 0; ci < CI; ci++) dp[ci] = (float)acc[ci];
            }
            free(acc);
        }
}

static void ref_conv_backward_weights(const wcm_conv_shape *s, const float *x, const float *dy, float *dw, int flags) {
    const int H = s->h, W = s->w, CI = s->cin, CO = s->cout, K = s->k, R = K / 2;
    const int taps = K * K;
#pragma omp parallel for collapse(2) schedule(static)
    for (int t = 0; t < taps; t++)
        for (int ci = 0; ci < CI; ci++) {
            int ky = t / K, kx = t % K;
            double *acc = calloc((size_t)CO, sizeof(double));
            for (int n = 0; n < s->n; n++)
                for (int i = 0; i < H; i++) {
                    int yy = i + ky - R;
                    if (yy < 0 || yy >= H) continue;
                    for (int j = 0; j < W; j++) {
                        int xx = j + kx - R;
                        if (xx < 0 || xx >= W) continue;
                        double xv = x[(((size_t)n * H + yy) * W + xx) * CI + ci];
                        const float *gp = dy + (((size_t)n * H + i) * W + j) * CO;
                        for (int co = 0; co < CO; co++) acc[co] += xv * gp[co];
                    }
                }
            float *wp = dw + ((size_t)t * CI + ci) * CO;
            for (int co = 0; co < CO; co++) wp[co] = (float)((flags & WCM_CONV_ACCUMULATE) ? wp[co] + acc[co] : acc[co]);
            free(acc);
        }
}

static const wcm_backend reference_backend = {
    .name = "reference",
    .conv_forward = ref_conv_forward,
    .conv_backward_data = ref_conv_backward_data,
    .conv_backward_weights = ref_conv_backward_weights,
};

const wcm_backend *wcm_backend_reference(void) { return &reference_backend; }

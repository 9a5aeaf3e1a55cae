/* Direct convolutions of the CUDA backend: one thread per output value,
 * summing its taps in a fixed order in double. They serve shapes for which
 * cuDNN offers no deterministic FP32 algorithm, and WCM_CUDA_CONV=direct
 * (a cross-check of cuDNN); far slower than cuDNN, exact to the reference's
 * rounding of each value. Layouts are wcm's: x [n][h][w][cin],
 * y [n][h][w][cout], weights [k][k][cin][cout]; "same" padding k / 2. */
#include "cuda/cuda_kernels.h"
#include "cuda/cuda_launch.cuh"

__global__ void k_conv_forward(wcm_conv_shape s, const float *x, const float *w, float *y, int relu) {
    const size_t total = (size_t)s.n * s.h * s.w * s.cout;
    const int R = s.k / 2;
    GRID_STRIDE(q, total) {
        const int co = (int)(q % s.cout), j = (int)(q / s.cout % s.w), i = (int)(q / s.cout / s.w % s.h);
        const size_t n = q / s.cout / s.w / s.h;
        double acc = 0;
        for (int ky = 0; ky < s.k; ky++) {
            const int yy = i + ky - R;
            if (yy < 0 || yy >= s.h) continue;
            for (int kx = 0; kx < s.k; kx++) {
                const int xx = j + kx - R;
                if (xx < 0 || xx >= s.w) continue;
                const float *xp = x + ((n * s.h + yy) * s.w + xx) * s.cin;
                const float *wp = w + ((size_t)ky * s.k + kx) * s.cin * s.cout + co;
                for (int ci = 0; ci < s.cin; ci++) acc += (double)xp[ci] * wp[(size_t)ci * s.cout];
            }
        }
        y[q] = relu && acc < 0 ? 0.0f : (float)acc;
    }
}

__global__ void k_conv_backward_data(wcm_conv_shape s, const float *dy, const float *w, float *dx) {
    const size_t total = (size_t)s.n * s.h * s.w * s.cin;
    const int R = s.k / 2;
    GRID_STRIDE(q, total) {
        const int ci = (int)(q % s.cin), j = (int)(q / s.cin % s.w), i = (int)(q / s.cin / s.w % s.h);
        const size_t n = q / s.cin / s.w / s.h;
        double acc = 0;
        /* x[i, j] fed y[i - ky + R, j - kx + R] through w[ky][kx]. */
        for (int ky = 0; ky < s.k; ky++) {
            const int yy = i - ky + R;
            if (yy < 0 || yy >= s.h) continue;
            for (int kx = 0; kx < s.k; kx++) {
                const int xx = j - kx + R;
                if (xx < 0 || xx >= s.w) continue;
                const float *gp = dy + ((n * s.h + yy) * s.w + xx) * s.cout;
                const float *wp = w + (((size_t)ky * s.k + kx) * s.cin + ci) * s.cout;
                for (int co = 0; co < s.cout; co++) acc += (double)gp[co] * wp[co];
            }
        }
        dx[q] = (float)acc;
    }
}

__global__ void k_conv_backward_weights(wcm_conv_shape s, const float *x, const float *dy, float *dw, int accumulate) {
    const size_t total = (size_t)s.k * s.k * s.cin * s.cout;
    const int R = s.k / 2;
    GRID_STRIDE(q, total) {
        const int co = (int)(q % s.cout), ci = (int)(q / s.cout % s.cin), t = (int)(q / s.cout / s.cin);
        const int ky = t / s.k, kx = t % s.k;
        double acc = 0;
        for (int n = 0; n < s.n; n++)
            for (int i = 0; i < s.h; i++) {
                const int yy = i + ky - R;
                if (yy < 0 || yy >= s.h) continue;
                for (int j = 0; j < s.w; j++) {
                    const int xx = j + kx - R;
                    if (xx < 0 || xx >= s.w) continue;
                    acc += (double)x[(((size_t)n * s.h + yy) * s.w + xx) * s.cin + ci] *
                           dy[(((size_t)n * s.h + i) * s.w + j) * s.cout + co];
                }
            }
        dw[q] = accumulate ? dw[q] + (float)acc : (float)acc;
    }
}

extern "C" {
int wcm_cu_conv_forward_direct(cudaStream_t st, const wcm_conv_shape *s, const float *x, const float *w, float *y,
                               int relu) {
    const size_t total = (size_t)s->n * s->h * s->w * s->cout;
    LAUNCH_N(k_conv_forward, st, total, *s, x, w, y, relu);
}
int wcm_cu_conv_backward_data_direct(cudaStream_t st, const wcm_conv_shape *s, const float *dy, const float *w,
                                     float *dx) {
    const size_t total = (size_t)s->n * s->h * s->w * s->cin;
    LAUNCH_N(k_conv_backward_data, st, total, *s, dy, w, dx);
}
int wcm_cu_conv_backward_weights_direct(cudaStream_t st, const wcm_conv_shape *s, const float *x, const float *dy,
                                        float *dw, int accumulate) {
    const size_t total = (size_t)s->k * s->k * s->cin * s->cout;
    LAUNCH_N(k_conv_backward_weights, st, total, *s, x, dy, dw, accumulate);
}
}

/* wcm — compute backends (in the spirit of ggml's): the numerical ops a
 * network needs, behind a table of function pointers. The CPU backend picks
 * AVX-512 / AVX2 / portable kernels at run time; a double-precision
 * reference backend exists for tests. A CUDA backend is planned. */
#ifndef WCM_BACKEND_H
#define WCM_BACKEND_H

#include "wcm/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A stride-1 "same" convolution without bias on NHWC tensors.
 * x: [n][h][w][cin], y: [n][h][w][cout], weights: [k][k][cin][cout], k = 1 or 3. */
typedef struct {
    int n, h, w, cin, cout, k;
} wcm_conv_shape;

enum {
    WCM_CONV_RELU = 1,        /* forward: y = max(conv, 0) */
    WCM_CONV_ACCUMULATE = 2,  /* backward-weights: dw += instead of dw = */
};

typedef struct wcm_backend {
    const char *name;
    /* y = conv(x, w), ReLU fused when flags & WCM_CONV_RELU. */
    void (*conv_forward)(const wcm_conv_shape *s, const float *x, const float *w, float *y, int flags);
    /* dx = transposed conv(dy, w): gradient of the input. */
    void (*conv_backward_data)(const wcm_conv_shape *s, const float *dy, const float *w, float *dx);
    /* dw = sum over pixels of x (shifted) * dy; accumulate into dw with
     * WCM_CONV_ACCUMULATE. Must not depend on the thread count. */
    void (*conv_backward_weights)(const wcm_conv_shape *s, const float *x, const float *dy, float *dw, int flags);

    /* Optional inference plans (NULL in a backend without them; networks then
     * call conv_forward). A plan is a layer's weights prepared once in the
     * backend's own layout (e.g. Winograd-transformed); with the working
     * memory sized up front, a forward pass then allocates nothing.
     * plan_size: floats of the plan of a layer with shape s (n, h, w ignored).
     * plan: fill it from forward weights w (call again when w changes, or when
     *   the Winograd setting changes).
     * scratch_size: floats of working memory forward_plan needs for shape s
     *   (for all threads), or forward_pointwise for s->n*h*w pixels and up to
     *   max(cin, cout) channels when pointwise != 0.
     * forward_plan: as conv_forward.
     * forward_pointwise: a run of nlayers consecutive 1x1 layers (shapes[l],
     *   flags[l]) from x to y, computed tile by tile so the intermediate
     *   activations stay in cache; x and y must not overlap.
     * can_shift, forward_shifted (optional pair): whether forward_shifted
     *   pays for layer s with this plan; forward_shifted computes it as
     *   forward_plan but over the input's own buffer, or returns -1 without
     *   writing anything when the plan cannot (no Winograd part, cin != cout,
     *   or a size where forward_plan takes Winograd F(6x6)):
     *   y = x - WCM_SHIFT_ROWS rows (up, down == 0) or x + WCM_SHIFT_ROWS
     *   rows (down); rows of w * cout floats, the n images one stack of rows
     *   (cin = cout). The buffer must extend that far beyond the stack.
     *   Output lines are then input lines still in cache rather than lines
     *   fetched only to be overwritten. */
    size_t (*plan_size)(const wcm_conv_shape *s);
    void (*plan)(const wcm_conv_shape *s, const float *w, float *plan);
    size_t (*scratch_size)(const wcm_conv_shape *s, int pointwise);
    void (*forward_plan)(const wcm_conv_shape *s, const float *x, const float *plan, float *y, int flags, float *scratch);
    void (*forward_pointwise)(int nlayers, const wcm_conv_shape *shapes, const float *const *plans, const int *flags,
                              const float *x, float *y, float *scratch);
    int (*can_shift)(const wcm_conv_shape *s, const float *plan);
    int (*forward_shifted)(const wcm_conv_shape *s, float *x, const float *plan, int down, int flags, float *scratch);
} wcm_backend;

/* Rows between the input and output of forward_shifted. */
#define WCM_SHIFT_ROWS 4

/* The fast CPU backend (default). */
const wcm_backend *wcm_backend_cpu(void);
/* Naive loops accumulating in double: the ground truth for kernel tests. */
const wcm_backend *wcm_backend_reference(void);
/* Backend used by networks; NULL restores the CPU one. */
void wcm_set_backend(const wcm_backend *b);
const wcm_backend *wcm_get_backend(void);

/* Which SIMD level the CPU kernels use: "avx512", "avx2" or "portable".
 * WCM_SIMD=portable|avx2|avx512 in the environment caps it (for valgrind). */
const char *wcm_cpu_simd_level(void);
/* Winograd for 3x3 layers with many channels (default on): F(4x4,3x3), and
 * for the forward at images of 96x96 and more where it pays, F(6x6,3x3). */
void wcm_set_winograd(int enabled);
int wcm_get_winograd(void);

#ifdef __cplusplus
}
#endif
#endif

/* Internal interface of the CPU convolution backend.
 *
 * Every convolution is written as small matrix products computed by one
 * register-tiled "tile" kernel per SIMD level. With NHWC activations and
 * [k][k][cin][cout] weights, the input pixels x[j-R .. j+R] of one image row
 * are contiguous, so for kernel row ky the forward pass of a row of pixels is
 *     y[j][co] += sum_m xrow[(j - R) * cin + m] * w[ky][m][co],  m in [0, k*cin)
 * (overlapping A rows, no im2col copy). Backward-weights is the same product
 * with the pixel index as the reduction dimension. The drivers (conv_direct.c,
 * winograd.c) are level independent; kernels_*.c hold the SIMD code. */
#ifndef WCM_CPU_CONV_H
#define WCM_CPU_CONV_H

#include <stddef.h>

#include "backend_impl.h"

enum { WCM_SIMD_PORTABLE = 0, WCM_SIMD_AVX2 = 1, WCM_SIMD_AVX512 = 2 };

/* Largest kernel size the fast paths handle (others use the plain fallback). */
#define WCM_CPU_MAX_K 7
/* Most rows of a register tile (pixels in the forward pass). */
#define WCM_TILE_MAX_ROWS 6
/* Most outputs per pixel of the dot kernel (small cout). */
#define WCM_DOT_MAX_COLS 4

/* tile_job.mode bits */
enum {
    WCM_TILE_STORE = 0, /* C = acc */
    WCM_TILE_ADD = 1,   /* C += acc */
    WCM_TILE_RELU = 2,  /* then C = max(C, 0) */
};

/* Cache lines a tile job loads into L1 while it computes, one per step of its
 * k loop: read_lines from `read` on, then write_lines from `write` on (with
 * intent to write). They are a later job's operands, so that layers with
 * little work per byte do not wait on memory. A hint; all zero: none. */
typedef struct {
    const char *read, *write;
    int read_lines, write_lines;
} wcm_prefetch;
#define WCM_NO_PREFETCH ((wcm_prefetch){NULL, NULL, 0, 0})

/* C[p][0..ncols) (=, +=) sum over segments s, k < k[s] of
 *     A_s[p * a_row + k * a_col] * B_s[k * ldb + 0..ncols)
 * for rows p < rows. Accumulation starts from zero in registers, runs through
 * the segments in order and k ascending (a fixed order: results do not depend
 * on how work is split among threads). Every kernel reads all of A and B
 * before it stores C, so C may overwrite A's own rows (the Winograd forward
 * computes M in place of V that way). */
typedef struct {
    int rows;  /* 1 .. WCM_TILE_MAX_ROWS */
    int ncols; /* 1 .. simd_ops.max_cols */
    int nseg;  /* 1 .. WCM_CPU_MAX_K */
    int mode;
    const float *a[WCM_CPU_MAX_K];
    const float *b[WCM_CPU_MAX_K];
    int k[WCM_CPU_MAX_K];
    ptrdiff_t a_row, a_col, ldb;
    float *c;
    ptrdiff_t ldc;
    wcm_prefetch pf;
} wcm_tile_job;

/* Dot products for layers with few outputs: C[p][q] (=, +=) sum_s sum_k
 * A_s[p * a_row + k] * B_s[q * b_row + k], p < rows, q < ncols, vectorised
 * along k. */
typedef struct {
    int rows;  /* 1 .. WCM_TILE_MAX_ROWS */
    int ncols; /* 1 .. WCM_DOT_MAX_COLS */
    int nseg;
    int mode;
    const float *a[WCM_CPU_MAX_K];
    const float *b[WCM_CPU_MAX_K];
    int k[WCM_CPU_MAX_K];
    ptrdiff_t a_row, b_row;
    float *c;
    ptrdiff_t ldc;
} wcm_dot_job;

/* Winograd F(4x4,3x3) pieces (AVX-512 only; NULL elsewhere). Channel counts
 * are multiples of 16. */
typedef struct {
    /* U[xi][ci][co] (36 x cin x cout) from w[3][3][cin][cout], ci in [ci0, ci1). */
    void (*weights)(const float *w, int cin, int cout, int ci0, int ci1, float *u);
    /* One input tile: the 6x6 patch whose top-left pixel is (row, col) of image
     * x (h x w x c, zero outside) -> v[xi * v_stride + ci]. */
    void (*input)(const float *x, int h, int w, int c, int row, int col, float *v, ptrdiff_t v_stride);
    /* One output tile: m[xi * m_stride + co] -> the 4x4 block of y (h x w x c)
     * at (row, col), clipped to the image, ReLU when relu != 0. */
    void (*output)(const float *m, ptrdiff_t m_stride, int c, float *y, int h, int w, int row, int col, int relu);
    /* Backward-weights pieces, the adjoints (transposes) of output and weights:
     * the 4x4 block of dy (h x w x c, zero outside) at (row, col) ->
     * m[xi * m_stride + co] = (AT^T dy AT)[xi]; and, for ci in [ci0, ci1),
     * dw[3][3][cin][cout] (=, += when accumulate) G^T du[.][ci][.] G from
     * du[36][cin][cout]. */
    void (*output_adjoint)(const float *dy, int h, int w, int c, int row, int col, float *m, ptrdiff_t m_stride);
    void (*weights_adjoint)(const float *du, int cin, int cout, int ci0, int ci1, float *dw, int accumulate);
} wcm_winograd_ops;

/* Winograd F(6x6,3x3) forward pieces, as above with 8x8 patches, 64
 * transform points and 6x6 output blocks (inference only). */
typedef struct {
    void (*weights)(const float *w, int cin, int cout, int ci0, int ci1, float *u);
    void (*input)(const float *x, int h, int w, int c, int row, int col, float *v, ptrdiff_t v_stride);
    void (*output)(const float *m, ptrdiff_t m_stride, int c, float *y, int h, int w, int row, int col, int relu);
} wcm_winograd6_ops;

/* One register tile of a sum of outer products (the backward-weights pass of
 * 1x1 layers):
 *     dw[r * ldw + c] (= when fresh, else +=) sum over p < k of
 *         x[p * ldx + r] * dy[p * ldy + c],   r < rows, c < cols,
 * rows <= WCM_TILE_MAX_ROWS, cols a multiple of 16 up to max_cols, summed
 * from zero in registers in order of p, then stored or added. Each of the
 * first steps loads one cache line of a later job's operands into L1:
 * hint_lines[0] lines from hint[0] on, then hint_lines[1] from hint[1] on. */
typedef struct {
    const float *x, *dy;
    float *dw;
    ptrdiff_t ldx, ldy, ldw;
    int rows, cols, k, fresh;
    const char *hint[2];
    int hint_lines[2];
} wcm_outer_job;

/* Runs STEP job->k times, the first steps each loading one hinted line (for
 * the SIMD kernels of wcm_outer_job). */
#define WCM_OUTER_STEPS(job, STEP)                                                  \
    do {                                                                            \
        int k_ = (job)->k;                                                          \
        for (int h_ = 0; h_ < 2; h_++) {                                            \
            const int kh_ = k_ < (job)->hint_lines[h_] ? k_ : (job)->hint_lines[h_]; \
            for (int q_ = 0; q_ < kh_; q_++) {                                      \
                __builtin_prefetch((job)->hint[h_] + 64 * (ptrdiff_t)q_, 0, 3);     \
                STEP;                                                               \
            }                                                                       \
            k_ -= kh_;                                                              \
        }                                                                           \
        for (; k_ > 0; k_--) STEP;                                                  \
    } while (0)

typedef struct {
    int level;
    const char *name;
    int max_cols; /* columns one tile job may cover */
    void (*tile)(const wcm_tile_job *job);
    void (*dot)(const wcm_dot_job *job);
    const wcm_winograd_ops *winograd;
    const wcm_winograd6_ops *winograd6;
    void (*outer)(const wcm_outer_job *job); /* NULL: 1x1 backward weights through tile jobs */
} wcm_simd_ops;

extern const wcm_simd_ops wcm_simd_portable;
extern const wcm_simd_ops wcm_simd_avx2;
extern const wcm_simd_ops wcm_simd_avx512;

/* The kernels of a level (a variant of the CPU backend). */
const wcm_simd_ops *wcm_cpu_ops_for(int level);
/* The kernels of the default level (detected once, capped by WCM_SIMD). */
const wcm_simd_ops *wcm_cpu_ops(void);
/* Best level this CPU supports, ignoring WCM_SIMD. */
int wcm_cpu_max_simd_level(void);
/* For tests and benchmarks: make `level` (capped to what the CPU supports)
 * the default level; returns the level now the default. Contexts created
 * with an explicit variant keep theirs. */
int wcm_cpu_force_simd_level(int level);

/* What one CPU op runs with, resolved from its context: the level's
 * kernels, whether Winograd is on, and the scratch arena. */
typedef struct {
    const wcm_simd_ops *ops;
    int variant;
    int winograd;
    wcm_arena *arena;
    /* > 0 while a network computes a tile of a larger image: that image's
     * size, which the size-dependent choices (F(4x4) or F(6x6)) follow so
     * that the tile computes every pixel as the whole image does. */
    int route_h, route_w;
} wcm_cpu_exec;
wcm_cpu_exec wcm_cpu_exec_of(wcm_context *ctx);

/* Split a length into register-tile sized pieces (6, ending with 4s and 5s
 * rather than 1s and 2s): returns the size of the next piece. */
static inline int wcm_tile_step(int remaining) {
    if (remaining >= 10 || remaining == 6) return 6;
    if (remaining >= 8) return remaining - 4; /* 8 -> 4+4, 9 -> 5+4 */
    if (remaining == 7) return 4;
    return remaining;
}

/* Extra forward flag inside the CPU backend: run on the calling thread only
 * (the caller already parallelises, e.g. over pixel tiles). */
#define WCM_CPU_SERIAL 0x100

/* Drivers (conv_direct.c). w is in forward layout [k][k][cin][cout]. The
 * ones with an arena take their working memory from it and return 0, or -1
 * when it cannot grow (nothing written). */
void wcm_direct_forward(const wcm_simd_ops *ops, const wcm_conv_shape *s, const float *x, const float *w, float *y,
                        int flags);
/* Forward pass for small cout through the dot kernel; wt is [k][cout][k*cin]
 * (see wcm_dot_weights). */
void wcm_dot_forward(const wcm_simd_ops *ops, const wcm_conv_shape *s, const float *x, const float *wt, float *y,
                     int flags);
void wcm_dot_weights(const wcm_conv_shape *s, const float *w, float *wt);
int wcm_direct_backward_weights(const wcm_simd_ops *ops, const wcm_conv_shape *s, const float *x, const float *dy,
                                float *dw, int flags, wcm_arena *arena);
/* Winograd forward (winograd.c) from the forward weights w, F(6x6) where
 * wcm_winograd6_pays, else F(4x4): the weight transform, then the forward. */
int wcm_winograd_forward(const wcm_simd_ops *ops, const wcm_conv_shape *s, const float *x, const float *w, float *y,
                         int flags, wcm_arena *arena);
/* The same with caller-provided scratch of wcm_winograd_scratch_floats(s,
 * threads) floats, threads >= the size of the parallel team (no allocation). */
size_t wcm_winograd_scratch_floats(const wcm_conv_shape *s, int threads);
void wcm_winograd_forward_scratch(const wcm_simd_ops *ops, const wcm_conv_shape *s, const float *x, const float *u,
                                  float *y, int flags, float *scratch);
/* The forward written over its own input buffer, 4 rows up (y = x - 4 rows,
 * down == 0) or down (y = x + 4 rows); cin = cout, the n images one stack of
 * rows; scratch as above. The buffer must hold the 4 rows beyond x on that side. */
void wcm_winograd_forward_shifted(const wcm_simd_ops *ops, const wcm_conv_shape *s, float *x, const float *u, int down,
                                  int flags, float *scratch);
/* Whether the shifted forward is worth it for shape s (cin = cout, enough
 * work items, not an F(6x6) shape). */
int wcm_winograd_shift_pays(const wcm_simd_ops *ops, const wcm_conv_shape *s);
/* 36 * cin * cout floats. */
void wcm_winograd_weights(const wcm_simd_ops *ops, const wcm_conv_shape *s, const float *w, float *u);
/* F(6x6,3x3) forward (ops->winograd6 set): u6 (64 x cin x cout) from
 * wcm_winograd6_weights, scratch as for wcm_winograd_forward_scratch; used
 * for the shapes where wcm_winograd6_pays by the forward and backward-data
 * routes (backward-weights stays the exact gradient of the F(4x4) forward,
 * which differs from F(6x6) by rounding, about 2e-6 relative). */
int wcm_winograd6_pays(const wcm_simd_ops *ops, const wcm_conv_shape *s);
/* The same decided for an image of route_h x route_w (when > 0) of which s is a tile. */
int wcm_winograd6_pays_as(const wcm_simd_ops *ops, const wcm_conv_shape *s, int route_h, int route_w);
void wcm_winograd6_weights(const wcm_simd_ops *ops, const wcm_conv_shape *s, const float *w, float *u6);
void wcm_winograd6_forward_scratch(const wcm_simd_ops *ops, const wcm_conv_shape *s, const float *x, const float *u6,
                                   float *y, int flags, float *scratch);
int wcm_winograd_qualifies(const wcm_simd_ops *ops, const wcm_conv_shape *s);
/* Backward-weights through the same transforms (the exact gradient of the
 * Winograd forward, i.e. of the convolution): dU[xi] = sum over tiles of
 * V[xi]^T dM[xi], dw = G^T dU G. Flags: WCM_CONV_ACCUMULATE. Returns 0, or -1
 * when scratch memory is unavailable (nothing written). */
int wcm_winograd_backward_weights(const wcm_simd_ops *ops, const wcm_conv_shape *s, const float *x, const float *dy,
                                  float *dw, int flags, wcm_arena *arena);

/* Rows between the input and output of the shifted forward. */
#define WCM_SHIFT_ROWS 4

/* ---- routing and layer plans (backend_cpu.c, plan_cpu.c) ----------------- */

/* The unplanned forward of the CPU backend (any k; 0 or WCM_ERR_NOMEM). */
int wcm_cpu_conv_forward(const wcm_cpu_exec *e, const wcm_conv_shape *s, const float *x, const float *w, float *y,
                         int flags);
/* Forward routes: plain loops (k > WCM_CPU_MAX_K), Winograd, the dot kernel, direct tiles. */
typedef enum { WCM_ROUTE_PLAIN, WCM_ROUTE_WINOGRAD, WCM_ROUTE_DOT, WCM_ROUTE_DIRECT } wcm_cpu_route;
wcm_cpu_route wcm_cpu_route_of(const wcm_cpu_exec *e, const wcm_conv_shape *s);
void wcm_cpu_plain_forward(const wcm_conv_shape *s, const float *x, const float *w, float *y, int flags);

/* Layer plans: a layer's weights prepared once in the backend's layout
 * (dot-kernel order, Winograd transforms), so that with the working memory
 * sized up front a forward pass allocates nothing.
 * plan_size: floats of the plan of a layer with shape s (n, h, w ignored);
 * plan: fill it from forward weights w (again when w or the settings change).
 * scratch_size: floats of working memory forward_plan needs for shape s (for
 *   all threads of the calling thread's team), or forward_pointwise for
 *   s->n*h*w pixels and up to max(cin, cout) channels when pointwise != 0.
 * forward_plan: as the unplanned forward (0, or WCM_ERR_ARG for a plan made
 *   under other settings).
 * forward_pointwise: a run of nlayers consecutive 1x1 layers (shapes[l],
 *   flags[l]) from x to y, computed tile by tile so the intermediate
 *   activations stay in cache; x and y must not overlap.
 * can_shift, forward_shifted: whether forward_shifted pays for layer s with
 *   this plan; forward_shifted computes it as forward_plan but over the
 *   input's own buffer, or returns -1 without writing anything when the plan
 *   cannot (no Winograd part, cin != cout, or a size where forward_plan takes
 *   Winograd F(6x6)): y = x - WCM_SHIFT_ROWS rows (up, down == 0) or x +
 *   WCM_SHIFT_ROWS rows (down); rows of w * cout floats, the n images one
 *   stack of rows (cin = cout). The buffer must extend that far beyond the
 *   stack. Output lines are then input lines still in cache rather than
 *   lines fetched only to be overwritten. */
size_t wcm_cpu_plan_size(const wcm_cpu_exec *e, const wcm_conv_shape *s);
void wcm_cpu_plan(const wcm_cpu_exec *e, const wcm_conv_shape *s, const float *w, float *plan);
size_t wcm_cpu_scratch_size(const wcm_cpu_exec *e, const wcm_conv_shape *s, int pointwise);
int wcm_cpu_forward_plan(const wcm_cpu_exec *e, const wcm_conv_shape *s, const float *x, const float *plan, float *y,
                         int flags, float *scratch);
int wcm_cpu_forward_pointwise(const wcm_cpu_exec *e, int nlayers, const wcm_conv_shape *shapes,
                              const float *const *plans, const int *flags, const float *x, float *y, float *scratch);
int wcm_cpu_can_shift(const wcm_cpu_exec *e, const wcm_conv_shape *s, const float *plan);
int wcm_cpu_forward_shifted(const wcm_cpu_exec *e, const wcm_conv_shape *s, float *x, const float *plan, int down,
                            int flags, float *scratch);

/* ---- the CPU backend's entries beyond convolutions ------------------------ */

/* Networks (net_cpu.c). */
int wcm_cpu_net_compile(wcm_context *ctx, const wcm_net_desc *d, wcm_net_plan **out);
int wcm_cpu_net_load(wcm_context *ctx, wcm_net_plan *p, const wcm_net_desc *d);
int wcm_cpu_net_fits(wcm_context *ctx, const wcm_net_plan *p);
int wcm_cpu_net_forward(wcm_context *ctx, wcm_net_plan *p, int n, int h, int w, const float *x, float *y);
void wcm_cpu_net_free(wcm_net_plan *p);

/* Training, vector and reduction ops (ops_cpu.c), image and noise ops
 * (image_cpu.c): the entries of the backend table, see backend_impl.h. */
int wcm_cpu_bn_stats(wcm_context *ctx, const float *x, size_t m, int c, double *mean, double *sd);
int wcm_cpu_bn_apply(wcm_context *ctx, const float *x, size_t m, int c, const float *gamma, const double *sd, int relu,
                     float *y);
int wcm_cpu_bn_backward(wcm_context *ctx, const float *x, const float *dy, size_t m, int c, const float *gamma,
                        const double *mean, const double *sd, int relu, float *dx, float *dgamma);
int wcm_cpu_bn_running(wcm_context *ctx, wcm_bn_running_mode mode, int c, double *sd, float *running, double *acc,
                       double value);
int wcm_cpu_bn_fold(wcm_context *ctx, size_t rows, int cout, const float *w, const float *gamma, const float *running,
                    float *out);
int wcm_cpu_bn_fold_backward(wcm_context *ctx, size_t rows, int cout, const float *w, const float *gamma,
                             const float *running, const float *dout, float *dw, float *dgamma);
int wcm_cpu_relu(wcm_context *ctx, size_t n, const float *x, float *y);
int wcm_cpu_relu_backward(wcm_context *ctx, size_t n, const float *y, const float *dy, float *dx);
int wcm_cpu_loss_sse(wcm_context *ctx, size_t n, const float *out, const float *target, int batch, float *dout,
                     double *loss);
int wcm_cpu_adam(wcm_context *ctx, size_t n, float *params, const float *grad, float *m, float *v,
                 const wcm_adam_hyper *h);
int wcm_cpu_fill(wcm_context *ctx, size_t n, float *x, float value);
int wcm_cpu_axpy(wcm_context *ctx, size_t n, float alpha, const float *x, float *y);
int wcm_cpu_scale(wcm_context *ctx, size_t n, float alpha, float *x, const float *base);
int wcm_cpu_noise_step(wcm_context *ctx, size_t n, float *y, float h, const float *d, float gamma, const float *z);
int wcm_cpu_add_noise(wcm_context *ctx, size_t n, const float *x, const float *z, double sigma, float *y);
int wcm_cpu_add_noise_255(wcm_context *ctx, size_t n, const float *x, const float *z, float sigma255, float *y);
int wcm_cpu_rescale(wcm_context *ctx, size_t n, float *x, float lo, double range, double max);
int wcm_cpu_reduce(wcm_context *ctx, wcm_reduce_kind kind, size_t n, const float *x, const float *y, double center,
                   size_t chunk, double *result);
int wcm_cpu_channel_reduce(wcm_context *ctx, wcm_reduce_kind kind, size_t m, int c, const float *x,
                           const double *center, size_t chunk, double *result);
int wcm_cpu_channel_partials(wcm_context *ctx, wcm_reduce_kind kind, size_t m, int c, const float *x,
                             const double *center, size_t part, double *parts);
int wcm_cpu_haar_split(wcm_context *ctx, int n, int h, int w, const float *x, float *out);
int wcm_cpu_haar_merge(wcm_context *ctx, int n, int h, int w, const float *low, const float *coeffs, int c, float *out);
int wcm_cpu_channels(wcm_context *ctx, wcm_channels_mode mode, size_t pixels, int count, const float *src, int src_c,
                     int src_off, float *dst, int dst_c, int dst_off);
int wcm_cpu_upsample(wcm_context *ctx, int n, int h, int w, int c, int factor, const float *x, float *y);
int wcm_cpu_fill_normal(wcm_context *ctx, uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float *out);
int wcm_cpu_fill_uniform(wcm_context *ctx, uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float *out);
int wcm_cpu_fill_normal_torch(wcm_context *ctx, uint64_t seed, size_t n, float *out);

#endif

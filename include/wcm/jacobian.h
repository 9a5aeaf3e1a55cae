/* wcm — Jacobians of denoisers: the "adaptive filters" of the paper.
 *
 * A bias-free network with ReLUs is piecewise linear: at an input y it acts
 * as the matrix J(y) (f(y) = J_f(y) y exactly), and row p of the Jacobian
 * of the denoiser D(y) = y - f(y) is the linear filter that produces the
 * denoised pixel p. Rows are exact: one forward pass records every ReLU
 * pattern (batch norm is frozen, as in inference), then each row is one
 * backward pass of a one-hot at output pixel p (a vector-Jacobian product)
 * through every network. For a multi-scale model the pass goes through the
 * inverse Haar transform of each level, the conditional net of each scale,
 * the low-pass net and the forward Haar pyramid, so the row is that of the
 * whole cascade (wcm/denoise.h).
 *
 * Buffers are plain host float32 arrays: images h x w in row-major order,
 * rows P x h x w. Row p (pixel (i, j), p = i w + j) holds J[p][k] for every
 * input pixel k. */
#ifndef WCM_JACOBIAN_H
#define WCM_JACOBIAN_H

#include "wcm/model.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    WCM_JACOBIAN_RESIDUAL = 1,     /* the Jacobian of f(y) = y - D(y) (the network's output) instead of D */
    WCM_JACOBIAN_LOWPASS_ONLY = 2, /* multi-scale models: the low-pass-only denoiser (every detail zero) */
};

/* The linearisation of a model at one input (opaque). */
typedef struct wcm_jacobian wcm_jacobian;

/* Runs the model forward on `image` (h x w, one noisy image) and keeps what
 * the backward passes need. Multi-scale models need h and w divisible by
 * 2^J; a lone conditional network is refused. The model must outlive the
 * result and not change meanwhile. Runs on the host (CPU context). */
int wcm_jacobian_create(wcm_jacobian **out, const wcm_model *m, const float *image, int h, int w, unsigned flags,
                        wcm_error *err);
void wcm_jacobian_free(wcm_jacobian *jac);
int wcm_jacobian_height(const wcm_jacobian *jac);
int wcm_jacobian_width(const wcm_jacobian *jac);
/* The function value at the image: D(y), or f(y) with WCM_JACOBIAN_RESIDUAL
 * (h x w floats, owned by jac). By homogeneity, sum_k J[p][k] y_k equals it. */
const float *wcm_jacobian_value(const wcm_jacobian *jac);

/* Rows of the pixels (pixels[2 q], pixels[2 q + 1]) = (row i, column j),
 * q < npix, into rows (npix x h x w floats). */
int wcm_jacobian_rows(wcm_jacobian *jac, const int *pixels, int npix, float *rows, wcm_error *err);
/* The whole Jacobian, (h w) x (h w) floats, row p = pixel p. Refused above
 * WCM_JACOBIAN_FULL_MAX pixels (64 x 64: 64 MB and 4096 backward passes). */
#define WCM_JACOBIAN_FULL_MAX 4096
int wcm_jacobian_full(wcm_jacobian *jac, float *jacobian, wcm_error *err);

/* Spectral summary of an n x n Jacobian (row-major). The eigenvalues are
 * those of its symmetric part S = (J + J^T) / 2: S is real symmetric, so
 * they are real and found stably (Householder tridiagonalisation, then the
 * implicit QL algorithm, in double); a denoiser's Jacobian is close to
 * symmetric (exactly so for an ideal MMSE denoiser, the Hessian of a log
 * density), `asymmetry` says how close. trace(S) = trace(J). */
typedef struct {
    int n;
    double trace;      /* sum of J[p][p]: the effective dimensionality of the local linear model */
    double eig_min, eig_max;
    double asymmetry;  /* ||J - J^T||_F / ||J + J^T||_F */
    double frobenius;  /* ||J||_F */
} wcm_jacobian_spectrum;
/* eigenvalues: n doubles, written in decreasing order (the shrinkage profile). */
int wcm_jacobian_spectrum_compute(const float *jacobian, int n, double *eigenvalues, wcm_jacobian_spectrum *s,
                                  wcm_error *err);

/* Tiles of a figure of adaptive filters: for each of npix pixels, the image
 * and then that pixel's row, both cropped to a window x window square
 * centred on the pixel (zero beyond the image) and zoomed `zoom` times
 * (nearest neighbour). Image values are clamped to [0, 1]; a filter is
 * shown as 0.5 + 0.5 v / max|v| (mid-gray is zero, white positive). out
 * becomes (2 npix) x (window zoom) x (window zoom) x 1, ready for
 * wcm_image_write_grid with an even number of columns. */
int wcm_jacobian_filter_tiles(const float *image, int h, int w, const float *rows, const int *pixels, int npix,
                              int window, int zoom, wcm_tensor *out, wcm_error *err);

#ifdef __cplusplus
}
#endif
#endif

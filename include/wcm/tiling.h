/* wcm — images of any size and of any number of pixels.
 *
 * Padding: a multi-scale model needs sides divisible by 2^J. Other sizes are
 * padded at the bottom and right by symmetric reflection (the edge pixel
 * repeated: ... c b a | a b c ...) to the next multiple, processed, and the
 * result cropped back, so that the output has the input's size.
 *
 * Exact tiles: every network is local (a pixel of its output depends on the
 * RF x RF input pixels around it), so an image can be computed tile by tile,
 * each tile on its region grown by a halo, keeping only the tile's own
 * pixels. The halo is larger than the mathematical (RF - 1) / 2 so that every
 * kept pixel is computed with the same arithmetic as in the whole-image pass,
 * bit for bit: per layer with a k x k kernel (k > 1) it counts
 * max(6, (k - 1) / 2 + 5) pixels, because
 *   - a Winograd F(m x m, 3x3) output pixel depends, through rounding, on the
 *     whole (m + 2)^2 input patch of its m x m tile (m = 4 or 6), and
 *   - the direct kernels compute a register tile of up to 6 pixels of a row
 *     together, splitting the accumulation when the tile touches the edge;
 * and tile origins are multiples of WCM_TILE_ALIGN (12, a multiple of both
 * Winograd tile sides and of the Haar block of a 2-level pyramid), while the
 * size-dependent choices of the convolution algorithm follow the whole image
 * (wcm_conv_shape.route_h, route_w). tests/test_tiling.c checks tiled ==
 * whole, bit for bit, for every network kind and Winograd variant. */
#ifndef WCM_TILING_H
#define WCM_TILING_H

#include "wcm/net.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WCM_TILE_ALIGN 12

/* How a network pass may split an image. All zero: whole images. */
typedef struct {
    size_t memory; /* > 0: bytes the activations of one pass may take; tiles are sized to fit */
    int tile;      /* > 0: output tile side in pixels (rounded up to WCM_TILE_ALIGN); overrides memory */
} wcm_tiling;

/* Working bytes per pixel of a network pass (two activation buffers of 64
 * channels, the tile's input and output): what `memory` is divided by. */
size_t wcm_net_bytes_per_pixel(const wcm_net *net);
/* Halo in pixels (a multiple of WCM_TILE_ALIGN) that makes tiles exact. */
int wcm_net_tile_halo(const wcm_net *net);
/* The output tile side a pass over h x w images takes under t (a multiple of
 * WCM_TILE_ALIGN), or 0 when one tile covers the image (whole-image pass). */
int wcm_net_tile_side(const wcm_net *net, const wcm_tiling *t, int h, int w);

/* out = net(in), the same bits as wcm_net_forward, computed tile by tile
 * under t (t NULL or all zero: wcm_net_forward itself). Tiled passes need
 * host tensors. out is (re)allocated to [n][h][w][cout] when its shape
 * differs. */
int wcm_net_forward_tiled(wcm_net *net, const wcm_tensor *in, const wcm_tiling *t, wcm_tensor *out, wcm_error *err);

/* The next multiple of `multiple` (>= 1) at or above size. */
int wcm_padded_size(int size, int multiple);
/* out = in padded at the bottom and right to h x w (>= in's) by symmetric
 * reflection, repeated as often as needed for images smaller than the pad.
 * Host tensors, any channel count. */
int wcm_pad_symmetric(const wcm_tensor *in, int h, int w, wcm_tensor *out, wcm_error *err);

#ifdef __cplusplus
}
#endif
#endif

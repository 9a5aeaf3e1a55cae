/* wcm — image codecs shared by src/image*.c (not part of the public API). */
#ifndef WCM_IMAGE_INTERNAL_H
#define WCM_IMAGE_INTERNAL_H

#include "wcm/tensor.h"

#include <stddef.h>

/* Largest accepted side; the pixel count is bounded by the pixel budget
 * (wcm_get_max_pixels), checked from the header before anything is decoded. */
#define WCM_IMAGE_MAX_SIDE (1 << 16)

/* Decode an in-memory file into a [1][h][w][1] gray tensor in [0, 1].
 * `name` is only used in error messages. */
int wcm_png_decode_gray(const char *name, const unsigned char *buf, size_t len, wcm_tensor *img, wcm_error *err);
int wcm_jpeg_decode_gray(const char *name, const unsigned char *buf, size_t len, wcm_tensor *img, wcm_error *err);
/* The same keeping colour when color != 0: [1][h][w][3] RGB for colour
 * files, [1][h][w][1] for gray ones. */
int wcm_png_decode(const char *name, const unsigned char *buf, size_t len, int color, wcm_tensor *img, wcm_error *err);
int wcm_jpeg_decode(const char *name, const unsigned char *buf, size_t len, int color, wcm_tensor *img, wcm_error *err);
/* h x w pixels of c = 1 (gray) or 3 (RGB, interleaved) channels as a JPEG of
 * the given quality (1..100), atomically; values clipped to [0, 1]. */
int wcm_jpeg_write(const char *path, const float *pixels, int h, int w, int c, int quality, wcm_error *err);

/* Write h x w gray pixels (row-major, `stride` floats between rows) as an
 * 8- or 16-bit gray PNG, atomically. Values are clipped to [0, 1]; NaN
 * becomes 0. */
int wcm_png_write_gray(const char *path, const float *pixels, int h, int w, size_t stride, int bits,
                       wcm_error *err);
/* The same for c = 1 or 3 (RGB, interleaved) channels; stride in floats. */
int wcm_png_write(const char *path, const float *pixels, int h, int w, int c, size_t stride, int bits, wcm_error *err);

/* Quantise one value in [0, 1] to 0..maxval (clip, round half up). */
static inline unsigned wcm_quantize_unit(float v, unsigned maxval) {
    if (!(v > 0.0f)) return 0; /* also catches NaN */
    if (v >= 1.0f) return maxval;
    double q = (double)v * maxval + 0.5;
    unsigned u = (unsigned)q; /* q > 0: truncation is floor */
    return u > maxval ? maxval : u;
}

#endif

/* wcm — images in and out (gray, and RGB where asked for).
 *
 * Reading: PNG (8/16-bit; gray, gray+alpha, RGB, RGBA, palette) through
 * libpng, JPEG (baseline and progressive) through libjpeg-turbo, and .npy
 * (float32/float64 arrays of shape HW, 1HW or 11HW), chosen by the file
 * extension. Colour becomes gray as the plain mean of R, G, B; values are
 * divided by 255 (65535 for 16-bit); alpha is ignored.
 * wcm_image_read_color keeps R, G, B instead.
 * Writing: .png as 8-bit gray or RGB (16-bit with bits = 16), .jpg as
 * quality-95 JPEG, values clipped to [0, 1] and rounded; .npy as float32
 * HW. Writes are atomic. */
#ifndef WCM_IMAGE_H
#define WCM_IMAGE_H

#include "wcm/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* img becomes [1][h][w][1]. Images of more pixels than the pixel budget
 * (wcm_get_max_pixels) are refused from their header, before decoding. */
int wcm_image_read(const char *path, wcm_tensor *img, wcm_error *err);
/* The same for a file already in memory; `name` chooses the format by its
 * extension and names the image in messages. */
int wcm_image_decode(const char *name, const unsigned char *buf, size_t len, wcm_tensor *img, wcm_error *err);
/* The same keeping colour: [1][h][w][3] (R, G, B in [0, 1]) for colour
 * PNG and JPEG files, [1][h][w][1] for gray ones and .npy. */
int wcm_image_read_color(const char *path, wcm_tensor *img, wcm_error *err);
/* Writes image `index` of a c = 1 (gray) or c = 3 (RGB) batch: .png (bits 8
 * or 16), .jpg/.jpeg (quality 95, 8 bits), .npy (gray only). */
int wcm_image_write(const char *path, const wcm_tensor *img, int index, int bits, wcm_error *err);
/* Non-zero if the extension is one wcm_image_read understands (.png .jpg .jpeg .npy). */
int wcm_image_is_supported(const char *path);

/* Centre crop: x0 = (w - cw) / 2, y0 = (h - ch) / 2 (integer division). Error if too small. */
int wcm_image_center_crop(const wcm_tensor *in, int ch, int cw, wcm_tensor *out, wcm_error *err);
/* Crop at an offset. */
int wcm_image_crop(const wcm_tensor *in, int y0, int x0, int ch, int cw, wcm_tensor *out, wcm_error *err);

typedef enum { WCM_RESIZE_AREA = 0, WCM_RESIZE_BICUBIC = 1 } wcm_resize_method;
/* Resize every image and channel of a batch to oh x ow. Area averaging is
 * exact for integer factors (box filter); bicubic uses a = -0.5 (as Pillow),
 * widening the kernel when shrinking (antialiased). */
int wcm_image_resize(const wcm_tensor *in, int oh, int ow, wcm_resize_method method,
                     wcm_tensor *out, wcm_error *err);

/* Sorted (by name, bytewise) list of regular files in `dir` whose extension
 * wcm_image_is_supported accepts; other entries are counted in *skipped. */
int wcm_list_images(const char *dir, char ***paths, int *count, int *skipped, wcm_error *err);
void wcm_free_paths(char **paths, int count);

/* Tile a batch (c = 1) into one PNG of `cols` columns with a `pad`-pixel white border. */
int wcm_image_write_grid(const char *path, const wcm_tensor *batch, int cols, int pad, wcm_error *err);

#ifdef __cplusplus
}
#endif
#endif

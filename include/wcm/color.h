/* wcm — colour images with gray models.
 *
 * The networks are trained on gray images. A colour image (R, G, B in
 * [0, 1]) is processed in one of four ways:
 *  - per-channel: the gray model on R, G and B separately;
 *  - luma: on Y, Cb and Cr of YCbCr (JPEG's full-range transform, chroma
 *    offset by 1/2 so that it lies in [0, 1]) separately, back to RGB;
 *  - luma-keep: on Y only, Cb and Cr kept as they are;
 *  - gray: converted to gray (the mean of R, G, B, as wcm_image_read does)
 *    and processed as gray; the result is gray. */
#ifndef WCM_COLOR_H
#define WCM_COLOR_H

#include "wcm/denoise.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { WCM_COLOR_PER_CHANNEL = 0, WCM_COLOR_LUMA = 1, WCM_COLOR_LUMA_KEEP = 2, WCM_COLOR_GRAY = 3 } wcm_color_mode;

int wcm_color_mode_parse(const char *s, wcm_color_mode *mode);
const char *wcm_color_mode_name(wcm_color_mode mode);

/* n pixels of interleaved R, G, B <-> Y, Cb + 1/2, Cr + 1/2 (in may equal out). */
void wcm_rgb_to_ycbcr(const float *rgb, size_t n, float *ycc);
void wcm_ycbcr_to_rgb(const float *ycc, size_t n, float *rgb);
/* gray = (R + G + B) / 3 of a 3-channel host tensor (allocated). */
int wcm_rgb_to_gray(const wcm_tensor *rgb, wcm_tensor *gray, wcm_error *err);

/* Denoise a gray (c = 1: wcm_denoise_ex) or colour (c = 3) host image in
 * the given mode; out has img's shape (1 channel for WCM_COLOR_GRAY). The
 * padding and tile sides of the last channel processed go to info. */
int wcm_denoise_color(const wcm_model *m, const wcm_tensor *img, wcm_color_mode mode, const wcm_denoise_options *o,
                      wcm_tensor *out, wcm_denoise_info *info, wcm_error *err);

#ifdef __cplusplus
}
#endif
#endif

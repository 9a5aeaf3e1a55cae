/* Colour images with gray models (wcm/color.h). */
#include "wcm/color.h"

#include <string.h>

#include "wcm/backend.h"

static const char *const mode_names[] = {"per-channel", "luma", "luma-keep", "gray"};

int wcm_color_mode_parse(const char *s, wcm_color_mode *mode) {
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, mode_names[i])) {
            *mode = (wcm_color_mode)i;
            return WCM_OK;
        }
    return WCM_ERR_ARG;
}

const char *wcm_color_mode_name(wcm_color_mode mode) {
    return (unsigned)mode < 4 ? mode_names[mode] : "unknown";
}

void wcm_rgb_to_ycbcr(const float *rgb, size_t n, float *ycc) {
    for (size_t i = 0; i < n; i++) {
        const double r = rgb[3 * i], g = rgb[3 * i + 1], b = rgb[3 * i + 2];
        ycc[3 * i] = (float)(0.299 * r + 0.587 * g + 0.114 * b);
        ycc[3 * i + 1] = (float)(-0.168735892 * r - 0.331264108 * g + 0.5 * b + 0.5);
        ycc[3 * i + 2] = (float)(0.5 * r - 0.418687589 * g - 0.081312411 * b + 0.5);
    }
}

void wcm_ycbcr_to_rgb(const float *ycc, size_t n, float *rgb) {
    for (size_t i = 0; i < n; i++) {
        const double y = ycc[3 * i], cb = ycc[3 * i + 1] - 0.5, cr = ycc[3 * i + 2] - 0.5;
        rgb[3 * i] = (float)(y + 1.402 * cr);
        rgb[3 * i + 1] = (float)(y - 0.344136286 * cb - 0.714136286 * cr);
        rgb[3 * i + 2] = (float)(y + 1.772 * cb);
    }
}

int wcm_rgb_to_gray(const wcm_tensor *rgb, wcm_tensor *gray, wcm_error *err) {
    if (rgb->c != 3) return wcm_fail(err, WCM_ERR_SHAPE, "colour to gray: needs 3 channels, got %d", rgb->c);
    int rc = wcm_tensor_alloc(gray, rgb->n, rgb->h, rgb->w, 1, err);
    if (rc) return rc;
    const size_t n = wcm_tensor_count(gray);
    for (size_t i = 0; i < n; i++)
        gray->data[i] = (float)(((double)rgb->data[3 * i] + rgb->data[3 * i + 1] + rgb->data[3 * i + 2]) / 3.0);
    return WCM_OK;
}

/* Channels [0, count) of the 3-channel image x, each denoised as a gray image, in place. */
static int denoise_channels(const wcm_model *m, wcm_tensor *x, int count, const wcm_denoise_options *o,
                            wcm_denoise_info *info, wcm_error *err) {
    wcm_tensor plane;
    int rc = wcm_tensor_alloc(&plane, x->n, x->h, x->w, 1, err);
    const size_t n = wcm_tensor_count(&plane);
    for (int k = 0; !rc && k < count; k++) {
        for (size_t i = 0; i < n; i++) plane.data[i] = x->data[3 * i + k];
        rc = wcm_denoise_in_place(m, &plane, o, info, err);
        if (rc) wcm_fail_context(err, rc, "channel %d", k);
        for (size_t i = 0; !rc && i < n; i++) x->data[3 * i + k] = plane.data[i];
    }
    wcm_tensor_free(&plane);
    return rc;
}

int wcm_denoise_color(const wcm_model *m, const wcm_tensor *img, wcm_color_mode mode, const wcm_denoise_options *o,
                      wcm_tensor *out, wcm_denoise_info *info, wcm_error *err) {
    memset(out, 0, sizeof *out);
    if (img->c == 1) return wcm_denoise_ex(m, img, o, out, info, err);
    if (img->c != 3) return wcm_fail(err, WCM_ERR_SHAPE, "denoising needs gray or RGB images, got %d channels", img->c);
    if (!wcm_tensor_is_host(img)) return wcm_fail(err, WCM_ERR_ARG, "colour denoising: needs a host tensor");
    if (mode == WCM_COLOR_GRAY) {
        wcm_tensor gray;
        int rc = wcm_rgb_to_gray(img, &gray, err);
        if (!rc) rc = wcm_denoise_in_place(m, &gray, o, info, err);
        if (rc) wcm_tensor_free(&gray);
        else *out = gray;
        return rc;
    }
    wcm_tensor x;
    int rc = wcm_tensor_copy(&x, img, err);
    if (rc) return rc;
    const size_t px = (size_t)x.n * x.h * x.w;
    const int luma = mode == WCM_COLOR_LUMA || mode == WCM_COLOR_LUMA_KEEP;
    if (luma) wcm_rgb_to_ycbcr(x.data, px, x.data);
    rc = denoise_channels(m, &x, mode == WCM_COLOR_LUMA_KEEP ? 1 : 3, o, info, err);
    if (!rc && luma) wcm_ycbcr_to_rgb(x.data, px, x.data);
    if (rc) wcm_tensor_free(&x);
    else *out = x;
    return rc;
}

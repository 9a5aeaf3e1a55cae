/* Orthogonal Haar pyramid with coefficients normalised to local means (SPEC §2). */
#include "wcm/haar.h"

#include <string.h>

int wcm_haar_split(const wcm_tensor *x, wcm_tensor *out, wcm_error *err) {
    if (x->c != 1) return wcm_fail(err, WCM_ERR_SHAPE, "Haar split needs one channel, got %d", x->c);
    if (x->h % 2 || x->w % 2)
        return wcm_fail(err, WCM_ERR_SHAPE, "Haar split needs even sizes, got %dx%d", x->h, x->w);
    int rc = wcm_tensor_alloc(out, x->n, x->h / 2, x->w / 2, 4, err);
    if (rc) return rc;
    const int H = out->h, W = out->w, XW = x->w;
    for (int n = 0; n < x->n; n++) {
        const float *src = x->data + (size_t)n * x->h * XW;
        float *dst = out->data + (size_t)n * H * W * 4;
        for (int i = 0; i < H; i++)
            for (int k = 0; k < W; k++) {
                float a = src[(2 * i) * XW + 2 * k], b = src[(2 * i) * XW + 2 * k + 1];
                float c = src[(2 * i + 1) * XW + 2 * k], d = src[(2 * i + 1) * XW + 2 * k + 1];
                float *o = dst + ((size_t)i * W + k) * 4;
                o[0] = (a + b + c + d) * 0.25f;
                o[1] = (a + b - c - d) * 0.25f;
                o[2] = (a - b + c - d) * 0.25f;
                o[3] = (a - b - c + d) * 0.25f;
            }
    }
    return WCM_OK;
}

int wcm_haar_merge(const wcm_tensor *low, const wcm_tensor *coeffs, wcm_tensor *out, wcm_error *err) {
    if (low->c != 1 || (coeffs->c != 3 && coeffs->c != 4))
        return wcm_fail(err, WCM_ERR_SHAPE, "Haar merge needs a 1-channel low-pass and 3 or 4 coefficient channels");
    if (low->n != coeffs->n || low->h != coeffs->h || low->w != coeffs->w)
        return wcm_fail(err, WCM_ERR_SHAPE, "Haar merge: low-pass %dx%dx%d and details %dx%dx%d differ", low->n,
                        low->h, low->w, coeffs->n, coeffs->h, coeffs->w);
    int rc = wcm_tensor_alloc(out, low->n, low->h * 2, low->w * 2, 1, err);
    if (rc) return rc;
    const int H = low->h, W = low->w, C = coeffs->c, off = C == 4 ? 1 : 0, OW = out->w;
    for (int n = 0; n < low->n; n++) {
        const float *lp = low->data + (size_t)n * H * W;
        const float *cp = coeffs->data + (size_t)n * H * W * C;
        float *dst = out->data + (size_t)n * out->h * OW;
        for (int i = 0; i < H; i++)
            for (int k = 0; k < W; k++) {
                float l = lp[i * W + k];
                const float *q = cp + ((size_t)i * W + k) * C + off;
                float h = q[0], v = q[1], d = q[2];
                dst[(2 * i) * OW + 2 * k] = l + h + v + d;
                dst[(2 * i) * OW + 2 * k + 1] = l + h - v - d;
                dst[(2 * i + 1) * OW + 2 * k] = l - h + v - d;
                dst[(2 * i + 1) * OW + 2 * k + 1] = l - h - v + d;
            }
    }
    return WCM_OK;
}

/* Channel 0 of a 4-channel level as a 1-channel tensor. */
static int extract_low(const wcm_tensor *lvl, wcm_tensor *low, wcm_error *err) {
    int rc = wcm_tensor_alloc(low, lvl->n, lvl->h, lvl->w, 1, err);
    if (rc) return rc;
    size_t px = (size_t)lvl->n * lvl->h * lvl->w;
    for (size_t i = 0; i < px; i++) low->data[i] = lvl->data[i * lvl->c];
    return WCM_OK;
}

int wcm_haar_forward(const wcm_tensor *img, int levels, wcm_pyramid *p, wcm_error *err) {
    memset(p, 0, sizeof *p);
    if (levels < 1 || levels > WCM_MAX_LEVELS)
        return wcm_fail(err, WCM_ERR_ARG, "number of Haar levels must be 1..%d, got %d", WCM_MAX_LEVELS, levels);
    int f = 1 << levels;
    if (img->h % f || img->w % f)
        return wcm_fail(err, WCM_ERR_SHAPE, "image size %dx%d is not divisible by 2^%d = %d", img->h, img->w, levels, f);
    const wcm_tensor *cur = img;
    wcm_tensor low = {0};
    for (int j = 0; j < levels; j++) {
        int rc = wcm_haar_split(cur, &p->level[j], err);
        wcm_tensor_free(&low);
        if (!rc && j + 1 < levels) rc = extract_low(&p->level[j], &low, err);
        if (rc) {
            wcm_pyramid_free(p);
            return rc;
        }
        p->levels = j + 1;
        cur = &low;
    }
    wcm_tensor_free(&low);
    return WCM_OK;
}

int wcm_haar_inverse(const wcm_pyramid *p, wcm_tensor *img, wcm_error *err) {
    if (p->levels < 1) return wcm_fail(err, WCM_ERR_ARG, "empty pyramid");
    wcm_tensor low;
    int rc = extract_low(&p->level[p->levels - 1], &low, err);
    if (rc) return rc;
    for (int j = p->levels - 1; j >= 0; j--) {
        wcm_tensor up;
        rc = wcm_haar_merge(&low, &p->level[j], &up, err);
        wcm_tensor_free(&low);
        if (rc) return rc;
        low = up;
    }
    *img = low;
    return WCM_OK;
}

void wcm_pyramid_free(wcm_pyramid *p) {
    for (int j = 0; j < WCM_MAX_LEVELS; j++) wcm_tensor_free(&p->level[j]);
    p->levels = 0;
}

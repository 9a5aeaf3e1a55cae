/* Orthogonal Haar pyramid with coefficients normalised to local means (docs/model.md §2),
 * as ops of a context's backend. */
#include "wcm/haar.h"

#include <string.h>

#include "backend_impl.h"

int wcm_haar_split_on(wcm_context *ctx, const wcm_tensor *x, wcm_tensor *out, wcm_error *err) {
    if (x->c != 1) return wcm_fail(err, WCM_ERR_SHAPE, "Haar split needs one channel, got %d", x->c);
    if (x->h % 2 || x->w % 2)
        return wcm_fail(err, WCM_ERR_SHAPE, "Haar split needs even sizes, got %dx%d", x->h, x->w);
    int rc = wcm_tensor_alloc_on(ctx, out, x->n, x->h / 2, x->w / 2, 4, err);
    if (!rc) rc = wcm_op_haar_split(ctx, x->n, x->h, x->w, x->data, out->data, err);
    if (rc) wcm_tensor_free(out);
    return rc;
}

int wcm_haar_merge_on(wcm_context *ctx, const wcm_tensor *low, const wcm_tensor *coeffs, wcm_tensor *out,
                      wcm_error *err) {
    if (low->c != 1 || (coeffs->c != 3 && coeffs->c != 4))
        return wcm_fail(err, WCM_ERR_SHAPE, "Haar merge needs a 1-channel low-pass and 3 or 4 coefficient channels");
    if (low->n != coeffs->n || low->h != coeffs->h || low->w != coeffs->w)
        return wcm_fail(err, WCM_ERR_SHAPE, "Haar merge: low-pass %dx%dx%d and details %dx%dx%d differ", low->n,
                        low->h, low->w, coeffs->n, coeffs->h, coeffs->w);
    int rc = wcm_tensor_alloc_on(ctx, out, low->n, low->h * 2, low->w * 2, 1, err);
    if (!rc) rc = wcm_op_haar_merge(ctx, low->n, low->h, low->w, low->data, coeffs->data, coeffs->c, out->data, err);
    if (rc) wcm_tensor_free(out);
    return rc;
}

/* Channel 0 of a 4-channel level as a 1-channel tensor. */
static int extract_low(wcm_context *ctx, const wcm_tensor *lvl, wcm_tensor *low, wcm_error *err) {
    int rc = wcm_tensor_alloc_on(ctx, low, lvl->n, lvl->h, lvl->w, 1, err);
    if (!rc) rc = wcm_op_channels(ctx, WCM_CHANNELS_COPY, (size_t)lvl->n * lvl->h * lvl->w, 1, lvl->data, lvl->c, 0,
                                  low->data, 1, 0, err);
    if (rc) wcm_tensor_free(low);
    return rc;
}

int wcm_haar_forward_on(wcm_context *ctx, const wcm_tensor *img, int levels, wcm_pyramid *p, wcm_error *err) {
    memset(p, 0, sizeof *p);
    if (levels < 1 || levels > WCM_MAX_LEVELS)
        return wcm_fail(err, WCM_ERR_ARG, "number of Haar levels must be 1..%d, got %d", WCM_MAX_LEVELS, levels);
    int f = 1 << levels;
    if (img->h % f || img->w % f)
        return wcm_fail(err, WCM_ERR_SHAPE, "image size %dx%d is not divisible by 2^%d = %d", img->h, img->w, levels, f);
    const wcm_tensor *cur = img;
    wcm_tensor low = {0};
    for (int j = 0; j < levels; j++) {
        int rc = wcm_haar_split_on(ctx, cur, &p->level[j], err);
        wcm_tensor_free(&low);
        if (!rc && j + 1 < levels) rc = extract_low(ctx, &p->level[j], &low, err);
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

int wcm_haar_inverse_on(wcm_context *ctx, const wcm_pyramid *p, wcm_tensor *img, wcm_error *err) {
    if (p->levels < 1) return wcm_fail(err, WCM_ERR_ARG, "empty pyramid");
    wcm_tensor low;
    int rc = extract_low(ctx, &p->level[p->levels - 1], &low, err);
    if (rc) return rc;
    for (int j = p->levels - 1; j >= 0; j--) {
        wcm_tensor up;
        rc = wcm_haar_merge_on(ctx, &low, &p->level[j], &up, err);
        wcm_tensor_free(&low);
        if (rc) return rc;
        low = up;
    }
    *img = low;
    return WCM_OK;
}

/* The host versions: host tensors, the calling thread's host context. */
static int host_only(const wcm_tensor *t, wcm_error *err) {
    return wcm_tensor_is_host(t) ? WCM_OK
                                 : wcm_fail(err, WCM_ERR_ARG, "Haar: a tensor in a device's memory needs the _on functions");
}

int wcm_haar_split(const wcm_tensor *x, wcm_tensor *out, wcm_error *err) {
    return host_only(x, err) ? WCM_ERR_ARG : wcm_haar_split_on(wcm_context_host(), x, out, err);
}

int wcm_haar_merge(const wcm_tensor *low, const wcm_tensor *coeffs, wcm_tensor *out, wcm_error *err) {
    if (host_only(low, err) || host_only(coeffs, err)) return WCM_ERR_ARG;
    return wcm_haar_merge_on(wcm_context_host(), low, coeffs, out, err);
}

int wcm_haar_forward(const wcm_tensor *img, int levels, wcm_pyramid *p, wcm_error *err) {
    if (host_only(img, err)) {
        memset(p, 0, sizeof *p);
        return WCM_ERR_ARG;
    }
    return wcm_haar_forward_on(wcm_context_host(), img, levels, p, err);
}

int wcm_haar_inverse(const wcm_pyramid *p, wcm_tensor *img, wcm_error *err) {
    if (p->levels >= 1 && host_only(&p->level[0], err)) return WCM_ERR_ARG;
    return wcm_haar_inverse_on(wcm_context_host(), p, img, err);
}

void wcm_pyramid_free(wcm_pyramid *p) {
    for (int j = 0; j < WCM_MAX_LEVELS; j++) wcm_tensor_free(&p->level[j]);
    p->levels = 0;
}

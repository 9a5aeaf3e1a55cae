/* Flat and multi-scale denoising (docs/model.md §5), as ops of the networks' context
 * (the low-pass net's for a multi-scale model: its nets share one context),
 * and the noise and PSNR helpers on host buffers. */
#include "wcm/denoise.h"

#include <math.h>
#include <string.h>

#include "backend_impl.h"
#include "wcm/image.h"

/* A tensor of this shape where the ops of run work. */
static int alloc_on(wcm_context *run, const wcm_tensor *like, int c, wcm_tensor *t, wcm_error *err) {
    return wcm_tensor_alloc_on(run, t, like->n, like->h, like->w, c, err);
}

/* The predicted noise of net on x into *noise: tiled under t when it
 * applies (host tensors; *noise may then be a view of the right shape),
 * whole otherwise. *side: the tile side used (0: whole). */
static int predict(wcm_net *net, const wcm_tensor *x, const wcm_tiling *t, wcm_tensor *noise, int *side,
                   wcm_error *err) {
    *side = t && wcm_tensor_is_host(x) ? wcm_net_tile_side(net, t, x->h, x->w) : 0;
    return *side ? wcm_net_forward_tiled(net, x, t, noise, err) : wcm_net_forward(net, x, noise, err);
}

/* result = x - net(x), all in run's memory; result may be x->data. */
static int denoise_flat(wcm_context *run, wcm_net *net, const wcm_tensor *x, const wcm_tiling *t, float *result,
                        int *side, wcm_error *err) {
    wcm_tensor noise = {0};
    const size_t count = wcm_tensor_count(x);
    int rc = predict(net, x, t, &noise, side, err);
    if (!rc && result != x->data) rc = wcm_memcpy_in_backend(run, result, x->data, count * sizeof(float), err);
    if (!rc) rc = wcm_op_axpy(run, count, -1.0f, noise.data, result, err);
    wcm_tensor_free(&noise);
    return rc;
}

/* The multi-scale cascade on x (in run's memory) into result (x's size; may
 * be x->data: x is read only while the pyramid is built). Tiled passes keep
 * their noise predictions in result until the last merge overwrites it, so
 * the cascade needs the pyramid and result only. */
static int denoise_multiscale(wcm_context *run, const wcm_model *m, const wcm_tensor *x, const wcm_denoise_options *o,
                              float *result, wcm_denoise_info *info, wcm_error *err) {
    const int J = m->levels;
    const wcm_tiling *t = o->tiling.memory || o->tiling.tile ? &o->tiling : NULL;
    const int views = t && wcm_tensor_is_host(x);
    wcm_pyramid p;
    int rc = wcm_haar_forward_on(run, x, J, &p, err);
    if (rc) return rc;
    wcm_tensor low = {0}, coarse = {0}, noise = {0}, up = {0};
    wcm_tensor *top = &p.level[J - 1];
    rc = alloc_on(run, top, 1, &coarse, err);
    if (!rc) rc = wcm_op_channels(run, WCM_CHANNELS_COPY, wcm_tensor_count(&coarse), 1, top->data, 4, 0, coarse.data, 1, 0, err);
    if (!rc) rc = alloc_on(run, &coarse, 1, &low, err);
    if (!rc) rc = denoise_flat(run, m->low, &coarse, t, low.data, &info->tile[0], err);
    if (info->tile[0]) wcm_net_release(m->low); /* tiled: one network's buffers at a time */
    wcm_tensor_free(&coarse);
    for (int j = J - 1; !rc && j >= 0; j--) {
        wcm_tensor *lvl = &p.level[j]; /* becomes [low estimate, denoised details] */
        const size_t px = (size_t)lvl->n * lvl->h * lvl->w;
        rc = wcm_op_channels(run, WCM_CHANNELS_COPY, px, 1, low.data, 1, 0, lvl->data, 4, 0, err);
        if (!rc && o->lowpass_only) rc = wcm_op_channels(run, WCM_CHANNELS_ZERO, px, 3, NULL, 0, 0, lvl->data, 4, 1, err);
        if (!rc && !o->lowpass_only) {
            if (views) noise = wcm_tensor_view(result, lvl->n, lvl->h, lvl->w, 3); /* 3 px <= the image's 4 px */
            rc = predict(m->cond[j], lvl, t, &noise, &info->tile[1 + j], err);
            if (!rc) rc = wcm_op_channels(run, WCM_CHANNELS_SUB, px, 3, noise.data, 3, 0, lvl->data, 4, 1, err);
            if (info->tile[1 + j]) wcm_net_release(m->cond[j]);
            if (views) memset(&noise, 0, sizeof noise);
        }
        if (!rc && j == 0) rc = wcm_op_haar_merge(run, low.n, low.h, low.w, low.data, lvl->data, 4, result, err);
        if (!rc && j > 0) rc = wcm_haar_merge_on(run, &low, lvl, &up, err);
        wcm_tensor_free(&low);
        low = up;
        memset(&up, 0, sizeof up);
    }
    wcm_tensor_free(&low);
    wcm_tensor_free(&coarse);
    wcm_tensor_free(&noise);
    wcm_pyramid_free(&p);
    return rc;
}

static int check_request(const wcm_model *m, const wcm_tensor *noisy, const wcm_denoise_options *o, wcm_error *err) {
    if (noisy->c != 1) return wcm_fail(err, WCM_ERR_SHAPE, "denoising needs gray (1-channel) images, got %d channels", noisy->c);
    if (!m->multiscale) {
        if (o->lowpass_only) return wcm_fail(err, WCM_ERR_ARG, "--lowpass-only needs a multi-scale model");
        if (wcm_net_get_kind(m->net) == WCM_NET_CONDITIONAL)
            return wcm_fail(err, WCM_ERR_ARG, "a lone conditional network cannot denoise images (it needs a low-pass)");
    }
    return WCM_OK;
}

/* x (in run's memory) denoised into result (x's shape, run's memory; may be x->data). */
static int denoise_into(const wcm_model *m, wcm_context *run, const wcm_tensor *x, const wcm_denoise_options *o,
                        float *result, wcm_denoise_info *info, wcm_error *err) {
    if (m->multiscale) return denoise_multiscale(run, m, x, o, result, info, err);
    const wcm_tiling *t = o->tiling.memory || o->tiling.tile ? &o->tiling : NULL;
    return denoise_flat(run, m->net, x, t, result, &info->tile[0], err);
}

/* The padded size of noisy for m (its own when nothing is to pad). */
static void padded_shape(const wcm_model *m, const wcm_tensor *x, const wcm_denoise_options *o, int *h, int *w) {
    const int f = m->multiscale && o->pad ? 1 << m->levels : 1;
    *h = wcm_padded_size(x->h, f);
    *w = wcm_padded_size(x->w, f);
}

/* Pad, denoise in place, crop into *out (which may be noisy itself). */
static int denoise_padded(const wcm_model *m, const wcm_tensor *noisy, const wcm_denoise_options *o, int ph, int pw,
                          wcm_tensor *out, wcm_denoise_info *info, wcm_error *err) {
    if (!wcm_tensor_is_host(noisy)) return wcm_fail(err, WCM_ERR_ARG, "padding: needs a host tensor");
    wcm_tensor padded;
    int rc = wcm_pad_symmetric(noisy, ph, pw, &padded, err);
    if (rc) return rc;
    rc = wcm_denoise_in_place(m, &padded, o, info, err);
    info->pad_bottom = ph - noisy->h;
    info->pad_right = pw - noisy->w;
    if (!rc) rc = wcm_image_crop(&padded, 0, 0, noisy->h, noisy->w, out, err);
    wcm_tensor_free(&padded);
    return rc;
}

int wcm_denoise_ex(const wcm_model *m, const wcm_tensor *noisy, const wcm_denoise_options *o, wcm_tensor *out,
                   wcm_denoise_info *info, wcm_error *err) {
    const wcm_denoise_options none = {0};
    wcm_denoise_info scratch_info;
    o = o ? o : &none;
    info = info ? info : &scratch_info;
    memset(info, 0, sizeof *info);
    memset(out, 0, sizeof *out);
    int rc = check_request(m, noisy, o, err);
    if (rc) return rc;
    int ph, pw;
    padded_shape(m, noisy, o, &ph, &pw);
    if (ph != noisy->h || pw != noisy->w) return denoise_padded(m, noisy, o, ph, pw, out, info, err);
    wcm_context *run = wcm_net_context(m->multiscale ? m->low : m->net);
    wcm_tensor staged, result = {0};
    const wcm_tensor *x;
    rc = wcm_tensor_stage(run, noisy, &staged, &x, err);
    if (!rc) rc = alloc_on(run, x, 1, &result, err);
    if (!rc) rc = denoise_into(m, run, x, o, result.data, info, err);
    /* The result where the input was. */
    if (!rc && wcm_tensor_is_host(noisy) && !wcm_tensor_is_host(&result)) rc = wcm_tensor_to_host(run, &result, out, err);
    else if (!rc) *out = result, memset(&result, 0, sizeof result);
    wcm_tensor_free(&result);
    wcm_tensor_free(&staged);
    return rc;
}

int wcm_denoise_in_place(const wcm_model *m, wcm_tensor *x, const wcm_denoise_options *o, wcm_denoise_info *info,
                         wcm_error *err) {
    const wcm_denoise_options none = {0};
    wcm_denoise_info scratch_info;
    o = o ? o : &none;
    info = info ? info : &scratch_info;
    if (!wcm_tensor_is_host(x)) return wcm_fail(err, WCM_ERR_ARG, "denoising in place: needs a host tensor");
    int rc = check_request(m, x, o, err);
    if (rc) return rc;
    int ph, pw;
    padded_shape(m, x, o, &ph, &pw);
    wcm_context *run = wcm_net_context(m->multiscale ? m->low : m->net);
    if (ph != x->h || pw != x->w || !wcm_context_host_visible(run)) {
        wcm_tensor out;
        rc = wcm_denoise_ex(m, x, o, &out, info, err);
        if (!rc) memcpy(x->data, out.data, wcm_tensor_count(x) * sizeof(float)), wcm_tensor_free(&out);
        return rc;
    }
    memset(info, 0, sizeof *info);
    return denoise_into(m, run, x, o, x->data, info, err);
}

int wcm_denoise(const wcm_model *m, const wcm_tensor *noisy, int lowpass_only, wcm_tensor *out, wcm_error *err) {
    const wcm_denoise_options o = {.lowpass_only = lowpass_only};
    return wcm_denoise_ex(m, noisy, &o, out, NULL, err);
}

int wcm_add_noise(wcm_tensor *x, double sigma, uint64_t seed, uint64_t first_image_index, wcm_error *err) {
    if (!wcm_tensor_is_host(x)) return wcm_fail(err, WCM_ERR_ARG, "add noise: needs a host tensor");
    wcm_context *run = wcm_context_host();
    const size_t per = (size_t)x->h * x->w * x->c;
    float *z = wcm_alloc(per * sizeof(float));
    if (!z) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    int rc = WCM_OK;
    for (int k = 0; k < x->n && !rc; k++) {
        float *d = x->data + (size_t)k * per;
        rc = wcm_op_fill_normal(run, seed, first_image_index + (uint64_t)k + 1, 0, per, z, err);
        if (!rc) rc = wcm_op_add_noise(run, per, d, z, sigma, d, err);
    }
    wcm_free(z);
    return rc;
}

double wcm_psnr(const float *a, const float *b, size_t n) {
    double s;
    if (wcm_op_reduce(wcm_context_host(), WCM_REDUCE_SQDIFF, n, a, b, 0.0, 0, &s, NULL)) return NAN;
    double mse = s / (double)n;
    return mse > 0 ? 10.0 * log10(1.0 / mse) : INFINITY;
}

double wcm_psnr_clamped(const float *reference, const float *estimate, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double v = fmin(fmax((double)estimate[i], -1.0), 2.0) - reference[i];
        s += v * v;
    }
    return s > 0 ? 10.0 * log10((double)n / s) : INFINITY;
}

int wcm_noise_kind_parse(const char *s, wcm_noise_kind *kind) {
    if (!strcmp(s, "torch")) *kind = WCM_NOISE_TORCH;
    else if (!strcmp(s, "philox")) *kind = WCM_NOISE_PHILOX;
    else return WCM_ERR_ARG;
    return WCM_OK;
}

void wcm_noise_pattern(wcm_noise_kind kind, uint64_t seed, int n_images, size_t per_image, float *z) {
    wcm_context *run = wcm_context_host();
    if (kind == WCM_NOISE_TORCH) {
        wcm_op_fill_normal_torch(run, seed, (size_t)n_images * per_image, z, NULL);
        return;
    }
    for (int k = 0; k < n_images; k++)
        wcm_op_fill_normal(run, seed, (uint64_t)k + 1, 0, per_image, z + (size_t)k * per_image, NULL);
}

void wcm_noise_apply_255(const float *clean, const float *z, size_t n, double sigma255, float *noisy) {
    wcm_op_add_noise_255(wcm_context_host(), n, clean, z, (float)sigma255, noisy, NULL);
}

void wcm_noise_apply(const float *clean, const float *z, size_t n, double sigma255, float *noisy) {
    wcm_noise_apply_255(clean, z, n, sigma255, noisy);
}

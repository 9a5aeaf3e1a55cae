/* Flat and multi-scale denoising (SPEC §5), as ops of the networks' context
 * (the low-pass net's for a multi-scale model: its nets share one context),
 * and the noise and PSNR helpers on host buffers. */
#include "wcm/denoise.h"

#include <math.h>
#include <string.h>

#include "backend_impl.h"

/* A tensor of this shape where the ops of run work. */
static int alloc_on(wcm_context *run, const wcm_tensor *like, int c, wcm_tensor *t, wcm_error *err) {
    return wcm_tensor_alloc_on(run, t, like->n, like->h, like->w, c, err);
}

/* out = x - net(x), all in run's memory. */
static int denoise_flat(wcm_context *run, wcm_net *net, const wcm_tensor *x, wcm_tensor *out, wcm_error *err) {
    wcm_tensor noise = {0};
    int rc = wcm_net_forward(net, x, &noise, err);
    if (!rc) rc = alloc_on(run, x, 1, out, err);
    if (!rc) rc = wcm_memcpy_in_backend(run, out->data, x->data, wcm_tensor_count(x) * sizeof(float), err);
    if (!rc) rc = wcm_op_axpy(run, wcm_tensor_count(x), -1.0f, noise.data, out->data, err);
    wcm_tensor_free(&noise);
    return rc;
}

/* The multi-scale cascade on x (in run's memory) into *out. */
static int denoise_multiscale(wcm_context *run, const wcm_model *m, const wcm_tensor *x, int lowpass_only,
                              wcm_tensor *out, wcm_error *err) {
    const int J = m->levels;
    wcm_pyramid p;
    int rc = wcm_haar_forward_on(run, x, J, &p, err);
    if (rc) return rc;
    wcm_tensor low = {0}, coarse = {0}, noise = {0}, up = {0};
    wcm_tensor *top = &p.level[J - 1];
    rc = alloc_on(run, top, 1, &coarse, err);
    if (!rc) rc = wcm_op_channels(run, WCM_CHANNELS_COPY, wcm_tensor_count(&coarse), 1, top->data, 4, 0, coarse.data, 1, 0, err);
    if (!rc) rc = denoise_flat(run, m->low, &coarse, &low, err);
    for (int j = J - 1; !rc && j >= 0; j--) {
        wcm_tensor *lvl = &p.level[j]; /* becomes [low estimate, denoised details] */
        const size_t px = (size_t)lvl->n * lvl->h * lvl->w;
        rc = wcm_op_channels(run, WCM_CHANNELS_COPY, px, 1, low.data, 1, 0, lvl->data, 4, 0, err);
        if (!rc && lowpass_only) rc = wcm_op_channels(run, WCM_CHANNELS_ZERO, px, 3, NULL, 0, 0, lvl->data, 4, 1, err);
        if (!rc && !lowpass_only) {
            rc = wcm_net_forward(m->cond[j], lvl, &noise, err);
            if (!rc) rc = wcm_op_channels(run, WCM_CHANNELS_SUB, px, 3, noise.data, 3, 0, lvl->data, 4, 1, err);
        }
        if (!rc) rc = wcm_haar_merge_on(run, &low, lvl, &up, err);
        wcm_tensor_free(&low);
        low = up;
        memset(&up, 0, sizeof up);
    }
    if (!rc) {
        *out = low;
        memset(&low, 0, sizeof low);
    }
    wcm_tensor_free(&low);
    wcm_tensor_free(&coarse);
    wcm_tensor_free(&noise);
    wcm_pyramid_free(&p);
    return rc;
}

int wcm_denoise(const wcm_model *m, const wcm_tensor *noisy, int lowpass_only, wcm_tensor *out, wcm_error *err) {
    memset(out, 0, sizeof *out);
    if (noisy->c != 1) return wcm_fail(err, WCM_ERR_SHAPE, "denoising needs gray (1-channel) images, got %d channels", noisy->c);
    if (!m->multiscale) {
        if (lowpass_only) return wcm_fail(err, WCM_ERR_ARG, "--lowpass-only needs a multi-scale model");
        if (wcm_net_get_kind(m->net) == WCM_NET_CONDITIONAL)
            return wcm_fail(err, WCM_ERR_ARG, "a lone conditional network cannot denoise images (it needs a low-pass)");
    }
    wcm_context *run = wcm_net_context(m->multiscale ? m->low : m->net);
    wcm_tensor staged, result = {0};
    const wcm_tensor *x;
    int rc = wcm_tensor_stage(run, noisy, &staged, &x, err);
    if (!rc)
        rc = m->multiscale ? denoise_multiscale(run, m, x, lowpass_only, &result, err)
                           : denoise_flat(run, m->net, x, &result, err);
    /* The result where the input was. */
    if (!rc && wcm_tensor_is_host(noisy) && !wcm_tensor_is_host(&result)) rc = wcm_tensor_to_host(run, &result, out, err);
    else if (!rc) *out = result, memset(&result, 0, sizeof result);
    wcm_tensor_free(&result);
    wcm_tensor_free(&staged);
    return rc;
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

void wcm_noise_apply(const float *clean, const float *z, size_t n, double sigma255, float *noisy) {
    wcm_op_add_noise_255(wcm_context_host(), n, clean, z, (float)sigma255, noisy, NULL);
}

double wcm_psnr_clamped(const float *ref, const float *x, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double v = fmin(fmax((double)x[i], -1.0), 2.0) - ref[i];
        s += v * v;
    }
    return s > 0 ? 10.0 * log10((double)n / s) : INFINITY;
}

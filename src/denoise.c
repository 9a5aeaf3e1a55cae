/* Flat and multi-scale denoising (SPEC §5). */
#include "wcm/denoise.h"
#include "wcm/rng.h"
#include "wcm/rng_torch.h"

#include <math.h>
#include <string.h>

static int denoise_flat(wcm_net *net, const wcm_tensor *noisy, wcm_tensor *out, wcm_error *err) {
    wcm_tensor noise = {0};
    int rc = wcm_net_forward(net, noisy, &noise, err);
    if (!rc) rc = wcm_tensor_alloc(out, noisy->n, noisy->h, noisy->w, 1, err);
    if (!rc) {
        size_t n = wcm_tensor_count(noisy);
        for (size_t i = 0; i < n; i++) out->data[i] = noisy->data[i] - noise.data[i];
    }
    wcm_tensor_free(&noise);
    return rc;
}

int wcm_denoise(const wcm_model *m, const wcm_tensor *noisy, int lowpass_only, wcm_tensor *out, wcm_error *err) {
    memset(out, 0, sizeof *out);
    if (noisy->c != 1) return wcm_fail(err, WCM_ERR_SHAPE, "denoising needs gray (1-channel) images, got %d channels", noisy->c);
    if (!m->multiscale) {
        if (lowpass_only) return wcm_fail(err, WCM_ERR_ARG, "--lowpass-only needs a multi-scale model");
        if (m->net->kind == WCM_NET_CONDITIONAL)
            return wcm_fail(err, WCM_ERR_ARG, "a lone conditional network cannot denoise images (it needs a low-pass)");
        return denoise_flat(m->net, noisy, out, err);
    }
    const int J = m->levels;
    wcm_pyramid p;
    int rc = wcm_haar_forward(noisy, J, &p, err);
    if (rc) return rc;
    wcm_tensor low = {0}, coarse = {0}, noise = {0}, up = {0};
    wcm_tensor *top = &p.level[J - 1];
    rc = wcm_tensor_alloc(&coarse, top->n, top->h, top->w, 1, err);
    if (rc) goto done;
    for (size_t i = 0; i < wcm_tensor_count(&coarse); i++) coarse.data[i] = top->data[4 * i];
    rc = denoise_flat(m->low, &coarse, &low, err);
    for (int j = J - 1; !rc && j >= 0; j--) {
        wcm_tensor *lvl = &p.level[j]; /* becomes [low estimate, denoised details] */
        size_t px = (size_t)lvl->n * lvl->h * lvl->w;
        for (size_t i = 0; i < px; i++) lvl->data[4 * i] = low.data[i];
        if (lowpass_only) {
            for (size_t i = 0; i < px; i++) lvl->data[4 * i + 1] = lvl->data[4 * i + 2] = lvl->data[4 * i + 3] = 0;
        } else {
            rc = wcm_net_forward(m->cond[j], lvl, &noise, err);
            if (rc) break;
            for (size_t i = 0; i < px; i++)
                for (int c = 0; c < 3; c++) lvl->data[4 * i + 1 + c] -= noise.data[3 * i + c];
        }
        rc = wcm_haar_merge(&low, lvl, &up, err);
        wcm_tensor_free(&low);
        low = up;
        memset(&up, 0, sizeof up);
    }
    if (!rc) {
        *out = low;
        memset(&low, 0, sizeof low);
    }
done:
    wcm_tensor_free(&low);
    wcm_tensor_free(&coarse);
    wcm_tensor_free(&noise);
    wcm_pyramid_free(&p);
    return rc;
}

int wcm_add_noise(wcm_tensor *x, double sigma, uint64_t seed, uint64_t first_image_index, wcm_error *err) {
    size_t per = (size_t)x->h * x->w * x->c;
    float *z = wcm_alloc(per * sizeof(float));
    if (!z) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    for (int k = 0; k < x->n; k++) {
        wcm_randn_fill(seed, first_image_index + (uint64_t)k + 1, 0, z, per);
        float *d = x->data + (size_t)k * per;
        for (size_t i = 0; i < per; i++) d[i] += (float)(sigma * z[i]);
    }
    wcm_free(z);
    return WCM_OK;
}

double wcm_psnr(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        s += d * d;
    }
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
    if (kind == WCM_NOISE_TORCH) {
        wcm_randn_torch(seed, z, (size_t)n_images * per_image);
        return;
    }
    for (int k = 0; k < n_images; k++) wcm_randn_fill(seed, (uint64_t)k + 1, 0, z + (size_t)k * per_image, per_image);
}

void wcm_noise_apply(const float *clean, const float *z, size_t n, double sigma255, float *noisy) {
    const float s = (float)sigma255;
    for (size_t i = 0; i < n; i++) noisy[i] = clean[i] + (z[i] * s) / 255.0f;
}

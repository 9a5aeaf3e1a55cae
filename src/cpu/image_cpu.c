/* The CPU backend's image ops: the Haar split and merge, channel slicing,
 * nearest-neighbour upsampling, and the noise fills (Philox in parallel,
 * every value a pure function of its index; torch.randn's sequential
 * MT19937 on the calling thread). */
#include <string.h>

#include "cpu/cpu_conv.h"
#include "rng_internal.h"
#include "wcm/rng_torch.h"

/* Parallel only above this many values (thread start-up costs more). */
#define PARALLEL_MIN_VALUES 16384

int wcm_cpu_haar_split(wcm_context *ctx, int n, int h, int w, const float *x, float *out) {
    (void)ctx;
    const int H = h / 2, W = w / 2;
    const long rows = (long)n * H;
#pragma omp parallel for schedule(static) if ((long)rows * W >= PARALLEL_MIN_VALUES / 4)
    for (long r = 0; r < rows; r++) {
        const float *src = x + (size_t)(r / H) * h * w;
        const int i = (int)(r % H);
        float *dst = out + (size_t)r * W * 4;
        for (int k = 0; k < W; k++) {
            float a = src[(2 * i) * w + 2 * k], b = src[(2 * i) * w + 2 * k + 1];
            float c = src[(2 * i + 1) * w + 2 * k], d = src[(2 * i + 1) * w + 2 * k + 1];
            float *o = dst + (size_t)k * 4;
            o[0] = (a + b + c + d) * 0.25f;
            o[1] = (a + b - c - d) * 0.25f;
            o[2] = (a - b + c - d) * 0.25f;
            o[3] = (a - b - c + d) * 0.25f;
        }
    }
    return WCM_OK;
}

int wcm_cpu_haar_merge(wcm_context *ctx, int n, int h, int w, const float *low, const float *coeffs, int c, float *out) {
    (void)ctx;
    const int off = c == 4 ? 1 : 0, OW = 2 * w;
    const long rows = (long)n * h;
#pragma omp parallel for schedule(static) if ((long)rows * w >= PARALLEL_MIN_VALUES / 4)
    for (long r = 0; r < rows; r++) {
        const int i = (int)(r % h);
        const float *lp = low + (size_t)r * w, *cp = coeffs + (size_t)r * w * c;
        float *dst = out + (size_t)(r / h) * 2 * h * OW;
        for (int k = 0; k < w; k++) {
            float l = lp[k];
            const float *q = cp + (size_t)k * c + off;
            float hh = q[0], v = q[1], d = q[2];
            dst[(2 * i) * OW + 2 * k] = l + hh + v + d;
            dst[(2 * i) * OW + 2 * k + 1] = l + hh - v - d;
            dst[(2 * i + 1) * OW + 2 * k] = l - hh + v - d;
            dst[(2 * i + 1) * OW + 2 * k + 1] = l - hh - v + d;
        }
    }
    return WCM_OK;
}

int wcm_cpu_channels(wcm_context *ctx, wcm_channels_mode mode, size_t pixels, int count, const float *src, int src_c,
                     int src_off, float *dst, int dst_c, int dst_off) {
    (void)ctx;
#pragma omp parallel for schedule(static) if (pixels * (size_t)count >= PARALLEL_MIN_VALUES)
    for (size_t p = 0; p < pixels; p++) {
        float *d = dst + p * dst_c + dst_off;
        const float *s = mode == WCM_CHANNELS_ZERO ? NULL : src + p * src_c + src_off;
        for (int k = 0; k < count; k++) {
            if (mode == WCM_CHANNELS_COPY) d[k] = s[k];
            else if (mode == WCM_CHANNELS_SUB) d[k] -= s[k];
            else d[k] = 0.0f;
        }
    }
    return WCM_OK;
}

int wcm_cpu_upsample(wcm_context *ctx, int n, int h, int w, int c, int factor, const float *x, float *y) {
    (void)ctx;
    const int OH = h * factor, OW = w * factor;
    const long rows = (long)n * OH;
#pragma omp parallel for schedule(static) if ((long)rows * OW * c >= PARALLEL_MIN_VALUES)
    for (long r = 0; r < rows; r++) {
        const float *src = x + ((size_t)(r / OH) * h + (size_t)(r % OH / factor)) * w * c;
        float *dst = y + (size_t)r * OW * c;
        for (int j = 0; j < OW; j++) memcpy(dst + (size_t)j * c, src + (size_t)(j / factor) * c, sizeof(float) * (size_t)c);
    }
    return WCM_OK;
}

void wcm_cpu_fill_philox(int uniform, uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float *out) {
    if (n == 0 || !out) return;
    /* Blocks covering [offset, offset + n): each block yields values 2b and 2b+1. */
    const uint64_t first_block = offset >> 1;
    const uint64_t last_block = (offset + n - 1) >> 1;
    const long long block_count = (long long)(last_block - first_block + 1);
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN_VALUES)
    for (long long k = 0; k < block_count; k++) {
        const uint64_t block = first_block + (uint64_t)k;
        float values[2];
        wcm_rng_pair(uniform, seed, stream, block, values);
        for (int j = 0; j < 2; j++) {
            const uint64_t index = 2 * block + (uint64_t)j;
            if (index >= offset && index - offset < n) out[index - offset] = values[j];
        }
    }
}

int wcm_cpu_fill_normal(wcm_context *ctx, uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float *out) {
    (void)ctx;
    wcm_cpu_fill_philox(0, seed, stream, offset, n, out);
    return WCM_OK;
}

int wcm_cpu_fill_uniform(wcm_context *ctx, uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float *out) {
    (void)ctx;
    wcm_cpu_fill_philox(1, seed, stream, offset, n, out);
    return WCM_OK;
}

int wcm_cpu_fill_normal_torch(wcm_context *ctx, uint64_t seed, size_t n, float *out) {
    (void)ctx;
    wcm_randn_torch(seed, out, n);
    return WCM_OK;
}

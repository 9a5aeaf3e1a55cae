/* Image and layout kernels of the CUDA backend: the Haar split and merge
 * (src/cpu/image_cpu.c's float expressions), channel slicing, nearest
 * upsampling, and the weight and border layouts the cuDNN convolutions need. */
#include "cuda/cuda_kernels.h"
#include "cuda/cuda_launch.cuh"

__global__ void k_haar_split(size_t blocks, int h, int w, const float *x, float *out) {
    const int H = h / 2, W = w / 2;
    GRID_STRIDE(q, blocks) {
        const size_t b = q / ((size_t)H * W);
        const int i = (int)(q / W % H), k = (int)(q % W);
        const float *src = x + b * h * w;
        const float a = src[(2 * i) * w + 2 * k], bb = src[(2 * i) * w + 2 * k + 1];
        const float c = src[(2 * i + 1) * w + 2 * k], d = src[(2 * i + 1) * w + 2 * k + 1];
        float *o = out + q * 4;
        o[0] = (a + bb + c + d) * 0.25f;
        o[1] = (a + bb - c - d) * 0.25f;
        o[2] = (a - bb + c - d) * 0.25f;
        o[3] = (a - bb - c + d) * 0.25f;
    }
}

__global__ void k_haar_merge(size_t pixels, int h, int w, const float *low, const float *coeffs, int c, float *out) {
    const int off = c == 4 ? 1 : 0, OW = 2 * w;
    GRID_STRIDE(q, pixels) {
        const size_t b = q / ((size_t)h * w);
        const int i = (int)(q / w % h), k = (int)(q % w);
        const float l = low[q];
        const float *cq = coeffs + q * c + off;
        const float hh = cq[0], v = cq[1], d = cq[2];
        float *dst = out + b * 2 * h * OW;
        dst[(2 * i) * OW + 2 * k] = l + hh + v + d;
        dst[(2 * i) * OW + 2 * k + 1] = l + hh - v - d;
        dst[(2 * i + 1) * OW + 2 * k] = l - hh + v - d;
        dst[(2 * i + 1) * OW + 2 * k + 1] = l - hh - v + d;
    }
}

__global__ void k_channels(size_t total, wcm_channels_mode mode, int count, const float *src, int src_c, int src_off,
                           float *dst, int dst_c, int dst_off) {
    GRID_STRIDE(q, total) {
        const size_t p = q / count;
        const int k = (int)(q % count);
        float *d = dst + p * dst_c + dst_off + k;
        if (mode == WCM_CHANNELS_COPY) *d = src[p * src_c + src_off + k];
        else if (mode == WCM_CHANNELS_SUB) *d -= src[p * src_c + src_off + k];
        else *d = 0.0f;
    }
}

__global__ void k_upsample(size_t total, int h, int w, int c, int factor, const float *x, float *y) {
    const size_t OH = (size_t)h * factor, OW = (size_t)w * factor;
    GRID_STRIDE(q, total) {
        const size_t ch = q % c, j = q / c % OW, r = q / c / OW % OH, b = q / c / OW / OH;
        y[q] = x[((b * h + r / factor) * w + j / factor) * c + ch];
    }
}

/* out[co][t][ci] = w[t][ci][co] over the k*k taps t. */
__global__ void k_weights_to_krsc(size_t total, int taps, int cin, int cout, const float *w, float *out) {
    GRID_STRIDE(q, total) {
        const int ci = (int)(q % cin), t = (int)(q / cin % taps), co = (int)(q / cin / taps);
        out[q] = w[((size_t)t * cin + ci) * cout + co];
    }
}

__global__ void k_weights_to_wcm(size_t total, int taps, int cin, int cout, const float *krsc, float *dst, int acc) {
    GRID_STRIDE(q, total) {
        const int co = (int)(q % cout), ci = (int)(q / cout % cin), t = (int)(q / cout / cin);
        const float v = krsc[((size_t)co * taps + t) * cin + ci];
        dst[q] = acc ? dst[q] + v : v;
    }
}

__global__ void k_crop(size_t total, int h, int w, int c, int ph, int pw, const float *big, float *small) {
    GRID_STRIDE(q, total) {
        const size_t ch = q % c, j = q / c % w, i = q / c / w % h, b = q / c / w / h;
        small[q] = big[((b * ph + i) * pw + j) * c + ch];
    }
}

__global__ void k_pad(size_t total, int h, int w, int c, int ph, int pw, const float *small, float *big) {
    GRID_STRIDE(q, total) {
        const size_t ch = q % c, j = q / c % pw, i = q / c / pw % ph, b = q / c / pw / ph;
        big[q] = (int)i < h && (int)j < w ? small[((b * h + i) * w + j) * c + ch] : 0.0f;
    }
}

extern "C" {
int wcm_cu_haar_split(cudaStream_t s, int n, int h, int w, const float *x, float *out) {
    const size_t blocks = (size_t)n * (h / 2) * (w / 2);
    LAUNCH_N(k_haar_split, s, blocks, blocks, h, w, x, out);
}
int wcm_cu_haar_merge(cudaStream_t s, int n, int h, int w, const float *low, const float *coeffs, int c, float *out) {
    const size_t pixels = (size_t)n * h * w;
    LAUNCH_N(k_haar_merge, s, pixels, pixels, h, w, low, coeffs, c, out);
}
int wcm_cu_channels(cudaStream_t s, wcm_channels_mode mode, size_t pixels, int count, const float *src, int src_c,
                    int src_off, float *dst, int dst_c, int dst_off) {
    const size_t total = pixels * (size_t)(count > 0 ? count : 0);
    LAUNCH_N(k_channels, s, total, total, mode, count, src, src_c, src_off, dst, dst_c, dst_off);
}
int wcm_cu_upsample(cudaStream_t s, int n, int h, int w, int c, int factor, const float *x, float *y) {
    const size_t total = (size_t)n * h * factor * w * factor * c;
    LAUNCH_N(k_upsample, s, total, total, h, w, c, factor, x, y);
}
int wcm_cu_weights_to_krsc(cudaStream_t s, int k, int cin, int cout, const float *w, float *out) {
    const size_t total = (size_t)k * k * cin * cout;
    LAUNCH_N(k_weights_to_krsc, s, total, total, k * k, cin, cout, w, out);
}
int wcm_cu_weights_to_wcm(cudaStream_t s, int k, int cin, int cout, const float *krsc, float *dst, int accumulate) {
    const size_t total = (size_t)k * k * cin * cout;
    LAUNCH_N(k_weights_to_wcm, s, total, total, k * k, cin, cout, krsc, dst, accumulate);
}
int wcm_cu_crop(cudaStream_t s, int n, int h, int w, int c, int ph, int pw, const float *big, float *small) {
    const size_t total = (size_t)n * h * w * c;
    LAUNCH_N(k_crop, s, total, total, h, w, c, ph, pw, big, small);
}
int wcm_cu_pad(cudaStream_t s, int n, int h, int w, int c, int ph, int pw, const float *small, float *big) {
    const size_t total = (size_t)n * ph * pw * c;
    LAUNCH_N(k_pad, s, total, total, h, w, c, ph, pw, small, big);
}
}

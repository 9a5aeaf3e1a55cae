/* Exact tiled network passes and symmetric padding (wcm/tiling.h). */
#include "wcm/tiling.h"

#include <math.h>
#include <string.h>

#include "backend_impl.h"

size_t wcm_net_bytes_per_pixel(const wcm_net *net) {
    return sizeof(float) * (size_t)(2 * WCM_CHANNELS + wcm_net_cin(net) + wcm_net_cout(net));
}

int wcm_net_tile_halo(const wcm_net *net) {
    int halo = 0;
    for (int l = 0; l < wcm_net_nlayers(net); l++) {
        const int k = wcm_net_layer(net, l)->k;
        if (k <= 1) continue;
        /* Winograd: the (m + 2)^2 patch of an m x m tile, m <= 6; direct
         * kernels: (k - 1) / 2 plus a register tile of up to 6 pixels. */
        const int direct = (k - 1) / 2 + 5;
        halo += direct > 6 ? direct : 6;
    }
    return (halo + WCM_TILE_ALIGN - 1) / WCM_TILE_ALIGN * WCM_TILE_ALIGN;
}

int wcm_net_tile_side(const wcm_net *net, const wcm_tiling *t, int h, int w) {
    if (!t || (t->tile <= 0 && t->memory == 0)) return 0;
    const int A = WCM_TILE_ALIGN, halo = wcm_net_tile_halo(net);
    int side;
    if (t->tile > 0) {
        side = (t->tile + A - 1) / A * A;
    } else {
        /* The largest side whose grown region fits the memory: (side + 2 halo)^2 pixels. */
        const double px = (double)t->memory / (double)wcm_net_bytes_per_pixel(net);
        const double grown = px > 0 ? sqrt(px) : 0;
        side = (int)((grown - 2.0 * halo) / A) * A;
        if ((double)(h > w ? h : w) <= grown) side = (h > w ? h : w); /* one region holds the image */
        if (side < A) side = A;
    }
    /* One tile region covering the image: whole-image pass. */
    return (side >= h && side >= w) || (side + 2 * halo >= h && side + 2 * halo >= w) ? 0 : side;
}

/* Rows [y0, y0 + h) x columns [x0, x0 + w) of image n of src into dst
 * (rows of dst_w pixels). */
static void copy_region(const wcm_tensor *src, int n, int y0, int x0, int h, int w, float *dst, int dst_w) {
    const size_t c = (size_t)src->c;
    for (int y = 0; y < h; y++)
        memcpy(dst + (size_t)y * dst_w * c, src->data + wcm_tensor_idx(src, n, y0 + y, x0, 0), (size_t)w * c * sizeof(float));
}

int wcm_net_forward_tiled(wcm_net *net, const wcm_tensor *in, const wcm_tiling *t, wcm_tensor *out, wcm_error *err) {
    const int side = wcm_net_tile_side(net, t, in->h, in->w);
    if (!side) return wcm_net_forward(net, in, out, err);
    if (!wcm_tensor_is_host(in) || (out->data && !wcm_tensor_is_host(out)))
        return wcm_fail(err, WCM_ERR_ARG, "tiled network pass: needs host tensors");
    const int cin = wcm_net_cin(net), cout = wcm_net_cout(net);
    if (in->c != cin)
        return wcm_fail(err, WCM_ERR_SHAPE, "%s network expects %d input channel%s, got %d",
                        wcm_net_kind_name(wcm_net_get_kind(net)), cin, cin == 1 ? "" : "s", in->c);
    if (!out->data || out->n != in->n || out->h != in->h || out->w != in->w || out->c != cout) {
        wcm_tensor_free(out);
        int rc = wcm_tensor_alloc(out, in->n, in->h, in->w, cout, err);
        if (rc) return rc;
    }
    const int halo = wcm_net_tile_halo(net);
    const int gh = (side + 2 * halo < in->h ? side + 2 * halo : in->h);
    const int gw = (side + 2 * halo < in->w ? side + 2 * halo : in->w);
    /* One buffer of the largest grown region for the input and one for the
     * output; each tile views their top-left part. */
    float *tin_data = wcm_alloc((size_t)gh * gw * cin * sizeof(float));
    float *tout_data = wcm_alloc((size_t)gh * gw * cout * sizeof(float));
    int rc = tin_data && tout_data ? WCM_OK : wcm_fail(err, WCM_ERR_NOMEM, "tiled network pass: out of memory");
    wcm_context *ctx = wcm_ctx(wcm_net_context(net));
    const int saved_h = ctx->route_h, saved_w = ctx->route_w;
    ctx->route_h = in->h;
    ctx->route_w = in->w;
    for (int n = 0; n < in->n && !rc; n++)
        for (int oy = 0; oy < in->h && !rc; oy += side)
            for (int ox = 0; ox < in->w && !rc; ox += side) {
                const int th = in->h - oy < side ? in->h - oy : side, tw = in->w - ox < side ? in->w - ox : side;
                const int y0 = oy - halo > 0 ? oy - halo : 0, x0 = ox - halo > 0 ? ox - halo : 0;
                const int y1 = oy + th + halo < in->h ? oy + th + halo : in->h;
                const int x1 = ox + tw + halo < in->w ? ox + tw + halo : in->w;
                wcm_tensor tin = wcm_tensor_view(tin_data, 1, y1 - y0, x1 - x0, cin);
                wcm_tensor tout = wcm_tensor_view(tout_data, 1, y1 - y0, x1 - x0, cout);
                copy_region(in, n, y0, x0, tin.h, tin.w, tin_data, tin.w);
                rc = wcm_net_forward(net, &tin, &tout, err);
                if (rc) break;
                for (int y = 0; y < th; y++)
                    memcpy(out->data + wcm_tensor_idx(out, n, oy + y, ox, 0),
                           tout_data + ((size_t)(oy - y0 + y) * tout.w + (ox - x0)) * cout, (size_t)tw * cout * sizeof(float));
            }
    ctx->route_h = saved_h;
    ctx->route_w = saved_w;
    wcm_free(tin_data);
    wcm_free(tout_data);
    return rc;
}

int wcm_padded_size(int size, int multiple) {
    if (multiple <= 1) return size;
    return (int)(((long)size + multiple - 1) / multiple * multiple);
}

/* Source index of position i in a symmetric extension of n samples. */
static int mirror(int i, int n) {
    const int period = 2 * n;
    i %= period;
    return i < n ? i : period - 1 - i;
}

int wcm_pad_symmetric(const wcm_tensor *in, int h, int w, wcm_tensor *out, wcm_error *err) {
    if (!wcm_tensor_is_host(in)) return wcm_fail(err, WCM_ERR_ARG, "padding: needs a host tensor");
    if (h < in->h || w < in->w)
        return wcm_fail(err, WCM_ERR_SHAPE, "padding %dx%d to the smaller %dx%d", in->w, in->h, w, h);
    wcm_tensor r;
    int rc = wcm_tensor_alloc(&r, in->n, h, w, in->c, err);
    if (rc) return rc;
    const size_t c = (size_t)in->c;
    for (int n = 0; n < in->n; n++)
        for (int y = 0; y < h; y++) {
            const float *src = in->data + wcm_tensor_idx(in, n, mirror(y, in->h), 0, 0);
            float *dst = r.data + wcm_tensor_idx(&r, n, y, 0, 0);
            memcpy(dst, src, (size_t)in->w * c * sizeof(float));
            for (int x = in->w; x < w; x++) memcpy(dst + x * c, src + (size_t)mirror(x, in->w) * c, c * sizeof(float));
        }
    *out = r;
    return WCM_OK;
}

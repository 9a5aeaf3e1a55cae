/* Winograd F(4x4,3x3) convolution driver.
 *
 * Each work item is a run of up to WG_TILES 4x4 output tiles along one tile
 * row of one image: the input patches are transformed into V[tiles][36][cin],
 * multiplied per transform point by U[36][cin][cout] with the level's tile
 * kernel (36 small GEMMs whose B matrix stays in L1), and the results
 * M[tiles][36][cout] are transformed back into the output. 36 multiplies per
 * 16 outputs instead of 144. Every output is computed by one thread in a fixed
 * order, so results do not depend on the thread count. */
#include <omp.h>

#include "cpu/cpu_conv.h"

/* Measured on flat RF 43 networks: 40 (a whole 160-wide tile row) is 3-5%
 * faster than 24 at 160x160 and 320x320; 10 is 4% slower (U is re-read from
 * L2 for every item). */
#define WG_TILES 40

int wcm_winograd_qualifies(const wcm_simd_ops *ops, const wcm_conv_shape *s) {
    return ops->winograd && s->k == 3 && s->cin >= 16 && s->cout >= 16 && s->cin % 16 == 0 && s->cout % 16 == 0 &&
           s->h >= 4 && s->w >= 4;
}

void wcm_winograd_weights(const wcm_simd_ops *ops, const wcm_conv_shape *s, const float *w, float *u) {
    const int cin = s->cin;
#pragma omp parallel
    {
        const int nt = omp_get_num_threads(), t = omp_get_thread_num();
        ops->winograd->weights(w, cin, s->cout, (int)((long)cin * t / nt), (int)((long)cin * (t + 1) / nt), u);
    }
}

/* Output tiles per work item: runs of equal length along a tile row. */
static int tiles_per_block(int w) {
    const int tiles_w = (w + 3) / 4;
    const int blocks = (tiles_w + WG_TILES - 1) / WG_TILES;
    return (tiles_w + blocks - 1) / blocks;
}

/* M overwrites V in place when the tile kernel covers all output channels in
 * one column block and cin == cout: the kernel reads its whole A block (V
 * rows) before it stores C (the same rows of M). */
static int forward_in_place(const wcm_simd_ops *ops, const wcm_conv_shape *s) {
    return s->cin == s->cout && s->cout <= ops->max_cols;
}

static size_t forward_floats_per_thread(const wcm_simd_ops *ops, const wcm_conv_shape *s) {
    return (size_t)36 * tiles_per_block(s->w) * (size_t)(s->cin + (forward_in_place(ops, s) ? 0 : s->cout));
}

size_t wcm_winograd_scratch_floats(const wcm_conv_shape *s, int threads) {
    /* Sized for either layout, so that callers need not know which. */
    return (size_t)36 * tiles_per_block(s->w) * (size_t)(s->cin + s->cout) * (size_t)(threads > 0 ? threads : 1);
}

int wcm_winograd_forward(const wcm_simd_ops *ops, const wcm_conv_shape *s, const float *x, const float *u, float *y,
                         int flags) {
    float *scratch = wcm_alloc(sizeof(float) * wcm_winograd_scratch_floats(s, omp_get_max_threads()));
    if (!scratch) return -1;
    wcm_winograd_forward_scratch(ops, s, x, u, y, flags, scratch);
    wcm_free(scratch);
    return 0;
}

/* Work item `it`: image n, tile row ti, tiles [tj0, tj0 + nt). */
typedef struct {
    long n;
    int ti, tj0, nt;
} wg_item;

static wg_item item_at(long it, int tiles_h, int tiles_w, int per_block) {
    const int blocks = (tiles_w + per_block - 1) / per_block;
    wg_item r;
    r.n = it / ((long)blocks * tiles_h);
    r.ti = (int)(it / blocks % tiles_h);
    r.tj0 = (int)(it % blocks) * per_block;
    r.nt = tiles_w - r.tj0 < per_block ? tiles_w - r.tj0 : per_block;
    return r;
}

typedef struct {
    const wcm_simd_ops *ops;
    const wcm_conv_shape *s;
    const float *x, *u;
    float *y;
    int relu, tiles_h, tiles_w, per_block;
} wg_forward_job;

/* Items [it0, it1) with this thread's V (and M, which may be V). The
 * transform points of one tile are contiguous (V[tile][36][cin],
 * M[tile][36][cout]), and the items are software-pipelined: tile t of item i
 * is transformed back to the output just before tile t of item i + 1 is
 * transformed in, into the same 9 KB (64 channels), which the output
 * transform has just brought into L1. With M in place of V, no transform
 * point is ever written to a line that is not in L1 already (measured 3-10%
 * faster per layer than separate V and M). */
static void forward_items(const wg_forward_job *f, long it0, long it1, float *V, float *M) {
    const wcm_conv_shape *s = f->s;
    const int H = s->h, W = s->w, CI = s->cin, CO = s->cout;
    const ptrdiff_t v_tile = (ptrdiff_t)36 * CI, m_tile = (ptrdiff_t)36 * CO;
    const size_t in_img = (size_t)H * W * CI, out_img = (size_t)H * W * CO;
    const int step = f->ops->max_cols;
    const wcm_winograd_ops *wg = f->ops->winograd;
    if (it0 >= it1) return;
    wg_item cur = item_at(it0, f->tiles_h, f->tiles_w, f->per_block);
    for (int t = 0; t < cur.nt; t++)
        wg->input(f->x + cur.n * in_img, H, W, CI, 4 * cur.ti - 1, 4 * (cur.tj0 + t) - 1, V + t * v_tile, CI);
    for (long it = it0; it < it1; it++) {
        for (int xi = 0; xi < 36; xi++) {
            wcm_tile_job j;
            j.pf = WCM_NO_PREFETCH;
            j.nseg = 1;
            j.mode = WCM_TILE_STORE;
            j.k[0] = CI;
            j.a_row = v_tile;
            j.a_col = 1;
            j.ldb = CO;
            j.ldc = m_tile;
            for (int co0 = 0; co0 < CO; co0 += step) {
                j.ncols = CO - co0 < step ? CO - co0 : step;
                j.b[0] = f->u + (size_t)xi * CI * CO + co0;
                for (int t0 = 0; t0 < cur.nt;) {
                    j.rows = wcm_tile_step(cur.nt - t0);
                    j.a[0] = V + t0 * v_tile + (ptrdiff_t)xi * CI;
                    j.c = M + t0 * m_tile + (ptrdiff_t)xi * CO + co0;
                    f->ops->tile(&j);
                    t0 += j.rows;
                }
            }
        }
        const wg_item next = item_at(it + 1, f->tiles_h, f->tiles_w, f->per_block);
        const int next_nt = it + 1 < it1 ? next.nt : 0;
        float *yimg = f->y + cur.n * out_img;
        for (int t = 0; t < cur.nt || t < next_nt; t++) {
            if (t < cur.nt) wg->output(M + t * m_tile, CO, CO, yimg, H, W, 4 * cur.ti, 4 * (cur.tj0 + t), f->relu);
            if (t < next_nt)
                wg->input(f->x + next.n * in_img, H, W, CI, 4 * next.ti - 1, 4 * (next.tj0 + t) - 1, V + t * v_tile, CI);
        }
        cur = next;
    }
}

/* Threads take runs of WG_CHUNK_ITEMS items as they finish (each run is one
 * pipeline), or, with fewer than WG_DYNAMIC_MIN_CHUNKS runs per thread, one
 * contiguous share each. Measured with alternating A/B on the 2-core host
 * (flat RF 43): from even, when both cores run free, to 10% (160x160) and
 * 7-14% (320x320) faster than contiguous shares while a neighbour slows one
 * core; runs of 1 item (no pipelining) cost 8% on the 40x40 low-pass net.
 * Each item is computed alike either way, so results do not depend on it. */
#define WG_CHUNK_ITEMS 4
#define WG_DYNAMIC_MIN_CHUNKS 4

void wcm_winograd_forward_scratch(const wcm_simd_ops *ops, const wcm_conv_shape *s, const float *x, const float *u,
                                  float *y, int flags, float *scratch) {
    wg_forward_job f = {ops, s, x, u, y, (flags & WCM_CONV_RELU) != 0, (s->h + 3) / 4, (s->w + 3) / 4, tiles_per_block(s->w)};
    const long items = (long)s->n * f.tiles_h * ((f.tiles_w + f.per_block - 1) / f.per_block);
    const size_t per_thread = forward_floats_per_thread(ops, s);
    const int in_place = forward_in_place(ops, s);
#pragma omp parallel
    {
        const int nth = omp_get_num_threads(), th = omp_get_thread_num();
        float *V = scratch + per_thread * (size_t)th;
        float *M = in_place ? V : V + (size_t)f.per_block * 36 * s->cin;
        if (items < WG_DYNAMIC_MIN_CHUNKS * WG_CHUNK_ITEMS * (long)nth) {
            forward_items(&f, items * th / nth, items * (th + 1) / nth, V, M);
        } else {
            const long nchunks = (items + WG_CHUNK_ITEMS - 1) / WG_CHUNK_ITEMS;
#pragma omp for schedule(dynamic, 1)
            for (long c = 0; c < nchunks; c++)
                forward_items(&f, c * WG_CHUNK_ITEMS, c + 1 < nchunks ? (c + 1) * WG_CHUNK_ITEMS : items, V, M);
        }
    }
}

/* ---- backward weights ----
 * The tiles of all images form one stream (image, tile row, tile column),
 * cut into blocks of equal length (a function of the shape only). For each
 * block the team first transforms the input patches into V[36][T][cin] and the
 * dy blocks into dM[36][T][cout], then computes dU[xi] (+)= V[xi]^T dM[xi]
 * with the tile kernel, rows = input channels, reduction over the block's
 * tiles; each (xi, column block) belongs to one thread per block and blocks
 * are added in stream order, so the sums do not depend on the thread count.
 * Finally dw = G^T dU G. */
/* Tiles per block: V and dM of one transform point (T x 128 floats for 64->64)
 * stay in L1 while the tile kernel sweeps them; measured 20 .. 32 best on
 * 16x40x40 64->64 (64: 15% slower). */
#define WG_BW_TILES 24

int wcm_winograd_backward_weights(const wcm_simd_ops *ops, const wcm_conv_shape *s, const float *x, const float *dy,
                                  float *dw, int flags) {
    const int H = s->h, W = s->w, CI = s->cin, CO = s->cout;
    const int tiles_h = (H + 3) / 4, tiles_w = (W + 3) / 4;
    const long per_image = (long)tiles_h * tiles_w, total = per_image * s->n;
    const long nblocks = (total + WG_BW_TILES - 1) / WG_BW_TILES;
    const int T = (int)((total + nblocks - 1) / nblocks);
    const size_t du_size = (size_t)36 * CI * CO, v_size = (size_t)36 * T * CI, m_size = (size_t)36 * T * CO;
    float *du = wcm_alloc(sizeof(float) * (du_size + v_size + m_size));
    if (!du) return -1;
    float *V = du + du_size, *M = V + v_size;
    const ptrdiff_t v_stride = (ptrdiff_t)T * CI, m_stride = (ptrdiff_t)T * CO;
    const int step = ops->max_cols, ncb = (CO + step - 1) / step;
    const wcm_winograd_ops *wg = ops->winograd;
    const int accumulate = (flags & WCM_CONV_ACCUMULATE) != 0;
#pragma omp parallel
    {
        for (long b = 0; b < nblocks; b++) {
            const long g0 = b * T;
            const int nt = (int)(total - g0 < T ? total - g0 : T);
#pragma omp for schedule(static)
            for (int t = 0; t < nt; t++) {
                const long g = g0 + t;
                const long n = g / per_image;
                const int ti = (int)(g % per_image / tiles_w), tj = (int)(g % tiles_w);
                wg->input(x + (size_t)n * H * W * CI, H, W, CI, 4 * ti - 1, 4 * tj - 1, V + (size_t)t * CI, v_stride);
                wg->output_adjoint(dy + (size_t)n * H * W * CO, H, W, CO, 4 * ti, 4 * tj, M + (size_t)t * CO, m_stride);
            }
#pragma omp for schedule(static)
            for (int q = 0; q < 36 * ncb; q++) {
                const int xi = q / ncb, co0 = q % ncb * step;
                wcm_tile_job j;
                j.pf = WCM_NO_PREFETCH;
                j.nseg = 1;
                j.mode = b == 0 ? WCM_TILE_STORE : WCM_TILE_ADD;
                j.ncols = CO - co0 < step ? CO - co0 : step;
                j.k[0] = nt;
                j.a_row = 1;
                j.a_col = CI;
                j.b[0] = M + xi * m_stride + co0;
                j.ldb = CO;
                j.ldc = CO;
                for (int ci0 = 0; ci0 < CI; ci0 += j.rows) {
                    j.rows = wcm_tile_step(CI - ci0);
                    j.a[0] = V + xi * v_stride + ci0;
                    j.c = du + ((size_t)xi * CI + ci0) * CO + co0;
                    ops->tile(&j);
                }
            }
        }
        const int nt = omp_get_num_threads(), t = omp_get_thread_num();
        wg->weights_adjoint(du, CI, CO, (int)((long)CI * t / nt), (int)((long)CI * (t + 1) / nt), dw, accumulate);
    }
    wcm_free(du);
    return 0;
}

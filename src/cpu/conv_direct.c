/* Direct convolution drivers, shared by every SIMD level: they cut the work
 * into register tiles and call the level's tile/dot kernel.
 *
 * Borders: a tile of pixels [j0, j0+np) of output row i uses kernel columns
 * kx for which every pixel's input column j + kx - R is inside the image (one
 * kernel call covering all valid kernel rows), then adds the remaining kernel
 * columns for the pixels that have them (only edge tiles). Kernel rows whose
 * input row is outside the image are skipped. No padded copies are made.
 *
 * Determinism: every output value is computed by one thread in an order fixed
 * by the shape alone, so results do not depend on the thread count. */
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "cpu/cpu_conv.h"

static inline int imax(int a, int b) { return a > b ? a : b; }
static inline int imin(int a, int b) { return a < b ? a : b; }
static inline long imin_l(long a, long b) { return a < b ? a : b; }
/* Cache lines holding `pixels` pixels of `channels` floats each. */
static inline int cache_lines(int pixels, int channels) { return (int)((sizeof(float) * (size_t)pixels * channels + 63) / 64); }

typedef struct {
    const wcm_simd_ops *ops;
    int H, W, CI, CO, K, R;
    const float *w; /* tile path: [K][K][CI][CO]; dot path: [K][CO][K*CI] */
    int dot;
} row_ctx;

/* A pass accumulates kernel rows [ky0, ky1) and input channels [c0, c1). */
typedef struct {
    int ky0, ky1, c0, c1;
    int first, last; /* first pass stores, later ones add; ReLU after the last */
} conv_pass;

/* Segments for kernel columns [kx0, kx1) and the pixels starting at column p0
 * of output row i: one per kernel row when the pass has every input channel
 * (A and B are then contiguous across kx), else one per (ky, kx). */
static int fill_segments(const row_ctx *c, const float *ximg, int i, const conv_pass *ps, int p0, int kx0, int kx1,
                         int co0, const float **a, const float **b, int *k) {
    const int whole = ps->c0 == 0 && ps->c1 == c->CI;
    int n = 0;
    for (int ky = ps->ky0; ky < ps->ky1; ky++) {
        const float *xrow = ximg + (size_t)(i + ky - c->R) * c->W * c->CI;
        if (c->dot) {
            a[n] = xrow + (size_t)(p0 + kx0 - c->R) * c->CI;
            b[n] = c->w + ((size_t)ky * c->CO + co0) * c->K * c->CI + (size_t)kx0 * c->CI;
            k[n++] = (kx1 - kx0) * c->CI;
        } else if (whole) {
            a[n] = xrow + (size_t)(p0 + kx0 - c->R) * c->CI;
            b[n] = c->w + ((size_t)(ky * c->K + kx0) * c->CI) * c->CO + co0;
            k[n++] = (kx1 - kx0) * c->CI;
        } else {
            for (int kx = kx0; kx < kx1; kx++) {
                a[n] = xrow + (size_t)(p0 + kx - c->R) * c->CI + ps->c0;
                b[n] = c->w + ((size_t)(ky * c->K + kx) * c->CI + ps->c0) * c->CO + co0;
                k[n++] = ps->c1 - ps->c0;
            }
        }
    }
    return n;
}

static void run_job(const row_ctx *c, const float *ximg, int i, const conv_pass *ps, int p0, int np, int kx0, int kx1,
                    int co0, int ncols, float *yrow, int mode, wcm_prefetch pf) {
    if (c->dot) {
        wcm_dot_job j;
        j.rows = np;
        j.ncols = ncols;
        j.mode = mode;
        j.nseg = fill_segments(c, ximg, i, ps, p0, kx0, kx1, co0, j.a, j.b, j.k);
        j.a_row = c->CI;
        j.b_row = (ptrdiff_t)c->K * c->CI;
        j.c = yrow + (size_t)p0 * c->CO + co0;
        j.ldc = c->CO;
        c->ops->dot(&j);
    } else {
        wcm_tile_job j;
        j.rows = np;
        j.ncols = ncols;
        j.mode = mode;
        j.nseg = fill_segments(c, ximg, i, ps, p0, kx0, kx1, co0, j.a, j.b, j.k);
        j.a_row = c->CI;
        j.a_col = 1;
        j.ldb = c->CO;
        j.c = yrow + (size_t)p0 * c->CO + co0;
        j.ldc = c->CO;
        j.pf = pf;
        c->ops->tile(&j);
    }
}

/* One pass over output pixels [j0, j0+np) x channels [co0, co0+ncols) of row i. */
static void forward_tile(const row_ctx *c, const float *ximg, int i, const conv_pass *ps, int j0, int np, int co0,
                         int ncols, float *yrow, int relu, wcm_prefetch pf) {
    const int K = c->K, R = c->R, W = c->W;
    /* Kernel columns valid for every pixel of the tile; always contains R. */
    const int kx_lo = imax(0, R - j0), kx_hi = imin(K, W + R - (j0 + np - 1));
    const int edge = kx_lo > 0 || kx_hi < K;
    int mode = ps->first ? WCM_TILE_STORE : WCM_TILE_ADD;
    if (relu && ps->last && !edge) mode |= WCM_TILE_RELU;
    run_job(c, ximg, i, ps, j0, np, kx_lo, kx_hi, co0, ncols, yrow, mode, pf);
    if (!edge) return;
    for (int kx = 0; kx < K; kx++) {
        if (kx >= kx_lo && kx < kx_hi) continue;
        const int p_lo = imax(j0, R - kx), p_hi = imin(j0 + np, W + R - kx);
        if (p_lo < p_hi) run_job(c, ximg, i, ps, p_lo, p_hi - p_lo, kx, kx + 1, co0, ncols, yrow, WCM_TILE_ADD, WCM_NO_PREFETCH);
    }
    if (relu && ps->last)
        for (int p = j0; p < j0 + np; p++) {
            float *yp = yrow + (size_t)p * c->CO + co0;
            for (int q = 0; q < ncols; q++) yp[q] = yp[q] > 0.0f ? yp[q] : 0.0f; /* vectorises; NaN -> 0 like max */
        }
}

/* Weights one pass may stream: they stay in L2 while the pass sweeps a row
 * (measured: streaming all of a 64->64 3x3 layer's 147 KB per tile from L2
 * beats splitting it into L1-sized passes, whose partial sums cost more). */
#define PASS_WEIGHT_BYTES ((size_t)192 * 1024)

typedef struct {
    int whole, cblock, nblocks, step, relu;
    int prefetch; /* 1x1 with all input channels in one pass */
} pass_split;

static void forward_row(const row_ctx *c, const pass_split *pp, long r, const float *x, float *y) {
    const int H = c->H, W = c->W, K = c->K, R = c->R;
    const int n = (int)(r / H), i = (int)(r % H);
    const float *ximg = x + (size_t)n * H * W * c->CI;
    float *yrow = y + (size_t)r * W * c->CO;
    const int ky_lo = imax(0, R - i), ky_hi = imin(K, H + R - i);
    const int npasses = pp->whole ? 1 : (ky_hi - ky_lo) * pp->nblocks;
    for (int co0 = 0; co0 < c->CO; co0 += pp->step) {
        const int ncols = imin(pp->step, c->CO - co0);
        for (int q = 0; q < npasses; q++) {
            conv_pass ps = {ky_lo, ky_hi, 0, c->CI, q == 0, q == npasses - 1};
            if (!pp->whole) {
                ps.ky0 = ky_lo + q / pp->nblocks;
                ps.ky1 = ps.ky0 + 1;
                ps.c0 = q % pp->nblocks * pp->cblock;
                ps.c1 = imin(c->CI, ps.c0 + pp->cblock);
            }
            for (int j0 = 0; j0 < W;) {
                const int np = wcm_tile_step(W - j0);
                /* 1x1, whole rows: the next tile's input pixels are contiguous. */
                wcm_prefetch pf = WCM_NO_PREFETCH;
                if (pp->prefetch && j0 + np < W) {
                    const int next = wcm_tile_step(W - j0 - np);
                    pf.read = (const char *)(ximg + ((size_t)i * W + j0 + np) * c->CI);
                    pf.read_lines = cache_lines(next, c->CI);
                    if (ncols == c->CO) {
                        pf.write = (const char *)(yrow + (size_t)(j0 + np) * c->CO);
                        pf.write_lines = cache_lines(next, c->CO);
                    }
                }
                forward_tile(c, ximg, i, &ps, j0, np, co0, ncols, yrow, pp->relu, pf);
                j0 += np;
            }
        }
    }
}

static void forward_rows(const row_ctx *c, int n_img, const float *x, float *y, int flags) {
    pass_split pp = {1, c->CI, 1, c->dot ? WCM_DOT_MAX_COLS : c->ops->max_cols, (flags & WCM_CONV_RELU) != 0, 0};
    /* All taps in one pass when their weights fit, else one pass per kernel
     * row and block of input channels. */
    const size_t col_bytes = sizeof(float) * (size_t)imin(pp.step, c->CO);
    pp.whole = c->dot || (size_t)c->K * c->K * c->CI * col_bytes <= PASS_WEIGHT_BYTES;
    if (!pp.whole) {
        const int fit = imax(1, (int)(PASS_WEIGHT_BYTES / ((size_t)c->K * col_bytes)));
        pp.nblocks = (c->CI + fit - 1) / fit;
        pp.cblock = (c->CI + pp.nblocks - 1) / pp.nblocks;
        pp.nblocks = (c->CI + pp.cblock - 1) / pp.cblock;
    }
    pp.prefetch = c->K == 1 && pp.whole && !c->dot;
    const long rows = (long)n_img * c->H;
    if (flags & WCM_CPU_SERIAL) {
        for (long r = 0; r < rows; r++) forward_row(c, &pp, r, x, y);
        return;
    }
#pragma omp parallel for schedule(static)
    for (long r = 0; r < rows; r++) forward_row(c, &pp, r, x, y);
}

void wcm_direct_forward(const wcm_simd_ops *ops, const wcm_conv_shape *s, const float *x, const float *w, float *y,
                        int flags) {
    row_ctx c = {ops, s->h, s->w, s->cin, s->cout, s->k, s->k / 2, w, 0};
    forward_rows(&c, s->n, x, y, flags);
}

void wcm_dot_forward(const wcm_simd_ops *ops, const wcm_conv_shape *s, const float *x, const float *wt, float *y,
                     int flags) {
    row_ctx c = {ops, s->h, s->w, s->cin, s->cout, s->k, s->k / 2, wt, 1};
    forward_rows(&c, s->n, x, y, flags);
}

void wcm_dot_weights(const wcm_conv_shape *s, const float *w, float *wt) {
    const int K = s->k, CI = s->cin, CO = s->cout;
    for (int ky = 0; ky < K; ky++)
        for (int co = 0; co < CO; co++)
            for (int m = 0; m < K * CI; m++)
                wt[((size_t)ky * CO + co) * K * CI + m] = w[((size_t)ky * K * CI + m) * CO + co];
}

/* ---- backward weights ----
 * dw[ky][kx][ci][co] = sum over (n, i, j) of x[n][i+ky-R][j+kx-R][ci] * dy[n][i][j][co].
 * The rows (ky, kx, ci) x columns co of dw are cut into register-tile units.
 * The pixels of each image row (for 1x1: of the whole tensor) are cut into
 * segments whose length depends only on the width; a unit's sum over one
 * segment is formed in registers, then added to memory. Two schedules, both
 * with an order of summation fixed by the shape alone:
 *  - heavy layers (3x3 64->64): each thread owns whole units and sweeps every
 *    pixel for them, so there is no reduction across threads at all;
 *  - light layers (1x1, few channels): fixed chunks of segments, any thread,
 *    private partial sums, added in chunk order at the end. */
typedef struct {
    int ky, kx, ci0, nci, co0, nco;
} dw_unit;

/* Fills u (when non-NULL) and returns the number of units. */
static int dw_units(const wcm_conv_shape *s, int transposed, int max_cols, dw_unit *u) {
    int n = 0;
    const int ci_step_fixed = transposed ? max_cols : 0;
    for (int ky = 0; ky < s->k; ky++)
        for (int kx = 0; kx < s->k; kx++)
            for (int ci0 = 0; ci0 < s->cin;) {
                const int nci = transposed ? imin(ci_step_fixed, s->cin - ci0) : wcm_tile_step(s->cin - ci0);
                if (transposed) {
                    if (u) u[n] = (dw_unit){ky, kx, ci0, nci, 0, s->cout};
                    n++;
                } else {
                    for (int co0 = 0; co0 < s->cout; co0 += max_cols, n++)
                        if (u) u[n] = (dw_unit){ky, kx, ci0, nci, co0, imin(max_cols, s->cout - co0)};
                }
                ci0 += nci;
            }
    return n;
}

/* Pixel segment length for rows of width W (a function of W only). */
static int dw_segment(int W, int target) {
    const int nseg = (W + target - 1) / target;
    return (W + nseg - 1) / nseg;
}

/* Consecutive pixel segments of the fixed segment sequence that one job
 * sums in registers before adding to dw (fewer, longer jobs). */
typedef struct {
    int count;
    int n[WCM_CPU_MAX_K], i[WCM_CPU_MAX_K], js[WCM_CPU_MAX_K], je[WCM_CPU_MAX_K];
} dw_span;

static void dw_unit_span(const wcm_simd_ops *ops, const wcm_conv_shape *s, const dw_unit *u, int transposed,
                         const float *x, const float *dy, float *dw, const dw_span *sp, wcm_prefetch pf) {
    const int H = s->h, W = s->w, CI = s->cin, CO = s->cout, K = s->k, R = K / 2;
    wcm_tile_job j;
    j.nseg = 0;
    for (int g = 0; g < sp->count; g++) {
        const int yy = sp->i[g] + u->ky - R;
        if (yy < 0 || yy >= H) continue;
        const int p_lo = imax(sp->js[g], R - u->kx), p_hi = imin(sp->je[g], W + R - u->kx);
        if (p_lo >= p_hi) continue;
        const float *xp = x + (((size_t)sp->n[g] * H + yy) * W + (size_t)(p_lo + u->kx - R)) * CI + u->ci0;
        const float *gp = dy + (((size_t)sp->n[g] * H + sp->i[g]) * W + (size_t)p_lo) * CO + u->co0;
        j.a[j.nseg] = transposed ? gp : xp;
        j.b[j.nseg] = transposed ? xp : gp;
        j.k[j.nseg++] = p_hi - p_lo;
    }
    if (j.nseg == 0) return;
    float *dwp = dw + ((size_t)(u->ky * K + u->kx) * CI + u->ci0) * CO + u->co0;
    j.pf = pf;
    j.a_row = 1;
    if (!transposed) {
        j.rows = u->nci;
        j.ncols = u->nco;
        j.mode = WCM_TILE_ADD;
        j.a_col = CI;
        j.ldb = CO;
        j.c = dwp;
        j.ldc = CO;
        ops->tile(&j);
    } else {
        /* dw^T for few output channels: rows = co, vectors along ci. */
        float tmp[WCM_TILE_MAX_ROWS * 64];
        j.rows = CO;
        j.ncols = u->nci;
        j.mode = WCM_TILE_STORE;
        j.a_col = CO;
        j.ldb = CI;
        j.c = tmp;
        j.ldc = 64;
        ops->tile(&j);
        for (int c = 0; c < u->nci; c++)
            for (int q = 0; q < CO; q++) dwp[(size_t)c * CO + q] += tmp[q * 64 + c];
    }
}

/* Pixels per job in the heavy scheme. */
#define DW_SPAN_PIXELS 160
/* Chunks of the chunked scheme: at least DW_CHUNK_PIXELS pixels each, at
 * most DW_MAX_CHUNKS, and an even number when more than one: the threads
 * take chunks as they finish, and chunks of equal length on 2 threads
 * should come out even (25 chunks cost 4% on a 2-core machine). */
#define DW_CHUNK_PIXELS 512
#define DW_MAX_CHUNKS 24

/* Segment g of the fixed segment sequence: image n, row i, pixels [js, je). */
static void dw_segment_at(const wcm_conv_shape *s, int seg, long g, int *n, int *i, int *js, int *je) {
    const int per_row = (s->w + seg - 1) / seg;
    *n = (int)(g / ((long)s->h * per_row));
    *i = (int)(g / per_row % s->h);
    *js = (int)(g % per_row) * seg;
    *je = imin(*js + seg, s->w);
}

/* Segments [g0, g1) as one span (g1 - g0 <= WCM_CPU_MAX_K). */
static void dw_span_at(const wcm_conv_shape *s, int seg, long g0, long g1, dw_span *sp) {
    sp->count = (int)(g1 - g0);
    for (int q = 0; q < sp->count; q++) dw_segment_at(s, seg, g0 + q, &sp->n[q], &sp->i[q], &sp->js[q], &sp->je[q]);
}

/* The data one thread's units read for one segment: the dy pixels and the
 * rows of x their kernel rows touch, as contiguous blocks of cache lines. */
#define DW_MAX_BLOCKS ((WCM_CPU_MAX_K + 1) * WCM_CPU_MAX_K)
typedef struct {
    const char *start[DW_MAX_BLOCKS];
    int lines[DW_MAX_BLOCKS];
    int count;
} dw_blocks;

/* Appends the blocks of one segment to b. */
static void dw_segment_blocks(const wcm_conv_shape *s, const float *x, const float *dy, const dw_unit *units, int nu,
                              int n, int i, int js, int je, dw_blocks *b) {
    const int H = s->h, W = s->w, R = s->k / 2;
    if (js >= je || b->count + 1 + s->k > DW_MAX_BLOCKS) return;
    int ky_used[WCM_CPU_MAX_K] = {0};
    for (int q = 0; q < nu; q++) ky_used[units[q].ky] = 1;
    b->start[b->count] = (const char *)(dy + (((size_t)n * H + i) * W + js) * s->cout);
    b->lines[b->count++] = cache_lines(je - js, s->cout);
    const int p0 = imax(0, js - R), p1 = imin(W, je + R);
    for (int ky = 0; ky < s->k; ky++) {
        const int yy = i + ky - R;
        if (!ky_used[ky] || yy < 0 || yy >= H) continue;
        b->start[b->count] = (const char *)(x + (((size_t)n * H + yy) * W + p0) * s->cin);
        b->lines[b->count++] = cache_lines(p1 - p0, s->cin);
    }
}

/* The blocks of segments [g0, g1) (none when empty). */
static void dw_span_blocks(const wcm_conv_shape *s, int seg, long g0, long g1, const float *x, const float *dy,
                           const dw_unit *units, int nu, dw_blocks *b) {
    b->count = 0;
    for (long g = g0; g < g1; g++) {
        int n, i, js, je;
        dw_segment_at(s, seg, g, &n, &i, &js, &je);
        dw_segment_blocks(s, x, dy, units, nu, n, i, js, je, b);
    }
}

/* Unit q of nu loads an even share of one block (the blocks are dealt to
 * groups of consecutive units). */
static wcm_prefetch dw_blocks_share(const dw_blocks *b, int q, int nu) {
    wcm_prefetch pf = WCM_NO_PREFETCH;
    if (b->count == 0 || nu < b->count) return pf;
    const int blk = (int)((long)q * b->count / nu);
    const int g0 = (int)(((long)blk * nu + b->count - 1) / b->count), g1 = (int)(((long)(blk + 1) * nu + b->count - 1) / b->count);
    const int parts = g1 - g0, part = q - g0;
    const int l0 = b->lines[blk] * part / parts, l1 = b->lines[blk] * (part + 1) / parts;
    pf.read = b->start[blk] + 64 * (size_t)l0;
    pf.read_lines = l1 - l0;
    return pf;
}

/* Chunks for a sum over `pixels` pixels (see DW_CHUNK_PIXELS). */
static long dw_chunk_count(long pixels) {
    long nchunks = imin_l(DW_MAX_CHUNKS, pixels / DW_CHUNK_PIXELS);
    if (nchunks > 1) nchunks &= ~1L;
    return nchunks < 1 ? 1 : nchunks;
}

/* dw (=, +=) the sum of nchunks partial sums of wsize values, added in
 * chunk order. */
static void sum_chunks(const float *partial, long nchunks, size_t wsize, float *dw, int flags) {
#pragma omp parallel for schedule(static)
    for (long e0 = 0; e0 < (long)wsize; e0 += 256) {
        const int len = (int)((long)wsize - e0 < 256 ? (long)wsize - e0 : 256);
        float acc[256];
        for (int e = 0; e < len; e++) acc[e] = 0.0f;
        for (long c = 0; c < nchunks; c++) {
            const float *pc = partial + wsize * (size_t)c + e0;
            for (int e = 0; e < len; e++) acc[e] += pc[e];
        }
        float *d = dw + e0;
        if (flags & WCM_CONV_ACCUMULATE)
            for (int e = 0; e < len; e++) d[e] += acc[e];
        else
            for (int e = 0; e < len; e++) d[e] = acc[e];
    }
}

/* Layers with little work per pixel (1x1, few channels): each thread would
 * re-read every pixel for a small share of the work, so instead fixed chunks
 * of segments (independent of the thread count) get private partial sums,
 * which are then added in chunk order. Returns -1 without scratch memory. */
static int backward_weights_chunked(const wcm_simd_ops *ops, const wcm_conv_shape *s, const dw_unit *units, int nu,
                                    int transposed, int seg, const float *x, const float *dy, float *dw, int flags,
                                    wcm_arena *arena) {
    const size_t wsize = (size_t)s->k * s->k * s->cin * s->cout;
    const long nsegs = (long)s->n * s->h * ((s->w + seg - 1) / seg);
    const long nchunks = dw_chunk_count(nsegs * seg);
    float *partial = wcm_arena_push(arena, sizeof(float) * wsize * (size_t)nchunks);
    if (!partial) return -1;
#pragma omp parallel for schedule(dynamic)
    for (long c = 0; c < nchunks; c++) {
        float *pc = partial + wsize * (size_t)c;
        memset(pc, 0, sizeof(float) * wsize);
        /* Chunk c: segments [c * nsegs / nchunks, (c + 1) * nsegs / nchunks). */
        const long g1 = (c + 1) * nsegs / nchunks;
        for (long g = c * nsegs / nchunks; g < g1; g++) {
            dw_span sp;
            dw_blocks next; /* loaded while this segment computes */
            dw_span_at(s, seg, g, g + 1, &sp);
            dw_span_blocks(s, seg, g + 1, imin_l(g + 2, g1), x, dy, units, nu, &next);
            for (int q = 0; q < nu; q++)
                dw_unit_span(ops, s, &units[q], transposed, x, dy, pc, &sp, dw_blocks_share(&next, q, nu));
        }
    }
    sum_chunks(partial, nchunks, wsize, dw, flags);
    return 0;
}

/* Pixels per segment of the outer-product scheme: x and dy of one segment
 * (32 KB for 64->64) stay in L1 while every register tile sweeps them
 * (measured on 1x1 64->64, 2 threads: 64 pixels 87-88% of the peak, 96 and
 * 128 85%). */
#define DW_OUTER_SEGMENT 64

/* The cache lines holding `count` floats at stride `ld` for `pixels` pixels. */
static void line_span(const float *p, long pixels, ptrdiff_t ld, int count, const char **start, int *lines) {
    const uintptr_t a = (uintptr_t)p & ~(uintptr_t)63, e = (uintptr_t)(p + (pixels - 1) * ld + count);
    *start = (const char *)a;
    *lines = (int)((e - a + 63) / 64);
}

/* dwc = sum over pixels [0, np) of x (x) dy, for 1x1 layers (rows ci, columns
 * co): ceil(np / DW_OUTER_SEGMENT) segments of even length, each swept by
 * every register tile in turn. While one segment computes, its tiles load
 * the next one (for the last: the first `ahead` pixels after np) into L1,
 * one line per step, so the stream from L3 is steady instead of arriving in
 * bursts when the first tile of a segment starts. */
static void outer_chunk(const wcm_simd_ops *ops, const wcm_conv_shape *s, long np, long ahead, const float *x,
                        const float *dy, float *dwc) {
    const int CI = s->cin, CO = s->cout, block = ops->max_cols;
    const int nu = dw_units(s, 0, block, NULL); /* as many as the register tiles below */
    const long nseg = (np + DW_OUTER_SEGMENT - 1) / DW_OUTER_SEGMENT;
    for (long g = 0; g < nseg; g++) {
        const long p0 = np * g / nseg, p1 = np * (g + 1) / nseg;
        const long kn = g + 1 < nseg ? np * (g + 2) / nseg - p1 : imin_l(ahead, DW_OUTER_SEGMENT);
        const char *start[2] = {NULL, NULL};
        int lines[2] = {0, 0};
        if (kn > 0) {
            line_span(x + p1 * CI, kn, CI, CI, &start[0], &lines[0]);
            line_span(dy + p1 * CO, kn, CO, CO, &start[1], &lines[1]);
        }
        /* The tiles take equal shares of the next segment's x lines, then of its dy lines. */
        const int total = lines[0] + lines[1], share = (total + nu - 1) / nu;
        wcm_outer_job j = {0};
        j.ldx = CI;
        j.ldy = CO;
        j.ldw = CO;
        j.k = (int)(p1 - p0);
        j.fresh = g == 0;
        int u = 0;
        for (int co0 = 0; co0 < CO; co0 += block)
            for (int ci0 = 0; ci0 < CI; ci0 += j.rows, u++) {
                j.rows = wcm_tile_step(CI - ci0);
                j.cols = imin(block, CO - co0);
                j.x = x + p0 * CI + ci0;
                j.dy = dy + p0 * CO + co0;
                j.dw = dwc + (size_t)ci0 * CO + co0;
                const int l0 = imin(total, u * share), l1 = imin(total, l0 + share);
                const int y0 = imax(0, l0 - lines[0]);
                j.hint_lines[0] = imax(0, imin(l1, lines[0]) - l0);
                j.hint_lines[1] = imax(0, l1 - lines[0] - y0);
                j.hint[0] = j.hint_lines[0] > 0 ? start[0] + 64 * (ptrdiff_t)l0 : NULL;
                j.hint[1] = j.hint_lines[1] > 0 ? start[1] + 64 * (ptrdiff_t)y0 : NULL;
                ops->outer(&j);
            }
    }
}

/* Whether 1x1 backward weights go through the outer-product kernel. */
static int outer_applies(const wcm_simd_ops *ops, const wcm_conv_shape *s) {
    return ops->outer && s->k == 1 && s->cout % 16 == 0 && (long)s->n * s->h * s->w >= 1;
}

/* 1x1 layers through the outer-product kernel: the pixels of the whole
 * tensor in the fixed chunks of the chunked scheme, each chunk's sum
 * private, the chunks added in order. Returns -1 without scratch memory. */
static int backward_weights_outer(const wcm_simd_ops *ops, const wcm_conv_shape *s, const float *x, const float *dy,
                                  float *dw, int flags, wcm_arena *arena) {
    const long pixels = (long)s->n * s->h * s->w;
    const int CI = s->cin, CO = s->cout;
    const size_t wsize = (size_t)CI * CO;
    const long nchunks = dw_chunk_count(pixels);
    float *partial = wcm_arena_push(arena, sizeof(float) * wsize * (size_t)nchunks);
    if (!partial) return -1;
    /* Contiguous runs of chunks per thread: a chunk's last segment loads the
     * thread's next chunk. */
#pragma omp parallel for schedule(static)
    for (long c = 0; c < nchunks; c++) {
        const long p0 = c * pixels / nchunks, p1 = (c + 1) * pixels / nchunks;
        outer_chunk(ops, s, p1 - p0, pixels - p1, x + (size_t)p0 * CI, dy + (size_t)p0 * CO, partial + wsize * (size_t)c);
    }
    sum_chunks(partial, nchunks, wsize, dw, flags);
    return 0;
}

/* Returns 0, or -1 when the unit list or the partial sums cannot be allocated. */
static int backward_weights_units(const wcm_simd_ops *ops, const wcm_conv_shape *s, const float *x, const float *dy,
                                  float *dw, int flags, wcm_arena *arena) {
    const int CO = s->cout;
    const int transposed = CO <= WCM_TILE_MAX_ROWS && s->cin >= 16 && ops->max_cols <= 64;
    const int nu = dw_units(s, transposed, ops->max_cols, NULL);
    dw_unit *units = wcm_arena_push(arena, sizeof(dw_unit) * (size_t)nu);
    if (!units) return -1;
    dw_units(s, transposed, ops->max_cols, units);
    /* 1x1: no borders, so the whole tensor is one long row of pixels. */
    wcm_conv_shape flat = *s;
    const long pixels = (long)s->n * s->h * s->w;
    if (s->k == 1 && pixels <= 0x7fffffffL) {
        flat.n = 1;
        flat.h = 1;
        flat.w = (int)pixels;
        s = &flat;
    }
    const int seg = dw_segment(s->w, transposed ? 256 : 80);
    const long macs_per_pixel = (long)s->k * s->k * s->cin * s->cout;
    if (macs_per_pixel < 16384 && nu > 1)
        return backward_weights_chunked(ops, s, units, nu, transposed, seg, x, dy, dw, flags, arena);
    const dw_unit *uu = units;
    /* Heavy layers: each job sums a span of consecutive segments in
     * registers (measured on 3x3 64->64: spans of 160 pixels beat 80, whose
     * jobs spend more on adding to dw, and 240, whose data leaves L1). */
    const long nsegs = (long)s->n * s->h * ((s->w + seg - 1) / seg);
    const int span_len = imax(1, imin(WCM_CPU_MAX_K, DW_SPAN_PIXELS / seg));
#pragma omp parallel
    {
        const int nt = omp_get_num_threads(), t = omp_get_thread_num();
        const int u0 = (int)((long)nu * t / nt), u1 = (int)((long)nu * (t + 1) / nt);
        if (!(flags & WCM_CONV_ACCUMULATE))
            for (int q = u0; q < u1; q++) {
                const dw_unit *u = &uu[q];
                float *dwp = dw + ((size_t)(u->ky * s->k + u->kx) * s->cin + u->ci0) * CO + u->co0;
                for (int c = 0; c < u->nci; c++) memset(dwp + (size_t)c * CO, 0, sizeof(float) * (size_t)u->nco);
            }
        for (long g0 = 0; g0 < nsegs; g0 += span_len) {
            dw_span sp;
            dw_blocks next; /* the next span's data, loaded while this one computes */
            dw_span_at(s, seg, g0, imin_l(g0 + span_len, nsegs), &sp);
            dw_span_blocks(s, seg, g0 + span_len, imin_l(g0 + 2 * span_len, nsegs), x, dy, &uu[u0], u1 - u0, &next);
            for (int q = u0; q < u1; q++)
                dw_unit_span(ops, s, &uu[q], transposed, x, dy, dw, &sp, dw_blocks_share(&next, q - u0, u1 - u0));
        }
    }
    return 0;
}

int wcm_direct_backward_weights(const wcm_simd_ops *ops, const wcm_conv_shape *s, const float *x, const float *dy,
                                float *dw, int flags, wcm_arena *arena) {
    if (outer_applies(ops, s)) return backward_weights_outer(ops, s, x, dy, dw, flags, arena);
    return backward_weights_units(ops, s, x, dy, dw, flags, arena);
}

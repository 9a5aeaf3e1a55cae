/* Winograd F(4x4,3x3) convolution driver, and the F(6x6,3x3) forward.
 *
 * Each work item is a run of up to WG_TILES 4x4 output tiles along one tile
 * row of one image: the input patches are transformed into V[tiles][36][cin],
 * multiplied per transform point by U[36][cin][cout] with the level's tile
 * kernel (36 small GEMMs whose B matrix stays in L1), and the results
 * M[tiles][36][cout] are transformed back into the output. 36 multiplies per
 * 16 outputs instead of 144. The F(6x6) forward is the same pipeline with
 * 6x6 tiles and 64 transform points (64 multiplies per 36 outputs; U6 is
 * 1 MB for 64->64, V 16 KB per tile). Every output is computed by one thread
 * in a fixed order, so results do not depend on the thread count. */
#include <omp.h>
#include <sched.h>
#include <string.h>

#include "cpu/cpu_conv.h"

/* Tiles per item: a whole 160-wide tile row, so that each item re-reads U
 * from L2 once for many tiles (fewer tiles per item cost a few percent at
 * 160x160 and 320x320; more do not gain). */
#define WG_TILES 40
/* Floats between consecutive tiles of V (and M) beyond their own: an F(6x6)
 * tile is 16 KB for 64 channels, a multiple of 4 KB, so without a gap the
 * loads of tile t + 1 alias (by address bits 0-11) the stores to tile t just
 * before them, which stalls the loads. Two cache lines break the aliasing
 * (worth 1-2% per 160x160 layer). F(4x4) tiles (9 KB) need none. */
#define WG6_TILE_PAD 32

int wcm_winograd_qualifies(const wcm_simd_ops *ops, const wcm_conv_shape *s) {
    return ops->winograd && s->k == 3 && s->cin >= 16 && s->cout >= 16 && s->cin % 16 == 0 && s->cout % 16 == 0 &&
           s->h >= 4 && s->w >= 4;
}

/* A weight transform (F(4x4) or F(6x6)), the input channels shared among the threads. */
static void transform_weights(void (*weights)(const float *, int, int, int, int, float *), const wcm_conv_shape *s,
                              const float *w, float *u) {
    const int cin = s->cin;
#pragma omp parallel
    {
        const int nt = omp_get_num_threads(), t = omp_get_thread_num();
        weights(w, cin, s->cout, (int)((long)cin * t / nt), (int)((long)cin * (t + 1) / nt), u);
    }
}

void wcm_winograd_weights(const wcm_simd_ops *ops, const wcm_conv_shape *s, const float *w, float *u) {
    transform_weights(ops->winograd->weights, s, w, u);
}

void wcm_winograd6_weights(const wcm_simd_ops *ops, const wcm_conv_shape *s, const float *w, float *u6) {
    transform_weights(ops->winograd6->weights, s, w, u6);
}

/* Output tiles per work item (tile side m): runs of equal length along a tile row. */
static int tiles_per_block(int w, int m) {
    const int tiles_w = (w + m - 1) / m;
    const int blocks = (tiles_w + WG_TILES - 1) / WG_TILES;
    return (tiles_w + blocks - 1) / blocks;
}

/* Work items per tile row, and in all (n images). */
static int blocks_per_row(int w, int m) {
    const int tiles_w = (w + m - 1) / m, per_block = tiles_per_block(w, m);
    return (tiles_w + per_block - 1) / per_block;
}

static long item_count(const wcm_conv_shape *s, int m) {
    return (long)s->n * ((s->h + m - 1) / m) * blocks_per_row(s->w, m);
}

/* M overwrites V in place when the tile kernel covers all output channels in
 * one column block and cin == cout: the kernel reads its whole A block (V
 * rows) before it stores C (the same rows of M). */
static int forward_in_place(const wcm_simd_ops *ops, const wcm_conv_shape *s) {
    return s->cin == s->cout && s->cout <= ops->max_cols;
}

/* Floats of one tile's transform points for c channels, with the gap to the next tile. */
static size_t tile_floats(int m, int c) { return (size_t)(m + 2) * (m + 2) * c + (m == 6 ? WG6_TILE_PAD : 0); }

/* One thread's V (and M, unless in place) for a work item of tile side m. */
static size_t thread_floats(const wcm_conv_shape *s, int m, int in_place) {
    return tiles_per_block(s->w, m) * (tile_floats(m, s->cin) + (in_place ? 0 : tile_floats(m, s->cout)));
}

/* Thread th's V in `areas` (its M: *M, which may be V). */
static float *thread_area(const wcm_simd_ops *ops, const wcm_conv_shape *s, int m, float *areas, int th, float **M) {
    const int in_place = forward_in_place(ops, s);
    float *V = areas + thread_floats(s, m, in_place) * (size_t)th;
    *M = in_place ? V : V + (size_t)tiles_per_block(s->w, m) * tile_floats(m, s->cin);
    return V;
}

/* The shifted forward's shared state: a claim counter and one flag per item. */
static size_t shifted_shared_floats(const wcm_conv_shape *s) {
    return (16 + (size_t)item_count(s, 4) + 15) / 16 * 16; /* keeps the thread areas 64-byte aligned */
}

size_t wcm_winograd_scratch_floats(const wcm_conv_shape *s, int threads) {
    /* Sized for either layout and for the shifted forward, so that callers
     * need not know which. */
    const size_t f4 = thread_floats(s, 4, 0), f6 = thread_floats(s, 6, 0);
    return (f4 > f6 ? f4 : f6) * (size_t)(threads > 0 ? threads : 1) + shifted_shared_floats(s);
}

/* F(6x6) where it is faster than F(4x4): it needs fewer multiplies per
 * output but wastes area where 6x6 tiles overhang the image, and has fewer
 * tiles to share among threads (64->64 layers, 2 threads: 160x160 4-6%
 * faster, 96x96 9%, but 80x80, whose 6x6 tiles cover 84x84, 4% slower, and a
 * batch of 16 40x40 images 11% slower). So: images
 * of at least 96x96 whose 6x6 tiles waste at most 3% more area than 4x4 ones,
 * and no wider than one work item of 4x4 tiles (wider layers shift instead,
 * see forward_shifted). A function of the shape alone, so that planned and
 * unplanned passes and any thread count compute the same. */
int wcm_winograd6_pays(const wcm_simd_ops *ops, const wcm_conv_shape *s) { return wcm_winograd6_pays_as(ops, s, 0, 0); }

int wcm_winograd6_pays_as(const wcm_simd_ops *ops, const wcm_conv_shape *s, int route_h, int route_w) {
    const int h = route_h > 0 ? route_h : s->h, w = route_w > 0 ? route_w : s->w;
    if (!ops->winograd6 || !wcm_winograd_qualifies(ops, s) || h < 96 || w < 96 || blocks_per_row(w, 4) > 1)
        return 0;
    const double area6 = (double)((h + 5) / 6 * 6) * ((w + 5) / 6 * 6);
    const double area4 = (double)((h + 3) / 4 * 4) * ((w + 3) / 4 * 4);
    return area6 <= 1.03 * area4;
}

int wcm_winograd_forward(const wcm_simd_ops *ops, const wcm_conv_shape *s, const float *x, const float *w, float *y,
                         int flags, wcm_arena *arena) {
    const int f6 = wcm_winograd6_pays(ops, s);
    const size_t u_floats = (size_t)(f6 ? 64 : 36) * s->cin * s->cout;
    float *u = wcm_arena_push(arena, sizeof(float) * (u_floats + wcm_winograd_scratch_floats(s, omp_get_max_threads())));
    if (!u) return -1;
    if (f6) {
        wcm_winograd6_weights(ops, s, w, u);
        wcm_winograd6_forward_scratch(ops, s, x, u, y, flags, u + u_floats);
    } else {
        wcm_winograd_weights(ops, s, w, u);
        wcm_winograd_forward_scratch(ops, s, x, u, y, flags, u + u_floats);
    }
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
    int m, points; /* tile side (4 or 6) and transform points ((m + 2)^2) */
    void (*input)(const float *x, int h, int w, int c, int row, int col, float *v, ptrdiff_t v_stride);
    void (*output)(const float *m, ptrdiff_t m_stride, int c, float *y, int h, int w, int row, int col, int relu);
} wg_forward_job;

/* The items one pipeline computes, in one of two orders:
 * - guided claims (`units` > 0): the items cut into `units_per_item` equal
 *   parts (units) and taken from the shared counter `claims` in runs of
 *   contiguous units, each run a share of what is left (at most
 *   WG_RUN_ITEMS items), so that the last runs are single units and the threads
 *   finish together; each piece of a run within one item is one step of the
 *   pipeline;
 * - shifted claims (`input_read` set, see forward_shifted): positions taken
 *   one at a time from `claims`, tile rows in processing order (downwards
 *   with `down`), each row's items left to right. The pipeline then marks
 *   each position's input as read in `input_read` and, before it writes an
 *   item's output, waits for the inputs that output overwrites. */
typedef struct {
    long *claims;
    long count; /* shifted claims: positions */
    int *input_read;
    int down, blocks, rows; /* rows: tile rows of all images */
    long units, unit_next, unit_end; /* unit_next, unit_end: this pipeline's current run */
    int units_per_item, threads;
} wg_sequence;

/* Units per claim at most: 4 whole items keep a thread on neighbouring tile
 * rows (inputs shared through its own cache). */
#define WG_RUN_ITEMS 4
/* Units per item: parts of about 10 tiles, the smallest piece whose GEMM
 * still amortises U (see WG_TILES). */
static int units_per_item(int per_block) {
    const int u = per_block / 10;
    return u < 1 ? 1 : u > 4 ? 4 : u;
}

/* Claims this pipeline's next run of units, [unit_next, unit_end) (0 when
 * none is left): half a thread's share of what is left, at most
 * WG_RUN_ITEMS items. */
static int claim_run(wg_sequence *q) {
    long c = __atomic_load_n(q->claims, __ATOMIC_RELAXED);
    for (;;) {
        const long left = q->units - c;
        if (left <= 0) return 0;
        long run = (left + 2L * q->threads - 1) / (2L * q->threads);
        const long max_run = (long)WG_RUN_ITEMS * q->units_per_item;
        run = run > max_run ? max_run : run;
        if (__atomic_compare_exchange_n(q->claims, &c, c + run, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
            q->unit_next = c;
            q->unit_end = c + run;
            return 1;
        }
    }
}

/* The next step of this pipeline: its item (or part of an item) and position;
 * 0 after the last. */
static int sequence_next(wg_sequence *q, const wg_forward_job *f, wg_item *it, long *pos) {
    if (q->units > 0) {
        if (q->unit_next >= q->unit_end && !claim_run(q)) return 0;
        const int upi = q->units_per_item;
        const long item = q->unit_next / upi, item_end_unit = (item + 1) * upi;
        const int part0 = (int)(q->unit_next % upi);
        const long stop = q->unit_end < item_end_unit ? q->unit_end : item_end_unit;
        const int part1 = (int)(stop - item * upi);
        *it = item_at(item, f->tiles_h, f->tiles_w, f->per_block);
        const int a = it->nt * part0 / upi, b = it->nt * part1 / upi;
        it->tj0 += a;
        it->nt = b - a;
        *pos = item;
        q->unit_next = stop;
        return 1;
    }
    const long p = __atomic_fetch_add(q->claims, 1, __ATOMIC_RELAXED);
    if (p >= q->count) return 0;
    const long item = q->down ? (long)(q->rows - 1 - p / q->blocks) * q->blocks + p % q->blocks : p;
    *it = item_at(item, f->tiles_h, f->tiles_w, f->per_block);
    *pos = p;
    return 1;
}

static void wait_input_read(const wg_sequence *q, long p) {
    /* Spin briefly (the wait is normally short or none), then yield, in case
     * the thread waited for is not running (more threads than cores). */
    for (long spins = 0; !__atomic_load_n(&q->input_read[p], __ATOMIC_ACQUIRE); spins++) {
        if (spins > 20000)
            sched_yield();
#if defined(__x86_64__) || defined(__i386__)
        else
            __builtin_ia32_pause();
#endif
    }
}

/* Before the output of position p (next: this pipeline's next position, or
 * -1): its tile row overwrites input rows that the two previous tile rows in
 * processing order read, and columns its row neighbours read. */
static void wait_overwritten_inputs(const wg_sequence *q, long p, long next) {
    const long row0 = p / q->blocks * q->blocks, from = row0 - 2L * q->blocks;
    for (long r = from > 0 ? from : 0; r < p; r++) wait_input_read(q, r);
    if (p + 1 < row0 + q->blocks && p + 1 < q->count && p + 1 != next) wait_input_read(q, p + 1);
}

/* The items of sequence q with this thread's V (and M, which may be V). The
 * transform points of one tile are contiguous (V[tile][36][cin],
 * M[tile][36][cout]), and the items are software-pipelined: tile t of item i
 * is transformed back to the output just before tile t of item i + 1 is
 * transformed in, into the same 9 KB (64 channels), which the output
 * transform has just brought into L1. With M in place of V, no transform
 * point is ever written to a line that is not in L1 already (3-10% per layer
 * over separate V and M).
 * With F(6x6), while point xi's GEMM runs, its calls prefetch point xi + 1's
 * weights (one line per k step): U6 is 1 MB per layer and does not stay
 * whole in L2 between items, so without the prefetch each layer's first item
 * waits on U6 from L3 (its GEMM is nearly twice as slow per output as the
 * others'). F(4x4) does without: its 576 KB U stays in L2, and the extra
 * prefetches only cost issue slots. */
static void forward_items(const wg_forward_job *f, wg_sequence *q, float *V, float *M) {
    const wcm_conv_shape *s = f->s;
    const int H = s->h, W = s->w, CI = s->cin, CO = s->cout;
    const int P = f->points, m = f->m;
    const ptrdiff_t v_tile = (ptrdiff_t)tile_floats(m, CI), m_tile = (ptrdiff_t)tile_floats(m, CO);
    const size_t in_img = (size_t)H * W * CI, out_img = (size_t)H * W * CO;
    const int step = f->ops->max_cols;
    wg_item cur;
    long pos;
    if (!sequence_next(q, f, &cur, &pos)) return;
    for (int t = 0; t < cur.nt; t++)
        f->input(f->x + cur.n * in_img, H, W, CI, m * cur.ti - 1, m * (cur.tj0 + t) - 1, V + t * v_tile, CI);
    if (q->input_read) __atomic_store_n(&q->input_read[pos], 1, __ATOMIC_RELEASE);
    for (int more = 1; more;) {
        for (int xi = 0; xi < P; xi++) {
            wcm_tile_job j;
            j.pf = WCM_NO_PREFETCH;
            j.nseg = 1;
            j.mode = WCM_TILE_STORE;
            j.k[0] = CI;
            j.a_row = v_tile;
            j.a_col = 1;
            j.ldb = CO;
            j.ldc = m_tile;
            const char *u_next = (const char *)(f->u + (size_t)(xi + 1) * CI * CO);
            int u_next_lines = m == 6 && xi + 1 < P ? (int)((size_t)CI * CO * sizeof(float) / 64) : 0;
            for (int co0 = 0; co0 < CO; co0 += step) {
                j.ncols = CO - co0 < step ? CO - co0 : step;
                j.b[0] = f->u + (size_t)xi * CI * CO + co0;
                for (int t0 = 0; t0 < cur.nt;) {
                    j.rows = wcm_tile_step(cur.nt - t0);
                    j.a[0] = V + t0 * v_tile + (ptrdiff_t)xi * CI;
                    j.c = M + t0 * m_tile + (ptrdiff_t)xi * CO + co0;
                    j.pf.read = u_next;
                    j.pf.read_lines = u_next_lines < CI ? u_next_lines : CI;
                    u_next += 64 * j.pf.read_lines;
                    u_next_lines -= j.pf.read_lines;
                    f->ops->tile(&j);
                    t0 += j.rows;
                }
            }
        }
        wg_item next = cur;
        long next_pos = -1;
        more = sequence_next(q, f, &next, &next_pos);
        const int next_nt = more ? next.nt : 0;
        if (q->input_read) wait_overwritten_inputs(q, pos, next_pos);
        float *yimg = f->y + cur.n * out_img;
        for (int t = 0; t < cur.nt || t < next_nt; t++) {
            if (t < cur.nt) f->output(M + t * m_tile, CO, CO, yimg, H, W, m * cur.ti, m * (cur.tj0 + t), f->relu);
            if (t < next_nt)
                f->input(f->x + next.n * in_img, H, W, CI, m * next.ti - 1, m * (next.tj0 + t) - 1, V + t * v_tile, CI);
        }
        if (q->input_read && next_pos >= 0) __atomic_store_n(&q->input_read[next_pos], 1, __ATOMIC_RELEASE);
        cur = next;
        pos = next_pos;
    }
}

static wg_forward_job forward_job(const wcm_simd_ops *ops, const wcm_conv_shape *s, const float *x, const float *u,
                                  float *y, int flags, int m) {
    wg_forward_job f = {ops, s, x, u, y, (flags & WCM_CONV_RELU) != 0, (s->h + m - 1) / m, (s->w + m - 1) / m,
                        tiles_per_block(s->w, m), m, (m + 2) * (m + 2), NULL, NULL};
    f.input = m == 6 ? ops->winograd6->input : ops->winograd->input;
    f.output = m == 6 ? ops->winograd6->output : ops->winograd->output;
    return f;
}

/* Threads take runs of units from a shared counter as they finish (see
 * wg_sequence; all of a thread's runs form one pipeline). The runs shrink
 * towards the end of a layer so that the threads finish together: with
 * fixed runs of whole items one thread idles for a whole item's time (about
 * 0.1 ms at 160x160) while the other finishes, with shrinking runs for about
 * a tenth of that. Each tile is computed alike in any run, so results do
 * not depend on the split. */
static void forward_claimed(const wcm_simd_ops *ops, const wcm_conv_shape *s, const float *x, const float *u, float *y,
                            int flags, float *scratch, int m) {
    const wg_forward_job f = forward_job(ops, s, x, u, y, flags, m);
    const long items = item_count(s, m);
    const int upi = units_per_item(f.per_block);
    long claims = 0;
#pragma omp parallel
    {
        float *M, *V = thread_area(ops, s, m, scratch, omp_get_thread_num(), &M);
        wg_sequence q = {&claims, 0, NULL, 0, 1, 0, items * upi, 0, 0, upi, omp_get_num_threads()};
        forward_items(&f, &q, V, M);
    }
}

void wcm_winograd_forward_scratch(const wcm_simd_ops *ops, const wcm_conv_shape *s, const float *x, const float *u,
                                  float *y, int flags, float *scratch) {
    forward_claimed(ops, s, x, u, y, flags, scratch, 4);
}

void wcm_winograd6_forward_scratch(const wcm_simd_ops *ops, const wcm_conv_shape *s, const float *x, const float *u,
                                   float *y, int flags, float *scratch) {
    forward_claimed(ops, s, x, u, y, flags, scratch, 6);
}

/* The shifted forward: y = x - 4 rows (up) or x + 4 rows (down) in one buffer
 * (cin = cout; the images of a batch form one stack of rows), so that the
 * output lines are input lines just read, still in this core's cache,
 * instead of lines fetched from L3 only to be overwritten.
 * Output tile row r overwrites input rows 4r-4 .. 4r-1 (up), which tile rows
 * r-2, r-1 and r read (for row 0 of an image: the previous image's last
 * rows, read by its last two tile rows); down is the mirror image. So the
 * tile rows of the stack are taken in order (ascending up, descending down),
 * each row's items left to right, one item at a time from a shared counter,
 * and an item's output waits until the inputs it overwrites have been read:
 * those of the two previous rows and of its row neighbours. Within one
 * pipeline the next item's first input tile is read before the current
 * item's last output tile is written, so the next item needs no wait.
 * Nothing ever waits for a later position except the row neighbour just
 * after, whose input its claimer reads before any wait of its own that could
 * depend on us: no deadlock. Every output is computed exactly as by
 * wcm_winograd_forward_scratch.
 * When it pays (bench_conv 'fwd wg shifted' against 'fwd wg planned'): the
 * shift saves the output's memory traffic but adds waits between
 * neighbouring tile rows. On one thread there is nobody to wait for (8%
 * faster at 160x160). With several threads it pays when each thread keeps
 * its own vertical strip, i.e. two or more items per tile row (images wider
 * than 160: 7-12% faster at 320x320); with one item per row every tile row's
 * neighbours were read by another core, whose cache lines must move, and it
 * is slower (5% at 160x160). Below 32 items the waits dominate (the 40x40
 * low-pass net). So: 32 items or more, and two items per row or a single
 * thread. */
#define WG_SHIFT_MIN_ITEMS 32
/* The waits above assume the shift is one tile row. */
_Static_assert(WCM_SHIFT_ROWS == 4, "the shifted forward moves by one 4-row tile row");

int wcm_winograd_shift_pays(const wcm_simd_ops *ops, const wcm_conv_shape *s) {
    return s->cin == s->cout && !wcm_winograd6_pays(ops, s) && item_count(s, 4) >= WG_SHIFT_MIN_ITEMS &&
           (blocks_per_row(s->w, 4) >= 2 || omp_get_max_threads() == 1);
}

void wcm_winograd_forward_shifted(const wcm_simd_ops *ops, const wcm_conv_shape *s, float *x, const float *u, int down,
                                  int flags, float *scratch) {
    const ptrdiff_t shift = (ptrdiff_t)WCM_SHIFT_ROWS * s->w * s->cout;
    const wg_forward_job f = forward_job(ops, s, x, u, down ? x + shift : x - shift, flags, 4);
    const int blocks = blocks_per_row(s->w, 4);
    const long items = item_count(s, 4);
    long *claims = (long *)scratch;
    int *input_read = (int *)(claims + 4);
    float *areas = scratch + shifted_shared_floats(s);
    const wg_sequence shared = {claims, items, input_read, down, blocks, (int)(s->n * f.tiles_h), 0, 0, 0, 1, 1};
#pragma omp parallel
    {
        float *M, *V = thread_area(ops, s, 4, areas, omp_get_thread_num(), &M);
#pragma omp single
        {
            *claims = 0;
            memset(input_read, 0, sizeof(int) * (size_t)items);
        }
        wg_sequence q = shared;
        forward_items(&f, &q, V, M);
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
                                  float *dw, int flags, wcm_arena *arena) {
    const int H = s->h, W = s->w, CI = s->cin, CO = s->cout;
    const int tiles_h = (H + 3) / 4, tiles_w = (W + 3) / 4;
    const long per_image = (long)tiles_h * tiles_w, total = per_image * s->n;
    const long nblocks = (total + WG_BW_TILES - 1) / WG_BW_TILES;
    const int T = (int)((total + nblocks - 1) / nblocks);
    const size_t du_size = (size_t)36 * CI * CO, v_size = (size_t)36 * T * CI, m_size = (size_t)36 * T * CO;
    float *du = wcm_arena_push(arena, sizeof(float) * (du_size + v_size + m_size));
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
    return 0;
}

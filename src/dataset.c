/* Training data: image folder -> preprocessed, memory-mapped cache -> noisy
 * batches drawn as the reference does (docs/model.md §4). */
#include "wcm/dataset.h"
#include "wcm/haar.h"
#include "wcm/image.h"
#include "wcm/io.h"
#include "wcm/rng.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define CACHE_MAGIC "WCMDS001"
#define CACHE_HEADER 64

/* Streams of the seed used for batches (high bits: purpose; low bits: draw). */
#define STREAM_SAMPLE 0x53414D50ULL /* "SAMP": patch positions, intensities, noise levels */
#define STREAM_NOISE 0x4E4F4953ULL  /* "NOIS": the Gaussian noise values */
#define STREAM_ORDER 0x4F524452ULL  /* "ORDR": epoch shuffles */

static uint64_t stream_of(uint64_t purpose, uint64_t draw) { return (purpose << 40) ^ draw; }

/* ---- cache ------------------------------------------------------------- */

typedef struct {
    char magic[8];
    uint64_t fingerprint;
    uint32_t count, h, w, listed, unreadable, too_small, other_files;
    uint32_t reserved[5];
} cache_header;
_Static_assert(sizeof(cache_header) <= CACHE_HEADER, "cache header fits its slot");

static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001B3ULL;
    return h;
}
static uint64_t fnv_str(uint64_t h, const char *s) { return fnv1a(h, s, strlen(s) + 1); }
#define FNV_START 0xCBF29CE484222325ULL

static uint64_t options_hash(uint64_t h, const wcm_dataset_options *o) {
    int v[4] = {o->crop, o->celeba_align, o->resize, o->max_images};
    return fnv1a(fnv_str(h, "wcm-dataset-v1"), v, sizeof v);
}

static void default_cache_dir(char *buf, size_t size) {
    const char *e = getenv("WCM_CACHE_DIR");
    if (e && *e) {
        snprintf(buf, size, "%s", e);
        return;
    }
    e = getenv("XDG_CACHE_HOME");
    if (e && *e) {
        snprintf(buf, size, "%s/wcm", e);
        return;
    }
    e = getenv("HOME");
    if (e && *e) snprintf(buf, size, "%s/.cache/wcm", e);
    else snprintf(buf, size, "/tmp/wcm-cache");
}

/* mkdir -p; returns 0 when the folder exists afterwards. */
static int make_dirs(const char *path) {
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(tmp, 0755);
            *p = '/';
        }
    mkdir(tmp, 0755);
    struct stat st;
    return stat(tmp, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

/* Map an existing cache file if it matches the fingerprint (only a regular
 * file whose size agrees with its header: anything else is rebuilt). */
static int try_map_cache(wcm_dataset *ds, const char *path, uint64_t fingerprint) {
    size_t size, pixels;
    int fd = wcm_open_regular(path, &size, NULL);
    if (fd < 0) return 0;
    cache_header hd;
    int ok = read(fd, &hd, sizeof hd) == (ssize_t)sizeof hd && !memcmp(hd.magic, CACHE_MAGIC, 8) &&
             hd.fingerprint == fingerprint && hd.count > 0 && hd.count <= INT_MAX && hd.h <= INT_MAX && hd.w <= INT_MAX;
    int64_t dims[3] = {hd.count, hd.h, hd.w};
    ok = ok && !wcm_size_product(dims, 3, sizeof(float), SIZE_MAX - CACHE_HEADER, &pixels) && size == CACHE_HEADER + pixels;
    void *map = ok ? mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
    close(fd);
    if (map == MAP_FAILED) return 0;
    size_t need = size;
    ds->map_ = map, ds->map_size_ = need, ds->mapped_ = 1;
    ds->pixels = (const float *)((const char *)map + CACHE_HEADER);
    ds->count = (int)hd.count, ds->h = (int)hd.h, ds->w = (int)hd.w;
    ds->listed = (int)hd.listed, ds->unreadable = (int)hd.unreadable, ds->too_small = (int)hd.too_small;
    ds->other_files = (int)hd.other_files;
    ds->cache_hit = 1;
    return 1;
}

/* ---- preprocessing ------------------------------------------------------ */

enum { IMG_OK = 0, IMG_UNREADABLE = 1, IMG_TOO_SMALL = 2 };

static int preprocess(const char *path, const wcm_dataset_options *o, wcm_tensor *out) {
    wcm_tensor img = {0}, cropped = {0};
    wcm_error err;
    if (wcm_image_read(path, &img, &err)) return IMG_UNREADABLE;
    int rc = IMG_OK;
    if (o->celeba_align) {
        if (img.h <= 58 || img.w <= 18) rc = IMG_TOO_SMALL;
        else if (wcm_image_crop(&img, 29, 9, img.h - 58, img.w - 18, &cropped, &err)) rc = IMG_UNREADABLE;
    } else if (o->crop > 0) {
        if (img.h < o->crop || img.w < o->crop) rc = IMG_TOO_SMALL;
        else if (wcm_image_center_crop(&img, o->crop, o->crop, &cropped, &err)) rc = IMG_UNREADABLE;
    } else {
        cropped = img;
        img.data = NULL;
    }
    wcm_tensor_free(&img);
    if (rc == IMG_OK && o->resize > 0) {
        if (wcm_image_resize(&cropped, o->resize, o->resize, WCM_RESIZE_BICUBIC, out, &err)) rc = IMG_UNREADABLE;
        wcm_tensor_free(&cropped);
    } else if (rc == IMG_OK) {
        *out = cropped;
    } else {
        wcm_tensor_free(&cropped);
    }
    if (rc == IMG_OK && !wcm_tensor_all_finite(out)) {
        wcm_tensor_free(out);
        rc = IMG_UNREADABLE;
    }
    return rc;
}

static int build(wcm_dataset *ds, char **paths, int count, const wcm_dataset_options *o, uint64_t fingerprint,
                 const char *dir, wcm_error *err) {
    wcm_tensor *imgs = calloc((size_t)count, sizeof *imgs);
    int *status = calloc((size_t)count, sizeof *status);
    if (!imgs || !status) {
        free(imgs), free(status);
        return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    }
#pragma omp parallel for schedule(dynamic, 4)
    for (int i = 0; i < count; i++) status[i] = preprocess(paths[i], o, &imgs[i]);
    int usable = 0, h = 0, w = 0, rc = WCM_OK;
    for (int i = 0; i < count; i++) {
        if (status[i] == IMG_UNREADABLE) ds->unreadable++;
        if (status[i] == IMG_TOO_SMALL) ds->too_small++;
        if (status[i] != IMG_OK) continue;
        if (!usable) h = imgs[i].h, w = imgs[i].w;
        else if ((imgs[i].h != h || imgs[i].w != w) && !rc)
            rc = wcm_fail(err, WCM_ERR_SHAPE, "%s: images have different sizes (%dx%d, then %dx%d in %s); use --crop",
                          dir, w, h, imgs[i].w, imgs[i].h, paths[i]);
        usable++;
    }
    if (!rc && !usable) {
        if (o->celeba_align || o->crop > 0)
            rc = wcm_fail(err, WCM_ERR_ARG, "%s: no usable images (%d listed: %d unreadable, %d smaller than %s)", dir,
                          count, ds->unreadable, ds->too_small, o->celeba_align ? "59x19 (CelebA crop)" : "the crop");
        else
            rc = wcm_fail(err, WCM_ERR_ARG, "%s: no usable images (%d listed, %d unreadable)", dir, count, ds->unreadable);
    }
    int64_t dims[3] = {usable, h, w};
    size_t per = (size_t)h * w, total = 0;
    if (!rc && wcm_size_product(dims, 3, sizeof(float), SIZE_MAX - CACHE_HEADER, &total))
        rc = wcm_fail(err, WCM_ERR_NOMEM, "%d images of %dx%d do not fit in memory", usable, w, h);
    total += CACHE_HEADER;
    char *block = rc ? NULL : wcm_alloc(total);
    if (!rc && !block) rc = wcm_fail(err, WCM_ERR_NOMEM, "out of memory for %d images of %dx%d", usable, w, h);
    if (!rc) {
        cache_header hd = {{0}, fingerprint, (uint32_t)usable, (uint32_t)h, (uint32_t)w, (uint32_t)ds->listed,
                           (uint32_t)ds->unreadable, (uint32_t)ds->too_small, (uint32_t)ds->other_files, {0}};
        memcpy(hd.magic, CACHE_MAGIC, 8);
        memset(block, 0, CACHE_HEADER);
        memcpy(block, &hd, sizeof hd);
        float *dst = (float *)(block + CACHE_HEADER);
        for (int i = 0, k = 0; i < count; i++)
            if (status[i] == IMG_OK) memcpy(dst + per * (size_t)k++, imgs[i].data, per * sizeof(float));
    }
    for (int i = 0; i < count; i++) wcm_tensor_free(&imgs[i]);
    free(imgs), free(status);
    if (rc) return rc;
    ds->count = usable, ds->h = h, ds->w = w;
    /* Write the cache; if that works, use the mapping (shared between runs). */
    wcm_error werr;
    if (ds->cache_path[0] && !wcm_write_file_atomic(ds->cache_path, block, total, &werr) &&
        try_map_cache(ds, ds->cache_path, fingerprint)) {
        ds->cache_hit = 0;
        wcm_free(block);
        return WCM_OK;
    }
    ds->cache_path[0] = 0;
    ds->map_ = block, ds->map_size_ = total, ds->mapped_ = 0;
    ds->pixels = (const float *)(block + CACHE_HEADER);
    return WCM_OK;
}

int wcm_dataset_open(wcm_dataset *ds, const char *dir, const wcm_dataset_options *opt, wcm_error *err) {
    memset(ds, 0, sizeof *ds);
    wcm_dataset_options o = *opt;
    if (o.crop < 0 || o.resize < 0 || o.max_images < 0) return wcm_fail(err, WCM_ERR_ARG, "negative dataset option");
    /* Sizes no image can have are mistakes, not images to skip one by one. */
    if (o.crop > 65536 || o.resize > 65536)
        return wcm_fail(err, WCM_ERR_ARG, "%s %d is larger than any image wcm reads (at most 65536 per side)",
                        o.resize > 65536 ? "resize" : "crop", o.resize > 65536 ? o.resize : o.crop);
    int rc;
    if (o.crop > 0 && (rc = wcm_check_pixels(1, o.crop, o.crop, "crop", err))) return rc;
    if (o.resize > 0 && (rc = wcm_check_pixels(1, o.resize, o.resize, "resize", err))) return rc;
    /* A cache folder the caller names must work; only the default one may
     * silently fall back to memory. */
    if (o.cache_dir && !o.no_cache) {
        if (strlen(o.cache_dir) >= 900 || make_dirs(o.cache_dir) != 0)
            return wcm_fail(err, WCM_ERR_IO, "cache folder %s cannot be created", o.cache_dir);
        if (access(o.cache_dir, W_OK | X_OK) != 0)
            return wcm_fail(err, WCM_ERR_IO, "cache folder %s is not writable: %s", o.cache_dir, strerror(errno));
    }
    char **paths;
    int count, others;
    rc = wcm_list_images(dir, &paths, &count, &others, err);
    if (rc) return rc;
    ds->other_files = others;
    if (count == 0) {
        wcm_free_paths(paths, count);
        return wcm_fail(err, WCM_ERR_ARG, "%s: no images (.png, .jpg, .jpeg, .npy) found%s", dir,
                        others ? " (only other files)" : " (empty folder)");
    }
    if (o.max_images > 0 && count > o.max_images) {
        for (int i = o.max_images; i < count; i++) free(paths[i]);
        count = o.max_images;
    }
    ds->listed = count;
    /* The listing's fingerprint: names, sizes and modification times. */
    uint64_t fp = options_hash(FNV_START, &o);
    for (int i = 0; i < count; i++) {
        struct stat st;
        const char *base = strrchr(paths[i], '/');
        fp = fnv_str(fp, base ? base + 1 : paths[i]);
        if (stat(paths[i], &st) == 0) {
            int64_t v[3] = {(int64_t)st.st_size, (int64_t)st.st_mtim.tv_sec, (int64_t)st.st_mtim.tv_nsec};
            fp = fnv1a(fp, v, sizeof v);
        }
    }
    if (!o.no_cache) {
        char cdir[900], real[PATH_MAX];
        if (o.cache_dir) snprintf(cdir, sizeof cdir, "%s", o.cache_dir);
        else default_cache_dir(cdir, sizeof cdir);
        if (!realpath(dir, real)) snprintf(real, sizeof real, "%s", dir);
        uint64_t key = options_hash(fnv_str(FNV_START, real), &o);
        if (make_dirs(cdir) == 0)
            snprintf(ds->cache_path, sizeof ds->cache_path, "%s/wcm-dataset-%016llx.bin", cdir, (unsigned long long)key);
    }
    if (ds->cache_path[0] && try_map_cache(ds, ds->cache_path, fp)) {
        wcm_free_paths(paths, count);
        return WCM_OK;
    }
    rc = build(ds, paths, count, &o, fp, dir, err);
    wcm_free_paths(paths, count);
    if (rc) memset(ds, 0, sizeof *ds);
    return rc;
}

void wcm_dataset_close(wcm_dataset *ds) {
    if (ds->mapped_) munmap(ds->map_, ds->map_size_);
    else wcm_free(ds->map_);
    memset(ds, 0, sizeof *ds);
}

/* ---- batches ------------------------------------------------------------- */

int wcm_batch_factor(const wcm_batch_spec *spec) {
    if (spec->kind == WCM_NET_CONDITIONAL) return 1 << (spec->scale + 1);
    if (spec->kind == WCM_NET_LOWPASS) return 1 << spec->levels;
    return 1;
}

int wcm_batch_geometry(const wcm_dataset *ds, const wcm_batch_spec *spec, int *h, int *w, wcm_error *err) {
    if (spec->kind == WCM_NET_CONDITIONAL && (spec->scale < 0 || spec->scale >= WCM_MAX_LEVELS))
        return wcm_fail(err, WCM_ERR_ARG, "scale %d out of range 0..%d", spec->scale, WCM_MAX_LEVELS - 1);
    if (spec->kind == WCM_NET_LOWPASS && (spec->levels < 1 || spec->levels > WCM_MAX_LEVELS))
        return wcm_fail(err, WCM_ERR_ARG, "levels %d out of range 1..%d", spec->levels, WCM_MAX_LEVELS);
    int f = wcm_batch_factor(spec);
    if (spec->patch > 0) {
        if (spec->patch * f > ds->h || spec->patch * f > ds->w)
            return wcm_fail(err, WCM_ERR_ARG, "patch %d needs images of at least %dx%d pixels at this scale; they are %dx%d",
                            spec->patch, spec->patch * f, spec->patch * f, ds->w, ds->h);
        *h = *w = spec->patch;
        return WCM_OK;
    }
    if (ds->h % f || ds->w % f)
        return wcm_fail(err, WCM_ERR_SHAPE, "image size %dx%d is not divisible by %d (needed at this scale); use --crop",
                        ds->w, ds->h, f);
    *h = ds->h / f, *w = ds->w / f;
    return WCM_OK;
}

/* Haar coefficients of a batch of image crops: the 4 channels of level j
 * (conditional) or the low-pass of level J-1 (low-pass). Same arithmetic as
 * wcm_haar_forward. */
static int coefficients(wcm_tensor *img, int splits, int keep_details, wcm_tensor *out, wcm_error *err) {
    wcm_tensor cur = *img, next = {0};
    img->data = NULL;
    for (int s = 0; s < splits; s++) {
        int rc = wcm_haar_split(&cur, &next, err);
        wcm_tensor_free(&cur);
        if (rc) return rc;
        if (s == splits - 1 && keep_details) {
            cur = next;
            break;
        }
        /* keep channel 0 (the low-pass) for the next level */
        rc = wcm_tensor_alloc(&cur, next.n, next.h, next.w, 1, err);
        if (rc) {
            wcm_tensor_free(&next);
            return rc;
        }
        for (size_t p = 0; p < (size_t)next.n * next.h * next.w; p++) cur.data[p] = next.data[p * 4];
        wcm_tensor_free(&next);
    }
    *out = cur;
    return WCM_OK;
}

double wcm_dataset_detail_max(const wcm_dataset *ds, const int *ids, int n, int scale) {
    double best = 0;
#pragma omp parallel for schedule(dynamic, 16) reduction(max : best)
    for (int i = 0; i < n; i++) {
        int f = 1 << (scale + 1), h = ds->h / f * f, w = ds->w / f * f;
        wcm_tensor img = {0}, coeffs = {0};
        wcm_error err;
        if (wcm_tensor_alloc(&img, 1, h, w, 1, &err)) continue;
        for (int y = 0; y < h; y++)
            memcpy(img.data + (size_t)y * w, ds->pixels + ((size_t)ids[i] * ds->h + y) * ds->w, (size_t)w * sizeof(float));
        if (coefficients(&img, scale + 1, 1, &coeffs, &err)) continue;
        for (size_t p = 0; p < (size_t)coeffs.h * coeffs.w; p++)
            for (int c = 1; c < 4; c++) best = fmax(best, fabs(coeffs.data[p * 4 + c]));
        wcm_tensor_free(&coeffs);
    }
    return best;
}

int wcm_noise_high_for_scale(double detail_max) {
    int high = (int)(255.0 * detail_max); /* the reference truncates to int */
    return high < 1 ? 1 : high;
}

static int ensure_tensor(wcm_tensor *t, int n, int h, int w, int c, wcm_error *err) {
    if (t->data && t->n == n && t->h == h && t->w == w && t->c == c) return WCM_OK;
    wcm_tensor_free(t);
    return wcm_tensor_alloc(t, n, h, w, c, err);
}

/* The draws of one image of a batch, in a fixed order: patch row, column,
 * intensity, k (or the log-uniform u), then the flip bit when flips are on. */
typedef struct {
    int y0, x0, flip;
    double gain, sigma;
} image_draws;

static image_draws draw_image(wcm_rng *rng, const wcm_dataset *ds, const wcm_batch_spec *spec, int f, int oh, int ow) {
    image_draws d = {0, 0, 0, 1.0, 0.0};
    if (spec->patch > 0) {
        d.y0 = (int)wcm_rng_below(rng, (uint64_t)(ds->h / f - oh + 1)) * f;
        d.x0 = (int)wcm_rng_below(rng, (uint64_t)(ds->w / f - ow + 1)) * f;
    }
    d.gain = spec->rescale ? wcm_rng_uniform(rng) : 1.0;
    const double high = spec->noise_high > 0 ? spec->noise_high : 1;
    if (spec->log_uniform) {
        /* sigma = (high/255) 1000^-u: every decade below the bound equally often */
        d.sigma = high / 255.0 * pow(WCM_LOG_UNIFORM_RANGE, -wcm_rng_uniform(rng));
    } else {
        int k = (int)wcm_rng_below(rng, (uint64_t)high);
        d.sigma = spec->quadratic ? (k / 255.0) * (k / 255.0) : k / 255.0;
    }
    if (spec->fixed_sigma > 0) d.sigma = spec->fixed_sigma;
    if (spec->flip) d.flip = (int)(wcm_rng_next_u64(rng) >> 63);
    return d;
}

int wcm_make_batch(const wcm_dataset *ds, const wcm_batch_spec *spec, const int *ids, int n, uint64_t draw,
                   wcm_tensor *noisy, wcm_tensor *noise, wcm_error *err) {
    return wcm_make_batch_part(ds, spec, ids, 0, n, draw, noisy, noise, err);
}

int wcm_make_batch_part(const wcm_dataset *ds, const wcm_batch_spec *spec, const int *ids, int first, int n,
                        uint64_t draw, wcm_tensor *noisy, wcm_tensor *noise, wcm_error *err) {
    int oh, ow, rc;
    if (n < 1) return wcm_fail(err, WCM_ERR_ARG, "empty batch");
    if (first < 0) return wcm_fail(err, WCM_ERR_ARG, "negative batch position %d", first);
    if ((rc = wcm_batch_geometry(ds, spec, &oh, &ow, err))) return rc;
    const int f = wcm_batch_factor(spec), ih = oh * f, iw = ow * f;
    const int cond = spec->kind == WCM_NET_CONDITIONAL, cin = cond ? 4 : 1, cout = cond ? 3 : 1;
    /* The draws of the images before `first` are replayed, so a part of a
     * batch is exactly that part of the whole batch. */
    wcm_rng rng;
    wcm_rng_seed(&rng, spec->seed, stream_of(STREAM_SAMPLE, draw));
    for (int i = 0; i < first; i++) draw_image(&rng, ds, spec, f, oh, ow);
    double *sigma = malloc(sizeof(double) * (size_t)n), *gain = malloc(sizeof(double) * (size_t)n);
    wcm_tensor crops = {0}, clean = {0};
    if (!sigma || !gain || (rc = wcm_tensor_alloc(&crops, n, ih, iw, 1, err))) {
        free(sigma), free(gain);
        return rc ? rc : wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        const image_draws d = draw_image(&rng, ds, spec, f, oh, ow);
        gain[i] = d.gain, sigma[i] = d.sigma;
        const float *src = ds->pixels + (size_t)ids[first + i] * ds->h * ds->w;
        for (int y = 0; y < ih; y++) {
            const float *row = src + (size_t)(d.y0 + y) * ds->w + d.x0;
            float *dst = crops.data + ((size_t)i * ih + y) * iw;
            if (d.flip) /* a mirrored patch of a width divisible by f keeps the Haar blocks aligned */
                for (int x = 0; x < iw; x++) dst[x] = row[iw - 1 - x];
            else
                memcpy(dst, row, (size_t)iw * sizeof(float));
        }
    }
    if (spec->kind == WCM_NET_FLAT) clean = crops, crops.data = NULL;
    else rc = coefficients(&crops, cond ? spec->scale + 1 : spec->levels, cond, &clean, err);
    if (!rc) rc = ensure_tensor(noisy, n, oh, ow, cin, err);
    if (!rc) rc = ensure_tensor(noise, n, oh, ow, cout, err);
    if (!rc) {
        /* The noise values of the part, then scaled per image. */
        size_t per = (size_t)oh * ow * cout;
        wcm_randn_fill(spec->seed, stream_of(STREAM_NOISE, draw), (uint64_t)first * per, noise->data, per * n);
        #pragma omp parallel for schedule(static)
        for (int i = 0; i < n; i++) {
            float s = (float)sigma[i], g = (float)gain[i];
            for (size_t p = 0; p < (size_t)oh * ow; p++) {
                const float *cp = clean.data + ((size_t)i * oh * ow + p) * cin;
                float *np = noise->data + (size_t)i * per + p * cout, *xp = noisy->data + ((size_t)i * oh * ow + p) * cin;
                if (cond) {
                    xp[0] = cp[0]; /* the low-pass condition stays clean */
                    for (int c = 0; c < 3; c++) np[c] *= s, xp[c + 1] = cp[c + 1] + np[c];
                } else {
                    np[0] *= s;
                    xp[0] = cp[0] * g + np[0];
                }
            }
        }
    }
    wcm_tensor_free(&crops);
    wcm_tensor_free(&clean);
    free(sigma), free(gain);
    return rc;
}

double wcm_batch_psnr(const wcm_tensor *predicted, const wcm_tensor *noise) {
    size_t per = (size_t)noise->h * noise->w * noise->c;
    double sum = 0;
    for (int i = 0; i < noise->n; i++) {
        double se = 0;
        for (size_t k = 0; k < per; k++) {
            double d = (double)noise->data[i * per + k] - predicted->data[i * per + k];
            se += d * d;
        }
        double mse = se / (double)per;
        sum += 10.0 * log10(1.0 / (mse > 1e-20 ? mse : 1e-20));
    }
    return sum / noise->n;
}

void wcm_epoch_order(uint64_t seed, uint64_t epoch, int n, int *order) {
    wcm_rng rng;
    wcm_rng_seed(&rng, seed, stream_of(STREAM_ORDER, epoch));
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)wcm_rng_below(&rng, (uint64_t)i + 1);
        int t = order[i];
        order[i] = order[j], order[j] = t;
    }
}

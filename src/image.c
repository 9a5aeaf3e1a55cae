/* Gray image files (format chosen by extension), crops, resizing, directory
 * listings and image grids. The PNG and JPEG codecs are in image_png.c and
 * image_jpeg.c. */
#include "wcm/image.h"
#include "image_internal.h"
#include "wcm/io.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

typedef enum { FORMAT_UNKNOWN, FORMAT_PNG, FORMAT_JPEG, FORMAT_NPY } image_format;

static image_format format_of(const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    if (!dot || dot == base) return FORMAT_UNKNOWN; /* no extension, or a dotfile like ".png" */
    const char *ext = dot + 1;
    if (strcasecmp(ext, "png") == 0) return FORMAT_PNG;
    if (strcasecmp(ext, "jpg") == 0 || strcasecmp(ext, "jpeg") == 0) return FORMAT_JPEG;
    if (strcasecmp(ext, "npy") == 0) return FORMAT_NPY;
    return FORMAT_UNKNOWN;
}

int wcm_image_is_supported(const char *path) { return path && format_of(path) != FORMAT_UNKNOWN; }

/* ------------------------------------------------------------ read, write */

static int npy_image_decode(const char *name, const unsigned char *buf, size_t len, wcm_tensor *img, wcm_error *err) {
    wcm_array a;
    int rc = wcm_npy_parse(buf, len, &a, err);
    if (rc) return wcm_fail_context(err, rc, "%s", name);
    int64_t h = 0, w = 0;
    int ok = (a.ndim == 2) || (a.ndim == 3 && a.shape[0] == 1) || (a.ndim == 4 && a.shape[0] == 1 && a.shape[1] == 1);
    if (ok) {
        h = a.shape[a.ndim - 2], w = a.shape[a.ndim - 1];
        ok = h > 0 && w > 0 && h <= WCM_IMAGE_MAX_SIDE && w <= WCM_IMAGE_MAX_SIDE;
    }
    if (!ok) {
        char shape[160] = "";
        for (int i = 0; i < a.ndim; i++) {
            size_t used = strlen(shape);
            snprintf(shape + used, sizeof shape - used, "%s%lld", i ? ", " : "", (long long)a.shape[i]);
        }
        wcm_array_free(&a);
        return wcm_fail(err, WCM_ERR_SHAPE, "%s: expected one image of shape HW, 1HW or 1x1xHxW, got (%s)", name,
                        shape);
    }
    rc = wcm_check_pixels(1, h, w, name, err);
    if (rc == WCM_OK) rc = wcm_tensor_alloc(img, 1, (int)h, (int)w, 1, err);
    if (rc == WCM_OK) memcpy(img->data, a.data, (size_t)(h * w) * sizeof(float));
    wcm_array_free(&a);
    return rc;
}

static int image_decode(const char *name, const unsigned char *buf, size_t len, int color, wcm_tensor *img,
                        wcm_error *err) {
    memset(img, 0, sizeof *img);
    switch (format_of(name)) {
    case FORMAT_PNG: return wcm_png_decode(name, buf, len, color, img, err);
    case FORMAT_JPEG: return wcm_jpeg_decode(name, buf, len, color, img, err);
    case FORMAT_NPY: return npy_image_decode(name, buf, len, img, err);
    default:
        return wcm_fail(err, WCM_ERR_FORMAT, "%s: unsupported image type (expected .png, .jpg, .jpeg or .npy)", name);
    }
}

int wcm_image_decode(const char *name, const unsigned char *buf, size_t len, wcm_tensor *img, wcm_error *err) {
    return image_decode(name, buf, len, 0, img, err);
}

static int image_read(const char *path, int color, wcm_tensor *img, wcm_error *err) {
    memset(img, 0, sizeof *img);
    if (format_of(path) == FORMAT_UNKNOWN)
        return wcm_fail(err, WCM_ERR_FORMAT, "%s: unsupported image type (expected .png, .jpg, .jpeg or .npy)", path);
    unsigned char *buf;
    size_t len;
    int rc = wcm_read_file(path, &buf, &len, err);
    if (rc) return rc;
    rc = image_decode(path, buf, len, color, img, err);
    free(buf);
    return rc;
}

int wcm_image_read(const char *path, wcm_tensor *img, wcm_error *err) { return image_read(path, 0, img, err); }

int wcm_image_read_color(const char *path, wcm_tensor *img, wcm_error *err) { return image_read(path, 1, img, err); }

int wcm_image_write(const char *path, const wcm_tensor *img, int index, int bits, wcm_error *err) {
    if (!img || !img->data || img->n <= 0 || img->h <= 0 || img->w <= 0)
        return wcm_fail(err, WCM_ERR_ARG, "%s: no image to write", path);
    if (img->c != 1 && img->c != 3)
        return wcm_fail(err, WCM_ERR_SHAPE, "%s: can only write gray or RGB images (1 or 3 channels), got %d", path, img->c);
    if (index < 0 || index >= img->n)
        return wcm_fail(err, WCM_ERR_ARG, "%s: image index %d out of range (batch of %d)", path, index, img->n);
    float *pixels = img->data + (size_t)index * img->h * img->w * img->c;
    const image_format format = format_of(path);
    if (format == FORMAT_NPY && img->c != 1)
        return wcm_fail(err, WCM_ERR_ARG, "%s: .npy output holds gray images only (use .png or .jpg for colour)", path);
    switch (format) {
    case FORMAT_PNG:
        return wcm_png_write(path, pixels, img->h, img->w, img->c, (size_t)img->w * img->c, bits, err);
    case FORMAT_NPY: {
        wcm_array a;
        memset(&a, 0, sizeof a);
        a.ndim = 2;
        a.shape[0] = img->h, a.shape[1] = img->w;
        a.data = pixels; /* borrowed: wcm_npy_write only reads it */
        return wcm_npy_write(path, &a, err);
    }
    case FORMAT_JPEG:
        if (bits != 8) return wcm_fail(err, WCM_ERR_ARG, "%s: JPEG holds 8 bits per sample (use .png for 16)", path);
        return wcm_jpeg_write(path, pixels, img->h, img->w, img->c, 95, err);
    default:
        return wcm_fail(err, WCM_ERR_ARG, "%s: unsupported output type (use .png, .jpg or .npy)", path);
    }
}

/* ------------------------------------------------------------------ crops */

int wcm_image_crop(const wcm_tensor *in, int y0, int x0, int ch, int cw, wcm_tensor *out, wcm_error *err) {
    if (ch <= 0 || cw <= 0) return wcm_fail(err, WCM_ERR_ARG, "invalid crop size %dx%d", cw, ch);
    if (y0 < 0 || x0 < 0 || y0 > in->h - ch || x0 > in->w - cw)
        return wcm_fail(err, WCM_ERR_SHAPE, "crop of %dx%d at x=%d, y=%d does not fit in a %dx%d image", cw, ch, x0,
                        y0, in->w, in->h);
    wcm_tensor result; /* filled completely before *out is touched, so out may alias in */
    int rc = wcm_tensor_alloc(&result, in->n, ch, cw, in->c, err);
    if (rc) return rc;
    size_t row = (size_t)cw * in->c;
    for (int b = 0; b < in->n; b++)
        for (int y = 0; y < ch; y++)
            memcpy(result.data + wcm_tensor_idx(&result, b, y, 0, 0), in->data + wcm_tensor_idx(in, b, y0 + y, x0, 0),
                   row * sizeof(float));
    *out = result;
    return WCM_OK;
}

int wcm_image_center_crop(const wcm_tensor *in, int ch, int cw, wcm_tensor *out, wcm_error *err) {
    if (ch <= 0 || cw <= 0) return wcm_fail(err, WCM_ERR_ARG, "invalid crop size %dx%d", cw, ch);
    if (in->h < ch || in->w < cw)
        return wcm_fail(err, WCM_ERR_SHAPE, "image is %dx%d, smaller than the %dx%d crop", in->w, in->h, cw, ch);
    return wcm_image_crop(in, (in->h - ch) / 2, (in->w - cw) / 2, ch, cw, out, err);
}

/* ---------------------------------------------------------------- resize */

/* One separable pass: output sample o is sum_k weight[o*ksize + k] *
 * input[first[o] + k] for k < count[o]. */
typedef struct {
    int ksize;
    int *first, *count;
    double *weight;
} resample_plan;

static void plan_free(resample_plan *p) {
    free(p->first);
    free(p->count);
    free(p->weight);
    memset(p, 0, sizeof *p);
}

static int plan_alloc(resample_plan *p, int out_size, int ksize) {
    int64_t dims[2] = {out_size, ksize};
    size_t weights;
    if (wcm_size_product(dims, 2, sizeof(double), SIZE_MAX, &weights)) return -1;
    p->ksize = ksize;
    p->first = malloc(sizeof(int) * (size_t)out_size);
    p->count = malloc(sizeof(int) * (size_t)out_size);
    p->weight = calloc(1, weights ? weights : 1);
    if (!p->first || !p->count || !p->weight) {
        plan_free(p);
        return -1;
    }
    return 0;
}

/* Box filter: the weight of input pixel k is the length of its overlap with
 * the output pixel's footprint [o*in/out, (o+1)*in/out), over that length.
 * Exact in integers: measure positions in units of 1/out input pixels. */
static int plan_area(resample_plan *p, int in_size, int out_size) {
    if (plan_alloc(p, out_size, in_size / out_size + 2)) return -1;
    for (int o = 0; o < out_size; o++) {
        int64_t lo = (int64_t)o * in_size, hi = (int64_t)(o + 1) * in_size;
        int64_t k0 = lo / out_size, k1 = (hi + out_size - 1) / out_size;
        if (k1 > in_size) k1 = in_size;
        p->first[o] = (int)k0;
        p->count[o] = (int)(k1 - k0);
        for (int64_t k = k0; k < k1; k++) {
            int64_t a = k * out_size > lo ? k * out_size : lo;
            int64_t b = (k + 1) * out_size < hi ? (k + 1) * out_size : hi;
            p->weight[(size_t)o * p->ksize + (k - k0)] = (double)(b - a) / (double)in_size;
        }
    }
    return 0;
}

/* Keys cubic convolution kernel with a = -0.5. */
static double cubic_kernel(double x) {
    const double a = -0.5;
    x = fabs(x);
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
    return 0.0;
}

/* Pillow's convention: output pixel o is centred at (o + 0.5) * scale in
 * input coordinates; when shrinking the kernel is stretched by the scale
 * (antialiasing); taps outside the image are dropped and the remaining
 * weights renormalised to sum to one. */
static int plan_bicubic(resample_plan *p, int in_size, int out_size) {
    double scale = (double)in_size / out_size;
    double stretch = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * stretch;
    if (plan_alloc(p, out_size, (int)ceil(support) * 2 + 1)) return -1;
    for (int o = 0; o < out_size; o++) {
        double center = (o + 0.5) * scale;
        int lo = (int)(center - support + 0.5);
        int hi = (int)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in_size) hi = in_size;
        if (hi - lo > p->ksize) hi = lo + p->ksize;
        double *w = p->weight + (size_t)o * p->ksize, total = 0.0;
        for (int k = lo; k < hi; k++) {
            w[k - lo] = cubic_kernel((k - center + 0.5) / stretch);
            total += w[k - lo];
        }
        if (total != 0.0)
            for (int k = lo; k < hi; k++) w[k - lo] /= total;
        p->first[o] = lo;
        p->count[o] = hi - lo;
    }
    return 0;
}

/* Resample one h x w plane (element stride `c`) into oh x ow, horizontally
 * first then vertically, each pass accumulated in double and stored as float. */
static void resample_plane(const float *src, int h, int w, int c, const resample_plan *px, const resample_plan *py,
                           int oh, int ow, float *tmp, float *dst) {
    for (int y = 0; y < h; y++) {
        const float *row = src + (size_t)y * w * c;
        for (int ox = 0; ox < ow; ox++) {
            const double *wt = px->weight + (size_t)ox * px->ksize;
            const float *s = row + (size_t)px->first[ox] * c;
            double acc = 0.0;
            for (int k = 0; k < px->count[ox]; k++) acc += wt[k] * s[(size_t)k * c];
            tmp[(size_t)y * ow + ox] = (float)acc;
        }
    }
    for (int oy = 0; oy < oh; oy++) {
        const double *wt = py->weight + (size_t)oy * py->ksize;
        const float *s = tmp + (size_t)py->first[oy] * ow;
        for (int ox = 0; ox < ow; ox++) {
            double acc = 0.0;
            for (int k = 0; k < py->count[oy]; k++) acc += wt[k] * s[(size_t)k * ow + ox];
            dst[((size_t)oy * ow + ox) * c] = (float)acc;
        }
    }
}

int wcm_image_resize(const wcm_tensor *in, int oh, int ow, wcm_resize_method method, wcm_tensor *out,
                     wcm_error *err) {
    if (oh <= 0 || ow <= 0 || oh > WCM_IMAGE_MAX_SIDE || ow > WCM_IMAGE_MAX_SIDE)
        return wcm_fail(err, WCM_ERR_ARG, "invalid resize target %dx%d", ow, oh);
    if (method != WCM_RESIZE_AREA && method != WCM_RESIZE_BICUBIC)
        return wcm_fail(err, WCM_ERR_ARG, "unknown resize method %d", (int)method);
    if (!in || !in->data || in->n <= 0 || in->h <= 0 || in->w <= 0 || in->c <= 0)
        return wcm_fail(err, WCM_ERR_ARG, "no image to resize");
    int budget_rc = wcm_check_pixels(in->n, oh, ow, "resize target", err);
    if (budget_rc) return budget_rc;
    resample_plan px = {0}, py = {0};
    int bad = method == WCM_RESIZE_AREA ? plan_area(&px, in->w, ow) || plan_area(&py, in->h, oh)
                                        : plan_bicubic(&px, in->w, ow) || plan_bicubic(&py, in->h, oh);
    wcm_tensor result = {0};
    int rc = bad ? wcm_fail(err, WCM_ERR_NOMEM, "out of memory for resize weights")
                 : wcm_tensor_alloc(&result, in->n, oh, ow, in->c, err);
    if (rc == WCM_OK) {
        const int planes = in->n * in->c, h = in->h, w = in->w, c = in->c;
        int failed = 0;
#pragma omp parallel num_threads(wcm_get_threads()) if (planes > 1)
        {
            int64_t dims[2] = {h, ow};
            size_t tmp_bytes;
            float *tmp = wcm_size_product(dims, 2, sizeof(float), SIZE_MAX, &tmp_bytes) ? NULL : malloc(tmp_bytes);
            if (!tmp) {
#pragma omp atomic write
                failed = 1;
            }
#pragma omp for schedule(dynamic)
            for (int p = 0; p < planes; p++) {
                if (!tmp) continue;
                int b = p / c, ch = p % c;
                resample_plane(in->data + wcm_tensor_idx(in, b, 0, 0, ch), h, w, c, &px, &py, oh, ow, tmp,
                               result.data + wcm_tensor_idx(&result, b, 0, 0, ch));
            }
            free(tmp);
        }
        if (failed) {
            wcm_tensor_free(&result);
            rc = wcm_fail(err, WCM_ERR_NOMEM, "out of memory while resizing");
        }
    }
    plan_free(&px);
    plan_free(&py);
    if (rc == WCM_OK) *out = result;
    return rc;
}

/* -------------------------------------------------------- directory list */

static int compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void wcm_free_paths(char **paths, int count) {
    if (!paths) return;
    for (int i = 0; i < count; i++) free(paths[i]);
    free(paths);
}

/* "dir/name" without doubling a trailing slash. */
static char *join_path(const char *dir, const char *name) {
    size_t dl = strlen(dir), nl = strlen(name);
    int slash = dl > 0 && dir[dl - 1] != '/';
    char *p = malloc(dl + slash + nl + 1);
    if (!p) return NULL;
    memcpy(p, dir, dl);
    if (slash) p[dl] = '/';
    memcpy(p + dl + slash, name, nl + 1);
    return p;
}

int wcm_list_images(const char *dir, char ***paths, int *count, int *skipped, wcm_error *err) {
    *paths = NULL;
    *count = 0;
    if (skipped) *skipped = 0;
    DIR *d = opendir(dir);
    if (!d) return wcm_fail(err, WCM_ERR_IO, "%s: cannot open directory: %s", dir, strerror(errno));
    char **list = NULL;
    int n = 0, cap = 0, others = 0, rc = WCM_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char *full = join_path(dir, e->d_name);
        if (!full) {
            rc = wcm_fail(err, WCM_ERR_NOMEM, "out of memory listing %s", dir);
            break;
        }
        struct stat st;
        if (!wcm_image_is_supported(e->d_name) || stat(full, &st) != 0 || !S_ISREG(st.st_mode)) {
            others++;
            free(full);
            continue;
        }
        if (n == cap) {
            int ncap = cap ? 2 * cap : 64;
            char **grown = realloc(list, sizeof *list * ncap);
            if (!grown) {
                free(full);
                rc = wcm_fail(err, WCM_ERR_NOMEM, "out of memory listing %s", dir);
                break;
            }
            list = grown, cap = ncap;
        }
        list[n++] = full; /* same directory prefix, so sorting full paths sorts the names */
    }
    closedir(d);
    if (rc) {
        wcm_free_paths(list, n);
        return rc;
    }
    if (n > 1) qsort(list, (size_t)n, sizeof *list, compare_names);
    *paths = list;
    *count = n;
    if (skipped) *skipped = others;
    return WCM_OK;
}

/* ------------------------------------------------------------------- grid */

int wcm_image_write_grid(const char *path, const wcm_tensor *batch, int cols, int pad, wcm_error *err) {
    if (!batch || !batch->data || batch->n <= 0 || batch->h <= 0 || batch->w <= 0)
        return wcm_fail(err, WCM_ERR_ARG, "%s: no images for the grid", path);
    if (batch->c != 1)
        return wcm_fail(err, WCM_ERR_SHAPE, "%s: grid needs gray images (1 channel), got %d channels", path, batch->c);
    if (cols <= 0 || pad < 0) return wcm_fail(err, WCM_ERR_ARG, "%s: invalid grid of %d columns, padding %d", path, cols, pad);
    if (format_of(path) != FORMAT_PNG) return wcm_fail(err, WCM_ERR_ARG, "%s: image grids are written as .png", path);
    if (cols > batch->n) cols = batch->n;
    int rows = (batch->n + cols - 1) / cols;
    int64_t gw = (int64_t)cols * (batch->w + pad) + pad, gh = (int64_t)rows * (batch->h + pad) + pad;
    if (gw > WCM_IMAGE_MAX_SIDE || gh > WCM_IMAGE_MAX_SIDE)
        return wcm_fail(err, WCM_ERR_SHAPE, "%s: grid of %lldx%lld pixels is too large", path, (long long)gw,
                        (long long)gh);
    int64_t dims[2] = {gh, gw};
    size_t bytes;
    int rc = wcm_check_pixels(1, gh, gw, path, err);
    if (rc) return rc;
    if (wcm_size_product(dims, 2, sizeof(float), SIZE_MAX, &bytes)) return wcm_fail(err, WCM_ERR_SHAPE, "%s: grid too large", path);
    size_t total = bytes / sizeof(float);
    float *canvas = wcm_alloc(bytes);
    if (!canvas) return wcm_fail(err, WCM_ERR_NOMEM, "%s: out of memory for the grid", path);
    for (size_t i = 0; i < total; i++) canvas[i] = 1.0f; /* white border and empty cells */
    for (int b = 0; b < batch->n; b++) {
        size_t top = (size_t)(b / cols) * (batch->h + pad) + pad, left = (size_t)(b % cols) * (batch->w + pad) + pad;
        for (int y = 0; y < batch->h; y++)
            memcpy(canvas + (top + y) * gw + left, batch->data + wcm_tensor_idx(batch, b, y, 0, 0),
                   (size_t)batch->w * sizeof(float));
    }
    rc = wcm_png_write_gray(path, canvas, (int)gh, (int)gw, (size_t)gw, 8, err);
    wcm_free(canvas);
    return rc;
}

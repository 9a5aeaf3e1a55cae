/* PNG reading (any bit depth and colour type, as gray or RGB) and gray or RGB
 * PNG writing through libpng.
 *
 * libpng reports errors by longjmp. Each setjmp lives in a small function
 * that only touches state through a pointer to a context owned by its
 * caller, so nothing the caller frees afterwards is an indeterminate local. */
#include "image_internal.h"
#include "wcm/io.h"

#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

/* Where libpng's error handler leaves its message before jumping back. */
typedef struct {
    char msg[200];
} png_message;

static void png_error_to_message(png_structp png, png_const_charp text) {
    png_message *m = png_get_error_ptr(png);
    if (m) snprintf(m->msg, sizeof m->msg, "%s", text ? text : "unknown libpng error");
    png_longjmp(png, 1);
}

/* Warnings (bad ancillary chunks, etc.) do not affect the pixels: stay silent. */
static void png_ignore_warning(png_structp png, png_const_charp text) {
    (void)png;
    (void)text;
}

/* ---------------------------------------------------------------- reading */

typedef struct {
    const unsigned char *buf;
    size_t len, pos;
} png_memory_source;

static void png_read_from_memory(png_structp png, png_bytep out, size_t n) {
    png_memory_source *src = png_get_io_ptr(png);
    if (n > src->len - src->pos) png_error(png, "unexpected end of file");
    memcpy(out, src->buf + src->pos, n);
    src->pos += n;
}

typedef struct {
    png_structp png;
    png_infop info;
    png_memory_source src;
    png_message message;
    unsigned char *pixels;   /* decoded rows, malloc'd */
    png_bytep *rows;         /* pointers into pixels, malloc'd */
    int too_large;           /* set when the header asks for more than we accept */
    const char *name;
    wcm_error *err;          /* the pixel-budget message */
    png_uint_32 width, height;
    int channels, bit_depth; /* after transformations */
    size_t rowbytes;
} png_reader;

/* Everything that may longjmp. Returns 0 on success, 1 after a libpng error
 * (message in r->message) and 2 when the image is too large or out of memory. */
static int png_decode_rows(png_reader *r) {
    if (setjmp(png_jmpbuf(r->png))) return 1;
    png_set_read_fn(r->png, &r->src, png_read_from_memory);
    png_read_info(r->png, r->info);
    png_uint_32 w = png_get_image_width(r->png, r->info);
    png_uint_32 h = png_get_image_height(r->png, r->info);
    r->width = w, r->height = h;
    if (w == 0 || h == 0 || w > WCM_IMAGE_MAX_SIDE || h > WCM_IMAGE_MAX_SIDE) {
        r->too_large = 1;
        return 2;
    }
    /* Before any row is allocated or inflated: a few hundred KB can declare 2^28 pixels. */
    if (wcm_check_pixels(1, h, w, r->name, r->err)) {
        r->too_large = 2;
        return 2;
    }
    int color = png_get_color_type(r->png, r->info);
    int depth = png_get_bit_depth(r->png, r->info);
    /* Palette -> RGB (transparency is not expanded: alpha is ignored anyway);
     * 1/2/4-bit gray -> 8-bit with full-range scaling. 16-bit stays 16-bit. */
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(r->png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(r->png);
    png_set_interlace_handling(r->png);
    png_read_update_info(r->png, r->info);
    r->width = w, r->height = h;
    r->channels = png_get_channels(r->png, r->info);
    r->bit_depth = png_get_bit_depth(r->png, r->info);
    r->rowbytes = png_get_rowbytes(r->png, r->info);
    if (r->channels < 1 || r->channels > 4 || (r->bit_depth != 8 && r->bit_depth != 16) ||
        r->rowbytes < (size_t)w * r->channels * (r->bit_depth / 8))
        png_error(r->png, "unexpected pixel layout after conversion");
    int64_t dims[2] = {(int64_t)h, (int64_t)r->rowbytes}, rows[1] = {(int64_t)h};
    size_t pixel_bytes, row_bytes;
    if (wcm_size_product(dims, 2, 1, SIZE_MAX, &pixel_bytes) || wcm_size_product(rows, 1, sizeof *r->rows, SIZE_MAX, &row_bytes)) return 2;
    r->pixels = malloc(pixel_bytes);
    r->rows = malloc(row_bytes);
    if (!r->pixels || !r->rows) return 2;
    for (png_uint_32 y = 0; y < h; y++) r->rows[y] = r->pixels + (size_t)y * r->rowbytes;
    png_read_image(r->png, r->rows);
    return 0;
}

/* Pixels divided by 255 or 65535: gray (channel 0 for gray (+alpha), the
 * mean of R, G, B for colour (+alpha)) when out_c == 1, else R, G, B
 * (gray repeated). Alpha is ignored. */
static void png_rows_to_float(const png_reader *r, float *out, int out_c) {
    const int ch = r->channels, wide = r->bit_depth == 16;
    const double maxval = wide ? 65535.0 : 255.0;
    for (png_uint_32 y = 0; y < r->height; y++) {
        const unsigned char *row = r->pixels + (size_t)y * r->rowbytes;
        for (png_uint_32 x = 0; x < r->width; x++) {
            unsigned v[3];
            int used = ch >= 3 ? 3 : 1;
            for (int k = 0; k < used; k++) {
                size_t s = (size_t)x * ch + k;
                v[k] = wide ? ((unsigned)row[2 * s] << 8) | row[2 * s + 1] : row[s];
            }
            float *o = out + ((size_t)y * r->width + x) * out_c;
            if (out_c == 1) {
                double g = used == 3 ? (double)(v[0] + v[1] + v[2]) / (3.0 * maxval) : v[0] / maxval;
                o[0] = (float)g;
            } else {
                for (int k = 0; k < 3; k++) o[k] = (float)(v[used == 3 ? k : 0] / maxval);
            }
        }
    }
}

int wcm_png_decode(const char *name, const unsigned char *buf, size_t len, int color, wcm_tensor *img, wcm_error *err) {
    memset(img, 0, sizeof *img);
    if (len < 8 || png_sig_cmp((png_const_bytep)buf, 0, 8) != 0)
        return wcm_fail(err, WCM_ERR_FORMAT, "%s: not a PNG file (bad signature)", name);
    png_reader r;
    memset(&r, 0, sizeof r);
    r.src.buf = buf, r.src.len = len;
    r.name = name, r.err = err;
    r.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r.message, png_error_to_message, png_ignore_warning);
    if (!r.png) return wcm_fail(err, WCM_ERR_NOMEM, "%s: out of memory (libpng)", name);
    r.info = png_create_info_struct(r.png);
    int rc = WCM_OK;
    if (!r.info) {
        rc = wcm_fail(err, WCM_ERR_NOMEM, "%s: out of memory (libpng)", name);
    } else {
        int outcome = png_decode_rows(&r);
        if (outcome == 1)
            rc = wcm_fail(err, WCM_ERR_FORMAT, "%s: truncated or corrupt PNG (%s)", name, r.message.msg);
        else if (outcome == 2 && r.too_large == 2)
            rc = WCM_ERR_ARG; /* message already in err */
        else if (outcome == 2 && r.too_large)
            rc = wcm_fail(err, WCM_ERR_FORMAT, "%s: PNG size %ux%u is not supported (at most %d per side)", name,
                          (unsigned)r.width, (unsigned)r.height, WCM_IMAGE_MAX_SIDE);
        else if (outcome == 2)
            rc = wcm_fail(err, WCM_ERR_NOMEM, "%s: out of memory for a %ux%u PNG", name, (unsigned)r.width,
                          (unsigned)r.height);
    }
    const int out_c = color && r.channels >= 3 ? 3 : 1;
    if (rc == WCM_OK) rc = wcm_tensor_alloc(img, 1, (int)r.height, (int)r.width, out_c, err);
    if (rc == WCM_OK) png_rows_to_float(&r, img->data, out_c);
    png_destroy_read_struct(&r.png, r.info ? &r.info : NULL, NULL);
    free(r.rows);
    free(r.pixels);
    return rc;
}

/* ---------------------------------------------------------------- writing */

typedef struct {
    png_structp png;
    png_infop info;
    png_message message;
    FILE *fp;
    const float *pixels;
    int h, w, c, bits; /* c: 1 gray, 3 RGB (interleaved floats) */
    size_t stride;
    unsigned char *row; /* one encoded row, malloc'd by the caller */
} png_writer;

static int png_encode_rows(png_writer *wr) {
    if (setjmp(png_jmpbuf(wr->png))) return 1;
    png_init_io(wr->png, wr->fp);
    png_set_IHDR(wr->png, wr->info, (png_uint_32)wr->w, (png_uint_32)wr->h, wr->bits,
                 wr->c == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(wr->png, wr->info);
    const unsigned maxval = wr->bits == 16 ? 65535u : 255u;
    for (int y = 0; y < wr->h; y++) {
        const float *src = wr->pixels + (size_t)y * wr->stride;
        for (int x = 0; x < wr->w * wr->c; x++) {
            unsigned q = wcm_quantize_unit(src[x], maxval);
            if (wr->bits == 16) {
                wr->row[2 * x] = (unsigned char)(q >> 8); /* PNG samples are big-endian */
                wr->row[2 * x + 1] = (unsigned char)(q & 0xff);
            } else {
                wr->row[x] = (unsigned char)q;
            }
        }
        png_write_row(wr->png, wr->row);
    }
    png_write_end(wr->png, NULL);
    return 0;
}

int wcm_png_write_gray(const char *path, const float *pixels, int h, int w, size_t stride, int bits,
                       wcm_error *err) {
    return wcm_png_write(path, pixels, h, w, 1, stride, bits, err);
}

int wcm_png_write(const char *path, const float *pixels, int h, int w, int c, size_t stride, int bits, wcm_error *err) {
    if (bits != 8 && bits != 16) return wcm_fail(err, WCM_ERR_ARG, "%s: PNG bit depth must be 8 or 16, not %d", path, bits);
    if (h <= 0 || w <= 0 || h > WCM_IMAGE_MAX_SIDE || w > WCM_IMAGE_MAX_SIDE)
        return wcm_fail(err, WCM_ERR_SHAPE, "%s: cannot write a %dx%d PNG", path, w, h);
    png_writer wr;
    memset(&wr, 0, sizeof wr);
    wr.pixels = pixels, wr.h = h, wr.w = w, wr.c = c == 3 ? 3 : 1, wr.bits = bits, wr.stride = stride;
    wr.row = malloc((size_t)w * wr.c * (bits / 8));
    if (!wr.row) return wcm_fail(err, WCM_ERR_NOMEM, "%s: out of memory", path);
    wcm_atomic_file out;
    int rc = wcm_atomic_open(&out, path, err);
    if (rc) {
        free(wr.row);
        return rc;
    }
    wr.fp = out.fp;
    wr.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &wr.message, png_error_to_message, png_ignore_warning);
    if (wr.png) wr.info = png_create_info_struct(wr.png);
    if (!wr.png || !wr.info) rc = wcm_fail(err, WCM_ERR_NOMEM, "%s: out of memory (libpng)", path);
    else if (png_encode_rows(&wr) != 0) rc = wcm_fail(err, WCM_ERR_IO, "%s: cannot write PNG (%s)", path, wr.message.msg);
    if (wr.png) png_destroy_write_struct(&wr.png, wr.info ? &wr.info : NULL);
    free(wr.row);
    if (rc) {
        wcm_atomic_abort(&out);
        return rc;
    }
    return wcm_atomic_commit(&out, err);
}

int wcm_png_decode_gray(const char *name, const unsigned char *buf, size_t len, wcm_tensor *img, wcm_error *err) {
    return wcm_png_decode(name, buf, len, 0, img, err);
}

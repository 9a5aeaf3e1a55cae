/* JPEG reading (baseline and progressive, gray or colour) through
 * libjpeg-turbo, as gray or RGB, and writing (gray or RGB, atomically).
 *
 * libjpeg's default error handler calls exit() and prints warnings; both are
 * replaced. Corrupt-data warnings (for example "Premature end of JPEG file"
 * for a truncated file, where libjpeg would silently pad with gray) are
 * turned into errors. */
#include "image_internal.h"
#include "wcm/io.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

typedef struct {
    struct jpeg_error_mgr pub; /* first member: libjpeg hands us this pointer */
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} jpeg_error_handler;

static void jpeg_error_to_message(j_common_ptr cinfo) {
    jpeg_error_handler *h = (jpeg_error_handler *)cinfo->err;
    h->pub.format_message(cinfo, h->msg);
    longjmp(h->jump, 1);
}

static void jpeg_discard_output(j_common_ptr cinfo) { (void)cinfo; }

/* Warnings that leave the decoded pixels intact (metadata oddities, stray
 * bytes between markers). Every other warning means lost image data. */
static int jpeg_warning_is_harmless(int code) {
    return code == JWRN_EXTRANEOUS_DATA || code == JWRN_JFIF_MAJOR || code == JWRN_ADOBE_XFORM ||
           code == JWRN_BOGUS_ICC;
}

/* level < 0: warning; level >= 0: trace message (ignored). */
static void jpeg_handle_message(j_common_ptr cinfo, int level) {
    if (level >= 0) return;
    jpeg_error_handler *h = (jpeg_error_handler *)cinfo->err;
    h->pub.num_warnings++;
    if (jpeg_warning_is_harmless(h->pub.msg_code)) return;
    h->pub.format_message(cinfo, h->msg);
    longjmp(h->jump, 1);
}

typedef struct {
    struct jpeg_decompress_struct cinfo;
    jpeg_error_handler handler;
    const char *name;
    wcm_error *err;          /* the pixel-budget message */
    int over_budget;
    char detail[96];         /* why a colour space or size is refused */
    unsigned char *pixels;   /* output_height rows of output_width * components, malloc'd */
    int width, height, components;
} jpeg_reader;

/* Everything that may longjmp. 0: decoded; 1: libjpeg error (handler.msg);
 * 2: refused (detail); 3: out of memory. */
static int jpeg_decode_rows(jpeg_reader *r, const unsigned char *buf, size_t len) {
    if (setjmp(r->handler.jump)) return 1;
    jpeg_create_decompress(&r->cinfo);
    jpeg_mem_src(&r->cinfo, buf, (unsigned long)len);
    jpeg_read_header(&r->cinfo, TRUE);
    /* Before jpeg_start_decompress, which allocates whole-image coefficient
     * buffers for progressive files. */
    if (r->cinfo.image_width == 0 || r->cinfo.image_height == 0 || r->cinfo.image_width > WCM_IMAGE_MAX_SIDE ||
        r->cinfo.image_height > WCM_IMAGE_MAX_SIDE) {
        snprintf(r->detail, sizeof r->detail, "JPEG of %ux%u is not supported", (unsigned)r->cinfo.image_width,
                 (unsigned)r->cinfo.image_height);
        return 2;
    }
    if (wcm_check_pixels(1, r->cinfo.image_height, r->cinfo.image_width, r->name, r->err)) {
        r->over_budget = 1;
        return 2;
    }
    J_COLOR_SPACE space = r->cinfo.jpeg_color_space;
    if (space == JCS_GRAYSCALE) {
        r->cinfo.out_color_space = JCS_GRAYSCALE;
    } else if (space == JCS_YCbCr || space == JCS_RGB) {
        r->cinfo.out_color_space = JCS_RGB;
    } else {
        snprintf(r->detail, sizeof r->detail, "%s JPEG is not supported (need gray or RGB)",
                 space == JCS_CMYK || space == JCS_YCCK ? "CMYK" : "this colour space of");
        return 2;
    }
    /* libjpeg's accurate integer IDCT and smooth chroma upsampling, as Pillow uses. */
    r->cinfo.dct_method = JDCT_ISLOW;
    r->cinfo.do_fancy_upsampling = TRUE;
    jpeg_start_decompress(&r->cinfo);
    size_t w = r->cinfo.output_width, h = r->cinfo.output_height;
    int comps = r->cinfo.output_components;
    if (w == 0 || h == 0 || w > WCM_IMAGE_MAX_SIDE || h > WCM_IMAGE_MAX_SIDE || (comps != 1 && comps != 3)) {
        snprintf(r->detail, sizeof r->detail, "JPEG of %zux%zu with %d components is not supported", w, h, comps);
        return 2;
    }
    r->width = (int)w, r->height = (int)h, r->components = comps;
    int64_t dims[3] = {(int64_t)h, (int64_t)w, comps};
    size_t bytes;
    if (wcm_size_product(dims, 3, 1, SIZE_MAX, &bytes)) return 3;
    r->pixels = malloc(bytes);
    if (!r->pixels) return 3;
    while (r->cinfo.output_scanline < r->cinfo.output_height) {
        JSAMPROW row = r->pixels + (size_t)r->cinfo.output_scanline * w * comps;
        if (jpeg_read_scanlines(&r->cinfo, &row, 1) != 1) ERREXIT(&r->cinfo, JERR_INPUT_EMPTY);
    }
    jpeg_finish_decompress(&r->cinfo);
    return 0;
}

int wcm_jpeg_decode(const char *name, const unsigned char *buf, size_t len, int color, wcm_tensor *img, wcm_error *err) {
    memset(img, 0, sizeof *img);
    if (len < 2 || buf[0] != 0xFF || buf[1] != 0xD8) /* SOI marker */
        return wcm_fail(err, WCM_ERR_FORMAT, "%s: not a JPEG file (bad signature)", name);
    jpeg_reader *r = calloc(1, sizeof *r);
    if (!r) return wcm_fail(err, WCM_ERR_NOMEM, "%s: out of memory", name);
    r->cinfo.err = jpeg_std_error(&r->handler.pub);
    r->handler.pub.error_exit = jpeg_error_to_message;
    r->handler.pub.emit_message = jpeg_handle_message;
    r->handler.pub.output_message = jpeg_discard_output;
    r->name = name, r->err = err;
    int rc = WCM_OK;
    switch (jpeg_decode_rows(r, buf, len)) {
    case 0:
        break;
    case 1:
        rc = wcm_fail(err, WCM_ERR_FORMAT, "%s: truncated or corrupt JPEG (%s)", name, r->handler.msg);
        break;
    case 2:
        rc = r->over_budget ? WCM_ERR_ARG : wcm_fail(err, WCM_ERR_FORMAT, "%s: %s", name, r->detail);
        break;
    default:
        rc = wcm_fail(err, WCM_ERR_NOMEM, "%s: out of memory for a %dx%d JPEG", name, r->width, r->height);
        break;
    }
    const int out_c = color && r->components == 3 ? 3 : 1;
    if (rc == WCM_OK) rc = wcm_tensor_alloc(img, 1, r->height, r->width, out_c, err);
    if (rc == WCM_OK) {
        size_t n = (size_t)r->width * r->height;
        const unsigned char *p = r->pixels;
        if (r->components == 1 || out_c == 3) {
            for (size_t i = 0; i < n * (size_t)out_c; i++) img->data[i] = (float)(p[i] / 255.0);
        } else if (r->components == 1) {
            for (size_t i = 0; i < n; i++) img->data[i] = (float)(p[i] / 255.0);
        } else {
            for (size_t i = 0; i < n; i++)
                img->data[i] = (float)((double)(p[3 * i] + p[3 * i + 1] + p[3 * i + 2]) / (3.0 * 255.0));
        }
    }
    jpeg_destroy_decompress(&r->cinfo); /* safe on a zeroed struct: it checks cinfo->mem */
    free(r->pixels);
    free(r);
    return rc;
}

int wcm_jpeg_decode_gray(const char *name, const unsigned char *buf, size_t len, wcm_tensor *img, wcm_error *err) {
    return wcm_jpeg_decode(name, buf, len, 0, img, err);
}

/* ---------------------------------------------------------------- writing */

typedef struct {
    struct jpeg_compress_struct cinfo;
    jpeg_error_handler handler;
    FILE *fp;
    const float *pixels;
    int h, w, c, quality;
    unsigned char *row;
} jpeg_writer;

static int jpeg_encode_rows(jpeg_writer *wr) {
    if (setjmp(wr->handler.jump)) return 1;
    jpeg_create_compress(&wr->cinfo);
    jpeg_stdio_dest(&wr->cinfo, wr->fp);
    wr->cinfo.image_width = (JDIMENSION)wr->w;
    wr->cinfo.image_height = (JDIMENSION)wr->h;
    wr->cinfo.input_components = wr->c;
    wr->cinfo.in_color_space = wr->c == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&wr->cinfo);
    jpeg_set_quality(&wr->cinfo, wr->quality, TRUE);
    jpeg_start_compress(&wr->cinfo, TRUE);
    for (int y = 0; y < wr->h; y++) {
        const float *src = wr->pixels + (size_t)y * wr->w * wr->c;
        for (int x = 0; x < wr->w * wr->c; x++) wr->row[x] = (unsigned char)wcm_quantize_unit(src[x], 255u);
        JSAMPROW row = wr->row;
        jpeg_write_scanlines(&wr->cinfo, &row, 1);
    }
    jpeg_finish_compress(&wr->cinfo);
    return 0;
}

int wcm_jpeg_write(const char *path, const float *pixels, int h, int w, int c, int quality, wcm_error *err) {
    if (h <= 0 || w <= 0 || h > 65500 || w > 65500 || (c != 1 && c != 3))
        return wcm_fail(err, WCM_ERR_SHAPE, "%s: cannot write a %dx%d JPEG with %d channels", path, w, h, c);
    jpeg_writer *wr = calloc(1, sizeof *wr);
    if (!wr) return wcm_fail(err, WCM_ERR_NOMEM, "%s: out of memory", path);
    wr->pixels = pixels, wr->h = h, wr->w = w, wr->c = c, wr->quality = quality;
    wr->row = malloc((size_t)w * c);
    wcm_atomic_file out;
    int rc = wr->row ? wcm_atomic_open(&out, path, err) : wcm_fail(err, WCM_ERR_NOMEM, "%s: out of memory", path);
    if (!rc) {
        wr->fp = out.fp;
        wr->cinfo.err = jpeg_std_error(&wr->handler.pub);
        wr->handler.pub.error_exit = jpeg_error_to_message;
        wr->handler.pub.output_message = jpeg_discard_output;
        if (jpeg_encode_rows(wr) != 0) rc = wcm_fail(err, WCM_ERR_IO, "%s: cannot write JPEG (%s)", path, wr->handler.msg);
        jpeg_destroy_compress(&wr->cinfo);
        if (rc) wcm_atomic_abort(&out);
        else rc = wcm_atomic_commit(&out, err);
    }
    free(wr->row);
    free(wr);
    return rc;
}

/* Test helper: builders for crafted input files (valid and hostile), so the
 * tests generate what they feed wcm instead of keeping binary blobs:
 * byte buffers, stored zip archives (optionally zip64), the pickle torch.save
 * writes for a state_dict, whole .pt checkpoints, safetensors files, .npy
 * arrays, gray PNGs of any declared size (streamed through zlib, so a
 * 2^28-pixel image costs a few hundred KB) and gray JPEGs. */
#ifndef WCM_TEST_CRAFT_H
#define WCM_TEST_CRAFT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <zlib.h>

#include "wcm/tensor.h"

/* ---- byte buffers ---------------------------------------------------------- */

typedef struct {
    unsigned char *data;
    size_t len, cap;
} bytes;

static inline void b_put(bytes *b, const void *p, size_t n) {
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->data = realloc(b->data, b->cap);
        if (!b->data) abort();
    }
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
}
static inline void b_u8(bytes *b, unsigned v) {
    unsigned char c = (unsigned char)v;
    b_put(b, &c, 1);
}
static inline void b_le(bytes *b, uint64_t v, int n) {
    for (int i = 0; i < n; i++) b_u8(b, (unsigned)(v >> (8 * i)) & 0xFF);
}
static inline void b_be32(bytes *b, uint32_t v) {
    for (int i = 3; i >= 0; i--) b_u8(b, (v >> (8 * i)) & 0xFF);
}
static inline void b_str(bytes *b, const char *s) { b_put(b, s, strlen(s)); }

static inline int craft_write(const char *path, const void *data, size_t len) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    size_t w = len ? fwrite(data, 1, len, fp) : 0;
    return fclose(fp) == 0 && w == len ? 0 : -1;
}

/* Bitwise CRC-32, independent of the library's table version. */
static inline uint32_t ref_crc32(const unsigned char *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
    }
    return ~c;
}

/* ---- zip writer (stored entries; optional zip64 records) ------------------- */

typedef struct {
    const char *name;
    const unsigned char *data;
    size_t len;
} zip_item;

static inline bytes make_zip(const zip_item *items, int n, int zip64, unsigned method) {
    bytes z = {0}, cd = {0};
    for (int i = 0; i < n; i++) {
        uint32_t crc = ref_crc32(items[i].data, items[i].len);
        uint64_t offset = z.len;
        b_le(&z, 0x04034b50, 4);
        b_le(&z, 20, 2), b_le(&z, 0, 2), b_le(&z, method, 2), b_le(&z, 0, 4);
        b_le(&z, crc, 4), b_le(&z, items[i].len, 4), b_le(&z, items[i].len, 4);
        b_le(&z, strlen(items[i].name), 2), b_le(&z, 3, 2);
        b_str(&z, items[i].name);
        b_str(&z, "pad"); /* an extra field the reader must skip */
        b_put(&z, items[i].data, items[i].len);

        b_le(&cd, 0x02014b50, 4);
        b_le(&cd, 45, 2), b_le(&cd, 45, 2), b_le(&cd, 0, 2), b_le(&cd, method, 2), b_le(&cd, 0, 4);
        b_le(&cd, crc, 4);
        b_le(&cd, zip64 ? 0xFFFFFFFFu : items[i].len, 4), b_le(&cd, zip64 ? 0xFFFFFFFFu : items[i].len, 4);
        b_le(&cd, strlen(items[i].name), 2), b_le(&cd, zip64 ? 28 : 0, 2), b_le(&cd, 0, 2);
        b_le(&cd, 0, 2), b_le(&cd, 0, 2), b_le(&cd, 0, 4);
        b_le(&cd, zip64 ? 0xFFFFFFFFu : offset, 4);
        b_str(&cd, items[i].name);
        if (zip64) {
            b_le(&cd, 1, 2), b_le(&cd, 24, 2);
            b_le(&cd, items[i].len, 8), b_le(&cd, items[i].len, 8), b_le(&cd, offset, 8);
        }
    }
    uint64_t cd_offset = z.len;
    b_put(&z, cd.data, cd.len);
    if (zip64) {
        uint64_t eocd64 = z.len;
        b_le(&z, 0x06064b50, 4), b_le(&z, 44, 8), b_le(&z, 45, 2), b_le(&z, 45, 2), b_le(&z, 0, 4), b_le(&z, 0, 4);
        b_le(&z, (uint64_t)n, 8), b_le(&z, (uint64_t)n, 8), b_le(&z, cd.len, 8), b_le(&z, cd_offset, 8);
        b_le(&z, 0x07064b50, 4), b_le(&z, 0, 4), b_le(&z, eocd64, 8), b_le(&z, 1, 4);
    }
    b_le(&z, 0x06054b50, 4), b_le(&z, 0, 2), b_le(&z, 0, 2);
    b_le(&z, zip64 ? 0xFFFF : (uint64_t)n, 2), b_le(&z, zip64 ? 0xFFFF : (uint64_t)n, 2);
    b_le(&z, zip64 ? 0xFFFFFFFFu : cd.len, 4), b_le(&z, zip64 ? 0xFFFFFFFFu : cd_offset, 4), b_le(&z, 0, 2);
    free(cd.data);
    return z;
}

/* ---- pickle writer: what torch.save emits for a state_dict ---------------- */

typedef struct {
    const char *name, *key, *storage_type;
    int64_t numel, offset;
    int ndim;
    int64_t size[WCM_MAX_DIMS], stride[WCM_MAX_DIMS];
} pk_tensor;

static inline void pk_int(bytes *b, int64_t v) {
    if (v >= 0 && v < 256) b_u8(b, 'K'), b_u8(b, (unsigned)v);
    else if (v >= 0 && v < 65536) b_u8(b, 'M'), b_le(b, (uint64_t)v, 2);
    else b_u8(b, 'J'), b_le(b, (uint64_t)v, 4);
}
static inline void pk_unicode(bytes *b, const char *s) {
    b_u8(b, 'X');
    b_le(b, strlen(s), 4);
    b_str(b, s);
}
static inline void pk_tuple(bytes *b, const int64_t *v, int n, int short_forms) {
    if (n == 0) {
        b_u8(b, ')');
        return;
    }
    if (short_forms && n >= 1 && n <= 3) {
        for (int i = 0; i < n; i++) pk_int(b, v[i]);
        b_u8(b, 0x84 + n); /* TUPLE1..3 */
        return;
    }
    b_u8(b, '(');
    for (int i = 0; i < n; i++) pk_int(b, v[i]);
    b_u8(b, 't');
}

static inline bytes make_pickle(const pk_tensor *t, int n, int short_tuples) {
    bytes b = {0};
    b_u8(&b, 0x80), b_u8(&b, 2);
    b_str(&b, "ccollections\nOrderedDict\nq"), b_u8(&b, 0); /* memo 0 = OrderedDict */
    b_str(&b, ")Rq"), b_u8(&b, 1), b_u8(&b, '(');
    for (int i = 0; i < n; i++) {
        pk_unicode(&b, t[i].name);
        b_str(&b, "ctorch._utils\n_rebuild_tensor_v2\n((");
        pk_unicode(&b, "storage");
        b_str(&b, "ctorch\n"), b_str(&b, t[i].storage_type ? t[i].storage_type : "FloatStorage"), b_str(&b, "\n");
        pk_unicode(&b, t[i].key);
        pk_unicode(&b, "cpu");
        pk_int(&b, t[i].numel);
        b_str(&b, "tQ");
        pk_int(&b, t[i].offset);
        pk_tuple(&b, t[i].size, t[i].ndim, short_tuples);
        pk_tuple(&b, t[i].stride, t[i].ndim, short_tuples);
        b_u8(&b, 0x89), b_str(&b, "h"), b_u8(&b, 0), b_str(&b, ")RtR");
    }
    b_u8(&b, 'u');
    /* state for BUILD: {'_metadata': OrderedDict({'': {'version': 1}})} */
    b_u8(&b, '}'), pk_unicode(&b, "_metadata"), b_str(&b, "h"), b_u8(&b, 0), b_str(&b, ")R(");
    pk_unicode(&b, ""), b_u8(&b, '}'), pk_unicode(&b, "version"), pk_int(&b, 1), b_str(&b, "sus");
    b_str(&b, "b.");
    return b;
}

/* A checkpoint: storages are float arrays named by key. */
typedef struct {
    const char *key;
    const float *data;
    size_t count;
} pk_storage;

static inline bytes make_checkpoint(const char *top, const pk_tensor *t, int nt, const pk_storage *s, int ns, int zip64,
                                    int short_tuples) {
    bytes pkl = make_pickle(t, nt, short_tuples);
    zip_item *items = calloc((size_t)ns + 2, sizeof *items);
    char **names = calloc((size_t)ns + 2, sizeof *names);
    if (!items || !names) abort();
    int n = 0;
    size_t top_len = strlen(top) + 64;
    names[n] = malloc(top_len);
    snprintf(names[n], top_len, "%s/data.pkl", top);
    items[n] = (zip_item){names[n], pkl.data, pkl.len}, n++;
    for (int i = 0; i < ns; i++) {
        size_t len = top_len + strlen(s[i].key);
        names[n] = malloc(len);
        snprintf(names[n], len, "%s/data/%s", top, s[i].key);
        items[n] = (zip_item){names[n], (const unsigned char *)s[i].data, s[i].count * sizeof(float)}, n++;
    }
    names[n] = malloc(top_len);
    snprintf(names[n], top_len, "%s/version", top);
    items[n] = (zip_item){names[n], (const unsigned char *)"3\n", 2}, n++;
    bytes z = make_zip(items, n, zip64, 0);
    for (int i = 0; i < n; i++) free(names[i]);
    free(names), free(items);
    free(pkl.data);
    return z;
}

/* ---- safetensors, npy ------------------------------------------------------ */

static inline bytes safetensors_bytes(const char *header, const void *data, size_t data_len) {
    bytes b = {0};
    b_le(&b, strlen(header), 8);
    b_str(&b, header);
    b_put(&b, data, data_len);
    return b;
}

/* A version-1 .npy file with the header text given verbatim (padded with
 * spaces and a newline to a multiple of 64) followed by `data`. */
static inline bytes npy_bytes(const char *header, const void *data, size_t data_len) {
    bytes b = {0};
    size_t n = strlen(header), total = 10 + n + 1, pad = (64 - total % 64) % 64;
    b_put(&b, "\x93NUMPY\x01\x00", 8);
    b_le(&b, n + pad + 1, 2);
    b_str(&b, header);
    for (size_t i = 0; i < pad; i++) b_u8(&b, ' ');
    b_u8(&b, '\n');
    b_put(&b, data, data_len);
    return b;
}

/* A float32 .npy of shape (h, w), every value `value`. */
static inline bytes npy_filled(int h, int w, float value) {
    char header[128];
    snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", h, w);
    size_t n = (size_t)h * (size_t)w;
    float *data = malloc(n * sizeof *data + 1);
    if (!data) abort();
    for (size_t i = 0; i < n; i++) data[i] = value;
    bytes b = npy_bytes(header, data, n * sizeof *data);
    free(data);
    return b;
}

/* ---- PNG, JPEG ------------------------------------------------------------- */

static inline void png_chunk(bytes *b, const char *type, const unsigned char *data, size_t len) {
    b_be32(b, (uint32_t)len);
    size_t at = b->len;
    b_put(b, type, 4);
    b_put(b, data, len);
    b_be32(b, ref_crc32(b->data + at, len + 4));
}

/* An 8-bit gray PNG of w x h pixels, every pixel `value`, compressed row by
 * row through zlib (a constant image of 2^28 pixels is about 260 KB). */
static inline bytes make_gray_png(uint32_t w, uint32_t h, unsigned value) {
    bytes b = {0}, idat = {0};
    b_put(&b, "\x89PNG\r\n\x1a\n", 8);
    bytes ihdr = {0};
    b_be32(&ihdr, w), b_be32(&ihdr, h);
    b_put(&ihdr, "\x08\x00\x00\x00\x00", 5); /* depth 8, gray, deflate, no filter, no interlace */
    png_chunk(&b, "IHDR", ihdr.data, ihdr.len);
    free(ihdr.data);
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit(&z, 9) != Z_OK) abort();
    unsigned char *row = malloc((size_t)w + 1), out[65536];
    if (!row) abort();
    row[0] = 0; /* filter type: none */
    memset(row + 1, (int)value, w);
    for (uint32_t y = 0; y <= h; y++) {
        z.next_in = row, z.avail_in = y < h ? w + 1 : 0;
        int flush = y < h ? Z_NO_FLUSH : Z_FINISH, rc;
        do {
            z.next_out = out, z.avail_out = sizeof out;
            rc = deflate(&z, flush);
            b_put(&idat, out, sizeof out - z.avail_out);
        } while (z.avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
    }
    deflateEnd(&z);
    free(row);
    png_chunk(&b, "IDAT", idat.data, idat.len);
    free(idat.data);
    png_chunk(&b, "IEND", NULL, 0);
    return b;
}

/* A baseline gray JPEG of w x h pixels, every pixel `value`. */
static inline bytes make_gray_jpeg(int w, int h, unsigned value) {
    unsigned char *out = NULL;
    unsigned long out_len = 0;
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &out, &out_len);
    c.image_width = (JDIMENSION)w, c.image_height = (JDIMENSION)h, c.input_components = 1;
    c.in_color_space = JCS_GRAYSCALE;
    jpeg_set_defaults(&c);
    jpeg_start_compress(&c, TRUE);
    unsigned char *row = malloc((size_t)w);
    if (!row) abort();
    memset(row, (int)value, (size_t)w);
    while (c.next_scanline < c.image_height) jpeg_write_scanlines(&c, &row, 1);
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    free(row);
    bytes b = {0};
    b_put(&b, out, out_len);
    free(out);
    return b;
}

#endif

/* Tensors, named array lists (with a hashed metadata index), and .npy
 * reading/writing. */
#include "sysrand.h"
#include "wcm/backend.h"
#include "wcm/io.h"
#include "wcm/tensor.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int wcm_tensor_alloc(wcm_tensor *t, int n, int h, int w, int c, wcm_error *err) {
    memset(t, 0, sizeof *t);
    if (n <= 0 || h <= 0 || w <= 0 || c <= 0)
        return wcm_fail(err, WCM_ERR_SHAPE, "invalid tensor shape %dx%dx%dx%d", n, h, w, c);
    int64_t dims[4] = {n, h, w, c};
    size_t bytes;
    if (wcm_size_product(dims, 4, sizeof(float), SIZE_MAX, &bytes))
        return wcm_fail(err, WCM_ERR_NOMEM, "a %dx%dx%dx%d tensor does not fit in memory (size overflows)", n, h, w, c);
    t->data = wcm_calloc(bytes);
    if (!t->data) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory for a %dx%dx%dx%d tensor", n, h, w, c);
    t->n = n, t->h = h, t->w = w, t->c = c;
    return WCM_OK;
}

void wcm_tensor_free(wcm_tensor *t) {
    if (!t) return;
    if (t->buffer) wcm_buffer_free(t->buffer); /* a backend's memory (wcm_tensor_alloc_on) */
    else wcm_free(t->data);
    memset(t, 0, sizeof *t);
}

size_t wcm_tensor_count(const wcm_tensor *t) { return (size_t)t->n * t->h * t->w * t->c; }

int wcm_tensor_copy(wcm_tensor *dst, const wcm_tensor *src, wcm_error *err) {
    int rc = wcm_tensor_alloc(dst, src->n, src->h, src->w, src->c, err);
    if (rc) return rc;
    memcpy(dst->data, src->data, wcm_tensor_count(src) * sizeof(float));
    return WCM_OK;
}

int wcm_tensor_all_finite(const wcm_tensor *t) {
    size_t n = wcm_tensor_count(t);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(t->data[i])) return 0;
    return 1;
}

size_t wcm_tensor_first_outside(const wcm_tensor *t, float lo, float hi) {
    size_t n = wcm_tensor_count(t);
    for (size_t i = 0; i < n; i++)
        if (!(t->data[i] >= lo && t->data[i] <= hi)) return i;
    return n;
}

int64_t wcm_array_count(const wcm_array *a) {
    size_t n;
    if (a->ndim < 0 || a->ndim > WCM_MAX_DIMS || wcm_size_product(a->shape, a->ndim, 1, INT64_MAX, &n)) return -1;
    return (int64_t)n;
}

void wcm_array_free(wcm_array *a) {
    if (!a) return;
    free(a->name);
    free(a->data);
    memset(a, 0, sizeof *a);
}

void wcm_array_list_init(wcm_array_list *l) { memset(l, 0, sizeof *l); }

void wcm_array_list_free(wcm_array_list *l) {
    if (!l) return;
    for (int i = 0; i < l->count; i++) wcm_array_free(&l->items[i]);
    for (int i = 0; i < l->meta_count; i++) {
        free(l->meta_keys[i]);
        free(l->meta_vals[i]);
    }
    free(l->items);
    free(l->meta_keys);
    free(l->meta_vals);
    free(l->meta_index);
    memset(l, 0, sizeof *l);
}

int wcm_array_list_push(wcm_array_list *l, wcm_array *a, wcm_error *err) {
    if (l->count == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        wcm_array *items = realloc(l->items, (size_t)cap * sizeof *items);
        if (!items) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
        l->items = items;
        l->cap = cap;
    }
    l->items[l->count++] = *a;
    memset(a, 0, sizeof *a);
    return WCM_OK;
}

const wcm_array *wcm_array_list_find(const wcm_array_list *l, const char *name) {
    for (int i = 0; i < l->count; i++)
        if (l->items[i].name && strcmp(l->items[i].name, name) == 0) return &l->items[i];
    return NULL;
}

static char *dup_string(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* ---- metadata index -------------------------------------------------------
 * Open addressing over meta indices (+1; 0 is an empty slot), at most half
 * full, so setting and getting a key cost O(1) and loading n metadata pairs
 * costs O(n). Keys are hashed with SipHash-1-3 under a random key per list:
 * a crafted file cannot make its keys collide. */

static uint64_t rotl64(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

#define SIPROUND                                                                                              \
    (v0 += v1, v1 = rotl64(v1, 13), v1 ^= v0, v0 = rotl64(v0, 32), v2 += v3, v3 = rotl64(v3, 16), v3 ^= v2, \
     v0 += v3, v3 = rotl64(v3, 21), v3 ^= v0, v2 += v1, v1 = rotl64(v1, 17), v1 ^= v2, v2 = rotl64(v2, 32))

static uint64_t siphash13(const char *text, const uint64_t key[2]) {
    const unsigned char *m = (const unsigned char *)text;
    size_t n = strlen(text), i = 0;
    uint64_t v0 = key[0] ^ 0x736f6d6570736575ULL, v1 = key[1] ^ 0x646f72616e646f6dULL;
    uint64_t v2 = key[0] ^ 0x6c7967656e657261ULL, v3 = key[1] ^ 0x7465646279746573ULL;
    for (; i + 8 <= n; i += 8) {
        uint64_t w = 0;
        for (int k = 7; k >= 0; k--) w = (w << 8) | m[i + k];
        v3 ^= w, SIPROUND, v0 ^= w;
    }
    uint64_t last = (uint64_t)n << 56;
    for (size_t k = 0; i + k < n; k++) last |= (uint64_t)m[i + k] << (8 * k);
    v3 ^= last, SIPROUND, v0 ^= last;
    v2 ^= 0xff, SIPROUND, SIPROUND, SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* Slot of `key`, or of the empty slot where it would go. */
static int meta_slot(const wcm_array_list *l, const char *key) {
    unsigned mask = (unsigned)l->meta_index_cap - 1, at = (unsigned)siphash13(key, l->meta_seed) & mask;
    while (l->meta_index[at] && strcmp(l->meta_keys[l->meta_index[at] - 1], key) != 0) at = (at + 1) & mask;
    return (int)at;
}

static int meta_index_grow(wcm_array_list *l) {
    if (l->meta_index_cap == 0) l->meta_seed[0] = wcm_system_random(), l->meta_seed[1] = wcm_system_random();
    if (l->meta_index_cap > (1 << 29)) return WCM_ERR_NOMEM;
    int cap = l->meta_index_cap ? 2 * l->meta_index_cap : 16;
    int *index = calloc((size_t)cap, sizeof *index);
    if (!index) return WCM_ERR_NOMEM;
    free(l->meta_index);
    l->meta_index = index;
    l->meta_index_cap = cap;
    for (int i = 0; i < l->meta_count; i++) l->meta_index[meta_slot(l, l->meta_keys[i])] = i + 1;
    return WCM_OK;
}

int wcm_array_list_set_meta(wcm_array_list *l, const char *key, const char *val, wcm_error *err) {
    if (2 * (l->meta_count + 1) > l->meta_index_cap && meta_index_grow(l))
        return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    int slot = meta_slot(l, key);
    if (l->meta_index[slot]) {
        char *v = dup_string(val);
        if (!v) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
        free(l->meta_vals[l->meta_index[slot] - 1]);
        l->meta_vals[l->meta_index[slot] - 1] = v;
        return WCM_OK;
    }
    if (l->meta_count == l->meta_cap) {
        int cap = l->meta_cap ? 2 * l->meta_cap : 8;
        char **k = realloc(l->meta_keys, (size_t)cap * sizeof *k);
        if (!k) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
        l->meta_keys = k;
        char **v = realloc(l->meta_vals, (size_t)cap * sizeof *v);
        if (!v) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
        l->meta_vals = v;
        l->meta_cap = cap;
    }
    char *k = dup_string(key), *v = dup_string(val);
    if (!k || !v) {
        free(k);
        free(v);
        return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    }
    l->meta_keys[l->meta_count] = k;
    l->meta_vals[l->meta_count] = v;
    l->meta_count++;
    l->meta_index[slot] = l->meta_count;
    return WCM_OK;
}

const char *wcm_array_list_get_meta(const wcm_array_list *l, const char *key) {
    if (!l->meta_index_cap) return NULL;
    int slot = meta_slot(l, key);
    return l->meta_index[slot] ? l->meta_vals[l->meta_index[slot] - 1] : NULL;
}

/* ---- .npy ---------------------------------------------------------------
 * Format: "\x93NUMPY", major, minor, header length (u16 for v1, u32 for v2/3),
 * then a Python dict literal {'descr': '<f4', 'fortran_order': False,
 * 'shape': (..), } padded with spaces and a newline. The literal is read by
 * a small tokenizer (never by searching for a key, which would find keys
 * inside strings): exactly those three keys, each once, as numpy requires. */

typedef struct {
    const char *p, *end;
} npy_cursor;

static void npy_skip_space(npy_cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static int npy_expect(npy_cursor *c, char ch) {
    npy_skip_space(c);
    if (c->p >= c->end || *c->p != ch) return 0;
    c->p++;
    return 1;
}

/* A quoted string without escapes ('...' or "..."), copied into out. */
static int npy_string(npy_cursor *c, char *out, size_t cap) {
    npy_skip_space(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return 0;
    char quote = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != quote) {
        if (*c->p == '\\' || n + 1 >= cap) return 0;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end) return 0;
    c->p++;
    out[n] = 0;
    return 1;
}

static int npy_word(npy_cursor *c, const char *word) {
    npy_skip_space(c);
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0) return 0;
    c->p += n;
    return 1;
}

/* (d0, d1, ...) with an optional trailing comma; dimensions < 2^40. */
static int npy_shape(npy_cursor *c, wcm_array *out, wcm_error *err) {
    if (!npy_expect(c, '(')) return wcm_fail(err, WCM_ERR_FORMAT, "malformed .npy shape");
    int ndim = 0;
    for (;;) {
        npy_skip_space(c);
        if (c->p < c->end && *c->p == ')') break;
        int64_t v = 0;
        if (c->p >= c->end || *c->p < '0' || *c->p > '9') return wcm_fail(err, WCM_ERR_FORMAT, "malformed .npy shape");
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            v = v * 10 + (*c->p++ - '0');
            if (v > ((int64_t)1 << 40)) return wcm_fail(err, WCM_ERR_FORMAT, ".npy dimension too large");
        }
        if (c->p < c->end && *c->p == 'L') c->p++; /* Python 2 long */
        if (ndim == WCM_MAX_DIMS)
            return wcm_fail(err, WCM_ERR_FORMAT, ".npy array has more than %d dimensions", WCM_MAX_DIMS);
        out->shape[ndim++] = v;
        npy_skip_space(c);
        if (c->p < c->end && *c->p == ',') c->p++;
        else if (c->p >= c->end || *c->p != ')') return wcm_fail(err, WCM_ERR_FORMAT, "malformed .npy shape");
    }
    c->p++;
    out->ndim = ndim;
    return WCM_OK;
}

/* Parses the header dict: element size (4 or 8) and the shape into out. */
static int npy_header(const char *text, size_t len, wcm_array *out, int *elem, wcm_error *err) {
    npy_cursor c = {text, text + len};
    enum { KEY_DESCR = 1, KEY_FORTRAN = 2, KEY_SHAPE = 4 };
    int seen = 0;
    if (!npy_expect(&c, '{')) return wcm_fail(err, WCM_ERR_FORMAT, "malformed .npy header (not a dict)");
    for (;;) {
        npy_skip_space(&c);
        if (c.p < c.end && *c.p == '}') break;
        char key[32], value[32];
        if (!npy_string(&c, key, sizeof key) || !npy_expect(&c, ':'))
            return wcm_fail(err, WCM_ERR_FORMAT, "malformed .npy header (key expected)");
        int which = !strcmp(key, "descr") ? KEY_DESCR : !strcmp(key, "fortran_order") ? KEY_FORTRAN
                  : !strcmp(key, "shape")   ? KEY_SHAPE : 0;
        if (!which) return wcm_fail(err, WCM_ERR_FORMAT, ".npy header has an unexpected key '%s'", key);
        if (seen & which) return wcm_fail(err, WCM_ERR_FORMAT, ".npy header repeats the key '%s'", key);
        seen |= which;
        if (which == KEY_DESCR) {
            if (!npy_string(&c, value, sizeof value)) return wcm_fail(err, WCM_ERR_FORMAT, "malformed .npy descr");
            if (!strcmp(value, "<f4")) *elem = 4;
            else if (!strcmp(value, "<f8")) *elem = 8;
            else
                return wcm_fail(err, WCM_ERR_FORMAT,
                                "unsupported .npy dtype '%s' (need little-endian float32 or float64)", value);
        } else if (which == KEY_FORTRAN) {
            if (npy_word(&c, "True")) return wcm_fail(err, WCM_ERR_FORMAT, ".npy array is in Fortran order (need C order)");
            if (!npy_word(&c, "False")) return wcm_fail(err, WCM_ERR_FORMAT, "malformed .npy fortran_order");
        } else {
            int rc = npy_shape(&c, out, err);
            if (rc) return rc;
        }
        npy_skip_space(&c);
        if (c.p < c.end && *c.p == ',') c.p++;
        else if (c.p >= c.end || *c.p != '}') return wcm_fail(err, WCM_ERR_FORMAT, "malformed .npy header (',' or '}' expected)");
    }
    c.p++;
    npy_skip_space(&c);
    if (c.p != c.end) return wcm_fail(err, WCM_ERR_FORMAT, "malformed .npy header (text after the dict)");
    if (seen != (KEY_DESCR | KEY_FORTRAN | KEY_SHAPE))
        return wcm_fail(err, WCM_ERR_FORMAT, ".npy header lacks descr, fortran_order or shape");
    return WCM_OK;
}

int wcm_npy_parse(const unsigned char *buf, size_t len, wcm_array *out, wcm_error *err) {
    memset(out, 0, sizeof *out);
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0)
        return wcm_fail(err, WCM_ERR_FORMAT, "not a .npy file (bad magic)");
    int major = buf[6];
    size_t hlen, hstart;
    if (major == 1) {
        hlen = (size_t)buf[8] | ((size_t)buf[9] << 8);
        hstart = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12) return wcm_fail(err, WCM_ERR_FORMAT, "truncated .npy header");
        hlen = (size_t)buf[8] | ((size_t)buf[9] << 8) | ((size_t)buf[10] << 16) | ((size_t)buf[11] << 24);
        hstart = 12;
    } else {
        return wcm_fail(err, WCM_ERR_FORMAT, "unsupported .npy version %d", major);
    }
    if (hlen > len - hstart || hlen > 65536) return wcm_fail(err, WCM_ERR_FORMAT, "truncated .npy header");
    int elem = 0;
    int rc = npy_header((const char *)buf + hstart, hlen, out, &elem, err);
    size_t count = 0, body = hstart + hlen;
    /* The data must be in the file, which bounds the allocation by its size. */
    if (!rc && wcm_size_product(out->shape, out->ndim, (size_t)elem, len - body, &count))
        rc = wcm_fail(err, WCM_ERR_FORMAT, "truncated .npy data: the shape needs more than the %zu bytes present", len - body);
    count /= (size_t)elem ? (size_t)elem : 1;
    if (!rc && !(out->data = malloc((count ? count : 1) * sizeof(float))))
        rc = wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    if (rc) {
        wcm_array_free(out);
        return rc;
    }
    const unsigned char *p = buf + body;
    for (size_t i = 0; i < count; i++) {
        if (elem == 4) {
            uint32_t u = (uint32_t)p[4 * i] | ((uint32_t)p[4 * i + 1] << 8) | ((uint32_t)p[4 * i + 2] << 16) |
                         ((uint32_t)p[4 * i + 3] << 24);
            float v;
            memcpy(&v, &u, 4);
            out->data[i] = v;
        } else {
            uint64_t u = 0;
            for (int b = 7; b >= 0; b--) u = (u << 8) | p[8 * i + b];
            double v;
            memcpy(&v, &u, 8);
            /* Out-of-range doubles become +-inf (a plain cast would be undefined). */
            out->data[i] = v > FLT_MAX ? INFINITY : v < -FLT_MAX ? -INFINITY : (float)v;
        }
    }
    return WCM_OK;
}

int wcm_npy_read(const char *path, wcm_array *out, wcm_error *err) {
    unsigned char *buf;
    size_t len;
    int rc = wcm_read_file(path, &buf, &len, err);
    if (rc) return rc;
    rc = wcm_npy_parse(buf, len, out, err);
    free(buf);
    if (rc) return wcm_fail_context(err, rc, "%s", path);
    return WCM_OK;
}

int wcm_npy_write(const char *path, const wcm_array *a, wcm_error *err) {
    int64_t count = wcm_array_count(a);
    if (count < 0 || (count > 0 && !a->data)) return wcm_fail(err, WCM_ERR_ARG, "%s: invalid array to write", path);
    char shape[256] = "(";
    for (int i = 0; i < a->ndim; i++) {
        char part[32];
        snprintf(part, sizeof part, "%lld,%s", (long long)a->shape[i], (i + 1 < a->ndim) ? " " : "");
        strncat(shape, part, sizeof shape - strlen(shape) - 1);
    }
    if (a->ndim > 1) shape[strlen(shape) - 1] = 0; /* drop trailing comma for ndim > 1 */
    strncat(shape, ")", sizeof shape - strlen(shape) - 1);
    char hdr[512];
    int n = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }", shape);
    /* Pad so that magic(6)+ver(2)+len(2)+header is a multiple of 64, ending in '\n'. */
    int total = 10 + n + 1;
    int pad = (64 - total % 64) % 64;
    for (int i = 0; i < pad; i++) hdr[n++] = ' ';
    hdr[n++] = '\n';
    wcm_atomic_file f;
    int rc = wcm_atomic_open(&f, path, err);
    if (rc) return rc;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(n & 0xff), (unsigned char)(n >> 8)};
    int ok = fwrite(pre, 1, 10, f.fp) == 10 && fwrite(hdr, 1, (size_t)n, f.fp) == (size_t)n &&
             fwrite(a->data, sizeof(float), (size_t)count, f.fp) == (size_t)count;
    if (!ok) {
        wcm_atomic_abort(&f);
        return wcm_fail(err, WCM_ERR_IO, "%s: write failed", path);
    }
    return wcm_atomic_commit(&f, err);
}

int wcm_tensor_from_nchw(wcm_tensor *t, const wcm_array *a, wcm_error *err) {
    int64_t n = 1, c = 1, h, w;
    if (a->ndim == 4) n = a->shape[0], c = a->shape[1], h = a->shape[2], w = a->shape[3];
    else if (a->ndim == 3) c = a->shape[0], h = a->shape[1], w = a->shape[2];
    else if (a->ndim == 2) h = a->shape[0], w = a->shape[1];
    else return wcm_fail(err, WCM_ERR_SHAPE, "expected an NCHW, CHW or HW array, got %d dimensions", a->ndim);
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0 || n > 1 << 20 || c > 1 << 16 || h > 1 << 16 || w > 1 << 16)
        return wcm_fail(err, WCM_ERR_SHAPE, "unsupported array shape %lldx%lldx%lldx%lld", (long long)n,
                        (long long)c, (long long)h, (long long)w);
    int rc = wcm_tensor_alloc(t, (int)n, (int)h, (int)w, (int)c, err);
    if (rc) return rc;
    for (int64_t i = 0; i < n; i++)
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t y = 0; y < h; y++)
                for (int64_t x = 0; x < w; x++)
                    t->data[((i * h + y) * w + x) * c + ch] = a->data[((i * c + ch) * h + y) * w + x];
    return WCM_OK;
}

int wcm_tensor_to_nchw(wcm_array *a, const wcm_tensor *t, wcm_error *err) {
    memset(a, 0, sizeof *a);
    a->ndim = 4;
    a->shape[0] = t->n, a->shape[1] = t->c, a->shape[2] = t->h, a->shape[3] = t->w;
    size_t bytes;
    if (wcm_size_product(a->shape, 4, sizeof(float), SIZE_MAX, &bytes))
        return wcm_fail(err, WCM_ERR_SHAPE, "invalid tensor shape %dx%dx%dx%d", t->n, t->h, t->w, t->c);
    a->data = malloc(bytes ? bytes : 1);
    if (!a->data) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    int n = t->n, c = t->c, h = t->h, w = t->w;
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    a->data[(((size_t)i * c + ch) * h + y) * w + x] = t->data[(((size_t)i * h + y) * w + x) * c + ch];
    return WCM_OK;
}

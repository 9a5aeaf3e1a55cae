/* Tensors, named array lists, and .npy reading/writing. */
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
    size_t count = (size_t)n * h * w * c;
    t->data = wcm_calloc(count * sizeof(float));
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

int64_t wcm_array_count(const wcm_array *a) {
    int64_t n = 1;
    for (int i = 0; i < a->ndim; i++) n *= a->shape[i];
    return n;
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

int wcm_array_list_set_meta(wcm_array_list *l, const char *key, const char *val, wcm_error *err) {
    for (int i = 0; i < l->meta_count; i++) {
        if (strcmp(l->meta_keys[i], key) == 0) {
            char *v = dup_string(val);
            if (!v) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
            free(l->meta_vals[i]);
            l->meta_vals[i] = v;
            return WCM_OK;
        }
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
    return WCM_OK;
}

const char *wcm_array_list_get_meta(const wcm_array_list *l, const char *key) {
    for (int i = 0; i < l->meta_count; i++)
        if (strcmp(l->meta_keys[i], key) == 0) return l->meta_vals[i];
    return NULL;
}

/* ---- .npy ---------------------------------------------------------------
 * Format: "\x93NUMPY", major, minor, header length (u16 for v1, u32 for v2/3),
 * then a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (..), }. */

/* Find the value text after 'key': in the header dict. */
static const char *npy_find_key(const char *hdr, const char *key) {
    char pat[32];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *p = strstr(hdr, pat);
    if (!p) return NULL;
    p += strlen(pat);
    while (*p == ' ') p++;
    if (*p != ':') return NULL;
    p++;
    while (*p == ' ') p++;
    return p;
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
    char *hdr = malloc(hlen + 1);
    if (!hdr) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    memcpy(hdr, buf + hstart, hlen);
    hdr[hlen] = 0;
    int rc = WCM_OK;
    int elem = 0;
    const char *d = npy_find_key(hdr, "descr");
    const char *f = npy_find_key(hdr, "fortran_order");
    const char *s = npy_find_key(hdr, "shape");
    if (!d || !f || !s) {
        rc = wcm_fail(err, WCM_ERR_FORMAT, ".npy header lacks descr, fortran_order or shape");
        goto done;
    }
    if (strncmp(d, "'<f4'", 5) == 0) elem = 4;
    else if (strncmp(d, "'<f8'", 5) == 0) elem = 8;
    else {
        char dt[16] = {0};
        for (int i = 0; i < 15 && d[i] && d[i] != ','; i++) dt[i] = d[i];
        rc = wcm_fail(err, WCM_ERR_FORMAT, "unsupported .npy dtype %s (need little-endian float32 or float64)", dt);
        goto done;
    }
    if (strncmp(f, "False", 5) != 0) {
        rc = wcm_fail(err, WCM_ERR_FORMAT, ".npy array is in Fortran order (need C order)");
        goto done;
    }
    if (*s != '(') {
        rc = wcm_fail(err, WCM_ERR_FORMAT, "malformed .npy shape");
        goto done;
    }
    s++;
    int ndim = 0;
    int64_t count = 1;
    for (;;) {
        while (*s == ' ' || *s == ',') s++;
        if (*s == ')') break;
        if (*s < '0' || *s > '9') {
            rc = wcm_fail(err, WCM_ERR_FORMAT, "malformed .npy shape");
            goto done;
        }
        int64_t v = 0;
        while (*s >= '0' && *s <= '9') {
            v = v * 10 + (*s - '0');
            if (v > ((int64_t)1 << 40)) {
                rc = wcm_fail(err, WCM_ERR_FORMAT, ".npy dimension too large");
                goto done;
            }
            s++;
        }
        if (ndim == WCM_MAX_DIMS) {
            rc = wcm_fail(err, WCM_ERR_FORMAT, ".npy array has more than %d dimensions", WCM_MAX_DIMS);
            goto done;
        }
        out->shape[ndim++] = v;
        /* Check before multiplying: the product of hostile dimensions overflows. */
        if (v != 0 && count > (((int64_t)1 << 34) / v)) {
            rc = wcm_fail(err, WCM_ERR_FORMAT, ".npy array too large");
            goto done;
        }
        count *= v;
        if (count > ((int64_t)1 << 34)) {
            rc = wcm_fail(err, WCM_ERR_FORMAT, ".npy array too large");
            goto done;
        }
    }
    out->ndim = ndim;
    size_t body = hstart + hlen;
    if ((uint64_t)count * (uint64_t)elem > (uint64_t)(len - body)) {
        rc = wcm_fail(err, WCM_ERR_FORMAT, "truncated .npy data: need %lld bytes, have %zu",
                      (long long)(count * elem), len - body);
        goto done;
    }
    out->data = malloc((size_t)(count ? count : 1) * sizeof(float));
    if (!out->data) {
        rc = wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
        goto done;
    }
    const unsigned char *p = buf + body;
    for (int64_t i = 0; i < count; i++) {
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
done:
    free(hdr);
    if (rc) wcm_array_free(out);
    return rc;
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
    int64_t count = wcm_array_count(a);
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
    a->data = malloc(wcm_tensor_count(t) * sizeof(float));
    if (!a->data) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    int n = t->n, c = t->c, h = t->h, w = t->w;
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    a->data[(((size_t)i * c + ch) * h + y) * w + x] = t->data[(((size_t)i * h + y) * w + x) * c + ch];
    return WCM_OK;
}

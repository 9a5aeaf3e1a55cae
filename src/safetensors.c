/* safetensors: u64 little-endian header length N, N bytes of JSON
 * {"__metadata__": {...}, "name": {"dtype", "shape", "data_offsets"}, ...},
 * then the tensor bytes (offsets are relative to the end of the header).
 * As the format requires, the tensors tile the data area exactly: no
 * overlaps, no holes, nothing after the last one. The JSON tree, metadata
 * and output arrays share the loaders' memory budget (loader_budget.h). */
#include "json.h"
#include "wcm/io.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The format's own reference implementation caps the header at 100 MB. */
#define MAX_HEADER_BYTES ((uint64_t)100 * 1000 * 1000)

typedef enum { DT_F32, DT_F16, DT_BF16, DT_F64 } dtype;

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {{"F32", 4}, {"F16", 2}, {"BF16", 2}, {"F64", 8}};

/* ---- element conversions -------------------------------------------------- */

static uint64_t load_le(const unsigned char *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) v = (v << 8) | p[i];
    return v;
}

static void store_le(unsigned char *p, uint64_t v, size_t n) {
    for (size_t i = 0; i < n; i++, v >>= 8) p[i] = (unsigned char)v;
}

static float bits_to_float(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF;
    if (exponent == 0x1F) return bits_to_float(sign | 0x7F800000u | (mantissa << 13)); /* inf, NaN */
    if (exponent) return bits_to_float(sign | ((exponent + 112) << 23) | (mantissa << 13));
    if (!mantissa) return bits_to_float(sign);
    /* Subnormal half: normalise into a float's exponent range. */
    uint32_t e = 113;
    while (!(mantissa & 0x400)) mantissa <<= 1, e--;
    return bits_to_float(sign | (e << 23) | ((mantissa & 0x3FF) << 13));
}

/* IEEE binary16 with round-to-nearest-even, overflow to inf, gradual
 * underflow to subnormals, NaN kept quiet (payload truncated). */
static uint16_t float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t a = x & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return (uint16_t)(sign | 0x7E00 | ((a >> 13) & 0x3FF));
    if (a >= 0x477FF000u) return (uint16_t)(sign | 0x7C00); /* >= 65520 rounds to inf */
    if (a >= 0x38800000u) {                                  /* normal half: >= 2^-14 */
        uint32_t rounded = a + 0xFFF + ((a >> 13) & 1);
        return (uint16_t)(sign | ((rounded - 0x38000000u) >> 13));
    }
    /* Subnormal half: round |f| / 2^-24 to an integer, ties to even. */
    uint32_t exponent = a >> 23, shift = 126 - exponent;
    if (exponent == 0 || shift > 25) return sign;
    uint32_t m = (a & 0x7FFFFF) | 0x800000, q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) q++;
    return (uint16_t)(sign | q);
}

static float double_to_float(double d) {
    /* Out-of-range conversion is undefined in C; saturate to inf explicitly. */
    if (d > (double)FLT_MAX || d < -(double)FLT_MAX) {
        float rounded = d > 0 ? FLT_MAX : -FLT_MAX;
        double limit = (double)FLT_MAX + ldexp(1.0, 103); /* FLT_MAX + half an ulp */
        return fabs(d) < limit ? rounded : (d > 0 ? INFINITY : -INFINITY);
    }
    return (float)d;
}

static float load_element(const unsigned char *p, dtype t) {
    switch (t) {
    case DT_F32: return bits_to_float((uint32_t)load_le(p, 4));
    case DT_F16: return half_to_float((uint16_t)load_le(p, 2));
    case DT_BF16: return bits_to_float((uint32_t)load_le(p, 2) << 16);
    case DT_F64: {
        uint64_t bits = load_le(p, 8);
        double d;
        memcpy(&d, &bits, sizeof d);
        return double_to_float(d);
    }
    }
    return 0;
}

/* ---- reading -------------------------------------------------------------- */

typedef struct {
    uint64_t begin, end;
} byte_range;

static int compare_ranges(const void *a, const void *b) {
    const byte_range *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static int over_budget(const wcm_mem_budget *budget, wcm_error *err) {
    return wcm_fail(err, WCM_ERR_FORMAT, "safetensors: the file needs more than %zu bytes of memory to load", budget->limit);
}

static int read_metadata(const wcm_json *meta, wcm_array_list *out, wcm_mem_budget *budget, wcm_error *err) {
    if (meta->type != WCM_JSON_OBJECT) return wcm_fail(err, WCM_ERR_FORMAT, "safetensors: __metadata__ is not an object");
    for (size_t i = 0; i < meta->count; i++) {
        const char *value = wcm_json_string(meta->items[i]);
        if (!value)
            return wcm_fail(err, WCM_ERR_FORMAT, "safetensors: metadata value '%.200s' is not a string", meta->keys[i]);
        /* Two strings, two list slots, two index slots. */
        if (wcm_budget_take(budget, strlen(meta->keys[i]) + 1) || wcm_budget_take(budget, strlen(value) + 1) ||
            wcm_budget_take(budget, 4 * sizeof(char *)))
            return over_budget(budget, err);
        int rc = wcm_array_list_set_meta(out, meta->keys[i], value, err);
        if (rc) return rc;
    }
    return WCM_OK;
}

/* Validates one header entry and converts its bytes into a float array. */
static int read_tensor(const char *name, const wcm_json *desc, const unsigned char *data, size_t data_len, wcm_array *a,
                       byte_range *range, wcm_mem_budget *budget, wcm_error *err) {
    if (desc->type != WCM_JSON_OBJECT)
        return wcm_fail(err, WCM_ERR_FORMAT, "safetensors: entry '%.200s' is not an object", name);
    for (size_t i = 0; i < desc->count; i++) {
        const char *k = desc->keys[i];
        if (strcmp(k, "dtype") && strcmp(k, "shape") && strcmp(k, "data_offsets"))
            return wcm_fail(err, WCM_ERR_FORMAT, "safetensors: tensor '%.200s' has an unknown field '%.100s'", name, k);
    }
    const char *dtype_name = wcm_json_string(wcm_json_get(desc, "dtype"));
    const wcm_json *shape = wcm_json_get(desc, "shape"), *offsets = wcm_json_get(desc, "data_offsets");
    if (!dtype_name || !shape || shape->type != WCM_JSON_ARRAY || !offsets || offsets->type != WCM_JSON_ARRAY)
        return wcm_fail(err, WCM_ERR_FORMAT, "safetensors: tensor '%.200s' needs dtype, shape and data_offsets", name);
    int t = -1;
    for (int i = 0; i < (int)(sizeof dtypes / sizeof *dtypes); i++)
        if (strcmp(dtype_name, dtypes[i].name) == 0) t = i;
    if (t < 0)
        return wcm_fail(err, WCM_ERR_FORMAT, "safetensors: tensor '%.200s' has dtype '%.20s'; only F32, F16, BF16 and F64 are supported",
                        name, dtype_name);
    size_t elem = dtypes[t].size;
    if (shape->count > WCM_MAX_DIMS)
        return wcm_fail(err, WCM_ERR_FORMAT, "safetensors: tensor '%.200s' has %zu dimensions (at most %d)", name, shape->count,
                        WCM_MAX_DIMS);
    int64_t begin, end;
    if (offsets->count != 2 || wcm_json_int64(offsets->items[0], &begin) || wcm_json_int64(offsets->items[1], &end) ||
        begin < 0 || end < begin || (uint64_t)end > data_len)
        return wcm_fail(err, WCM_ERR_FORMAT, "safetensors: tensor '%.200s' has data_offsets outside the %zu-byte data area",
                        name, data_len);
    /* The tensor's bytes must be in the file, which bounds the product. */
    for (size_t d = 0; d < shape->count; d++) {
        int64_t dim;
        if (wcm_json_int64(shape->items[d], &dim) || dim < 0)
            return wcm_fail(err, WCM_ERR_FORMAT, "safetensors: tensor '%.200s' has an invalid shape", name);
        a->shape[d] = dim;
    }
    a->ndim = (int)shape->count;
    size_t bytes = 0;
    if (wcm_size_product(a->shape, a->ndim, elem, data_len, &bytes) || bytes != (uint64_t)(end - begin))
        return wcm_fail(err, WCM_ERR_FORMAT, "safetensors: tensor '%.200s': %lld bytes of data do not match its shape and dtype %s",
                        name, (long long)(end - begin), dtypes[t].name);
    size_t count = bytes / elem;
    range->begin = (uint64_t)begin;
    range->end = (uint64_t)end;
    if (wcm_budget_take(budget, (size_t)count * sizeof(float)) || wcm_budget_take(budget, strlen(name) + 1 + sizeof *a))
        return over_budget(budget, err);
    a->data = malloc(count ? (size_t)count * sizeof(float) : 1);
    size_t n = strlen(name);
    a->name = malloc(n + 1);
    if (!a->data || !a->name) return wcm_fail(err, WCM_ERR_NOMEM, "safetensors: out of memory for tensor '%.200s'", name);
    memcpy(a->name, name, n + 1);
    const unsigned char *src = data + begin;
    for (size_t i = 0; i < (size_t)count; i++) a->data[i] = load_element(src + i * elem, (dtype)t);
    return WCM_OK;
}

/* The tensors must tile [0, data_len) exactly (empty tensors aside). */
static int check_tiling(byte_range *ranges, size_t n, size_t data_len, wcm_error *err) {
    qsort(ranges, n, sizeof *ranges, compare_ranges);
    uint64_t at = 0;
    for (size_t i = 0; i < n; i++) {
        if (ranges[i].begin < at)
            return wcm_fail(err, WCM_ERR_FORMAT, "safetensors: tensors overlap in the data area (at byte %llu)",
                            (unsigned long long)ranges[i].begin);
        if (ranges[i].begin > at)
            return wcm_fail(err, WCM_ERR_FORMAT, "safetensors: a hole of %llu bytes at byte %llu of the data area (the format "
                            "forbids holes between tensors)", (unsigned long long)(ranges[i].begin - at), (unsigned long long)at);
        at = ranges[i].end;
    }
    if (at != data_len)
        return wcm_fail(err, WCM_ERR_FORMAT, "safetensors: %llu bytes after the last tensor (the data area is %zu bytes, its "
                        "tensors end at byte %llu)", (unsigned long long)(data_len - at), data_len, (unsigned long long)at);
    return WCM_OK;
}

int wcm_safetensors_parse(const unsigned char *buf, size_t len, wcm_array_list *out, wcm_error *err) {
    wcm_array_list_init(out);
    if (len < 8) return wcm_fail(err, WCM_ERR_FORMAT, "not a safetensors file (%zu bytes, shorter than the 8-byte header length)", len);
    uint64_t header_len = load_le(buf, 8);
    if (header_len > len - 8)
        return wcm_fail(err, WCM_ERR_FORMAT, "not a safetensors file (header length %llu exceeds the %zu-byte file)",
                        (unsigned long long)header_len, len);
    if (header_len > MAX_HEADER_BYTES)
        return wcm_fail(err, WCM_ERR_FORMAT, "safetensors: header of %llu bytes is too large", (unsigned long long)header_len);
    if (header_len < 2 || buf[8] != '{')
        return wcm_fail(err, WCM_ERR_FORMAT, "not a safetensors file (header does not start with '{')");
    wcm_mem_budget budget;
    wcm_budget_init(&budget, len);
    wcm_json *root;
    int rc = wcm_json_parse_limited((const char *)buf + 8, (size_t)header_len, &budget, &root, err);
    if (rc) return wcm_fail_context(err, rc, "safetensors header");
    const unsigned char *data = buf + 8 + header_len;
    size_t data_len = len - 8 - (size_t)header_len;
    byte_range *ranges = calloc(root->count ? root->count : 1, sizeof *ranges);
    size_t range_count = 0;
    if (!ranges) rc = wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < root->count && !rc; i++) {
        const char *name = root->keys[i];
        if (strcmp(name, "__metadata__") == 0) {
            rc = read_metadata(root->items[i], out, &budget, err);
            continue;
        }
        wcm_array a;
        memset(&a, 0, sizeof a);
        rc = read_tensor(name, root->items[i], data, data_len, &a, &ranges[range_count], &budget, err);
        if (!rc && ranges[range_count].end > ranges[range_count].begin) range_count++;
        if (!rc) rc = wcm_array_list_push(out, &a, err);
        wcm_array_free(&a);
    }
    if (!rc) rc = check_tiling(ranges, range_count, data_len, err);
    free(ranges);
    wcm_json_free(root);
    if (rc) wcm_array_list_free(out);
    return rc;
}

int wcm_safetensors_read(const char *path, wcm_array_list *out, wcm_error *err) {
    wcm_array_list_init(out);
    unsigned char *buf;
    size_t len;
    int rc = wcm_read_file(path, &buf, &len, err);
    if (rc) return rc;
    rc = wcm_safetensors_parse(buf, len, out, err);
    free(buf);
    if (rc) return wcm_fail_context(err, rc, "%s", path);
    return WCM_OK;
}

/* ---- writing -------------------------------------------------------------- */

static int valid_text(const char *s) { return s && wcm_json_utf8_valid(s, strlen(s)); }

static int build_header(const wcm_array_list *l, size_t elem, const char *dtype_name, wcm_json_buf *b, wcm_error *err) {
    wcm_json_buf_puts(b, "{");
    if (l->meta_count > 0) {
        wcm_json_buf_puts(b, "\"__metadata__\":{");
        for (int i = 0; i < l->meta_count; i++) {
            if (!valid_text(l->meta_keys[i]) || !valid_text(l->meta_vals[i]))
                return wcm_fail(err, WCM_ERR_ARG, "safetensors: metadata entry %d is not valid UTF-8 text", i);
            if (i) wcm_json_buf_puts(b, ",");
            wcm_json_buf_string(b, l->meta_keys[i]);
            wcm_json_buf_puts(b, ":");
            wcm_json_buf_string(b, l->meta_vals[i]);
        }
        wcm_json_buf_puts(b, "}");
    }
    uint64_t offset = 0;
    for (int i = 0; i < l->count; i++) {
        const wcm_array *a = &l->items[i];
        if (!valid_text(a->name) || strcmp(a->name, "__metadata__") == 0)
            return wcm_fail(err, WCM_ERR_ARG, "safetensors: array %d needs a name (valid UTF-8, not __metadata__)", i);
        for (int j = 0; j < i; j++)
            if (strcmp(l->items[j].name, a->name) == 0)
                return wcm_fail(err, WCM_ERR_ARG, "safetensors: two arrays are named '%.200s'", a->name);
        if (a->ndim < 0 || a->ndim > WCM_MAX_DIMS)
            return wcm_fail(err, WCM_ERR_ARG, "safetensors: array '%.200s' has %d dimensions", a->name, a->ndim);
        uint64_t count = 1;
        for (int d = 0; d < a->ndim; d++) {
            if (a->shape[d] < 0 || (a->shape[d] > 0 && count > ((uint64_t)1 << 40) / (uint64_t)a->shape[d]))
                return wcm_fail(err, WCM_ERR_ARG, "safetensors: array '%.200s' has an invalid shape", a->name);
            count *= (uint64_t)a->shape[d];
        }
        if (count && !a->data) return wcm_fail(err, WCM_ERR_ARG, "safetensors: array '%.200s' has no data", a->name);
        wcm_json_buf_puts(b, l->meta_count > 0 || i > 0 ? "," : "");
        wcm_json_buf_string(b, a->name);
        wcm_json_buf_printf(b, ":{\"dtype\":\"%s\",\"shape\":[", dtype_name);
        for (int d = 0; d < a->ndim; d++) wcm_json_buf_printf(b, "%s%lld", d ? "," : "", (long long)a->shape[d]);
        wcm_json_buf_printf(b, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offset,
                            (unsigned long long)(offset + count * elem));
        offset += count * elem;
    }
    wcm_json_buf_puts(b, "}");
    while (b->len % 8) wcm_json_buf_puts(b, " "); /* 8 + header stays 8-byte aligned */
    if (b->failed) return wcm_fail(err, WCM_ERR_NOMEM, "safetensors: out of memory");
    return WCM_OK;
}

static int write_array_data(FILE *fp, const wcm_array *a, int half) {
    unsigned char chunk[16384];
    size_t elem = half ? 2 : 4, per_chunk = sizeof chunk / elem;
    size_t count = (size_t)wcm_array_count(a);
    for (size_t start = 0; start < count; start += per_chunk) {
        size_t n = count - start < per_chunk ? count - start : per_chunk;
        for (size_t i = 0; i < n; i++) {
            float v = a->data[start + i];
            if (half) store_le(chunk + 2 * i, float_to_half(v), 2);
            else {
                uint32_t bits;
                memcpy(&bits, &v, sizeof bits);
                store_le(chunk + 4 * i, bits, 4);
            }
        }
        if (fwrite(chunk, elem, n, fp) != n) return WCM_ERR_IO;
    }
    return WCM_OK;
}

int wcm_safetensors_write(const char *path, const wcm_array_list *l, int half, wcm_error *err) {
    wcm_json_buf header;
    wcm_json_buf_init(&header);
    int rc = build_header(l, half ? 2 : 4, half ? "F16" : "F32", &header, err);
    if (rc) {
        wcm_json_buf_free(&header);
        return rc;
    }
    wcm_atomic_file f;
    if ((rc = wcm_atomic_open(&f, path, err))) {
        wcm_json_buf_free(&header);
        return rc;
    }
    unsigned char length[8];
    store_le(length, header.len, 8);
    int bad = fwrite(length, 1, 8, f.fp) != 8 || fwrite(header.data, 1, header.len, f.fp) != header.len;
    for (int i = 0; i < l->count && !bad; i++) bad = write_array_data(f.fp, &l->items[i], half) != WCM_OK;
    wcm_json_buf_free(&header);
    if (bad) {
        wcm_atomic_abort(&f);
        return wcm_fail(err, WCM_ERR_IO, "%s: write failed", path);
    }
    return wcm_atomic_commit(&f, err);
}

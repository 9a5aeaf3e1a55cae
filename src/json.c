/* Strict JSON reader (recursive descent, bounded depth) and a text buffer. */
#include "json.h"
#include "loader_budget.h"

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const unsigned char *text;
    size_t len, pos;
    wcm_error *err;
    wcm_mem_budget *budget; /* NULL: unlimited */
} json_parser;

static int json_error(json_parser *p, const char *what) {
    return wcm_fail(p->err, WCM_ERR_FORMAT, "JSON: %s at byte %zu", what, p->pos);
}

/* Charges an allocation to the caller's budget: a tree far larger than its
 * text (many tiny values) is refused instead of exhausting memory. */
static int charge(json_parser *p, size_t bytes) {
    if (!wcm_budget_take(p->budget, bytes)) return WCM_OK;
    return wcm_fail(p->err, WCM_ERR_FORMAT, "JSON: the %zu-byte document needs more than %zu bytes of memory at byte %zu",
                    p->len, p->budget->limit, p->pos);
}

static void skip_space(json_parser *p) {
    while (p->pos < p->len) {
        unsigned char c = p->text[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static int match_word(json_parser *p, const char *word) {
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->text + p->pos, word, n) != 0) return 0;
    p->pos += n;
    return 1;
}

void wcm_json_free(wcm_json *v) {
    if (!v) return;
    for (size_t i = 0; i < v->count; i++) {
        wcm_json_free(v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->string);
    free(v);
}

/* ---- strings ------------------------------------------------------------ */

static int hex4(const unsigned char *s, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = s[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return 0;
        v = v * 16 + d;
    }
    *out = v;
    return 1;
}

static size_t put_utf8(unsigned char *dst, unsigned cp) {
    if (cp < 0x80) {
        dst[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        dst[0] = (unsigned char)(0xC0 | (cp >> 6));
        dst[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        dst[0] = (unsigned char)(0xE0 | (cp >> 12));
        dst[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        dst[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    dst[0] = (unsigned char)(0xF0 | (cp >> 18));
    dst[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    dst[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    dst[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the valid UTF-8 sequence at s (at most `avail` bytes), 0 if invalid
 * (overlong forms, surrogates and code points above U+10FFFF are invalid). */
static size_t utf8_sequence(const unsigned char *s, size_t avail) {
    unsigned c = s[0];
    size_t n;
    unsigned cp, min;
    if (c < 0x80) return 1;
    if ((c & 0xE0) == 0xC0) n = 2, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0) n = 3, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0) n = 4, cp = c & 0x07, min = 0x10000;
    else return 0;
    if (avail < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

int wcm_json_utf8_valid(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_sequence(u + i, n - i);
        if (!k) return 0;
        i += k;
    }
    return 1;
}

/* Parses a string starting at the opening quote. The decoded text is never
 * longer than the source, so one allocation of the source length suffices. */
static int parse_string(json_parser *p, char **out, size_t *out_len) {
    size_t start = ++p->pos, end = start;
    while (end < p->len && p->text[end] != '"') end += (p->text[end] == '\\') ? 2 : 1;
    if (end >= p->len) return json_error(p, "unterminated string");
    if (charge(p, end - start + 1)) return WCM_ERR_FORMAT;
    unsigned char *dst = malloc(end - start + 1);
    if (!dst) return wcm_fail(p->err, WCM_ERR_NOMEM, "JSON: out of memory");
    size_t n = 0;
    while (p->pos < end) {
        unsigned char c = p->text[p->pos];
        if (c < 0x20) {
            free(dst);
            return json_error(p, "control character in string");
        }
        if (c != '\\') {
            size_t k = utf8_sequence(p->text + p->pos, end - p->pos);
            if (!k) {
                free(dst);
                return json_error(p, "invalid UTF-8 in string");
            }
            memcpy(dst + n, p->text + p->pos, k);
            n += k;
            p->pos += k;
            continue;
        }
        unsigned char e = p->text[p->pos + 1]; /* end > pos+1 by the scan above */
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            static const char decoded[] = "\"\\/\b\f\n\r\t";
            dst[n++] = (unsigned char)decoded[simple - "\"\\/bfnrt"];
            p->pos += 2;
            continue;
        }
        unsigned cp, lo;
        if (e != 'u' || end - p->pos < 6 || !hex4(p->text + p->pos + 2, &cp)) {
            free(dst);
            return json_error(p, "invalid escape in string");
        }
        p->pos += 6;
        if (cp >= 0xDC00 && cp <= 0xDFFF) {
            free(dst);
            return json_error(p, "lone low surrogate in string");
        }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (end - p->pos < 6 || p->text[p->pos] != '\\' || p->text[p->pos + 1] != 'u' ||
                !hex4(p->text + p->pos + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
                free(dst);
                return json_error(p, "unpaired high surrogate in string");
            }
            p->pos += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        if (cp == 0) {
            free(dst);
            return json_error(p, "\\u0000 in string is not supported");
        }
        n += put_utf8(dst + n, cp); /* 6 (or 12) source bytes give at most 4 */
    }
    p->pos = end + 1;
    dst[n] = 0;
    *out = (char *)dst;
    *out_len = n;
    return WCM_OK;
}

/* ---- numbers ------------------------------------------------------------ */

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static int parse_number(json_parser *p, wcm_json *v) {
    size_t start = p->pos, i = p->pos;
    const unsigned char *t = p->text;
    int negative = 0, integral = 1;
    if (i < p->len && t[i] == '-') negative = 1, i++;
    if (i >= p->len || !is_digit(t[i])) return json_error(p, "invalid number");
    if (t[i] == '0') {
        i++;
        if (i < p->len && is_digit(t[i])) return json_error(p, "leading zero in number");
    } else {
        while (i < p->len && is_digit(t[i])) i++;
    }
    size_t int_end = i;
    if (i < p->len && t[i] == '.') {
        integral = 0;
        i++;
        if (i >= p->len || !is_digit(t[i])) return json_error(p, "digit expected after '.'");
        while (i < p->len && is_digit(t[i])) i++;
    }
    if (i < p->len && (t[i] == 'e' || t[i] == 'E')) {
        integral = 0;
        i++;
        if (i < p->len && (t[i] == '+' || t[i] == '-')) i++;
        if (i >= p->len || !is_digit(t[i])) return json_error(p, "digit expected in exponent");
        while (i < p->len && is_digit(t[i])) i++;
    }
    v->type = WCM_JSON_NUMBER;
    if (integral) {
        /* Exact int64 when it fits; accumulate negatively to reach INT64_MIN. */
        int64_t acc = 0;
        int fits = 1;
        for (size_t k = start + negative; k < int_end && fits; k++) {
            int d = t[k] - '0';
            if (acc < (INT64_MIN + d) / 10) fits = 0;
            else acc = acc * 10 - d;
        }
        if (fits && !negative && acc == INT64_MIN) fits = 0;
        if (fits) {
            v->is_integer = 1;
            v->integer = negative ? acc : -acc;
        }
    }
    /* strtod needs a NUL-terminated copy with the locale's decimal point. */
    size_t n = i - start;
    char small[64], *copy = n < sizeof small ? small : malloc(n + 1);
    if (!copy) return wcm_fail(p->err, WCM_ERR_NOMEM, "JSON: out of memory");
    memcpy(copy, t + start, n);
    copy[n] = 0;
    const char *point = localeconv()->decimal_point;
    if (point && point[0] && point[0] != '.' && !point[1]) {
        char *dot = strchr(copy, '.');
        if (dot) *dot = point[0];
    }
    v->number = strtod(copy, NULL);
    if (copy != small) free(copy);
    p->pos = i;
    return WCM_OK;
}

/* ---- values ------------------------------------------------------------- */

static int parse_value(json_parser *p, wcm_json **out, int depth);

static int push_child(json_parser *p, wcm_json *parent, size_t *cap, wcm_json *child, char *key) {
    if (parent->count == *cap) {
        size_t new_cap = *cap ? 2 * *cap : 4;
        if (charge(p, (new_cap - *cap) * sizeof(wcm_json *) * (parent->type == WCM_JSON_OBJECT ? 2 : 1))) {
            wcm_json_free(child);
            free(key);
            return WCM_ERR_FORMAT;
        }
        wcm_json **items = realloc(parent->items, new_cap * sizeof *items);
        if (items) parent->items = items;
        if (items && parent->type == WCM_JSON_OBJECT) {
            char **keys = realloc(parent->keys, new_cap * sizeof *keys);
            if (keys) parent->keys = keys;
            else items = NULL;
        }
        if (!items) {
            wcm_json_free(child);
            free(key);
            return wcm_fail(p->err, WCM_ERR_NOMEM, "JSON: out of memory");
        }
        *cap = new_cap;
    }
    parent->items[parent->count] = child;
    if (parent->type == WCM_JSON_OBJECT) parent->keys[parent->count] = key;
    parent->count++;
    return WCM_OK;
}

static int compare_key_ptrs(const void *a, const void *b) {
    return strcmp(**(char *const *const *)a, **(char *const *const *)b);
}

/* Sort pointers to the keys and compare neighbours: O(n log n) for big objects. */
static const char *find_duplicate_key(wcm_json *obj, int *nomem) {
    *nomem = 0;
    if (obj->count < 2) return NULL;
    char **sorted_refs[8], ***refs = sorted_refs;
    if (obj->count > 8 && !(refs = malloc(obj->count * sizeof *refs))) {
        *nomem = 1;
        return NULL;
    }
    for (size_t i = 0; i < obj->count; i++) refs[i] = &obj->keys[i];
    qsort(refs, obj->count, sizeof *refs, compare_key_ptrs);
    const char *dup = NULL;
    for (size_t i = 1; i < obj->count && !dup; i++)
        if (strcmp(*refs[i - 1], *refs[i]) == 0) dup = *refs[i];
    if (refs != sorted_refs) free(refs);
    return dup;
}

static int parse_container(json_parser *p, wcm_json *v, int depth) {
    int is_object = p->text[p->pos] == '{';
    char close = is_object ? '}' : ']';
    size_t cap = 0;
    v->type = is_object ? WCM_JSON_OBJECT : WCM_JSON_ARRAY;
    p->pos++;
    skip_space(p);
    if (p->pos < p->len && p->text[p->pos] == close) {
        p->pos++;
        return WCM_OK;
    }
    for (;;) {
        char *key = NULL;
        size_t key_len;
        int rc;
        if (is_object) {
            skip_space(p);
            if (p->pos >= p->len || p->text[p->pos] != '"') return json_error(p, "object key expected");
            if ((rc = parse_string(p, &key, &key_len))) return rc;
            skip_space(p);
            if (p->pos >= p->len || p->text[p->pos] != ':') {
                free(key);
                return json_error(p, "':' expected after object key");
            }
            p->pos++;
        }
        wcm_json *child = NULL;
        if ((rc = parse_value(p, &child, depth + 1))) {
            free(key);
            return rc;
        }
        if ((rc = push_child(p, v, &cap, child, key))) return rc;
        skip_space(p);
        if (p->pos >= p->len) return json_error(p, is_object ? "unterminated object" : "unterminated array");
        if (p->text[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->text[p->pos] != close) return json_error(p, is_object ? "',' or '}' expected" : "',' or ']' expected");
        p->pos++;
        break;
    }
    if (is_object) {
        int nomem;
        const char *dup = find_duplicate_key(v, &nomem);
        if (nomem) return wcm_fail(p->err, WCM_ERR_NOMEM, "JSON: out of memory");
        if (dup) return wcm_fail(p->err, WCM_ERR_FORMAT, "JSON: duplicate key \"%.200s\" in object ending at byte %zu", dup, p->pos);
    }
    return WCM_OK;
}

static int parse_value(json_parser *p, wcm_json **out, int depth) {
    *out = NULL;
    if (depth > WCM_JSON_MAX_DEPTH) return json_error(p, "nesting too deep");
    skip_space(p);
    if (p->pos >= p->len) return json_error(p, "value expected");
    if (charge(p, sizeof(wcm_json))) return WCM_ERR_FORMAT;
    wcm_json *v = calloc(1, sizeof *v);
    if (!v) return wcm_fail(p->err, WCM_ERR_NOMEM, "JSON: out of memory");
    int rc = WCM_OK;
    unsigned char c = p->text[p->pos];
    if (c == '{' || c == '[') rc = parse_container(p, v, depth);
    else if (c == '"') {
        v->type = WCM_JSON_STRING;
        rc = parse_string(p, &v->string, &v->string_len);
    } else if (c == '-' || is_digit(c)) rc = parse_number(p, v);
    else if (match_word(p, "true")) v->type = WCM_JSON_BOOL, v->boolean = 1;
    else if (match_word(p, "false")) v->type = WCM_JSON_BOOL;
    else if (match_word(p, "null")) v->type = WCM_JSON_NULL;
    else rc = json_error(p, "unexpected character");
    if (rc) {
        wcm_json_free(v);
        return rc;
    }
    *out = v;
    return WCM_OK;
}

int wcm_json_parse(const char *text, size_t len, wcm_json **out, wcm_error *err) {
    return wcm_json_parse_limited(text, len, NULL, out, err);
}

int wcm_json_parse_limited(const char *text, size_t len, wcm_mem_budget *budget, wcm_json **out, wcm_error *err) {
    *out = NULL;
    if (len > WCM_JSON_MAX_BYTES) return wcm_fail(err, WCM_ERR_FORMAT, "JSON: document too large (%zu bytes)", len);
    json_parser p = {(const unsigned char *)text, len, 0, err, budget};
    wcm_json *root;
    int rc = parse_value(&p, &root, 1);
    if (rc) return rc;
    skip_space(&p);
    if (p.pos != len) {
        wcm_json_free(root);
        return json_error(&p, "unexpected text after the JSON value");
    }
    *out = root;
    return WCM_OK;
}

/* ---- lookups ------------------------------------------------------------ */

const char *wcm_json_type_name(wcm_json_type t) {
    switch (t) {
    case WCM_JSON_NULL: return "null";
    case WCM_JSON_BOOL: return "boolean";
    case WCM_JSON_NUMBER: return "number";
    case WCM_JSON_STRING: return "string";
    case WCM_JSON_ARRAY: return "array";
    case WCM_JSON_OBJECT: return "object";
    }
    return "?";
}

const wcm_json *wcm_json_get(const wcm_json *obj, const char *key) {
    if (!obj || obj->type != WCM_JSON_OBJECT || !key) return NULL;
    for (size_t i = 0; i < obj->count; i++)
        if (strcmp(obj->keys[i], key) == 0) return obj->items[i];
    return NULL;
}

const wcm_json *wcm_json_at(const wcm_json *arr, size_t index) {
    if (!arr || (arr->type != WCM_JSON_ARRAY && arr->type != WCM_JSON_OBJECT) || index >= arr->count) return NULL;
    return arr->items[index];
}

const char *wcm_json_key_at(const wcm_json *obj, size_t index) {
    if (!obj || obj->type != WCM_JSON_OBJECT || index >= obj->count) return NULL;
    return obj->keys[index];
}

size_t wcm_json_count(const wcm_json *v) {
    return v && (v->type == WCM_JSON_ARRAY || v->type == WCM_JSON_OBJECT) ? v->count : 0;
}

const char *wcm_json_string(const wcm_json *v) { return v && v->type == WCM_JSON_STRING ? v->string : NULL; }

int wcm_json_number(const wcm_json *v, double *out) {
    if (!v || v->type != WCM_JSON_NUMBER) return WCM_ERR_FORMAT;
    *out = v->number;
    return WCM_OK;
}

int wcm_json_int64(const wcm_json *v, int64_t *out) {
    if (!v || v->type != WCM_JSON_NUMBER || !v->is_integer) return WCM_ERR_FORMAT;
    *out = v->integer;
    return WCM_OK;
}

int wcm_json_bool(const wcm_json *v, int *out) {
    if (!v || v->type != WCM_JSON_BOOL) return WCM_ERR_FORMAT;
    *out = v->boolean;
    return WCM_OK;
}

/* ---- text buffer -------------------------------------------------------- */

void wcm_json_buf_init(wcm_json_buf *b) { memset(b, 0, sizeof *b); }

void wcm_json_buf_free(wcm_json_buf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

static int buf_reserve(wcm_json_buf *b, size_t extra) {
    if (b->failed) return WCM_ERR_NOMEM;
    if (extra >= SIZE_MAX / 2 - b->len) {
        b->failed = 1;
        return WCM_ERR_NOMEM;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return WCM_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) {
        b->failed = 1;
        return WCM_ERR_NOMEM;
    }
    b->data = d;
    b->cap = cap;
    return WCM_OK;
}

int wcm_json_buf_append(wcm_json_buf *b, const char *s, size_t n) {
    if (buf_reserve(b, n)) return WCM_ERR_NOMEM;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
    return WCM_OK;
}

int wcm_json_buf_puts(wcm_json_buf *b, const char *s) { return wcm_json_buf_append(b, s, strlen(s)); }

int wcm_json_buf_printf(wcm_json_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return WCM_ERR_NOMEM;
    }
    if (buf_reserve(b, (size_t)n)) return WCM_ERR_NOMEM;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return WCM_OK;
}

static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */

typedef int (*put_char_fn)(wcm_json_buf *b, const unsigned char *c, size_t n);

/* The one escaping path of every report: walks `s` as UTF-8, handing each
 * valid sequence to `put` and replacing each byte of an invalid one (and,
 * when `drop_controls`, each control character but tab, newline and carriage
 * return) by U+FFFD, so the output is always valid UTF-8. */
static int escape_walk(wcm_json_buf *b, const char *s, int drop_controls, put_char_fn put) {
    const unsigned char *c = (const unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t k = utf8_sequence(c + i, n - i);
        int control = k == 1 && (c[i] < 0x20 || c[i] == 0x7f) && c[i] != '\t' && c[i] != '\n' && c[i] != '\r';
        int rc = !k || (drop_controls && control) ? wcm_json_buf_puts(b, replacement) : put(b, c + i, k);
        if (rc) return rc;
        i += k ? k : 1;
    }
    return b->failed ? WCM_ERR_NOMEM : WCM_OK;
}

static int put_json_char(wcm_json_buf *b, const unsigned char *c, size_t n) {
    char esc[8];
    const char *rep = NULL;
    switch (*c) {
    case '"': rep = "\\\""; break;
    case '\\': rep = "\\\\"; break;
    case '\n': rep = "\\n"; break;
    case '\r': rep = "\\r"; break;
    case '\t': rep = "\\t"; break;
    case '\b': rep = "\\b"; break;
    case '\f': rep = "\\f"; break;
    default:
        if (*c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *c);
            rep = esc;
        }
    }
    return rep ? wcm_json_buf_puts(b, rep) : wcm_json_buf_append(b, (const char *)c, n);
}

static int put_html_char(wcm_json_buf *b, const unsigned char *c, size_t n) {
    switch (*c) {
    case '&': return wcm_json_buf_puts(b, "&amp;");
    case '<': return wcm_json_buf_puts(b, "&lt;");
    case '>': return wcm_json_buf_puts(b, "&gt;");
    case '"': return wcm_json_buf_puts(b, "&quot;");
    case '\'': return wcm_json_buf_puts(b, "&#39;");
    default: return wcm_json_buf_append(b, (const char *)c, n);
    }
}

static int put_raw_char(wcm_json_buf *b, const unsigned char *c, size_t n) {
    if (*c == '"') return wcm_json_buf_puts(b, "\"\"");
    return wcm_json_buf_append(b, (const char *)c, n);
}

int wcm_json_buf_string(wcm_json_buf *b, const char *s) {
    if (wcm_json_buf_append(b, "\"", 1) || escape_walk(b, s, 0, put_json_char)) return WCM_ERR_NOMEM;
    return wcm_json_buf_append(b, "\"", 1);
}

int wcm_json_buf_html(wcm_json_buf *b, const char *s) { return escape_walk(b, s, 1, put_html_char); }

int wcm_json_buf_csv(wcm_json_buf *b, const char *s) {
    /* RFC 4180: quote a field holding a separator, a quote or a line break. */
    int quote = strpbrk(s, ",\"\r\n") != NULL;
    if (quote && wcm_json_buf_append(b, "\"", 1)) return WCM_ERR_NOMEM;
    if (escape_walk(b, s, 1, put_raw_char)) return WCM_ERR_NOMEM;
    return quote ? wcm_json_buf_append(b, "\"", 1) : WCM_OK;
}

int wcm_json_buf_number_fmt(wcm_json_buf *b, const char *fmt, double x) {
    if (!isfinite(x)) return wcm_json_buf_puts(b, "null");
    char tmp[400];
    snprintf(tmp, sizeof tmp, fmt, x);
    /* Undo a locale decimal comma: JSON always uses '.'. */
    for (char *c = tmp; *c; c++)
        if (*c == ',') *c = '.';
    return wcm_json_buf_puts(b, tmp);
}

int wcm_json_buf_number(wcm_json_buf *b, double x) { return wcm_json_buf_number_fmt(b, "%.17g", x); }

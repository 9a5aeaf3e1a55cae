/* wcm — a small strict JSON reader (RFC 8259) and the library's text builder
 * for reports (JSON, HTML, SVG, CSV).
 *
 * The reader parses a whole document into a tree of wcm_json nodes. It refuses
 * anything outside the grammar: trailing commas, comments, bare control
 * characters or invalid UTF-8 in strings, lone surrogates, duplicate object
 * keys, leading zeros, NaN/Infinity, and text after the root value. Nesting is
 * limited to WCM_JSON_MAX_DEPTH and the input to WCM_JSON_MAX_BYTES. Strings
 * may not contain U+0000, so every string and key is a plain C string. */
#ifndef WCM_JSON_H
#define WCM_JSON_H

#include "wcm/common.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WCM_JSON_MAX_DEPTH 128
#define WCM_JSON_MAX_BYTES ((size_t)1 << 30)

typedef enum {
    WCM_JSON_NULL,
    WCM_JSON_BOOL,
    WCM_JSON_NUMBER,
    WCM_JSON_STRING,
    WCM_JSON_ARRAY,
    WCM_JSON_OBJECT,
} wcm_json_type;

typedef struct wcm_json wcm_json;
struct wcm_json {
    wcm_json_type type;
    int boolean;          /* BOOL */
    double number;        /* NUMBER (nearest double) */
    int is_integer;       /* NUMBER written without fraction/exponent and fits int64 */
    int64_t integer;      /* NUMBER, valid when is_integer */
    char *string;         /* STRING, NUL-terminated UTF-8 */
    size_t string_len;
    size_t count;         /* ARRAY elements / OBJECT members */
    wcm_json **items;     /* ARRAY elements / OBJECT values, in document order */
    char **keys;          /* OBJECT keys, parallel to items */
};

/* Parse `len` bytes of `text` (need not be NUL-terminated). On success *out
 * owns the tree (free with wcm_json_free). Errors name the byte offset. */
int wcm_json_parse(const char *text, size_t len, wcm_json **out, wcm_error *err);
void wcm_json_free(wcm_json *v);

const char *wcm_json_type_name(wcm_json_type t);

/* Lookups; all return NULL when `v` is NULL, of the wrong type, or the key or
 * index is absent, so they chain: wcm_json_get(wcm_json_get(root, "a"), "b"). */
const wcm_json *wcm_json_get(const wcm_json *obj, const char *key);
const wcm_json *wcm_json_at(const wcm_json *arr, size_t index);
const char *wcm_json_key_at(const wcm_json *obj, size_t index);
size_t wcm_json_count(const wcm_json *v); /* 0 unless array or object */
const char *wcm_json_string(const wcm_json *v);

/* Typed accessors: WCM_OK, or WCM_ERR_FORMAT (no message) on a type mismatch.
 * wcm_json_int64 needs an integer literal ("12", not "12.0" or "1e2"). */
int wcm_json_number(const wcm_json *v, double *out);
int wcm_json_int64(const wcm_json *v, int64_t *out);
int wcm_json_bool(const wcm_json *v, int *out);

/* Non-zero when s[0..n) is valid UTF-8 (no overlongs, surrogates or values
 * above U+10FFFF), i.e. text the reader accepts inside a string. */
int wcm_json_utf8_valid(const char *s, size_t n);

/* A growable text buffer for writing JSON, HTML, SVG and CSV reports (the
 * one escaping path for text from names, paths and metadata). Allocation
 * failures are sticky: check `failed` (or the return value) once at the end. */
typedef struct {
    char *data; /* NUL-terminated while non-NULL */
    size_t len, cap;
    int failed;
} wcm_json_buf;

void wcm_json_buf_init(wcm_json_buf *b);
void wcm_json_buf_free(wcm_json_buf *b);
int wcm_json_buf_append(wcm_json_buf *b, const char *s, size_t n);
int wcm_json_buf_puts(wcm_json_buf *b, const char *s);
int wcm_json_buf_printf(wcm_json_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Append `s` as a quoted JSON string, escaping quotes, backslashes and
 * control characters; bytes that are not valid UTF-8 become U+FFFD, so the
 * document stays valid JSON whatever a file name holds. */
int wcm_json_buf_string(wcm_json_buf *b, const char *s);
/* Append `s` as HTML/XML text (also safe inside a quoted attribute):
 * & < > " ' escaped, invalid UTF-8 and control characters (but tab and line
 * breaks) replaced by U+FFFD. */
int wcm_json_buf_html(wcm_json_buf *b, const char *s);
/* Append `s` as one CSV field (RFC 4180: quoted when it holds a comma, quote
 * or line break; invalid UTF-8 and control characters become U+FFFD). */
int wcm_json_buf_csv(wcm_json_buf *b, const char *s);
/* Append a double so that it reads back exactly ("%.17g"); NaN/Inf -> null. */
int wcm_json_buf_number(wcm_json_buf *b, double x);
/* Append a double with a printf format for one double (e.g. "%.4f"), or null
 * when it is NaN or infinite; '.' as the decimal point in any locale. */
int wcm_json_buf_number_fmt(wcm_json_buf *b, const char *fmt, double x);

#ifdef __cplusplus
}
#endif
#endif

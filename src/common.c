/* Status messages, threads, aligned memory, clock, checked sizes, strict
 * number parsing and the pixel budget. */
#include "wcm/common.h"
#include "wcm/version.h"
#include "wcm/wcm.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Copy src (n bytes) into dst (cap bytes with the NUL), eliding the middle
 * when it does not fit: a third of the room for the head, the rest for the
 * tail, which carries the reason of a message. */
static void fit_message(char *dst, size_t cap, const char *src, size_t n) {
    static const char gap[] = " ... ";
    if (n < cap) {
        memmove(dst, src, n);
        dst[n] = 0;
        return;
    }
    size_t room = cap - 1 - (sizeof gap - 1), head = room / 3, tail = room - head;
    char tmp[sizeof ((wcm_error *)0)->msg];
    memcpy(tmp, src, head);
    memcpy(tmp + head, gap, sizeof gap - 1);
    memcpy(tmp + head + sizeof gap - 1, src + n - tail, tail);
    memcpy(dst, tmp, cap - 1);
    dst[cap - 1] = 0;
}

/* Formats into a heap buffer, so nothing is cut before fitting (without
 * memory, plain truncation). */
static void format_message(wcm_error *err, const char *fmt, va_list ap) {
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    char *text = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (text) {
        vsnprintf(text, (size_t)n + 1, fmt, again);
        fit_message(err->msg, sizeof err->msg, text, (size_t)n);
        free(text);
    } else {
        vsnprintf(err->msg, sizeof err->msg, fmt, again);
    }
    va_end(again);
}

int wcm_fail(wcm_error *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        format_message(err, fmt, ap);
        va_end(ap);
    }
    return code;
}

int wcm_fail_context(wcm_error *err, int code, const char *fmt, ...) {
    if (err) {
        char old[sizeof err->msg];
        memcpy(old, err->msg, sizeof old);
        old[sizeof old - 1] = 0;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        char *prefix = n >= 0 ? malloc((size_t)n + 3) : NULL;
        if (!prefix) return code; /* keep the old message rather than lose it */
        va_start(ap, fmt);
        vsnprintf(prefix, (size_t)n + 1, fmt, ap);
        va_end(ap);
        memcpy(prefix + n, ": ", 3);
        wcm_fail(err, code, "%s%s", prefix, old);
        free(prefix);
    }
    return code;
}

static int g_threads = 0;

void wcm_set_threads(int n) {
    g_threads = n > 0 ? n : 0;
    omp_set_num_threads(n > 0 ? n : omp_get_num_procs());
}

int wcm_get_threads(void) { return g_threads > 0 ? g_threads : omp_get_max_threads(); }

static unsigned long g_alloc_calls = 0;

unsigned long wcm_alloc_calls(void) { return __atomic_load_n(&g_alloc_calls, __ATOMIC_RELAXED); }

void *wcm_alloc(size_t bytes) {
    void *p = NULL;
    __atomic_add_fetch(&g_alloc_calls, 1, __ATOMIC_RELAXED);
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded == 0) rounded = 64;
    if (posix_memalign(&p, 64, rounded) != 0) return NULL;
    return p;
}

void *wcm_calloc(size_t bytes) {
    void *p = wcm_alloc(bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

void wcm_free(void *p) { free(p); }

double wcm_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const char *wcm_version(void) { return WCM_VERSION_STRING; }

/* ---- checked sizes ------------------------------------------------------- */

int wcm_size_product(const int64_t *dims, int n, size_t elem_size, size_t limit, size_t *bytes) {
    *bytes = 0;
    if (n < 0 || elem_size > limit) return WCM_ERR_SHAPE;
    size_t total = elem_size;
    int empty = 0;
    for (int i = 0; i < n; i++) {
        if (dims[i] < 0) return WCM_ERR_SHAPE;
        if (dims[i] == 0) empty = 1;
    }
    if (empty) return WCM_OK; /* a zero dimension: 0 bytes whatever the others are */
    for (int i = 0; i < n; i++) {
        uint64_t d = (uint64_t)dims[i];
        if (total != 0 && d > limit / total) return WCM_ERR_SHAPE;
        total *= (size_t)d;
    }
    *bytes = total;
    return WCM_OK;
}

/* ---- strict number parsing ------------------------------------------------ */

static int parse_digits(const char *s, uint64_t *value) {
    if (!s || *s < '0' || *s > '9') return WCM_ERR_FORMAT;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return WCM_ERR_FORMAT;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) return WCM_ERR_FORMAT;
        v = v * 10 + d;
    }
    *value = v;
    return WCM_OK;
}

int wcm_parse_uint64(const char *s, uint64_t hi, uint64_t *out) {
    uint64_t v;
    if (parse_digits(s, &v) || v > hi) return WCM_ERR_FORMAT;
    *out = v;
    return WCM_OK;
}

int wcm_parse_int64(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    if (!s) return WCM_ERR_FORMAT;
    int negative = *s == '-';
    uint64_t v;
    if (parse_digits(s + (negative || *s == '+'), &v)) return WCM_ERR_FORMAT;
    int64_t r;
    if (negative) {
        if (v > (uint64_t)INT64_MAX + 1) return WCM_ERR_FORMAT;
        r = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX) return WCM_ERR_FORMAT;
        r = (int64_t)v;
    }
    if (r < lo || r > hi) return WCM_ERR_FORMAT;
    *out = r;
    return WCM_OK;
}

int wcm_parse_double(const char *s, double lo, double hi, double *out) {
    if (!s || !*s) return WCM_ERR_FORMAT;
    /* Only the characters of a decimal number: strtod alone would also take
     * "inf", "nan", hex floats and leading spaces. */
    size_t n = strlen(s);
    if (n > 400) return WCM_ERR_FORMAT;
    char copy[408];
    for (size_t i = 0; i < n; i++)
        if (!strchr("0123456789+-.eE", s[i])) return WCM_ERR_FORMAT;
    memcpy(copy, s, n + 1);
    const char *point = localeconv()->decimal_point; /* strtod follows the locale */
    if (point && point[0] && point[0] != '.' && !point[1]) {
        char *dot = strchr(copy, '.');
        if (dot) *dot = point[0];
    }
    char *end;
    errno = 0;
    double v = strtod(copy, &end);
    if (end == copy || *end || !isfinite(v) || (errno == ERANGE && v != 0) || v < lo || v > hi) return WCM_ERR_FORMAT;
    *out = v;
    return WCM_OK;
}

/* ---- pixel budget ----------------------------------------------------------- */

static uint64_t g_max_pixels = 0;

uint64_t wcm_default_max_pixels(void) {
    double ram = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    double px = ram > 0 ? ram / WCM_BYTES_PER_PIXEL : (double)WCM_MAX_PIXELS_LIMIT;
    if (px < (double)(1 << 20)) px = (double)(1 << 20);
    if (px > (double)WCM_MAX_PIXELS_LIMIT) px = (double)WCM_MAX_PIXELS_LIMIT;
    return (uint64_t)px;
}

void wcm_set_max_pixels(uint64_t n) { __atomic_store_n(&g_max_pixels, n, __ATOMIC_RELAXED); }

uint64_t wcm_get_max_pixels(void) {
    uint64_t n = __atomic_load_n(&g_max_pixels, __ATOMIC_RELAXED);
    return n ? n : wcm_default_max_pixels();
}

int wcm_check_pixels(int64_t n, int64_t h, int64_t w, const char *what, wcm_error *err) {
    int64_t dims[3] = {n, h, w};
    size_t px;
    uint64_t budget = wcm_get_max_pixels();
    if (n < 1 || h < 1 || w < 1 || wcm_size_product(dims, 3, 1, (size_t)budget, &px))
        return wcm_fail(err, WCM_ERR_ARG, "%s: %lld image%s of %lldx%lld pixels exceed%s the pixel budget of %llu pixels "
                        "(raise it with --max-pixels N)", what, (long long)n, n == 1 ? "" : "s", (long long)w,
                        (long long)h, n == 1 ? "s" : "", (unsigned long long)budget);
    return WCM_OK;
}

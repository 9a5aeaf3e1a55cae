/* wcm — common types: status codes, error messages, threads.
 *
 * Errors are values: every fallible function returns WCM_OK (0) or a negative
 * wcm_status and, when `err` is non-NULL, writes one human-readable line into
 * err->msg. The library never exits the process. */
#ifndef WCM_COMMON_H
#define WCM_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    WCM_OK = 0,
    WCM_ERR_IO = -1,       /* file missing, unreadable, short read, write failed */
    WCM_ERR_FORMAT = -2,   /* malformed or unsupported file content */
    WCM_ERR_SHAPE = -3,    /* tensor shapes do not fit together */
    WCM_ERR_ARG = -4,      /* invalid argument value */
    WCM_ERR_NOMEM = -5,    /* allocation failed */
    WCM_ERR_NUMERIC = -6,  /* NaN/Inf encountered, divergence */
} wcm_status;

typedef struct {
    char msg[1024];
} wcm_error;

/* printf-style: fill err (if non-NULL) and return `code`. A message longer
 * than err->msg is shortened in the middle ("head ... tail"), never at the
 * end, so the reason after a long path survives. */
int wcm_fail(wcm_error *err, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Prefix an existing message: "context: old message". Returns code. */
int wcm_fail_context(wcm_error *err, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Number of threads of the default contexts (wcm/backend.h), the CLI's
 * --threads; <=0 restores the default: the OpenMP setting, all cores. */
void wcm_set_threads(int n);
int wcm_get_threads(void);

/* 64-byte aligned allocation (for SIMD kernels); free with wcm_free. */
void *wcm_alloc(size_t bytes);
void *wcm_calloc(size_t bytes);
void wcm_free(void *p);
/* How many times wcm_alloc/wcm_calloc have been called in this process: lets
 * tests check that steady-state loops (sampling, repeated forwards) allocate
 * nothing. */
unsigned long wcm_alloc_calls(void);

/* Monotonic wall clock in seconds. */
double wcm_seconds(void);

/* Checked size arithmetic: *bytes = elem_size * dims[0] * ... * dims[n-1].
 * Returns WCM_OK, or WCM_ERR_SHAPE when a dimension is negative or the
 * product exceeds `limit` (SIZE_MAX: only overflow) -- it never wraps. Every
 * allocation sized by a product of dimensions goes through it. */
int wcm_size_product(const int64_t *dims, int n, size_t elem_size, size_t limit, size_t *bytes);

/* Strict number parsing for text from files, metadata and the command line:
 * the whole string must be the number (no spaces, no trailing text), decimal
 * only, and within [lo, hi]. Doubles must be finite and use '.' whatever the
 * locale. Return WCM_OK or WCM_ERR_FORMAT (no message; callers say which
 * value was wrong). */
int wcm_parse_int64(const char *s, int64_t lo, int64_t hi, int64_t *out);
int wcm_parse_uint64(const char *s, uint64_t hi, uint64_t *out);
int wcm_parse_double(const char *s, double lo, double hi, double *out);

/* Pixel budget: the largest number of pixels (batch x height x width) an
 * image decoder may produce and a network forward pass may allocate
 * activations for; larger requests fail with WCM_ERR_ARG before any big
 * allocation. The default is the physical memory divided by
 * WCM_BYTES_PER_PIXEL (a 64-channel forward pass holds about 520 bytes per
 * pixel; twice that leaves room for the rest), clamped to
 * [2^20, WCM_MAX_PIXELS_LIMIT]. n = 0 restores the default. */
#define WCM_BYTES_PER_PIXEL 1024
#define WCM_MAX_PIXELS_LIMIT ((uint64_t)1 << 28)
void wcm_set_max_pixels(uint64_t n);
uint64_t wcm_get_max_pixels(void);
uint64_t wcm_default_max_pixels(void);
/* WCM_OK when n images of h x w fit the budget, else WCM_ERR_ARG with a
 * message naming `what` and the --max-pixels option. */
int wcm_check_pixels(int64_t n, int64_t h, int64_t w, const char *what, wcm_error *err);

#ifdef __cplusplus
}
#endif
#endif

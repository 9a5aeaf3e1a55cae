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
    char msg[512];
} wcm_error;

/* printf-style: fill err (if non-NULL) and return `code`. */
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

#ifdef __cplusplus
}
#endif
#endif

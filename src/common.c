/* Status messages, threads, aligned memory, clock. */
#include "wcm/common.h"
#include "wcm/version.h"
#include "wcm/wcm.h"

#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int wcm_fail(wcm_error *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

int wcm_fail_context(wcm_error *err, int code, const char *fmt, ...) {
    if (err) {
        char prefix[256], old[sizeof err->msg];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(prefix, sizeof prefix, fmt, ap);
        va_end(ap);
        memcpy(old, err->msg, sizeof old);
        old[sizeof old - 1] = 0;
        /* Truncation is acceptable for a message; build it piecewise. */
        size_t n = strlen(prefix), cap = sizeof err->msg - 1;
        if (n > cap) n = cap;
        memcpy(err->msg, prefix, n);
        if (n + 2 <= cap) memcpy(err->msg + n, ": ", 2), n += 2;
        size_t m = strlen(old);
        if (m > cap - n) m = cap - n;
        memcpy(err->msg + n, old, m);
        err->msg[n + m] = 0;
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

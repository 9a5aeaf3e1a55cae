/* Minimal test helpers: every check prints what it verified. */
#ifndef WCM_TESTUTIL_H
#define WCM_TESTUTIL_H

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int t_failures = 0, t_checks = 0;

#define CHECK(cond, ...)                                                  \
    do {                                                                  \
        t_checks++;                                                       \
        if (!(cond)) {                                                    \
            t_failures++;                                                 \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                   \
            printf(__VA_ARGS__);                                          \
            printf("\n");                                                 \
        } else {                                                          \
            printf("ok   ");                                              \
            printf(__VA_ARGS__);                                          \
            printf("\n");                                                 \
        }                                                                 \
        fflush(stdout);                                                   \
    } while (0)

#define REQUIRE_OK(expr, errp)                                            \
    do {                                                                  \
        int rc_ = (expr);                                                 \
        if (rc_ != 0) {                                                   \
            printf("FAIL %s:%d: %s -> %d: %s\n", __FILE__, __LINE__,      \
                   #expr, rc_, (errp)->msg);                              \
            exit(1);                                                      \
        }                                                                 \
    } while (0)

/* Exit code 77 tells CTest the test was skipped (SKIP_RETURN_CODE). */
#define SKIP(...)                                                         \
    do {                                                                  \
        printf("SKIP: ");                                                 \
        printf(__VA_ARGS__);                                              \
        printf("\n");                                                     \
        exit(77);                                                         \
    } while (0)

static inline int t_done(const char *name) {
    printf("%s: %d checks, %d failures\n", name, t_checks, t_failures);
    return t_failures ? 1 : 0;
}

static inline int t_is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ../shared relative to the source tree, overridable by WCM_SHARED_DIR. */
static inline const char *t_shared_dir(void) {
    const char *e = getenv("WCM_SHARED_DIR");
    return e ? e : WCM_DEFAULT_SHARED_DIR;
}
static inline const char *t_golden_dir(void) {
    static char buf[4096];
    const char *e = getenv("WCM_GOLDEN_DIR");
    if (e) return e;
    snprintf(buf, sizeof buf, "%s/golden", t_shared_dir());
    return buf;
}

/* A private temporary folder for the test (/tmp/wcm_TAG_XXXXXX), paths in
 * it, and its removal at the end. */
static char t_dir[256];

static inline void t_temp_dir(const char *tag) {
    snprintf(t_dir, sizeof t_dir, "/tmp/wcm_%s_XXXXXX", tag);
    if (!mkdtemp(t_dir)) SKIP("no temporary directory");
}

/* "<t_dir>/name"; eight rotating buffers, so a few can be used at once. */
static inline const char *t_at(const char *name) {
    static char buf[8][1024];
    static int slot;
    slot = (slot + 1) % 8;
    snprintf(buf[slot], sizeof buf[slot], "%s/%s", t_dir, name);
    return buf[slot];
}

static inline int t_remove_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static inline void t_temp_dir_remove(void) {
    if (nftw(t_dir, t_remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) printf("could not remove %s\n", t_dir);
}

/* Deterministic uniform in [-1, 1). */
static inline float t_rand(unsigned long long *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((double)(*s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* <a, b> in double. */
static inline double t_dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* Running comparison of analytic vs numeric values (gradient checks):
 * cmp_rel is max|analytic - numeric| / max|numeric|. */
typedef struct {
    double max_diff, max_ref;
    int n;
} cmp;
static inline void cmp_add(cmp *c, double analytic, double numeric) {
    c->max_diff = fmax(c->max_diff, fabs(analytic - numeric));
    c->max_ref = fmax(c->max_ref, fabs(numeric));
    c->n++;
}
static inline double cmp_rel(const cmp *c) { return c->max_diff / (c->max_ref > 0 ? c->max_ref : 1); }

#endif

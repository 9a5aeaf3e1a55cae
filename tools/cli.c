/* Option parsing and error output for the wcm CLI. */
#include "cli.h"

#include <float.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wcm/backend.h"

int cli_quiet = 0;

cli_opt *cli_find(cli_opt *opts, int nopts, const char *name) {
    for (int i = 0; i < nopts; i++)
        if (!strcmp(opts[i].name, name)) return &opts[i];
    return NULL;
}

int cli_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "wcm %s: error: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

int cli_lib_error(const char *cmd, const wcm_error *err) { return cli_error(cmd, "%s", err->msg); }

void cli_progress(const char *fmt, ...) {
    if (cli_quiet) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fflush(stderr);
}

int cli_parse(const char *cmd, int argc, char **argv, cli_opt *opts, int nopts, const char **pos, int *npos, int maxpos) {
    *npos = 0;
    int only_positional = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!only_positional && !strcmp(a, "--")) {
            only_positional = 1;
            continue;
        }
        if (!only_positional && a[0] == '-' && a[1] != 0 && !(a[1] >= '0' && a[1] <= '9') && a[1] != '.') {
            const char *name = a + 1 + (a[1] == '-');
            char key[64];
            const char *eq = strchr(name, '=');
            size_t n = eq ? (size_t)(eq - name) : strlen(name);
            if (n >= sizeof key) return cli_error(cmd, "unknown option %s (see wcm %s --help)", a, cmd);
            memcpy(key, name, n);
            key[n] = 0;
            /* "-o" is the conventional short form of --out / --output. */
            cli_opt *o = cli_find(opts, nopts, key);
            if (!o && !strcmp(key, "o")) o = cli_find(opts, nopts, "o");
            if (!o) return cli_error(cmd, "unknown option %s (see wcm %s --help)", a, cmd);
            o->set = 1;
            if (o->takes_value) {
                if (eq) o->value = eq + 1;
                else if (i + 1 < argc) o->value = argv[++i];
                else return cli_error(cmd, "option --%s needs a value", key);
            } else if (eq) {
                return cli_error(cmd, "option --%s takes no value", key);
            }
            continue;
        }
        if (*npos >= maxpos) return cli_error(cmd, "unexpected argument '%s' (see wcm %s --help)", a, cmd);
        pos[(*npos)++] = a;
    }
    return 0;
}

int cli_get_double_in(const char *cmd, cli_opt *o, double lo, double hi, double *out) {
    if (!o || !o->set) return 0;
    double v;
    if (wcm_parse_double(o->value, -DBL_MAX, DBL_MAX, &v)) return cli_error(cmd, "--%s expects a number, got '%s'", o->name, o->value);
    if (v < lo || v > hi) return cli_error(cmd, "--%s must be in [%g, %g], got %s", o->name, lo, hi, o->value);
    *out = v;
    return 0;
}

int cli_get_double(const char *cmd, cli_opt *o, double *out) { return cli_get_double_in(cmd, o, -DBL_MAX, DBL_MAX, out); }

int cli_get_int_in(const char *cmd, cli_opt *o, int lo, int hi, int *out) {
    if (!o || !o->set) return 0;
    int64_t v;
    if (wcm_parse_int64(o->value, INT32_MIN, INT32_MAX, &v))
        return cli_error(cmd, "--%s expects an integer, got '%s'", o->name, o->value);
    if (v < lo || v > hi) return cli_error(cmd, "--%s must be in %d..%d, got %s", o->name, lo, hi, o->value);
    *out = (int)v;
    return 0;
}

int cli_get_int(const char *cmd, cli_opt *o, int *out) { return cli_get_int_in(cmd, o, INT32_MIN, INT32_MAX, out); }

int cli_get_seed(const char *cmd, cli_opt *o, uint64_t *out) {
    if (!o || !o->set) return 0;
    if (wcm_parse_uint64(o->value, UINT64_MAX, out))
        return cli_error(cmd, "--%s expects a non-negative integer, got '%s'", o->name, o->value);
    return 0;
}

/* ---- global options --------------------------------------------------------- */

static int global_value(int argc, char **argv, int *i, const char *name, const char **value) {
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0 || (argv[*i][n] != 0 && argv[*i][n] != '=')) return 0;
    if (argv[*i][n] == '=') *value = argv[*i] + n + 1;
    else *value = *i + 1 < argc ? argv[++*i] : NULL;
    return 1;
}

int cli_global_options(int *argc, char **argv, cli_globals *g) {
    memset(g, 0, sizeof *g);
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        const char *v = NULL;
        if (global_value(*argc, argv, &i, "--threads", &v)) {
            int64_t n;
            if (!v || wcm_parse_int64(v, 1, 1024, &n)) {
                fprintf(stderr, "wcm: error: --threads expects an integer in 1..1024\n");
                return 2;
            }
            g->threads = (int)n;
            continue;
        }
        if (global_value(*argc, argv, &i, "--max-pixels", &v)) {
            if (!v || wcm_parse_uint64(v, CLI_MAX_PIXELS, &g->max_pixels) || g->max_pixels < 1) {
                fprintf(stderr, "wcm: error: --max-pixels expects an integer in 1..%llu\n", (unsigned long long)CLI_MAX_PIXELS);
                return 2;
            }
            continue;
        }
        if (global_value(*argc, argv, &i, "--device", &v)) {
            if (!v || !*v) {
                fprintf(stderr, "wcm: error: --device expects cpu, cuda or cuda:N\n");
                return 2;
            }
            g->device = v;
            continue;
        }
        if (!strcmp(argv[i], "--quiet")) {
            g->quiet = 1;
            continue;
        }
        argv[out++] = argv[i];
    }
    *argc = out;
    argv[out] = NULL;
    return 0;
}

int cli_apply_device(const cli_globals *g) {
    wcm_error err;
    if (!wcm_set_device(g->device, &err)) return 0;
    fprintf(stderr, "wcm: error: %s\n", err.msg);
    return 1;
}

/* Option parsing and error output for the wcm CLI. */
#include "cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

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

int cli_get_double(const char *cmd, cli_opt *o, double *out) {
    if (!o || !o->set) return 0;
    char *end;
    double v = strtod(o->value, &end);
    if (end == o->value || *end) return cli_error(cmd, "--%s expects a number, got '%s'", o->name, o->value);
    *out = v;
    return 0;
}

int cli_get_int(const char *cmd, cli_opt *o, int *out) {
    if (!o || !o->set) return 0;
    char *end;
    long v = strtol(o->value, &end, 10);
    if (end == o->value || *end || v < -2147483647L || v > 2147483647L)
        return cli_error(cmd, "--%s expects an integer, got '%s'", o->name, o->value);
    *out = (int)v;
    return 0;
}

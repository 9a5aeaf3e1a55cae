/* Shared pieces of the wcm command-line tool: option parsing and messages.
 * The CLI is a thin layer: it parses arguments, calls the library, prints
 * one clear line on error and exits non-zero. */
#ifndef WCM_CLI_H
#define WCM_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "wcm/common.h"

typedef struct {
    const char *name;   /* long name without dashes, e.g. "sigma" */
    int takes_value;    /* 0: flag */
    const char *value;  /* parsed value (or NULL) */
    int set;            /* present on the command line */
} cli_opt;

typedef struct {
    const char *name;
    const char *summary;  /* one line for `wcm help` */
    const char *usage;    /* full text for `wcm CMD --help` */
    int (*run)(int argc, char **argv);
} cli_command;

/* Parse argv[1..] into opts and positional arguments. Returns 0, or 1 after
 * printing an error naming the command. `--help` is handled by the caller. */
int cli_parse(const char *cmd, int argc, char **argv, cli_opt *opts, int nopts, const char **pos, int *npos, int maxpos);
cli_opt *cli_find(cli_opt *opts, int nopts, const char *name);
/* Typed getters (nothing happens when the option is absent): print an error
 * and return non-zero on a malformed value or one outside [lo, hi]. Numbers
 * are parsed strictly (wcm_parse_*): no trailing text, doubles finite. */
int cli_get_double(const char *cmd, cli_opt *o, double *out);
int cli_get_double_in(const char *cmd, cli_opt *o, double lo, double hi, double *out);
int cli_get_int(const char *cmd, cli_opt *o, int *out);
int cli_get_int_in(const char *cmd, cli_opt *o, int lo, int hi, int *out);
int cli_get_seed(const char *cmd, cli_opt *o, uint64_t *out);

/* Options every command takes, wherever they appear: --threads N,
 * --max-pixels N, --device cpu|cuda[:N] and --quiet. cli_global_options
 * removes them from argv (updating *argc); it returns 0, or 2 after
 * printing an error. */
#define CLI_MAX_PIXELS ((uint64_t)1 << 40)
typedef struct {
    int threads;          /* 0: not given */
    uint64_t max_pixels;  /* 0: not given */
    const char *device;   /* NULL: not given (WCM_DEVICE, else cpu) */
    int quiet;
} cli_globals;
int cli_global_options(int *argc, char **argv, cli_globals *g);
/* Selects the device of --device (or WCM_DEVICE): 0, or 1 after printing
 * why it cannot be used (CUDA not built in, no GPU, no such device). */
int cli_apply_device(const cli_globals *g);
/* Print "wcm CMD: error: message" and return 1. */
int cli_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
int cli_lib_error(const char *cmd, const wcm_error *err);
/* Quiet mode for progress messages on stderr. */
extern int cli_quiet;
void cli_progress(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

#define CLI_NOPTS(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Command entry points (tools/cmd_*.c). */
extern const cli_command cmd_import_torch, cmd_info, cmd_forward, cmd_bundle;

#endif

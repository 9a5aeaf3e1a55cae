/* libFuzzer target: the CLI's shared option parsing (tools/cli.c): the
 * global options (--threads, --max-pixels, --quiet) stripped from argv,
 * then cli_parse with a table of flags and value options (short -o too),
 * then the typed, range-checked getters on every value. The input is argv,
 * its arguments separated by NUL bytes. Run with -close_fd_mask=2: every
 * refusal prints a line on stderr. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    char *argv[MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = "wcm";
    for (char *p = text; p <= text + size && argc < MAX_ARGS; p += strlen(p) + 1) argv[argc++] = p;
    argv[argc] = NULL;
    cli_globals g;
    if (cli_global_options(&argc, argv, &g) == 0) {
        if (argc < 1 || argv[argc] != NULL || (g.threads && (g.threads < 1 || g.threads > 1024)) ||
            g.max_pixels > CLI_MAX_PIXELS)
            abort();
        cli_opt opts[] = {{"sigma", 1, 0, 0}, {"seed", 1, 0, 0},  {"n", 1, 0, 0},    {"o", 1, 0, 0},
                          {"out", 1, 0, 0},   {"npy", 0, 0, 0},   {"crop", 1, 0, 0}, {"minutes", 1, 0, 0}};
        const char *pos[4];
        int npos = -1;
        if (cli_parse("fuzz", argc, argv, opts, CLI_NOPTS(opts), pos, &npos, 4) == 0) {
            if (npos < 0 || npos > 4) abort();
            double d = 0;
            int i = 0;
            uint64_t seed = 0;
            if (!cli_get_double_in("fuzz", &opts[0], 0, 1e6, &d) && opts[0].set && !(d >= 0 && d <= 1e6)) abort();
            cli_get_seed("fuzz", &opts[1], &seed);
            if (!cli_get_int_in("fuzz", &opts[2], 1, 4096, &i) && opts[2].set && (i < 1 || i > 4096)) abort();
            if (!cli_get_int_in("fuzz", &opts[6], 1, 65536, &i) && opts[6].set && (i < 1 || i > 65536)) abort();
            if (!cli_get_double("fuzz", &opts[7], &d) && opts[7].set && !(d == d)) abort();
            for (size_t k = 0; k < CLI_NOPTS(opts); k++)
                if (opts[k].set && opts[k].takes_value && !opts[k].value) abort();
        }
    }
    free(text);
    return 0;
}

/* wcm — command-line entry point: global options and subcommand dispatch. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "wcm/backend.h"

extern const cli_command cmd_denoise, cmd_eval_denoise, cmd_eval_samples, cmd_sample, cmd_superres, cmd_inverse, cmd_train,
    cmd_demo;

static const cli_command *const commands[] = {
    &cmd_import_torch, &cmd_info, &cmd_forward, &cmd_bundle, &cmd_denoise, &cmd_eval_denoise, &cmd_eval_samples,
    &cmd_sample, &cmd_superres, &cmd_inverse, &cmd_train, &cmd_demo, NULL,
};

static void print_help(void) {
    printf("wcm — multi-scale local conditional probability models of images\n"
           "(Kadkhodaie, Guth, Mallat, Simoncelli, ICLR 2023), in C.\n\n"
           "usage: wcm COMMAND [options]      wcm COMMAND --help for details\n\n"
           "commands:\n");
    for (int i = 0; commands[i]; i++) printf("  %-14s %s\n", commands[i]->name, commands[i]->summary);
    printf("  %-14s %s\n", "help", "this text, or `wcm help COMMAND`");
    printf("\nglobal options (any command):\n"
           "  --threads N    worker threads (default: all cores)\n"
           "  --quiet        no progress messages on stderr\n"
           "\nImages are .png, .jpg/.jpeg or .npy (chosen by extension); models are\n"
           ".safetensors (native) or the authors' PyTorch .pt files.\n");
}

static const cli_command *find_command(const char *name) {
    for (int i = 0; commands[i]; i++)
        if (!strcmp(commands[i]->name, name)) return commands[i];
    return NULL;
}

int main(int argc, char **argv) {
    /* Strip global options wherever they appear. */
    int threads = 0, out = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") || !strncmp(argv[i], "--threads=", 10)) {
            const char *v = argv[i][9] == '=' ? argv[i] + 10 : (i + 1 < argc ? argv[++i] : NULL);
            char *end;
            long n = v ? strtol(v, &end, 10) : 0;
            if (!v || end == v || *end || n < 1 || n > 1024) {
                fprintf(stderr, "wcm: error: --threads expects a positive integer\n");
                return 2;
            }
            threads = (int)n;
            continue;
        }
        if (!strcmp(argv[i], "--quiet")) {
            cli_quiet = 1;
            continue;
        }
        argv[out++] = argv[i];
    }
    argc = out;
    argv[argc] = NULL;
    if (threads > 0) wcm_set_threads(threads);

    if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        if (argc >= 3 && !strcmp(argv[1], "help")) {
            const cli_command *c = find_command(argv[2]);
            if (!c) {
                fprintf(stderr, "wcm: error: unknown command '%s' (see wcm help)\n", argv[2]);
                return 2;
            }
            fputs(c->usage, stdout);
            return 0;
        }
        print_help();
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("wcm 0.1.0 (%s kernels)\n", wcm_cpu_simd_level());
        return 0;
    }
    const cli_command *c = find_command(argv[1]);
    if (!c) {
        fprintf(stderr, "wcm: error: unknown command '%s' (see wcm help)\n", argv[1]);
        return 2;
    }
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(c->usage, stdout);
            return 0;
        }
    return c->run(argc - 1, argv + 1);
}

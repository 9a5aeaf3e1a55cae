/* wcm — command-line entry point: global options and subcommand dispatch. */
#include "cli.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "wcm/backend.h"
#include "wcm/io.h"

extern const cli_command cmd_denoise, cmd_eval_denoise, cmd_eval_samples, cmd_sample, cmd_superres, cmd_inverse, cmd_train,
    cmd_demo, cmd_jacobian, cmd_reproduce;

static const cli_command *const commands[] = {
    &cmd_import_torch, &cmd_info, &cmd_forward, &cmd_bundle, &cmd_denoise, &cmd_eval_denoise, &cmd_eval_samples,
    &cmd_sample, &cmd_superres, &cmd_inverse, &cmd_train, &cmd_demo, &cmd_jacobian, &cmd_reproduce, NULL,
};

static void print_help(void) {
    printf("wcm — multi-scale local conditional probability models of images\n"
           "(Kadkhodaie, Guth, Mallat, Simoncelli, ICLR 2023), in C.\n\n"
           "usage: wcm COMMAND [options]      wcm COMMAND --help for details\n\n"
           "commands:\n");
    for (int i = 0; commands[i]; i++) printf("  %-14s %s\n", commands[i]->name, commands[i]->summary);
    printf("  %-14s %s\n", "help", "this text, or `wcm help COMMAND`");
    printf("\nglobal options (any command):\n"
           "  --threads N     worker threads (default: all cores)\n"
           "  --max-pixels N  pixel budget: the largest image (or batch x height x width)\n"
           "                  decoded or run through a network (default %llu, from\n"
           "                  this machine's memory at %d bytes per pixel)\n"
           "  --device D      cpu (default), cuda or cuda:N; the environment's\n"
           "                  WCM_DEVICE when not given (see docs/cuda.md)\n"
           "  --quiet         no progress messages on stderr\n"
           "\nImages are .png, .jpg/.jpeg or .npy (chosen by extension); models are\n"
           ".safetensors (native) or the authors' PyTorch .pt files. Outputs are\n"
           "written to a temporary beside them and renamed into place; only regular\n"
           "files are replaced, and Ctrl-C leaves no partial file.\n",
           (unsigned long long)wcm_default_max_pixels(), WCM_BYTES_PER_PIXEL);
}

static const cli_command *find_command(const char *name) {
    for (int i = 0; commands[i]; i++)
        if (!strcmp(commands[i]->name, name)) return commands[i];
    return NULL;
}

/* SIGINT, SIGTERM, SIGHUP: remove the temporaries of unfinished outputs,
 * then die of the same signal (SA_RESETHAND restored the default action). */
static void on_termination_signal(int sig) {
    wcm_atomic_remove_temporaries();
    raise(sig);
}

static void install_signal_handlers(void) {
    const int signals[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof signals / sizeof *signals; i++) {
        struct sigaction old, sa;
        /* An ignored signal stays ignored (nohup, background jobs). */
        if (sigaction(signals[i], NULL, &old) != 0 || old.sa_handler == SIG_IGN) continue;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_termination_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESETHAND;
        sigaction(signals[i], &sa, NULL);
    }
}

int main(int argc, char **argv) {
    install_signal_handlers();
    cli_globals g;
    int grc = cli_global_options(&argc, argv, &g);
    if (grc) return grc;
    cli_quiet = g.quiet;
    if (g.threads > 0) wcm_set_threads(g.threads);
    if (g.max_pixels > 0) wcm_set_max_pixels(g.max_pixels);

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
    if (cli_apply_device(&g)) return 1;
    return c->run(argc - 1, argv + 1);
}

/* `wcm eval-denoise`: the paper's Figure 3 (wcm/eval.h) — PSNR of denoisers
 * across noise levels on a folder of images; writes results.csv/json,
 * figure3.svg and report.html. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "wcm/eval.h"

/* Noise levels above this (0-255 units) only measure float overflow. */
#define MAX_SIGMA255 1e6

static int parse_sigmas(const char *cmd, const char *s, double *out, int *n) {
    *n = 0;
    const char *p = s;
    while (*p) {
        char item[64];
        size_t len = strcspn(p, ",");
        if (len >= sizeof item || *n >= WCM_EVAL_MAX_SIGMAS)
            return cli_error(cmd, "--sigmas: too long a list or value in '%s'", s);
        memcpy(item, p, len);
        item[len] = 0;
        if (wcm_parse_double(item, 0, MAX_SIGMA255, &out[*n]) || !(out[*n] > 0))
            return cli_error(cmd, "--sigmas expects a comma-separated list of numbers in (0, %g] (0-255 units), got '%s'",
                             MAX_SIGMA255, s);
        (*n)++;
        p += len;
        if (*p == ',' && !*++p) return cli_error(cmd, "--sigmas ends with a comma: '%s'", s);
    }
    return *n ? 0 : cli_error(cmd, "--sigmas is empty");
}

static void file_stem(const char *path, char *out, size_t size) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(out, size, "%s", b);
    char *dot = strrchr(out, '.');
    if (dot && dot != out) *dot = 0;
}

static void progress_line(void *user, const char *line) { cli_progress("%s: %s\n", (const char *)user, line); }

static int run_eval(int argc, char **argv) {
    const char *cmd = "eval-denoise";
    cli_opt opts[] = {{"images", 1, 0, 0}, {"n", 1, 0, 0}, {"crop", 1, 0, 0},
                      {"sigmas", 1, 0, 0}, {"seed", 1, 0, 0}, {"out", 1, 0, 0},
                      {"noise", 1, 0, 0}};
    const char *pos[WCM_EVAL_MAX_CURVES];
    int npos;
    if (cli_parse(cmd, argc, argv, opts, CLI_NOPTS(opts), pos, &npos, WCM_EVAL_MAX_CURVES / 2)) return 1;
    if (!opts[0].set || !opts[5].set || npos < 1)
        return cli_error(cmd, "usage: wcm eval-denoise --images DIR --out DIR [--n 50] [--crop 160] MODEL... (see --help)");
    wcm_eval_denoise_options o;
    wcm_eval_denoise_options_default(&o);
    if (cli_get_int_in(cmd, &opts[1], 1, INT32_MAX, &o.n) || cli_get_int_in(cmd, &opts[2], 1, 65536, &o.crop) ||
        cli_get_int(cmd, &opts[4], &o.seed))
        return 1;
    if (opts[3].set && parse_sigmas(cmd, opts[3].value, o.sigmas255, &o.nsigmas)) return 1;
    if (opts[6].set && wcm_noise_kind_parse(opts[6].value, &o.noise))
        return cli_error(cmd, "--noise must be torch or philox, got '%s'", opts[6].value);
    o.images_dir = opts[0].value;
    o.examples_dir = opts[5].value;
    o.progress = progress_line;
    o.progress_user = (void *)cmd;
    wcm_error err;
    wcm_model models[WCM_EVAL_MAX_CURVES / 2];
    char stems[WCM_EVAL_MAX_CURVES / 2][256];
    const char *names[WCM_EVAL_MAX_CURVES / 2];
    int nmodels = 0, rc = 0;
    for (; nmodels < npos && !rc; nmodels++) {
        file_stem(pos[nmodels], stems[nmodels], sizeof stems[nmodels]);
        names[nmodels] = stems[nmodels];
        if ((rc = wcm_model_load(pos[nmodels], &models[nmodels], &err))) break;
    }
    /* Under mpirun the ranks share the images; rank 0 writes the report. */
    int rank = 0;
    if (!rc && !(rc = wcm_comm_world(&o.comm, &err))) {
        rank = wcm_comm_rank(o.comm);
        if (rank) cli_quiet = 1;
    }
    wcm_eval_denoise_result r;
    if (!rc) rc = wcm_eval_denoise(models, names, nmodels, &o, &r, &err);
    if (!rc) {
        if (rank == 0) rc = wcm_eval_denoise_write_report(&r, o.examples_dir, &err);
        if (!rc && rank == 0)
            printf("eval-denoise: %d images, %d noise levels, %d curves in %.1f s -> "
                   "%s/{results.csv,results.json,figure3.svg,report.html}\n",
                   r.n, r.nsigmas, r.ncurves, r.seconds, o.examples_dir);
        wcm_eval_denoise_result_free(&r);
    }
    for (int k = 0; k < nmodels; k++) wcm_model_free(&models[k]);
    return rc ? cli_lib_error(cmd, &err) : 0;
}

const cli_command cmd_eval_denoise = {
    "eval-denoise", "Figure 3: PSNR of denoisers across noise levels on a folder of images",
    "usage: wcm eval-denoise --images DIR --out DIR [--n 50] [--crop 160]\n"
    "                        [--sigmas LIST] [--seed N] [--noise torch|philox] MODEL...\n\n"
    "Takes the first n images of DIR sorted by name, centre-crops them to\n"
    "crop x crop, converts to gray, adds Gaussian noise at every level (the same\n"
    "seeded noise pattern scaled to each sigma) and measures the mean PSNR of\n"
    "every model (name = file stem) and, for each multi-scale model, of its\n"
    "low-pass-only baseline (name STEM:lowpass-only). Crops not divisible by\n"
    "2^J are padded by symmetric reflection and the results cropped back.\n"
    "Under mpirun the processes share the images; the results are the same\n"
    "bits as one process's, written by rank 0.\n\n"
    "  --images DIR   image folder (.png .jpg .jpeg .npy; other files are skipped and counted)\n"
    "  --out DIR      output folder: results.csv (model,sigma255,psnr_noisy,psnr_denoised),\n"
    "                 results.json, figure3.svg, report.html and example PNGs\n"
    "  --n N          number of images (default 50)\n"
    "  --crop C       centre crop size (default 160)\n"
    "  --sigmas LIST  comma-separated noise levels in 0-255 units\n"
    "                 (default: the 10 values 10^(0.5 ... 2.8))\n"
    "  --seed N       noise seed (default 0)\n"
    "  --noise KIND   torch (default): bit-compatible with torch.manual_seed(N);\n"
    "                 torch.randn(n, 1, crop, crop) as in the authors' scripts;\n"
    "                 philox: wcm's counter-based generator (per-image streams)\n",
    run_eval};

/* `wcm denoise`: denoise one image, or every image of a folder, with a flat
 * or multi-scale model, at any size (padding) and in bounded memory (exact
 * tiles). */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_images.h"
#include "wcm/json.h"
#include "wcm/denoise.h"
#include "wcm/image.h"
#include "wcm/io.h"

enum { O_SIGMA, O_SEED, O_NOISY_OUT, O_CLEAN, O_LOWPASS, O_BITS, O_NOISE, O_MEMORY, O_NO_PAD, O_LOG, O_COLOR, NOPT };

/* What every image of a run shares. */
typedef struct {
    const char *cmd, *model_path;
    wcm_model model;
    wcm_denoise_options options;
    int add_noise, bits;
    double sigma255;
    uint64_t seed;
    wcm_noise_kind noise_kind;
    cli_color color;
} denoise_run;

/* One image's outcome. */
typedef struct {
    int h, w, c;
    wcm_denoise_info info;
    double psnr_noisy, psnr_denoised; /* NAN without a reference */
    double seconds;
} denoise_result;

/* Denoise image `in` (gray or colour, see cli_images.h) into *out. With
 * add_noise, ref becomes the clean image and in the noisy one. */
static int denoise_tensor(const denoise_run *r, int index, wcm_tensor *in, wcm_tensor *ref, wcm_tensor *out,
                          denoise_result *res, wcm_error *err) {
    int rc = WCM_OK;
    if (r->add_noise) {
        if (!ref->data) rc = wcm_tensor_copy(ref, in, err);
        size_t n = wcm_tensor_count(in);
        float *z = rc ? NULL : wcm_alloc(n * sizeof(float));
        if (!rc && !z) rc = wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
        if (!rc) {
            /* Image k of a folder draws with seed + k: different images, different noise. */
            wcm_noise_pattern(r->noise_kind, r->seed + (uint64_t)index, 1, n, z);
            wcm_noise_apply_255(ref->data, z, n, r->sigma255, in->data);
        }
        wcm_free(z);
        if (!rc && !wcm_tensor_all_finite(in))
            rc = wcm_fail(err, WCM_ERR_NUMERIC, "--sigma %g overflows the noisy image (values beyond float range)", r->sigma255);
    }
    const double t0 = wcm_seconds();
    if (!rc && in->c == 1 && !ref->data) {
        /* Nothing to compare with: denoise over the input (memory: the image and its pyramid). */
        rc = wcm_denoise_in_place(&r->model, in, &r->options, &res->info, err);
        if (!rc) *out = *in, memset(in, 0, sizeof *in);
    } else if (!rc) {
        rc = wcm_denoise_color(&r->model, in, r->color, &r->options, out, &res->info, err);
    }
    res->seconds = wcm_seconds() - t0;
    if (!rc && !wcm_tensor_all_finite(out))
        rc = wcm_fail(err, WCM_ERR_NUMERIC, "the denoised image is not finite (input values too large for the network?)");
    res->psnr_noisy = res->psnr_denoised = NAN;
    if (!rc && ref->data) {
        const size_t n = wcm_tensor_count(in);
        res->psnr_noisy = wcm_psnr(ref->data, in->data, n);
        res->psnr_denoised = wcm_psnr(ref->data, out->data, n);
    }
    return rc;
}

/* Read `in` (and `clean` when given), denoise, write `out` (and `noisy_out`). */
static int denoise_file(const denoise_run *r, int index, const char *in, const char *clean, const char *noisy_out,
                        const char *out, denoise_result *res, wcm_error *err) {
    wcm_tensor img = {0}, ref = {0}, den = {0};
    memset(res, 0, sizeof *res);
    int rc = cli_read_image(r->cmd, in, r->color, &img, err);
    if (!rc && !wcm_tensor_all_finite(&img)) rc = wcm_fail(err, WCM_ERR_NUMERIC, "%s contains NaN or Inf", in);
    if (!rc && clean) {
        rc = cli_read_image(r->cmd, clean, r->color, &ref, err);
        if (!rc && (ref.h != img.h || ref.w != img.w || ref.c != img.c))
            rc = wcm_fail(err, WCM_ERR_SHAPE, "--clean %s is %dx%dx%d, the image %dx%dx%d", clean, ref.w, ref.h, ref.c,
                          img.w, img.h, img.c);
    }
    if (!rc) {
        res->h = img.h, res->w = img.w, res->c = img.c;
        rc = denoise_tensor(r, index, &img, &ref, &den, res, err);
    }
    if (!rc && noisy_out) rc = cli_write_image(noisy_out, &img, r->bits, err);
    if (!rc) rc = cli_write_image(out, &den, r->bits, err);
    wcm_tensor_free(&img);
    wcm_tensor_free(&ref);
    wcm_tensor_free(&den);
    return rc;
}

static void json_info(wcm_json_buf *b, const denoise_run *r, const denoise_result *res) {
    wcm_json_buf_printf(b, "\"size\": [%d, %d], \"channels\": %d, \"padding\": {\"bottom\": %d, \"right\": %d}, \"tiles\": [",
                        res->h, res->w, res->c, res->info.pad_bottom, res->info.pad_right);
    const int nets = r->model.multiscale ? 1 + r->model.levels : 1;
    for (int i = 0; i < nets; i++) wcm_json_buf_printf(b, "%s%d", i ? ", " : "", res->info.tile[i]);
    wcm_json_buf_puts(b, "], \"psnr_noisy\": ");
    wcm_json_buf_number_fmt(b, "%.4f", res->psnr_noisy);
    wcm_json_buf_puts(b, ", \"psnr_denoised\": ");
    wcm_json_buf_number_fmt(b, "%.4f", res->psnr_denoised);
    wcm_json_buf_printf(b, ", \"seconds\": %.3f", res->seconds);
}

static void json_head(wcm_json_buf *b, const denoise_run *r) {
    wcm_json_buf_puts(b, "{\n \"command\": \"denoise\",\n \"model\": ");
    wcm_json_buf_string(b, r->model_path);
    wcm_json_buf_printf(b, ",\n \"model_kind\": \"%s\",\n \"levels\": %d,\n \"sigma\": ", r->model.multiscale ? "multi-scale" : "flat",
                        r->model.multiscale ? r->model.levels : 0);
    wcm_json_buf_number_fmt(b, "%.6g", r->add_noise ? r->sigma255 : NAN);
    wcm_json_buf_printf(b, ",\n \"seed\": %llu,\n \"pad\": \"%s\",\n \"memory_mb\": %.0f,\n \"color\": \"%s\",\n",
                        (unsigned long long)r->seed, r->options.pad ? "symmetric, bottom and right, to a multiple of 2^J" : "none",
                        (double)r->options.tiling.memory / (1 << 20), cli_color_name(r->color));
}

static int write_text(const char *path, wcm_json_buf *b, wcm_error *err) {
    if (b->failed) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory for %s", path);
    return wcm_write_file_atomic(path, b->data, b->len, err);
}

static int run_single(denoise_run *r, const char *const *pos, cli_opt *opts) {
    const char *cmd = r->cmd;
    wcm_error err;
    if (opts[O_NOISY_OUT].set && !r->add_noise)
        return cli_error(cmd, "--noisy-out needs --sigma (without it IN is already noisy)");
    denoise_result res;
    int rc = denoise_file(r, 0, pos[1], opts[O_CLEAN].set ? opts[O_CLEAN].value : NULL,
                          opts[O_NOISY_OUT].set ? opts[O_NOISY_OUT].value : NULL, pos[2], &res, &err);
    if (!rc && opts[O_LOG].set) {
        wcm_json_buf b;
        wcm_json_buf_init(&b);
        json_head(&b, r);
        wcm_json_buf_puts(&b, " \"input\": ");
        wcm_json_buf_string(&b, pos[1]);
        wcm_json_buf_puts(&b, ",\n \"output\": ");
        wcm_json_buf_string(&b, pos[2]);
        wcm_json_buf_puts(&b, ",\n ");
        json_info(&b, r, &res);
        wcm_json_buf_puts(&b, "\n}\n");
        rc = write_text(opts[O_LOG].value, &b, &err);
        wcm_json_buf_free(&b);
    }
    if (rc) return cli_lib_error(cmd, &err);
    if (res.info.pad_bottom || res.info.pad_right)
        cli_progress("wcm denoise: padded %dx%d by %d right and %d bottom (symmetric) to a multiple of 2^J = %d, "
                     "cropped back\n", res.w, res.h, res.info.pad_right, res.info.pad_bottom, 1 << r->model.levels);
    if (!isnan(res.psnr_noisy))
        printf("PSNR noisy %.2f dB -> denoised %.2f dB (%s%s, %.3f s)\n", res.psnr_noisy, res.psnr_denoised,
               r->model.multiscale ? "multi-scale" : "flat", r->options.lowpass_only ? ", low-pass only" : "", res.seconds);
    else
        printf("wrote %s (%.3f s)\n", pos[2], res.seconds);
    return 0;
}

/* Every image of IN_DIR into OUT_DIR/<name>.png, a summary.csv and a
 * log.json; unreadable images are reported and skipped. */
static int run_folder(denoise_run *r, const char *const *pos, cli_opt *opts) {
    const char *cmd = r->cmd, *in_dir = pos[1], *out_dir = pos[2];
    const char *clean_dir = opts[O_CLEAN].set ? opts[O_CLEAN].value : NULL;
    const char *noisy_dir = opts[O_NOISY_OUT].set ? opts[O_NOISY_OUT].value : NULL;
    if (noisy_dir && !r->add_noise) return cli_error(cmd, "--noisy-out needs --sigma (without it IN is already noisy)");
    if (opts[O_LOG].set) return cli_error(cmd, "with a folder IN the log is OUT_DIR/log.json (--log is for single images)");
    if (clean_dir && !cli_is_dir(clean_dir)) return cli_error(cmd, "with a folder IN, --clean must be a folder: %s", clean_dir);
    if (noisy_dir && mkdir(noisy_dir, 0777) != 0 && errno != EEXIST)
        return cli_error(cmd, "cannot create folder %s: %s", noisy_dir, strerror(errno));
    cli_folder f;
    if (cli_folder_begin(&f, cmd, in_dir, out_dir,
                         "width,height,channels,pad_bottom,pad_right,psnr_noisy,psnr_denoised,seconds,status"))
        return 1;
    json_head(&f.log, r);
    wcm_json_buf_puts(&f.log, " \"input\": ");
    wcm_json_buf_string(&f.log, in_dir);
    wcm_json_buf_puts(&f.log, ",\n \"images\": [");
    while (f.index < f.end) {
        const char *name = cli_basename(f.paths[f.index]);
        char out[4096], noisy[4096], clean[4096];
        cli_output_name(out, sizeof out, out_dir, name);
        if (noisy_dir) cli_output_name(noisy, sizeof noisy, noisy_dir, name);
        if (clean_dir) snprintf(clean, sizeof clean, "%s/%s", clean_dir, name);
        denoise_result res;
        wcm_error err;
        cli_folder_item(&f);
        if (denoise_file(r, f.index, f.paths[f.index], clean_dir ? clean : NULL, noisy_dir ? noisy : NULL, out, &res, &err)) {
            cli_folder_item_failed(&f, &err);
        } else {
            wcm_json_buf_printf(&f.csv, ",%d,%d,%d,%d,%d,", res.w, res.h, res.c, res.info.pad_bottom, res.info.pad_right);
            wcm_json_buf_number_fmt(&f.csv, "%.4f", res.psnr_noisy);
            wcm_json_buf_puts(&f.csv, ",");
            wcm_json_buf_number_fmt(&f.csv, "%.4f", res.psnr_denoised);
            wcm_json_buf_printf(&f.csv, ",%.3f,ok", res.seconds);
            if (!isnan(res.psnr_denoised)) cli_folder_item_value(&f, res.psnr_denoised);
            wcm_json_buf_puts(&f.log, ", ");
            json_info(&f.log, r, &res);
        }
        cli_folder_item_done(&f);
    }
    return cli_folder_end(&f, "denoised", "PSNR");
}

static int run_denoise(int argc, char **argv) {
    const char *cmd = "denoise";
    cli_opt opts[NOPT] = {{"sigma", 1, 0, 0},  {"seed", 1, 0, 0},   {"noisy-out", 1, 0, 0}, {"clean", 1, 0, 0},
                          {"lowpass-only", 0, 0, 0}, {"bits", 1, 0, 0}, {"noise", 1, 0, 0}, {"memory", 1, 0, 0},
                          {"no-pad", 0, 0, 0}, {"log", 1, 0, 0},   {"color", 1, 0, 0}};
    const char *pos[3];
    int npos;
    if (cli_parse(cmd, argc, argv, opts, NOPT, pos, &npos, 3)) return 1;
    if (npos != 3) return cli_error(cmd, "usage: wcm denoise MODEL IN OUT [--sigma S] [--seed N] ... (see --help)");
    denoise_run r;
    memset(&r, 0, sizeof r);
    r.cmd = cmd;
    r.model_path = pos[0];
    r.bits = 8;
    r.noise_kind = WCM_NOISE_TORCH;
    int seed = 0;
    double memory_mb = CLI_DEFAULT_MEMORY_MB;
    if (cli_get_double_in(cmd, &opts[O_SIGMA], 0, 1e6, &r.sigma255) || cli_get_int(cmd, &opts[O_SEED], &seed) ||
        cli_get_int(cmd, &opts[O_BITS], &r.bits) || cli_get_double_in(cmd, &opts[O_MEMORY], 16, 1 << 30, &memory_mb) ||
        cli_parse_color(cmd, &opts[O_COLOR], &r.color))
        return 1;
    if (r.bits != 8 && r.bits != 16) return cli_error(cmd, "--bits must be 8 or 16");
    if (opts[O_NOISE].set && wcm_noise_kind_parse(opts[O_NOISE].value, &r.noise_kind))
        return cli_error(cmd, "--noise must be torch or philox, got '%s'", opts[O_NOISE].value);
    r.seed = (uint64_t)(int64_t)seed;
    r.add_noise = opts[O_SIGMA].set;
    r.options.lowpass_only = opts[O_LOWPASS].set;
    r.options.pad = !opts[O_NO_PAD].set;
    r.options.tiling.memory = (size_t)(memory_mb * (1 << 20));
    wcm_error err;
    if (wcm_model_load(pos[0], &r.model, &err)) return cli_lib_error(cmd, &err);
    const int rc = cli_is_dir(pos[1]) ? run_folder(&r, pos, opts) : run_single(&r, pos, opts);
    wcm_model_free(&r.model);
    return rc;
}

const cli_command cmd_denoise = {
    "denoise", "denoise an image or a folder of images with a flat or multi-scale model",
    "usage: wcm denoise MODEL IN OUT [--sigma S] [--seed N] [--noisy-out F]\n"
    "                   [--clean REF] [--lowpass-only] [--bits 8|16] [--noise torch|philox]\n"
    "                   [--memory MB] [--no-pad] [--color per-channel|luma|luma-keep|gray] [--log F]\n"
    "       wcm denoise MODEL IN_DIR OUT_DIR [same options; --clean, --noisy-out: folders]\n\n"
    "With --sigma, Gaussian noise of standard deviation S (0-255 units, as in\n"
    "the paper's plots) is first added to IN, seeded by --seed (default 0;\n"
    "image k of a folder uses seed + k); without it IN is taken as already\n"
    "noisy (the networks are blind). A flat model runs one pass; a multi-scale\n"
    "model denoises the coarsest low-pass, then the details of every scale\n"
    "given the low-pass (docs/model.md §5). Any size: sides not divisible by 2^J are\n"
    "padded by symmetric reflection and the result cropped back (OUT has IN's\n"
    "size). Any number of pixels: network passes larger than --memory run in\n"
    "exact tiles (the same bits as one pass; docs/large-images.md).\n"
    "A folder IN denoises every image in it (sorted by name) into OUT_DIR/NAME.png,\n"
    "with a progress line and ETA, OUT_DIR/summary.csv and OUT_DIR/log.json;\n"
    "an unreadable image is reported, skipped and listed (exit status 1).\n"
    "Under mpirun the processes share a folder's images (the same files).\n\n"
    "  --sigma S       add noise of std S/255 first (0 <= S <= 1e6)\n"
    "  --seed N        noise seed (default 0)\n"
    "  --noise KIND    torch (default; as torch.manual_seed(N); torch.randn) or philox\n"
    "  --noisy-out F   also write the noisy image (a folder for a folder IN)\n"
    "  --clean REF     clean reference: print PSNR before and after (a folder of\n"
    "                  the same names for a folder IN; with --sigma, IN itself)\n"
    "  --lowpass-only  baseline: keep only the denoised low-pass (details = 0)\n"
    "  --bits 8|16     PNG output depth (default 8)\n"
    "  --memory MB     working memory of one network pass (default " CLI_DEFAULT_MEMORY_TEXT "); larger\n"
    "                  images run in exact tiles\n"
    "  --no-pad        refuse sizes not divisible by 2^J instead of padding\n"
    "  --color MODE    colour images: per-channel (default: the gray model on R, G\n"
    "                  and B), luma (on Y of YCbCr, chroma denoised per channel at\n"
    "                  the same noise), luma-keep (Y only, chroma kept) or gray\n"
    "                  (convert to gray); the mode is stated whenever it applies\n"
    "  --log F         also write a JSON log (size, padding, tiles, PSNR)\n",
    run_denoise};

/* `wcm denoise`: denoise one image with a flat or multi-scale model. */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "wcm/denoise.h"
#include "wcm/image.h"

static int run_denoise(int argc, char **argv) {
    const char *cmd = "denoise";
    cli_opt opts[] = {{"sigma", 1, 0, 0}, {"seed", 1, 0, 0}, {"noisy-out", 1, 0, 0},
                      {"clean", 1, 0, 0}, {"lowpass-only", 0, 0, 0}, {"bits", 1, 0, 0},
                      {"noise", 1, 0, 0}};
    const char *pos[3];
    int npos;
    if (cli_parse(cmd, argc, argv, opts, CLI_NOPTS(opts), pos, &npos, 3)) return 1;
    if (npos != 3) return cli_error(cmd, "usage: wcm denoise MODEL IN OUT [--sigma S] [--seed N] ... (see --help)");
    double sigma255 = 0;
    int seed = 0, bits = 8;
    if (cli_get_double_in(cmd, &opts[0], 0, 1e6, &sigma255) || cli_get_int(cmd, &opts[1], &seed) ||
        cli_get_int(cmd, &opts[5], &bits))
        return 1;
    if (bits != 8 && bits != 16) return cli_error(cmd, "--bits must be 8 or 16");
    wcm_noise_kind noise_kind = WCM_NOISE_TORCH;
    if (opts[6].set && wcm_noise_kind_parse(opts[6].value, &noise_kind))
        return cli_error(cmd, "--noise must be torch or philox, got '%s'", opts[6].value);
    wcm_error err;
    wcm_model m;
    if (wcm_model_load(pos[0], &m, &err)) return cli_lib_error(cmd, &err);
    wcm_tensor img = {0}, ref = {0}, out = {0};
    int rc = wcm_image_read(pos[1], &img, &err);
    if (!rc && !wcm_tensor_all_finite(&img)) rc = wcm_fail(&err, WCM_ERR_NUMERIC, "%s contains NaN or Inf", pos[1]);
    if (!rc && m.multiscale) {
        int f = 1 << m.levels;
        if (img.h < f || img.w < f) {
            rc = wcm_fail(&err, WCM_ERR_SHAPE, "%s is %dx%d, smaller than the %dx%d a %d-scale model needs (2^J = %d)",
                          pos[1], img.w, img.h, f, f, m.levels, f);
        } else if (img.h % f || img.w % f) {
            int ch = img.h / f * f, cw = img.w / f * f;
            cli_progress("wcm denoise: centre-cropping %dx%d to %dx%d (divisible by 2^J = %d)\n", img.h, img.w, ch, cw, f);
            wcm_tensor c = {0};
            rc = wcm_image_center_crop(&img, ch, cw, &c, &err);
            if (!rc) {
                wcm_tensor_free(&img);
                img = c;
            }
        }
    }
    if (!rc && opts[3].set) {
        rc = wcm_image_read(opts[3].value, &ref, &err);
        if (!rc && (ref.h != img.h || ref.w != img.w)) {
            wcm_tensor c = {0};
            rc = wcm_image_center_crop(&ref, img.h, img.w, &c, &err);
            if (rc) wcm_fail_context(&err, rc, "--clean %s", opts[3].value);
            else {
                wcm_tensor_free(&ref);
                ref = c;
            }
        }
    }
    if (!rc && opts[0].set) {
        if (!ref.data) rc = wcm_tensor_copy(&ref, &img, &err);
        if (!rc) {
            size_t n = wcm_tensor_count(&img);
            float *z = wcm_alloc(n * sizeof(float));
            if (!z) rc = wcm_fail(&err, WCM_ERR_NOMEM, "out of memory");
            else {
                wcm_noise_pattern(noise_kind, (uint64_t)seed, 1, n, z);
                wcm_noise_apply_255(ref.data, z, n, sigma255, img.data);
                wcm_free(z);
            }
        }
        if (!rc && !wcm_tensor_all_finite(&img))
            rc = wcm_fail(&err, WCM_ERR_NUMERIC, "--sigma %g overflows the noisy image (values beyond float range)", sigma255);
        if (!rc && opts[2].set) rc = wcm_image_write(opts[2].value, &img, 0, bits, &err);
    } else if (!rc && opts[2].set) {
        rc = wcm_fail(&err, WCM_ERR_ARG, "--noisy-out needs --sigma (without it IN is already noisy)");
    }
    double t0 = wcm_seconds();
    if (!rc) rc = wcm_denoise(&m, &img, opts[4].set, &out, &err);
    double secs = wcm_seconds() - t0;
    if (!rc && !wcm_tensor_all_finite(&out))
        rc = wcm_fail(&err, WCM_ERR_NUMERIC, "the denoised image is not finite (input values too large for the network?)");
    if (!rc) rc = wcm_image_write(pos[2], &out, 0, bits, &err);
    if (!rc) {
        size_t n = wcm_tensor_count(&img);
        if (ref.data)
            printf("PSNR noisy %.2f dB -> denoised %.2f dB (%s%s, %.3f s)\n", wcm_psnr(ref.data, img.data, n),
                   wcm_psnr(ref.data, out.data, n), m.multiscale ? "multi-scale" : "flat",
                   opts[4].set ? ", low-pass only" : "", secs);
        else
            printf("wrote %s (%.3f s)\n", pos[2], secs);
    }
    wcm_tensor_free(&img);
    wcm_tensor_free(&ref);
    wcm_tensor_free(&out);
    wcm_model_free(&m);
    return rc ? cli_lib_error(cmd, &err) : 0;
}

const cli_command cmd_denoise = {
    "denoise", "denoise an image with a flat or multi-scale model",
    "usage: wcm denoise MODEL IN OUT [--sigma S] [--seed N] [--noisy-out F]\n"
    "                   [--clean REF] [--lowpass-only] [--bits 8|16] [--noise torch|philox]\n\n"
    "With --sigma, Gaussian noise of standard deviation S (0-255 units, as in\n"
    "the paper's plots) is first added to IN, seeded by --seed (default 0);\n"
    "without it IN is taken as already noisy (the networks are blind).\n"
    "A flat model runs one pass; a multi-scale model denoises the coarsest\n"
    "low-pass, then the details of every scale given the low-pass\n"
    "(docs/model.md §5).\n"
    "Images whose size is not divisible by 2^J are centre-cropped (and it says so).\n\n"
    "  --sigma S       add noise of std S/255 first (0 <= S <= 1e6)\n"
    "  --seed N        noise seed (default 0)\n"
    "  --noise KIND    torch (default; as torch.manual_seed(N); torch.randn) or philox\n"
    "  --noisy-out F   also write the noisy image\n"
    "  --clean REF     clean reference: print PSNR before and after\n"
    "                  (with --sigma, IN itself is the reference)\n"
    "  --lowpass-only  baseline: keep only the denoised low-pass (details = 0)\n"
    "  --bits 8|16     PNG output depth (default 8)\n",
    run_denoise};

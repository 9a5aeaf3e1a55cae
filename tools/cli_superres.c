/* `wcm superres MODEL IN_DIR OUT_DIR` (cli_images.h). */
#include <math.h>
#include <string.h>

#include "cli_images.h"
#include "wcm/image.h"
#include "wcm/io.h"

typedef struct {
    int in_h, in_w, out_h, out_w, pad_bottom, pad_right;
    double seconds, consistency, psnr, psnr_lowpass;
} superres_result;

/* One image: read, (pad and take the low-pass), sample, check, crop, write. */
static int superres_file(const wcm_model *m, int levels, const wcm_synth_options *so, int from_hr, int index,
                         const char *in, const char *out, superres_result *res, wcm_error *err) {
    const int f = 1 << levels;
    wcm_tensor img = {0}, padded = {0}, low = {0}, check = {0}, cropped = {0}, blocky = {0};
    wcm_synth_result r;
    memset(&r, 0, sizeof r);
    memset(res, 0, sizeof *res);
    res->psnr = res->psnr_lowpass = NAN;
    int rc = wcm_image_read(in, &img, err);
    if (!rc && !wcm_tensor_all_finite(&img)) rc = wcm_fail(err, WCM_ERR_NUMERIC, "%s contains NaN or Inf", in);
    if (!rc && from_hr) {
        res->pad_bottom = wcm_padded_size(img.h, f) - img.h, res->pad_right = wcm_padded_size(img.w, f) - img.w;
        rc = wcm_pad_symmetric(&img, img.h + res->pad_bottom, img.w + res->pad_right, &padded, err);
        if (!rc) rc = wcm_synth_lowpass(&padded, levels, &low, err);
    } else if (!rc) {
        low = img;
        memset(&img, 0, sizeof img);
    }
    if (!rc) rc = wcm_check_pixels(1, (int64_t)low.h * f, (int64_t)low.w * f, "superres output", err);
    wcm_synth_options o = *so;
    o.sample_offset = index; /* image k: its own random sub-stream */
    o.progress = NULL;
    const double t0 = wcm_seconds();
    if (!rc) rc = wcm_synth_superres(m, &low, &o, &r, err);
    res->seconds = wcm_seconds() - t0;
    const wcm_tensor *final = rc ? NULL : wcm_synth_final(&r);
    if (!rc && !final) rc = wcm_fail(err, WCM_ERR_NUMERIC, "super-resolution did not finish");
    if (!rc) rc = wcm_synth_lowpass(final, levels, &check, err);
    for (size_t i = 0; !rc && i < wcm_tensor_count(&check); i++)
        res->consistency = fmax(res->consistency, fabs((double)check.data[i] - low.data[i]));
    if (!rc && from_hr) {
        rc = wcm_image_crop(final, 0, 0, img.h, img.w, &cropped, err);
        final = &cropped;
        if (!rc) rc = wcm_synth_lowpass_only(&low, levels, &blocky, err);
        if (!rc) {
            const size_t n = wcm_tensor_count(&img);
            res->psnr = wcm_psnr(img.data, cropped.data, n);
            wcm_tensor b;
            rc = wcm_image_crop(&blocky, 0, 0, img.h, img.w, &b, err);
            if (!rc) res->psnr_lowpass = wcm_psnr(img.data, b.data, n), wcm_tensor_free(&b);
        }
    }
    if (!rc) {
        res->in_h = low.h, res->in_w = low.w, res->out_h = final->h, res->out_w = final->w;
        rc = wcm_image_write(out, final, 0, 8, err);
    }
    wcm_tensor *all[] = {&img, &padded, &low, &check, &cropped, &blocky};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) wcm_tensor_free(all[i]);
    wcm_synth_result_free(&r);
    return rc;
}

int cli_superres_folder(const char *cmd, const char *model_path, const wcm_model *m, int levels,
                        const wcm_synth_options *so, int from_hr, const char *in_dir, const char *out_dir) {
    cli_folder f;
    if (cli_folder_begin(&f, cmd, in_dir, out_dir,
                         "input_width,input_height,output_width,output_height,pad_bottom,pad_right,seconds,"
                         "consistency_max_abs,psnr,psnr_lowpass_only,status"))
        return 1;
    wcm_json_buf_puts(&f.log, "{\n \"command\": \"superres\",\n \"model\": ");
    wcm_json_buf_string(&f.log, model_path);
    wcm_json_buf_printf(&f.log, ",\n \"levels\": %d,\n \"factor\": %d,\n \"from_highres\": %s,\n \"seed\": %llu,\n"
                                " \"memory_mb\": %.0f,\n \"input\": ",
                        levels, 1 << levels, from_hr ? "true" : "false", (unsigned long long)so->seed,
                        (double)so->tiling.memory / (1 << 20));
    wcm_json_buf_string(&f.log, in_dir);
    wcm_json_buf_puts(&f.log, ",\n \"images\": [");
    while (f.index < f.end) {
        char out[4096];
        cli_output_name(out, sizeof out, out_dir, cli_basename(f.paths[f.index]));
        superres_result res;
        wcm_error err;
        cli_folder_item(&f);
        if (superres_file(m, levels, so, from_hr, f.index, f.paths[f.index], out, &res, &err)) {
            cli_folder_item_failed(&f, &err);
        } else {
            wcm_json_buf_printf(&f.csv, ",%d,%d,%d,%d,%d,%d,%.3f,%.3g,", res.in_w, res.in_h, res.out_w, res.out_h,
                                res.pad_bottom, res.pad_right, res.seconds, res.consistency);
            wcm_json_buf_number_fmt(&f.csv, "%.4f", res.psnr);
            wcm_json_buf_puts(&f.csv, ",");
            wcm_json_buf_number_fmt(&f.csv, "%.4f", res.psnr_lowpass);
            wcm_json_buf_puts(&f.csv, ",ok");
            wcm_json_buf_printf(&f.log, ", \"input_size\": [%d, %d], \"output_size\": [%d, %d], \"padding\": {\"bottom\": %d, "
                                        "\"right\": %d}, \"seconds\": %.3f, \"consistency_max_abs\": ",
                                res.in_h, res.in_w, res.out_h, res.out_w, res.pad_bottom, res.pad_right, res.seconds);
            wcm_json_buf_number(&f.log, res.consistency);
            wcm_json_buf_puts(&f.log, ", \"psnr\": ");
            wcm_json_buf_number_fmt(&f.log, "%.4f", res.psnr);
        }
        cli_folder_item_done(&f);
    }
    return cli_folder_end(&f, "super-resolved", NULL);
}

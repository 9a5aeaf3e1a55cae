/* Example: denoise an image with a wcm model through the C API.
 *
 *   cc denoise_image.c $(pkg-config --cflags --libs wcm) -o denoise_image
 *   ./denoise_image MODEL.safetensors IN.png OUT.png [SIGMA_255]
 *
 * Reads IN as gray, adds Gaussian noise of standard deviation SIGMA/255
 * (default 50), denoises it with the model (flat or multi-scale) and writes
 * OUT, printing the PSNR before and after. */
#include <stdio.h>
#include <stdlib.h>

#include <wcm/wcm.h>

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL IN OUT [SIGMA_255]\n", argv[0]);
        return 2;
    }
    double sigma255 = argc > 4 ? atof(argv[4]) : 50.0;
    wcm_error err;
    wcm_model model;
    wcm_tensor clean, noisy, denoised;
    if (wcm_model_load(argv[1], &model, &err) != WCM_OK) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 1;
    }
    if (wcm_image_read(argv[2], &clean, &err) != WCM_OK) {
        fprintf(stderr, "error: %s\n", err.msg);
        wcm_model_free(&model);
        return 1;
    }
    /* A multi-scale model needs sizes divisible by 2^J: centre-crop. */
    if (model.multiscale) {
        int f = 1 << model.levels;
        wcm_tensor cropped;
        if (wcm_image_center_crop(&clean, clean.h / f * f, clean.w / f * f, &cropped, &err) != WCM_OK) {
            fprintf(stderr, "error: %s\n", err.msg);
            return 1;
        }
        wcm_tensor_free(&clean);
        clean = cropped;
    }
    size_t n = wcm_tensor_count(&clean);
    float *z = malloc(n * sizeof(float));
    wcm_tensor_copy(&noisy, &clean, &err);
    wcm_noise_pattern(WCM_NOISE_TORCH, 0, 1, n, z);
    wcm_noise_apply_255(clean.data, z, n, sigma255, noisy.data);
    if (wcm_denoise(&model, &noisy, 0, &denoised, &err) != WCM_OK ||
        wcm_image_write(argv[3], &denoised, 0, 8, &err) != WCM_OK) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 1;
    }
    printf("sigma %.1f (of 255): PSNR noisy %.2f dB -> denoised %.2f dB, wrote %s\n", sigma255, wcm_psnr(clean.data, noisy.data, n),
           wcm_psnr(clean.data, denoised.data, n), argv[3]);
    free(z);
    wcm_tensor_free(&clean);
    wcm_tensor_free(&noisy);
    wcm_tensor_free(&denoised);
    wcm_model_free(&model);
    return 0;
}

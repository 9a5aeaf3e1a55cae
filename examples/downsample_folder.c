/* Example: prepare a low-resolution training set with the C API.
 *
 *   cc downsample_folder.c $(pkg-config --cflags --libs wcm) -o downsample_folder
 *   ./downsample_folder IN_DIR OUT_DIR CROP FACTOR
 *
 * Every image of IN_DIR is made gray, centre-cropped to CROP x CROP and
 * area-averaged by FACTOR, then written to OUT_DIR as a 16-bit PNG. Area
 * averaging by 2^k is exactly the Haar low-pass of level k-1 (docs/model.md §2), so a
 * low-pass or conditional net trained on OUT_DIR with --levels J-k sees the
 * same coefficients as one trained on IN_DIR with --levels J (up to the
 * 16-bit rounding, < 1e-5). wcm's shipped face model used this to send its
 * training set through a size-limited transfer (see models/README.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wcm/image.h>

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s IN_DIR OUT_DIR CROP FACTOR\n", argv[0]);
        return 2;
    }
    int crop = atoi(argv[3]), factor = atoi(argv[4]);
    if (crop < 1 || factor < 1 || crop % factor) {
        fprintf(stderr, "error: CROP must be a positive multiple of FACTOR\n");
        return 2;
    }
    wcm_error err;
    char **paths;
    int n, skipped, written = 0;
    if (wcm_list_images(argv[1], &paths, &n, &skipped, &err) != WCM_OK) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        wcm_tensor img, cropped, small;
        if (wcm_image_read(paths[i], &img, &err) != WCM_OK) {
            fprintf(stderr, "skipped: %s\n", err.msg);
            continue;
        }
        int rc = wcm_image_center_crop(&img, crop, crop, &cropped, &err);
        wcm_tensor_free(&img);
        if (rc != WCM_OK) {
            fprintf(stderr, "skipped %s: %s\n", paths[i], err.msg);
            continue;
        }
        rc = wcm_image_resize(&cropped, crop / factor, crop / factor, WCM_RESIZE_AREA, &small, &err);
        wcm_tensor_free(&cropped);
        const char *base = strrchr(paths[i], '/') ? strrchr(paths[i], '/') + 1 : paths[i];
        const char *dot = strrchr(base, '.');
        char out[4096];
        snprintf(out, sizeof out, "%s/%.*s.png", argv[2], (int)(dot ? dot - base : (long)strlen(base)), base);
        if (rc == WCM_OK) rc = wcm_image_write(out, &small, 0, 16, &err);
        wcm_tensor_free(&small);
        if (rc != WCM_OK) {
            fprintf(stderr, "error: %s\n", err.msg);
            wcm_free_paths(paths, n);
            return 1;
        }
        written++;
    }
    printf("%d images written to %s (%d non-image entries skipped)\n", written, argv[2], skipped);
    wcm_free_paths(paths, n);
    return 0;
}

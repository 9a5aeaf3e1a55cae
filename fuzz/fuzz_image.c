/* libFuzzer target: the image decoders through wcm's own entry point,
 * wcm_image_decode (PNG through libpng, JPEG through libjpeg-turbo, .npy),
 * under a pixel budget of 2^22 so the fuzzer explores headers instead of
 * allocating gigabytes. The first byte picks the format; a decoded image
 * must have the size it says and values from its format's range. */
#include "wcm/image.h"

#include <math.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const names[3] = {"fuzz.png", "fuzz.jpg", "fuzz.npy"};
    if (size < 1) return 0;
    wcm_set_max_pixels((uint64_t)1 << 22);
    const char *name = names[data[0] % 3];
    wcm_tensor img;
    wcm_error err;
    if (wcm_image_decode(name, data + 1, size - 1, &img, &err) == WCM_OK) {
        if (img.n != 1 || img.c != 1 || img.h < 1 || img.w < 1 || (uint64_t)img.h * img.w > ((uint64_t)1 << 22)) abort();
        if (data[0] % 3 != 2)
            for (size_t i = 0; i < wcm_tensor_count(&img); i++)
                if (!(img.data[i] >= 0.0f && img.data[i] <= 1.0f)) abort();
        wcm_tensor_free(&img);
    }
    return 0;
}

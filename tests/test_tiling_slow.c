/* Exact tiles with trained networks: the authors' flat RF 13 and RF 43 nets
 * (../shared) and the shipped multi-scale 160 (J = 2) and 320 (J = 3) RF 13
 * models (models/) denoise 160x160, 320x320, 481x321 and 1000x700 noisy
 * images tiled exactly as whole (bit for bit), with tiles that cut through
 * the F(6x6) sizes (160), the F(4x4) sizes (all larger) and odd sizes
 * (padded to 2^J for the multi-scale models). */
#include "tiling_util.h"
#include "wcm/model.h"

typedef struct {
    const char *name, *path;
    int tile, tile_large; /* output tile side; the side for 1000x700 */
} model_case;

int main(void) {
    char flat13[4096], flat43[4096], ms160[4096], ms320[4096];
    const char *shared = t_shared_dir();
    snprintf(flat13, sizeof flat13, "%s/weights/kadkhodaie2023/denoisers/flat/celebA_160x160_gray/noise_range_0to255_RF_13x13/model.pt", shared);
    snprintf(flat43, sizeof flat43, "%s/weights/kadkhodaie2023/denoisers/flat/celebA_160x160_gray/noise_range_0to255_RF_43x43/model.pt", shared);
    snprintf(ms160, sizeof ms160, "%s/models/kadkhodaie2023_face160_j2_rf13.safetensors", WCM_SOURCE_DIR);
    snprintf(ms320, sizeof ms320, "%s/models/kadkhodaie2023_face320_j3_rf13.safetensors", WCM_SOURCE_DIR);
    FILE *probe = fopen(flat13, "rb");
    if (!probe) SKIP("no authors' weights under %s", shared);
    fclose(probe);
    /* RF 43's halo is 132: tiles of 48 make regions of 312 pixels, smaller than 320. */
    const model_case models[] = {{"flat RF 13", flat13, 60, 60}, {"flat RF 43", flat43, 48, 240},
                                 {"multi-scale 160 RF 13", ms160, 48, 96}, {"multi-scale 320 RF 13", ms320, 24, 96}};
    const int sizes[][2] = {{160, 160}, {320, 320}, {321, 481}, {700, 1000}};
    printf("%-24s %-10s %6s %10s %10s %s\n", "model", "size", "tile", "whole s", "tiled s", "max |diff|");
    for (size_t mi = 0; mi < sizeof models / sizeof models[0]; mi++) {
        wcm_error err;
        wcm_model m;
        REQUIRE_OK(wcm_model_load(models[mi].path, &m, &err), &err);
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            const int h = sizes[s][0], w = sizes[s][1];
            wcm_tensor x, whole, tiled;
            random_image(&x, 1, h, w, 1, 1234 + s); /* uniform noise in [0, 1): a noisy image */
            wcm_denoise_options o = {.pad = 1};
            wcm_denoise_info info;
            double t0 = wcm_seconds();
            REQUIRE_OK(wcm_denoise_ex(&m, &x, &o, &whole, &info, &err), &err);
            const double t_whole = wcm_seconds() - t0;
            const int tile = w >= 1000 ? models[mi].tile_large : models[mi].tile;
            o.tiling.tile = tile;
            t0 = wcm_seconds();
            REQUIRE_OK(wcm_denoise_ex(&m, &x, &o, &tiled, &info, &err), &err);
            const double t_tiled = wcm_seconds() - t0;
            char size[32];
            snprintf(size, sizeof size, "%dx%d", w, h);
            printf("%-24s %-10s %6d %10.2f %10.2f %.3g\n", models[mi].name, size, info.tile[m.multiscale ? 1 : 0], t_whole,
                   t_tiled, max_diff(&whole, &tiled));
            CHECK(same_bits(&whole, &tiled) && whole.h == h && whole.w == w,
                  "%s %s, tiles of %d (finest net's tile side %d, 0: one region): tiled == whole bit for bit, output %dx%d",
                  models[mi].name, size, tile, info.tile[m.multiscale ? 1 : 0], whole.w, whole.h);
            wcm_tensor_free(&x);
            wcm_tensor_free(&whole);
            wcm_tensor_free(&tiled);
        }
        wcm_model_free(&m);
    }
    return t_done("test_tiling_slow");
}

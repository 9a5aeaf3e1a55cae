/* Exact tiles and padding (wcm/tiling.h): network passes computed tile by
 * tile equal the whole-image pass bit for bit for every network kind, with
 * tiles that cut through both Winograd variants (F(4x4) and F(6x6)) and the
 * direct kernels, including tiles that on their own would take the other
 * variant; multi-scale denoising tiled equals untiled; padding of odd sizes
 * equals an explicit pad-denoise-crop and keeps the input size. */
#include "tiling_util.h"
#include "wcm/synth.h"

static void networks(void) {
    wcm_net *flat13 = random_net(WCM_NET_FLAT, 13, 1), *cond13 = random_net(WCM_NET_CONDITIONAL, 13, 2);
    wcm_net *low = random_net(WCM_NET_LOWPASS, 0, 3), *flat5 = random_net(WCM_NET_FLAT, 5, 4);
    /* 160x160 takes F(6x6); edge tiles of width 84 alone would take F(4x4). */
    net_case("flat RF 13, F(6x6) image", flat13, 160, 160, 48);
    /* 200x200 takes F(4x4); its 120x120 tile regions alone would take F(6x6). */
    net_case("flat RF 13, F(4x4) image", flat13, 200, 200, 48);
    net_case("flat RF 13, odd size", flat13, 131, 157, 36);
    net_case("conditional RF 13, F(6x6) image", cond13, 132, 150, 36);
    net_case("conditional RF 13, F(4x4) image", cond13, 97, 230, 60);
    net_case("flat RF 5", flat5, 61, 83, 12);
    net_case("low-pass net", low, 100, 400, 96);
    /* The direct kernels alone (register tiles of up to 6 pixels, edge splits). */
    wcm_set_winograd(0);
    net_case("flat RF 13, Winograd off", flat13, 101, 149, 36);
    net_case("conditional RF 13, Winograd off", cond13, 77, 130, 36);
    wcm_set_winograd(1);
    wcm_net_free(flat13);
    wcm_net_free(cond13);
    wcm_net_free(low);
    wcm_net_free(flat5);
}

/* Pad-denoise-crop by hand against the padding option; tiled against whole. */
static void denoising(void) {
    wcm_error err;
    wcm_model m;
    random_model(&m, 2);
    const int sizes[][2] = {{61, 83}, {130, 203}, {5, 3}, {1, 1}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        const int h = sizes[s][0], w = sizes[s][1];
        wcm_tensor x, padded, manual = {0}, cropped, out, tiled;
        random_image(&x, 1, h, w, 1, 99 + s);
        const int ph = wcm_padded_size(h, 4), pw = wcm_padded_size(w, 4);
        REQUIRE_OK(wcm_pad_symmetric(&x, ph, pw, &padded, &err), &err);
        REQUIRE_OK(wcm_denoise(&m, &padded, 0, &manual, &err), &err);
        REQUIRE_OK(wcm_image_crop(&manual, 0, 0, h, w, &cropped, &err), &err);
        wcm_denoise_options o = {.pad = 1};
        wcm_denoise_info info;
        REQUIRE_OK(wcm_denoise_ex(&m, &x, &o, &out, &info, &err), &err);
        CHECK(out.h == h && out.w == w && info.pad_bottom == ph - h && info.pad_right == pw - w,
              "multi-scale %dx%d: output %dx%d, padding bottom %d right %d", w, h, out.w, out.h, info.pad_bottom,
              info.pad_right);
        CHECK(same_bits(&out, &cropped), "multi-scale %dx%d: padded denoising == explicit pad, denoise, crop", w, h);
        if (h == 130) { /* level 0 (102x65) tiled */
            o.tiling.tile = 24;
            REQUIRE_OK(wcm_denoise_ex(&m, &x, &o, &tiled, &info, &err), &err);
            CHECK(same_bits(&out, &tiled) && info.tile[1] == 24,
                  "multi-scale %dx%d, tiles of 24 (cond0 %d, cond1 %d, low %d): == untiled bit for bit", w, h,
                  info.tile[1], info.tile[2], info.tile[0]);
        } else {
            REQUIRE_OK(wcm_tensor_copy(&tiled, &out, &err), &err);
        }
        wcm_tensor in_place;
        REQUIRE_OK(wcm_tensor_copy(&in_place, &x, &err), &err);
        REQUIRE_OK(wcm_denoise_in_place(&m, &in_place, &o, &info, &err), &err);
        CHECK(same_bits(&out, &in_place), "multi-scale %dx%d: in place == out of place", w, h);
        wcm_tensor *all[] = {&x, &padded, &manual, &cropped, &out, &tiled, &in_place};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) wcm_tensor_free(all[i]);
    }
    wcm_tensor x, out;
    random_image(&x, 1, 30, 30, 1, 5);
    CHECK(wcm_denoise(&m, &x, 0, &out, &err) == WCM_ERR_SHAPE, "without padding 30x30 is refused for J = 2: %s", err.msg);
    wcm_tensor_free(&x);
    wcm_model_free(&m);
}

static void padding(void) {
    wcm_error err;
    wcm_tensor x, p;
    REQUIRE_OK(wcm_tensor_alloc(&x, 1, 2, 3, 1, &err), &err);
    for (int i = 0; i < 6; i++) x.data[i] = (float)i; /* rows 0 1 2 / 3 4 5 */
    REQUIRE_OK(wcm_pad_symmetric(&x, 5, 8, &p, &err), &err);
    static const float row0[8] = {0, 1, 2, 2, 1, 0, 0, 1}, row3[8] = {3, 4, 5, 5, 4, 3, 3, 4};
    CHECK(!memcmp(p.data, row0, sizeof row0) && !memcmp(p.data + 8, row3, sizeof row3) &&
              !memcmp(p.data + 16, row3, sizeof row3) && !memcmp(p.data + 24, row0, sizeof row0) &&
              !memcmp(p.data + 32, row0, sizeof row0),
          "symmetric padding of 3x2 to 8x5 repeats edges and mirrors again beyond the image");
    CHECK(wcm_padded_size(481, 8) == 488 && wcm_padded_size(480, 8) == 480, "481 pads to 488 and 480 stays for 2^J = 8");
    wcm_tensor_free(&x);
    wcm_tensor_free(&p);
}

/* Super-resolution (Algorithm 2 with Algorithm 1 per scale) with the
 * conditional nets tiled: the sampler's sigma_t and std(y) are still taken
 * over the whole image, so every sample is the same bit for bit. */
static void superres(void) {
    wcm_error err;
    wcm_model m;
    random_model(&m, 2);
    wcm_tensor low;
    random_image(&low, 2, 31, 45, 1, 77);
    wcm_synth_options o;
    wcm_synth_options_default(&o);
    o.seed = 3;
    o.range_min = o.range_max = 0; /* random nets: no health check */
    for (int j = 0; j < 2; j++) {
        o.cond[j].max_iters = 6;
        o.cond[j].divergence_threshold = 1e30;
        o.cond[j].std_jump = 0;
    }
    wcm_synth_result whole, tiled;
    int rc = wcm_synth_superres(&m, &low, &o, &whole, &err);
    CHECK(rc == WCM_OK || rc == WCM_ERR_NUMERIC, "super-resolution 45x31 -> 180x124, whole passes: %s", rc ? err.msg : "ok");
    o.tiling.tile = 24;
    rc = wcm_synth_superres(&m, &low, &o, &tiled, &err);
    CHECK(rc == WCM_OK || rc == WCM_ERR_NUMERIC, "super-resolution, tiles of 24: %s", rc ? err.msg : "ok");
    const wcm_tensor *a = &whole.scale[whole.nscales - 1], *b = &tiled.scale[tiled.nscales - 1];
    CHECK(whole.nscales == 3 && tiled.nscales == 3 && a->h == 124 && a->w == 180 && same_bits(a, b),
          "2 samples of 180x124 (6 iterations per scale), tiled == whole bit for bit (max |diff| %.3g)", max_diff(a, b));
    wcm_synth_result_free(&whole);
    wcm_synth_result_free(&tiled);
    wcm_tensor_free(&low);
    wcm_model_free(&m);
}

int main(void) {
    padding();
    networks();
    denoising();
    superres();
    return t_done("test_tiling");
}

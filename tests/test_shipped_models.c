/* The models shipped in models/: they load, have the architecture their
 * names state, denoise (a smooth synthetic image at sigma 25 comes out
 * better than it went in), and, where ../shared holds the authors'
 * checkpoints, the shipped copies of the authors' networks equal them
 * parameter for parameter (float32, bit for bit). */
#include "testutil.h"
#include "wcm/denoise.h"
#include "wcm/model.h"

typedef struct {
    const char *file;
    int levels, rf;
    const char *authors_dir; /* under weights/kadkhodaie2023/denoisers/multi_scale, or NULL */
} shipped;

static const shipped models[] = {
    {"kadkhodaie2023_face160_j2_rf13.safetensors", 2, 13, "celebA_160x160_gray"},
    {"kadkhodaie2023_face320_j3_rf13.safetensors", 3, 13, "celebA_320x320_gray"},
    {"wcm_face160_j2_rf13.safetensors", 2, 13, NULL},
};

static int same_params(wcm_net *a, wcm_net *b) {
    return wcm_net_nparams(a) == wcm_net_nparams(b) && wcm_net_nrunning(a) == wcm_net_nrunning(b) &&
           !memcmp(wcm_net_params(a), wcm_net_params(b), wcm_net_nparams(a) * sizeof(float)) &&
           !memcmp(wcm_net_running_sd(a), wcm_net_running_sd(b), wcm_net_nrunning(a) * sizeof(float));
}

/* A smooth image with edges: PSNR of a denoised noisy copy must beat the noisy one. */
static void check_denoises(const wcm_model *m, const char *name) {
    wcm_error err;
    const int size = 40 << m->levels;
    wcm_tensor clean = {0}, noisy = {0}, out = {0};
    REQUIRE_OK(wcm_tensor_alloc(&clean, 1, size, size, 1, &err), &err);
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++) {
            double r = hypot(y - size * 0.45, x - size * 0.5) / size;
            clean.data[y * size + x] = (float)(0.25 + 0.5 * (r < 0.3) + 0.15 * sin(x * 6.0 / size) * cos(y * 5.0 / size));
        }
    REQUIRE_OK(wcm_tensor_copy(&noisy, &clean, &err), &err);
    REQUIRE_OK(wcm_add_noise(&noisy, 25.0 / 255, 7, 0, &err), &err);
    REQUIRE_OK(wcm_denoise(m, &noisy, 0, &out, &err), &err);
    const size_t n = (size_t)size * size;
    const double before = wcm_psnr(clean.data, noisy.data, n), after = wcm_psnr(clean.data, out.data, n);
    CHECK(after > before + 5, "%s: denoises a %dx%d test image at sigma 25 (%.2f -> %.2f dB)", name, size, size, before,
          after);
    wcm_tensor_free(&clean);
    wcm_tensor_free(&noisy);
    wcm_tensor_free(&out);
}

int main(void) {
    const char *shared = t_shared_dir();
    int compared = 0;
    for (size_t i = 0; i < sizeof models / sizeof *models; i++) {
        const shipped *s = &models[i];
        char path[4096];
        snprintf(path, sizeof path, "%s/models/%s", WCM_SOURCE_DIR, s->file);
        wcm_error err;
        wcm_model m;
        REQUIRE_OK(wcm_model_load(path, &m, &err), &err);
        int arch = m.multiscale && m.levels == s->levels && m.low && wcm_net_get_kind(m.low) == WCM_NET_LOWPASS;
        for (int j = 0; arch && j < s->levels; j++) arch = m.cond[j] && wcm_net_nominal_rf(m.cond[j]) == s->rf;
        CHECK(arch, "%s: multi-scale, J = %d, low-pass net and RF %d conditional nets", s->file, s->levels, s->rf);
        check_denoises(&m, s->file);
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/weights/kadkhodaie2023/denoisers/multi_scale/%s", shared, s->authors_dir ? s->authors_dir : "");
        if (s->authors_dir && t_is_dir(dir)) {
            snprintf(path, sizeof path, "%s/noise_range_0to255_RF_40x40_low/model.pt", dir);
            wcm_net *net;
            REQUIRE_OK(wcm_net_load_torch(path, &net, &err), &err);
            int same = same_params(net, m.low);
            wcm_net_free(net);
            for (int j = 0; j < s->levels; j++) {
                snprintf(path, sizeof path, "%s/noise_range_0to255_RF_%dx%d_scale_%d/model.pt", dir, s->rf, s->rf, j);
                REQUIRE_OK(wcm_net_load_torch(path, &net, &err), &err);
                same &= same_params(net, m.cond[j]);
                wcm_net_free(net);
            }
            CHECK(same, "%s: every parameter and running_sd equals the authors' checkpoint bit for bit", s->file);
            compared++;
        }
        wcm_model_free(&m);
    }
    if (!compared) printf("note: no ../shared: the shipped authors' models were not compared with their checkpoints\n");
    return t_done("test_shipped_models");
}

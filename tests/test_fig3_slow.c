/* Figure 3 against the authors' numbers (label "slow"): import the 5 flat and
 * 5 multi-scale 160x160 models, run `wcm eval-denoise` on the first 50 images
 * of celeba/test, and compare every curve with reference/fig3_devtest50.json:
 * within 0.05 dB at the 7 levels up to sigma 108, 0.15 dB at the 3 highest. */
#include "testutil.h"
#include "testjson.h"
#include "wcm/io.h"

#include <unistd.h>

static int sh(const char *cmd) {
    printf("$ %s\n", cmd);
    fflush(stdout);
    return system(cmd);
}

static void compare(const char *label, const wcm_json *ref, const wcm_json *got) {
    size_t n = wcm_json_count(ref);
    if (!got || wcm_json_count(got) != n) {
        CHECK(0, "%s: curve missing or wrong length", label);
        return;
    }
    double worst_low = 0, worst_high = 0;
    for (size_t i = 0; i < n; i++) {
        double a, b;
        wcm_json_number(wcm_json_at(ref, i), &a);
        wcm_json_number(wcm_json_at(got, i), &b);
        double d = fabs(a - b);
        if (i < 7) worst_low = fmax(worst_low, d);
        else worst_high = fmax(worst_high, d);
    }
    CHECK(worst_low <= 0.05 && worst_high <= 0.15, "%-28s max |dPSNR| %.3f dB (sigma <= 108), %.3f dB (3 highest)", label,
          worst_low, worst_high);
}

int main(void) {
    const char *shared = t_shared_dir();
    char w[4096], data[4096], ref[4096], cmd[16384];
    snprintf(w, sizeof w, "%s/weights/kadkhodaie2023/denoisers", shared);
    snprintf(data, sizeof data, "%s/data/celeba/test", shared);
    snprintf(ref, sizeof ref, "%s/reference/fig3_devtest50.json", shared);
    if (!t_is_dir(w) || !t_is_dir(data) || access(ref, R_OK) != 0) SKIP("needs %s, %s and %s", w, data, ref);
    char tmp[] = "/tmp/wcm_fig3_XXXXXX";
    if (!mkdtemp(tmp)) SKIP("no temporary directory");
    const int rfs[5] = {5, 9, 13, 23, 43};
    char models[8192] = "";
    for (int i = 0; i < 5; i++) {
        snprintf(cmd, sizeof cmd, "'%s' import-torch -o %s/flat_rf%d.safetensors %s/flat/celebA_160x160_gray/noise_range_0to255_RF_%dx%d/model.pt >/dev/null",
                 WCM_CLI_PATH, tmp, rfs[i], w, rfs[i], rfs[i]);
        CHECK(sh(cmd) == 0, "import flat RF %d", rfs[i]);
        const char *ms = "multi_scale/celebA_160x160_gray";
        snprintf(cmd, sizeof cmd,
                 "'%s' import-torch -o %s/ms_rf%d.safetensors --low %s/%s/noise_range_0to255_RF_40x40_low/model.pt "
                 "%s/%s/noise_range_0to255_RF_%dx%d_scale_0/model.pt %s/%s/noise_range_0to255_RF_%dx%d_scale_1/model.pt >/dev/null",
                 WCM_CLI_PATH, tmp, rfs[i], w, ms, w, ms, rfs[i], rfs[i], w, ms, rfs[i], rfs[i]);
        CHECK(sh(cmd) == 0, "import multi-scale RF %d", rfs[i]);
        char part[1024];
        snprintf(part, sizeof part, " %s/flat_rf%d.safetensors %s/ms_rf%d.safetensors", tmp, rfs[i], tmp, rfs[i]);
        strncat(models, part, sizeof models - strlen(models) - 1);
    }
    double t0 = wcm_seconds();
    snprintf(cmd, sizeof cmd, "'%s' eval-denoise --images %s --n 50 --out %s/eval%s", WCM_CLI_PATH, data, tmp, models);
    CHECK(sh(cmd) == 0, "eval-denoise ran (%.1f s)", wcm_seconds() - t0);
    snprintf(cmd, sizeof cmd, "%s/eval/results.json", tmp);
    wcm_json *got = t_load_json(cmd), *want = t_load_json(ref);
    if (!got || !want) {
        CHECK(0, "results.json and the reference parse");
        return t_done("test_fig3_slow");
    }
    const wcm_json *gm = wcm_json_get(got, "models");
    compare("noisy input", wcm_json_get(want, "noisy"), wcm_json_get(got, "noisy"));
    for (int i = 0; i < 5; i++) {
        char key[8], name[64];
        snprintf(key, sizeof key, "%d", rfs[i]);
        snprintf(name, sizeof name, "flat_rf%d", rfs[i]);
        compare(name, wcm_json_get(wcm_json_get(want, "flat"), key), wcm_json_get(gm, name));
        snprintf(name, sizeof name, "ms_rf%d", rfs[i]);
        compare(name, wcm_json_get(wcm_json_get(want, "multiscale"), key), wcm_json_get(gm, name));
    }
    compare("ms_rf13:lowpass-only", wcm_json_get(want, "lowpass_only"), wcm_json_get(gm, "ms_rf13:lowpass-only"));
    wcm_json_free(got);
    wcm_json_free(want);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (!getenv("WCM_KEEP")) sh(cmd);
    return t_done("test_fig3_slow");
}

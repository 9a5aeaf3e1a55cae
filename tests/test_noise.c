/* Noise generators: the PyTorch-compatible one reproduces values recorded
 * from torch 1.13 (torch.manual_seed(s); torch.randn(...)), including the
 * tail recomputation for sizes not divisible by 16; statistics of both kinds;
 * the noisy image formula. */
#include "testutil.h"
#include "wcm/denoise.h"
#include "wcm/rng_torch.h"

int main(void) {
    /* torch.manual_seed(0); torch.randn(20) */
    const float want0[20] = {-1.1258398e+00f, -1.1523602e+00f, -2.5057858e-01f, -4.3387881e-01f, 5.9883946e-01f,
                             -1.5550951e+00f, -3.4136039e-01f, 1.8530061e+00f,  4.6809641e-01f,  -1.5771244e-01f,
                             1.4436601e+00f,  2.6604941e-01f,  1.3893661e+00f,  1.5863342e+00f,  9.4629836e-01f,
                             -8.4367675e-01f, 9.3182659e-01f,  1.2590092e+00f,  2.0049806e+00f,  5.3736903e-02f};
    float z[20];
    wcm_randn_torch(0, z, 20);
    double worst = 0;
    for (int i = 0; i < 20; i++) worst = fmax(worst, fabs(z[i] - want0[i]));
    CHECK(worst < 2e-6, "torch.randn(20) with seed 0 (incl. the recomputed tail): max |diff| %.2e", worst);
    /* torch.manual_seed(12345); torch.randn(50,1,16,16).flatten()[0, 1, 777, 12799] */
    float *big = malloc(sizeof(float) * 12800);
    wcm_randn_torch(12345, big, 12800);
    const int idx[4] = {0, 1, 777, 12799};
    const float want1[4] = {-1.4798077e+00f, 4.8730600e-01f, -9.6164328e-01f, 1.8318519e-01f};
    worst = 0;
    for (int i = 0; i < 4; i++) worst = fmax(worst, fabs(big[idx[i]] - want1[i]));
    CHECK(worst < 2e-6, "torch.randn(50,1,16,16) with seed 12345 at 4 positions: max |diff| %.2e", worst);
    /* Statistics of both kinds over 12800 values. */
    for (int kind = 0; kind < 2; kind++) {
        wcm_noise_pattern((wcm_noise_kind)kind, 3, 50, 256, big);
        double m = 0, v = 0;
        for (int i = 0; i < 12800; i++) m += big[i];
        m /= 12800;
        for (int i = 0; i < 12800; i++) v += (big[i] - m) * (big[i] - m);
        v /= 12800;
        CHECK(fabs(m) < 0.03 && fabs(v - 1) < 0.05, "%s noise: mean %.4f, variance %.4f", kind ? "philox" : "torch", m, v);
    }
    float clean[3] = {0.5f, 0.25f, 1.0f}, pat[3] = {1.0f, -2.0f, 0.5f}, noisy[3];
    wcm_noise_apply_255(clean, pat, 3, 51.0, noisy);
    CHECK(fabs(noisy[0] - 0.7f) < 1e-7 && fabs(noisy[1] - (0.25f - 0.4f)) < 1e-7 && fabs(noisy[2] - 1.1f) < 1e-7,
          "noisy = clean + z * sigma/255: %.6f %.6f %.6f", noisy[0], noisy[1], noisy[2]);
    float former[3];
    wcm_noise_apply(clean, pat, 3, 51.0, former);
    CHECK(!memcmp(former, noisy, sizeof noisy), "wcm_noise_apply (the former name) gives the same values");
    /* wcm_add_noise's sigma is in [0, 1] units: sigma 51/255 on zeros gives 0.2 z with z the philox pattern. */
    wcm_tensor zeros;
    wcm_error err;
    REQUIRE_OK(wcm_tensor_alloc(&zeros, 2, 4, 4, 1, &err), &err);
    REQUIRE_OK(wcm_add_noise(&zeros, 51.0 / 255, 9, 0, &err), &err);
    wcm_noise_pattern(WCM_NOISE_PHILOX, 9, 2, 16, big);
    worst = 0;
    for (int i = 0; i < 32; i++) worst = fmax(worst, fabs(zeros.data[i] - 0.2 * big[i]));
    CHECK(worst < 1e-7, "wcm_add_noise(sigma 0.2) = 0.2 * the philox pattern: max |diff| %.2e", worst);
    wcm_tensor_free(&zeros);
    /* PSNRs: MSE 0.01 -> 20 dB; the clamped form clamps the estimate to [-1, 2] first. */
    const float ref[4] = {0.0f, 0.5f, 1.0f, 0.25f};
    const float est[4] = {0.1f, 0.4f, 1.1f, 0.15f}, wild[4] = {-3.0f, 0.5f, 5.0f, 0.25f};
    double p = wcm_psnr(ref, est, 4), pc = wcm_psnr_clamped(ref, est, 4);
    CHECK(fabs(p - 20.0) < 1e-5 && fabs(pc - p) < 1e-9, "PSNR of errors of 0.1: %.6f dB, clamped %.6f dB", p, pc);
    pc = wcm_psnr_clamped(ref, wild, 4);
    const double want = 10 * log10(4.0 / (1.0 + 1.0)); /* errors -1 and 1 after clamping */
    CHECK(fabs(pc - want) < 1e-9 && wcm_psnr(ref, wild, 4) < pc,
          "clamped PSNR of values -3 and 5 counts errors -1 and 1: %.6f dB (want %.6f)", pc, want);
    free(big);
    return t_done("test_noise");
}

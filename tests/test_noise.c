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
    wcm_noise_apply(clean, pat, 3, 51.0, noisy);
    CHECK(fabs(noisy[0] - 0.7f) < 1e-7 && fabs(noisy[1] - (0.25f - 0.4f)) < 1e-7 && fabs(noisy[2] - 1.1f) < 1e-7,
          "noisy = clean + z * sigma/255: %.6f %.6f %.6f", noisy[0], noisy[1], noisy[2]);
    free(big);
    return t_done("test_noise");
}

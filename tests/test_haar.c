/* Haar pyramid: golden parity with the reference (pywt db1 / 2^(j+1)),
 * perfect reconstruction for several sizes and J up to 5, error on bad sizes. */
#include "testutil.h"
#include "wcm/haar.h"

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > m) m = d;
    }
    return m;
}

static void golden(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/haar_input.npy", t_golden_dir());
    wcm_error err;
    wcm_array a;
    if (wcm_npy_read(path, &a, &err) != 0) {
        printf("skip golden Haar: %s\n", err.msg);
        return;
    }
    wcm_tensor img, lvl;
    REQUIRE_OK(wcm_tensor_from_nchw(&img, &a, &err), &err);
    wcm_array_free(&a);
    wcm_pyramid p;
    REQUIRE_OK(wcm_haar_forward(&img, 3, &p, &err), &err);
    for (int j = 0; j < 3; j++) {
        snprintf(path, sizeof path, "%s/haar_scale%d.npy", t_golden_dir(), j);
        REQUIRE_OK(wcm_npy_read(path, &a, &err), &err);
        REQUIRE_OK(wcm_tensor_from_nchw(&lvl, &a, &err), &err);
        int same_shape = lvl.n == p.level[j].n && lvl.h == p.level[j].h && lvl.w == p.level[j].w && lvl.c == 4;
        double d = same_shape ? max_abs_diff(lvl.data, p.level[j].data, wcm_tensor_count(&lvl)) : 1e9;
        CHECK(d <= 1e-6, "golden Haar level %d (%dx%dx4): max |diff| = %.3g <= 1e-6", j, lvl.h, lvl.w, d);
        wcm_tensor_free(&lvl);
        wcm_array_free(&a);
    }
    wcm_tensor back;
    REQUIRE_OK(wcm_haar_inverse(&p, &back, &err), &err);
    double d = max_abs_diff(back.data, img.data, wcm_tensor_count(&img));
    CHECK(d <= 1e-6, "golden Haar input reconstructed from 3 levels: max |diff| = %.3g", d);
    wcm_tensor_free(&back);
    wcm_pyramid_free(&p);
    wcm_tensor_free(&img);
}

static void round_trips(void) {
    const int sizes[][3] = {{2, 2, 1}, {32, 32, 5}, {64, 96, 5}, {40, 40, 3}, {160, 160, 2}, {320, 320, 3}, {6, 10, 1}};
    unsigned long long seed = 7;
    wcm_error err;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int h = sizes[s][0], w = sizes[s][1], J = sizes[s][2];
        wcm_tensor img, back;
        REQUIRE_OK(wcm_tensor_alloc(&img, 2, h, w, 1, &err), &err);
        for (size_t i = 0; i < wcm_tensor_count(&img); i++) img.data[i] = 0.5f + 0.5f * t_rand(&seed);
        wcm_pyramid p;
        REQUIRE_OK(wcm_haar_forward(&img, J, &p, &err), &err);
        REQUIRE_OK(wcm_haar_inverse(&p, &back, &err), &err);
        double d = max_abs_diff(back.data, img.data, wcm_tensor_count(&img));
        CHECK(d <= 1e-6, "forward/inverse round trip %dx%d, J=%d, batch 2: max |diff| = %.3g", h, w, J, d);
        /* The low-pass is a local mean: the coarsest low equals the block average. */
        int f = 1 << J;
        double sum = 0;
        for (int y = 0; y < f; y++)
            for (int x = 0; x < f; x++) sum += img.data[(size_t)y * w + x];
        double low = p.level[J - 1].data[0];
        CHECK(fabs(low - sum / (f * f)) < 1e-6, "coarsest low-pass equals the %dx%d block mean (%.6f vs %.6f)", f, f, low,
              sum / (f * f));
        wcm_pyramid_free(&p);
        wcm_tensor_free(&img);
        wcm_tensor_free(&back);
    }
    /* One block by hand: a=1 b=2 c=3 d=4. */
    wcm_tensor x, y;
    REQUIRE_OK(wcm_tensor_alloc(&x, 1, 2, 2, 1, &err), &err);
    x.data[0] = 1, x.data[1] = 2, x.data[2] = 3, x.data[3] = 4;
    REQUIRE_OK(wcm_haar_split(&x, &y, &err), &err);
    CHECK(y.data[0] == 2.5f && y.data[1] == -1.0f && y.data[2] == -0.5f && y.data[3] == 0.0f,
          "hand-computed block: low %.2f H %.2f V %.2f D %.2f (expect 2.5 -1 -0.5 0)", y.data[0], y.data[1], y.data[2],
          y.data[3]);
    wcm_tensor_free(&x);
    wcm_tensor_free(&y);
}

static void bad_sizes(void) {
    wcm_error err;
    wcm_tensor img;
    wcm_pyramid p;
    REQUIRE_OK(wcm_tensor_alloc(&img, 1, 36, 40, 1, &err), &err);
    int rc = wcm_haar_forward(&img, 3, &p, &err);
    CHECK(rc == WCM_ERR_SHAPE, "36x40 with J=3 is refused: \"%s\"", err.msg);
    rc = wcm_haar_forward(&img, 0, &p, &err);
    CHECK(rc == WCM_ERR_ARG, "J=0 is refused: \"%s\"", err.msg);
    wcm_tensor_free(&img);
}

int main(void) {
    golden();
    round_trips();
    bad_sizes();
    return t_done("test_haar");
}

/* Jacobian rows on networks with random weights (no ../shared needed):
 * rows against central finite differences of wcm_denoise (the compiled
 * inference path, independent of the backward passes), homogeneity
 * sum_k J[p][k] y_k = D(y)[p], residual = identity - denoiser, the whole
 * Jacobian against the rows mode, the spectrum of matrices with known
 * eigenvalues, the figure tiles and the refusals. */
#include "random_net.h"
#include "testutil.h"

#include "wcm/backend.h"
#include "wcm/denoise.h"
#include "wcm/jacobian.h"

static wcm_error err;

static void single_model(wcm_model *m, wcm_net *net) {
    memset(m, 0, sizeof *m);
    wcm_array_list_init(&m->meta);
    m->net = net;
}

static void multiscale_model(wcm_model *m, int rf) {
    memset(m, 0, sizeof *m);
    wcm_array_list_init(&m->meta);
    m->multiscale = 1;
    m->levels = 2;
    m->low = random_net(WCM_NET_LOWPASS, 0, 11);
    m->cond[0] = random_net(WCM_NET_CONDITIONAL, rf, 12);
    m->cond[1] = random_net(WCM_NET_CONDITIONAL, rf, 13);
}

/* A smooth image plus noise, h x w. */
static void test_image(float *y, int h, int w, unsigned long long seed) {
    for (int i = 0; i < h; i++)
        for (int j = 0; j < w; j++)
            y[i * w + j] = 0.3f + 0.4f * (float)j / (float)w + 0.1f * t_rand(&seed);
}

/* D (or f with residual) at y through wcm_denoise. */
static void denoise_at(const wcm_model *m, const float *y, int h, int w, int lowpass_only, int residual, float *out) {
    wcm_tensor in = {0}, o = {0};
    REQUIRE_OK(wcm_tensor_alloc(&in, 1, h, w, 1, &err), &err);
    memcpy(in.data, y, (size_t)h * w * sizeof(float));
    REQUIRE_OK(wcm_denoise(m, &in, lowpass_only, &o, &err), &err);
    for (int k = 0; k < h * w; k++) out[k] = residual ? y[k] - o.data[k] : o.data[k];
    wcm_tensor_free(&in);
    wcm_tensor_free(&o);
}

/* Rows of a few pixels against finite differences along a few columns, and homogeneity. */
static void check_rows(const char *what, const wcm_model *m, int h, int w, unsigned flags) {
    const int n = h * w, lowpass_only = (flags & WCM_JACOBIAN_LOWPASS_ONLY) != 0,
              residual = (flags & WCM_JACOBIAN_RESIDUAL) != 0;
    float *y = malloc(n * sizeof(float)), *rows = malloc(4 * n * sizeof(float));
    float *plus = malloc(n * sizeof(float)), *minus = malloc(n * sizeof(float)), *d = malloc(n * sizeof(float));
    test_image(y, h, w, 99);
    const int pixels[8] = {h / 2, w / 2, 0, 0, h - 1, 3, 2, w - 1};
    wcm_jacobian *jac;
    REQUIRE_OK(wcm_jacobian_create(&jac, m, y, h, w, flags, &err), &err);
    REQUIRE_OK(wcm_jacobian_rows(jac, pixels, 4, rows, &err), &err);
    /* The value equals the inference path's output. */
    denoise_at(m, y, h, w, lowpass_only, residual, d);
    double vgap = 0, vmax = 0, hgap = 0;
    for (int k = 0; k < n; k++) {
        vgap = fmax(vgap, fabs(d[k] - wcm_jacobian_value(jac)[k]));
        vmax = fmax(vmax, fabs(d[k]));
    }
    CHECK(vgap <= 1e-5 * fmax(vmax, 1), "%s: the linearisation's value equals wcm_denoise (max gap %.2g)", what, vgap);
    /* Homogeneity, row by row. */
    for (int q = 0; q < 4; q++) {
        const double dot = t_dot(rows + (size_t)q * n, y, n);
        const double v = wcm_jacobian_value(jac)[pixels[2 * q] * w + pixels[2 * q + 1]];
        hgap = fmax(hgap, fabs(dot - v));
    }
    CHECK(hgap <= 1e-4, "%s: sum_k J[p][k] y_k = value[p] for 4 rows (max gap %.2g)", what, hgap);
    /* Finite differences along columns near the pixels. The networks are
     * piecewise linear, so a difference is exact up to float rounding unless
     * some ReLU flips within +-eps, which random networks at eps = 1e-3 do
     * for a few entries: those must still match one of the one-sided
     * differences (a flip on one side only), and at most 10% may match none
     * (flips on both sides). The exact comparisons are the PyTorch goldens
     * of test_jacobian_golden. */
    cmp c = {0};
    const float eps = 1e-3f;
    int one_sided = 0, unmatched = 0;
    for (int q = 0; q < 4; q++)
        for (int t = 0; t < 3; t++) {
            const int ci = (pixels[2 * q] + t) % h, cj = (pixels[2 * q + 1] + 2 * t) % w, k = ci * w + cj;
            const float keep = y[k];
            y[k] = keep + eps;
            denoise_at(m, y, h, w, lowpass_only, residual, plus);
            y[k] = keep - eps;
            denoise_at(m, y, h, w, lowpass_only, residual, minus);
            y[k] = keep;
            for (int r = 0; r < 4; r++) {
                const int p = pixels[2 * r] * w + pixels[2 * r + 1];
                const double a = rows[(size_t)r * n + k], central = ((double)plus[p] - minus[p]) / (2.0 * eps);
                const double fwd = ((double)plus[p] - d[p]) / eps, bwd = ((double)d[p] - minus[p]) / eps;
                const double tol = 2e-3;
                if (fabs(a - central) <= tol) cmp_add(&c, a, central);
                else if (fmin(fabs(a - fwd), fabs(a - bwd)) <= 2 * tol) one_sided++;
                else unmatched++;
            }
        }
    CHECK(c.n >= 36 && unmatched <= 4,
          "%s: %d of 48 entries equal central differences of wcm_denoise (max gap %.2g), %d one-sided ones, %d at "
          "ReLU flips on both sides",
          what, c.n, c.max_diff, one_sided, unmatched);
    wcm_jacobian_free(jac);
    free(y), free(rows), free(plus), free(minus), free(d);
}

/* Rows of D and of f = y - D add up to the identity. */
static void check_residual(const char *what, const wcm_model *m, int h, int w) {
    const int n = h * w;
    float *y = malloc(n * sizeof(float)), *a = malloc(2 * n * sizeof(float)), *b = malloc(2 * n * sizeof(float));
    test_image(y, h, w, 5);
    const int pixels[4] = {1, 2, h / 2, w / 2};
    wcm_jacobian *jd, *jf;
    REQUIRE_OK(wcm_jacobian_create(&jd, m, y, h, w, 0, &err), &err);
    REQUIRE_OK(wcm_jacobian_create(&jf, m, y, h, w, WCM_JACOBIAN_RESIDUAL, &err), &err);
    REQUIRE_OK(wcm_jacobian_rows(jd, pixels, 2, a, &err), &err);
    REQUIRE_OK(wcm_jacobian_rows(jf, pixels, 2, b, &err), &err);
    double gap = 0;
    for (int q = 0; q < 2; q++)
        for (int k = 0; k < n; k++) {
            const double id = k == pixels[2 * q] * w + pixels[2 * q + 1];
            gap = fmax(gap, fabs(a[(size_t)q * n + k] + b[(size_t)q * n + k] - id));
        }
    CHECK(gap <= 1e-6, "%s: rows of D plus rows of f = identity rows (max gap %.2g)", what, gap);
    wcm_jacobian_free(jd);
    wcm_jacobian_free(jf);
    free(y), free(a), free(b);
}

static void check_full(void) {
    wcm_model m;
    single_model(&m, random_net(WCM_NET_LOWPASS, 0, 3));
    const int h = 12, w = 10, n = h * w;
    float *y = malloc(n * sizeof(float)), *full = malloc((size_t)n * n * sizeof(float)), *row = malloc(n * sizeof(float));
    test_image(y, h, w, 8);
    wcm_jacobian *jac;
    REQUIRE_OK(wcm_jacobian_create(&jac, &m, y, h, w, 0, &err), &err);
    REQUIRE_OK(wcm_jacobian_full(jac, full, &err), &err);
    double gap = 0;
    for (int p = 0; p < n; p += 7) {
        const int px[2] = {p / w, p % w};
        REQUIRE_OK(wcm_jacobian_rows(jac, px, 1, row, &err), &err);
        for (int k = 0; k < n; k++) gap = fmax(gap, fabs(row[k] - full[(size_t)p * n + k]));
    }
    CHECK(gap == 0, "low-pass net, 12x10: rows of the whole Jacobian equal the single-row mode's (max gap %.2g)", gap);
    double *eig = malloc(n * sizeof(double));
    wcm_jacobian_spectrum s;
    REQUIRE_OK(wcm_jacobian_spectrum_compute(full, n, eig, &s, &err), &err);
    double sum = 0;
    for (int k = 0; k < n; k++) sum += eig[k];
    CHECK(fabs(sum - s.trace) <= 1e-4 * fmax(1, fabs(s.trace)),
          "low-pass net: eigenvalues of the symmetric part sum to the trace %.5f (%.5f), range [%.4f, %.4f]", s.trace, sum,
          s.eig_min, s.eig_max);
    wcm_jacobian_free(jac);
    wcm_model_free(&m);
    free(y), free(full), free(row), free(eig);
}

/* J = Q diag(lambda) Q^T + K with Q a product of two Householder
 * reflections and K antisymmetric: the symmetric part's eigenvalues are lambda. */
static void check_spectrum(void) {
    const int n = 50;
    double *q = calloc((size_t)n * n, sizeof(double)), *lam = malloc(n * sizeof(double)), *eig = malloc(n * sizeof(double));
    float *j = malloc((size_t)n * n * sizeof(float));
    unsigned long long seed = 77;
    for (int i = 0; i < n; i++) q[i * n + i] = 1;
    for (int r = 0; r < 2; r++) { /* Q <- Q (I - 2 v v^T / v^T v) */
        double v[50], vv = 0;
        for (int i = 0; i < n; i++) v[i] = t_rand(&seed), vv += v[i] * v[i];
        for (int i = 0; i < n; i++) {
            double qv = 0;
            for (int k = 0; k < n; k++) qv += q[i * n + k] * v[k];
            for (int k = 0; k < n; k++) q[i * n + k] -= 2 * qv * v[k] / vv;
        }
    }
    double trace = 0, sym = 0, anti = 0;
    for (int i = 0; i < n; i++) lam[i] = i < 5 ? 1.0 - 0.01 * i : exp(-0.2 * i) - 0.05, trace += lam[i];
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++) {
            double s = 0;
            for (int k = 0; k < n; k++) s += q[a * n + k] * lam[k] * q[b * n + k];
            j[a * n + b] = (float)(s + 0.01 * (b - a) / n); /* plus an antisymmetric part */
        }
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++) {
            const double x = j[a * n + b], y = j[b * n + a];
            sym += (x + y) * (x + y), anti += (x - y) * (x - y);
        }
    wcm_jacobian_spectrum s;
    REQUIRE_OK(wcm_jacobian_spectrum_compute(j, n, eig, &s, &err), &err);
    /* lam sorted decreasing: it already is. */
    double gap = 0;
    for (int i = 0; i < n; i++) gap = fmax(gap, fabs(eig[i] - lam[i]));
    CHECK(gap <= 1e-5, "50x50 matrix with known spectrum: eigenvalues of the symmetric part exact (max gap %.2g)", gap);
    CHECK(fabs(s.trace - trace) <= 1e-4 && fabs(s.asymmetry - sqrt(anti / sym)) <= 1e-9 && s.asymmetry > 0,
          "trace %.6f (expected %.6f) and asymmetry %.4g", s.trace, trace, s.asymmetry);
    free(q), free(lam), free(eig), free(j);
}

static void check_errors(void) {
    wcm_model flat, ms;
    single_model(&flat, random_net(WCM_NET_FLAT, 5, 1));
    multiscale_model(&ms, 5);
    float y[16 * 16] = {0};
    wcm_jacobian *jac = NULL;
    CHECK(wcm_jacobian_create(&jac, &flat, y, 16, 16, WCM_JACOBIAN_LOWPASS_ONLY, &err) == WCM_ERR_ARG && !jac,
          "--lowpass-only on a flat model is refused: %s", err.msg);
    CHECK(wcm_jacobian_create(&jac, &ms, y, 14, 16, 0, &err) == WCM_ERR_SHAPE && !jac,
          "a 14x16 image for a 2-level model is refused: %s", err.msg);
    REQUIRE_OK(wcm_jacobian_create(&jac, &flat, y, 16, 16, 0, &err), &err);
    const int bad[2] = {3, 16};
    float row[256];
    CHECK(wcm_jacobian_rows(jac, bad, 1, row, &err) == WCM_ERR_ARG, "pixel (3, 16) of a 16x16 image is refused: %s",
          err.msg);
    wcm_jacobian_free(jac);
    float *big = calloc(65 * 64, sizeof(float));
    REQUIRE_OK(wcm_jacobian_create(&jac, &flat, big, 65, 64, 0, &err), &err);
    CHECK(wcm_jacobian_full(jac, NULL, &err) == WCM_ERR_ARG, "the whole Jacobian of 65x64 is refused: %s", err.msg);
    wcm_jacobian_free(jac);
    free(big);
    /* Figure tiles: the image crop and the filter scaled so its peak is white. */
    float img[4 * 4], rows[16];
    for (int k = 0; k < 16; k++) img[k] = (float)k / 15.0f, rows[k] = k == 5 ? 2.0f : (k == 6 ? -1.0f : 0.0f);
    const int px[2] = {1, 1};
    wcm_tensor t = {0};
    REQUIRE_OK(wcm_jacobian_filter_tiles(img, 4, 4, rows, px, 1, 3, 2, &t, &err), &err);
    CHECK(t.n == 2 && t.h == 6 && t.w == 6 && fabsf(t.data[2 * 6 + 2] - img[5]) < 1e-7f &&
              t.data[36 + 2 * 6 + 2] == 1.0f && t.data[36 + 2 * 6 + 4] == 0.25f && t.data[36] == 0.5f,
          "filter tiles: 2 tiles of 6x6, image centre %.3f, filter peak white, -1/2 peak at 0.25, zero mid-gray",
          t.data[14]);
    wcm_tensor_free(&t);
    wcm_model_free(&flat);
    wcm_model_free(&ms);
}

int main(void) {
    /* Direct convolutions in the inference path: Winograd's float rounding
     * (about 1e-5) divided by eps would swamp the finite differences. */
    wcm_set_winograd(0);
    wcm_model flat, ms;
    single_model(&flat, random_net(WCM_NET_FLAT, 9, 21));
    multiscale_model(&ms, 5);
    check_rows("flat RF 9, 16x16, D", &flat, 16, 16, 0);
    check_rows("flat RF 9, 16x16, f (--residual)", &flat, 16, 16, WCM_JACOBIAN_RESIDUAL);
    check_rows("multi-scale J=2 RF 5, 16x16, D", &ms, 16, 16, 0);
    check_rows("multi-scale J=2 RF 5, 16x12, low-pass only", &ms, 16, 12, WCM_JACOBIAN_LOWPASS_ONLY);
    check_residual("flat", &flat, 16, 16);
    check_residual("multi-scale", &ms, 16, 16);
    check_full();
    check_spectrum();
    check_errors();
    wcm_model_free(&flat);
    wcm_model_free(&ms);
    return t_done("test_jacobian");
}

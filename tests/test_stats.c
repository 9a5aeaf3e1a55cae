/* Sample statistics (wcm/stats.h) on synthetic images with known statistics:
 * the DFT against the direct sum for lengths with every kind of factor,
 * Parseval and a pure cosine for the radial spectrum, KL 0 and log ratio 0
 * for identical (and reordered) sets, 20 log10 a for images scaled by a,
 * the stripe ratio of a ramp with injected 2-periodic stripes, KL of known
 * histograms, band KL only where the bands differ, divergence counts, the
 * nearest-image PSNR (cap for exact copies, 40 dB for a known offset), and
 * `wcm eval-samples` end to end on folders with a sampler log. */
#include "testutil.h"
#include "json.h"
#include "wcm/image.h"
#include "wcm/io.h"
#include "wcm/stats.h"

#include <unistd.h>

/* Smooth random images in [0.05, 0.95]: a few random cosines plus a little noise. */
static void make_faces(wcm_tensor *t, int n, int h, int w, unsigned long long seed) {
    wcm_error err;
    REQUIRE_OK(wcm_tensor_alloc(t, n, h, w, 1, &err), &err);
    for (int i = 0; i < n; i++) {
        double a[4], fy[4], fx[4], ph[4];
        for (int k = 0; k < 4; k++) {
            a[k] = 0.08 + 0.04 * t_rand(&seed);
            fy[k] = 0.02 + 0.1 * fabs(t_rand(&seed));
            fx[k] = 0.02 + 0.1 * fabs(t_rand(&seed));
            ph[k] = 3.0 * t_rand(&seed);
        }
        for (int r = 0; r < h; r++)
            for (int c = 0; c < w; c++) {
                double v = 0.5 + 0.03 * t_rand(&seed);
                for (int k = 0; k < 4; k++) v += a[k] * cos(2 * M_PI * (fy[k] * r + fx[k] * c) + ph[k]);
                t->data[((size_t)i * h + r) * w + c] = (float)fmin(fmax(v, 0.05), 0.95);
            }
    }
}

static void dft_checks(void) {
    const int lengths[] = {1, 2, 3, 5, 12, 17, 30, 97, 160};
    wcm_error err;
    unsigned long long seed = 3;
    for (size_t li = 0; li < sizeof lengths / sizeof *lengths; li++) {
        const int n = lengths[li];
        double *re = malloc(n * sizeof(double)), *im = malloc(n * sizeof(double));
        double *xr = malloc(n * sizeof(double)), *xi = malloc(n * sizeof(double));
        for (int k = 0; k < n; k++) xr[k] = re[k] = t_rand(&seed), xi[k] = im[k] = t_rand(&seed);
        REQUIRE_OK(wcm_dft(re, im, n, &err), &err);
        double worst = 0, scale = 0;
        for (int k = 0; k < n; k++) {
            long double sr = 0, si = 0;
            for (int m = 0; m < n; m++) {
                const long double a = -2.0L * 3.14159265358979323846264338327950288L * (long double)((long)k * m % n) / n;
                sr += xr[m] * cosl(a) - xi[m] * sinl(a);
                si += xr[m] * sinl(a) + xi[m] * cosl(a);
            }
            worst = fmax(worst, fmax(fabs(re[k] - (double)sr), fabs(im[k] - (double)si)));
            scale = fmax(scale, hypot((double)sr, (double)si));
        }
        CHECK(worst <= 1e-12 * fmax(scale, 1.0), "DFT of length %d equals the direct sum: max |diff| %.3g (largest |X| %.3g)",
              n, worst, scale);
        free(re), free(im), free(xr), free(xi);
    }
}

static void spectrum_checks(void) {
    wcm_error err;
    wcm_tensor img;
    make_faces(&img, 1, 20, 30, 11);
    wcm_radial_spectrum s;
    REQUIRE_OK(wcm_radial_spectrum_compute(&img, 0, &s, &err), &err);
    double energy = 0, mean = 0, var = 0;
    for (int k = 0; k < s.bands; k++) energy += s.power[k] * (double)s.count[k];
    for (int i = 0; i < 600; i++) mean += img.data[i] / 600.0;
    for (int i = 0; i < 600; i++) var += (img.data[i] - mean) * (img.data[i] - mean);
    CHECK(s.bands == 3 && fabs(energy - var) <= 1e-9 * var,
          "Parseval on a 20x30 image: sum over %d bands of power x frequencies = %.12g = sum (x - mean)^2 = %.12g", s.bands,
          energy, var);
    int64_t freqs = 0;
    for (int k = 0; k < s.bands; k++) freqs += s.count[k];
    CHECK(freqs == 599, "the bands hold every frequency but DC once: %lld of 20 x 30 - 1", (long long)freqs);
    wcm_tensor_free(&img);

    /* cos(2 pi (3 r / 32 + 5 c / 32)): |f| = sqrt(34) / 32 = 0.182, band 1 (0.125, 0.25]; power 1/2 spread over 2 frequencies. */
    REQUIRE_OK(wcm_tensor_alloc(&img, 1, 32, 32, 1, &err), &err);
    for (int r = 0; r < 32; r++)
        for (int c = 0; c < 32; c++) img.data[r * 32 + c] = (float)cos(2 * M_PI * (3.0 * r + 5.0 * c) / 32.0);
    REQUIRE_OK(wcm_radial_spectrum_compute(&img, 4, &s, &err), &err);
    double others = s.power[0] * s.count[0] + s.power[2] * s.count[2] + s.power[3] * s.count[3];
    CHECK(fabs(s.power[1] * s.count[1] - 0.5 * 1024) < 1e-3 && others < 1e-6,
          "a cosine at |f| = 0.182 puts its energy %.6g (expected 512) in band 1 (%.3g, %.3g], %.3g elsewhere",
          s.power[1] * s.count[1], s.lo[1], s.hi[1], others);
    wcm_tensor_free(&img);
    CHECK(wcm_radial_bands_auto(160, 160) == 6 && wcm_radial_bands_auto(40, 64) == 4 && wcm_radial_bands_auto(3, 3) == 1,
          "automatic octave bands: 6 for 160x160, 4 for 40x64, 1 for 3x3");
}

static void binning_and_kl_checks(void) {
    const wcm_binning b = {8, 0.1, -2.0, 2.0};
    CHECK(wcm_binning_index(&b, 0.0) == 5 && wcm_binning_index(&b, -1e-9) == 4,
          "asinh bins: 0 opens the upper middle bin (5 of 1..8), just below 0 the lower (4)");
    CHECK(wcm_binning_index(&b, 0.1 * sinh(2.0)) == 8 && wcm_binning_index(&b, 0.1 * sinh(2.0) * 1.001) == 9 &&
              wcm_binning_index(&b, -0.1 * sinh(2.0) * 1.001) == 0,
          "asinh bins: the largest real value is in the last inner bin, beyond it the overflow bin, below the underflow");
    const double q[2] = {4, 0}, p[2] = {2, 2};
    const double expect = 0.9 * log(0.9 / 0.5) + 0.1 * log(0.1 / 0.5);
    const double kl = wcm_histogram_kl(q, p, 2, 0.5);
    CHECK(fabs(kl - expect) < 1e-15, "KL({4, 0} || {2, 2}) with +0.5 smoothing = 0.9 ln 1.8 + 0.1 ln 0.2 = %.15g (got %.15g)",
          expect, kl);
    CHECK(wcm_histogram_kl(p, p, 2, 0.5) == 0.0, "KL of a histogram with itself is exactly 0");
}

static double max_abs_kl(const wcm_stats_comparison *c, int levels) {
    double m = fmax(fabs(c->pixel_kl), fabs(c->low_kl));
    for (int j = 0; j < levels; j++)
        for (int b = 0; b < 3; b++) m = fmax(m, fabs(c->band_kl[j][b]));
    return m;
}

static void set_checks(void) {
    wcm_error err;
    wcm_tensor real, other;
    make_faces(&real, 12, 32, 48, 5);
    wcm_stats_options o;
    wcm_stats_options_default(&o);
    wcm_stats_binning b;
    REQUIRE_OK(wcm_stats_binning_from_real(&real, &o, &b, &err), &err);
    wcm_set_stats *sr = malloc(sizeof *sr), *ss = malloc(sizeof *ss);
    wcm_stats_comparison c;
    REQUIRE_OK(wcm_set_stats_compute(&real, &b, sr, &err), &err);
    REQUIRE_OK(wcm_set_stats_compare(sr, sr, &b, &c, &err), &err);
    double worst_db = 0;
    for (int k = 0; k < c.spectrum_bands; k++) worst_db = fmax(worst_db, fabs(c.spectrum_db[k]));
    CHECK(max_abs_kl(&c, b.levels) == 0 && worst_db == 0, "identical sets: every KL 0 (largest %g), every spectrum log ratio 0 dB (largest %g)",
          max_abs_kl(&c, b.levels), worst_db);

    /* The same images in reverse order. */
    REQUIRE_OK(wcm_tensor_alloc(&other, 12, 32, 48, 1, &err), &err);
    const size_t hw = 32 * 48;
    for (int i = 0; i < 12; i++) memcpy(other.data + i * hw, real.data + (11 - i) * hw, hw * sizeof(float));
    REQUIRE_OK(wcm_set_stats_compute(&other, &b, ss, &err), &err);
    REQUIRE_OK(wcm_set_stats_compare(ss, sr, &b, &c, &err), &err);
    worst_db = 0;
    for (int k = 0; k < c.spectrum_bands; k++) worst_db = fmax(worst_db, fabs(c.spectrum_db[k]));
    CHECK(max_abs_kl(&c, b.levels) == 0 && worst_db < 1e-12 && fabs(c.stripe_h - c.stripe_h_real) < 1e-12,
          "reordered set: KL 0, spectrum within %.2g dB of 0, same stripe ratio", worst_db);

    /* Scaled by a = 0.5: 20 log10 0.5 = -6.0206 dB in every band. */
    for (size_t i = 0; i < wcm_tensor_count(&other); i++) other.data[i] = 0.5f * real.data[i];
    REQUIRE_OK(wcm_set_stats_compute(&other, &b, ss, &err), &err);
    REQUIRE_OK(wcm_set_stats_compare(ss, sr, &b, &c, &err), &err);
    worst_db = 0;
    for (int k = 0; k < c.spectrum_bands; k++) worst_db = fmax(worst_db, fabs(c.spectrum_db[k] - 20 * log10(0.5)));
    CHECK(worst_db < 1e-9, "images scaled by 0.5: spectrum log ratio %.6f dB in each of %d bands (expected %.6f)",
          c.spectrum_db[0], c.spectrum_bands, 20 * log10(0.5));
    CHECK(c.band_kl[0][0] > 0.1 && fabs(c.band_std_ratio[1][2] - 0.5) < 1e-6,
          "... and their band marginals move: level-0 H KL %.3f > 0.1, level-1 D std ratio %.6f = 0.5", c.band_kl[0][0],
          c.band_std_ratio[1][2]);

    /* Level-0 details removed (the low-pass-only reconstruction of level 0):
     * coarser levels and the low-pass are unchanged (KL 0); level 0 becomes a
     * point mass at 0, whose KL is -ln p(bin of 0) up to the smoothing. */
    wcm_pyramid p;
    REQUIRE_OK(wcm_haar_forward(&real, b.levels, &p, &err), &err);
    /* Each 2x2 block becomes its level-0 low-pass value: the pyramid of the
     * result has the same levels >= 1 bit for bit ((4 v) / 4 = v in floats). */
    const wcm_tensor *l0 = &p.level[0];
    for (int i = 0; i < 12; i++)
        for (int r = 0; r < 32; r++)
            for (int col = 0; col < 48; col++)
                other.data[i * hw + r * 48 + col] = l0->data[wcm_tensor_idx(l0, i, r / 2, col / 2, 0)];
    wcm_pyramid_free(&p);
    REQUIRE_OK(wcm_set_stats_compute(&other, &b, ss, &err), &err);
    REQUIRE_OK(wcm_set_stats_compare(ss, sr, &b, &c, &err), &err);
    double coarse = fabs(c.low_kl);
    for (int j = 1; j < b.levels; j++)
        for (int k = 0; k < 3; k++) coarse = fmax(coarse, fabs(c.band_kl[j][k]));
    /* Expected level-0 H KL from the real histogram: q has all N counts in the bin of 0. */
    const int nb = b.band[0][0].bins + 2, zero = wcm_binning_index(&b.band[0][0], 0.0);
    double n_real = 0, n_samp = 0;
    for (int i = 0; i < nb; i++) n_real += sr->band_hist[0][0][i], n_samp += ss->band_hist[0][0][i];
    double expect = 0;
    for (int i = 0; i < nb; i++) {
        const double qi = ((i == zero ? n_samp : 0) + 0.5) / (n_samp + 0.5 * nb);
        expect += qi * log(qi / ((sr->band_hist[0][0][i] + 0.5) / (n_real + 0.5 * nb)));
    }
    CHECK(coarse == 0 && fabs(c.band_kl[0][0] - expect) < 1e-9 * expect,
          "level-0 details set to 0: level 1-2 and low-pass KL %.2g; level-0 H KL %.6f = the point-mass value %.6f",
          coarse, c.band_kl[0][0], expect);
    CHECK(c.stripe_h < 0.01 && c.stripe_v < 0.01,
          "... and with no level-0 details every 2x2 block is flat: stripe ratios %.3g / %.3g", c.stripe_h, c.stripe_v);

    /* One image not finite, one out of range. */
    memcpy(other.data, real.data, wcm_tensor_count(&real) * sizeof(float));
    other.data[5] = NAN;
    other.data[hw + 7] = 3.0f;
    REQUIRE_OK(wcm_set_stats_compute(&other, &b, ss, &err), &err);
    CHECK(ss->images == 11 && ss->nonfinite == 1 && ss->out_of_range == 1 && ss->pixel_hist[b.pixel.bins + 1] == 1,
          "a NaN image is left out (%d of 12 summarised, %d not finite); a value 3 counts out of range (%d) in the overflow bin",
          ss->images, ss->nonfinite, ss->out_of_range);
    wcm_tensor_free(&other);
    wcm_tensor_free(&real);
    free(sr);
    free(ss);
}

static void stripe_checks(void) {
    /* x = g c + e (-1)^c: horizontal steps g - 2e at even c, g + 2e at odd c. */
    const double g = 0.01, e = 0.002;
    wcm_error err;
    wcm_tensor t;
    REQUIRE_OK(wcm_tensor_alloc(&t, 1, 16, 24, 1, &err), &err);
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 24; c++) t.data[r * 24 + c] = (float)(0.3 + g * c + e * (c % 2 ? -1 : 1));
    double h, v;
    REQUIRE_OK(wcm_stripe_ratio(&t, 0, &h, &v, &err), &err);
    const double expect = (g - 2 * e) / (g + 2 * e);
    CHECK(fabs(h - expect) < 1e-5 && v == 1.0, "ramp with 2-periodic stripes: horizontal ratio %.6f = (g - 2e) / (g + 2e) = %.6f, vertical %.1f",
          h, expect, v);
    wcm_tensor_free(&t);

    /* Two images with stripes e1, e2: the set's mean ratio is the mean of the
     * two, its standard error (sample sd / sqrt 2) is |r1 - r2| / 2. */
    const double e2 = 0.0005;
    REQUIRE_OK(wcm_tensor_alloc(&t, 2, 16, 24, 1, &err), &err);
    for (int i = 0; i < 2; i++)
        for (int r = 0; r < 16; r++)
            for (int c = 0; c < 24; c++)
                t.data[(i * 16 + r) * 24 + c] = (float)(0.3 + g * c + (i ? e2 : e) * (c % 2 ? -1 : 1));
    const double r1 = (g - 2 * e) / (g + 2 * e), r2 = (g - 2 * e2) / (g + 2 * e2);
    wcm_stats_options o;
    wcm_stats_options_default(&o);
    o.levels = 2;
    wcm_stats_binning b;
    REQUIRE_OK(wcm_stats_binning_from_real(&t, &o, &b, &err), &err);
    wcm_set_stats *st = malloc(sizeof *st);
    if (!st) exit(1);
    REQUIRE_OK(wcm_set_stats_compute(&t, &b, st, &err), &err);
    CHECK(fabs(st->stripe_h - (r1 + r2) / 2) < 1e-5 && fabs(st->stripe_h_se - fabs(r1 - r2) / 2) < 1e-5 &&
              st->stripe_v_se == 0.0,
          "two striped ramps: mean ratio %.6f = %.6f, standard error %.6f = |r1 - r2| / 2 = %.6f, rows' 0", st->stripe_h,
          (r1 + r2) / 2, st->stripe_h_se, fabs(r1 - r2) / 2);
    wcm_tensor one = wcm_tensor_view(t.data, 1, 16, 24, 1);
    REQUIRE_OK(wcm_set_stats_compute(&one, &b, st, &err), &err);
    CHECK(isnan(st->stripe_h_se) && isnan(st->stripe_v_se), "one image: no standard error (NaN)");
    free(st);
    wcm_tensor_free(&t);
}

static void nearest_checks(void) {
    wcm_error err;
    wcm_tensor train, batch2, samples;
    make_faces(&train, 10, 24, 24, 9);
    const size_t hw = 24 * 24;
    REQUIRE_OK(wcm_tensor_alloc(&samples, 3, 24, 24, 1, &err), &err);
    memcpy(samples.data, train.data + 2 * hw, hw * sizeof(float));
    memcpy(samples.data + hw, train.data + 7 * hw, hw * sizeof(float));
    for (size_t i = 0; i < hw; i++) samples.data[2 * hw + i] = train.data[4 * hw + i] + 0.01f;
    double mse[3] = {INFINITY, INFINITY, INFINITY};
    int idx[3] = {-1, -1, -1};
    /* Candidates in two batches: 0..5 and 6..9. */
    wcm_tensor first = wcm_tensor_view(train.data, 6, 24, 24, 1);
    batch2 = wcm_tensor_view(train.data + 6 * hw, 4, 24, 24, 1);
    REQUIRE_OK(wcm_nearest_update(&samples, &first, 0, mse, idx, &err), &err);
    REQUIRE_OK(wcm_nearest_update(&samples, &batch2, 6, mse, idx, &err), &err);
    CHECK(idx[0] == 2 && idx[1] == 7 && wcm_psnr_from_mse(mse[0]) == WCM_STATS_PSNR_CAP &&
              wcm_psnr_from_mse(mse[1]) == WCM_STATS_PSNR_CAP,
          "exact copies of training images 2 and 7 are found (%d, %d) at the PSNR cap %.0f dB", idx[0], idx[1],
          WCM_STATS_PSNR_CAP);
    CHECK(idx[2] == 4 && fabs(wcm_psnr_from_mse(mse[2]) - 40.0) < 1e-3,
          "training image 4 + 0.01 everywhere: nearest is 4 at %.4f dB (10 log10 1e4 = 40)", wcm_psnr_from_mse(mse[2]));
    wcm_tensor_free(&train);
    wcm_tensor_free(&samples);
}

/* Writes image i of t as DIR/NAME.npy. */
static void write_npy(const char *dir, const char *name, const wcm_tensor *t, int i) {
    char path[4096];
    wcm_error err;
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    REQUIRE_OK(wcm_image_write(path, t, i, 8, &err), &err);
}

static void cli_check(void) {
    char tmp[] = "/tmp/wcm_stats_XXXXXX", dir[4200], cmd[16384];
    if (!mkdtemp(tmp)) {
        CHECK(0, "temporary directory");
        return;
    }
    wcm_tensor real;
    make_faces(&real, 8, 32, 32, 21);
    const char *sub[] = {"real", "train", "samples", "out"};
    for (int i = 0; i < 3; i++) {
        snprintf(dir, sizeof dir, "%s/%s", tmp, sub[i]);
        mkdir(dir, 0777);
    }
    char name[64];
    for (int i = 0; i < 8; i++) {
        snprintf(name, sizeof name, "r%d", i);
        snprintf(dir, sizeof dir, "%s/real", tmp);
        write_npy(dir, name, &real, i);
        snprintf(dir, sizeof dir, "%s/train", tmp);
        write_npy(dir, name, &real, i);
    }
    /* Four samples: copies of real 0..3, sample 2 marked diverged by the log. */
    snprintf(dir, sizeof dir, "%s/samples", tmp);
    for (int k = 0; k < 4; k++) {
        snprintf(name, sizeof name, "sample_%03d", k);
        write_npy(dir, name, &real, k);
    }
    snprintf(cmd, sizeof cmd, "%s/log.json", dir);
    const char *log = "{\"command\": \"sample\", \"samples\": 4, \"nets\": {\"low\": {\"sample_status\": "
                      "[\"converged\", \"converged\", \"diverged\", \"converged\"]}, \"cond0\": {\"sample_status\": "
                      "[\"plateau\", \"converged\", \"skipped\", \"cap\"]}}}";
    wcm_error err;
    REQUIRE_OK(wcm_write_file_atomic(cmd, log, strlen(log), &err), &err);
    snprintf(cmd, sizeof cmd, "'%s' eval-samples --quiet %s/samples %s/real --train %s/train --out %s/out --levels 2 > %s/stdout.txt",
             WCM_CLI_PATH, tmp, tmp, tmp, tmp, tmp);
    int st = system(cmd);
    snprintf(cmd, sizeof cmd, "%s/out/eval_samples.json", tmp);
    unsigned char *text = NULL;
    size_t len = 0;
    wcm_json *j = NULL;
    if (st != 0 || wcm_read_file(cmd, &text, &len, &err) || wcm_json_parse((const char *)text, len, &j, &err)) {
        CHECK(0, "wcm eval-samples ran (status %d) and wrote eval_samples.json", st);
    } else {
        const wcm_json *set = wcm_json_at(wcm_json_get(j, "sets"), 0), *per = wcm_json_get(set, "per_sample");
        double frac = -1, nn0 = 0, nn3 = 0;
        wcm_json_number(wcm_json_get(set, "diverged_fraction"), &frac);
        wcm_json_number(wcm_json_get(wcm_json_at(per, 0), "nearest_train_psnr"), &nn0);
        wcm_json_number(wcm_json_get(wcm_json_at(per, 3), "nearest_train_psnr"), &nn3);
        const char *s0 = wcm_json_string(wcm_json_get(wcm_json_at(per, 0), "status"));
        const char *s3 = wcm_json_string(wcm_json_get(wcm_json_at(per, 3), "status"));
        const char *t3 = wcm_json_string(wcm_json_get(wcm_json_at(per, 3), "nearest_train"));
        CHECK(frac == 0.25 && s0 && !strcmp(s0, "plateau") && s3 && !strcmp(s3, "cap"),
              "eval-samples reads the sampler log: diverged fraction %.2f (1 of 4), statuses plateau and cap", frac);
        CHECK(nn0 == WCM_STATS_PSNR_CAP && nn3 == WCM_STATS_PSNR_CAP && t3 && !strcmp(t3, "r3.npy"),
              "eval-samples --train: copies of training images at the cap (%.0f, %.0f dB), sample 3 nearest to r3.npy", nn0, nn3);
        snprintf(cmd, sizeof cmd, "%s/out/eval_samples.csv", tmp);
        CHECK(access(cmd, R_OK) == 0, "eval-samples wrote eval_samples.csv");
    }
    free(text);
    wcm_json_free(j);
    /* Bad input: a missing folder gives one error line and a non-zero status. */
    snprintf(cmd, sizeof cmd, "'%s' eval-samples %s/none %s/real 2>/dev/null", WCM_CLI_PATH, tmp, tmp);
    st = system(cmd);
    CHECK(st != 0, "eval-samples on a missing folder fails (status %d)", st);
    wcm_tensor_free(&real);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) printf("could not remove %s\n", tmp);
}

int main(void) {
    dft_checks();
    spectrum_checks();
    binning_and_kl_checks();
    set_checks();
    stripe_checks();
    nearest_checks();
    cli_check();
    return t_done("test_stats");
}

/* wcm — statistics of images that judge samples: reference-free measures
 * (stripe ratio) and comparisons of a set of samples with a set of real
 * images (`wcm eval-samples`).
 *
 * A comparison has three steps:
 *   1. wcm_stats_binning_from_real: the histogram bins, fixed by the real set;
 *   2. wcm_set_stats_compute, once for the real set and once per sample set:
 *      histograms, power spectrum and stripe ratios of a batch of images;
 *   3. wcm_set_stats_compare: KL divergences, spectrum log ratios.
 *
 * Binning and smoothing (stated once, used everywhere):
 * - pixels and the coarsest Haar low-pass: `bins` bins uniform over [0, 1],
 *   plus one bin below 0 and one above 1;
 * - Haar details (band H, V, D of level j, wcm/haar.h): `bins` bins uniform in
 *   u = asinh(c / s) over [-A, A], where s is the standard deviation of the
 *   real images' coefficients of that band (around 0) and A = asinh(max|c| / s)
 *   over the real images, plus one bin below -A and one above A. The asinh
 *   map is linear near 0 and logarithmic in the tails, so both the peak and
 *   the heavy tails of the marginal get bins.
 * - KL divergence KL(samples || real) = sum_i q_i ln(q_i / p_i) in nats,
 *   where every bin count is first increased by `smoothing` (0.5, the
 *   Krichevsky-Trofimov estimate) and then normalised: q from the samples,
 *   p from the real images. Identical histograms give exactly 0; values the
 *   real images never take (a blown-up sample) land in the outer bins, where
 *   p is tiny, and raise the KL.
 * - Power spectrum: per image, the mean is subtracted, the 2-D DFT computed
 *   (any size; wcm's own mixed-radix FFT, no window), and |X(f)|^2 / (h w)
 *   averaged over the frequencies f of each radial band and over images.
 *   Frequencies are in cycles per pixel, |f| = sqrt(fy^2 + fx^2); band k
 *   (k = 0 the finest) holds 0.5 / 2^(k+1) < |f| <= 0.5 / 2^k, band 0 also
 *   the corners up to |f| = 0.71, and the last band everything down to (not
 *   including) DC. The comparison is 10 log10(P_samples / P_real) in dB per
 *   band: images scaled by a give 20 log10 a in every band.
 *
 * Images that are not finite are not summarised (they are counted); images
 * with a value outside [range_min, range_max] are summarised and counted. */
#ifndef WCM_STATS_H
#define WCM_STATS_H

#include "wcm/haar.h"
#include "wcm/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Stripe ratio of image `index` of a 1-channel batch: the mean absolute
 * difference between horizontal neighbours whose left pixel is on an even
 * column (a pair inside one 2x2 Haar block) divided by the same for odd
 * columns (a pair across two blocks); `vertical` is the same along columns.
 * Natural images give 1.00 within a few percent; a model whose finest-scale
 * details are wrong leaves 2-periodic stripes that move it away from 1.
 * Either output may be NULL. Needs h, w >= 3. */
int wcm_stripe_ratio(const wcm_tensor *t, int index, double *horizontal, double *vertical, wcm_error *err);

/* Standard error of the mean of n values (sample sd / sqrt(n)) from their sum
 * and sum of squares; NaN for n < 2. */
double wcm_standard_error(double sum, double sum_sq, int n);

/* Non-zero when every value of image `index` of a batch is finite. */
int wcm_image_finite(const wcm_tensor *t, int index);

/* Fourier power spectrum --------------------------------------------------- */

/* In-place DFT of n complex values (re[k], im[k]) with stride 1:
 * X[k] = sum_m x[m] exp(-2 pi i k m / n), for any n >= 1 (mixed radix,
 * O(n sum of prime factors)). */
int wcm_dft(double *re, double *im, int n, wcm_error *err);

#define WCM_STATS_MAX_FREQ_BANDS 16

typedef struct {
    int bands;                               /* radial bands, finest first */
    double lo[WCM_STATS_MAX_FREQ_BANDS];     /* band k: lo < |f| <= hi, cycles/pixel */
    double hi[WCM_STATS_MAX_FREQ_BANDS];
    double power[WCM_STATS_MAX_FREQ_BANDS];  /* mean |X(f)|^2 / (h w) over the band and the images */
    int64_t count[WCM_STATS_MAX_FREQ_BANDS]; /* frequencies in the band, summed over images */
    int images;
} wcm_radial_spectrum;

/* Octave bands for an h x w image: as many as fit above the lowest non-zero
 * frequency (floor(log2(min(h, w) / 2)), at least 1, at most the maximum). */
int wcm_radial_bands_auto(int h, int w);

/* Radially averaged power spectrum of every image of a 1-channel batch, in
 * `bands` octave bands (0: wcm_radial_bands_auto). Images that are not finite
 * are skipped (s->images counts the others). */
int wcm_radial_spectrum_compute(const wcm_tensor *images, int bands, wcm_radial_spectrum *s, wcm_error *err);

/* Histograms and KL divergence ----------------------------------------------- */

#define WCM_STATS_MAX_BINS 256

/* `bins` bins uniform in u over [lo, hi], plus an underflow bin (index 0) and
 * an overflow bin (index bins + 1); u = x when scale = 0, else
 * u = asinh(x / scale). */
typedef struct {
    int bins;
    double scale, lo, hi;
} wcm_binning;

/* Bin index of x in 0 .. bins + 1 (u = hi belongs to the last inner bin). */
int wcm_binning_index(const wcm_binning *b, double x);

/* KL(q || p) = sum_i q_i ln(q_i / p_i) in nats after adding `smoothing` to
 * every count of both histograms (nbins values each) and normalising. Returns
 * NaN when a histogram's smoothed total is not positive. */
double wcm_histogram_kl(const double *q_counts, const double *p_counts, int nbins, double smoothing);

/* A set of images against real images ----------------------------------------- */

typedef struct {
    int levels;             /* Haar levels for the band marginals (3) */
    int bins;               /* inner bins per histogram (64), up to WCM_STATS_MAX_BINS */
    double smoothing;       /* pseudo-count per bin (0.5) */
    int spectrum_bands;     /* octave bands (0: wcm_radial_bands_auto) */
    double range_min;       /* -0.5: an image with a value outside */
    double range_max;       /* 1.5:  [range_min, range_max] counts as out of range */
} wcm_stats_options;

void wcm_stats_options_default(wcm_stats_options *o);

/* Histogram bins of every quantity, fixed by the real images. */
typedef struct {
    int h, w;                            /* image size every set must have */
    int levels;
    wcm_binning pixel;                   /* [0, 1] */
    wcm_binning low;                     /* coarsest low-pass, [0, 1] */
    wcm_binning band[WCM_MAX_LEVELS][3]; /* H, V, D of level j (0 the finest) */
    double smoothing;
    int spectrum_bands;
    double range_min, range_max;
} wcm_stats_binning;

/* From a batch of real images (1 channel, h and w divisible by 2^levels,
 * at least one finite image). */
int wcm_stats_binning_from_real(const wcm_tensor *real, const wcm_stats_options *o, wcm_stats_binning *b,
                                wcm_error *err);

/* Summary of one set of images: raw bin counts and means (about 60 KB: allocate
 * it on the heap). */
typedef struct {
    int images;          /* images summarised (finite) */
    int nonfinite;       /* images skipped: a value is NaN or infinite */
    int out_of_range;    /* summarised images with a value outside the range */
    double pixel_hist[WCM_STATS_MAX_BINS + 2];
    double low_hist[WCM_STATS_MAX_BINS + 2];
    double band_hist[WCM_MAX_LEVELS][3][WCM_STATS_MAX_BINS + 2];
    double band_std[WCM_MAX_LEVELS][3];  /* root mean square of the coefficients */
    wcm_radial_spectrum spectrum;
    double stripe_h, stripe_v;           /* mean stripe ratios over the images */
    double stripe_h_se, stripe_v_se;     /* their standard errors: sd over the images / sqrt(images);
                                            NaN below 2 images */
} wcm_set_stats;

/* images: 1 channel, b->h x b->w. */
int wcm_set_stats_compute(const wcm_tensor *images, const wcm_stats_binning *b, wcm_set_stats *s, wcm_error *err);

typedef struct {
    double pixel_kl;                       /* nats */
    double low_kl;
    double band_kl[WCM_MAX_LEVELS][3];
    double band_std_ratio[WCM_MAX_LEVELS][3]; /* samples / real */
    int spectrum_bands;
    double spectrum_db[WCM_STATS_MAX_FREQ_BANDS]; /* 10 log10(P_samples / P_real) */
    double stripe_h, stripe_v;             /* the samples' mean stripe ratios */
    double stripe_h_se, stripe_v_se;       /* and their standard errors (NaN below 2 samples) */
    double stripe_h_real, stripe_v_real;   /* the real images' */
} wcm_stats_comparison;

/* Both summaries must come from the same binning. */
int wcm_set_stats_compare(const wcm_set_stats *samples, const wcm_set_stats *real, const wcm_stats_binning *b,
                          wcm_stats_comparison *c, wcm_error *err);

/* Memorisation: nearest training image --------------------------------------- */

/* PSNR reported for an exact copy (MSE 0): the cap. */
#define WCM_STATS_PSNR_CAP 100.0

/* For every image k of `samples`, compare with every image of `candidates`
 * (same h, w; 1 channel) and keep the smallest mean squared error in
 * best_mse[k] with the candidate's index first_index + i in best_index[k].
 * Call it once per batch of candidates; initialise best_mse to INFINITY and
 * best_index to -1. Samples are clamped to [-1, 2] first, as for every PSNR
 * of samples (docs/model.md §1); the clamp maps NaN to -1, so leave samples
 * that are not finite out. */
int wcm_nearest_update(const wcm_tensor *samples, const wcm_tensor *candidates, int first_index, double *best_mse,
                       int *best_index, wcm_error *err);

/* 10 log10(1 / mse), at most WCM_STATS_PSNR_CAP (an exact copy). */
double wcm_psnr_from_mse(double mse);

#ifdef __cplusplus
}
#endif
#endif

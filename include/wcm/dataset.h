/* wcm — training data: a folder of images, preprocessed once into a cache
 * file that is memory-mapped, and the reference's noisy training batches
 * (docs/model.md §4) drawn from it reproducibly.
 *
 * Preprocessing: gray (mean of R, G, B, /255), then either a centre crop to
 * crop x crop or CelebA's aligned crop [29:-29, 9:-9], then an optional
 * bicubic resize. The cache ("wcm-dataset-<hash>.bin" in the cache folder)
 * is keyed by the folder's real path and the options, and rebuilt when the
 * folder's listing (names, sizes, modification times) or the options change.
 * Unreadable files and images smaller than the crop are skipped and counted. */
#ifndef WCM_DATASET_H
#define WCM_DATASET_H

#include "wcm/net.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int crop;            /* centre crop to crop x crop; 0 keeps the size (all images must agree) */
    int celeba_align;    /* instead of the centre crop: rows 29..h-30, columns 9..w-10 */
    int resize;          /* then resize to resize x resize (bicubic); 0: no resize */
    int max_images;      /* only the first N images in name order; 0: all */
    const char *cache_dir; /* NULL: $WCM_CACHE_DIR, $XDG_CACHE_HOME/wcm, ~/.cache/wcm, else /tmp */
    int no_cache;        /* keep the images in memory only */
} wcm_dataset_options;

typedef struct {
    int count, h, w;          /* usable images, each h x w */
    const float *pixels;      /* count * h * w gray values in [0, 1] (read-only) */
    int listed;               /* image files found in the folder */
    int unreadable;           /* files that failed to decode (skipped) */
    int too_small;            /* images smaller than the crop (skipped) */
    int other_files;          /* entries that are not images */
    int cache_hit;            /* 1 if an existing cache file was used */
    char cache_path[1024];    /* "" when not cached */
    void *map_;               /* mapping or heap block backing `pixels` */
    size_t map_size_;
    int mapped_;
} wcm_dataset;

/* Fails with a clear message when no usable image remains. */
int wcm_dataset_open(wcm_dataset *ds, const char *dir, const wcm_dataset_options *opt, wcm_error *err);
void wcm_dataset_close(wcm_dataset *ds);

/* What a batch holds, per network kind (docs/model.md §4). */
typedef struct {
    wcm_net_kind kind;
    int scale;          /* conditional: the Haar level j of the coefficients */
    int levels;         /* low-pass: the coarsest low-pass of a J = levels pyramid */
    int patch;          /* random patch size in network-input pixels; 0: whole images */
    int quadratic;      /* noise sigma = (k/255)^2 (reference default), else k/255 */
    int noise_high;     /* k is a uniform integer in [0, noise_high) */
    int rescale;        /* multiply each clean image by a U(0,1) intensity (flat, low-pass) */
    double fixed_sigma; /* > 0: every image gets this sigma instead (evaluation) */
    uint64_t seed;
    int flip;           /* mirror each image left-right with probability 1/2 (one more draw per image) */
    int log_uniform;    /* sigma = (noise_high/255) * 1000^-u, u ~ U(0,1), instead of k (quadratic ignored) */
} wcm_batch_spec;

/* The ratio of the largest to the smallest sigma of the log-uniform law. */
#define WCM_LOG_UNIFORM_RANGE 1000.0

/* Pixels of the image per network-input pixel: 2^(j+1) (conditional), 2^J
 * (low-pass) or 1 (flat). */
int wcm_batch_factor(const wcm_batch_spec *spec);
/* Network-input size of one sample; errors if the images are too small for
 * the patch or not divisible by the factor. */
int wcm_batch_geometry(const wcm_dataset *ds, const wcm_batch_spec *spec, int *h, int *w, wcm_error *err);
/* Largest |detail coefficient| at scale j over the listed images (whole images). */
double wcm_dataset_detail_max(const wcm_dataset *ds, const int *ids, int n, int scale);
/* The reference's upper bound of k at scale j: (int)(255 * max|detail|), at least 1. */
int wcm_noise_high_for_scale(double detail_max);

/* A noisy batch of the images ids[0..n-1]: noisy is the network input and
 * noise the target (flat/low-pass: 1 channel; conditional: noisy = [clean
 * low, details + noise], noise on the 3 detail channels). Patch positions,
 * intensities, noise levels and noise values are pure functions of
 * (spec->seed, draw, position in the batch): pass a unique `draw` per batch
 * (e.g. the global step). Tensors are (re)allocated as needed. */
int wcm_make_batch(const wcm_dataset *ds, const wcm_batch_spec *spec, const int *ids, int n, uint64_t draw,
                   wcm_tensor *noisy, wcm_tensor *noise, wcm_error *err);
/* Images first .. first + n - 1 of the batch of ids (ids holds the whole
 * batch): exactly those images of wcm_make_batch's batch (the draws of the
 * images before them are replayed), so a batch can be split over processes
 * or micro-batches and stay defined by the whole batch. */
int wcm_make_batch_part(const wcm_dataset *ds, const wcm_batch_spec *spec, const int *ids, int first, int n,
                        uint64_t draw, wcm_tensor *noisy, wcm_tensor *noise, wcm_error *err);
/* Mean over images of 10 log10(1 / mean((noise - predicted)^2)): the PSNR of
 * the denoised values (noisy - predicted) against the clean ones. */
double wcm_batch_psnr(const wcm_tensor *predicted, const wcm_tensor *noise);
/* The order of the n training images in epoch `epoch` (a seeded shuffle). */
void wcm_epoch_order(uint64_t seed, uint64_t epoch, int n, int *order);

#ifdef __cplusplus
}
#endif
#endif

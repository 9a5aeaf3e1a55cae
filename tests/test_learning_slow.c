/* Learning check: a conditional RF 5 net, trained from the reference
 * initialisation on 16x16 patches of scale-0 Haar coefficients of
 * ../shared/data/celeba/train (reference noise law, Adam lr 1e-3), must
 * denoise the detail coefficients of ../shared/data/celeba/test: at fixed
 * noise levels, the PSNR of the denoised details (inference mode, running_sd)
 * must beat the noisy input and the untrained net by a measured margin.
 * Skipped when ../shared is absent. */
#include "testutil.h"
#include "wcm/dataset.h"
#include "wcm/train.h"

#define TRAIN_IMAGES 1000
#define TEST_IMAGES 50
#define BATCH 32
#define PATCH 16

/* Mean PSNR of noisy and of denoised details over the test images at `sigma`. */
static void evaluate(wcm_net *net, const wcm_dataset *ds, const wcm_batch_spec *train_spec, double sigma, double *noisy_psnr,
                     double *denoised_psnr) {
    wcm_batch_spec spec = *train_spec;
    spec.patch = 0;
    spec.fixed_sigma = sigma;
    int ids[TEST_IMAGES];
    for (int i = 0; i < TEST_IMAGES; i++) ids[i] = i;
    wcm_tensor noisy = {0}, noise = {0}, out = {0}, zero = {0};
    wcm_error err;
    REQUIRE_OK(wcm_make_batch(ds, &spec, ids, TEST_IMAGES, 777, &noisy, &noise, &err), &err);
    REQUIRE_OK(wcm_net_forward(net, &noisy, &out, &err), &err);
    REQUIRE_OK(wcm_tensor_alloc(&zero, noise.n, noise.h, noise.w, noise.c, &err), &err);
    memset(zero.data, 0, wcm_tensor_count(&zero) * sizeof(float));
    *noisy_psnr = wcm_batch_psnr(&zero, &noise); /* predicting no noise leaves the noisy details */
    *denoised_psnr = wcm_batch_psnr(&out, &noise);
    wcm_tensor_free(&noisy), wcm_tensor_free(&noise), wcm_tensor_free(&out), wcm_tensor_free(&zero);
}

int main(void) {
    char train_dir[4096], test_dir[4096];
    snprintf(train_dir, sizeof train_dir, "%s/data/celeba/train", t_shared_dir());
    snprintf(test_dir, sizeof test_dir, "%s/data/celeba/test", t_shared_dir());
    if (!t_is_dir(train_dir) || !t_is_dir(test_dir)) SKIP("no CelebA images under %s", t_shared_dir());
    int steps = getenv("WCM_LEARNING_STEPS") ? atoi(getenv("WCM_LEARNING_STEPS")) : 400;
    wcm_error err;
    wcm_dataset train, test;
    wcm_dataset_options o = {160, 0, 0, TRAIN_IMAGES, NULL, 1};
    REQUIRE_OK(wcm_dataset_open(&train, train_dir, &o, &err), &err);
    o.max_images = TEST_IMAGES;
    REQUIRE_OK(wcm_dataset_open(&test, test_dir, &o, &err), &err);
    int *all = malloc(sizeof(int) * (size_t)train.count), *order = malloc(sizeof(int) * (size_t)train.count);
    for (int i = 0; i < train.count; i++) all[i] = i;
    double dmax = wcm_dataset_detail_max(&train, all, train.count, 0);
    wcm_batch_spec spec = {WCM_NET_CONDITIONAL, 0, 2, PATCH, 1, wcm_noise_high_for_scale(dmax), 0, 0, 3};
    CHECK(dmax > 0.05 && dmax < 0.5 && spec.noise_high == (int)(255 * dmax),
          "max |detail| at scale 0 over %d training images: %.4f, noise bound k < %d", train.count, dmax, spec.noise_high);

    wcm_net *net;
    REQUIRE_OK(wcm_net_create(&net, WCM_NET_CONDITIONAL, 5, &err), &err);
    wcm_net_init_reference(net, 3);
    const double sigmas[2] = {0.02, 0.05};
    double before[2], noisy[2];
    for (int k = 0; k < 2; k++) evaluate(net, &test, &spec, sigmas[k], &noisy[k], &before[k]);

    wcm_trainer *tr;
    REQUIRE_OK(wcm_trainer_create(&tr, net, &err), &err);
    wcm_tensor in = {0}, target = {0};
    double t0 = wcm_seconds(), first = 0, last = 0;
    int per_epoch = train.count / BATCH;
    for (int s = 0; s < steps; s++) {
        if (s % per_epoch == 0) wcm_epoch_order(spec.seed, (uint64_t)(s / per_epoch), train.count, order);
        double loss;
        REQUIRE_OK(wcm_make_batch(&train, &spec, order + (s % per_epoch) * BATCH, BATCH, (uint64_t)s, &in, &target, &err), &err);
        REQUIRE_OK(wcm_train_gradient(tr, &in, &target, &loss, NULL, &err), &err);
        wcm_adam_step(tr, 1e-3);
        if (s < 20) first += loss / 20;
        if (s >= steps - 20) last += loss / 20;
    }
    double secs = wcm_seconds() - t0;
    printf("trained %d steps of %d patches %dx%d in %.1f s (%.0f patches/s)\n", steps, BATCH, PATCH, PATCH, secs,
           steps * BATCH / secs);
    CHECK(last < 0.8 * first, "training loss fell: mean of the first 20 steps %.4f, of the last 20 %.4f", first, last);
    for (int k = 0; k < 2; k++) {
        double after, noisy_again;
        evaluate(net, &test, &spec, sigmas[k], &noisy_again, &after);
        printf("sigma %.3f: noisy details %.2f dB, untrained net %.2f dB, trained %.2f dB\n", sigmas[k], noisy[k], before[k],
               after);
        /* Measured over 400 steps (seeds 1-3, two kernel versions): +2.3 to
         * +5.3 dB at sigma 0.02 and +8.9 to +10.5 dB at 0.05 over the noisy
         * details (training is chaotic: rounding moves the result); asserted
         * with room to spare. */
        double margin = k == 0 ? 1.0 : 6.0;
        CHECK(after >= noisy[k] + margin && after >= before[k] + margin,
              "sigma %.2f: the trained net gains %.2f dB over the noisy details (>= %.1f dB) and %.2f dB over the untrained net",
              sigmas[k], after - noisy[k], margin, after - before[k]);
    }
    wcm_tensor_free(&in), wcm_tensor_free(&target);
    wcm_trainer_free(tr);
    wcm_net_free(net);
    free(all), free(order);
    wcm_dataset_close(&train), wcm_dataset_close(&test);
    return t_done("test_learning_slow");
}

/* libFuzzer target: the options of a run read back from a checkpoint's
 * metadata (wcm_train_options_from_meta, what `wcm train --resume` and
 * wcm.train(resume=True) read). The input is split at newlines into the
 * values of the "wcm.train.*" keys below, in order (a missing line leaves
 * its key out; a NUL ends a value). Whatever is accepted and then resolved
 * (as a resumed run does) must be in range and survive a round trip through
 * wcm_train_options_to_meta unchanged. */
#include "trainer_internal.h"
#include "wcm/trainer.h"

#include "fuzz_meta.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const keys[] = {
    "kind",       "rf",          "scale",      "levels",    "crop",           "celeba_crop",    "resize",
    "patch",      "batch_size",  "accumulate", "lr",        "lr_schedule",    "lr_halve_every", "warmup_steps",
    "noise",      "intensity",   "batch_norm", "bn_running", "flip",          "ema",            "epochs",
    "sums",
    "max_images", "max_test_images", "test_fraction", "seed", "data",         "test"};

static void defaults(wcm_train_options *o) {
    wcm_train_options_default(o);
    o->data = "data";
    o->output = "run.safetensors";
}

static int same(const wcm_train_options *a, const wcm_train_options *b) {
    return a->kind == b->kind && a->rf == b->rf && a->levels == b->levels && a->crop == b->crop &&
           a->celeba_crop == b->celeba_crop && a->resize == b->resize && a->patch == b->patch &&
           a->batch == b->batch && a->accumulate == b->accumulate && a->lr == b->lr &&
           a->lr_schedule == b->lr_schedule && a->lr_halve_every == b->lr_halve_every &&
           a->warmup_steps == b->warmup_steps && a->noise == b->noise && a->intensity == b->intensity &&
           a->bn_frozen == b->bn_frozen && a->bn_running_warmup == b->bn_running_warmup && a->flip == b->flip &&
           a->exact_sums == b->exact_sums &&
           a->ema == b->ema && a->epochs == b->epochs && a->max_images == b->max_images &&
           a->max_test_images == b->max_test_images && a->test_fraction == b->test_fraction && a->seed == b->seed &&
           !strcmp(a->data, b->data) && !strcmp(a->test_dir ? a->test_dir : "", b->test_dir ? b->test_dir : "") &&
           (a->kind != WCM_NET_CONDITIONAL || a->scale == b->scale);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    wcm_array_list meta;
    wcm_array_list_init(&meta);
    wcm_error err;
    fuzz_meta_from_lines(data, size, "wcm.train.", keys, sizeof keys / sizeof *keys, &meta);
    wcm_train_options o, back;
    defaults(&o);
    if (wcm_train_options_from_meta(&meta, &o, &err) == WCM_OK && wcm_train_options_resolve(&o, &err) == WCM_OK) {
        if (o.kind < WCM_NET_FLAT || o.kind > WCM_NET_LOWPASS || o.rf < 0 || o.rf > 1000 || o.levels < 1 ||
            o.levels > WCM_MAX_LEVELS || o.scale < 0 || o.scale >= o.levels || o.batch < 1 || o.accumulate < 1 ||
            o.accumulate > o.batch || o.lr_halve_every < 1 ||
            !(o.lr > 0 && isfinite(o.lr)) || !(o.ema >= 0 && o.ema < 1) || !(o.test_fraction >= 0 && o.test_fraction < 1) ||
            (unsigned)o.noise > WCM_NOISE_LOG_UNIFORM || (unsigned)o.lr_schedule > WCM_LR_COSINE || o.epochs < 0 ||
            !o.data)
            abort();
        wcm_array_list again;
        wcm_array_list_init(&again);
        defaults(&back);
        if (wcm_train_options_to_meta(&o, 7, &again, &err) || wcm_train_options_from_meta(&again, &back, &err) ||
            wcm_train_options_resolve(&back, &err) || !same(&o, &back))
            abort();
        wcm_array_list_free(&again);
    }
    wcm_array_list_free(&meta);
    return 0;
}

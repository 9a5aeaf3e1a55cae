/* libFuzzer target: the training state a checkpoint carries in its
 * metadata (wcm_train_state_from_meta, what `wcm train --resume` reads).
 * The input is split at newlines into the values of the seven state keys
 * (a missing line leaves its key out). Whatever is accepted must survive a
 * round trip unchanged and render its CSV log. */
#include "wcm/train_state.h"

#include "fuzz_meta.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const keys[] = {"wcm.train.epoch", "wcm.train.batch_in_epoch", "wcm.train.step",
                                   "wcm.state.loss_sum", "wcm.state.psnr_sum", "wcm.state.seconds",
                                   "wcm.state.history"};

static int same_number(double a, double b) { return a == b || (isnan(a) && isnan(b)); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    wcm_array_list meta;
    wcm_array_list_init(&meta);
    wcm_error err;
    fuzz_meta_from_lines(data, size, "", keys, sizeof keys / sizeof *keys, &meta);
    wcm_train_state s, back;
    if (wcm_train_state_from_meta(&meta, &s, &err) == WCM_OK) {
        if (s.nrows != s.epoch || s.batch < 0 || s.step < 0) abort();
        wcm_array_list again;
        wcm_array_list_init(&again);
        if (wcm_train_state_to_meta(&s, &again, &err) || wcm_train_state_from_meta(&again, &back, &err)) abort();
        if (back.epoch != s.epoch || back.batch != s.batch || back.step != s.step || back.nrows != s.nrows ||
            !same_number(back.loss_sum, s.loss_sum) || !same_number(back.psnr_sum, s.psnr_sum) ||
            !same_number(back.seconds, s.seconds))
            abort();
        for (int i = 0; i < s.nrows; i++) {
            const double *x = &s.rows[i].epoch, *y = &back.rows[i].epoch;
            for (int f = 0; f < 6; f++)
                if (!same_number(x[f], y[f])) abort();
        }
        char *csv;
        size_t len;
        if (wcm_train_state_log_csv(&s, &csv, &len, &err) || strlen(csv) != len) abort();
        free(csv);
        wcm_train_state_free(&back);
        wcm_array_list_free(&again);
        wcm_train_state_free(&s);
    }
    wcm_array_list_free(&meta);
    return 0;
}

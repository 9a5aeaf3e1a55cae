/* libFuzzer target: the restricted pickle evaluator on its own (no zip
 * around it, so every mutation lands in the opcode stream). */
#include "pickle.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    wcm_pickle pk;
    wcm_error err;
    wcm_mem_budget budget; /* as wcm_torch_parse allows a file of this size */
    wcm_budget_init(&budget, size);
    if (wcm_pickle_load(&pk, data, size, &budget, &err) == WCM_OK) wcm_pickle_free(&pk);
    return 0;
}

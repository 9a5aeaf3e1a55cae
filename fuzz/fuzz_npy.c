/* libFuzzer target: .npy reader (magic, version, Python-dict header, data). */
#include "wcm/tensor.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    wcm_array array;
    wcm_error err;
    if (wcm_npy_parse(data, size, &array, &err) == WCM_OK) wcm_array_free(&array);
    return 0;
}

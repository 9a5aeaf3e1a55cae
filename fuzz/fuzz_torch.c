/* libFuzzer target: PyTorch .pt reader (zip + restricted pickle). Built with
 * FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, so zip CRC-32s are not checked and
 * mutations reach the pickle and tensor code. */
#include "wcm/io.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    wcm_array_list list;
    wcm_error err;
    if (wcm_torch_parse(data, size, &list, &err) == WCM_OK) wcm_array_list_free(&list);
    return 0;
}

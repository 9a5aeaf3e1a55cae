/* libFuzzer target: safetensors reader (header length, JSON header, data). */
#include "wcm/io.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    wcm_array_list list;
    wcm_error err;
    if (wcm_safetensors_parse(data, size, &list, &err) == WCM_OK) wcm_array_list_free(&list);
    return 0;
}

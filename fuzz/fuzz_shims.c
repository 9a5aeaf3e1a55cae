/* What the parsers link against without the backends: they create host
 * tensors only (buffer NULL), so a backend buffer reaching tensor.c in a
 * fuzzer is a bug. */
#include <stdlib.h>

#include "wcm/backend.h"

void wcm_buffer_free(wcm_buffer *b) {
    if (b) abort();
}

/* The CLI fuzzer parses --device through src/device.c; selecting a backend
 * is the only effect, and no computation follows. */
void wcm_set_backend(const wcm_backend *b) {
    (void)b;
}

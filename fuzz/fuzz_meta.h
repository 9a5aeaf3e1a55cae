/* The metadata fuzzers' input: lines that become the values of the keys
 * PREFIX + keys[k] in order (a missing line leaves its key out; a NUL ends
 * a value, as it ends a C string in the metadata). */
#ifndef WCM_FUZZ_META_H
#define WCM_FUZZ_META_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wcm/tensor.h"

static inline void fuzz_meta_from_lines(const uint8_t *data, size_t size, const char *prefix,
                                        const char *const *keys, size_t nkeys, wcm_array_list *meta) {
    char *text = malloc(size + 1);
    if (!text) abort();
    memcpy(text, data, size);
    text[size] = 0;
    wcm_error err;
    char *line = text, key[128];
    for (size_t k = 0; k < nkeys && line; k++) {
        char *next = memchr(line, '\n', (size_t)(text + size - line));
        if (next) *next++ = 0;
        snprintf(key, sizeof key, "%s%s", prefix, keys[k]);
        if (wcm_array_list_set_meta(meta, key, line, &err)) abort();
        line = next;
    }
    free(text);
}

#endif

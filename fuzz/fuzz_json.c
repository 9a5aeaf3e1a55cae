/* libFuzzer target: strict JSON reader; accepted documents are re-walked
 * through the lookup API. */
#include "json.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t walk(const wcm_json *v, int depth) {
    size_t n = 1;
    if (depth > WCM_JSON_MAX_DEPTH + 1) __builtin_trap(); /* the parser must have refused this */
    for (size_t i = 0; i < wcm_json_count(v); i++) {
        const char *key = wcm_json_key_at(v, i);
        if (key && wcm_json_get(v, key) == NULL) __builtin_trap(); /* every key must be found */
        n += walk(wcm_json_at(v, i), depth + 1);
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    wcm_json *root;
    wcm_error err;
    if (wcm_json_parse((const char *)data, size, &root, &err) == WCM_OK) {
        walk(root, 1);
        wcm_json_free(root);
    }
    return 0;
}

/* Test helper: read and parse a JSON file (NULL on any error). */
#ifndef WCM_TESTJSON_H
#define WCM_TESTJSON_H

#include <stdlib.h>

#include "json.h"
#include "wcm/io.h"

static inline wcm_json *t_load_json(const char *path) {
    unsigned char *text;
    size_t len;
    wcm_error err;
    wcm_json *j = NULL;
    if (wcm_read_file(path, &text, &len, &err)) return NULL;
    if (wcm_json_parse((const char *)text, len, &j, &err)) j = NULL;
    free(text);
    return j;
}

#endif

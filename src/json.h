/* The JSON reader's loader entry point (internal): the public reader and
 * text builder are in wcm/json.h. */
#ifndef WCM_JSON_INTERNAL_H
#define WCM_JSON_INTERNAL_H

#include "loader_budget.h"
#include "wcm/json.h"

/* wcm_json_parse, charging every node, string and array of the tree to
 * `budget` (NULL: unlimited); a document whose tree would exceed it is
 * refused. */
int wcm_json_parse_limited(const char *text, size_t len, wcm_mem_budget *budget, wcm_json **out, wcm_error *err);

#endif

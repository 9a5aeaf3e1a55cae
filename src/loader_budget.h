/* wcm — the memory budget of the file loaders (internal).
 *
 * A loader holds its whole file (L bytes) and may allocate at most
 * 3 L + WCM_LOADER_SLACK more for what it builds from it (the zip directory,
 * pickle values, JSON trees, metadata copies and the output arrays), so a
 * load costs at most 4x its file size plus a constant however the file is
 * crafted. Each allocation is charged with WCM_ALLOC_OVERHEAD for the
 * allocator's own header. A loader that runs out refuses the file. */
#ifndef WCM_LOADER_BUDGET_H
#define WCM_LOADER_BUDGET_H

#include <stddef.h>
#include <stdint.h>

#define WCM_LOADER_SLACK ((size_t)8 << 20)
#define WCM_ALLOC_OVERHEAD 16

typedef struct {
    size_t used, limit;
} wcm_mem_budget;

static inline void wcm_budget_init(wcm_mem_budget *b, size_t file_len) {
    b->used = 0;
    b->limit = file_len > (SIZE_MAX - WCM_LOADER_SLACK) / 3 ? SIZE_MAX : 3 * file_len + WCM_LOADER_SLACK;
}

/* Charge one allocation of `bytes`; 0 when it fits, -1 when over budget.
 * A NULL budget is unlimited. */
static inline int wcm_budget_take(wcm_mem_budget *b, size_t bytes) {
    if (!b) return 0;
    size_t cost = bytes > SIZE_MAX - WCM_ALLOC_OVERHEAD ? SIZE_MAX : bytes + WCM_ALLOC_OVERHEAD;
    if (cost > b->limit - b->used) return -1;
    b->used += cost;
    return 0;
}

#endif

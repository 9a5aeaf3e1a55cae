/* Backend selection. */
#include "wcm/backend.h"

static const wcm_backend *g_backend = 0;

void wcm_set_backend(const wcm_backend *b) { g_backend = b; }

const wcm_backend *wcm_get_backend(void) { return g_backend ? g_backend : wcm_backend_cpu(); }

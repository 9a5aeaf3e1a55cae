/* wcm — the whole public C API in one include, in the order of the data
 * path: image -> pyramid -> networks -> sampler -> image, then training.
 *
 *     #include <wcm/wcm.h>      compile with $(pkg-config --cflags --libs wcm)
 *
 * Every fallible function returns WCM_OK (0) or a negative wcm_status and
 * fills a wcm_error; the library never exits or prints. */
#ifndef WCM_WCM_H
#define WCM_WCM_H

#include "wcm/version.h"
#include "wcm/common.h"
#include "wcm/tensor.h"
#include "wcm/image.h"
#include "wcm/io.h"
#include "wcm/haar.h"
#include "wcm/backend.h"
#include "wcm/net.h"
#include "wcm/tiling.h"
#include "wcm/model.h"
#include "wcm/denoise.h"
#include "wcm/color.h"
#include "wcm/rng.h"
#include "wcm/rng_torch.h"
#include "wcm/sampler.h"
#include "wcm/inverse.h"
#include "wcm/synth.h"
#include "wcm/jacobian.h"
#include "wcm/stats.h"
#include "wcm/eval.h"
#include "wcm/dataset.h"
#include "wcm/train.h"
#include "wcm/train_state.h"
#include "wcm/comm.h"
#include "wcm/trainer.h"
#include "wcm/json.h"
#include "wcm/plot.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version at run time ("0.1.0"), to compare with WCM_VERSION_STRING. */
const char *wcm_version(void);
/* sizeof the public struct named `type` ("wcm_tensor", "wcm_model",
 * "wcm_synth_options", ...), 0 for other names: lets bindings that mirror
 * the structs check their layout against the loaded library. */
size_t wcm_abi_sizeof(const char *type);

#ifdef __cplusplus
}
#endif
#endif

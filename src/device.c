/* Device selection by name ("cpu", "cuda", "cuda:N", or WCM_DEVICE): the
 * one place that knows whether CUDA was built in. */
#include <stdlib.h>
#include <string.h>

#include "backend_impl.h"
#include "wcm/common.h"

#ifdef WCM_HAVE_CUDA
#include "cuda/cuda_select.h"
#else
const wcm_backend *wcm_backend_cuda(void) { return NULL; }
#endif

int wcm_set_device(const char *spec, wcm_error *err) {
    const char *from = "";
    if (!spec || !*spec) {
        spec = getenv("WCM_DEVICE");
        from = " (from WCM_DEVICE)";
        if (!spec || !*spec) spec = "cpu";
    }
    if (!strcmp(spec, "cpu")) {
        wcm_set_backend(NULL);
        return WCM_OK;
    }
    int64_t device = 0;
    if (strncmp(spec, "cuda", 4) != 0 || (spec[4] && (spec[4] != ':' || wcm_parse_int64(spec + 5, 0, 1023, &device))))
        return wcm_fail(err, WCM_ERR_ARG, "unknown device '%s'%s: expected cpu, cuda or cuda:N", spec, from);
#ifdef WCM_HAVE_CUDA
    char why[160];
    const int count = wcm_cuda_device_count(why, sizeof why);
    if (!count) return wcm_fail(err, WCM_ERR_ARG, "device %s%s: no CUDA device is usable (%s)", spec, from, why);
    if (device >= count)
        return wcm_fail(err, WCM_ERR_ARG, "device %s%s: this machine has %d CUDA device%s (cuda:0%s)", spec, from, count,
                        count == 1 ? "" : "s", count == 1 ? "" : " ...");
    wcm_cuda_set_default_device((int)device);
    wcm_set_backend(wcm_backend_cuda());
    return WCM_OK;
#else
    return wcm_fail(err, WCM_ERR_ARG,
                    "device %s%s: this wcm was built without CUDA (configure with -DWCM_CUDA=ON on a machine with nvcc "
                    "and cuDNN)",
                    spec, from);
#endif
}

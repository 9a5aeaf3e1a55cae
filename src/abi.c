/* Sizes of the public structs, so that a binding which mirrors them (the
 * Python package's ctypes declarations) can check its layout against the
 * library it loaded instead of corrupting memory. */
#include <string.h>

#include "wcm/wcm.h"

size_t wcm_abi_sizeof(const char *type) {
    static const struct {
        const char *name;
        size_t size;
    } sizes[] = {
        {"wcm_error", sizeof(wcm_error)},
        {"wcm_tensor", sizeof(wcm_tensor)},
        {"wcm_array", sizeof(wcm_array)},
        {"wcm_pyramid", sizeof(wcm_pyramid)},
        {"wcm_model", sizeof(wcm_model)},
        {"wcm_sampler_params", sizeof(wcm_sampler_params)},
        {"wcm_sample_result", sizeof(wcm_sample_result)},
        {"wcm_progress_info", sizeof(wcm_progress_info)},
        {"wcm_synth_stage", sizeof(wcm_synth_stage)},
        {"wcm_synth_progress_info", sizeof(wcm_synth_progress_info)},
        {"wcm_synth_options", sizeof(wcm_synth_options)},
        {"wcm_synth_result", sizeof(wcm_synth_result)},
        {"wcm_tiling", sizeof(wcm_tiling)},
        {"wcm_denoise_options", sizeof(wcm_denoise_options)},
        {"wcm_denoise_info", sizeof(wcm_denoise_info)},
        {"wcm_jacobian_spectrum", sizeof(wcm_jacobian_spectrum)},
        {"wcm_train_options", sizeof(wcm_train_options)},
        {"wcm_train_progress", sizeof(wcm_train_progress)},
    };
    for (size_t i = 0; type && i < sizeof sizes / sizeof sizes[0]; i++)
        if (!strcmp(type, sizes[i].name)) return sizes[i].size;
    return 0;
}

"""Loading libwcm.so and declaring its C API for ctypes.

The structs below mirror include/wcm/*.h; at load time their sizes are
checked against the library (wcm_abi_sizeof), so a binding and a library
that disagree fail loudly instead of corrupting memory.
"""
import ctypes
import ctypes.util
import glob
import os

MAX_LEVELS = 8  # WCM_MAX_LEVELS
SYNTH_MAX_STAGES = MAX_LEVELS + 1
MAX_DIMS = 8

c_int, c_double, c_size_t, c_char_p, c_void_p = ctypes.c_int, ctypes.c_double, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p
c_float_p = ctypes.POINTER(ctypes.c_float)


class Error(RuntimeError):
    """A wcm error: `status` is the negative wcm_status code, the message the
    library's one-line explanation."""

    NAMES = {-1: "IO", -2: "FORMAT", -3: "SHAPE", -4: "ARG", -5: "NOMEM", -6: "NUMERIC"}

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status

    @property
    def kind(self):
        return self.NAMES.get(self.status, str(self.status))


class WcmError(ctypes.Structure):
    _fields_ = [("msg", ctypes.c_char * 1024)]


class Tensor(ctypes.Structure):  # wcm_tensor: NHWC float32
    _fields_ = [("n", c_int), ("h", c_int), ("w", c_int), ("c", c_int), ("data", c_float_p),
                ("buffer", c_void_p), ("borrowed", c_int)]


class Array(ctypes.Structure):  # wcm_array
    _fields_ = [("name", c_char_p), ("ndim", c_int), ("shape", ctypes.c_int64 * MAX_DIMS), ("data", c_float_p)]


class ArrayList(ctypes.Structure):  # wcm_array_list
    _fields_ = [("items", ctypes.POINTER(Array)), ("count", c_int), ("cap", c_int),
                ("meta_keys", ctypes.POINTER(c_char_p)), ("meta_vals", ctypes.POINTER(c_char_p)),
                ("meta_count", c_int), ("meta_cap", c_int), ("meta_index", ctypes.POINTER(c_int)),
                ("meta_index_cap", c_int), ("meta_seed", ctypes.c_uint64 * 2)]


class Pyramid(ctypes.Structure):  # wcm_pyramid
    _fields_ = [("levels", c_int), ("level", Tensor * MAX_LEVELS)]


class Model(ctypes.Structure):  # wcm_model
    _fields_ = [("multiscale", c_int), ("net", c_void_p), ("low", c_void_p), ("levels", c_int),
                ("cond", c_void_p * MAX_LEVELS), ("meta", ArrayList)]


class ProgressInfo(ctypes.Structure):  # wcm_progress_info
    _fields_ = [("t", c_int), ("max_iters", c_int), ("batch", c_int), ("active", c_int),
                ("sigma", ctypes.POINTER(c_double)), ("max_sigma_active", c_double), ("seconds", c_double)]


class SamplerParams(ctypes.Structure):  # wcm_sampler_params
    _fields_ = [("sigma_0", c_double), ("sigma_L", c_double), ("h0", c_double), ("beta", c_double),
                ("fixed_step", c_int), ("max_iters", c_int), ("divergence_threshold", c_double),
                ("std_jump", c_double), ("stop_rule", c_int), ("plateau_iters", c_int), ("plateau_db", c_double),
                ("seed", ctypes.c_uint64), ("stream", ctypes.c_uint64), ("sample_offset", ctypes.c_int64),
                ("sample_index", ctypes.POINTER(ctypes.c_int64)), ("init_mean", ctypes.POINTER(Tensor)),
                ("trace", c_void_p), ("trace_user", c_void_p), ("progress", c_void_p), ("progress_user", c_void_p),
                ("context", c_void_p)]


class SampleResult(ctypes.Structure):  # wcm_sample_result
    _fields_ = [("iterations", c_int), ("final_sigma", c_double), ("final_std", c_double), ("status", c_int),
                ("reason", c_int), ("retries", c_int), ("seconds", c_double)]


class SynthStage(ctypes.Structure):  # wcm_synth_stage
    _fields_ = [("name", ctypes.c_char * 16), ("scale", c_int), ("h", c_int), ("w", c_int), ("c", c_int),
                ("params", SamplerParams), ("batch", c_int), ("results", ctypes.POINTER(SampleResult)),
                ("seconds", c_double), ("max_iterations", c_int), ("cap_samples", c_int),
                ("diverged_samples", c_int), ("retried_samples", c_int), ("skipped_samples", c_int)]


class SynthProgressInfo(ctypes.Structure):  # wcm_synth_progress_info
    _fields_ = [("net", c_char_p), ("scale", c_int), ("stage", c_int), ("nstages", c_int),
                ("iteration", ctypes.POINTER(ProgressInfo)), ("finished", ctypes.POINTER(SynthStage))]


SYNTH_PROGRESS_FN = ctypes.CFUNCTYPE(None, c_void_p, ctypes.POINTER(SynthProgressInfo))


class Tiling(ctypes.Structure):  # wcm_tiling
    _fields_ = [("memory", c_size_t), ("tile", c_int)]


class DenoiseOptions(ctypes.Structure):  # wcm_denoise_options
    _fields_ = [("lowpass_only", c_int), ("pad", c_int), ("tiling", Tiling)]


class DenoiseInfo(ctypes.Structure):  # wcm_denoise_info
    _fields_ = [("pad_bottom", c_int), ("pad_right", c_int), ("tile", c_int * (1 + MAX_LEVELS))]


class SynthOptions(ctypes.Structure):  # wcm_synth_options
    _fields_ = [("low", SamplerParams), ("cond", SamplerParams * MAX_LEVELS), ("seed", ctypes.c_uint64),
                ("sample_offset", ctypes.c_int64), ("rescale_low", c_int), ("rescale_max", c_double),
                ("range_min", c_double), ("range_max", c_double), ("retries", c_int),
                ("progress", SYNTH_PROGRESS_FN), ("progress_user", c_void_p), ("tiling", Tiling)]


class SynthResult(ctypes.Structure):  # wcm_synth_result
    _fields_ = [("nstages", c_int), ("stage", SynthStage * SYNTH_MAX_STAGES), ("nscales", c_int),
                ("scale", Tensor * SYNTH_MAX_STAGES), ("cap_samples", c_int), ("diverged", c_int),
                ("complete", c_int), ("seconds", c_double)]


class JacobianSpectrum(ctypes.Structure):  # wcm_jacobian_spectrum
    _fields_ = [("n", c_int), ("trace", c_double), ("eig_min", c_double), ("eig_max", c_double),
                ("asymmetry", c_double), ("frobenius", c_double)]


TRAIN_EVAL_LEVELS = 3  # WCM_TRAIN_EVAL_LEVELS


class TrainOptions(ctypes.Structure):  # wcm_train_options
    _fields_ = [("kind", c_int), ("rf", c_int), ("scale", c_int), ("levels", c_int),
                ("data", c_char_p), ("test_dir", c_char_p), ("test_fraction", c_double),
                ("crop", c_int), ("celeba_crop", c_int), ("resize", c_int), ("patch", c_int),
                ("max_images", c_int), ("max_test_images", c_int), ("cache_dir", c_char_p), ("no_cache", c_int),
                ("batch", c_int), ("accumulate", c_int), ("epochs", c_int), ("lr", c_double),
                ("lr_schedule", c_int), ("lr_halve_every", c_int), ("warmup_steps", c_int),
                ("noise", c_int), ("intensity", c_int), ("bn_frozen", c_int), ("bn_running_warmup", c_int),
                ("flip", c_int), ("exact_sums", c_int), ("ema", c_double), ("seed", ctypes.c_uint64),
                ("output", c_char_p), ("resume", c_int), ("force", c_int), ("init", c_char_p),
                ("minutes", c_double), ("save_minutes", c_double), ("save_every", c_int),
                ("max_steps", ctypes.c_longlong), ("comm", c_void_p)]


class TrainProgress(ctypes.Structure):  # wcm_train_progress
    _fields_ = [("event", c_int), ("message", c_char_p), ("epoch", c_int), ("epochs", c_int),
                ("batch", c_int), ("nbatches", c_int), ("step", ctypes.c_longlong),
                ("total_steps", ctypes.c_longlong), ("loss", c_double), ("psnr", c_double),
                ("step_loss", c_double), ("comm_seconds", c_double), ("lr", c_double),
                ("images_per_s", c_double), ("eta_s", c_double), ("seconds", c_double),
                ("row", c_void_p), ("test_psnr", c_double), ("test_noisy_psnr", c_double),
                ("sigma255", c_double * TRAIN_EVAL_LEVELS), ("level_psnr", c_double * TRAIN_EVAL_LEVELS),
                ("level_noisy_psnr", c_double * TRAIN_EVAL_LEVELS), ("output_ratio", c_double),
                ("collapsed", c_int), ("baseline_loss", c_double), ("state", c_void_p), ("stopped", c_int)]


TRAIN_CALLBACK = ctypes.CFUNCTYPE(c_int, ctypes.POINTER(TrainProgress), c_void_p)

P = ctypes.POINTER
ERR = P(WcmError)

# name: (restype, argtypes). Optional entries (other APIs may be absent from an
# older library) are declared the same way in OPTIONAL and bound when present.
REQUIRED = {
    "wcm_version": (c_char_p, []),
    "wcm_abi_sizeof": (c_size_t, [c_char_p]),
    "wcm_set_threads": (None, [c_int]),
    "wcm_get_threads": (c_int, []),
    "wcm_tensor_view_check": (c_int, [P(Tensor), c_float_p, c_int, c_int, c_int, c_int, ERR]),
    "wcm_tensor_free": (None, [P(Tensor)]),
    "wcm_model_open": (c_int, [c_char_p, P(P(Model)), ERR]),
    "wcm_model_assemble_new": (c_int, [c_char_p, P(c_char_p), c_int, c_int, P(P(Model)), ERR]),
    "wcm_model_destroy": (None, [P(Model)]),
    "wcm_model_save": (c_int, [P(Model), c_char_p, c_int, ERR]),
    "wcm_model_get_net": (c_void_p, [P(Model), c_char_p]),
    "wcm_model_describe": (None, [P(Model), c_char_p, c_size_t]),
    "wcm_net_describe": (None, [c_void_p, c_char_p, c_size_t]),
    "wcm_net_cin": (c_int, [c_void_p]),
    "wcm_net_cout": (c_int, [c_void_p]),
    "wcm_net_rf": (c_int, [c_void_p]),
    "wcm_net_get_kind": (c_int, [c_void_p]),
    "wcm_net_kind_name": (c_char_p, [c_int]),
    "wcm_net_forward": (c_int, [c_void_p, P(Tensor), P(Tensor), ERR]),
    "wcm_denoise": (c_int, [P(Model), P(Tensor), c_int, P(Tensor), ERR]),
    "wcm_denoise_ex": (c_int, [P(Model), P(Tensor), P(DenoiseOptions), P(Tensor), P(DenoiseInfo), ERR]),
    "wcm_add_noise": (c_int, [P(Tensor), c_double, ctypes.c_uint64, ctypes.c_uint64, ERR]),
    "wcm_noise_pattern": (None, [c_int, ctypes.c_uint64, c_int, c_size_t, c_float_p]),
    "wcm_noise_apply_255": (None, [c_float_p, c_float_p, c_size_t, c_double, c_float_p]),
    "wcm_psnr": (c_double, [c_float_p, c_float_p, c_size_t]),
    "wcm_psnr_clamped": (c_double, [c_float_p, c_float_p, c_size_t]),
    "wcm_haar_forward": (c_int, [P(Tensor), c_int, P(Pyramid), ERR]),
    "wcm_haar_inverse": (c_int, [P(Pyramid), P(Tensor), ERR]),
    "wcm_pyramid_free": (None, [P(Pyramid)]),
    "wcm_image_read": (c_int, [c_char_p, P(Tensor), ERR]),
    "wcm_image_write": (c_int, [c_char_p, P(Tensor), c_int, c_int, ERR]),
    "wcm_image_center_crop": (c_int, [P(Tensor), c_int, c_int, P(Tensor), ERR]),
    "wcm_synth_options_default": (None, [P(SynthOptions)]),
    "wcm_synth_sample": (c_int, [P(Model), c_int, c_int, c_int, P(SynthOptions), P(SynthResult), ERR]),
    "wcm_synth_superres": (c_int, [P(Model), P(Tensor), P(SynthOptions), P(SynthResult), ERR]),
    "wcm_synth_result_free": (None, [P(SynthResult)]),
    "wcm_synth_lowpass": (c_int, [P(Tensor), c_int, P(Tensor), ERR]),
    "wcm_sample_status_name": (c_char_p, [c_int]),
}
c_uint = ctypes.c_uint
OPTIONAL = {
    # include/wcm/jacobian.h
    "wcm_jacobian_create": (c_int, [P(c_void_p), P(Model), c_float_p, c_int, c_int, c_uint, ERR]),
    "wcm_jacobian_free": (None, [c_void_p]),
    "wcm_jacobian_height": (c_int, [c_void_p]),
    "wcm_jacobian_width": (c_int, [c_void_p]),
    "wcm_jacobian_value": (c_float_p, [c_void_p]),
    "wcm_jacobian_rows": (c_int, [c_void_p, P(c_int), c_int, c_float_p, ERR]),
    "wcm_jacobian_full": (c_int, [c_void_p, c_float_p, ERR]),
    "wcm_jacobian_spectrum_compute": (c_int, [c_float_p, c_int, P(c_double), P(JacobianSpectrum), ERR]),
    # include/wcm/trainer.h
    "wcm_train_options_default": (None, [P(TrainOptions)]),
    "wcm_train_run": (c_int, [P(TrainOptions), TRAIN_CALLBACK, c_void_p, ERR]),
}

STRUCTS = {"wcm_error": WcmError, "wcm_tensor": Tensor, "wcm_array": Array, "wcm_pyramid": Pyramid,
           "wcm_model": Model, "wcm_sampler_params": SamplerParams, "wcm_sample_result": SampleResult,
           "wcm_progress_info": ProgressInfo, "wcm_synth_stage": SynthStage,
           "wcm_synth_progress_info": SynthProgressInfo, "wcm_synth_options": SynthOptions,
           "wcm_synth_result": SynthResult, "wcm_tiling": Tiling,
           "wcm_denoise_options": DenoiseOptions, "wcm_denoise_info": DenoiseInfo}
# Structs of the OPTIONAL APIs: checked when the library knows them.
OPTIONAL_STRUCTS = {"wcm_jacobian_spectrum": JacobianSpectrum, "wcm_train_options": TrainOptions,
                    "wcm_train_progress": TrainProgress}


def candidates():
    """Where libwcm.so is looked for, in order: $WCM_LIBRARY, next to the
    package, the build folders of the source tree the package sits in, then
    the system's library path."""
    env = os.environ.get("WCM_LIBRARY")
    if env:
        yield env
        return
    here = os.path.dirname(os.path.abspath(__file__))
    yield from sorted(glob.glob(os.path.join(here, "libwcm.so*")))
    source_root = os.path.dirname(os.path.dirname(here))
    for build in sorted(glob.glob(os.path.join(source_root, "build*"))):
        yield from sorted(glob.glob(os.path.join(build, "libwcm.so*")))
    found = ctypes.util.find_library("wcm")
    if found:
        yield found
    yield "libwcm.so"


def _declare(lib, table, required):
    for name, (restype, argtypes) in table.items():
        fn = getattr(lib, name, None)
        if fn is None:
            if required:
                raise OSError(f"{lib._name} lacks {name}: it is older than this wcm package")
            continue
        fn.restype, fn.argtypes = restype, argtypes


def load():
    errors = []
    for path in candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            errors.append(f"{path}: {e}")
            continue
        if not hasattr(lib, "wcm_abi_sizeof"):
            errors.append(f"{path}: not a libwcm with wcm_abi_sizeof")
            continue
        _declare(lib, REQUIRED, True)
        _declare(lib, OPTIONAL, False)
        for name, struct in list(STRUCTS.items()) + list(OPTIONAL_STRUCTS.items()):
            want = lib.wcm_abi_sizeof(name.encode())
            if want != ctypes.sizeof(struct) and (want or name in STRUCTS):
                raise OSError(f"{path}: {name} is {want} bytes in the library, {ctypes.sizeof(struct)} in the "
                              "wcm Python package: they come from different versions")
        lib.path = path
        return lib
    raise OSError("libwcm.so not found (set WCM_LIBRARY to its path, or build wcm with cmake in build/):\n  "
                  + "\n  ".join(errors))


lib = load()


def has(name):
    """Whether the loaded library provides the C function `name`."""
    return getattr(lib, name, None) is not None


def check(rc, err):
    if rc != 0:
        raise Error(rc, err.msg.decode("utf-8", "replace"))

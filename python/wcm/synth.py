"""Sampling (Algorithm 2 through all scales) and super-resolution."""
import ctypes
import warnings

import numpy as np

from . import _arrays
from ._lib import (SYNTH_PROGRESS_FN, Error, SynthOptions, SynthResult, WcmError, check, lib, MAX_LEVELS)

# Algorithm-1 settings accepted as keyword arguments, by their C field names
# (wcm_sampler_params) and the CLI's option names.
_PARAMS = {"h0": "h0", "sigma0": "sigma_0", "sigma_0": "sigma_0", "sigmaL": "sigma_L", "sigma_L": "sigma_L",
           "beta": "beta", "fixed_step": "fixed_step", "max_iters": "max_iters", "diverge": "divergence_threshold",
           "divergence_threshold": "divergence_threshold", "std_jump": "std_jump", "plateau": "plateau_iters",
           "plateau_iters": "plateau_iters", "plateau_db": "plateau_db"}


def _options(model, seed, params, net_params, retries, value_range, progress, memory_mb=256):
    o = SynthOptions()
    lib.wcm_synth_options_default(ctypes.byref(o))
    o.seed = int(seed)
    # Conditional passes larger than this run in exact tiles (the same bits).
    o.tiling.memory = int(memory_mb * (1 << 20))
    o.retries = int(retries)
    if value_range is not None:
        o.range_min, o.range_max = (float(v) for v in value_range)
    targets = {"low": o.low}
    for j in range(MAX_LEVELS):
        targets[str(j)] = o.cond[j]

    def apply(p, settings):
        for key, value in settings.items():
            if key not in _PARAMS:
                raise TypeError(f"unknown sampler setting {key!r}; known: {', '.join(sorted(_PARAMS))}")
            setattr(p, _PARAMS[key], type(getattr(p, _PARAMS[key]))(value))

    for p in targets.values():
        apply(p, params)
    for name, settings in (net_params or {}).items():
        name = str(name)
        if name not in targets or (name != "low" and int(name) >= model.levels):
            raise KeyError(f"net_params: no network {name!r} in this model ({', '.join(model.net_names)})")
        apply(targets[name], settings)
    state = {"error": None}
    if progress is not None:
        def report(user, info_ptr):
            if state["error"] is not None:
                return
            info = info_ptr.contents
            d = {"net": info.net.decode(), "scale": info.scale, "stage": info.stage, "nstages": info.nstages,
                 "finished": bool(info.finished)}
            if info.iteration:
                it = info.iteration.contents
                d.update(iteration=it.t, max_iters=it.max_iters, batch=it.batch, active=it.active,
                         max_sigma=it.max_sigma_active, seconds=it.seconds)
            else:
                d.update(seconds=info.finished.contents.seconds)
            try:
                progress(d)
            except BaseException as e:  # re-raised once the C call returns
                state["error"] = e
        o.progress = SYNTH_PROGRESS_FN(report)
        state["callback"] = o.progress  # kept alive for the call
    return o, state


def _stage_info(st):
    results = [st.results[k] for k in range(st.batch)] if st.results else []
    return {"net": st.name.decode(), "scale": st.scale, "size": (st.h, st.w), "seconds": st.seconds,
            "iterations": [r.iterations for r in results],
            "status": [lib.wcm_sample_status_name(r.status).decode() for r in results]}


def _run(call, model, o, state, full):
    r, err = SynthResult(), WcmError()
    try:
        rc = call(ctypes.byref(o), ctypes.byref(r), ctypes.byref(err))
        if state["error"] is not None:
            raise state["error"]
        if rc == -6 and r.complete:  # WCM_ERR_NUMERIC: some samples diverged, every image is there
            warnings.warn(f"wcm: {err.msg.decode()}", RuntimeWarning, stacklevel=3)
        else:
            check(rc, err)
        if r.cap_samples:
            warnings.warn(f"wcm: {r.cap_samples} sample(s) stopped at the iteration cap", RuntimeWarning,
                          stacklevel=3)
        final = _arrays.copy_out(r.scale[r.nscales - 1])
        if not full:
            return final
        return {"images": final, "scales": [_arrays.copy_out(r.scale[s]) for s in range(r.nscales)],
                "stages": [_stage_info(r.stage[s]) for s in range(r.nstages)], "diverged": r.diverged,
                "cap_samples": r.cap_samples, "seconds": r.seconds}
    finally:
        lib.wcm_synth_result_free(ctypes.byref(r))


def sample(model, n=4, low_size=40, seed=0, rescale=True, retries=0, value_range=None, net_params=None,
           progress=None, full=False, **params):
    """Draw n images from a model (Algorithm 2: the coarsest low-pass with
    the low-pass net, min-max rescaled to [0, 0.8] unless rescale=False,
    then the details of every scale given the low-pass), as `wcm sample`.

    low_size: the coarsest low-pass size, int or (h, w); the images are
    2^J times larger (a flat model: the image size). Sample k depends only
    on (seed, k). Algorithm-1 settings for every net as keywords (h0,
    sigma0, sigmaL, beta, fixed_step, max_iters, diverge, std_jump,
    plateau), per net in net_params={"low": {...}, 0: {...}}. progress:
    called with a dict after every iteration and when a net finishes.
    Returns the (n, 1, H, W) images, or with full=True a dict with the
    images, every scale, per-net statistics and timings."""
    h, w = (low_size, low_size) if np.isscalar(low_size) else low_size
    o, state = _options(model, seed, params, net_params, retries, value_range, progress)
    o.rescale_low = int(bool(rescale))
    return _run(lambda opt, r, err: lib.wcm_synth_sample(model._ptr, int(n), int(h), int(w), opt, r, err),
                model, o, state, full)


def superres(model, low, seed=0, retries=0, value_range=None, net_params=None, progress=None, full=False,
             memory_mb=256, **params):
    """Super-resolution by 2^J of every image of the low-resolution batch
    `low` (N, 1, h, w) (an ordinary downsampled image: the coarsest
    low-pass), as `wcm superres`. To draw K samples of one image, repeat it
    K times (np.repeat(low, K, axis=0)). Settings as in sample(); network
    passes over memory_mb run in exact tiles (docs/large-images.md)."""
    a = _arrays.as_images(low, "low")
    t, keep = _arrays.nchw_view(a)
    o, state = _options(model, seed, params, net_params, retries, value_range, progress, memory_mb)
    return _run(lambda opt, r, err: lib.wcm_synth_superres(model._ptr, ctypes.byref(t), opt, r, err),
                model, o, state, full)

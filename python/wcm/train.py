"""Training a network from a folder of images (include/wcm/trainer.h): the
same run as `wcm train`, with progress reported to a Python callback.

    import wcm
    def report(p):
        if p["event"] == "epoch":
            print(p["epoch"], p["loss"], p["test_psnr"])
    wcm.train(kind="conditional", rf=13, data="faces/", output="c13.safetensors",
              batch=64, epochs=10, progress=report)

Every keyword is a field of wcm_train_options (docs/training.md explains
them); what is not given keeps the library's default, as in the CLI."""
import ctypes
import math

from ._lib import TRAIN_CALLBACK, TrainOptions, WcmError, check, has, lib

KINDS = {"flat": 0, "conditional": 1, "lowpass": 2}  # wcm_net_kind
NOISE_LAWS = {"quadratic": 0, "uniform": 1, "log-uniform": 2}  # wcm_noise_law
LR_SCHEDULES = {"step": 0, "cosine": 1}  # wcm_lr_schedule
EVENTS = ("info", "warning", "step", "epoch")  # wcm_train_event

_ENUMS = {"kind": KINDS, "noise": NOISE_LAWS, "lr_schedule": LR_SCHEDULES}
_FLAGS = {"no_cache", "intensity", "bn_frozen", "bn_running_warmup", "flip", "exact_sums", "resume", "force"}


def _nan_to_none(v):
    return None if isinstance(v, float) and math.isnan(v) else v


def _progress_dict(p):
    d = {"event": EVENTS[p.event] if 0 <= p.event < len(EVENTS) else p.event,
         "message": p.message.decode(errors="replace") if p.message else None}
    for name in ("epoch", "epochs", "batch", "nbatches", "step", "total_steps", "loss", "psnr", "step_loss",
                 "comm_seconds", "lr", "images_per_s", "eta_s", "seconds", "stopped"):
        d[name] = _nan_to_none(getattr(p, name))
    if p.event == 3:
        d.update(test_psnr=_nan_to_none(p.test_psnr), test_noisy_psnr=_nan_to_none(p.test_noisy_psnr),
                 sigma255=list(p.sigma255), level_psnr=[_nan_to_none(v) for v in p.level_psnr],
                 level_noisy_psnr=[_nan_to_none(v) for v in p.level_noisy_psnr],
                 output_ratio=p.output_ratio, collapsed=bool(p.collapsed), baseline_loss=p.baseline_loss)
    return d


def _require():
    if not has("wcm_train_run"):
        raise NotImplementedError(f"{lib.path} has no trainer API (include/wcm/trainer.h): rebuild a newer wcm")


def train_options(**settings):
    """The wcm_train_options of a run: the library's defaults with the given
    fields replaced (kind and noise by name: "conditional", "log-uniform")."""
    _require()
    o = TrainOptions()
    lib.wcm_train_options_default(ctypes.byref(o))
    keep = []  # the bytes the char pointers point at live as long as o
    names = {f for f, _ in TrainOptions._fields_} - {"comm"}
    for key, value in settings.items():
        if key not in names:
            raise TypeError(f"unknown training option {key!r}")
        if key in _ENUMS:
            if value not in _ENUMS[key]:
                raise ValueError(f"{key} must be one of {sorted(_ENUMS[key])}, got {value!r}")
            value = _ENUMS[key][value]
        elif key in _FLAGS:
            value = int(bool(value))
        elif isinstance(value, str):
            value = value.encode()
            keep.append(value)
        setattr(o, key, value)
    o._keep = keep
    return o


def train(progress=None, **settings):
    """Run a whole training (data, test split, schedule, evaluation,
    checkpoints, resume) as `wcm train` does; the model is written to
    `output`. progress(dict) is called on every message, step and epoch
    (event "info", "warning", "step" or "epoch"); returning True stops the
    run after that step, with a checkpoint. Raises wcm.Error on failure."""
    o = train_options(**settings)
    failure = []

    def report(p_ptr, user):
        if progress is None:
            return 0
        try:
            return 1 if progress(_progress_dict(p_ptr.contents)) else 0
        except BaseException as e:  # an exception cannot cross C: stop the run, re-raise after
            failure.append(e)
            return 1

    callback = TRAIN_CALLBACK(report)
    err = WcmError()
    rc = lib.wcm_train_run(ctypes.byref(o), callback, None, ctypes.byref(err))
    if failure:
        raise failure[0]
    check(rc, err)

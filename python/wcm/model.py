"""Models: loading, importing the authors' PyTorch networks, saving, and the
raw forward pass of one network."""
import ctypes
import os

import numpy as np

from . import _arrays
from ._lib import Error, Model as _Model, Tensor, WcmError, check, lib

_KINDS = {0: "flat", 1: "conditional", 2: "lowpass"}


def _path(p):
    return os.fsencode(os.fspath(p))


class Net:
    """One network of a model (it keeps the model alive)."""

    def __init__(self, model, ptr, name):
        self._model, self._ptr, self.name = model, ptr, name

    @property
    def kind(self):
        return lib.wcm_net_kind_name(lib.wcm_net_get_kind(self._ptr)).decode()

    @property
    def in_channels(self):
        return lib.wcm_net_cin(self._ptr)

    @property
    def out_channels(self):
        return lib.wcm_net_cout(self._ptr)

    @property
    def receptive_field(self):
        return lib.wcm_net_rf(self._ptr)

    def describe(self):
        buf = ctypes.create_string_buffer(512)
        lib.wcm_net_describe(self._ptr, buf, len(buf))
        return buf.value.decode()

    def forward(self, x):
        """The network's output f(x), the predicted noise, for an NCHW batch
        of in_channels channels: an NCHW array of out_channels channels. The
        result is written by the library straight into the returned array."""
        a = _arrays.as_images(x)
        if a.shape[1] != self.in_channels:
            raise ValueError(f"{self.name}: the network takes {self.in_channels} channels, got {a.shape[1]}")
        t_in, keep = _arrays.nchw_view(a)
        n, _, h, w = a.shape
        out = np.empty((n, h, w, self.out_channels), dtype=np.float32)
        t_out, err = _arrays.view(out), WcmError()
        check(lib.wcm_net_forward(self._ptr, ctypes.byref(t_in), ctypes.byref(t_out), ctypes.byref(err)), err)
        del keep
        return np.ascontiguousarray(out.transpose(0, 3, 1, 2))

    __call__ = forward

    def __repr__(self):
        return f"<wcm.Net {self.name}: {self.describe()}>"


class Model:
    """A wcm model: one network, or a multi-scale model (a low-pass net and J
    conditional nets, scale 0 the finest). Use load_model or import_torch."""

    def __init__(self, ptr):
        self._ptr = ptr

    @property
    def _m(self):
        if not self._ptr:
            raise ValueError("the model was closed")
        return self._ptr.contents

    @property
    def multiscale(self):
        return bool(self._m.multiscale)

    @property
    def levels(self):
        """J, the number of conditional nets (0 for a single network)."""
        return self._m.levels if self._m.multiscale else 0

    @property
    def net_names(self):
        return ["low"] + [str(j) for j in range(self.levels)] if self.multiscale else ["net"]

    def net(self, name=None):
        """The network "low", "0" .. "J-1" (or j), or "net" of a single model."""
        key = "" if name is None else str(name)
        ptr = lib.wcm_model_get_net(self._ptr, key.encode())
        if not ptr:
            raise KeyError(f"no network {name!r}; this model has {', '.join(self.net_names)}")
        return Net(self, ptr, key or "net")

    def describe(self):
        buf = ctypes.create_string_buffer(8192)
        lib.wcm_model_describe(self._ptr, buf, len(buf))
        return buf.value.decode()

    def save(self, path, half=False):
        """Write the model as .safetensors (atomically); half stores float16."""
        err = WcmError()
        check(lib.wcm_model_save(self._ptr, _path(path), int(bool(half)), ctypes.byref(err)), err)

    def close(self):
        if self._ptr:
            lib.wcm_model_destroy(self._ptr)
            self._ptr = None

    def __del__(self):
        if lib is not None:
            self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"<wcm.Model {'multi-scale J=%d' % self.levels if self.multiscale else 'single network'}>"


def load_model(path):
    """A model from .safetensors (wcm's format) or one PyTorch .pt network."""
    ptr, err = ctypes.POINTER(_Model)(), WcmError()
    check(lib.wcm_model_open(_path(path), ctypes.byref(ptr), ctypes.byref(err)), err)
    return Model(ptr)


def import_torch(*conds, low=None):
    """The authors' PyTorch checkpoints as a model: import_torch("net.pt") for
    one network, import_torch("cond0.pt", "cond1.pt", low="low.pt") for a
    multi-scale model (conditional nets finest first), as `wcm import-torch`.
    Save it with model.save(path)."""
    if low is None:
        if len(conds) != 1:
            raise ValueError("give one .pt network, or the conditional nets and low=")
        if not os.fspath(conds[0]).endswith((".pt", ".pth")):
            raise ValueError(f"{conds[0]}: import_torch reads PyTorch .pt files (use load_model for others)")
        return load_model(conds[0])
    names = (ctypes.c_char_p * len(conds))(*[_path(c) for c in conds])
    ptr, err = ctypes.POINTER(_Model)(), WcmError()
    check(lib.wcm_model_assemble_new(_path(low), names, len(conds), 1, ctypes.byref(ptr), ctypes.byref(err)), err)
    return Model(ptr)


def forward(model, x, net=None):
    """f(x) of one network of `model` (see Net.forward); `net` names it in a
    multi-scale model ("low" or a scale j)."""
    if model.multiscale and net is None:
        raise ValueError(f"a multi-scale model: choose net= among {', '.join(model.net_names)}")
    return model.net(net).forward(x)


__all__ = ["Model", "Net", "load_model", "import_torch", "forward", "Error", "Tensor"]

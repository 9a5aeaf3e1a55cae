"""Jacobians of denoisers, the paper's "adaptive filters" (include/wcm/jacobian.h):
exact rows by backward passes through the whole cascade. Needs a libwcm
with the Jacobian API (wcm.has_jacobian())."""
import ctypes

import numpy as np

from . import _arrays
from ._lib import JacobianSpectrum as Spectrum, WcmError, check, has, lib

RESIDUAL, LOWPASS_ONLY = 1, 2  # WCM_JACOBIAN_RESIDUAL, WCM_JACOBIAN_LOWPASS_ONLY


def has_jacobian():
    """Whether the loaded library has the Jacobian API."""
    return has("wcm_jacobian_create")


def _require():
    if not has_jacobian():
        raise NotImplementedError(f"{lib.path} has no Jacobian API (include/wcm/jacobian.h): rebuild a newer wcm")


class Jacobian:
    """The linearisation of a model's denoiser D(y) (or, with residual=True,
    of f(y) = y - D(y)) at one noisy image y (H, W) or (1, 1, H, W); with
    lowpass_only=True that of the low-pass-only baseline."""

    def __init__(self, model, image, residual=False, lowpass_only=False):
        _require()
        a = np.ascontiguousarray(np.asarray(image, dtype=np.float32).reshape(np.shape(image)[-2:]))
        self._model = model
        self._ptr, err = ctypes.c_void_p(), WcmError()
        flags = (RESIDUAL if residual else 0) | (LOWPASS_ONLY if lowpass_only else 0)
        check(lib.wcm_jacobian_create(ctypes.byref(self._ptr), model._ptr, _arrays.float_ptr(a), a.shape[0],
                                      a.shape[1], flags, ctypes.byref(err)), err)
        self.shape = (lib.wcm_jacobian_height(self._ptr), lib.wcm_jacobian_width(self._ptr))

    @property
    def value(self):
        """D(y) (or f(y)) at the image, (H, W); by homogeneity J y equals it."""
        p = lib.wcm_jacobian_value(self._ptr)
        return np.ctypeslib.as_array(p, shape=self.shape).copy()

    def rows(self, pixels):
        """The rows of the pixels [(i, j), ...]: (P, H, W), row q holding
        J[p][k] for every input pixel k, p = (i, j)."""
        pix = np.ascontiguousarray(np.asarray(pixels, dtype=np.int32).reshape(-1, 2))
        out = np.empty((len(pix),) + self.shape, dtype=np.float32)
        err = WcmError()
        check(lib.wcm_jacobian_rows(self._ptr, pix.ctypes.data_as(ctypes.POINTER(ctypes.c_int)), len(pix),
                                    _arrays.float_ptr(out), ctypes.byref(err)), err)
        return out

    def full(self):
        """The whole (H W) x (H W) Jacobian (images up to 64 x 64 pixels)."""
        n = self.shape[0] * self.shape[1]
        out = np.empty((n, n), dtype=np.float32)
        err = WcmError()
        check(lib.wcm_jacobian_full(self._ptr, _arrays.float_ptr(out), ctypes.byref(err)), err)
        return out

    def close(self):
        if self._ptr:
            lib.wcm_jacobian_free(self._ptr)
            self._ptr = ctypes.c_void_p()

    def __del__(self):
        if lib is not None and has_jacobian():
            self.close()


def jacobian_spectrum(jacobian):
    """Eigenvalues (decreasing) of the symmetric part of a square Jacobian
    and a summary: trace (the effective dimensionality), eig_min, eig_max,
    asymmetry ||J - J^T|| / ||J + J^T||, frobenius."""
    _require()
    j = np.ascontiguousarray(jacobian, dtype=np.float32)
    if j.ndim != 2 or j.shape[0] != j.shape[1]:
        raise ValueError(f"a square matrix is needed, got shape {j.shape}")
    n = j.shape[0]
    eig, s, err = np.empty(n, dtype=np.float64), Spectrum(), WcmError()
    check(lib.wcm_jacobian_spectrum_compute(_arrays.float_ptr(j), n,
                                            eig.ctypes.data_as(ctypes.POINTER(ctypes.c_double)), ctypes.byref(s),
                                            ctypes.byref(err)), err)
    return eig, {name: getattr(s, name) for name, _ in Spectrum._fields_ if name != "n"}


def jacobian_rows(model, image, pixels, residual=False, lowpass_only=False):
    """Rows of the denoiser's Jacobian at `image` for the pixels [(i, j), ...]: (P, H, W)."""
    jac = Jacobian(model, image, residual, lowpass_only)
    try:
        return jac.rows(pixels)
    finally:
        jac.close()

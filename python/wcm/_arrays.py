"""numpy arrays <-> wcm tensors: inputs become views over the array's memory
(wcm_tensor_view, no copy for images); results are copied out of the
library's tensors, which are then freed."""
import ctypes

import numpy as np

from ._lib import Tensor, WcmError, check, lib


def as_images(x, name="x"):
    """x as a C-contiguous float32 NCHW batch; (H, W) is taken as one image."""
    a = np.asarray(x, dtype=np.float32)
    if a.ndim == 2:
        a = a[None, None]
    if a.ndim != 4:
        raise ValueError(f"{name} must be an NCHW array (N, C, H, W) or one (H, W) image, got shape {a.shape}")
    return np.ascontiguousarray(a)


def view(nhwc):
    """A wcm_tensor over a C-contiguous float32 (N, H, W, C) array (keep the array alive while it is used)."""
    assert nhwc.dtype == np.float32 and nhwc.flags.c_contiguous and nhwc.ndim == 4
    t, err = Tensor(), WcmError()
    n, h, w, c = (int(d) for d in nhwc.shape)
    check(lib.wcm_tensor_view_check(ctypes.byref(t), nhwc.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), n, h, w,
                                    c, ctypes.byref(err)), err)
    return t


def nchw_view(a):
    """(view tensor, the NHWC array it points into) for an NCHW float32 batch."""
    nhwc = a.reshape(a.shape[0], a.shape[2], a.shape[3], 1) if a.shape[1] == 1 else \
        np.ascontiguousarray(a.transpose(0, 2, 3, 1))
    return view(nhwc), nhwc


def take(t, index=None):
    """A copy of a host tensor as NCHW float32; the tensor is freed."""
    try:
        shape = (t.n, t.h, t.w, t.c)
        nhwc = np.ctypeslib.as_array(t.data, shape=shape)
        if index is not None:
            nhwc = nhwc[index:index + 1]
        return np.array(nhwc.transpose(0, 3, 1, 2), order="C", copy=True)
    finally:
        lib.wcm_tensor_free(ctypes.byref(t))


def copy_out(t):
    """A copy of a host tensor (not freed) as NCHW float32."""
    nhwc = np.ctypeslib.as_array(t.data, shape=(t.n, t.h, t.w, t.c))
    return np.array(nhwc.transpose(0, 3, 1, 2), order="C", copy=True)


def float_ptr(a):
    return a.ctypes.data_as(ctypes.POINTER(ctypes.c_float))

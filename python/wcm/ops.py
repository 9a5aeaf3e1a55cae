"""Noise, denoising, PSNR, the Haar pyramid and image files."""
import ctypes
import os

import numpy as np

from . import _arrays
from ._lib import DenoiseOptions, Pyramid, Tensor, WcmError, check, lib, MAX_LEVELS

_NOISE_KINDS = {"torch": 0, "philox": 1}


def noise_pattern(shape, seed=0, noise="torch"):
    """Standard normal noise of an NCHW shape: "torch" is exactly
    torch.manual_seed(seed); torch.randn(shape) (the authors' evaluation),
    "philox" wcm's counter-based generator (image k uses stream k + 1)."""
    if noise not in _NOISE_KINDS:
        raise ValueError(f"noise must be one of {sorted(_NOISE_KINDS)}, got {noise!r}")
    n = int(shape[0])
    per_image = int(np.prod(shape[1:]))
    z = np.empty(tuple(shape), dtype=np.float32)
    lib.wcm_noise_pattern(_NOISE_KINDS[noise], int(seed), n, per_image, _arrays.float_ptr(z))
    return z


def add_noise_255(clean, sigma_255, seed=0, noise="torch"):
    """clean + z * sigma_255 / 255 in float32, z = noise_pattern(seed, noise)
    over the whole batch: the noisy input of `wcm denoise --sigma` and of the
    authors' evaluation scripts. A new array of clean's shape."""
    a = _arrays.as_images(clean, "clean")
    z = noise_pattern(a.shape, seed, noise)
    out = np.empty_like(a)
    lib.wcm_noise_apply_255(_arrays.float_ptr(a), _arrays.float_ptr(z), a.size, float(sigma_255),
                            _arrays.float_ptr(out))
    return out.reshape(np.shape(clean)) if np.ndim(clean) == 2 else out


def add_noise(x, sigma, seed=0, first_image_index=0):
    """x plus Gaussian noise of standard deviation sigma ([0, 1] units) from
    wcm's counter-based generator: image k of the batch gets the noise of
    image first_image_index + k whatever the batch. A new array."""
    a = _arrays.as_images(x).copy()
    if a.shape[1] != 1:
        raise ValueError("add_noise takes gray images (C = 1)")
    t, keep = _arrays.nchw_view(a)  # for C = 1 a view of `a` itself: the noise is added in place
    err = WcmError()
    check(lib.wcm_add_noise(ctypes.byref(t), float(sigma), int(seed), int(first_image_index), ctypes.byref(err)), err)
    return a.reshape(np.shape(x)) if np.ndim(x) == 2 else a


def denoise(model, noisy, lowpass_only=False, pad=True, memory_mb=256):
    """The denoised batch x = y - f(y) (flat model), or the multi-scale
    cascade, as `wcm denoise`; lowpass_only keeps only the denoised low-pass
    (the paper's baseline). Any size: sides not divisible by 2^J are padded
    by symmetric reflection and the result cropped back (pad=False: an
    error); network passes over memory_mb run in exact tiles (the same
    bits). noisy: (N, 1, H, W) or (H, W); the result has the same shape."""
    a = _arrays.as_images(noisy, "noisy")
    t, keep = _arrays.nchw_view(a)
    o = DenoiseOptions(lowpass_only=int(bool(lowpass_only)), pad=int(bool(pad)))
    o.tiling.memory = int(memory_mb * (1 << 20))
    out, err = Tensor(), WcmError()
    check(lib.wcm_denoise_ex(model._ptr, ctypes.byref(t), ctypes.byref(o), ctypes.byref(out), None,
                             ctypes.byref(err)), err)
    result = _arrays.take(out)
    return result.reshape(np.shape(noisy)) if np.ndim(noisy) == 2 else result


def _pair(a, b):
    a = np.ascontiguousarray(a, dtype=np.float32)
    b = np.ascontiguousarray(b, dtype=np.float32)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} and {b.shape}")
    return a, b


def psnr(reference, estimate):
    """10 log10(1 / MSE) over all values (peak 1); inf for identical arrays.
    For a batch, call it per image and average, as the paper does."""
    a, b = _pair(reference, estimate)
    return lib.wcm_psnr(_arrays.float_ptr(a), _arrays.float_ptr(b), a.size)


def psnr_clamped(reference, estimate):
    """PSNR with the estimate clamped to [-1, 2] first (the evaluation of samples)."""
    a, b = _pair(reference, estimate)
    return lib.wcm_psnr_clamped(_arrays.float_ptr(a), _arrays.float_ptr(b), a.size)


def haar_forward(x, levels):
    """The J-level Haar pyramid of a gray batch (sizes divisible by 2^J): a
    list of J NCHW arrays, finest first, level j of shape
    (N, 4, H / 2^(j+1), W / 2^(j+1)) with channels [low, H, V, D] (the input
    layout of conditional net j). Coefficients are local means (docs/model.md §2)."""
    a = _arrays.as_images(x)
    if not 1 <= levels <= MAX_LEVELS:
        raise ValueError(f"levels must be in 1..{MAX_LEVELS}")
    t, keep = _arrays.nchw_view(a)
    p, err = Pyramid(), WcmError()
    check(lib.wcm_haar_forward(ctypes.byref(t), int(levels), ctypes.byref(p), ctypes.byref(err)), err)
    try:
        return [_arrays.copy_out(p.level[j]) for j in range(p.levels)]
    finally:
        lib.wcm_pyramid_free(ctypes.byref(p))


def haar_inverse(pyramid):
    """The image of a pyramid as haar_forward returns it: the coarsest
    low-pass (channel 0 of the last level) and every level's details."""
    if not 1 <= len(pyramid) <= MAX_LEVELS:
        raise ValueError(f"a pyramid has 1..{MAX_LEVELS} levels")
    p, keep = Pyramid(), []
    p.levels = len(pyramid)
    for j, level in enumerate(pyramid):
        a = _arrays.as_images(level, f"level {j}")
        if a.shape[1] != 4:
            raise ValueError(f"level {j} must have 4 channels [low, H, V, D], got {a.shape[1]}")
        t, nhwc = _arrays.nchw_view(a)
        p.level[j] = t
        keep.append(nhwc)
    out, err = Tensor(), WcmError()
    check(lib.wcm_haar_inverse(ctypes.byref(p), ctypes.byref(out), ctypes.byref(err)), err)
    return _arrays.take(out)


def lowpass(x, levels):
    """The coarsest low-pass of a J-level pyramid: (N, 1, H / 2^J, W / 2^J),
    an ordinary downsampled image (local means)."""
    a = _arrays.as_images(x)
    t, keep = _arrays.nchw_view(a)
    out, err = Tensor(), WcmError()
    check(lib.wcm_synth_lowpass(ctypes.byref(t), int(levels), ctypes.byref(out), ctypes.byref(err)), err)
    return _arrays.take(out)


def read_image(path):
    """A gray image as (1, 1, H, W) float32 in [0, 1]: PNG, JPEG or .npy, as the CLI reads it."""
    t, err = Tensor(), WcmError()
    check(lib.wcm_image_read(os.fsencode(os.fspath(path)), ctypes.byref(t), ctypes.byref(err)), err)
    return _arrays.take(t)


def write_image(path, x, index=0, bits=8):
    """Write image `index` of a gray batch: .png (8 or 16 bits, clipped to
    [0, 1]) or .npy (float32, exact). Atomic, as the CLI writes."""
    a = _arrays.as_images(x)
    t, keep = _arrays.nchw_view(a)
    err = WcmError()
    check(lib.wcm_image_write(os.fsencode(os.fspath(path)), ctypes.byref(t), int(index), int(bits),
                              ctypes.byref(err)), err)


def center_crop(x, height, width):
    """The centre height x width crop of a gray batch (x0 = (W - width) // 2, as the CLI)."""
    a = _arrays.as_images(x)
    t, keep = _arrays.nchw_view(a)
    out, err = Tensor(), WcmError()
    check(lib.wcm_image_center_crop(ctypes.byref(t), int(height), int(width), ctypes.byref(out),
                                    ctypes.byref(err)), err)
    return _arrays.take(out)

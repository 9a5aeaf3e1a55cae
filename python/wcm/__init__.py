"""wcm for Python: multi-scale local conditional probability models of images
(Kadkhodaie, Guth, Mallat, Simoncelli, ICLR 2023) through ctypes over libwcm.so.

Images and batches are numpy float32 arrays in NCHW order, like PyTorch:
(N, 1, H, W) for images, intensities in [0, 1]. Noise levels follow the C
API: `sigma` is in the pixels' [0, 1] units, `sigma_255` (functions ending in
_255) on the paper's 0-255 scale.

    import wcm
    model = wcm.load_model("models/kadkhodaie2023_face160_j2_rf13.safetensors")
    clean = wcm.read_image("face.png")                  # (1, 1, H, W)
    noisy = wcm.add_noise_255(clean, 50, seed=0)         # as `wcm denoise --sigma 50`
    denoised = wcm.denoise(model, noisy)
    print(wcm.psnr(clean, denoised))
"""
from ._lib import Error, lib as _clib
from .model import Model, Net, load_model, import_torch, forward
from .ops import (add_noise, add_noise_255, noise_pattern, denoise, psnr, psnr_clamped, haar_forward, haar_inverse,
                  lowpass, read_image, write_image, center_crop)
from .synth import sample, superres
from .jacobian import Jacobian, has_jacobian, jacobian_rows, jacobian_spectrum
from .train import train, train_options

__version__ = _clib.wcm_version().decode()

__all__ = ["Error", "Model", "Net", "load_model", "import_torch", "forward", "add_noise", "add_noise_255",
           "noise_pattern", "denoise", "psnr", "psnr_clamped", "haar_forward", "haar_inverse", "lowpass",
           "read_image", "write_image", "center_crop", "sample", "superres", "Jacobian", "has_jacobian",
           "jacobian_rows", "jacobian_spectrum", "train", "train_options", "set_threads", "get_threads", "library_path"]


def set_threads(n):
    """Threads of wcm's computations (<= 0: the default, every core)."""
    _clib.wcm_set_threads(int(n))


def get_threads():
    return _clib.wcm_get_threads()


def library_path():
    """The libwcm.so this package loaded."""
    return _clib.path

#!/usr/bin/env python3
"""Denoise a face with the shipped multi-scale model, as `wcm denoise` does,
and compare with the low-pass-only baseline.

    PYTHONPATH=python python3 python/examples/denoise_face.py [IMAGE] [SIGMA_255] [OUT.png]
"""
import os
import sys

import wcm

here = os.path.dirname(os.path.abspath(__file__))
source = os.path.dirname(os.path.dirname(here))
image = sys.argv[1] if len(sys.argv) > 1 else os.path.join(source, "examples", "data", "synthetic160.png")
sigma_255 = float(sys.argv[2]) if len(sys.argv) > 2 else 50.0
out = sys.argv[3] if len(sys.argv) > 3 else "denoised.png"

model = wcm.load_model(os.path.join(source, "models", "kadkhodaie2023_face160_j2_rf13.safetensors"))
clean = wcm.read_image(image)
f = 2 ** model.levels  # the multi-scale cascade needs sizes divisible by 2^J
clean = wcm.center_crop(clean, clean.shape[2] // f * f, clean.shape[3] // f * f)
noisy = wcm.add_noise_255(clean, sigma_255, seed=0)
denoised = wcm.denoise(model, noisy)
baseline = wcm.denoise(model, noisy, lowpass_only=True)
wcm.write_image(out, denoised)
print(f"{image} {clean.shape[3]}x{clean.shape[2]}, sigma {sigma_255:g}/255: noisy {wcm.psnr(clean, noisy):.2f} dB, "
      f"multi-scale {wcm.psnr(clean, denoised):.2f} dB, low-pass only {wcm.psnr(clean, baseline):.2f} dB -> {out}")

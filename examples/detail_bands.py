"""How a multi-scale model treats the finest detail bands (H, V, D of scale 0).

    python3 examples/detail_bands.py --images DIR [--n 30] [--model M.safetensors ...]
                                     [--samples SAMPLE_DIR ...]

For each model (or single conditional net), the slope of the denoised band
on the clean band of the test faces' scale-0 Haar details, at sigma 0, 3.2
and 10.3 (0-255): a denoiser keeps clean details (slope 1 at sigma 0) and
shrinks more as the noise grows. For each folder of samples written by
`wcm sample --npy`, the mean absolute H, V and D coefficients of scale 0
beside the photos' (centre 160x160 crops), and the stripe ratio (mean
|horizontal gradient| on even columns over odd columns).

Needs numpy and the wcm Python module (PYTHONPATH=python, library built).
"""
import argparse
import glob
import os

import numpy as np

import wcm


def center_crops(folder, n, size):
    files = sorted(f for f in os.listdir(folder) if f.lower().endswith((".png", ".jpg", ".jpeg")))[:n]
    return np.concatenate([wcm.center_crop(wcm.read_image(os.path.join(folder, f)), size, size) for f in files])


def scale0_net(model):
    names = model.net_names
    return model.net("0" if "0" in names else names[0])


def band_slopes(net, details, sigmas_255=(0.0, 3.2, 10.3), seed=1):
    """{sigma: (slope H, slope V, slope D)} for a conditional net on [low, H, V, D]."""
    out = {}
    for s in sigmas_255:
        rng = np.random.default_rng(seed)
        noise = (rng.standard_normal(details[:, 1:].shape) * s / 255).astype(np.float32)
        noisy = details.copy()
        noisy[:, 1:] += noise
        denoised = noisy[:, 1:] - net.forward(noisy)
        slopes = []
        for b in range(3):
            clean = details[:, 1 + b].ravel().astype(np.float64)
            est = denoised[:, b].ravel().astype(np.float64)
            slopes.append(float(np.dot(est, clean) / np.dot(clean, clean)))
        out[s] = slopes
    return out


def band_means(images):
    """Mean |H|, |V|, |D| of scale 0 and the stripe ratio, over (N, 1, H, W) images."""
    d = wcm.haar_forward(np.ascontiguousarray(images, dtype=np.float32), 1)[0]
    grad = np.abs(np.diff(images[:, 0], axis=2))
    stripe = grad[:, :, 0::2].mean(axis=(1, 2)) / grad[:, :, 1::2].mean(axis=(1, 2))
    return [float(np.abs(d[:, c]).mean()) for c in (1, 2, 3)] + [float(stripe.mean())]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", required=True, help="folder of test faces")
    ap.add_argument("--n", type=int, default=30, help="faces for the slopes (default 30)")
    ap.add_argument("--size", type=int, default=160, help="centre crop (default 160)")
    ap.add_argument("--levels", type=int, default=2, help="the models' J (default 2)")
    ap.add_argument("--model", action="append", default=[], help="a model or a single conditional net")
    ap.add_argument("--samples", action="append", default=[], help="a folder of sample_NNN.npy")
    args = ap.parse_args()
    wcm.set_threads(os.cpu_count() or 1)

    if args.model:
        details = np.ascontiguousarray(wcm.haar_forward(center_crops(args.images, args.n, args.size), args.levels)[0])
        rms = [np.sqrt((details[:, c] ** 2).mean()) * 255 for c in (1, 2, 3)]
        print(f"slope of the denoised band on the clean band, {args.n} faces "
              f"(band RMS 0-255: H {rms[0]:.2f}, V {rms[1]:.2f}, D {rms[2]:.2f})")
        print("| model | sigma | H | V | D |\n|---|---:|---:|---:|---:|")
        for path in args.model:
            with wcm.load_model(path) as model:
                for s, sl in band_slopes(scale0_net(model), details).items():
                    print(f"| {os.path.basename(path)} | {s:g} | {sl[0]:.3f} | {sl[1]:.3f} | {sl[2]:.3f} |")
    if args.samples:
        print("\nscale-0 bands of 160x160 images in [0, 1] (mean absolute value)")
        print("| set | images | H | V | D | V/H | stripe ratio |\n|---|---:|---:|---:|---:|---:|---:|")
        sets = [("photos", center_crops(args.images, 100, args.size))]
        for folder in args.samples:
            files = sorted(glob.glob(os.path.join(folder, "sample_[0-9][0-9][0-9].npy")))
            sets.append((folder, np.stack([np.load(f).reshape(1, args.size, args.size) for f in files])))
        for name, imgs in sets:
            h, v, d, stripe = band_means(imgs.astype(np.float32))
            print(f"| {name} | {len(imgs)} | {h:.4f} | {v:.4f} | {d:.4f} | {v / h:.2f} | {stripe:.2f} |")


if __name__ == "__main__":
    main()

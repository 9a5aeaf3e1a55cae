"""Reference Jacobian rows for tests/test_jacobian_golden.c.

Flat denoisers: the authors' own linear_approx.calc_jacobian_rows (rows of
the Jacobian of the network output f(y), i.e. wcm jacobian --residual).

Multi-scale denoisers: the authors' calc_jacobian_row_MS cannot be used (their
multi_scale_denoising runs under torch.no_grad() and reconstructs with pywt in
numpy), so this script differentiates its own PyTorch copy of the cascade with
autograd. Its Haar transform is the one of wcm/haar.h, written with tensor
slicing so that autograd goes through it: for each 2x2 block a b / c d,
    low = (a+b+c+d)/4, H = (a+b-c-d)/4, V = (a-b+c-d)/4, D = (a-b-c+d)/4
and the inverse a = low+H+V+D, b = low+H-V-D, c = low-H+V-D, d = low-H-V+D.
Before writing anything, the script checks that its cascade's output equals
the authors' multi_scale_denoising (pywt db1 with their normalisation) on the
same input, so the reference is the authors' denoiser, made differentiable.

Usage: python3 make_jacobian_golden.py WEIGHTS_DIR OUT_DIR
  WEIGHTS_DIR: the authors' repository (holds code/ and denoisers/)
Writes input.npy (1,1,40,40), one rows file (P,40,40) per case and
manifest.json (cases, pixels). Exits 77 when torch or the weights are absent.
"""
import json, os, sys

try:
    import numpy as np
    import torch
except ImportError:
    print("numpy or torch not available: skipping")
    sys.exit(77)

ref, out = sys.argv[1], sys.argv[2]
if not os.path.isdir(os.path.join(ref, 'denoisers')):
    print("no weights under", ref)
    sys.exit(77)
sys.path.insert(0, os.path.join(ref, 'code'))
from model_loader_func import load_BF_CNN_RF, load_multi_scale_denoisers_RF
from linear_approx import calc_jacobian_rows
from wavelet_func import multi_scale_denoising

torch.set_num_threads(2)
os.makedirs(out, exist_ok=True)
base = os.path.join(ref, 'denoisers')
S = 40
PIXELS = [(20, 20), (0, 0), (39, 5), (7, 33)]

# A smooth image with an edge, plus noise of std 0.1 (25 in 0-255 units).
g = torch.Generator().manual_seed(24)
yy, xx = torch.meshgrid(torch.arange(S, dtype=torch.float32), torch.arange(S, dtype=torch.float32), indexing='ij')
clean = 0.3 + 0.4 * (xx / S) + 0.25 * (((yy - 18) ** 2 + (xx - 22) ** 2) < 100).float()
noisy = (clean + 0.1 * torch.randn(S, S, generator=g)).reshape(1, 1, S, S)
np.save(os.path.join(out, 'input.npy'), noisy.numpy().astype(np.float32))


def haar_split(x):
    a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
    c, d = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    return torch.cat([(a + b + c + d) / 4, (a + b - c - d) / 4, (a - b + c - d) / 4, (a - b - c + d) / 4], 1)


def haar_merge(low, det):
    H, V, D = det[:, 0:1], det[:, 1:2], det[:, 2:3]
    n, _, h, w = low.shape
    x = low.new_zeros(n, 1, 2 * h, 2 * w)
    x[..., 0::2, 0::2] = low + H + V + D
    x[..., 0::2, 1::2] = low + H - V - D
    x[..., 1::2, 0::2] = low - H + V - D
    x[..., 1::2, 1::2] = low - H - V + D
    return x


def cascade(y, models, J, lowpass_only):
    levels, low = [], y
    for j in range(J):
        c = haar_split(low)
        levels.append(c)
        low = c[:, 0:1]
    x = low - models['low'](low)
    for j in range(J - 1, -1, -1):
        det = levels[j][:, 1:]
        if lowpass_only:
            det = torch.zeros_like(det)
        else:
            det = det - models[j](torch.cat([x, det], 1))
        x = haar_merge(x, det)
    return x


def rows_of(fn, y):
    y = y.clone().requires_grad_(True)
    out = fn(y)
    return np.stack([torch.autograd.grad(out[0, 0, i, j], y, retain_graph=True)[0][0, 0].numpy() for i, j in PIXELS])


cases = []


def save(name, rows, **kw):
    np.save(os.path.join(out, name), rows.astype(np.float32))
    cases.append(dict(rows=name, **kw))


for rf in [5, 13, 43]:
    m = load_BF_CNN_RF(base, 'celebA_160x160_gray', 'noise_range_0to255', rf)
    for p in m.parameters():
        p.requires_grad = False
    m.eval()
    rows = np.stack([calc_jacobian_rows(noisy.clone(), m, i, j).numpy() for i, j in PIXELS])
    save(f'flat_rf{rf}_residual_rows.npy', rows, model=f'flat/celebA_160x160_gray/noise_range_0to255_RF_{rf}x{rf}/model.pt',
         multiscale=False, residual=True, lowpass_only=False, rf=rf)

for rf in [5, 13]:
    ms = load_multi_scale_denoisers_RF(base, 'celebA_160x160_gray', 'noise_range_0to255', 40, rf, 2)
    for m in ms.values():
        for p in m.parameters():
            p.requires_grad = False
        m.eval()
    with torch.no_grad():
        mine = cascade(noisy, ms, 2, False)
        theirs = multi_scale_denoising(noisy, ms, torch.device('cpu'))[-1].float()
    gap = (mine - theirs).abs().max().item()
    if gap > 1e-5:
        sys.exit(f"the differentiable cascade differs from multi_scale_denoising by {gap}")
    d = 'multi_scale/celebA_160x160_gray/noise_range_0to255_RF_'
    nets = dict(low=d + '40x40_low/model.pt', cond0=d + f'{rf}x{rf}_scale_0/model.pt', cond1=d + f'{rf}x{rf}_scale_1/model.pt')
    for lp in [False, True]:
        rows = rows_of(lambda y: cascade(y, ms, 2, lp), noisy)
        save(f'ms_rf{rf}{"_lowpass" if lp else ""}_rows.npy', rows, nets=nets, multiscale=True, residual=False,
             lowpass_only=lp, rf=rf, cascade_vs_authors=gap)

with open(os.path.join(out, 'manifest.json'), 'w') as f:
    json.dump(dict(input='input.npy', pixels=PIXELS, cases=cases), f, indent=1)
print(f"wrote {len(cases)} cases to {out}")

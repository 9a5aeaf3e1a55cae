"""The Python package against analytic cases and, bit for bit, against the
wcm command line on the same inputs."""
import numpy as np
import pytest

import wcm
from conftest import FACE_MODEL, SYNTHETIC


def test_library_and_layout():
    import ctypes
    from wcm import _lib
    assert wcm.__version__.count(".") == 2 and "libwcm" in wcm.library_path()
    for name, struct in _lib.STRUCTS.items():
        assert _lib.lib.wcm_abi_sizeof(name.encode()) == ctypes.sizeof(struct), name
    assert _lib.lib.wcm_abi_sizeof(b"no_such_struct") == 0


def test_errors_are_exceptions(tmp_path):
    with pytest.raises(wcm.Error) as e:
        wcm.load_model(tmp_path / "missing.safetensors")
    assert e.value.kind == "IO" and "missing.safetensors" in str(e.value)
    with pytest.raises(wcm.Error) as e:
        wcm.haar_forward(np.zeros((1, 1, 6, 6), np.float32), 2)
    assert e.value.kind == "SHAPE"


def test_haar_matches_the_formulas_and_inverts():
    rng = np.random.default_rng(0)
    x = rng.random((2, 1, 16, 12), dtype=np.float32)
    p = wcm.haar_forward(x, 2)
    assert [l.shape for l in p] == [(2, 4, 8, 6), (2, 4, 4, 3)]
    a, b, c, d = x[:, 0, 0::2, 0::2], x[:, 0, 0::2, 1::2], x[:, 0, 1::2, 0::2], x[:, 0, 1::2, 1::2]
    want = np.stack([(a + b + c + d) / 4, (a + b - c - d) / 4, (a - b + c - d) / 4, (a - b - c + d) / 4], axis=1)
    assert np.abs(p[0] - want).max() < 1e-6
    assert np.abs(wcm.haar_inverse(p) - x).max() < 1e-6
    assert np.abs(wcm.lowpass(x, 2) - p[1][:, :1]).max() == 0


def test_noise_units():
    clean = np.full((1, 1, 8, 8), 0.5, np.float32)
    z = wcm.noise_pattern(clean.shape, seed=4)
    noisy = wcm.add_noise_255(clean, 51, seed=4)
    assert np.array_equal(noisy, clean + z * np.float32(51) / np.float32(255))
    unit = wcm.add_noise(np.zeros((2, 1, 8, 8), np.float32), 0.2, seed=4)
    philox = wcm.noise_pattern((2, 1, 8, 8), seed=4, noise="philox")
    assert np.abs(unit - np.float32(0.2) * philox).max() < 1e-7
    assert abs(wcm.psnr(clean, clean + 0.1) - 20) < 1e-4
    assert wcm.psnr_clamped(clean, clean + 5) == pytest.approx(10 * np.log10(1 / 1.5 ** 2))


def test_torch_noise_is_torch_randn():
    z = wcm.noise_pattern((1, 20), seed=0)
    assert abs(z[0, 0] - -1.1258398) < 2e-6 and abs(z[0, 19] - 0.053736903) < 2e-6


def test_denoise_equals_cli(cli, face_model, face, tmp_path):
    _, clean = face
    path = tmp_path / "face.npy"  # the CLI reads the very pixels Python has
    np.save(path, clean[0, 0])
    for extra in ([], ["--lowpass-only"]):
        out, noisy_out = tmp_path / "den.npy", tmp_path / "noisy.npy"
        cli("denoise", FACE_MODEL, path, out, "--sigma", 50, "--seed", 3, "--noisy-out", noisy_out, *extra)
        noisy = wcm.add_noise_255(clean, 50, seed=3)
        den = wcm.denoise(face_model, noisy, lowpass_only=bool(extra))
        assert np.array_equal(noisy[0, 0], np.load(noisy_out))
        assert np.array_equal(den[0, 0], np.load(out)), f"denoise {extra} differs from the CLI"
        assert wcm.psnr(clean, den) > wcm.psnr(clean, noisy) + 10


def test_forward_equals_cli(cli, face_model, face, tmp_path):
    _, clean = face
    level0 = wcm.haar_forward(clean, 2)[0]
    np.save(tmp_path / "in.npy", level0)
    cli("forward", FACE_MODEL, tmp_path / "in.npy", tmp_path / "out.npy", "--net", 0)
    out = wcm.forward(face_model, level0, net=0)
    assert out.shape == (1, 3, 80, 80)
    assert np.array_equal(out, np.load(tmp_path / "out.npy"))
    net = face_model.net("low")
    assert (net.kind, net.in_channels, net.out_channels) == ("lowpass", 1, 1)


def test_sample_equals_cli(cli, face_model, tmp_path):
    settings = dict(n=2, low_size=8, seed=5, max_iters=25)
    cli("sample", FACE_MODEL, "--out", tmp_path, "--n", 2, "--low-size", 8, "--seed", 5, "--max-iters", 25, "--npy")
    seen = []
    with pytest.warns(RuntimeWarning, match="iteration cap"):
        run = wcm.sample(face_model, full=True, progress=seen.append, **settings)
    images = run["images"]
    assert images.shape == (2, 1, 32, 32) and len(run["scales"]) == 3
    for k in range(2):
        assert np.array_equal(images[k, 0], np.load(tmp_path / f"sample_{k:03d}.npy")), f"sample {k} differs"
    assert [s["net"] for s in run["stages"]] == ["low", "cond1", "cond0"]
    assert sum(1 for d in seen if d["finished"]) == 3 and max(d.get("iteration", 0) for d in seen) == 25


def test_superres_equals_cli(cli, face_model, face, tmp_path):
    _, clean = face
    low = wcm.lowpass(clean[:, :, :64, :64], 2)
    np.save(tmp_path / "low.npy", low[0, 0])
    cli("superres", FACE_MODEL, tmp_path / "low.npy", tmp_path / "sr.npy", "--seed", 2, "--max-iters", 25)
    with pytest.warns(RuntimeWarning):
        sr = wcm.superres(face_model, low, seed=2, max_iters=25)
    assert sr.shape == (1, 1, 64, 64)
    assert np.array_equal(sr[0, 0], np.load(tmp_path / "sr.npy"))
    assert np.abs(wcm.lowpass(sr, 2) - low).max() < 1e-5


def test_views_need_no_copy_for_forward(face_model):
    """A forward on a batch of 3 equals three forwards of one (the output array is filled in place)."""
    x = np.random.default_rng(1).random((3, 1, 24, 24), dtype=np.float32)
    low = face_model.net("low")
    batch = low.forward(x)
    for k in range(3):
        assert np.abs(batch[k] - low.forward(x[k:k + 1])[0]).max() < 1e-5


def test_model_save_roundtrip(face_model, tmp_path):
    face_model.save(tmp_path / "copy.safetensors")
    copy = wcm.load_model(tmp_path / "copy.safetensors")
    assert copy.multiscale and copy.levels == 2 and copy.net_names == ["low", "0", "1"]
    x = wcm.read_image(SYNTHETIC)
    assert np.array_equal(wcm.denoise(copy, x), wcm.denoise(face_model, x))
    copy.close()

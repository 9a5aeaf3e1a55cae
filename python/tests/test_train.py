"""Training through the Python package: the same run as `wcm train` (the
written networks equal bit for bit, on the same thread count), progress
reaches the callback (steps, epochs with the noisy-input baselines), a
callback that returns True stops the run, and bad options raise."""
import os

import numpy as np
import pytest

import wcm

pytestmark = pytest.mark.skipif(not hasattr(wcm, "train"), reason="this wcm package has no training binding")


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """Twelve 32x32 gray images: crops of the shipped synthetic face, flipped and shifted."""
    from conftest import SYNTHETIC
    src = wcm.read_image(SYNTHETIC)[0, 0]
    folder = tmp_path_factory.mktemp("faces")
    for k in range(12):
        y, x = 8 * (k % 4), 10 * (k // 4)
        crop = src[40 + y:72 + y, 40 + x:72 + x]
        if k % 2:
            crop = crop[:, ::-1]
        wcm.write_image(str(folder / f"img{k:02d}.png"), np.ascontiguousarray(crop)[None, None])
    return str(folder)


def settings(data, output):
    return dict(kind="conditional", rf=5, data=data, output=output, crop=0, batch=4, epochs=2,
                lr_halve_every=1, no_cache=True, seed=3)


def test_train_equals_the_cli(faces, tmp_path, cli):
    threads = wcm.get_threads()
    events = []
    py_out = str(tmp_path / "py.safetensors")
    wcm.train(progress=events.append, **settings(faces, py_out))
    cli_out = str(tmp_path / "cli.safetensors")
    cli("train", "--kind", "conditional", "--rf", 5, "--data", faces, "-o", cli_out, "--crop", 0, "--batch", 4,
        "--epochs", 2, "--lr-halve-every", 1, "--no-cache", "--seed", 3, "--threads", threads)
    a, b = wcm.load_model(py_out), wcm.load_model(cli_out)
    x = np.random.default_rng(0).random((1, 4, 16, 16), dtype=np.float32)
    ya, yb = a.net().forward(x), b.net().forward(x)
    assert np.array_equal(ya, yb), f"largest difference {np.abs(ya - yb).max()}"
    steps = [e for e in events if e["event"] == "step"]
    epochs = [e for e in events if e["event"] == "epoch"]
    assert len(epochs) == 2 and [e["epoch"] for e in epochs] == [1, 2]
    assert len(steps) == epochs[-1]["step"] and steps[-1]["step"] == steps[-1]["total_steps"]
    assert all(np.isfinite(e["step_loss"]) and e["step_loss"] > 0 for e in steps)
    last = epochs[-1]
    assert last["sigma255"] == [5, 25, 100] and all(v is not None for v in last["level_noisy_psnr"])
    assert os.path.exists(py_out + ".log.csv") or os.path.exists(py_out[:-len(".safetensors")] + ".log.csv")
    print(f"python == CLI after {last['step']} steps; final loss {last['loss']:.4g}, "
          f"test PSNR {last['test_psnr']} dB (noisy {last['test_noisy_psnr']})")


def test_callback_stops_the_run(faces, tmp_path):
    seen = []

    def stop_after_two(p):
        seen.append(p)
        return p["event"] == "step" and p["step"] >= 2

    wcm.train(progress=stop_after_two, **settings(faces, str(tmp_path / "stop.safetensors")))
    steps = [p["step"] for p in seen if p["event"] == "step"]
    assert max(steps) == 2 and "stopped" in seen[-1]["message"]
    assert os.path.exists(tmp_path / "stop.safetensors")  # the checkpoint to --resume


def test_exceptions_in_the_callback_reach_the_caller(faces, tmp_path):
    def boom(p):
        raise KeyError("from the callback")

    with pytest.raises(KeyError):
        wcm.train(progress=boom, **settings(faces, str(tmp_path / "boom.safetensors")))


def test_bad_options_raise(tmp_path):
    with pytest.raises(TypeError):
        wcm.train(kind="conditional", colour="no")
    with pytest.raises(ValueError):
        wcm.train(kind="bilateral")
    with pytest.raises(wcm.Error):
        wcm.train(kind="conditional", rf=5, data=str(tmp_path / "missing"), output=str(tmp_path / "m.safetensors"))

"""The authors' PyTorch networks (../shared) imported by wcm against the
authors' own PyTorch code on the same inputs. Skipped without ../shared or torch."""
import os
import sys

import numpy as np
import pytest

import wcm
from conftest import SHARED

torch = pytest.importorskip("torch")
AUTHORS = os.path.join(SHARED, "weights", "kadkhodaie2023")
DENOISERS = os.path.join(AUTHORS, "denoisers")
if not os.path.isdir(DENOISERS):
    pytest.skip("no ../shared/weights/kadkhodaie2023 (the authors' networks)", allow_module_level=True)


@pytest.fixture(scope="module")
def authors():
    sys.path.insert(0, os.path.join(AUTHORS, "code"))
    try:
        import model_loader_func
    finally:
        sys.path.pop(0)
    torch.set_num_threads(2)
    return model_loader_func.load_multi_scale_denoisers_RF(DENOISERS, "celebA_160x160_gray", "noise_range_0to255",
                                                           40, 13, 2)


def _pt(name):
    base = os.path.join(DENOISERS, "multi_scale", "celebA_160x160_gray", "noise_range_0to255_RF_")
    return base + ("40x40_low" if name == "low" else f"13x13_scale_{name}") + "/model.pt"


def test_imported_nets_match_pytorch(authors, face, tmp_path):
    model = wcm.import_torch(_pt(0), _pt(1), low=_pt("low"))
    model.save(tmp_path / "ms_rf13.safetensors")
    assert wcm.load_model(tmp_path / "ms_rf13.safetensors").levels == 2
    _, clean = face
    noisy = wcm.add_noise_255(clean, 30, seed=1)
    pyramid = wcm.haar_forward(noisy, 2)
    inputs = {"low": pyramid[1][:, :1], 0: pyramid[0], 1: pyramid[1]}
    for name, x in inputs.items():
        with torch.no_grad():
            want = authors[name](torch.from_numpy(np.ascontiguousarray(x))).numpy()
        got = model.net(name).forward(x)
        rel = np.abs(got - want).max() / np.abs(want).max()
        print(f"net {name}: max |wcm - PyTorch| / max |PyTorch| = {rel:.2e}")
        assert rel < 1e-4, f"net {name}: relative difference {rel:.2e}"

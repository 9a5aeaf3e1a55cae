"""Paths the tests share: the source tree, the wcm executable built beside
the library, the shipped models and the read-only ../shared folder."""
import os
import shutil
import subprocess

import pytest

SOURCE = os.environ.get("WCM_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = os.path.join(SOURCE, "models")
FACE_MODEL = os.path.join(MODELS, "kadkhodaie2023_face160_j2_rf13.safetensors")
SYNTHETIC = os.path.join(SOURCE, "examples", "data", "synthetic160.png")
SHARED = os.environ.get("WCM_SHARED_DIR") or os.path.join(os.path.dirname(SOURCE), "shared")


def _cli():
    if os.environ.get("WCM_CLI"):
        return os.environ["WCM_CLI"]
    import wcm
    beside = os.path.join(os.path.dirname(wcm.library_path()), "wcm")
    if os.path.isfile(beside) and os.access(beside, os.X_OK):
        return beside
    return shutil.which("wcm")


@pytest.fixture(scope="session")
def cli():
    path = _cli()
    if not path:
        pytest.skip("no wcm executable (set WCM_CLI)")

    def run(*args):
        p = subprocess.run([path, *map(str, args)], capture_output=True, text=True)
        assert p.returncode == 0, f"wcm {' '.join(map(str, args))} failed ({p.returncode}): {p.stderr}"
        return p.stdout

    return run


@pytest.fixture(scope="session")
def face_model():
    import wcm
    with wcm.load_model(FACE_MODEL) as m:
        yield m


@pytest.fixture(scope="session")
def face():
    """A 160x160 CelebA test face when ../shared has them, else the shipped synthetic face."""
    import wcm
    test_dir = os.path.join(SHARED, "data", "celeba", "test")
    if os.path.isdir(test_dir):
        first = sorted(f for f in os.listdir(test_dir) if f.endswith((".jpg", ".png")))[0]
        path = os.path.join(test_dir, first)
        img = wcm.read_image(path)
        return path, wcm.center_crop(img, 160, 160)
    return SYNTHETIC, wcm.read_image(SYNTHETIC)

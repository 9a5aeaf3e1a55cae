"""Jacobian rows of the shipped multi-scale denoiser through the Python
package: homogeneity (J y = D(y) for a bias-free ReLU network), rows against
the whole Jacobian, and the spectrum of a symmetric matrix. Skipped when the
library has no Jacobian API."""
import numpy as np
import pytest

import wcm

pytestmark = pytest.mark.skipif(not wcm.has_jacobian(), reason="this libwcm has no Jacobian API")


@pytest.fixture(scope="module")
def small_noisy(face):
    _, clean = face
    crop = wcm.center_crop(clean, 32, 32)
    return wcm.add_noise_255(crop, 30, seed=2)[0, 0]


def test_rows_are_exact_linearisations(face_model, small_noisy):
    jac = wcm.Jacobian(face_model, small_noisy)
    assert jac.shape == (32, 32)
    value = jac.value
    assert np.abs(value - wcm.denoise(face_model, small_noisy)).max() < 1e-5
    pixels = [(0, 0), (16, 16), (31, 5)]
    rows = jac.rows(pixels)
    for q, (i, j) in enumerate(pixels):
        linear = float((rows[q].astype(np.float64) * small_noisy).sum())
        assert abs(linear - value[i, j]) < 1e-4, f"pixel {(i, j)}: J y = {linear}, D(y) = {value[i, j]}"
    full = jac.full()
    assert np.abs(full[16 * 32 + 16] - rows[1].ravel()).max() < 1e-6
    jac.close()


def test_spectrum_of_a_symmetric_matrix():
    a = np.diag(np.array([3.0, 1.0, -2.0], np.float32))
    eig, s = wcm.jacobian_spectrum(a)
    assert np.allclose(eig, [3, 1, -2]) and s["trace"] == pytest.approx(2) and s["asymmetry"] == 0

import math

import numpy as np
import pytest

from src.errors import UserError
from src.metrics.image_quality import mean_metrics, psnr, ssim


def _ramp_pair():
    """Two deterministic 16x16 uint8 images (no RNG, so the values do not depend on the NumPy version)."""
    yy, xx = np.mgrid[0:16, 0:16]
    a = (xx * 16 + yy).astype(np.uint8)
    b = ((xx * yy) % 256).astype(np.uint8)
    return a, b


def _rgb_pair():
    """Two deterministic 20x24x3 uint8 images."""
    yy, xx = np.mgrid[0:20, 0:24]
    a = np.stack([(xx * 10 + yy) % 256, (xx * yy) % 256, (7 * xx + 3 * yy * yy) % 256], axis=-1).astype(np.uint8)
    b = np.stack([(xx * 9 + yy * 2) % 256, (xx * yy + 17) % 256, (200 - 5 * xx + yy) % 256], axis=-1).astype(np.uint8)
    return a, b


# ---------------------------------------------------------------------------------------------------------------- PSNR


def test_psnr_constant_offset_matches_known_mse():
    x = np.full((8, 9, 3), 100, dtype=np.uint8)
    y = x + np.uint8(5)  # MSE = 25 exactly
    assert psnr(x, y) == pytest.approx(10 * math.log10(255.0**2 / 25.0), abs=1e-12)
    assert psnr(y, x) == pytest.approx(psnr(x, y), abs=1e-12)


def test_psnr_uint8_has_no_wraparound():
    # 0 - 5 must not wrap to 251 in uint8 arithmetic.
    x = np.zeros((4, 4), dtype=np.uint8)
    y = np.full((4, 4), 5, dtype=np.uint8)
    assert psnr(x, y) == pytest.approx(10 * math.log10(255.0**2 / 25.0), abs=1e-12)


def test_psnr_float_with_data_range_one():
    x = np.zeros((6, 6))
    y = np.full((6, 6), 0.1)  # MSE = 0.01 -> 20 dB for data_range 1
    assert psnr(x, y, data_range=1.0) == pytest.approx(20.0, abs=1e-9)


def test_psnr_identical_is_inf():
    x = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    assert psnr(x, x.copy()) == math.inf


def test_psnr_skimage_crosscheck():
    # Literals computed once with scikit-image 0.26.0 peak_signal_noise_ratio(a, b, data_range=255).
    a, b = _ramp_pair()
    assert psnr(a, b) == pytest.approx(9.120990989741927, abs=1e-9)
    a, b = _rgb_pair()
    assert psnr(a, b) == pytest.approx(13.024445098079145, abs=1e-9)


# ---------------------------------------------------------------------------------------------------------------- SSIM


def test_ssim_identical_is_one():
    a, _ = _rgb_pair()
    assert ssim(a, a.copy()) == pytest.approx(1.0, abs=1e-12)
    g, _ = _ramp_pair()
    assert ssim(g, g) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("mx, my", [(50.0, 200.0), (0.0, 255.0), (128.0, 130.0)])
def test_ssim_constant_images_closed_form(mx, my):
    # Constant images: all variances/covariance are 0, so the contrast-structure term is C2/C2 = 1 and SSIM is the
    # luminance term alone.
    x = np.full((16, 16), mx)
    y = np.full((16, 16), my)
    c1 = (0.01 * 255.0) ** 2
    expected = (2 * mx * my + c1) / (mx**2 + my**2 + c1)
    assert ssim(x, y) == pytest.approx(expected, rel=1e-9)


def test_ssim_symmetric():
    a, b = _rgb_pair()
    assert ssim(a, b) == pytest.approx(ssim(b, a), abs=1e-12)


def test_ssim_skimage_crosscheck():
    # Literals computed once with scikit-image 0.26.0 structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
    # use_sample_covariance=False, data_range=255, channel_axis=-1 for RGB / None for grayscale).
    a, b = _ramp_pair()
    assert ssim(a, b) == pytest.approx(0.5105222219439823, abs=1e-9)
    a, b = _rgb_pair()
    assert ssim(a, b) == pytest.approx(0.6252788578103986, abs=1e-9)


def test_ssim_multichannel_is_mean_of_channels():
    a, b = _rgb_pair()
    per_channel = [ssim(a[..., c], b[..., c]) for c in range(3)]
    assert ssim(a, b) == pytest.approx(np.mean(per_channel), abs=1e-12)


def test_ssim_matches_brute_force_interior_windows():
    # Independent check of the recipe: explicit 11x11 Gaussian weights, population statistics, and the mean over the
    # window centres whose 11x11 window lies fully inside the image (exactly the interior skimage keeps; there the
    # reflect padding of the filter never matters).
    a, b = _rgb_pair()
    x, y = a[..., 0].astype(np.float64), b[..., 0].astype(np.float64)
    t = np.arange(-5, 6, dtype=np.float64)
    g = np.exp(-(t**2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    values = []
    for i in range(5, x.shape[0] - 5):
        for j in range(5, x.shape[1] - 5):
            px, py = x[i - 5 : i + 6, j - 5 : j + 6], y[i - 5 : i + 6, j - 5 : j + 6]
            mx, my = (w * px).sum(), (w * py).sum()
            vx, vy = (w * (px - mx) ** 2).sum(), (w * (py - my) ** 2).sum()
            cxy = (w * (px - mx) * (py - my)).sum()
            values.append((2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    assert len(values) == (20 - 10) * (24 - 10)
    assert ssim(a[..., 0], b[..., 0]) == pytest.approx(np.mean(values), abs=1e-9)


def test_ssim_float_range():
    a, b = _rgb_pair()
    assert ssim(a / 255.0, b / 255.0, data_range=1.0) == pytest.approx(ssim(a, b), abs=1e-9)


def test_ssim_rejects_small_and_mismatched_images():
    with pytest.raises(UserError, match="smaller than"):
        ssim(np.zeros((10, 20)), np.zeros((10, 20)))
    with pytest.raises(UserError, match="shapes differ"):
        ssim(np.zeros((16, 16, 3)), np.zeros((16, 16)))
    with pytest.raises(UserError, match="shapes differ"):
        psnr(np.zeros((16, 16)), np.zeros((16, 17)))
    with pytest.raises(UserError, match="HxW"):
        psnr(np.zeros((2, 16, 16, 3)), np.zeros((2, 16, 16, 3)))
    with pytest.raises(ValueError, match="data_range"):
        psnr(np.zeros((4, 4)), np.ones((4, 4)), data_range=0)


# -------------------------------------------------------------------------------------------------------- mean_metrics


def test_mean_metrics():
    rows = [
        {"name": "a", "psnr": 20.0, "ssim": 0.5},
        {"name": "b", "psnr": np.float32(30.0), "ssim": 0.7, "extra": 3},
    ]
    out = mean_metrics(rows)
    assert out == pytest.approx({"psnr": 25.0, "ssim": 0.6, "extra": 3.0})
    assert "name" not in out
    assert all(type(v) is float for v in out.values())
    assert mean_metrics([]) == {}
    assert mean_metrics([{"psnr": math.inf}, {"psnr": 10.0}])["psnr"] == math.inf

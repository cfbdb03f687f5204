"""Full-reference image quality metrics: PSNR and SSIM, in plain NumPy/SciPy.

Both functions take two images of the same shape, ``HxW`` (grayscale) or ``HxWxC`` (channels last), as ``uint8``
or float arrays. ``data_range`` is the span of possible pixel values: 255 for ``uint8`` images, 1.0 for floats in
[0, 1], 2.0 for floats in [-1, 1]. All arithmetic is done in float64.

SSIM follows Wang et al. (2004), "Image quality assessment: from error visibility to structural similarity", in the
form scikit-image computes it with ``structural_similarity(x, y, gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=data_range, channel_axis=-1)``:

* local statistics are weighted by an 11x11 Gaussian window (sigma 1.5, truncated at 3.5 sigma), applied with
  ``scipy.ndimage.gaussian_filter(mode="reflect")``;
* variances and covariance are population (divide by N) estimates;
* ``K1 = 0.01``, ``K2 = 0.03``, ``C1 = (K1 * data_range) ** 2``, ``C2 = (K2 * data_range) ** 2``;
* the SSIM map is averaged over the interior only: a border of ``(11 - 1) // 2 = 5`` pixels is cropped on every side;
* for ``HxWxC`` images SSIM is computed per channel and the channel values are averaged.

Images must therefore be at least 11x11 for SSIM.
"""

import math

import numpy as np
from scipy import ndimage

from src.errors import UserError

SSIM_K1 = 0.01
SSIM_K2 = 0.03
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5
# Radius as scipy.ndimage computes it for gaussian_filter: int(truncate * sigma + 0.5) = 5 -> 11 taps.
SSIM_WIN_SIZE = 2 * int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5) + 1


def _shape_str(shape):
    return "x".join(str(s) for s in shape)


def _check_pair(x, y, name):
    """Return ``x`` and ``y`` as float64 arrays after checking they are images of the same shape."""
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim not in (2, 3) or y.ndim not in (2, 3):
        raise UserError(
            f"{name}: expected HxW or HxWxC images, got shapes {_shape_str(x.shape)} and {_shape_str(y.shape)}; "
            "pass one image at a time with channels last"
        )
    if x.shape != y.shape:
        raise UserError(
            f"{name}: image shapes differ ({_shape_str(x.shape)} vs {_shape_str(y.shape)}); "
            "resize the generated and target images to the same size (and channel count) before comparing"
        )
    if x.size == 0:
        raise UserError(f"{name}: empty image of shape {_shape_str(x.shape)}; check the image files")
    return x.astype(np.float64, copy=False), y.astype(np.float64, copy=False)


def _check_data_range(data_range, name):
    data_range = float(data_range)
    if not (data_range > 0 and math.isfinite(data_range)):
        raise ValueError(f"{name}: data_range must be a positive finite number, got {data_range}")
    return data_range


def psnr(x, y, data_range=255.0):
    """Peak signal-to-noise ratio in dB: ``10 * log10(data_range ** 2 / MSE)``.

    The MSE is taken over all pixels and channels together (as scikit-image's ``peak_signal_noise_ratio`` does).
    Identical images (MSE 0) give ``float('inf')``; callers that average PSNR over a set of images should be aware
    that one identical pair makes the mean infinite.
    """
    x, y = _check_pair(x, y, "psnr")
    data_range = _check_data_range(data_range, "psnr")
    mse = float(np.mean((x - y) ** 2))
    if mse == 0.0:
        return float("inf")
    return float(10.0 * math.log10(data_range**2 / mse))


def _ssim_2d(x, y, data_range):
    """Mean SSIM of two float64 HxW images (see the module docstring for the exact recipe)."""

    def blur(a):
        return ndimage.gaussian_filter(a, sigma=SSIM_SIGMA, truncate=SSIM_TRUNCATE, mode="reflect")

    mu_x = blur(x)
    mu_y = blur(y)
    var_x = blur(x * x) - mu_x * mu_x
    var_y = blur(y * y) - mu_y * mu_y
    cov_xy = blur(x * y) - mu_x * mu_y

    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    numerator = (2.0 * mu_x * mu_y + c1) * (2.0 * cov_xy + c2)
    denominator = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    ssim_map = numerator / denominator

    pad = (SSIM_WIN_SIZE - 1) // 2
    return float(ssim_map[pad:-pad, pad:-pad].mean(dtype=np.float64))


def ssim(x, y, data_range=255.0):
    """Mean structural similarity of two images (Wang et al. 2004, Gaussian-weighted; see the module docstring).

    Returns 1.0 for identical images. ``HxWxC`` images are compared per channel and the results averaged.
    Both images must be at least 11x11.
    """
    x, y = _check_pair(x, y, "ssim")
    data_range = _check_data_range(data_range, "ssim")
    height, width = x.shape[:2]
    if height < SSIM_WIN_SIZE or width < SSIM_WIN_SIZE:
        raise UserError(
            f"ssim: images of {height}x{width} are smaller than the {SSIM_WIN_SIZE}x{SSIM_WIN_SIZE} SSIM window; "
            f"use images at least {SSIM_WIN_SIZE} pixels on each side"
        )
    if x.ndim == 2:
        return _ssim_2d(x, y, data_range)
    values = [_ssim_2d(x[..., c], y[..., c], data_range) for c in range(x.shape[2])]
    return float(np.mean(values))


def mean_metrics(list_of_dicts):
    """Average each key over the dicts that contain it: ``[{"psnr": 20, "ssim": 0.5}, ...] -> {"psnr": ..., ...}``.

    Only numeric values (int, float, NumPy scalars; not bool) are averaged; other values (e.g. a ``"name"`` entry)
    are ignored. Results are Python floats, keys in first-seen order. An ``inf`` among the values makes that mean
    ``inf``. An empty list gives ``{}``.
    """
    sums = {}
    counts = {}
    for entry in list_of_dicts:
        for key, value in entry.items():
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
                continue
            sums[key] = sums.get(key, 0.0) + float(value)
            counts[key] = counts.get(key, 0) + 1
    return {key: sums[key] / counts[key] for key in sums}

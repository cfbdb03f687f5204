"""Paired-consistent preprocessing of PIL images (resize, random crop, horizontal flip).

Draw the random parameters once per sample with :func:`get_transform_params`, then call :func:`apply_transform`
on every image of the sample (A and B, label and instance maps with ``method=Image.NEAREST``...), so all of them
get exactly the same crop and flip.

Preprocess modes (behaviour of the reference pix2pix/CycleGAN code, except where noted):

``resize_and_crop``
    resize to ``load_size x load_size``, then random ``crop_size x crop_size`` crop.
``crop``
    random ``crop_size x crop_size`` crop of the original image.
``scale_width``
    resize so that the width is ``load_size`` and the height keeps the aspect ratio (but is at least
    ``crop_size``, as in junyanz's reference; with ``scale_width_floor=False`` there is no such floor, as in NVIDIA
    pix2pixHD's ``__scale_width``: ``h = int(load_size * h / w)``); both sides are then rounded to a multiple of
    ``size_multiple`` (the references do not round, which breaks networks that downsample).
``scale_width_and_crop``
    as ``scale_width`` without rounding, then random ``crop_size x crop_size`` crop.
``none``
    no crop; both sides are rounded to the nearest multiple of ``size_multiple`` (the reference uses 4).

Every mode then flips horizontally with probability 0.5 unless ``no_flip``.
Where the reference silently skips a crop on an image smaller than ``crop_size``, we raise :class:`UserError`.
"""

import numpy as np
from PIL import Image

from src.errors import UserError

PREPROCESS_MODES = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none")
CROP_MODES = ("resize_and_crop", "crop", "scale_width_and_crop")


def _check_positive_int(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise UserError(f"{what} must be a positive integer, got {value!r}; fix it in the config or command line")


def check_preprocess_args(preprocess, load_size, crop_size, size_multiple=1):
    """Validate the preprocessing options; raise :class:`UserError` with a fix if they are inconsistent."""
    if preprocess not in PREPROCESS_MODES:
        raise UserError(f"unknown preprocess {preprocess!r}; use one of: {', '.join(PREPROCESS_MODES)}")
    _check_positive_int(size_multiple, "size_multiple")
    if preprocess != "none" and preprocess != "crop":
        _check_positive_int(load_size, "load_size")
    if preprocess in CROP_MODES:
        _check_positive_int(crop_size, "crop_size")
        if preprocess != "crop" and load_size < crop_size:
            raise UserError(
                f"load_size {load_size} is smaller than crop_size {crop_size} with preprocess {preprocess}; "
                "set load_size >= crop_size"
            )
        if crop_size % size_multiple:
            raise UserError(
                f"crop_size {crop_size} is not a multiple of {size_multiple} (required by the network); "
                f"choose a crop_size that is a multiple of {size_multiple}"
            )
    elif preprocess == "scale_width":
        _check_positive_int(crop_size, "crop_size")


def _round_to_multiple(x, multiple):
    return max(multiple, int(round(x / multiple)) * multiple)


def resized_size(size_wh, preprocess, load_size, crop_size, size_multiple=1, scale_width_floor=True):
    """Size ``(w, h)`` of an image of size ``size_wh`` after the resize step of ``preprocess`` (before cropping).

    ``scale_width_floor``: the scale_width height is at least ``crop_size`` (junyanz) or not (NVIDIA pix2pixHD)."""
    w, h = size_wh
    if preprocess == "resize_and_crop":
        return load_size, load_size
    if preprocess in ("scale_width", "scale_width_and_crop"):
        floor = crop_size if scale_width_floor else 0
        if w == load_size and h >= floor:
            new_w, new_h = w, h
        else:
            new_w, new_h = load_size, int(max(load_size * h / w, floor))
        if preprocess == "scale_width":
            new_w, new_h = _round_to_multiple(new_w, size_multiple), _round_to_multiple(new_h, size_multiple)
        return new_w, new_h
    if preprocess == "none":
        return _round_to_multiple(w, size_multiple), _round_to_multiple(h, size_multiple)
    if preprocess == "crop":
        return w, h
    raise UserError(f"unknown preprocess {preprocess!r}; use one of: {', '.join(PREPROCESS_MODES)}")


def output_size(size_wh, preprocess, load_size, crop_size, size_multiple=1, scale_width_floor=True):
    """Final ``(w, h)`` that :func:`apply_transform` produces for an input of size ``size_wh``."""
    if preprocess in CROP_MODES:
        return crop_size, crop_size
    return resized_size(size_wh, preprocess, load_size, crop_size, size_multiple, scale_width_floor)


def get_transform_params(
    size_wh, preprocess, load_size, crop_size, no_flip, rng, size_multiple=1, name=None, scale_width_floor=True
):
    """Draw the random crop position and flip for one sample of original size ``size_wh = (w, h)``.

    ``rng`` is a ``np.random.Generator``. ``name`` (e.g. the file path) is used in error messages.
    ``scale_width_floor``: see :func:`resized_size`; the size drawn here is the one :func:`apply_transform` uses.
    Returns ``dict(size=(w, h), resized=(w', h'), crop_pos=(x, y) or None, flip=bool)``.
    Raises :class:`UserError` if the image is smaller than ``crop_size`` in a cropping mode.
    """
    check_preprocess_args(preprocess, load_size, crop_size, size_multiple)
    size = (int(size_wh[0]), int(size_wh[1]))
    new_w, new_h = resized_size(size, preprocess, load_size, crop_size, size_multiple, scale_width_floor)
    crop_pos = None
    if preprocess in CROP_MODES:
        if new_w < crop_size or new_h < crop_size:
            after = "" if (new_w, new_h) == size else f" ({new_w}x{new_h} after {preprocess} resizing)"
            raise UserError(
                f"image {name or ''} is {size[0]}x{size[1]}{after}, smaller than crop_size {crop_size}; "
                "use a smaller crop_size, larger images, or preprocess none/scale_width"
            )
        x = int(rng.integers(0, new_w - crop_size + 1))
        y = int(rng.integers(0, new_h - crop_size + 1))
        crop_pos = (x, y)
    flip = bool(rng.random() > 0.5) and not no_flip
    return {"size": size, "resized": (new_w, new_h), "crop_pos": crop_pos, "flip": flip}


def apply_transform(img, params, preprocess, load_size, crop_size, size_multiple=1, method=Image.BICUBIC, name=None):
    """Resize, crop and flip ``img`` (a ``PIL.Image``) with the parameters drawn by :func:`get_transform_params`.

    ``method`` is the PIL resampling filter: ``Image.BICUBIC`` for photos, ``Image.NEAREST`` for label maps.
    ``img`` must have the size the parameters were drawn for (all images of a pair share one size).
    """
    if tuple(img.size) != tuple(params["size"]):
        raise UserError(
            f"image {name or ''} is {img.size[0]}x{img.size[1]} but the other image(s) of its pair are "
            f"{params['size'][0]}x{params['size'][1]}; all images of a pair must have the same size"
        )
    new_size = tuple(params.get("resized") or resized_size(img.size, preprocess, load_size, crop_size, size_multiple))
    if new_size != tuple(img.size):
        img = img.resize(new_size, method)
    if preprocess in CROP_MODES:
        x, y = params["crop_pos"]
        if x + crop_size > img.size[0] or y + crop_size > img.size[1]:
            raise ValueError(f"crop {params['crop_pos']} + {crop_size} is outside the {img.size} image")
        img = img.crop((x, y, x + crop_size, y + crop_size))
    if params["flip"]:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return img

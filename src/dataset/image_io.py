"""Image files in and out: listing, robust loading, array conversion and atomic saving.

Conventions used by every model in this repository:

* Images live in memory as ``PIL.Image`` in mode ``"RGB"`` (3 channels) or ``"L"`` (1 channel).
* Network tensors are float32 ``CHW`` (or ``NCHW``) with values in ``[-1, 1]``.
* Images for saving are uint8 ``HWC`` (3 channels) or ``HW`` (1 channel).
"""

import os

import numpy as np
from PIL import Image

from src.common.fileio import atomic_path
from src.errors import UserError

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".pbm", ".bmp", ".tif", ".tiff", ".webp")
"""File extensions treated as images (compared case-insensitively)."""

# Background used when an image with an alpha channel is flattened.
_BACKGROUND = 255


def is_image_file(name):
    """True if ``name`` ends with one of :data:`IMG_EXTENSIONS` (any case)."""
    return name.lower().endswith(IMG_EXTENSIONS)


def image_files_in(folder, extensions=IMG_EXTENSIONS):
    """Sorted paths of the image files directly in ``folder`` (not recursive; hidden files skipped; ``extensions``
    compared case-insensitively). No check that the folder exists: callers say what a missing folder means."""
    folder = os.fspath(folder)
    return sorted(
        os.path.join(folder, name)
        for name in os.listdir(folder)
        if not name.startswith(".") and name.lower().endswith(extensions) and os.path.isfile(os.path.join(folder, name))
    )


def list_images(folder, what="images"):
    """Return the sorted paths of all image files under ``folder`` (recursive, symlinks followed).

    Hidden files and folders (name starting with ``.``, e.g. macOS ``._x.png`` or temporary files) are skipped.
    ``what`` describes the images in error messages, e.g. ``"A images"``.
    Raises :class:`UserError` if ``folder`` does not exist or holds no image.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise UserError(f"{what} folder not found: {folder}; check the dataset path")
    paths = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not name.startswith(".") and is_image_file(name):
                paths.append(os.path.join(root, name))
    if not paths:
        raise UserError(f"no {what} found in {folder}; put image files ({', '.join(IMG_EXTENSIONS)}) there")
    return sorted(paths)


def _unreadable(path, err):
    detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return UserError(f"cannot read image {path} ({detail}); replace or delete this file")


def _high_depth_to_l(img):
    """Convert a 16/32-bit integer or float single-channel image to 8-bit ``L``.

    ``I;16*`` (16-bit PNG/TIFF) is scaled by 255/65535. ``I`` (32-bit int) is scaled the same way if any value
    exceeds 255, else taken as already 8-bit. ``F`` (float) is scaled by 255 if all values are within [0, 1],
    else clipped to [0, 255].
    """
    arr = np.asarray(img)
    if img.mode.startswith("I;16"):
        arr = arr.astype(np.float64) / 257.0
    elif img.mode == "I":
        arr = arr.astype(np.float64)
        if arr.size and arr.max() > 255:
            arr = arr / 257.0
    else:  # "F"
        arr = arr.astype(np.float64)
        if arr.size and arr.min() >= 0.0 and arr.max() <= 1.0:
            arr = arr * 255.0
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))


def _flatten_alpha(img):
    """Composite an ``RGBA``/``LA`` image on a white background; returns ``RGB`` or ``L``."""
    if img.mode == "LA":
        background = Image.new("L", img.size, _BACKGROUND)
        background.paste(img.getchannel("L"), mask=img.getchannel("A"))
        return background
    img = img.convert("RGBA")
    background = Image.new("RGB", img.size, (_BACKGROUND,) * 3)
    background.paste(img.convert("RGB"), mask=img.getchannel("A"))
    return background


def load_image(path, channels=3):
    """Read an image file and return a ``PIL.Image`` in mode ``"RGB"`` (channels=3) or ``"L"`` (channels=1).

    Conversions:

    * transparency (``RGBA``, ``LA``, ``PA``, palette or ``RGB`` with a transparent colour) is composited onto a
      **white** background, so transparent pixels become white (not whatever colour the hidden RGB values hold);
    * palette (``P``), bilevel (``1``), ``CMYK``, ``YCbCr``... are converted the usual PIL way;
    * 16-bit and 32-bit single-channel images are scaled to 8 bits (see :func:`_high_depth_to_l`);
      16-bit RGB files are reduced to 8 bits by PIL itself;
    * RGB to 1 channel uses PIL's ITU-R 601-2 luma; 1 channel to RGB repeats the channel.

    EXIF orientation is ignored (as in the reference pix2pix code), so pixels are used as stored.
    Raises :class:`UserError` naming ``path`` if the file is missing, unreadable or corrupt.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    path = os.fspath(path)
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("I", "F") or img.mode.startswith("I;16"):
                img = _high_depth_to_l(img)
            elif img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
                img = _flatten_alpha(img if img.mode in ("LA", "RGBA") else img.convert("RGBA"))
            elif img.mode == "1":
                img = img.convert("L")
            elif img.mode not in ("RGB", "L"):
                img = img.convert("RGB")
            out = img.convert("RGB" if channels == 3 else "L")
    except UserError:
        raise
    except FileNotFoundError as err:
        raise UserError(f"image file not found: {path}; check the dataset folder") from err
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as err:
        raise _unreadable(path, err) from err
    return out


def to_tensor_array(img):
    """``PIL.Image`` (``L`` or ``RGB``) -> float32 ``CHW`` array in ``[-1, 1]`` (``1xHxW`` for ``L``)."""
    arr = np.asarray(img, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[None]
    else:
        arr = arr.transpose(2, 0, 1)
    return np.ascontiguousarray(arr / np.float32(127.5) - np.float32(1.0))


def tensor_to_uint8(arr):
    """float ``CHW`` / ``NCHW`` in ``[-1, 1]`` -> uint8 ``HWC`` / ``NHWC``; 1 channel gives ``HW`` / ``NHW``.

    Accepts NumPy arrays and MindSpore tensors. Values outside ``[-1, 1]`` are clipped.
    """
    if hasattr(arr, "asnumpy"):
        arr = arr.asnumpy()
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim not in (3, 4):
        raise ValueError(f"expected a CHW or NCHW array, got shape {arr.shape}")
    out = np.rint((np.clip(arr, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)
    out = np.moveaxis(out, -3, -1)
    if out.shape[-1] == 1:
        out = out[..., 0]
    return np.ascontiguousarray(out)


def save_image(arr_uint8, path):
    """Save a uint8 ``HW``, ``HWx1``, ``HWx3`` or ``HWx4`` array to ``path`` atomically.

    The format follows the file extension. Parent folders are created.
    """
    arr = np.asarray(arr_uint8)
    if arr.dtype != np.uint8:
        raise ValueError(f"save_image expects uint8, got {arr.dtype}; use tensor_to_uint8 first")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise ValueError(f"save_image expects HW or HWC (C in 1, 3, 4), got shape {arr.shape}")
    img = Image.fromarray(arr)
    path = os.fspath(path)
    if not is_image_file(path):
        raise ValueError(f"unsupported image extension for {path}; use one of {', '.join(IMG_EXTENSIONS)}")
    with atomic_path(path) as tmp:
        img.save(tmp)

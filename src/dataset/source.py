"""The base of the dataset sources: what :class:`src.dataset.loader.make_epoch_loader` and the models read.

A source has ``columns`` (the names of a sample's arrays, in order), ``names`` (one output name per sample),
``__len__`` and ``get(index, rng) -> dict`` keyed by ``columns``. :class:`DatasetSource` holds the preprocessing
options and the argument checks every source shares; its subclasses find the files and load the samples.
"""

import os

import numpy as np
from PIL import Image

from src.dataset import transforms
from src.errors import UserError

# the crop/flip draw of the construction-time checks (only the size errors matter, not the draw)
CHECK_RNG = np.random.default_rng(0)


def image_size(path):
    """Size ``(w, h)`` from the file header (no full decode); :class:`UserError` if unreadable."""
    try:
        with Image.open(path) as img:
            return img.size
    except FileNotFoundError as err:
        raise UserError(f"image file not found: {path}; check the dataset folder") from err
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as err:
        raise UserError(f"cannot read image {path} ({err}); replace or delete this file") from err


def stem_key(path, folder):
    """The relative path of ``path`` under ``folder`` without extension: a sample's name and pairing key."""
    return os.path.splitext(os.path.relpath(path, folder))[0]


def check_channels(**channels):
    """``input_nc=3, output_nc=1``...: each must be 1 (grayscale) or 3 (RGB)."""
    for what, nc in channels.items():
        if nc not in (1, 3):
            raise UserError(f"{what} must be 1 (grayscale) or 3 (RGB), got {nc!r}")


def check_max_dataset_size(max_dataset_size):
    valid = isinstance(max_dataset_size, (int, np.integer)) and max_dataset_size >= 1
    if max_dataset_size is not None and not valid:
        raise UserError(f"max_dataset_size must be a positive integer or None, got {max_dataset_size!r}")


class DatasetSource:
    """Random-access samples as dicts keyed by ``columns``; the shared options and checks.

    ``__init__`` validates the preprocessing options and ``max_dataset_size`` and checks that ``dataroot`` exists
    (``dataroot=None``: no folder check). Subclasses set ``names`` and implement :meth:`get`.
    """

    columns = ()

    def __init__(self, dataroot, preprocess, load_size, crop_size, no_flip, size_multiple, max_dataset_size,
                 scale_width_floor=True):  # fmt: skip
        transforms.check_preprocess_args(preprocess, load_size, crop_size, size_multiple)
        check_max_dataset_size(max_dataset_size)
        self.preprocess, self.load_size, self.crop_size = preprocess, load_size, crop_size
        self.no_flip, self.size_multiple, self.scale_width_floor = no_flip, size_multiple, scale_width_floor
        self.max_dataset_size = max_dataset_size
        self.dataroot = None if dataroot is None else os.fspath(dataroot)
        if self.dataroot is not None and not os.path.isdir(self.dataroot):
            raise UserError(f"dataset folder not found: {self.dataroot}; check dataroot")

    def __len__(self):
        return len(self.names)

    def get(self, index, rng):
        """Sample ``index`` (its crop and flip drawn from ``rng``) as ``{column: array}``."""
        raise NotImplementedError

    def sample(self, *values):
        """``values`` in ``columns`` order as a sample dict."""
        assert len(values) == len(self.columns), (values, self.columns)
        return dict(zip(self.columns, values))

    def limit(self, items):
        """The first ``max_dataset_size`` of ``items`` (all when it is None)."""
        return items if self.max_dataset_size is None else items[: self.max_dataset_size]

    def transform_params(self, size, rng, name, no_flip=None):
        """The crop/flip of an image of ``size`` (w, h) drawn from ``rng``; a too-small image is a UserError."""
        no_flip = self.no_flip if no_flip is None else no_flip
        return transforms.get_transform_params(
            size, self.preprocess, self.load_size, self.crop_size, no_flip, rng, self.size_multiple, name,
            scale_width_floor=self.scale_width_floor,
        )  # fmt: skip

    def check_size(self, size, name):
        """At construction: an image of ``size`` too small for the crop fails here, before anything is written."""
        self.transform_params(size, CHECK_RNG, name, no_flip=True)

    def transform(self, img, params, name, method=Image.BICUBIC):
        """Resize, crop and flip ``img`` with ``params`` of :meth:`transform_params`."""
        return transforms.apply_transform(
            img, params, self.preprocess, self.load_size, self.crop_size, self.size_multiple, method=method, name=name
        )

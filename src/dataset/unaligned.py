"""Unpaired (unaligned) image datasets for CycleGAN.

Layout (as the CycleGAN reference): ``dataroot/<phase>A/`` and ``dataroot/<phase>B/`` (e.g. ``trainA``, ``trainB``,
``testA``, ``testB``), any number of images in each, searched recursively. ``direction="BtoA"`` swaps the folders.

:class:`UnalignedDataset` gives ``{"A", "B", "index"}``: A is image ``index % len(A)``; B is a random image of B
drawn from the sample's RNG (``shuffle``) or image ``index % len(B)``. Its length is ``max(len(A), len(B))``. A and B
get their own random crop and flip. :class:`ImageFolderDataset` gives ``{"image", "index"}`` for one folder
(evaluation).

Every file is checked at construction (header only), so a missing folder, an empty folder, an unreadable file or an
image smaller than the crop is a :class:`UserError` before anything is written.
"""

import os

import numpy as np

from src.dataset.image_io import list_images, load_image, to_tensor_array
from src.dataset.source import DatasetSource, check_channels, image_size, stem_key
from src.errors import UserError

DIRECTIONS = ("AtoB", "BtoA")


def domain_folder(dataroot, phase, side):
    """``dataroot/<phase><side>``, e.g. ``DATA/trainA``."""
    return os.path.join(os.fspath(dataroot), f"{phase}{side}")


class ImageFolderDataset(DatasetSource):
    """All images of one folder as ``{"image": float32 CHW in [-1, 1], "index"}``; ``names`` are relative paths
    without extension."""

    columns = ("image", "index")

    def __init__(self, folder, preprocess="resize_and_crop", load_size=286, crop_size=256, no_flip=False,
                 channels=3, size_multiple=1, max_dataset_size=None, verify=True, what="images"):  # fmt: skip
        super().__init__(None, preprocess, load_size, crop_size, no_flip, size_multiple, max_dataset_size)
        self.folder = os.fspath(folder)
        self.channels = channels
        if not os.path.isdir(self.folder):
            raise UserError(f"{what} folder not found: {self.folder}; check dataroot")
        self.paths = self.limit(list_images(self.folder, what=what))
        self.names = [stem_key(p, self.folder) for p in self.paths]
        if verify:
            for path in self.paths:
                self.check_size(image_size(path), path)

    def load(self, index, rng):
        """Image ``index`` with its random crop/flip drawn from ``rng``, as a float32 CHW array."""
        path = self.paths[index]
        img = load_image(path, channels=self.channels)
        return to_tensor_array(self.transform(img, self.transform_params(img.size, rng, path), path))

    def get(self, index, rng):
        return self.sample(self.load(index, rng), np.int32(index))


class UnalignedDataset(DatasetSource):
    """Random-access source of ``{"A", "B", "index"}`` samples from two unpaired folders (see the module docstring)."""

    columns = ("A", "B", "index")

    def __init__(self, dataroot, phase="train", direction="AtoB", preprocess="resize_and_crop", load_size=286,
                 crop_size=256, no_flip=False, input_nc=3, output_nc=3, size_multiple=1, max_dataset_size=None,
                 random_b=True, verify=True):  # fmt: skip
        if direction not in DIRECTIONS:
            raise UserError(f"unknown direction {direction!r}; use AtoB or BtoA")
        check_channels(input_nc=input_nc, output_nc=output_nc)
        super().__init__(dataroot, preprocess, load_size, crop_size, no_flip, size_multiple, max_dataset_size)
        side_a, side_b = ("A", "B") if direction == "AtoB" else ("B", "A")
        folders = [domain_folder(dataroot, phase, s) for s in (side_a, side_b)]
        missing = [f for f in folders if not os.path.isdir(f)]
        if missing:
            raise UserError(
                f"folder {missing[0]} not found; CycleGAN needs unpaired images in {phase}A/ and {phase}B/ under "
                f"{dataroot} (`python -m src.dataset.demo --out DIR --unpaired` writes such a set)"
            )
        common = dict(preprocess=preprocess, load_size=load_size, crop_size=crop_size, no_flip=no_flip,
                      size_multiple=size_multiple, max_dataset_size=max_dataset_size, verify=verify)  # fmt: skip
        self.source_a = ImageFolderDataset(folders[0], channels=input_nc, what=f"{phase}{side_a} images", **common)
        self.source_b = ImageFolderDataset(folders[1], channels=output_nc, what=f"{phase}{side_b} images", **common)
        self.random_b = random_b
        self.paths = self.source_a.paths
        self.names = [
            self.source_a.names[i % len(self.source_a)] for i in range(max(len(self.source_a), len(self.source_b)))
        ]

    def get(self, index, rng):
        """``{"A": float32 CHW, "B": float32 CHW, "index": np.int32}``; which B, and both crops/flips, come from
        ``rng``."""
        n_b = len(self.source_b)
        index_b = int(rng.integers(0, n_b)) if self.random_b else index % n_b
        real_a = self.source_a.load(index % len(self.source_a), rng)
        real_b = self.source_b.load(index_b, rng)
        return self.sample(real_a, real_b, np.int32(index))

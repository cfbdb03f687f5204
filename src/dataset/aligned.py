"""Paired (aligned) image dataset for pix2pix-style training and evaluation.

Two folder layouts are detected automatically (the first that exists wins):

(a) ``dataroot/<phase>/*.jpg``: each file holds A and B side by side (A left, B right), e.g. the pix2pix
    ``facades`` download. The width must be even; it is split at ``width // 2``.
(b) ``dataroot/A/<phase>/`` and ``dataroot/B/<phase>/``: separate files paired by relative path without extension
    (``A/train/x.jpg`` pairs with ``B/train/x.png``).

Folders are searched recursively. ``direction="BtoA"`` makes B the input.
"""

import os

import numpy as np

from src.dataset.image_io import list_images, load_image, to_tensor_array
from src.dataset.source import DatasetSource, check_channels, image_size, stem_key
from src.errors import UserError

DIRECTIONS = ("AtoB", "BtoA")


class AlignedDataset(DatasetSource):
    """Random-access source of ``{"input", "target", "index"}`` samples for
    :func:`src.dataset.loader.make_epoch_loader`.

    ``input`` is the network input (float32 CHW in [-1, 1], ``input_nc`` channels: A, or B with ``BtoA``),
    ``target`` the target (``output_nc`` channels). The same random crop and flip are applied to both.
    ``size_multiple`` is the factor that image sides must be a multiple of for preprocess ``none``/``scale_width``
    (e.g. 256 for a U-Net with 8 downsamplings).

    Attributes: ``columns``, ``layout`` (``"combined"`` or ``"separate"``), ``paths`` (the AB file, or the A-folder
    file, of each sample), ``pair_paths`` (``(A file, B file)``; the same file twice for the combined layout),
    ``names`` (relative path without extension, for naming outputs).

    All files are checked at construction (header only): unreadable files, odd widths, unpaired names and A/B size
    mismatches raise :class:`UserError` before training starts. Set ``verify=False`` to skip this for huge sets;
    the same errors are then raised when the sample is loaded.
    """

    columns = ("input", "target", "index")

    def __init__(
        self,
        dataroot,
        phase="train",
        direction="AtoB",
        preprocess="resize_and_crop",
        load_size=286,
        crop_size=256,
        no_flip=False,
        input_nc=3,
        output_nc=3,
        size_multiple=1,
        max_dataset_size=None,
        verify=True,
    ):
        if direction not in DIRECTIONS:
            raise UserError(f"unknown direction {direction!r}; use AtoB or BtoA")
        check_channels(input_nc=input_nc, output_nc=output_nc)
        super().__init__(dataroot, preprocess, load_size, crop_size, no_flip, size_multiple, max_dataset_size)
        self.phase = phase
        self.direction = direction
        self.input_nc = input_nc
        self.output_nc = output_nc

        combined = os.path.join(self.dataroot, phase)
        folder_a = os.path.join(self.dataroot, "A", phase)
        folder_b = os.path.join(self.dataroot, "B", phase)
        if os.path.isdir(combined):
            self.layout = "combined"
            paths = list_images(combined, what=f"{phase} AB images")
            pair_paths = [(p, p) for p in paths]
            names = [stem_key(p, combined) for p in paths]
        elif os.path.isdir(folder_a) or os.path.isdir(folder_b):
            self.layout = "separate"
            for folder in (folder_a, folder_b):
                if not os.path.isdir(folder):
                    raise UserError(
                        f"folder {folder} not found, but its partner folder exists; "
                        f"put the paired images in {folder_a} and {folder_b}"
                    )
            pair_paths, names = self._pair_by_name(folder_a, folder_b)
        else:
            raise UserError(
                f"no {phase} data in {self.dataroot}: looked for {combined} (A|B side-by-side images) "
                f"and {folder_a} + {folder_b} (separate A and B images)"
            )
        self.pair_paths, self.names = self.limit(pair_paths), self.limit(names)
        self.paths = [p for p, _ in self.pair_paths]
        if verify:
            for i, (path_a, path_b) in enumerate(self.pair_paths):
                size_a = image_size(path_a)
                self._check_sizes(i, size_a, size_a if path_b == path_a else image_size(path_b))
                self.check_size((size_a[0] // 2, size_a[1]) if self.layout == "combined" else size_a, path_a)

    @staticmethod
    def _pair_by_name(folder_a, folder_b):
        keyed = []
        for folder, side in ((folder_a, "A"), (folder_b, "B")):
            by_key = {}
            for path in list_images(folder, what=f"{side} images"):
                key = stem_key(path, folder)
                if key in by_key:
                    raise UserError(
                        f"two {side} images share the name {key!r}: {by_key[key]} and {path}; rename or remove one"
                    )
                by_key[key] = path
            keyed.append(by_key)
        by_a, by_b = keyed
        for this, other, other_folder in ((by_a, by_b, folder_b), (by_b, by_a, folder_a)):
            missing = sorted(set(this) - set(other))
            if missing:
                more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
                raise UserError(
                    f"{this[missing[0]]} has no partner named {missing[0]}.* in {other_folder}{more}; "
                    "add the missing images or remove the unpaired ones"
                )
        keys = sorted(by_a)
        return [(by_a[k], by_b[k]) for k in keys], keys

    def _check_sizes(self, index, size_a, size_b=None):
        path_a, path_b = self.pair_paths[index]
        if self.layout == "combined":
            w, h = size_a
            if w % 2:
                raise UserError(
                    f"{path_a} is {w}x{h}: an A|B side-by-side image must have an even width (two equal halves); "
                    "fix or remove this file"
                )
        elif size_a != size_b:
            raise UserError(
                f"paired images differ in size: {path_a} is {size_a[0]}x{size_a[1]}, {path_b} is "
                f"{size_b[0]}x{size_b[1]}; resize them to the same size"
            )

    def load_pair(self, index):
        """Return the raw ``(input, target)`` PIL images of sample ``index`` (direction and channels applied,
        no resize/crop/flip), e.g. to run the generator on full-size images."""
        path_a, path_b = self.pair_paths[index]
        if self.layout == "combined":
            ab = load_image(path_a, channels=3)
            self._check_sizes(index, ab.size)
            w, h = ab.size
            half = w // 2
            img_a, img_b = ab.crop((0, 0, half, h)), ab.crop((half, 0, w, h))
        else:
            img_a, img_b = load_image(path_a, channels=3), load_image(path_b, channels=3)
            self._check_sizes(index, img_a.size, img_b.size)
        if self.direction == "BtoA":
            img_a, img_b = img_b, img_a
        if self.input_nc == 1:
            img_a = img_a.convert("L")
        if self.output_nc == 1:
            img_b = img_b.convert("L")
        return img_a, img_b

    def get(self, index, rng):
        """Sample ``index`` with random crop/flip drawn from ``rng`` (``np.random.Generator``).

        Returns ``{"input": float32 CHW, "target": float32 CHW, "index": np.int32}``.
        """
        img_a, img_b = self.load_pair(index)
        path_a, path_b = self.pair_paths[index]
        params = self.transform_params(img_a.size, rng, path_a)
        img_a = self.transform(img_a, params, path_a)
        img_b = self.transform(img_b, params, path_b)
        return self.sample(to_tensor_array(img_a), to_tensor_array(img_b), np.int32(index))

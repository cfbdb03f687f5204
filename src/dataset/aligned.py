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
from PIL import Image

from src.dataset import transforms
from src.dataset.image_io import list_images, load_image, to_tensor_array
from src.errors import UserError

DIRECTIONS = ("AtoB", "BtoA")


_CHECK_RNG = np.random.default_rng(0)


def _image_size(path):
    """Size ``(w, h)`` from the file header (no full decode); :class:`UserError` if unreadable."""
    try:
        with Image.open(path) as img:
            return img.size
    except FileNotFoundError as err:
        raise UserError(f"image file not found: {path}; check the dataset folder") from err
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as err:
        raise UserError(f"cannot read image {path} ({err}); replace or delete this file") from err


def _stem_key(path, folder):
    return os.path.splitext(os.path.relpath(path, folder))[0]


class AlignedDataset:
    """Random-access source of ``(A, B, index)`` samples for :func:`src.dataset.loader.make_epoch_loader`.

    ``A`` is the network input (float32 CHW in [-1, 1], ``input_nc`` channels), ``B`` the target (``output_nc``
    channels). The same random crop and flip are applied to both. ``size_multiple`` is the factor that image sides
    must be a multiple of for preprocess ``none``/``scale_width`` (e.g. 256 for a U-Net with 8 downsamplings).

    Attributes: ``columns``, ``layout`` (``"combined"`` or ``"separate"``), ``paths`` (the AB file, or the A-folder
    file, of each sample), ``pair_paths`` (``(A file, B file)``; the same file twice for the combined layout),
    ``names`` (relative path without extension, for naming outputs).

    All files are checked at construction (header only): unreadable files, odd widths, unpaired names and A/B size
    mismatches raise :class:`UserError` before training starts. Set ``verify=False`` to skip this for huge sets;
    the same errors are then raised when the sample is loaded.
    """

    columns = ("A", "B", "index")

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
        for nc, what in ((input_nc, "input_nc"), (output_nc, "output_nc")):
            if nc not in (1, 3):
                raise UserError(f"{what} must be 1 (grayscale) or 3 (RGB), got {nc!r}")
        transforms.check_preprocess_args(preprocess, load_size, crop_size, size_multiple)
        valid_max = isinstance(max_dataset_size, (int, np.integer)) and max_dataset_size >= 1
        if max_dataset_size is not None and not valid_max:
            raise UserError(f"max_dataset_size must be a positive integer or None, got {max_dataset_size!r}")

        self.dataroot = os.fspath(dataroot)
        self.phase = phase
        self.direction = direction
        self.preprocess = preprocess
        self.load_size = load_size
        self.crop_size = crop_size
        self.no_flip = no_flip
        self.input_nc = input_nc
        self.output_nc = output_nc
        self.size_multiple = size_multiple

        if not os.path.isdir(self.dataroot):
            raise UserError(f"dataset folder not found: {self.dataroot}; check dataroot")
        combined = os.path.join(self.dataroot, phase)
        folder_a = os.path.join(self.dataroot, "A", phase)
        folder_b = os.path.join(self.dataroot, "B", phase)
        if os.path.isdir(combined):
            self.layout = "combined"
            paths = list_images(combined, what=f"{phase} AB images")
            pair_paths = [(p, p) for p in paths]
            names = [_stem_key(p, combined) for p in paths]
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
        if max_dataset_size is not None:
            pair_paths, names = pair_paths[:max_dataset_size], names[:max_dataset_size]
        self.pair_paths = pair_paths
        self.paths = [p for p, _ in pair_paths]
        self.names = names
        if verify:
            for i, (path_a, path_b) in enumerate(self.pair_paths):
                size_a = _image_size(path_a)
                self._check_sizes(i, size_a, size_a if path_b == path_a else _image_size(path_b))
                half = (size_a[0] // 2, size_a[1]) if self.layout == "combined" else size_a
                # an image too small for the crop fails here, before anything is written
                transforms.get_transform_params(
                    half, preprocess, load_size, crop_size, True, _CHECK_RNG, size_multiple, path_a
                )

    @staticmethod
    def _pair_by_name(folder_a, folder_b):
        keyed = []
        for folder, side in ((folder_a, "A"), (folder_b, "B")):
            by_key = {}
            for path in list_images(folder, what=f"{side} images"):
                key = _stem_key(path, folder)
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

    def __len__(self):
        return len(self.pair_paths)

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

        Returns ``(A float32 CHW, B float32 CHW, np.int32 index)``.
        """
        img_a, img_b = self.load_pair(index)
        name = self.paths[index]
        params = transforms.get_transform_params(
            img_a.size, self.preprocess, self.load_size, self.crop_size, self.no_flip, rng, self.size_multiple, name
        )
        args = (params, self.preprocess, self.load_size, self.crop_size, self.size_multiple)
        img_a = transforms.apply_transform(img_a, *args, name=name)
        img_b = transforms.apply_transform(img_b, *args, name=self.pair_paths[index][1])
        return to_tensor_array(img_a), to_tensor_array(img_b), np.int32(index)

"""Label map + instance map + photo dataset for pix2pixHD.

Layout (what ``python data/prepare_cityscapes.py --layout pix2pixhd`` writes)::

    dataroot/<phase>_label/<name>.png   label ids (8-bit, 0 .. label_nc - 1; Cityscapes labelIds, label_nc 35)
    dataroot/<phase>_inst/<name>.png    instance ids (16-bit; Cityscapes instanceIds), unless no_instance
    dataroot/<phase>_img/<name>.png     the photo (the target; optional at test time)

With ``label_nc 0`` the input is an RGB image instead: ``dataroot/<phase>_A`` and ``dataroot/<phase>_B``.

A sample is a dict ``{"input", "image", "segments", "index"}``:
- ``input``: float32 C x H x W, the one-hot of ``label_nc`` classes, plus the instance boundary map (1 where an
  instance id differs from a 4-neighbour) unless ``no_instance``; RGB in [-1, 1] for ``label_nc 0``;
- ``image``: float32 3 x H x W in [-1, 1] (zeros when the photo folder is absent at test time);
- ``segments``: int32 1 x H x W, the regions the feature encoder averages over: instance ids (``segments
  instance``) or label ids (``segments label``);
- ``index``: int32.
Label and instance maps are resized with nearest neighbour, photos (and ``label_nc 0`` RGB inputs) bicubically, as the
reference; all get the same crop and flip. ``scale_width`` has no floor at ``crop_size`` (NVIDIA's ``__scale_width``).
"""

import os

import numpy as np
from PIL import Image

from src.dataset.cityscapes_labels import instance_ids_to_boundary
from src.dataset.image_io import list_images, load_image, to_tensor_array
from src.dataset.source import DatasetSource
from src.dataset.source import stem_key as _stem
from src.errors import UserError


def _index(folder, what):
    return {_stem(p, folder): p for p in list_images(folder, what=what)}


def load_id_map(path):
    """An integer id map (8- or 16-bit PNG) as an ``HxW`` int32 array, without any scaling."""
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("RGB", "RGBA"):
                raise UserError(
                    f"{path} is a colour image; label and instance maps must be single-channel id maps "
                    f"(Cityscapes *_labelIds.png / *_instanceIds.png)"
                )
            arr = np.asarray(img).astype(np.int32)
    except FileNotFoundError:
        raise UserError(f"file not found: {path}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise UserError(f"cannot read {path} ({err}); replace or delete this file") from None
    if arr.ndim != 2:
        raise UserError(f"{path} has shape {arr.shape}; expected a single-channel id map")
    return arr


def check_label_range(arr, label_nc, path):
    top = int(arr.max()) if arr.size else 0
    if top >= label_nc or (arr.size and int(arr.min()) < 0):
        raise UserError(
            f"{path} holds label id {top}, but label_nc is {label_nc} (ids must be 0..{label_nc - 1}); "
            f"raise label_nc or fix the label maps"
        )


def one_hot(label_ids, label_nc):
    """``HxW`` ids -> ``label_nc x H x W`` float32 one-hot."""
    out = np.zeros((label_nc,) + label_ids.shape, np.float32)
    np.put_along_axis(out, label_ids[None].astype(np.int64), 1.0, axis=0)
    return out


def encode_label_input(label_ids, inst_ids, label_nc, no_instance):
    """The generator input of one label map: one-hot (+ boundary map of ``inst_ids`` unless ``no_instance``)."""
    parts = [one_hot(label_ids, label_nc)]
    if not no_instance:
        parts.append(instance_ids_to_boundary(inst_ids)[None])
    return np.concatenate(parts, 0)


class LabelInstanceDataset(DatasetSource):
    """Random-access source of pix2pixHD samples (see the module docstring)."""

    columns = ("input", "image", "segments", "index")

    def __init__(
        self,
        dataroot,
        phase="train",
        label_nc=35,
        no_instance=False,
        segments="instance",
        preprocess="scale_width",
        load_size=1024,
        crop_size=512,
        no_flip=False,
        size_multiple=1,
        max_dataset_size=None,
        need_image=True,
        verify=True,
    ):
        super().__init__(dataroot, preprocess, load_size, crop_size, no_flip, size_multiple, max_dataset_size or None,
                         scale_width_floor=False)  # fmt: skip
        self.phase, self.label_nc, self.no_instance, self.segments = phase, label_nc, no_instance, segments
        if label_nc == 0:
            main_dir, img_dir, inst_dir = (os.path.join(self.dataroot, f"{phase}_{k}") for k in ("A", "B", "inst"))
            what = f"{phase}_A input images (label_nc 0 = RGB inputs)"
        else:
            main_dir, img_dir, inst_dir = (
                os.path.join(self.dataroot, f"{phase}_{k}") for k in ("label", "img", "inst")
            )
            what = f"{phase}_label label maps"
        if not os.path.isdir(main_dir):
            raise UserError(
                f"no {phase} data in {self.dataroot}: {main_dir} not found (expected {phase}_label, {phase}_inst and "
                f"{phase}_img; python data/prepare_cityscapes.py --layout pix2pixhd writes them)"
            )
        labels = _index(main_dir, what)
        self.names = self.limit(sorted(labels))
        self.label_paths = [labels[k] for k in self.names]
        self.inst_paths = None
        if label_nc > 0 and (not no_instance or segments == "instance"):
            if not os.path.isdir(inst_dir):
                raise UserError(
                    f"instance maps folder {inst_dir} not found; add the instance maps or pass --no_instance "
                    f"(and do not use --instance_feat)"
                )
            insts = _index(inst_dir, f"{phase}_inst instance maps")
            missing = [k for k in self.names if k not in insts]
            if missing:
                raise UserError(
                    f"{labels[missing[0]]} has no instance map {missing[0]}.png in {inst_dir} ({len(missing)} "
                    f"missing); add them or pass --no_instance"
                )
            self.inst_paths = [insts[k] for k in self.names]
        self.image_paths = None
        if os.path.isdir(img_dir):
            images = _index(img_dir, f"{phase} photos")
            missing = [k for k in self.names if k not in images]
            if missing:
                raise UserError(f"{labels[missing[0]]} has no photo {missing[0]}.* in {img_dir}; add it or remove it")
            self.image_paths = [images[k] for k in self.names]
        elif need_image:
            raise UserError(f"photo folder {img_dir} not found; training needs the target photos")
        if verify:
            for path in self.label_paths:
                with Image.open(path) as img:
                    size = img.size
                    if label_nc > 0:
                        low, high = img.getextrema() if img.mode in ("L", "P", "I", "I;16") else (0, 0)
                        if img.mode not in ("L", "P", "I", "I;16"):
                            raise UserError(f"{path} is mode {img.mode}; label maps must be single-channel id maps")
                        if high >= label_nc:
                            raise UserError(
                                f"{path} holds label id {high}, but label_nc is {label_nc} (ids must be "
                                f"0..{label_nc - 1}); raise label_nc or fix the label maps"
                            )
                self.check_size(size, path)

    def load_raw(self, index):
        """``(label ids HxW or RGB PIL, instance ids HxW or None, photo PIL or None)`` of sample ``index``."""
        path = self.label_paths[index]
        if self.label_nc == 0:
            label = load_image(path, 3)
        else:
            label = load_id_map(path)
            check_label_range(label, self.label_nc, path)
        inst = load_id_map(self.inst_paths[index]) if self.inst_paths else None
        photo = load_image(self.image_paths[index], 3) if self.image_paths else None
        return label, inst, photo

    def get(self, index, rng):
        label, inst, photo = self.load_raw(index)
        path = self.label_paths[index]
        size = label.size if self.label_nc == 0 else (label.shape[1], label.shape[0])
        params = self.transform_params(size, rng, path)

        def ids(arr, name):
            img = Image.fromarray(arr.astype(np.int32))
            return np.asarray(self.transform(img, params, name, method=Image.NEAREST)).astype(np.int32)

        if photo is not None:
            image = to_tensor_array(self.transform(photo, params, path))
        if self.label_nc == 0:
            inp = to_tensor_array(self.transform(label, params, path))
            seg = np.zeros(inp.shape[1:], np.int32)
        else:
            label_ids = ids(label, path)
            inst_ids = ids(inst, self.inst_paths[index]) if inst is not None else None
            inp = encode_label_input(label_ids, inst_ids, self.label_nc, self.no_instance)
            seg = label_ids if (self.segments == "label" or inst_ids is None) else inst_ids
        if photo is None:
            image = np.zeros((3,) + inp.shape[1:], np.float32)
        return self.sample(inp, image, seg[None].astype(np.int32), np.int32(index))

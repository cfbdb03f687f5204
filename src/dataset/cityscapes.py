"""The Cityscapes file layout, and the dataset layouts this repository trains on, written from it.

A Cityscapes tree (the real one, or the synthetic demo of :mod:`src.dataset.demo`) holds, per frame
``<city>_<seq>_<frame>`` of split ``s``: ``leftImg8bit/s/<city>/<id>_leftImg8bit.png`` (photo) and
``gtFine/s/<city>/<id>_gtFine_{color,labelIds,instanceIds}.png``.

Layouts (``data/prepare_cityscapes.py`` is the command line of :data:`LAYOUTS`):

* ``pix2pix``: ``<output_dir>/<split>/<city>_<seq>_<frame>.png`` with photo (A, left) and colour labels (B, right)
  side by side, each ``size x size``. labels -> photo is therefore ``--direction BtoA``.
* ``cyclegan``: ``<output_dir>/<split>A/<frame id>.png`` = photos and ``<output_dir>/<split>B/<frame id>.png`` = colour
  labels (``trainA``, ``trainB``, ``testA``, ``testB``), each ``size x size`` (default 256; the CycleGAN paper trained
  its Cityscapes model at 128x128: pass ``--size 128`` to match it). Photos = A as in the reference, so
  labels -> photo is ``--direction BtoA``.
* ``pix2pixhd``: ``<output_dir>/<split>_label/<frame id>.png`` = ``labelIds`` (8-bit, ids 0..33, ``label_nc=35``),
  ``<split>_inst/<frame id>.png`` = ``instanceIds`` (16-bit, ``id * 1000 + k``), ``<split>_img/<frame id>.png`` = photo.
  Labels go to ``_label`` and instances to ``_inst`` (the MindSpore model zoo's script had them swapped). By default the
  native resolution is kept (pix2pixHD scales at load time); ``--size W`` resizes to width ``W`` keeping the aspect
  ratio (labels and instances NEAREST, photos BICUBIC).

Differences from the reference ``prepare_cityscapes_dataset.py`` (pytorch-CycleGAN-and-pix2pix):

* file names keep the Cityscapes frame id instead of numbering the frames ``0.jpg, 1.jpg, ...``, so results can be
  matched to ``gtFine_labelIds`` for evaluation without guessing an order;
* the colour label image is resized with NEAREST, so every pixel keeps an exact palette colour. The reference
  called ``resize`` without a filter, i.e. Pillow's default (BICUBIC since Pillow 7), which blends label colours
  at class boundaries. Photos are resized with BICUBIC like the reference;
* images are saved as lossless PNG by default; ``jpeg`` writes JPEG quality 100 without chroma subsampling, as
  the reference did.
"""

import glob
import os
import re

from PIL import Image

from src.common.fileio import atomic_path
from src.errors import UserError

PHOTO_SUFFIX = "_leftImg8bit.png"
COLOR_SUFFIX = "_gtFine_color.png"
LABEL_IDS_SUFFIX = "_gtFine_labelIds.png"
INSTANCE_IDS_SUFFIX = "_gtFine_instanceIds.png"
FRAME_ID_RE = re.compile(r"^(.+?_\d{6}_\d{6})")
"""A Cityscapes frame id at the start of a file name: ``<city>_<seq:6>_<frame:6>``."""
DEFAULT_SPLITS = (("train", "train"), ("val", "test"))
"""(Cityscapes split, output split) pairs; ``val`` becomes ``test`` as in the reference script."""


def list_frames(cityscapes_dir, split):
    """Pair the colour labels and photos of one split.

    Returns a sorted list of ``(frame_id, photo_path, color_path)`` where ``frame_id`` is ``<city>_<seq>_<frame>``.
    Raises :class:`UserError` if a folder is missing, holds no frame, or a file has no partner.
    """
    cityscapes_dir = os.fspath(cityscapes_dir)
    photo_dir = os.path.join(cityscapes_dir, "leftImg8bit", split)
    label_dir = os.path.join(cityscapes_dir, "gtFine", split)
    for folder in (photo_dir, label_dir):
        if not os.path.isdir(folder):
            raise UserError(
                f"folder not found: {folder}; --cityscapes_dir must hold leftImg8bit/{split} and gtFine/{split}"
            )
    photos = sorted(glob.glob(os.path.join(photo_dir, "*", "*" + PHOTO_SUFFIX)))
    colors = sorted(glob.glob(os.path.join(label_dir, "*", "*" + COLOR_SUFFIX)))
    if not photos:
        raise UserError(f"no *{PHOTO_SUFFIX} files in {photo_dir}/<city>/; check --cityscapes_dir")
    if not colors:
        raise UserError(
            f"no *{COLOR_SUFFIX} files in {label_dir}/<city>/; download gtFine (with the colour images) "
            "or write them with cityscapesScripts"
        )
    photo_ids = {os.path.basename(p)[: -len(PHOTO_SUFFIX)]: p for p in photos}
    color_ids = {os.path.basename(p)[: -len(COLOR_SUFFIX)]: p for p in colors}
    unmatched = sorted([p for i, p in photo_ids.items() if i not in color_ids])
    unmatched += sorted([p for i, p in color_ids.items() if i not in photo_ids])
    if unmatched:
        path = unmatched[0]
        partner = COLOR_SUFFIX if path.endswith(PHOTO_SUFFIX) else PHOTO_SUFFIX
        raise UserError(
            f"{path} has no matching *{partner} file ({len(unmatched)} unpaired files in total); "
            "add the missing files or remove the unpaired ones"
        )
    return [(frame_id, photo_ids[frame_id], color_ids[frame_id]) for frame_id in sorted(photo_ids)]


def list_label_frames(cityscapes_dir, split="val"):
    """``[(frame id, labelIds path)]`` of a split, sorted. A clear error for a missing folder or no labels."""
    cityscapes_dir = os.fspath(cityscapes_dir)
    if not os.path.isdir(cityscapes_dir):
        raise UserError(f"Cityscapes folder not found: {cityscapes_dir}; check --cityscapes_dir")
    label_dir = os.path.join(cityscapes_dir, "gtFine", split)
    if not os.path.isdir(label_dir):
        raise UserError(
            f"folder not found: {label_dir}; --cityscapes_dir must be the original Cityscapes tree holding "
            f"gtFine/{split}/<city>/*{LABEL_IDS_SUFFIX} (not a prepared pix2pix dataset)"
        )
    paths = sorted(glob.glob(os.path.join(label_dir, "*", "*" + LABEL_IDS_SUFFIX)))
    if not paths:
        raise UserError(f"no *{LABEL_IDS_SUFFIX} files in {label_dir}/<city>/; download gtFine_trainvaltest")
    return [(os.path.basename(p)[: -len(LABEL_IDS_SUFFIX)], p) for p in paths]


def photo_path_for(cityscapes_dir, split, frame_id):
    city = frame_id.split("_")[0]
    path = os.path.join(os.fspath(cityscapes_dir), "leftImg8bit", split, city, frame_id + PHOTO_SUFFIX)
    if not os.path.isfile(path):
        raise UserError(f"real photo not found: {path}; --real needs leftImg8bit/{split} in --cityscapes_dir")
    return path


def frame_id_of(name):
    """The frame id at the start of a result file name, or None."""
    m = FRAME_ID_RE.match(os.path.basename(name))
    return m.group(1) if m else None


def _load_rgb(path):
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (OSError, SyntaxError, ValueError) as err:
        raise UserError(f"cannot read image {path} ({err}); replace or delete this file") from err


def _save(img, path, jpeg):
    with atomic_path(path) as tmp:
        if jpeg:
            img.save(tmp, format="JPEG", quality=100, subsampling=0)
        else:
            img.save(tmp, format="PNG")


def _write_pix2pix_pair(photo, color, size, path, jpeg):
    photo = photo.resize((size, size), Image.BICUBIC)
    color = color.resize((size, size), Image.NEAREST)
    pair = Image.new("RGB", (2 * size, size))
    pair.paste(photo, (0, 0))
    pair.paste(color, (size, 0))
    _save(pair, path, jpeg)


def _check_common(cityscapes_dir, size, splits):
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise UserError(f"size must be a positive integer, got {size!r}; e.g. --size 256")
    if not os.path.isdir(os.fspath(cityscapes_dir)):
        raise UserError(f"Cityscapes folder not found: {cityscapes_dir}; check --cityscapes_dir")
    if not splits:
        raise UserError("no split to convert; pass e.g. --splits train val")
    out_names = [out_split for _, out_split in splits]
    if len(set(out_names)) != len(out_names):
        raise UserError(f"two splits would be written to the same folder ({', '.join(out_names)}); rename one")


def prepare_pix2pix(cityscapes_dir, out_dir, size=256, splits=DEFAULT_SPLITS, jpeg=False):
    """Write the pix2pix layout: ``out_dir/<out split>/<frame id>.png`` = photo (A) | colour labels (B).

    ``splits`` is a sequence of ``(cityscapes split, output split)`` pairs. Every split is checked before anything
    is written. Returns ``{output split: number of pairs written}``.
    """
    _check_common(cityscapes_dir, size, splits)
    frames = {out_split: list_frames(cityscapes_dir, split) for split, out_split in splits}
    ext = ".jpg" if jpeg else ".png"
    counts = {}
    for out_split, split_frames in frames.items():
        folder = os.path.join(os.fspath(out_dir), out_split)
        os.makedirs(folder, exist_ok=True)
        for frame_id, photo_path, color_path in split_frames:
            photo, color = _load_rgb(photo_path), _load_rgb(color_path)
            _write_pix2pix_pair(photo, color, size, os.path.join(folder, frame_id + ext), jpeg)
        counts[out_split] = len(split_frames)
    return counts


def _partner(color_path, suffix):
    path = color_path[: -len(COLOR_SUFFIX)] + suffix
    if not os.path.isfile(path):
        raise UserError(
            f"{path} is missing (needed next to {os.path.basename(color_path)}); download gtFine completely"
        )
    return path


def _load_raw(path):
    """An image as stored (no mode conversion): label/instance ids must keep their values."""
    try:
        with Image.open(path) as img:
            img.load()
            return img.copy()
    except (OSError, SyntaxError, ValueError) as err:
        raise UserError(f"cannot read image {path} ({err}); replace or delete this file") from err


def prepare_cyclegan(cityscapes_dir, out_dir, size=256, splits=DEFAULT_SPLITS, jpeg=False):
    """Write the CycleGAN layout: ``out_dir/<out split>A/<frame id>`` = photo, ``<out split>B/<frame id>`` = colour
    labels, both ``size x size`` (photo BICUBIC, labels NEAREST). Returns ``{output split: frames written}``."""
    _check_common(cityscapes_dir, size, splits)
    frames = {out_split: list_frames(cityscapes_dir, split) for split, out_split in splits}
    ext = ".jpg" if jpeg else ".png"
    counts = {}
    for out_split, split_frames in frames.items():
        folder_a = os.path.join(os.fspath(out_dir), out_split + "A")
        folder_b = os.path.join(os.fspath(out_dir), out_split + "B")
        os.makedirs(folder_a, exist_ok=True)
        os.makedirs(folder_b, exist_ok=True)
        for frame_id, photo_path, color_path in split_frames:
            photo = _load_rgb(photo_path).resize((size, size), Image.BICUBIC)
            color = _load_rgb(color_path).resize((size, size), Image.NEAREST)
            _save(photo, os.path.join(folder_a, frame_id + ext), jpeg)
            _save(color, os.path.join(folder_b, frame_id + ext), jpeg)
        counts[out_split] = len(split_frames)
    return counts


def prepare_pix2pixhd(cityscapes_dir, out_dir, size=0, splits=DEFAULT_SPLITS, jpeg=False):
    """Write the pix2pixHD layout: ``<out split>_label`` (labelIds), ``<out split>_inst`` (16-bit instanceIds),
    ``<out split>_img`` (photo). ``size`` 0 keeps the native resolution, else the output width (aspect kept).
    Label and instance maps are always lossless PNG; ``jpeg`` applies to the photos only."""
    _check_common(cityscapes_dir, 1 if size == 0 else size, splits)
    frames = {out_split: list_frames(cityscapes_dir, split) for split, out_split in splits}
    for split_frames in frames.values():  # check every partner file before writing anything
        for _, _, color_path in split_frames:
            _partner(color_path, LABEL_IDS_SUFFIX)
            _partner(color_path, INSTANCE_IDS_SUFFIX)
    counts = {}
    for out_split, split_frames in frames.items():
        folders = {k: os.path.join(os.fspath(out_dir), f"{out_split}_{k}") for k in ("label", "inst", "img")}
        for folder in folders.values():
            os.makedirs(folder, exist_ok=True)
        for frame_id, photo_path, color_path in split_frames:
            label = _load_raw(_partner(color_path, LABEL_IDS_SUFFIX))
            inst = _load_raw(_partner(color_path, INSTANCE_IDS_SUFFIX))
            photo = _load_rgb(photo_path)
            if label.mode not in ("L", "P"):
                label_path = color_path[: -len(COLOR_SUFFIX)] + LABEL_IDS_SUFFIX
                raise UserError(f"{label_path} is mode {label.mode}, expected an 8-bit labelIds PNG")
            if size:
                w, h = photo.size
                new = (size, max(1, round(h * size / w)))
                photo = photo.resize(new, Image.BICUBIC)
                label = label.resize(new, Image.NEAREST)
                inst = inst.resize(new, Image.NEAREST)
            _save(label, os.path.join(folders["label"], frame_id + ".png"), False)
            _save(inst, os.path.join(folders["inst"], frame_id + ".png"), False)
            _save(photo, os.path.join(folders["img"], frame_id + (".jpg" if jpeg else ".png")), jpeg)
        counts[out_split] = len(split_frames)
    return counts


LAYOUTS = {"pix2pix": prepare_pix2pix, "cyclegan": prepare_cyclegan, "pix2pixhd": prepare_pix2pixhd}
"""Layout name -> function(cityscapes_dir, out_dir, size=, splits=, jpeg=) returning {output split: count}."""
DEFAULT_SIZES = {"pix2pix": 256, "cyclegan": 256, "pix2pixhd": 0}
"""``--size`` when not given: 256 squares, native resolution for pix2pixHD."""

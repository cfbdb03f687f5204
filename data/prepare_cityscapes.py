"""Convert a Cityscapes tree (the real one or the synthetic demo) into a dataset layout for training.

Layouts:

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

``combine_A_and_B.py`` (next to this file) builds the pix2pix layout from any user's ``A/<split>`` and ``B/<split>``
folders.

Differences from the reference ``prepare_cityscapes_dataset.py`` (pytorch-CycleGAN-and-pix2pix):

* file names keep the Cityscapes frame id instead of numbering the frames ``0.jpg, 1.jpg, ...``, so results can be
  matched to ``gtFine_labelIds`` for evaluation without guessing an order;
* the colour label image is resized with NEAREST, so every pixel keeps an exact palette colour. The reference
  called ``resize`` without a filter, i.e. Pillow's default (BICUBIC since Pillow 7), which blends label colours
  at class boundaries. Photos are resized with BICUBIC like the reference;
* images are saved as lossless PNG by default; ``--jpeg`` writes JPEG quality 100 without chroma subsampling, as
  the reference did.

Usage (from the repository root)::

    python data/prepare_cityscapes.py --cityscapes_dir C --output_dir O --layout pix2pix [--size 256]
    python data/prepare_cityscapes.py --cityscapes_dir C --output_dir O --layout cyclegan [--size 128]
    python data/prepare_cityscapes.py --cityscapes_dir C --output_dir O --layout pix2pixhd [--size 1024]
"""

import argparse
import glob
import os
import sys

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from PIL import Image  # noqa: E402

from src.common.fileio import atomic_path  # noqa: E402
from src.errors import UserError  # noqa: E402

PHOTO_SUFFIX = "_leftImg8bit.png"
COLOR_SUFFIX = "_gtFine_color.png"
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


LABEL_IDS_SUFFIX = "_gtFine_labelIds.png"
INSTANCE_IDS_SUFFIX = "_gtFine_instanceIds.png"


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


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Convert a Cityscapes tree (leftImg8bit + gtFine) into a pix2pix, CycleGAN or pix2pixHD dataset."
    )
    parser.add_argument("--cityscapes_dir", required=True, help="folder holding leftImg8bit/ and gtFine/")
    parser.add_argument("--output_dir", required=True, help="where to write the dataset")
    parser.add_argument("--layout", choices=sorted(LAYOUTS), default="pix2pix", help="dataset layout to write")
    parser.add_argument(
        "--size",
        type=int,
        default=None,
        help="side of the square output images (default 256); pix2pixhd: output width, default 0 = native size",
    )
    parser.add_argument(
        "--splits", nargs="+", default=["train", "val"], help="Cityscapes splits to convert (default: train val)"
    )
    parser.add_argument(
        "--val_name", default="test", help="output folder name for the val split (default: test, like the reference)"
    )
    parser.add_argument("--jpeg", action="store_true", help="write JPEG quality 100 (as the reference) instead of PNG")
    args = parser.parse_args(argv)
    splits = tuple((s, args.val_name if s == "val" else s) for s in args.splits)
    if args.size is None:
        args.size = DEFAULT_SIZES[args.layout]
    try:
        counts = LAYOUTS[args.layout](
            args.cityscapes_dir, args.output_dir, size=args.size, splits=splits, jpeg=args.jpeg
        )
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    summary = ", ".join(f"{split}: {n}" for split, n in counts.items())
    shape = {"pix2pix": f"{args.size}x{2 * args.size}", "cyclegan": f"{args.size}x{args.size}"}.get(
        args.layout, f"width {args.size}" if args.size else "native size"
    )
    print(f"wrote {args.layout} dataset to {args.output_dir} ({summary}; {shape})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

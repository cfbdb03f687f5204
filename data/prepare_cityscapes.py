"""Convert a Cityscapes tree (the real one or the synthetic demo) into a dataset layout for training.

Layouts:

* ``pix2pix``: ``<output_dir>/<split>/<city>_<seq>_<frame>.png`` with photo (A, left) and colour labels (B, right)
  side by side, each ``size x size``. labels -> photo is therefore ``--direction BtoA``.

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


LAYOUTS = {"pix2pix": prepare_pix2pix}
"""Layout name -> function(cityscapes_dir, out_dir, size=, splits=, jpeg=) returning {output split: count}."""


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Convert a Cityscapes tree (leftImg8bit + gtFine) into a pix2pix dataset folder."
    )
    parser.add_argument("--cityscapes_dir", required=True, help="folder holding leftImg8bit/ and gtFine/")
    parser.add_argument("--output_dir", required=True, help="where to write the dataset")
    parser.add_argument("--layout", choices=sorted(LAYOUTS), default="pix2pix", help="dataset layout to write")
    parser.add_argument("--size", type=int, default=256, help="side of the square output images (default 256)")
    parser.add_argument(
        "--splits", nargs="+", default=["train", "val"], help="Cityscapes splits to convert (default: train val)"
    )
    parser.add_argument(
        "--val_name", default="test", help="output folder name for the val split (default: test, like the reference)"
    )
    parser.add_argument("--jpeg", action="store_true", help="write JPEG quality 100 (as the reference) instead of PNG")
    args = parser.parse_args(argv)
    splits = tuple((s, args.val_name if s == "val" else s) for s in args.splits)
    try:
        counts = LAYOUTS[args.layout](
            args.cityscapes_dir, args.output_dir, size=args.size, splits=splits, jpeg=args.jpeg
        )
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    summary = ", ".join(f"{split}: {n}" for split, n in counts.items())
    print(f"wrote {args.layout} dataset to {args.output_dir} ({summary}; {args.size}x{2 * args.size})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Convert a Cityscapes tree (the real one or the synthetic demo) into a dataset layout for training.

The layouts and their differences from the reference script are described in :mod:`src.dataset.cityscapes`.
``combine_A_and_B.py`` (next to this file) builds the pix2pix layout from any user's ``A/<split>`` and ``B/<split>``
folders.

Usage (from the repository root)::

    python data/prepare_cityscapes.py --cityscapes_dir C --output_dir O --layout pix2pix [--size 256]
    python data/prepare_cityscapes.py --cityscapes_dir C --output_dir O --layout cyclegan [--size 128]
    python data/prepare_cityscapes.py --cityscapes_dir C --output_dir O --layout pix2pixhd [--size 1024]
"""

import argparse
import os
import sys

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from src.cli import main_wrapper  # noqa: E402
from src.dataset.cityscapes import DEFAULT_SIZES, LAYOUTS  # noqa: E402


def run(argv=None):
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
    counts = LAYOUTS[args.layout](args.cityscapes_dir, args.output_dir, size=args.size, splits=splits, jpeg=args.jpeg)
    summary = ", ".join(f"{split}: {n}" for split, n in counts.items())
    shape = {"pix2pix": f"{args.size}x{2 * args.size}", "cyclegan": f"{args.size}x{args.size}"}.get(
        args.layout, f"width {args.size}" if args.size else "native size"
    )
    print(f"wrote {args.layout} dataset to {args.output_dir} ({summary}; {shape})")


def main(argv=None):
    return main_wrapper(run, argv)


if __name__ == "__main__":
    sys.exit(main())

"""Combine paired images from two folders into the pix2pix side-by-side layout (A left, B right).

``A/<split>/<name>`` and ``B/<split>/<name>`` -> ``AB/<split>/<name stem>.png`` = A | B, paired by name; see
:mod:`src.dataset.combine` for the checks and the differences from the reference script.

Usage (from the repository root)::

    python data/combine_A_and_B.py --fold_A A --fold_B B --fold_AB AB [--splits train test] [--resize 256]
"""

import argparse
import os
import sys

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from src.cli import main_wrapper  # noqa: E402
from src.dataset.combine import combine  # noqa: E402


def run(argv=None):
    parser = argparse.ArgumentParser(description="Combine A/<split> and B/<split> images into A|B pairs.")
    parser.add_argument("--fold_A", required=True, help="folder with A/<split>/ images")
    parser.add_argument("--fold_B", required=True, help="folder with B/<split>/ images (same names)")
    parser.add_argument("--fold_AB", required=True, help="output folder")
    parser.add_argument("--splits", nargs="+", default=["train", "test"], help="sub-folders to combine")
    parser.add_argument("--resize", type=int, default=0, help="resize both images to N x N first (0 = keep)")
    parser.add_argument("--nearest_b", action="store_true", help="resize B with NEAREST (label maps)")
    args = parser.parse_args(argv)
    counts = combine(args.fold_A, args.fold_B, args.fold_AB, args.splits, args.resize, args.nearest_b)
    print(f"wrote {', '.join(f'{s}: {n}' for s, n in counts.items())} pairs to {args.fold_AB}")


def main(argv=None):
    return main_wrapper(run, argv)


if __name__ == "__main__":
    sys.exit(main())

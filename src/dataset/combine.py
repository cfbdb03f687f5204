"""Combine paired images from two folders into the pix2pix side-by-side layout (A left, B right).

Any user's data: ``combine(A, B, AB)`` with ``A/<split>/<name>`` and ``B/<split>/<name>`` (e.g.
``train``, ``val``, ``test``) writes ``AB/<split>/<name stem>.png`` = A | B. Files are paired by name (the extension
may differ, e.g. ``x.jpg`` with ``x.png``). Every split is checked before anything is written: a file without a
partner, a pair whose two images differ in size, or an unreadable image is a one-line error naming the file.
With ``resize=N`` both images are first resized to ``N x N`` (BICUBIC; ``nearest_b`` for label maps in B).

Differences from the reference ``datasets/combine_A_and_B.py``: names are matched (not assumed), sizes are checked
(the reference silently concatenates mismatched heights or fails deep inside OpenCV), output is lossless PNG.

The command line is ``data/combine_A_and_B.py``.
"""

import os

from PIL import Image

from src.common.fileio import atomic_path
from src.dataset.image_io import image_files_in
from src.dataset.source import image_size
from src.errors import UserError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff", ".webp")


def _images_by_stem(folder, what):
    if not os.path.isdir(folder):
        raise UserError(f"{what} folder not found: {folder}; check --fold_A/--fold_B and --splits")
    found = {}
    for path in image_files_in(folder, IMAGE_EXTENSIONS):
        name = os.path.basename(path)
        stem = os.path.splitext(name)[0]
        if stem in found:
            raise UserError(f"{what} folder {folder} holds two images named {stem} ({name}); keep one")
        found[stem] = path
    if not found:
        raise UserError(f"no images in {what} folder {folder}")
    return found


def pair_split(fold_a, fold_b, split, resize=0):
    """``[(stem, path A, path B)]`` of one split; checks names and (without ``resize``) sizes."""
    a = _images_by_stem(os.path.join(fold_a, split), "A")
    b = _images_by_stem(os.path.join(fold_b, split), "B")
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    if only_a or only_b:
        path = a[only_a[0]] if only_a else b[only_b[0]]
        raise UserError(
            f"{path} has no partner with the same name in the other folder ({len(only_a) + len(only_b)} unpaired "
            "files); A and B must hold the same file names"
        )
    pairs = [(stem, a[stem], b[stem]) for stem in sorted(a)]
    for _, pa, pb in pairs:
        sa, sb = image_size(pa), image_size(pb)
        if not resize and sa != sb:
            raise UserError(
                f"{pa} is {sa[0]}x{sa[1]} but {pb} is {sb[0]}x{sb[1]} (width x height); pairs must have the same size "
                "(or pass --resize N)"
            )
    return pairs


def combine(fold_a, fold_b, fold_ab, splits=("train", "test"), resize=0, nearest_b=False):
    """Write ``fold_ab/<split>/<stem>.png`` = A | B for every split. Returns ``{split: pairs written}``."""
    if resize < 0:
        raise UserError(f"--resize must be >= 0, got {resize}")
    plan = {split: pair_split(fold_a, fold_b, split, resize) for split in splits}
    counts = {}
    for split, pairs in plan.items():
        out = os.path.join(fold_ab, split)
        os.makedirs(out, exist_ok=True)
        for stem, pa, pb in pairs:
            with Image.open(pa) as ia, Image.open(pb) as ib:
                ia, ib = ia.convert("RGB"), ib.convert("RGB")
            if resize:
                ia = ia.resize((resize, resize), Image.BICUBIC)
                ib = ib.resize((resize, resize), Image.NEAREST if nearest_b else Image.BICUBIC)
            ab = Image.new("RGB", (ia.width + ib.width, ia.height))
            ab.paste(ia, (0, 0))
            ab.paste(ib, (ia.width, 0))
            with atomic_path(os.path.join(out, stem + ".png")) as tmp:
                ab.save(tmp, format="PNG")
        counts[split] = len(pairs)
    return counts

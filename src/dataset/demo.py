"""The built-in, download-free demo dataset: synthetic street scenes written as a Cityscapes tree.

The scenes come from :func:`src.dataset.street_scene.render_scene`; this module names and writes them (and the
derived pix2pix and CycleGAN layouts).

Usage::

    python -m src.dataset.demo --out DIR [--num_train N --num_val N --height H --width W --seed S]

writes ``DIR/cityscapes`` (Cityscapes-shaped tree) and ``DIR/pix2pix`` (side-by-side pix2pix dataset, see
:mod:`src.dataset.cityscapes`); with ``--unpaired`` also ``DIR/cyclegan`` (trainA/trainB/testA/testB, see
:func:`write_unpaired`).
"""

import argparse
import os
import sys
import zlib

import numpy as np
from PIL import Image

from src.cli import main_wrapper
from src.common.fileio import atomic_path
from src.dataset.cityscapes import list_frames, prepare_pix2pix
from src.dataset.cityscapes_labels import colorize_label_ids
from src.dataset.street_scene import SCENE_LABEL_IDS, render_scene  # noqa: F401  (SCENE_LABEL_IDS: part of the API)
from src.errors import UserError

TRAIN_CITIES = ("synthbergen", "synthdorf")
VAL_CITIES = ("synthstadt",)
FRAME_NUMBER = 19  # Cityscapes annotates the 20th frame of each 30-frame snippet: <city>_<seq>_000019


def scene_seed(seed, split, index):
    """Seed of scene ``index`` of ``split`` for the base ``seed``: reproducible, and different across splits."""
    seq = np.random.SeedSequence([int(seed), zlib.crc32(split.encode("utf-8")), int(index)])
    return int(seq.generate_state(1, dtype=np.uint32)[0])


def frame_ids(split, count):
    """Cityscapes-style frame ids ``<city>_<seq:06d>_<frame:06d>`` of the first ``count`` scenes of ``split``."""
    cities = TRAIN_CITIES if split == "train" else VAL_CITIES
    return [f"{cities[i % len(cities)]}_{i // len(cities):06d}_{FRAME_NUMBER:06d}" for i in range(count)]


def _save_png(array, path):
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


def write_cityscapes_tree(root, num_train, num_val, height=256, width=512, seed=0):
    """Write ``num_train`` + ``num_val`` synthetic scenes as a Cityscapes-shaped tree under ``root``.

    Files per frame ``<city>_<seq>_<frame>`` of split ``s``: ``leftImg8bit/s/<city>/<id>_leftImg8bit.png`` (RGB),
    ``gtFine/s/<city>/<id>_gtFine_labelIds.png`` (8-bit), ``..._gtFine_instanceIds.png`` (16-bit) and
    ``..._gtFine_color.png`` (RGB). Returns the written frame ids (train first, then val).
    """
    for name, value in (("num_train", num_train), ("num_val", num_val)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise UserError(f"{name} must be a non-negative integer, got {value!r}")
    if num_train + num_val == 0:
        raise UserError("nothing to write: num_train and num_val are both 0; ask for at least one frame")
    root = os.fspath(root)
    written = []
    for split, count in (("train", num_train), ("val", num_val)):
        for index, frame_id in enumerate(frame_ids(split, count)):
            scene = render_scene(scene_seed(seed, split, index), height, width)
            city = frame_id.split("_")[0]
            photo_dir = os.path.join(root, "leftImg8bit", split, city)
            gt_dir = os.path.join(root, "gtFine", split, city)
            os.makedirs(photo_dir, exist_ok=True)
            os.makedirs(gt_dir, exist_ok=True)
            _save_png(scene["photo"], os.path.join(photo_dir, f"{frame_id}_leftImg8bit.png"))
            _save_png(scene["label_ids"], os.path.join(gt_dir, f"{frame_id}_gtFine_labelIds.png"))
            inst = scene["instance_ids"].astype(np.uint16)
            _save_png(inst, os.path.join(gt_dir, f"{frame_id}_gtFine_instanceIds.png"))
            _save_png(colorize_label_ids(scene["label_ids"]), os.path.join(gt_dir, f"{frame_id}_gtFine_color.png"))
            written.append(frame_id)
    return written


def write_unpaired(cityscapes_dir, out_dir, size=256):
    """Write a CycleGAN (unpaired) dataset from a Cityscapes-shaped tree: ``out_dir/{train,test}{A,B}/<frame>.png``.

    ``trainA`` holds the photos of the even-numbered training frames and ``trainB`` the colour labels of the odd ones,
    so no training photo has its own label map on the other side (as in unpaired data). ``testA``/``testB`` hold the
    photos and labels of the same ``val`` frames (same names), so evaluation can compare with the true labels.
    Photos are resized with BICUBIC, labels with NEAREST, to ``size x size``. Returns ``{folder: count}``.
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise UserError(f"size must be a positive integer, got {size!r}")
    train = list_frames(cityscapes_dir, "train")
    if len(train) < 2:
        raise UserError(f"an unpaired split needs at least 2 training frames, {cityscapes_dir} has {len(train)}")
    val_dir = os.path.join(os.fspath(cityscapes_dir), "leftImg8bit", "val")
    val = list_frames(cityscapes_dir, "val") if os.path.isdir(val_dir) else []
    jobs = [("trainA", fid, photo, Image.BICUBIC) for fid, photo, _ in train[0::2]]
    jobs += [("trainB", fid, color, Image.NEAREST) for fid, _, color in train[1::2]]
    jobs += [("testA", fid, photo, Image.BICUBIC) for fid, photo, _ in val]
    jobs += [("testB", fid, color, Image.NEAREST) for fid, _, color in val]
    counts = {}
    for folder, frame_id, path, method in jobs:
        with Image.open(path) as img:
            img = img.convert("RGB").resize((size, size), method)
        os.makedirs(os.path.join(os.fspath(out_dir), folder), exist_ok=True)
        _save_png(np.asarray(img), os.path.join(os.fspath(out_dir), folder, f"{frame_id}.png"))
        counts[folder] = counts.get(folder, 0) + 1
    return counts


def run(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m src.dataset.demo",
        description="Write the synthetic street-scene demo dataset: DIR/cityscapes (Cityscapes tree) and "
        "DIR/pix2pix (side-by-side pairs, photo = A left, colour labels = B right).",
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--num_train", type=int, default=200, help="number of training scenes (default 200)")
    parser.add_argument("--num_val", type=int, default=50, help="number of validation scenes (default 50)")
    parser.add_argument("--height", type=int, default=256, help="scene height in pixels (default 256)")
    parser.add_argument("--width", type=int, default=512, help="scene width in pixels (default 512)")
    parser.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    parser.add_argument(
        "--size", type=int, default=None, help="side of the square pix2pix images (default: the scene height)"
    )
    parser.add_argument(
        "--unpaired",
        action="store_true",
        help="also write DIR/cyclegan: trainA photos and trainB colour labels of different scenes, testA/testB "
        "the val photos and labels",
    )
    args = parser.parse_args(argv)
    cityscapes_dir = os.path.join(args.out, "cityscapes")
    pix2pix_dir = os.path.join(args.out, "pix2pix")
    frames = write_cityscapes_tree(cityscapes_dir, args.num_train, args.num_val, args.height, args.width, args.seed)
    size = args.height if args.size is None else args.size
    counts = prepare_pix2pix(cityscapes_dir, pix2pix_dir, size=size)
    unpaired = write_unpaired(cityscapes_dir, os.path.join(args.out, "cyclegan"), size) if args.unpaired else None
    summary = ", ".join(f"{split} {n}" for split, n in counts.items())
    print(
        f"wrote {len(frames)} scenes of {args.height}x{args.width} to {cityscapes_dir}; pix2pix pairs ({summary}) "
        f"of {size}x{2 * size} to {pix2pix_dir}"
    )
    if unpaired is not None:
        summary = ", ".join(f"{folder} {n}" for folder, n in unpaired.items())
        print(f"unpaired CycleGAN set ({summary}) of {size}x{size} to {os.path.join(args.out, 'cyclegan')}")


def main(argv=None):
    return main_wrapper(run, argv)


if __name__ == "__main__":
    sys.exit(main())

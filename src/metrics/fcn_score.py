"""The Cityscapes FCN score without Caffe: a streaming, resumable runner.

Protocol (as ``scripts/eval_cityscapes/evaluate.py`` of pix2pix / CycleGAN; details in ``docs/fcn_score.md``):

1. frames = every ``gtFine/<split>/<city>/*_gtFine_labelIds.png``; ground truth = label ids -> 19 train ids
   (255 = void, ignored); labels are never resized;
2. each result image (named by its Cityscapes frame id, ``<city>_<seq>_<frame>*.png``) is resized to the label size
   with PIL BILINEAR (a 256x256 result becomes 1024x2048 on real Cityscapes), RGB -> BGR, minus the BGR mean;
3. FCN-8s forward, argmax over its **20** outputs (``strict``: over channels 0..18 only);
4. one confusion matrix summed over all frames; mean pixel / class accuracy and class IoU with ``eps = 1e-12``
   (:mod:`src.metrics.segmentation_metrics`, which also documents the channel-19 and dropped-frame quirks; both
   are counted and reported).

Tasks:

* ``labels_to_photo`` (default): results are generated photos, segmented by the FCN-8s (``--fcn_ckpt`` converted from
  the caffemodel) or by a segmenter trained with :mod:`src.metrics.segmenter`;
* ``photo_to_labels``: results are generated colour label maps, turned into train ids by nearest palette colour
  (nearest = black is a void prediction: wrong for its pixel, no class's false positive), resized to the label size
  with NEAREST. No network involved;
* ``--real``: instead of results, the real photos of the split resized to ``--real_size`` (256) x ``--real_size``
  (BICUBIC) go through the same pipeline: the papers' "ground truth" upper bound.

Only one frame is in memory at a time. After every frame the summed matrix, the finished frame ids and the counters
go to ``OUT/fcn_score_partial.npz`` (atomically); a re-run with the same settings continues from there.

Usage::

    python -m src.metrics.fcn_score --result_dir RESULTS --cityscapes_dir CITYSCAPES --fcn_ckpt FCN.ckpt [--out_dir O]
    python -m src.metrics.fcn_score --real --cityscapes_dir CITYSCAPES --fcn_ckpt FCN.ckpt
    python -m src.metrics.fcn_score --benchmark 3 --cityscapes_dir CITYSCAPES --fcn_ckpt FCN.ckpt   # ms/frame only
"""

import argparse
import glob
import os
import re
import sys
import time

import numpy as np
from PIL import Image

from src.dataset.cityscapes_labels import (
    NUM_TRAIN_CLASSES,
    color_to_train_ids,
    label_ids_to_train_ids,
)
from src.errors import UserError
from src.metrics.segmentation_metrics import (
    frame_histogram,
    get_scores,
    per_class_table,
    reference_results_text,
    scores_dict,
)

LABEL_SUFFIX = "_gtFine_labelIds.png"
PHOTO_SUFFIX = "_leftImg8bit.png"
FRAME_ID_RE = re.compile(r"^(.+?_\d{6}_\d{6})")
"""A Cityscapes frame id at the start of a file name: ``<city>_<seq:6>_<frame:6>``."""
PARTIAL_NAME = "fcn_score_partial.npz"
TASKS = ("labels_to_photo", "photo_to_labels")
RESULT_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

# ----------------------------------------------------------------------------------------------------------------------
# Frames and results
# ----------------------------------------------------------------------------------------------------------------------


def list_label_frames(cityscapes_dir, split="val"):
    """``[(frame id, labelIds path)]`` of a split, sorted. A clear error for a missing folder or no labels."""
    cityscapes_dir = os.fspath(cityscapes_dir)
    if not os.path.isdir(cityscapes_dir):
        raise UserError(f"Cityscapes folder not found: {cityscapes_dir}; check --cityscapes_dir")
    label_dir = os.path.join(cityscapes_dir, "gtFine", split)
    if not os.path.isdir(label_dir):
        raise UserError(
            f"folder not found: {label_dir}; --cityscapes_dir must be the original Cityscapes tree holding "
            f"gtFine/{split}/<city>/*{LABEL_SUFFIX} (not a prepared pix2pix dataset)"
        )
    paths = sorted(glob.glob(os.path.join(label_dir, "*", "*" + LABEL_SUFFIX)))
    if not paths:
        raise UserError(f"no *{LABEL_SUFFIX} files in {label_dir}/<city>/; download gtFine_trainvaltest")
    return [(os.path.basename(p)[: -len(LABEL_SUFFIX)], p) for p in paths]


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


def list_results(result_dir, pattern="*"):
    """Result image paths in ``result_dir`` (non-recursive, hidden files skipped) matching the glob ``pattern``."""
    result_dir = os.fspath(result_dir)
    if not os.path.isdir(result_dir):
        raise UserError(f"result folder not found: {result_dir}; check --result_dir")
    paths = sorted(
        p
        for p in glob.glob(os.path.join(result_dir, pattern))
        if os.path.isfile(p) and not os.path.basename(p).startswith(".") and p.lower().endswith(RESULT_EXTENSIONS)
    )
    if not paths:
        raise UserError(f"no result images matching '{pattern}' in {result_dir}")
    return paths


def match_results(named_results, label_frames):
    """Pair results with label frames by the frame id prefix of their names.

    ``named_results``: ``[(name, path)]``. Returns ``[(frame id, result path, label path)]`` in label order.
    A name without a known frame id and two results of one frame are errors.
    """
    labels = dict(label_frames)
    matched = {}
    for name, path in named_results:
        fid = frame_id_of(name)
        if fid is None or fid not in labels:
            example = label_frames[0][0] if label_frames else "<city>_<seq>_<frame>"
            raise UserError(
                f"result {path} matches no label frame (its name must start with a Cityscapes frame id "
                f"such as {example}, found under gtFine/); rename the results or check --cityscapes_dir/--split"
            )
        if fid in matched:
            raise UserError(f"two results for frame {fid}: {matched[fid]} and {path}; keep one (use --pattern)")
        matched[fid] = path
    return [(fid, matched[fid], lp) for fid, lp in label_frames if fid in matched]


def load_result_rgb(path):
    """A result image as ``HxWx3`` uint8. RGBA/palette are converted (alpha on white); grayscale is an error."""
    from src.dataset.image_io import load_image

    try:
        with Image.open(path) as img:
            mode = img.mode
    except (OSError, SyntaxError, ValueError) as err:
        raise UserError(f"cannot read result image {path} ({err}); replace or delete it") from None
    if mode in ("1", "L", "LA", "La", "I", "F") or mode.startswith("I;16"):
        raise UserError(
            f"result image {path} is single-channel (mode {mode}); the FCN score needs RGB images "
            "(generate with output_nc 3)"
        )
    return np.asarray(load_image(path, 3))


def load_gt(label_path):
    try:
        with Image.open(label_path) as img:
            ids = np.asarray(img)
    except (OSError, SyntaxError, ValueError) as err:
        raise UserError(f"cannot read label {label_path} ({err}); replace it") from None
    if ids.ndim != 2:
        raise UserError(f"label {label_path} has shape {ids.shape}; expected a single-channel labelIds PNG")
    try:
        return label_ids_to_train_ids(ids)
    except UserError as err:
        raise UserError(f"{label_path}: {err}") from None


# ----------------------------------------------------------------------------------------------------------------------
# Predictors
# ----------------------------------------------------------------------------------------------------------------------


class FCNPredictor:
    """FCN-8s (from a converted checkpoint): argmax over 20 channels, or over 0..18 when ``strict``."""

    def __init__(self, net, strict, name):
        self.net, self.strict, self.name = net, strict, name

    def predict(self, rgb):
        from src.metrics.fcn8s import predict_scores

        scores = predict_scores(self.net, rgb)
        if self.strict:
            scores = scores[:NUM_TRAIN_CLASSES]
        return scores.argmax(axis=0).astype(np.uint8)


class ColorPredictor:
    """photo -> labels: nearest palette colour (void = black -> 255)."""

    name = "nearest_palette_colour"

    def predict(self, rgb):
        return color_to_train_ids(rgb, include_void=True)


def load_segmenter(path, strict=False):
    """Load ``--fcn_ckpt``: an FCN-8s converted from the caffemodel, or a segmenter from :mod:`src.metrics.segmenter`.

    A ``.caffemodel`` path is converted once to ``<same name>.ckpt`` next to it (or reused if that exists).
    """
    from src.common.checkpoint import read_checkpoint, read_meta

    path = os.fspath(path)
    if path.endswith(".caffemodel"):
        from src.metrics.caffemodel import convert_caffemodel

        ckpt = path[: -len(".caffemodel")] + ".ckpt"
        if not os.path.isfile(ckpt):
            convert_caffemodel(path, ckpt)
        path = ckpt
    if not os.path.isfile(path):
        raise UserError(
            f"segmenter checkpoint not found: {path}; convert fcn-8s-cityscapes.caffemodel with "
            "'python -m src.metrics.caffemodel' or train one with 'python -m src.metrics.segmenter'"
        )
    params = read_checkpoint(path)
    meta = read_meta(path, params)
    kind = meta.get("segmenter", "fcn8s")
    if kind == "fcn8s":
        from src.metrics.fcn8s import build_fcn8s

        arrays = {k: v.asnumpy() for k, v in params.items() if not isinstance(v, str)}
        return FCNPredictor(build_fcn8s(arrays, path), strict, f"fcn8s ({os.path.basename(path)})")
    if kind == "tiny_unet":
        from src.metrics.segmenter import load_tiny_segmenter

        seg = load_tiny_segmenter(params, meta, path)
        seg.name = f"tiny_unet ({os.path.basename(path)})"
        return seg
    raise UserError(f"{path}: unknown segmenter '{kind}'; expected an FCN-8s or tiny_unet checkpoint")


# ----------------------------------------------------------------------------------------------------------------------
# Runner
# ----------------------------------------------------------------------------------------------------------------------


def _fmt_time(seconds):
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _load_partial(path, fingerprint, shape):
    with np.load(path, allow_pickle=False) as z:
        saved = str(z["fingerprint"])
        if saved != fingerprint:
            raise UserError(
                f"{path} belongs to an evaluation with other settings ({saved}); delete it or pass --no_resume"
            )
        hist = z["hist"].astype(np.int64)
        if hist.shape != shape:
            raise UserError(f"{path} has a {hist.shape} matrix, expected {shape}; delete it or pass --no_resume")
        return hist, [str(x) for x in z["done"]], [str(x) for x in z["dropped"]], z["counters"].astype(np.int64)


def _save_partial(path, fingerprint, hist, done, dropped, counters):
    from src.common.fileio import atomic_path

    with atomic_path(path) as tmp:
        np.savez(
            tmp,
            fingerprint=np.array(fingerprint),
            hist=hist,
            done=np.array(done, dtype=str),
            dropped=np.array(dropped, dtype=str),
            counters=counters,
        )


def _frame_image(source, real_size):
    """The image to segment, before resizing to the label size: a result file, or a real photo at real_size²."""
    kind, path = source
    if kind == "real":
        with Image.open(path) as img:
            img = img.convert("RGB")
            if real_size:  # 0 = native size (no round trip through the generator's resolution)
                img = img.resize((real_size, real_size), Image.BICUBIC)
            return np.asarray(img)
    return load_result_rgb(path)


def score_frames(
    frames,
    predictor,
    out_dir,
    task="labels_to_photo",
    strict=False,
    resume=True,
    real_size=256,
    num_label_frames=None,
    description="",
    log=print,
):
    """Score ``frames`` = ``[(frame id, (kind, path), label path)]`` (kind ``"result"`` or ``"real"``).

    Writes ``OUT/fcn_scores.json`` + ``.txt`` (means, per class, counters, ms/frame), ``fcn_per_class.md``,
    ``evaluation_results.txt`` (reference format) and ``fcn_confusion.npy``; returns the metrics dict.
    """
    from src.common.fileio import atomic_path, atomic_write_text
    from src.common.report import write_metrics

    if task not in TASKS:
        raise UserError(f"unknown task '{task}'; valid: {', '.join(TASKS)}")
    if not frames:
        raise UserError("no frame to score: no result matched a label frame")
    photo = task == "labels_to_photo"
    # photo -> labels predictions can be void (255): always strict bookkeeping (n x (n + 1) matrix) there.
    strict_hist = strict or not photo
    n = NUM_TRAIN_CLASSES
    shape = (n, n + 1) if strict_hist else (n, n)
    os.makedirs(out_dir, exist_ok=True)
    partial = os.path.join(out_dir, PARTIAL_NAME)
    fingerprint = f"task={task};strict={bool(strict)};segmenter={getattr(predictor, 'name', '?')};{description}"

    hist = np.zeros(shape, dtype=np.int64)
    done, dropped = [], []
    counters = np.zeros(3, dtype=np.int64)  # valid pixels, out-of-range (channel 19 / void colour), dropped pixels
    if resume and os.path.isfile(partial):
        hist, done, dropped, counters = _load_partial(partial, fingerprint, shape)
        log(f"resuming from {partial}: {len(done)} of {len(frames)} frames already scored")
    elif os.path.isfile(partial):
        os.remove(partial)
    done_set = set(done)
    todo = [f for f in frames if f[0] not in done_set]
    total = len(frames)
    start = time.time()
    last_print = 0.0
    compute_s = 0.0
    for k, (fid, source, label_path) in enumerate(todo):
        gt = load_gt(label_path)
        img = _frame_image(source, real_size)
        lh, lw = gt.shape
        t0 = time.time()
        if photo:
            if img.shape[:2] != (lh, lw):
                img = np.asarray(Image.fromarray(img).resize((lw, lh), Image.BILINEAR))
            pred = predictor.predict(img)
        else:
            pred = predictor.predict(img)
            if pred.shape != (lh, lw):
                pred = np.asarray(Image.fromarray(pred).resize((lw, lh), Image.NEAREST))
        compute_s += time.time() - t0
        frame_hist, info = frame_histogram(gt, pred, n, strict=strict_hist)
        hist += frame_hist
        counters += (info["valid_pixels"], info["out_of_range_pixels"], info["dropped_pixels"])
        if info["dropped"]:
            dropped.append(fid)
        done.append(fid)
        _save_partial(partial, fingerprint, hist, done, dropped, counters)
        now = time.time()
        if now - last_print >= 2.0 or k == len(todo) - 1 or k == 0:
            last_print = now
            per_frame = (now - start) / (k + 1)
            eta = per_frame * (len(todo) - k - 1)
            log(
                f"[{len(done)}/{total}] {fid}: {1000 * per_frame:.0f} ms/frame, "
                f"elapsed {_fmt_time(now - start)}, ETA {_fmt_time(eta)}"
            )

    metrics = scores_dict(hist)
    wall = time.time() - start
    metrics.update(
        task=task,
        mode="strict" if strict_hist else "reference",
        segmenter=getattr(predictor, "name", "?"),
        num_frames=len(done),
        num_label_frames=int(num_label_frames if num_label_frames is not None else total),
        valid_pixels=int(counters[0]),
        out_of_range_pixels=int(counters[1]),
        out_of_range_fraction=float(counters[1] / max(1, counters[0])),
        dropped_frames=len(dropped),
        dropped_pixels=int(counters[2]),
        dropped_frame_ids=list(dropped[:20]),
        ms_per_frame=round(1000 * wall / max(1, len(todo)), 1) if todo else None,
        ms_per_frame_segmenter=round(1000 * compute_s / max(1, len(todo)), 1) if todo else None,
        description=description,
    )
    if metrics["ms_per_frame"] is None:
        metrics.pop("ms_per_frame")
        metrics.pop("ms_per_frame_segmenter")
    write_metrics(out_dir, metrics, name="fcn_scores")
    atomic_write_text(os.path.join(out_dir, "fcn_per_class.md"), per_class_table(hist))
    atomic_write_text(os.path.join(out_dir, "evaluation_results.txt"), reference_results_text(hist))
    with atomic_path(os.path.join(out_dir, "fcn_confusion.npy")) as tmp:
        np.save(tmp, hist)
    if os.path.isfile(partial):
        os.remove(partial)
    acc, mean_acc, mean_iou, _, _ = get_scores(hist)
    what = "out-of-range (channel 19)" if photo and not strict else "void/out-of-range"
    log(
        f"FCN score ({metrics['segmenter']}, {task}, {metrics['mode']}): mean pixel acc {acc:.4f}, "
        f"mean class acc {mean_acc:.4f}, mean class IoU {mean_iou:.4f} over {len(done)} frames"
    )
    log(
        f"{what} predictions: {counters[1]} pixels ({100 * metrics['out_of_range_fraction']:.3f}%); dropped frames "
        f"(reference quirk): {len(dropped)} ({counters[2]} pixels)"
        + (f"; {metrics['ms_per_frame']} ms/frame" if "ms_per_frame" in metrics else "")
    )
    log(f"wrote {os.path.join(out_dir, 'fcn_scores.json')} and {os.path.join(out_dir, 'fcn_per_class.md')}")
    return metrics


def evaluate(
    cityscapes_dir,
    fcn_ckpt=None,
    result_dir=None,
    named_results=None,
    out_dir=None,
    split="val",
    task="labels_to_photo",
    strict=False,
    real=False,
    real_size=256,
    pattern="*",
    resume=True,
    max_frames=0,
    log=print,
):
    """Everything from folders to scores: list frames, match results (or take real photos), load the segmenter,
    run :func:`score_frames`. ``named_results`` (``[(name, path)]``) replaces ``result_dir`` (eval.py uses it)."""
    label_frames = list_label_frames(cityscapes_dir, split)
    if real:
        frames = [(fid, ("real", photo_path_for(cityscapes_dir, split, fid)), lp) for fid, lp in label_frames]
        description = f"real photos at {real_size}x{real_size}" if real_size else "real photos at native size"
    else:
        if named_results is None:
            if not result_dir:
                raise UserError("pass --result_dir (generated images named by frame id) or --real")
            named_results = [(os.path.basename(p), p) for p in list_results(result_dir, pattern)]
        matched = match_results(named_results, label_frames)
        frames = [(fid, ("result", path), lp) for fid, path, lp in matched]
        description = f"results {result_dir or 'from eval'}"
        if len(frames) < len(label_frames):
            log(
                f"WARNING: {len(label_frames) - len(frames)} of {len(label_frames)} label frames of {split} have no "
                f"result; the scores cover {len(frames)} frames only and are not comparable with full-split numbers"
            )
    if max_frames > 0:
        frames = frames[:max_frames]
    if task == "photo_to_labels":
        if real:
            raise UserError("--real applies to labels_to_photo (real photos through the segmenter)")
        predictor = ColorPredictor()
    else:
        if not fcn_ckpt:
            raise UserError(
                "pass --fcn_ckpt (FCN-8s converted from fcn-8s-cityscapes.caffemodel, or a segmenter trained with "
                "'python -m src.metrics.segmenter')"
            )
        predictor = load_segmenter(fcn_ckpt, strict=strict)
    if out_dir is None:
        out_dir = "fcn_score_real" if real else os.path.join(result_dir or ".", "fcn_score")
    log(f"FCN score: {len(frames)} frames of {split}, task {task}, segmenter {getattr(predictor, 'name', '?')}")
    return score_frames(
        frames,
        predictor,
        out_dir,
        task=task,
        strict=strict,
        resume=resume,
        real_size=real_size,
        num_label_frames=len(label_frames),
        description=description,
        log=log,
    )


def benchmark(cityscapes_dir, fcn_ckpt, frames=3, split="val", strict=False, log=print):
    """Time the segmenter on ``frames`` label-size inputs (real photos at 256² upsampled); prints ms/frame."""
    label_frames = list_label_frames(cityscapes_dir, split)[: max(1, frames)]
    predictor = load_segmenter(fcn_ckpt, strict=strict)
    times = []
    for fid, label_path in label_frames:
        with Image.open(label_path) as img:
            w, h = img.size
        rgb = np.asarray(Image.new("RGB", (256, 256), (120, 110, 100)).resize((w, h), Image.BILINEAR))
        t0 = time.time()
        predictor.predict(rgb)
        times.append(1000 * (time.time() - t0))
        log(f"{fid}: {h}x{w} in {times[-1]:.0f} ms")
    steady = times[1:] or times
    log(f"benchmark: {np.mean(steady):.0f} ms/frame ({getattr(predictor, 'name', '?')}, first frame {times[0]:.0f} ms)")
    return float(np.mean(steady))


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m src.metrics.fcn_score",
        description="Cityscapes FCN score (Caffe-free) of generated images named by frame id.",
    )
    parser.add_argument("--cityscapes_dir", required=True, help="original Cityscapes tree (gtFine/, leftImg8bit/)")
    parser.add_argument("--result_dir", default=None, help="generated images named <city>_<seq>_<frame>*.png")
    parser.add_argument("--fcn_ckpt", default=None, help="FCN-8s checkpoint (or .caffemodel) or trained segmenter")
    parser.add_argument(
        "--out_dir", default=None, help="where to write the scores (default RESULT_DIR/fcn_score, ./fcn_score_real)"
    )
    parser.add_argument("--split", default="val", help="Cityscapes split of the labels (default val)")
    parser.add_argument("--task", choices=TASKS, default="labels_to_photo")
    parser.add_argument("--strict", action="store_true", help="argmax over the 19 classes only (no reference quirks)")
    parser.add_argument(
        "--real", action="store_true", help="score the real photos resized to --real_size (upper bound)"
    )
    parser.add_argument(
        "--real_size", type=int, default=256, help="--real: resize the photos to N x N first (0 = native size)"
    )
    parser.add_argument("--pattern", default="*", help="glob of the result files in --result_dir (default *)")
    parser.add_argument("--no_resume", action="store_true", help="ignore a partial run in the output folder")
    parser.add_argument("--max_frames", type=int, default=0, help="score at most this many frames (0 = all)")
    parser.add_argument("--benchmark", type=int, default=0, help="only time N frames and print ms/frame")
    args = parser.parse_args(argv)
    try:
        if args.benchmark:
            if not args.fcn_ckpt:
                raise UserError("--benchmark needs --fcn_ckpt")
            benchmark(args.cityscapes_dir, args.fcn_ckpt, args.benchmark, args.split, args.strict)
            return 0
        evaluate(
            args.cityscapes_dir,
            fcn_ckpt=args.fcn_ckpt,
            result_dir=args.result_dir,
            out_dir=args.out_dir,
            split=args.split,
            task=args.task,
            strict=args.strict,
            real=args.real,
            real_size=args.real_size,
            pattern=args.pattern,
            resume=not args.no_resume,
            max_frames=args.max_frames,
        )
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())


# ----------------------------------------------------------------------------------------------------------------------
# eval.py hook
# ----------------------------------------------------------------------------------------------------------------------

_SET_TAGS = ("AtoB", "BtoA")


def check_eval_options(cfg):
    """Fail fast (before translating anything) on missing FCN-score options of eval.py."""
    if not cfg.get("fcn_score"):
        return
    if not cfg.get("cityscapes_dir"):
        raise UserError("--fcn_score needs --cityscapes_dir (the original Cityscapes tree with gtFine/)")
    list_label_frames(cfg.cityscapes_dir, cfg.get("fcn_split") or "val")
    if cfg.get("fcn_task", "labels_to_photo") == "labels_to_photo":
        if not cfg.get("fcn_ckpt"):
            raise UserError(
                "--fcn_score needs --fcn_ckpt (FCN-8s converted with 'python -m src.metrics.caffemodel', or a "
                "segmenter trained with 'python -m src.metrics.segmenter')"
            )
        if not os.path.isfile(cfg.fcn_ckpt):
            raise UserError(f"--fcn_ckpt not found: {cfg.fcn_ckpt}")


def score_eval_rows(cfg, rows, out_dir, log=print):
    """Score the ``output`` images of eval.py's rows (names start with the frame id, or ``AtoB_``/``BtoA_`` + frame
    id for models with two directions; then the direction ``fcn_direction`` is scored, by default ``BtoA`` for
    labels -> photo and ``AtoB`` for photo -> labels, as in the Cityscapes layouts where A = photos)."""
    task = cfg.get("fcn_task") or "labels_to_photo"
    direction = cfg.get("fcn_direction") or ("BtoA" if task == "labels_to_photo" else "AtoB")
    named = []
    tagged = any(r["name"].startswith(tuple(t + "_" for t in _SET_TAGS)) for r in rows)
    for r in rows:
        rel = (r.get("images") or {}).get("output")
        if rel is None:
            continue
        name = r["name"]
        if tagged:
            tag, _, rest = name.partition("_")
            if tag != direction:
                continue
            name = rest
        named.append((name, os.path.join(out_dir, rel)))
    if not named:
        raise UserError(f"no generated images to score (direction {direction}); check --fcn_direction")
    return evaluate(
        cfg.cityscapes_dir,
        fcn_ckpt=cfg.get("fcn_ckpt") or None,
        named_results=named,
        out_dir=os.path.join(out_dir, "fcn_score"),
        split=cfg.get("fcn_split") or "val",
        task=task,
        strict=bool(cfg.get("fcn_strict")),
        log=log,
    )

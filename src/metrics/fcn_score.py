"""The Cityscapes FCN score without Caffe: a streaming, resumable runner of :mod:`src.metrics.fcn_protocol`.

Only one frame is in memory at a time. After every frame the summed matrix, the finished frame ids and the counters
go to ``OUT/fcn_score_partial.npz`` (atomically); a re-run with the same settings continues from there.

Usage::

    python -m src.metrics.fcn_score --result_dir RESULTS --cityscapes_dir CITYSCAPES --fcn_ckpt FCN.ckpt [--out_dir O]
    python -m src.metrics.fcn_score --real --cityscapes_dir CITYSCAPES --fcn_ckpt FCN.ckpt
    python -m src.metrics.fcn_score --benchmark 3 --cityscapes_dir CITYSCAPES --fcn_ckpt FCN.ckpt   # ms/frame only
"""

import argparse
import os
import sys
import time

import numpy as np
from PIL import Image

from src.cli import main_wrapper
from src.dataset.cityscapes import list_label_frames, photo_path_for
from src.dataset.cityscapes_labels import NUM_TRAIN_CLASSES
from src.errors import UserError
from src.metrics.fcn_protocol import (
    TASKS,
    ColorPredictor,
    frame_image,
    list_results,
    load_gt,
    load_segmenter,
    match_results,
    predict_frame,
)
from src.metrics.segmentation_metrics import (
    frame_histogram,
    get_scores,
    per_class_table,
    reference_results_text,
    scores_dict,
)

PARTIAL_NAME = "fcn_score_partial.npz"

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
    from src.common.metrics_files import write_metrics

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
        img = frame_image(source, real_size)
        t0 = time.time()
        pred = predict_frame(img, gt.shape, predictor, task)
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


def run(argv=None):
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
    if args.benchmark:
        if not args.fcn_ckpt:
            raise UserError("--benchmark needs --fcn_ckpt")
        benchmark(args.cityscapes_dir, args.fcn_ckpt, args.benchmark, args.split, args.strict)
        return
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


def main(argv=None):
    return main_wrapper(run, argv, interrupted="interrupted; re-run the same command to resume")


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


if __name__ == "__main__":
    sys.exit(main())

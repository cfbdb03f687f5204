"""Confusion matrix and scores of the Cityscapes "FCN score", with the reference's conventions.

The reference (``scripts/eval_cityscapes/util.py`` of pix2pix / CycleGAN, from clockwork-fcn) accumulates one
confusion matrix ``H`` (``H[i, j]`` = pixels of ground-truth class ``i`` predicted as ``j``) over all frames and
reports, with ``eps = 1e-12``:

* mean pixel accuracy ``= sum_i H[i, i] / (sum_ij H[i, j] + eps)``;
* per-class accuracy ``acc_i = H[i, i] / (sum_j H[i, j] + eps)``, mean class accuracy ``= nanmean(acc)``;
* per-class IoU ``iou_i = H[i, i] / (sum_j H[i, j] + sum_j H[j, i] - H[i, i] + eps)``, mean ``= nanmean(iou)``.

Because of ``eps`` no NaN ever occurs: a class absent from both ground truth and prediction scores 0 and is averaged
in (the 500-frame val set has every class, so this only matters for subsets and the demo).

Quirks of the reference, reproduced by :func:`fast_hist` (``strict=False``) and reported by :func:`frame_histogram`:

* **channel 19.** The FCN-8s has 20 outputs but only 19 classes are scored. The histogram index of a pixel is
  ``19 * gt + pred``; a prediction of 19 on ground truth ``g < 18`` lands on ``19 * (g + 1) + 0``, i.e. it is counted
  as "ground truth ``g + 1`` predicted as road";
* **dropped frames.** A prediction of 19 on a ground-truth-18 (bicycle) pixel gives index 361, the bincount gets 362
  entries instead of 361 and the reference returns 0 for the frame: the **whole frame is silently dropped**.

``strict=True`` does neither: predictions outside ``0..n-1`` are kept in an extra last column of an ``n x (n + 1)``
matrix ("predicted something that is not a class"), so they count as wrong for their ground-truth class and do not
add to any class's false positives. For the FCN, strict mode normally means taking the argmax over channels 0..18
only (see :mod:`src.metrics.fcn_score`), so no prediction is ever 19; the extra column matters for photo -> labels
scoring, where a colour nearest to black is a "void" prediction.
"""

import numpy as np

from src.dataset.cityscapes_labels import NUM_TRAIN_CLASSES, TRAIN_CLASS_NAMES

EPS = 1e-12
"""The reference's epsilon in every denominator."""


def fast_hist(a, b, n):
    """The reference per-frame histogram: ``n x n`` int64, or all zeros when the frame is dropped (see module doc).

    ``a`` = flattened ground truth (pixels outside ``0..n-1`` are ignored, e.g. 255 = void), ``b`` = flattened
    prediction (non-negative integers). Like the reference, a prediction ``>= n`` shifts into the next row, and a
    frame whose bincount grows beyond ``n * n`` entries contributes nothing.
    """
    a = np.asarray(a).reshape(-1)
    b = np.asarray(b).reshape(-1)
    k = (a >= 0) & (a < n)
    bc = np.bincount(n * a[k].astype(np.int64) + b[k].astype(np.int64), minlength=n * n)
    if len(bc) != n * n:
        return np.zeros((n, n), dtype=np.int64)
    return bc.reshape(n, n).astype(np.int64)


def strict_hist(a, b, n):
    """``n x (n + 1)`` histogram: column ``n`` counts ground-truth pixels predicted outside ``0..n-1``."""
    a = np.asarray(a).reshape(-1)
    b = np.asarray(b).reshape(-1).astype(np.int64)
    k = (a >= 0) & (a < n)
    a_k, b_k = a[k].astype(np.int64), b[k]
    b_k = np.where((b_k >= 0) & (b_k < n), b_k, n)
    return np.bincount((n + 1) * a_k + b_k, minlength=n * (n + 1)).reshape(n, n + 1).astype(np.int64)


def frame_histogram(gt, pred, n=NUM_TRAIN_CLASSES, strict=False):
    """Histogram of one frame plus what the reference quirks did to it.

    Returns ``(hist, info)``; ``hist`` is ``n x n`` (reference) or ``n x (n + 1)`` (strict); ``info`` has
    ``valid_pixels`` (non-void ground truth), ``out_of_range_pixels`` (valid pixels predicted ``>= n``, e.g. FCN
    channel 19 or a void colour), ``dropped`` (reference mode: the frame was discarded) and ``dropped_pixels``.
    """
    gt = np.asarray(gt)
    pred = np.asarray(pred)
    if gt.shape != pred.shape:
        raise ValueError(f"ground truth {gt.shape} and prediction {pred.shape} differ in shape")
    a, b = gt.reshape(-1), pred.reshape(-1)
    valid = (a >= 0) & (a < n)
    valid_pixels = int(valid.sum())
    out_of_range = int((valid & ((b < 0) | (b >= n))).sum())
    if strict:
        hist = strict_hist(a, b, n)
        dropped = False
    else:
        hist = fast_hist(a, b, n)
        dropped = valid_pixels > 0 and int(hist.sum()) == 0
    info = dict(
        valid_pixels=valid_pixels,
        out_of_range_pixels=out_of_range,
        dropped=bool(dropped),
        dropped_pixels=valid_pixels if dropped else 0,
    )
    return hist, info


def get_scores(hist):
    """The reference scores of a summed histogram: ``(mean pixel acc, mean class acc, mean class IoU, acc, iou)``.

    ``hist`` is ``n x n`` (exactly the reference formulas) or ``n x (n + 1)`` (strict: the last column adds to the
    ground-truth totals only). Per-class arrays are float64 of length ``n``.
    """
    hist = np.asarray(hist, dtype=np.float64)
    n = hist.shape[0]
    square = hist[:, :n]
    diag = np.diag(square)
    acc = diag.sum() / (hist.sum() + EPS)
    cl_acc = diag / (hist.sum(1) + EPS)
    iu = diag / (hist.sum(1) + square.sum(0) - diag + EPS)
    return float(acc), float(np.nanmean(cl_acc)), float(np.nanmean(iu)), cl_acc, iu


def scores_dict(hist, class_names=TRAIN_CLASS_NAMES):
    """Scores as a flat dict for JSON: the three means plus ``per_class.<name>.{acc,iou}``."""
    acc, mean_acc, mean_iou, cl_acc, iu = get_scores(hist)
    per_class = {name: {"acc": float(cl_acc[i]), "iou": float(iu[i])} for i, name in enumerate(class_names)}
    return {
        "mean_pixel_acc": acc,
        "mean_class_acc": mean_acc,
        "mean_class_iou": mean_iou,
        "per_class": per_class,
    }


def per_class_table(hist, class_names=TRAIN_CLASS_NAMES):
    """Markdown table in the layout of the model-zoo README (``|Class name |Accuracy |Iou |``), 6 decimals."""
    acc, mean_acc, mean_iou, cl_acc, iu = get_scores(hist)
    width = max(len("Class name"), *(len(c) for c in class_names)) + 1
    lines = [
        "|Metric             |Value    |",
        "|:-|:-:|",
        f"|Mean pixel accuracy| {acc:.6f}|",
        f"|Mean class accuracy| {mean_acc:.6f}|",
        f"|Mean class IoU     | {mean_iou:.6f}|",
        "",
        f"|{'Class name':<{width}}|Accuracy |Iou     |",
        "|:-|:-:|:-:|",
    ]
    lines += [f"|{name:<{width}}| {cl_acc[i]:.6f}|{iu[i]:.6f}|" for i, name in enumerate(class_names)]
    return "\n".join(lines) + "\n"


def reference_results_text(hist, class_names=TRAIN_CLASS_NAMES):
    """The reference's ``evaluation_results.txt`` text (same lines and number format)."""
    acc, mean_acc, mean_iou, cl_acc, iu = get_scores(hist)
    lines = [
        f"Mean pixel accuracy: {acc:f}",
        f"Mean class accuracy: {mean_acc:f}",
        f"Mean class IoU: {mean_iou:f}",
        "************ Per class numbers below ************",
    ]
    lines += [f"{name:<15}: acc = {cl_acc[i]:f}, iou = {iu[i]:f}" for i, name in enumerate(class_names)]
    return "\n".join(lines) + "\n"

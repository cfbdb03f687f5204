"""The Cityscapes FCN-score protocol: which images are scored against which labels, and how one frame is predicted.

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

:mod:`src.metrics.fcn_score` runs this protocol over a whole split (streaming, resumable) and writes the scores.
"""

import glob
import os

import numpy as np
from PIL import Image

from src.dataset.cityscapes import frame_id_of
from src.dataset.cityscapes_labels import NUM_TRAIN_CLASSES, color_to_train_ids, label_ids_to_train_ids
from src.errors import UserError

TASKS = ("labels_to_photo", "photo_to_labels")
RESULT_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


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


def frame_image(source, real_size):
    """The image to segment, before resizing to the label size: a result file, or a real photo at real_size²."""
    kind, path = source
    if kind == "real":
        with Image.open(path) as img:
            img = img.convert("RGB")
            if real_size:  # 0 = native size (no round trip through the generator's resolution)
                img = img.resize((real_size, real_size), Image.BICUBIC)
            return np.asarray(img)
    return load_result_rgb(path)


def predict_frame(img, label_shape, predictor, task):
    """Train ids predicted for one frame at the label size ``label_shape``.

    ``labels_to_photo``: the image is resized to the label size (PIL BILINEAR) before the segmenter sees it;
    ``photo_to_labels``: the colour labels are classified at their own size and the prediction resized (NEAREST).
    """
    lh, lw = label_shape
    if task == "labels_to_photo":
        if img.shape[:2] != (lh, lw):
            img = np.asarray(Image.fromarray(img).resize((lw, lh), Image.BILINEAR))
        return predictor.predict(img)
    pred = predictor.predict(img)
    if pred.shape != (lh, lw):
        pred = np.asarray(Image.fromarray(pred).resize((lw, lh), Image.NEAREST))
    return pred

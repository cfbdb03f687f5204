"""Cityscapes label definitions and NumPy helpers (label ids, train ids, colours, instance boundaries).

The table below restates the label definitions of the Cityscapes benchmark as published in cityscapesScripts
(``cityscapesscripts/helpers/labels.py``, https://github.com/mcordts/cityscapesScripts, MIT licence,
Copyright (c) 2016 Marius Cordts et al.). Only the columns this project uses are kept.

Id conventions:

* **label ids** (``*_gtFine_labelIds.png``): 0..33, what pix2pixHD feeds (``label_nc=35``);
* **train ids**: 0..18 for the 19 evaluated classes, 255 for void (everything else);
* **instance ids** (``*_gtFine_instanceIds.png``): ``id * 1000 + k`` for pixels of instances of classes with
  ``has_instances``, the plain label id elsewhere.
"""

from collections import namedtuple

import numpy as np

from src.errors import UserError

Label = namedtuple("Label", ["name", "id", "train_id", "category", "color", "has_instances"])
"""One row of the Cityscapes label table. ``color`` is an ``(R, G, B)`` tuple as used in ``*_gtFine_color.png``."""

VOID_TRAIN_ID = 255
"""Train id of every class that is not evaluated."""

# fmt: off
LABELS = (
    #      name                    id  trainId  category        color            hasInstances
    Label("unlabeled",             0,  255,     "void",         (0, 0, 0),       False),
    Label("ego vehicle",           1,  255,     "void",         (0, 0, 0),       False),
    Label("rectification border",  2,  255,     "void",         (0, 0, 0),       False),
    Label("out of roi",            3,  255,     "void",         (0, 0, 0),       False),
    Label("static",                4,  255,     "void",         (0, 0, 0),       False),
    Label("dynamic",               5,  255,     "void",         (111, 74, 0),    False),
    Label("ground",                6,  255,     "void",         (81, 0, 81),     False),
    Label("road",                  7,  0,       "flat",         (128, 64, 128),  False),
    Label("sidewalk",              8,  1,       "flat",         (244, 35, 232),  False),
    Label("parking",               9,  255,     "flat",         (250, 170, 160), False),
    Label("rail track",            10, 255,     "flat",         (230, 150, 140), False),
    Label("building",              11, 2,       "construction", (70, 70, 70),    False),
    Label("wall",                  12, 3,       "construction", (102, 102, 156), False),
    Label("fence",                 13, 4,       "construction", (190, 153, 153), False),
    Label("guard rail",            14, 255,     "construction", (180, 165, 180), False),
    Label("bridge",                15, 255,     "construction", (150, 100, 100), False),
    Label("tunnel",                16, 255,     "construction", (150, 120, 90),  False),
    Label("pole",                  17, 5,       "object",       (153, 153, 153), False),
    Label("polegroup",             18, 255,     "object",       (153, 153, 153), False),
    Label("traffic light",         19, 6,       "object",       (250, 170, 30),  False),
    Label("traffic sign",          20, 7,       "object",       (220, 220, 0),   False),
    Label("vegetation",            21, 8,       "nature",       (107, 142, 35),  False),
    Label("terrain",               22, 9,       "nature",       (152, 251, 152), False),
    Label("sky",                   23, 10,      "sky",          (70, 130, 180),  False),
    Label("person",                24, 11,      "human",        (220, 20, 60),   True),
    Label("rider",                 25, 12,      "human",        (255, 0, 0),     True),
    Label("car",                   26, 13,      "vehicle",      (0, 0, 142),     True),
    Label("truck",                 27, 14,      "vehicle",      (0, 0, 70),      True),
    Label("bus",                   28, 15,      "vehicle",      (0, 60, 100),    True),
    Label("caravan",               29, 255,     "vehicle",      (0, 0, 90),      True),
    Label("trailer",               30, 255,     "vehicle",      (0, 0, 110),     True),
    Label("train",                 31, 16,      "vehicle",      (0, 80, 100),    True),
    Label("motorcycle",            32, 17,      "vehicle",      (0, 0, 230),     True),
    Label("bicycle",               33, 18,      "vehicle",      (119, 11, 32),   True),
    Label("license plate",         -1, -1,      "vehicle",      (0, 0, 142),     False),
)
# fmt: on

NUM_LABEL_IDS = 34
"""Label ids that can occur in a ``labelIds`` PNG: 0..33 (license plate, id -1, never appears in a PNG)."""

NUM_TRAIN_CLASSES = 19
"""Number of evaluated classes (train ids 0..18)."""

ID_TO_LABEL = {label.id: label for label in LABELS}
NAME_TO_LABEL = {label.name: label for label in LABELS}

TRAIN_CLASS_NAMES = tuple(
    lb.name for lb in sorted((lb for lb in LABELS if 0 <= lb.train_id < VOID_TRAIN_ID), key=lambda lb: lb.train_id)
)
"""The 19 evaluated class names in train id order (road, sidewalk, building, ..., bicycle)."""

INSTANCE_LABEL_IDS = tuple(lb.id for lb in LABELS if lb.has_instances)
"""Label ids of classes whose pixels carry ``id * 1000 + k`` instance ids (person, rider, car, ..., bicycle)."""

# 256-entry lookup tables indexed by a uint8 label id. Entries >= NUM_LABEL_IDS are never used (inputs are
# validated first) and stay void / black.
_ID_TO_TRAIN_LUT = np.full(256, VOID_TRAIN_ID, dtype=np.uint8)
_ID_TO_COLOR_LUT = np.zeros((256, 3), dtype=np.uint8)
for _lb in LABELS:
    if _lb.id >= 0:
        _ID_TO_TRAIN_LUT[_lb.id] = _lb.train_id if _lb.train_id >= 0 else VOID_TRAIN_ID
        _ID_TO_COLOR_LUT[_lb.id] = _lb.color
_TRAIN_PALETTE = np.array(
    [next(lb.color for lb in LABELS if lb.train_id == t) for t in range(NUM_TRAIN_CLASSES)], dtype=np.uint8
)
_TRAIN_TO_COLOR_LUT = np.zeros((256, 3), dtype=np.uint8)  # void (255) -> black
_TRAIN_TO_COLOR_LUT[:NUM_TRAIN_CLASSES] = _TRAIN_PALETTE
del _lb


def _bad_values_text(values, limit=8):
    values = [int(v) for v in values]
    text = ", ".join(str(v) for v in values[:limit])
    return text + (f", ... ({len(values)} distinct)" if len(values) > limit else "")


def _as_int_array(arr, what):
    arr = np.asarray(arr)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise UserError(f"{what} must be an integer array, got dtype {arr.dtype}; load the PNG without conversion")
    return arr


def _check_label_ids(label_ids):
    """Validate a label id array (values 0..33) and return it as uint8."""
    arr = _as_int_array(label_ids, "label ids")
    if arr.size:
        lo, hi = arr.min(), arr.max()
        if lo < 0 or hi >= NUM_LABEL_IDS:
            bad = np.unique(arr[(arr < 0) | (arr >= NUM_LABEL_IDS)])
            raise UserError(
                f"label ids outside 0..{NUM_LABEL_IDS - 1}: {_bad_values_text(bad)}; "
                "pass a Cityscapes *_gtFine_labelIds.png map (not trainIds, colours or instanceIds)"
            )
    return arr.astype(np.uint8, copy=False)


def label_ids_to_train_ids(label_ids):
    """Map Cityscapes label ids (0..33, any integer dtype and shape) to train ids (uint8, 0..18, 255 = void)."""
    return _ID_TO_TRAIN_LUT[_check_label_ids(label_ids)]


def colorize_label_ids(label_ids):
    """Label ids ``HxW`` -> ``HxWx3`` uint8 image in the Cityscapes ``*_gtFine_color.png`` colours."""
    return _ID_TO_COLOR_LUT[_check_label_ids(label_ids)]


def train_id_palette():
    """The 19 train id colours as a ``(19, 3)`` uint8 array (row ``t`` = colour of train id ``t``)."""
    return _TRAIN_PALETTE.copy()


def colorize_train_ids(train_ids):
    """Train ids ``HxW`` (0..18, 255 = void) -> ``HxWx3`` uint8 colours; void becomes black."""
    arr = _as_int_array(train_ids, "train ids")
    if arr.size:
        bad_mask = ((arr < 0) | (arr >= NUM_TRAIN_CLASSES)) & (arr != VOID_TRAIN_ID)
        if bad_mask.any():
            raise UserError(
                f"train ids outside 0..{NUM_TRAIN_CLASSES - 1} and {VOID_TRAIN_ID}: "
                f"{_bad_values_text(np.unique(arr[bad_mask]))}; convert label ids with label_ids_to_train_ids first"
            )
    return _TRAIN_TO_COLOR_LUT[arr.astype(np.uint8, copy=False)]


def color_to_train_ids(rgb, include_void=True):
    """Recover train ids from a colour label image by nearest palette colour (L1 distance over RGB).

    ``rgb`` is ``HxWx3`` uint8 (an alpha channel, if any, is ignored). Candidates are the 19 train id colours and,
    with ``include_void=True``, black; a pixel whose nearest colour is black gets 255 (void). Ties go to the lower
    train id, and black loses ties. With ``include_void=False`` every pixel gets one of 0..18.
    Returns ``HxW`` uint8.
    """
    arr = np.asarray(rgb)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise UserError(f"colour label image must be HxWx3, got shape {arr.shape}; load it as RGB")
    if arr.dtype != np.uint8:
        raise UserError(f"colour label image must be uint8, got dtype {arr.dtype}; load it as 8-bit RGB")
    pixels = arr[..., :3].astype(np.int16)
    candidates = [(t, _TRAIN_PALETTE[t]) for t in range(NUM_TRAIN_CLASSES)]
    if include_void:
        candidates.append((VOID_TRAIN_ID, np.zeros(3, dtype=np.uint8)))
    best_dist = np.full(arr.shape[:2], np.iinfo(np.int16).max, dtype=np.int16)
    best_id = np.zeros(arr.shape[:2], dtype=np.uint8)
    for train_id, color in candidates:
        dist = np.abs(pixels - color.astype(np.int16)).sum(axis=2, dtype=np.int16)
        better = dist < best_dist
        best_dist[better] = dist[better]
        best_id[better] = train_id
    return best_id


def instance_ids_to_boundary(inst):
    """pix2pixHD instance boundary map: 1.0 where a pixel's id differs from a horizontal or vertical neighbour.

    Both pixels of every differing neighbour pair are marked (as pix2pixHD's edge map does). ``inst`` is an
    ``HxW`` integer array (e.g. a ``*_gtFine_instanceIds.png``); returns ``HxW`` float32 of 0.0 / 1.0.
    """
    arr = _as_int_array(inst, "instance ids")
    if arr.ndim != 2:
        raise UserError(f"instance map must be 2-D (HxW), got shape {arr.shape}; load the PNG as one channel")
    edge = np.zeros(arr.shape, dtype=bool)
    horiz = arr[:, 1:] != arr[:, :-1]
    edge[:, 1:] |= horiz
    edge[:, :-1] |= horiz
    vert = arr[1:, :] != arr[:-1, :]
    edge[1:, :] |= vert
    edge[:-1, :] |= vert
    return edge.astype(np.float32)

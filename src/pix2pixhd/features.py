"""Instance features of pix2pixHD: segment ids for instance-wise pooling, per-class k-means of encoded instance
features (``precompute_feature_maps.py``), and sampling features from the clusters at test time.

Cluster file (``features_clustered_010.npy`` for ``n_clusters`` 10): float32 array ``label_nc x n_clusters x
feat_num``; rows of a class with fewer clusters (or no instances) are NaN.

Per-image feature file (``<dataroot>/<phase>_feat/<name>.npz``, what the reference's precompute step stores as a
feature-map image): the encoder's instance-wise averaged output as a table, one row per region of the image:
``ids`` (int32, the instance ids, or the label ids for ``label_feat`` runs), ``features`` (float32 ``len(ids) x
feat_num``) and ``segments`` (``"instance"`` or ``"label"``). The map is rebuilt from the image's own instance (or
label) map at whatever size a run loads it (:func:`feature_map_from_table`), lossless and a few hundred bytes per
image; regions the table does not know (e.g. too small to survive the encoder run's resizing) get zeros.
"""

import os

import numpy as np

from src.errors import UserError

MIN_SEGMENT_BUCKET = 64


def instance_label(inst_id):
    """Semantic label of a Cityscapes instance id (``label * 1000 + k``, or the plain label id)."""
    inst_id = np.asarray(inst_id)
    return np.where(inst_id >= 1000, inst_id // 1000, inst_id)


def segment_ids(segments):
    """``N x 1 x H x W`` (or ``N x H x W``) region ids -> (``N x H x W`` int32 ids disjoint across the batch, the
    number of segments).

    Each image's ids are renumbered 0..u-1 and offset by ``b * bucket``; ``bucket`` is a power of two >= 64 so the
    compiled step sees few distinct segment counts.
    """
    seg = np.asarray(segments)
    if seg.ndim == 4:
        seg = seg[:, 0]
    inverses, most = [], 1
    for s in seg:
        _, inv = np.unique(s, return_inverse=True)
        inverses.append(inv.reshape(s.shape))
        most = max(most, int(inv.max()) + 1)
    bucket = MIN_SEGMENT_BUCKET
    while bucket < most:
        bucket *= 2
    ids = np.stack([inv + b * bucket for b, inv in enumerate(inverses)]).astype(np.int32)
    return ids, bucket * len(inverses)


def instance_features(feat_map, segments, min_area=0.0):
    """Per-instance features of one image: ``{label: [feature vectors]}`` from the pooled ``feat_num x H x W`` map
    and the ``H x W`` instance ids; instances covering less than ``min_area`` of the image are skipped."""
    seg = np.asarray(segments)
    if seg.ndim == 3:
        seg = seg[0]
    out = {}
    ids, first, counts = np.unique(seg.ravel(), return_index=True, return_counts=True)
    flat = feat_map.reshape(feat_map.shape[0], -1)
    for inst_id, pos, cnt in zip(ids, first, counts):
        if cnt / seg.size < min_area:
            continue
        out.setdefault(int(instance_label(inst_id)), []).append(flat[:, pos].astype(np.float32))
    return out


def cluster_features(per_label, label_nc, feat_num, n_clusters, seed=0):
    """k-means (scipy ``kmeans2``, k-means++) per class -> ``label_nc x n_clusters x feat_num`` (NaN = unused)."""
    from scipy.cluster.vq import kmeans2

    centers = np.full((label_nc, n_clusters, feat_num), np.nan, np.float32)
    for label, feats in per_label.items():
        if not 0 <= label < label_nc or not feats:
            continue
        data = np.asarray(feats, np.float64)
        k = min(n_clusters, len(data))
        if k == len(data):
            c = data
        else:
            c, _ = kmeans2(data, k, minit="++", seed=seed)
        centers[label, :k] = c
    return centers


def cluster_file_name(n_clusters):
    return f"features_clustered_{n_clusters:03d}.npy"


def load_clusters(path, label_nc, feat_num):
    """Load and check a cluster file; a missing or mismatching file is a :class:`UserError`."""
    if not os.path.isfile(path):
        raise UserError(
            f"feature cluster file not found: {path}; run python precompute_feature_maps.py --ckpt RUN/E_latest.ckpt "
            f"--dataroot DATA, or pass --use_encoded_image True"
        )
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read feature cluster file {path}: {err}") from None
    if arr.ndim != 3 or arr.shape[0] != label_nc or arr.shape[2] != feat_num:
        raise UserError(
            f"feature cluster file {path} has shape {arr.shape}, but this model needs label_nc {label_nc} x "
            f"n_clusters x feat_num {feat_num}; recompute it with precompute_feature_maps.py for this run"
        )
    return arr.astype(np.float32)


def sample_feature_map(clusters, segments, rng):
    """A ``feat_num x H x W`` feature map: each instance gets a random cluster centre of its class (zeros if the
    class has none)."""
    seg = np.asarray(segments)
    if seg.ndim == 3:
        seg = seg[0]
    feat_num = clusters.shape[2]
    out = np.zeros((feat_num,) + seg.shape, np.float32)
    for inst_id in np.unique(seg):
        label = int(instance_label(inst_id))
        if not 0 <= label < clusters.shape[0]:
            continue
        valid = clusters[label][~np.isnan(clusters[label]).any(axis=1)]
        if len(valid):
            out[:, seg == inst_id] = valid[int(rng.integers(len(valid)))][:, None]
    return out


FEATURE_FOLDER_SUFFIX = "_feat"


def feature_table(feat_map, segments):
    """One image's pooled ``feat_num x H x W`` map and its ``H x W`` region ids -> (sorted ids int32, ``K x feat_num``
    float32 features, one row per id)."""
    seg = np.asarray(segments)
    if seg.ndim == 3:
        seg = seg[0]
    ids, first = np.unique(seg.ravel(), return_index=True)
    flat = np.asarray(feat_map).reshape(feat_map.shape[0], -1)
    return ids.astype(np.int32), np.ascontiguousarray(flat[:, first].T.astype(np.float32))


def save_feature_table(path, ids, features, segments_kind):
    """Write a per-image feature file (see the module docstring) atomically."""
    from src.common.fileio import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(
                f,
                ids=np.asarray(ids, np.int32),
                features=np.asarray(features, np.float32),
                segments=np.array(segments_kind),
            )


def load_feature_table(path, feat_num, segments_kind):
    """Read and check a per-image feature file; a missing or mismatching file is a :class:`UserError`."""
    if not os.path.isfile(path):
        raise UserError(
            f"precomputed feature file not found: {path}; run python precompute_feature_maps.py --ckpt "
            f"RUN_512P_FEAT/E_latest.ckpt --dataroot DATA (--phase of this split), or train without --load_features"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            ids, feats, kind = data["ids"], data["features"], str(data["segments"])
    except (OSError, ValueError, KeyError) as err:
        raise UserError(
            f"cannot read precomputed feature file {path}: {err}; run precompute_feature_maps.py again"
        ) from None
    if feats.ndim != 2 or feats.shape != (len(ids), feat_num):
        raise UserError(
            f"precomputed feature file {path} holds features of shape {feats.shape}, but this run needs feat_num "
            f"{feat_num}; recompute it with the encoder of a run with the same feat_num"
        )
    if kind != segments_kind:
        raise UserError(
            f"precomputed feature file {path} was averaged per {kind} region, but this run averages per "
            f"{segments_kind} region (instance_feat / label_feat differ); recompute it"
        )
    return ids.astype(np.int64), feats.astype(np.float32)


def feature_map_from_table(ids, features, segments):
    """``feat_num x H x W`` float32 map: each pixel gets the feature row of its region id (zeros if not listed)."""
    seg = np.asarray(segments)
    if seg.ndim == 3:
        seg = seg[0]
    out = np.zeros((features.shape[1],) + seg.shape, np.float32)
    if len(ids) == 0:
        return out
    pos = np.clip(np.searchsorted(ids, seg), 0, len(ids) - 1)
    found = ids[pos] == seg
    out[:, found] = features[pos[found]].T
    return out


def feature_file(dataroot, phase, name):
    """``<dataroot>/<phase>_feat/<name>.npz``: where precompute_feature_maps.py writes an image's features."""
    return os.path.join(os.fspath(dataroot), phase + FEATURE_FOLDER_SUFFIX, name + ".npz")


class PrecomputedFeatureSource:
    """A pix2pixHD source with one more column, ``features`` (``feat_num x H x W`` float32), rebuilt from the
    per-image feature files (``load_features``) on the sample's own (resized, cropped, flipped) region map.

    Samples are dicts ``{"input", "image", "segments", "features", "index"}``.
    """

    columns = ("input", "image", "segments", "features", "index")

    def __init__(self, base, feat_num, segments_kind):
        self.base, self.feat_num, self.segments_kind = base, feat_num, segments_kind
        self.names, self.image_paths = base.names, base.image_paths
        self.paths = [feature_file(base.dataroot, base.phase, name) for name in self.names]
        missing = [p for p in self.paths if not os.path.isfile(p)]
        if missing:
            raise UserError(
                f"precomputed feature file not found: {missing[0]} ({len(missing)} of {len(self.paths)} missing); run "
                f"python precompute_feature_maps.py --ckpt RUN_512P_FEAT/E_latest.ckpt --dataroot "
                f"{base.dataroot} --phase {base.phase}, or train without --load_features"
            )

    def __len__(self):
        return len(self.base)

    def get(self, index, rng):
        sample = self.base.get(index, rng)
        ids, feats = load_feature_table(self.paths[index], self.feat_num, self.segments_kind)
        features = feature_map_from_table(ids, feats, sample["segments"])
        return {c: features if c == "features" else sample[c] for c in self.columns}

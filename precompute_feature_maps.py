"""Encode a pix2pixHD run's split with its feature encoder E: per-image feature files and the feature clusters.

    python precompute_feature_maps.py --ckpt RUN/E_latest.ckpt [--dataroot DATA] [--phase train]

For every image of the split (the run's preprocessing, no flip), E's output averaged per instance (or per label
region for ``label_feat``) is written to ``DATA/<phase>_feat/<name>.npz``: one feature vector per region id (see
``src/pix2pixhd/features.py``). A run with ``--load_features True`` (the 1024p feature recipe) reads these instead of
training an encoder, rebuilding each map on its own instance map at its own resolution.

For the train split it also clusters the features: one vector per instance that covers more than ``MIN_AREA`` of the
image, k-means with ``n_clusters`` per semantic class (scipy ``kmeans2``), written to
``RUN/features_clustered_<n_clusters:03d>.npy`` (``label_nc x n_clusters x feat_num``, NaN = unused), which eval.py
samples from unless ``--use_encoded_image``. Every file is written under a temporary name and renamed.
"""

import os
import sys

import numpy as np

import src.device  # noqa: F401  (sets ONEDNN_MAX_CPU_ISA before MindSpore loads)
from src.cli import config_for_checkpoint, main_wrapper
from src.errors import UserError

MIN_AREA = 1.0 / 64
"""Instances covering less than this fraction of the image are not clustered (the reference keeps an instance when
its pixel count exceeds half of ``H * W // 32``)."""


def run(argv=None, log=print):
    from src.common import checkpoint as ckpt
    from src.common.fileio import atomic_path
    from src.device import init_env
    from src.models import build_model
    from src.pix2pixhd import features as F
    from src.pix2pixhd.options import segments_kind

    cfg, _ = config_for_checkpoint(argv, __doc__)
    cfg.run_distribute = False
    if cfg.model != "pix2pixhd":
        raise UserError(f"{cfg.ckpt} is a '{cfg.model}' checkpoint; precompute_feature_maps.py is for pix2pixhd runs")
    if not (cfg.instance_feat or cfg.label_feat):
        raise UserError(f"the run of {cfg.ckpt} uses no encoded features (instance_feat/label_feat are off)")
    if cfg.get("load_features", False):
        raise UserError(
            f"the run of {cfg.ckpt} trained on precomputed features and has no encoder; run this on the run whose "
            f"E made them (its load_pretrain run, e.g. runs/pix2pixhd_512p_feat/E_latest.ckpt)"
        )
    if not cfg.dataroot:
        raise UserError("pass --dataroot DATA (the dataset the run was trained on)")
    env = init_env(cfg)
    model = build_model(cfg, env, training=False)
    folder, base = os.path.split(os.path.abspath(cfg.ckpt))
    e_path = cfg.ckpt if base.startswith("E") else os.path.join(folder, "E" + base[1:])
    ckpt.load_network(model.E, e_path, cfg.model, "E")
    model.E.set_train(False)
    source = model.make_source(cfg, cfg.phase, training=False)
    if source.image_paths is None:
        raise UserError(f"no photos for the {cfg.phase} split in {cfg.dataroot}; the encoder needs them")
    kind = segments_kind(cfg)
    cluster = cfg.phase == "train"
    per_label = {}
    for i in range(len(source)):
        sample = source.get(i, np.random.default_rng(0))
        image, seg = sample["image"], sample["segments"]
        feat = model.encode_features(image[None], seg[None])[0]
        ids, vectors = F.feature_table(feat, seg)
        F.save_feature_table(F.feature_file(cfg.dataroot, cfg.phase, source.names[i]), ids, vectors, kind)
        if cluster:
            for label, vecs in F.instance_features(feat, seg, MIN_AREA).items():
                per_label.setdefault(label, []).extend(vecs)
        if (i + 1) % 50 == 0 or i + 1 == len(source):
            log(f"[{i + 1}/{len(source)}] encoded")
    log(f"wrote {len(source)} feature files to {os.path.join(cfg.dataroot, cfg.phase + F.FEATURE_FOLDER_SUFFIX)}")
    if not cluster:
        log(f"phase {cfg.phase}: no clustering (clusters come from the train split)")
        return None
    centers = F.cluster_features(per_label, cfg.label_nc, cfg.feat_num, cfg.n_clusters, seed=int(cfg.seed))
    out = os.path.join(folder, F.cluster_file_name(cfg.n_clusters))
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, centers)
    classes = int((~np.isnan(centers[:, 0, 0])).sum())
    log(f"wrote {out}: {classes} classes with clusters, {sum(len(v) for v in per_label.values())} instances")
    return out


if __name__ == "__main__":
    sys.exit(main_wrapper(run))

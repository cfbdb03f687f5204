"""Cluster the encoded instance features of a pix2pixHD run (``instance_feat``/``label_feat``) for test time.

    python precompute_feature_maps.py --ckpt RUN/E_latest.ckpt [--dataroot DATA] [--phase train]

Encodes every image of the split with E (instance-wise averaged), takes one feature vector per instance that covers
at least ``MIN_AREA`` of the image, runs k-means (``n_clusters`` per semantic class, scipy ``kmeans2``) and writes
``RUN/features_clustered_<n_clusters:03d>.npy`` (``label_nc x n_clusters x feat_num``, NaN = unused), which eval.py
samples from unless ``--use_encoded_image``. The file is written only when everything succeeded.
"""

import os
import sys

import numpy as np

import src.device  # noqa: F401  (sets ONEDNN_MAX_CPU_ISA before MindSpore loads)
from src.cli import config_for_checkpoint, main_wrapper
from src.errors import UserError

MIN_AREA = 0.0005
"""Instances smaller than this fraction of the image are not clustered."""


def run(argv=None, log=print):
    from src.common import checkpoint as ckpt
    from src.common.fileio import atomic_path
    from src.device import init_env
    from src.models import build_model
    from src.pix2pixhd import features as F

    cfg, _ = config_for_checkpoint(argv, __doc__)
    cfg.run_distribute = False
    if cfg.model != "pix2pixhd":
        raise UserError(f"{cfg.ckpt} is a '{cfg.model}' checkpoint; precompute_feature_maps.py is for pix2pixhd runs")
    if not (cfg.instance_feat or cfg.label_feat):
        raise UserError(f"the run of {cfg.ckpt} uses no encoded features (instance_feat/label_feat are off)")
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
    per_label = {}
    for i in range(len(source)):
        inp, image, seg, _ = source.get(i, np.random.default_rng(0))
        feat = model.encode_features(image[None], seg[None])[0]
        for label, vecs in F.instance_features(feat, seg, MIN_AREA).items():
            per_label.setdefault(label, []).extend(vecs)
        if (i + 1) % 50 == 0 or i + 1 == len(source):
            log(f"[{i + 1}/{len(source)}] encoded")
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

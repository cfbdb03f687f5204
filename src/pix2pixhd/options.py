"""What pix2pixHD's config means: input channels, features, the regions they are averaged over, size multiples,
config checks, and the generator it builds. Plain functions of the config, shared by the model, its inference,
precompute_feature_maps.py and the PyTorch import."""

import math
import os

from src.errors import UserError
from src.pix2pixhd.networks import GlobalGenerator, LocalEnhancer


def label_channels(cfg):
    """Channels of the label input (one-hot + boundary map, or RGB for label_nc 0), without encoded features."""
    if cfg.label_nc == 0:
        return cfg.input_nc
    return cfg.label_nc + (0 if cfg.no_instance else 1)


def uses_features(cfg):
    return bool(cfg.instance_feat or cfg.label_feat)


def loads_features(cfg):
    """``load_features``: G's features come from precomputed per-image files instead of an encoder."""
    return uses_features(cfg) and bool(cfg.get("load_features", False))


def segments_kind(cfg):
    """The regions features are averaged over: ``label`` ids whenever ``label_feat`` is set (with ``instance_feat``
    too, as the reference's ``encode_input``, where ``inst_map = label_map`` wins), else ``instance`` ids."""
    return "label" if cfg.label_feat else "instance"


def check_config(cfg):
    if cfg.label_nc < 0:
        raise UserError(f"label_nc must be >= 0, got {cfg.label_nc}")
    if cfg.netG not in ("global", "local"):
        raise UserError(f"pix2pixhd netG must be global or local, got '{cfg.netG}'")
    if cfg.instance_feat and (cfg.no_instance or cfg.label_nc == 0):
        raise UserError("instance_feat needs instance maps: drop --no_instance (and use label maps, label_nc > 0)")
    if cfg.label_feat and cfg.label_nc == 0:
        raise UserError("label_feat needs label maps (label_nc > 0)")
    if cfg.num_D < 1:
        raise UserError(f"num_D must be >= 1, got {cfg.num_D}")
    if cfg.get("load_features", False) and not uses_features(cfg):
        raise UserError("load_features needs --instance_feat True (or --label_feat True): it loads encoded features")


def check_training_config(cfg):
    """Training-only checks (a run directory saved before such a check still evaluates)."""
    if cfg.pool_size != 0:
        raise UserError(
            f"pool_size {cfg.pool_size} is not supported by pix2pixhd, which has no image pool (the reference's "
            f"default, pool_size 0); valid values are: 0"
        )


def build_generator(cfg):
    in_nc = label_channels(cfg) + (cfg.feat_num if uses_features(cfg) else 0)
    if cfg.netG == "global":
        return GlobalGenerator(in_nc, cfg.output_nc, cfg.ngf, cfg.n_downsample_global, cfg.n_blocks_global, cfg.norm)
    return LocalEnhancer(
        in_nc,
        cfg.output_nc,
        cfg.ngf,
        cfg.n_downsample_global,
        cfg.n_blocks_global,
        cfg.n_local_enhancers,
        cfg.n_blocks_local,
        cfg.norm,
    )


def pretrain_path(cfg, network="G"):
    """The checkpoint ``load_pretrain`` points at: a file, or ``DIR/<network>_<which_epoch>.ckpt``."""
    path = cfg.load_pretrain
    if os.path.isdir(path):
        which = str(cfg.which_epoch)
        name = f"{network}_latest.ckpt" if which == "latest" else f"{network}_epoch_{int(which):03d}.ckpt"
        path = os.path.join(path, name)
    return path


def build_size_multiple(cfg):
    g = 2 ** (cfg.n_downsample_global + (cfg.n_local_enhancers if cfg.netG == "local" else 0))
    if uses_features(cfg) and not loads_features(cfg):
        e = 2**cfg.n_downsample_E
        return g * e // math.gcd(g, e)
    return g

"""Convert a reference PyTorch checkpoint into a MindSpore one that ``eval.py --ckpt`` uses directly.

``python export.py --convert_from_torch latest_net_G.pth --model pix2pix|cyclegan|pix2pixhd --out G.ckpt``
(``--convert_net E`` for the pix2pixHD feature encoder, ``--convert_net vgg19`` for torchvision's VGG19 weights).

The options the network needs (generator kind, ngf, depth, norm, padding, channels) are read off the tensor shapes;
options given on the command line must agree with them. The result carries those options in its metadata, so
``eval.py --ckpt G.ckpt`` rebuilds the same network with no other flag. Nothing is written unless every entry of
the file found its place and every parameter of ours got a value.
"""

import os

import numpy as np

from src.convert import torch_names as N
from src.convert.torch_reader import read_state_dict
from src.convert.vgg19 import convert_vgg19
from src.errors import UserError

NETWORKS = {"pix2pix": ("G",), "cyclegan": ("G_A", "G_B"), "pix2pixhd": ("G", "E")}


def _agree(cfg, inferred, path):
    """Options inferred from the file, checked against what the user set explicitly."""
    explicit = cfg.explicit
    for key, value in inferred.items():
        if key in explicit and str(explicit[key]).lower() != str(value).lower():
            raise UserError(
                f"--{key} {explicit[key]} was given, but {path} holds a network with {key} {value}; drop --{key}"
            )
        cfg[key] = value


def _pix2pixhd_channels(cfg, in_channels, path):
    """label_nc / no_instance / features must explain the generator's input channels."""
    from src.pix2pixhd.options import label_channels, uses_features

    explicit = cfg.explicit
    feats = cfg.feat_num if uses_features(cfg) else 0
    if "label_nc" not in explicit and cfg.label_nc > 0:  # infer label_nc, keeping the instance map choice
        cfg.label_nc = in_channels - feats - (0 if cfg.no_instance else 1)
    expected = label_channels(cfg) + feats
    if expected != in_channels or cfg.label_nc < 0:
        raise UserError(
            f"{path}: the generator takes {in_channels} input channels, but label_nc {cfg.label_nc}, no_instance "
            f"{cfg.no_instance}, features {feats} give {expected}; set --label_nc / --no_instance / --instance_feat "
            f"to the reference run's options"
        )


def build_network(cfg, state, path):
    """Our network for ``cfg.model`` / ``cfg.convert_net``, with options inferred from ``state``; and its layer map."""
    kind = N.detect_generator(state)
    net_name = cfg.convert_net
    if cfg.model == "pix2pixhd" and net_name == "E":
        from src.pix2pixhd.networks import Encoder

        opts = N.infer_hd_encoder(state, path)
        _agree(cfg, opts, path)
        net = Encoder(cfg.output_nc, cfg.feat_num, cfg.nef, cfg.n_downsample_E, cfg.norm)
        return net, N.hd_encoder_layers(cfg.n_downsample_E), opts
    if cfg.model == "pix2pixhd":
        from src.pix2pixhd.options import build_generator

        if kind not in ("local", "resnet_or_global"):
            raise UserError(f"{path} is not a pix2pixHD generator (found a {kind} layout); check --model")
        opts = N.infer_hd_local(state, path) if kind == "local" else N.infer_hd_global(state, path)
        in_channels = opts.pop("in_channels")
        _agree(cfg, opts, path)
        _pix2pixhd_channels(cfg, in_channels, path)
        opts.update(label_nc=cfg.label_nc, no_instance=cfg.no_instance)
        net = build_generator(cfg)
        if cfg.netG == "local":
            layers = N.hd_local_layers(cfg.n_downsample_global, cfg.n_blocks_global, cfg.n_local_enhancers,
                                       cfg.n_blocks_local)  # fmt: skip
        else:
            layers = N.hd_global_layers(cfg.n_downsample_global, cfg.n_blocks_global)
        return net, layers, opts
    if kind == "unet":
        opts = N.infer_unet(state, path)
    elif kind == "resnet_or_global" and cfg.model == "cyclegan":
        opts = N.infer_resnet(state, path)
    elif kind == "resnet_or_global":
        raise UserError(
            f"{path} holds a ResNet generator; pix2pix here uses U-Net generators: convert it with --model cyclegan "
            f"(same ResnetGenerator), or pass a U-Net checkpoint"
        )
    else:
        raise UserError(f"{path} is not a generator of {cfg.model} (found a {kind} layout); check --model")
    if cfg.model == "pix2pix":
        opts.pop("netG")
    _agree(cfg, opts, path)
    if cfg.model == "pix2pix":
        from src.pix2pix.model import build_generator

        net = build_generator(cfg)
    else:
        from src.cyclegan.model import build_generator

        nc_in, nc_out = cfg.input_nc, cfg.output_nc
        if net_name == "G_B":
            cfg.input_nc, cfg.output_nc = nc_out, nc_in  # the run's A side is G_B's output
            opts.update(input_nc=nc_out, output_nc=nc_in)
        net = build_generator(cfg.netG, nc_in, nc_out, cfg.ngf, cfg.g_layers, cfg.norm, cfg.use_dropout, cfg.pad_mode,
                              cfg.alpha)  # fmt: skip
    if cfg.model == "pix2pix" or cfg.netG == "unet":  # pix2pix has no netG key
        layers = N.unet_layers(cfg.g_layers)
    else:
        layers = N.resnet_layers(cfg.g_layers, cfg.use_dropout, cfg.pad_mode == "CONSTANT")
    return net, layers, opts


def convert_generator(cfg, state, path, out):
    """Map, load and save one generator (or encoder); returns (network, metadata)."""
    from src.common.checkpoint import FORMAT_VERSION, load_into, save_with_meta

    network = cfg.convert_net
    if network == "G" and cfg.model == "cyclegan":
        network = "G_A"
    if network not in NETWORKS[cfg.model]:
        raise UserError(
            f"--convert_net {cfg.convert_net} is not a network of {cfg.model}; valid: "
            f"{', '.join(NETWORKS[cfg.model] + ('vgg19',))}"
        )
    cfg.convert_net = network
    net, layers, opts = build_network(cfg, state, path)
    own = [p.name for p in net.get_parameters()]
    mapped = N.map_state_dict(state, layers, own, path, f"the {cfg.model} {network} built with {_describe(opts)}")
    load_into(net, {k: v.astype(np.float32) for k, v in mapped.items()}, path, f"{cfg.model} network {network}")
    net.update_parameters_name(f"{network}.")  # the models' naming: G.model..., G_A.model..., E.model...
    config = {k: v for k, v in opts.items()}
    config["model"] = cfg.model
    meta = dict(model=cfg.model, network=network, epoch=0, global_step=0, version=FORMAT_VERSION,
                converted_from=os.path.basename(path), config=config)  # fmt: skip
    save_with_meta([{"name": p.name, "data": p} for p in net.get_parameters()], out, meta)
    return net, meta


def _describe(opts):
    return ", ".join(f"{k} {v}" for k, v in opts.items() if k not in ("model",))


def run_conversion(cfg):
    """The ``--convert_from_torch`` command (see the module docstring)."""
    path = cfg.convert_from_torch
    if not os.path.isfile(path):
        raise UserError(f"PyTorch checkpoint not found: {path}")
    out = cfg.out or os.path.splitext(os.path.basename(path))[0] + ".ckpt"
    if os.path.abspath(out) == os.path.abspath(path):
        raise UserError(f"--out {out} would overwrite the input; pass another file name")
    if os.path.isdir(out):
        raise UserError(f"--out {out} is a folder; pass a file name such as {os.path.join(out, 'G.ckpt')}")
    state = read_state_dict(path)
    if cfg.convert_net == "vgg19":
        n, ignored = convert_vgg19(state, path, out)
        print(f"converted {path} -> {out}: {n} VGG19 tensors; ignored {len(ignored)} classifier entries")
        print(f"use it with: python train.py --model pix2pixhd --vgg_pre_trained {out} ...")
        return out
    _, meta = convert_generator(cfg, state, path, out)
    print(f"converted {path} -> {out}: {cfg.model} {meta['network']} ({_describe(meta['config'])})")
    print(f"use it with: python eval.py --ckpt {out} --input IMAGES (or --dataroot DATA)")
    return out

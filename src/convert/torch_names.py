"""State-dict names of the reference PyTorch networks -> parameter names of ours, and options read off the shapes.

Each ``*_layers`` function lists the parameter-bearing layers of one architecture as ``(torch prefix, our prefix,
kind)``, ``kind`` being ``conv`` (weight, bias) or ``norm``. The references are junyanz/pytorch-CycleGAN-and-pix2pix
(``UnetGenerator``, ``ResnetGenerator``), NVIDIA/pix2pixHD (``GlobalGenerator``, ``LocalEnhancer``, ``Encoder``) and
torchvision's ``vgg19``. Layouts differ from ours in a few places: the U-Net keeps its encoder LeakyReLU outside the
sequence (indices shift by one) and names the down conv; pix2pixHD's output head is ``head`` here and its local
branches ``local_down.N`` / ``local_up.N``; the reference's zero-padded ResNet blocks pad inside the conv where ours
have an explicit pad layer.

``infer_*`` read the options (ngf, depth, norm, padding, channels) from the tensor shapes.
"""

import re

from src.errors import UserError

# PyTorch batch-norm entries -> MindSpore BatchNorm2d parameters
BN_NAMES = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}
# entries that carry no weights of ours: the batch counter, and the running statistics that PyTorch < 0.4 stored
# for InstanceNorm2d (the reference drops them too when it loads such a file)
DROPPABLE = ("num_batches_tracked", "running_mean", "running_var")


# ---------------------------------------------------------------------------------------------------------------
# layer lists
def unet_layers(num_downs):
    """junyanz ``UnetGenerator``: nested ``UnetSkipConnectionBlock``s, outermost first."""
    layers = []
    t, m = "model.model.", "model."  # torch sequence prefix, our block prefix
    layers += [(t + "0", m + "down_conv", "conv"), (t + "3", m + "model.3", "conv")]
    t, m = t + "1.model.", m + "model.1."
    for _ in range(num_downs - 2):  # middle levels: [relu, conv, norm, sub, relu, convT, norm, (dropout)]
        layers += [
            (t + "1", m + "down_conv", "conv"),
            (t + "2", m + "model.1", "norm"),
            (t + "5", m + "model.4", "conv"),
            (t + "6", m + "model.5", "norm"),
        ]
        t, m = t + "3.model.", m + "model.2."
    # innermost: [relu, conv, relu, convT, norm]
    layers += [(t + "1", m + "down_conv", "conv"), (t + "3", m + "model.2", "conv"), (t + "4", m + "model.3", "norm")]
    return layers


def _block_layers(t_prefix, m_prefix, t_first, use_dropout, zero_pad, m_block="conv_block"):
    """One residual block: torch indices with or without pad layers; ours always pad explicitly."""
    second = 4 if use_dropout else 3  # index of the second conv counted from the first conv
    t0 = 0 if zero_pad else 1
    t_second = t0 + second + (0 if zero_pad else 1)
    m0, m_second = 1, 1 + second + 1
    return [
        (f"{t_prefix}{t_first}.conv_block.{t0}", f"{m_prefix}.{m_block}.{m0}", "conv"),
        (f"{t_prefix}{t_first}.conv_block.{t0 + 1}", f"{m_prefix}.{m_block}.{m0 + 1}", "norm"),
        (f"{t_prefix}{t_first}.conv_block.{t_second}", f"{m_prefix}.{m_block}.{m_second}", "conv"),
        (f"{t_prefix}{t_first}.conv_block.{t_second + 1}", f"{m_prefix}.{m_block}.{m_second + 1}", "norm"),
    ]


def _encoder_decoder_layers(t, m, n_down, n_blocks, block_name, use_dropout=False, zero_pad=False):
    """c7s1 + n_down stride-2 convs + residual blocks + n_down transposed convs (same indices in both layouts)."""
    layers = [(f"{t}1", f"{m}1", "conv"), (f"{t}2", f"{m}2", "norm")]
    for i in range(n_down):
        layers += [(f"{t}{4 + 3 * i}", f"{m}{4 + 3 * i}", "conv"), (f"{t}{5 + 3 * i}", f"{m}{5 + 3 * i}", "norm")]
    first = 4 + 3 * n_down
    for b in range(n_blocks):
        layers += _block_layers(t, f"{m}{first + b}", first + b, use_dropout, zero_pad, block_name)
    up = first + n_blocks
    for i in range(n_down):
        layers += [
            (f"{t}{up + 3 * i}", f"{m}{up + 3 * i}", "conv"),
            (f"{t}{up + 3 * i + 1}", f"{m}{up + 3 * i + 1}", "norm"),
        ]
    return layers, up + 3 * n_down


def resnet_layers(n_blocks, use_dropout=False, zero_pad=False):
    """junyanz ``ResnetGenerator`` (two downsamplings)."""
    layers, end = _encoder_decoder_layers("model.", "model.", 2, n_blocks, "conv_block", use_dropout, zero_pad)
    return layers + [(f"model.{end + 1}", f"model.{end + 1}", "conv")]


def hd_global_layers(n_down, n_blocks):
    """NVIDIA ``GlobalGenerator``: the output head (pad, conv, tanh) is ``head`` here."""
    layers, end = _encoder_decoder_layers("model.", "model.", n_down, n_blocks, "block")
    return layers + [(f"model.{end + 1}", "head.1", "conv")]


def hd_local_layers(n_down, n_blocks, n_local, n_blocks_local):
    """NVIDIA ``LocalEnhancer``: the global generator without its head, then ``model{n}_1`` / ``model{n}_2``."""
    layers, _ = _encoder_decoder_layers("model.", "model.", n_down, n_blocks, "block")
    for n in range(1, n_local + 1):
        t, m = f"model{n}_1.", f"local_down.{n - 1}."
        layers += [(t + i, m + i, k) for i, k in (("1", "conv"), ("2", "norm"), ("4", "conv"), ("5", "norm"))]
        t, m = f"model{n}_2.", f"local_up.{n - 1}."
        for b in range(n_blocks_local):
            layers += _block_layers(t, f"{m}{b}", b, False, False, "block")
        j = n_blocks_local
        layers += [(f"{t}{j}", f"{m}{j}", "conv"), (f"{t}{j + 1}", f"{m}{j + 1}", "norm")]
        if n == n_local:
            layers.append((f"{t}{j + 4}", f"{m}{j + 4}", "conv"))
    return layers


def hd_encoder_layers(n_down):
    """NVIDIA ``Encoder`` (no residual blocks)."""
    layers, end = _encoder_decoder_layers("model.", "model.", n_down, 0, "block")
    return layers + [(f"model.{end + 1}", f"model.{end + 1}", "conv")]


# torchvision vgg19 ``features`` indices of the 16 convs, and the 13 our VGG19Features uses (up to conv5_1)
VGG19_CONVS = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)
VGG19_WIDTHS = (64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512)


# ---------------------------------------------------------------------------------------------------------------
# mapping
def map_state_dict(state, layers, own_names, path, what):
    """``{our name: array}`` for ``state`` under ``layers``; unmapped or missing names are a UserError listing them."""
    own = set(own_names)
    mapped, used = {}, set()
    for t_prefix, m_prefix, kind in layers:
        for key in [k for k in state if k.startswith(t_prefix + ".") and "." not in k[len(t_prefix) + 1 :]]:
            leaf = key[len(t_prefix) + 1 :]
            if kind == "conv" and leaf in ("weight", "bias"):
                target = f"{m_prefix}.{leaf}"
            elif kind == "norm" and leaf in BN_NAMES and f"{m_prefix}.{BN_NAMES[leaf]}" in own:
                target = f"{m_prefix}.{BN_NAMES[leaf]}"
            elif kind == "norm" and leaf in DROPPABLE:
                used.add(key)
                continue
            else:
                continue
            mapped[target] = state[key]
            used.add(key)
    unmapped = [k for k in state if k not in used]
    missing = sorted(own - set(mapped))
    extra = sorted(set(mapped) - own)
    if unmapped or missing or extra:
        parts = []
        if unmapped:
            parts.append(f"{len(unmapped)} entries of the file have no place in it: {_some(unmapped)}")
        if missing:
            parts.append(f"{len(missing)} of its parameters get no value: {_some(missing)}")
        if extra:
            parts.append(f"{len(extra)} mapped names do not exist in it: {_some(extra)}")
        raise UserError(
            f"{path} does not fit {what}: {'; '.join(parts)}. Is it a checkpoint of this architecture? Check --model, "
            f"--netG and the options (or let them be inferred)"
        )
    return mapped


def _some(names, n=4):
    shown = ", ".join(names[:n])
    return shown + (f", ... (+{len(names) - n})" if len(names) > n else "")


# ---------------------------------------------------------------------------------------------------------------
# option inference
def _weight(state, key, path):
    if key not in state:
        raise UserError(f"{path}: expected entry '{key}' is missing; it is not a checkpoint of this generator")
    return state[key]


def _has_batch_norm(state, norm_prefix):
    return f"{norm_prefix}.weight" in state and f"{norm_prefix}.running_mean" in state


def infer_norm_and_bias(state, first_conv, first_norm):
    """``batch`` when the first norm layer has affine weights and statistics; else ``instance`` (convs with bias,
    as the references build them) or ``none`` (no bias)."""
    if _has_batch_norm(state, first_norm):
        return "batch"
    return "instance" if f"{first_conv}.bias" in state else "none"


def detect_generator(state):
    """``unet``, ``resnet``, ``global`` or ``local`` from the key layout."""
    keys = list(state)
    if any(k.startswith("model1_1.") for k in keys):
        return "local"
    if any(k.startswith("model.model.") for k in keys):
        return "unet"
    if any(".conv_block." in k for k in keys) or "model.1.weight" in state:
        return "resnet_or_global"
    return "unknown"


def infer_unet(state, path):
    first = _weight(state, "model.model.0.weight", path)
    depth, prefix = 1, "model.model.1.model."
    while any(k.startswith(prefix) for k in state):
        depth += 1
        prefix += "3.model."
    last = _weight(state, "model.model.3.weight", path)  # ConvTranspose2d: in, out, kh, kw
    norm = infer_norm_and_bias(state, "model.model.1.model.1", "model.model.1.model.2")
    return dict(netG="unet", g_layers=depth, ngf=int(first.shape[0]), input_nc=int(first.shape[1]),
                output_nc=int(last.shape[1]), norm=norm)  # fmt: skip


def _block_ids(state, prefix):
    ids = set()
    for k in state:
        m = re.match(re.escape(prefix) + r"(\d+)\.conv_block\.", k)
        if m:
            ids.add(int(m.group(1)))
    return sorted(ids)


def _block_convs(state, prefix, block):
    """Indices of the conv weights inside one residual block."""
    ids = set()
    for k, v in state.items():
        m = re.match(re.escape(f"{prefix}{block}.conv_block.") + r"(\d+)\.weight$", k)
        if m and getattr(v, "ndim", 0) == 4:
            ids.add(int(m.group(1)))
    return sorted(ids)


def _count_downsamplings(state, first_block):
    if (first_block - 4) % 3 or first_block < 4:
        return None
    return (first_block - 4) // 3


def infer_resnet(state, path):
    """junyanz ResnetGenerator: blocks, ngf, channels, norm, zero vs reflect padding, dropout."""
    blocks = _block_ids(state, "model.")
    first = _weight(state, "model.1.weight", path)
    if blocks and blocks[0] != 10:
        raise UserError(
            f"{path}: residual blocks start at model.{blocks[0]}; a CycleGAN ResNet generator has them at 10"
        )
    n = len(blocks)
    convs = _block_convs(state, "model.", blocks[0]) if blocks else [1, 5]
    zero_pad = bool(convs) and convs[0] == 0
    use_dropout = len(convs) == 2 and convs[1] - convs[0] == (4 if zero_pad else 5)
    last = _weight(state, f"model.{10 + n + 7}.weight", path)
    norm = infer_norm_and_bias(state, "model.1", "model.2")
    return dict(netG="resnet", g_layers=n, ngf=int(first.shape[0]), input_nc=int(first.shape[1]),
                output_nc=int(last.shape[0]), norm=norm, pad_mode="CONSTANT" if zero_pad else "REFLECT",
                use_dropout=use_dropout)  # fmt: skip


def infer_hd_global(state, path):
    blocks = _block_ids(state, "model.")
    first = _weight(state, "model.1.weight", path)
    if not blocks:
        raise UserError(f"{path}: no residual blocks found; not a pix2pixHD global generator")
    n_down = _count_downsamplings(state, blocks[0])
    if n_down is None:
        raise UserError(f"{path}: residual blocks start at model.{blocks[0]}; not a pix2pixHD global generator")
    end = blocks[0] + len(blocks) + 3 * n_down
    last = _weight(state, f"model.{end + 1}.weight", path)
    return dict(netG="global", ngf=int(first.shape[0]), n_downsample_global=n_down, n_blocks_global=len(blocks),
                in_channels=int(first.shape[1]), output_nc=int(last.shape[0]),
                norm=infer_norm_and_bias(state, "model.1", "model.2"))  # fmt: skip


def infer_hd_local(state, path):
    n_local = 0
    while any(k.startswith(f"model{n_local + 1}_1.") for k in state):
        n_local += 1
    blocks = _block_ids(state, "model.")
    if not blocks:
        raise UserError(f"{path}: no residual blocks in the global part; not a pix2pixHD local enhancer")
    n_down = _count_downsamplings(state, blocks[0])
    if n_down is None:
        raise UserError(f"{path}: residual blocks start at model.{blocks[0]}; not a pix2pixHD local enhancer")
    finest = _weight(state, f"model{n_local}_1.1.weight", path)
    n_blocks_local = len(_block_ids(state, f"model{n_local}_2."))
    last = _weight(state, f"model{n_local}_2.{n_blocks_local + 4}.weight", path)
    return dict(netG="local", ngf=int(finest.shape[0]), n_downsample_global=n_down, n_blocks_global=len(blocks),
                n_local_enhancers=n_local, n_blocks_local=n_blocks_local, in_channels=int(finest.shape[1]),
                output_nc=int(last.shape[0]), norm=infer_norm_and_bias(state, "model.1", "model.2"))  # fmt: skip


def infer_hd_encoder(state, path):
    first = _weight(state, "model.1.weight", path)
    n_down, i = 0, 4
    while (
        f"model.{i}.weight" in state
        and state[f"model.{i}.weight"].shape[0] == 2 * state[f"model.{i - 3}.weight"].shape[0]
    ):
        n_down += 1
        i += 3
    last = _weight(state, f"model.{4 + 6 * n_down + 1}.weight", path)
    return dict(nef=int(first.shape[0]), n_downsample_E=n_down, output_nc=int(first.shape[1]),
                feat_num=int(last.shape[0]), norm=infer_norm_and_bias(state, "model.1", "model.2"))  # fmt: skip


def patchgan_layers(n_layers):
    """junyanz ``NLayerDiscriminator``: one ``model`` sequence, the same indices as ours ([conv, lrelu], then
    [conv, norm, lrelu] per layer, then the last conv)."""
    layers = [("model.0", "model.0", "conv")]
    for n in range(1, n_layers + 1):
        layers += [(f"model.{3 * n - 1}", f"model.{3 * n - 1}", "conv"), (f"model.{3 * n}", f"model.{3 * n}", "norm")]
    return layers + [(f"model.{3 * n_layers + 2}", f"model.{3 * n_layers + 2}", "conv")]


def hd_multiscale_d_layers(num_D, n_layers):
    """NVIDIA ``MultiscaleDiscriminator`` (``getIntermFeat``): ``scale{s}_layer{j}`` sequences, the finest input
    judged by the last scale (``s = num_D - 1``); ours count ``nets.{i}`` from the finest, so ``i = num_D - 1 - s``."""
    layers = []
    for i in range(num_D):
        t, m = f"scale{num_D - 1 - i}_layer", f"nets.{i}.blocks."
        layers.append((f"{t}0.0", f"{m}0.0", "conv"))
        for j in range(1, n_layers + 1):
            layers += [(f"{t}{j}.0", f"{m}{j}.0", "conv"), (f"{t}{j}.1", f"{m}{j}.1", "norm")]
        layers.append((f"{t}{n_layers + 1}.0", f"{m}{n_layers + 1}.0", "conv"))
    return layers

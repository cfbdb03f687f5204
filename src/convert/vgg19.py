"""torchvision's VGG19 state dict (``vgg19-dcbb9e9d.pth``) -> the tensors pix2pixHD's VGG loss reads.

A converter with no model behind it: :mod:`src.pix2pixhd.losses` reads a ``.pth`` through it, and
``--convert_from_torch`` writes it as a MindSpore checkpoint.
"""

import os

import numpy as np

from src.convert import torch_names as N
from src.errors import UserError


def vgg19_tensors(state, path):
    """torchvision ``vgg19`` (or ``vgg19_bn``) state dict -> ``{name: Tensor}`` in the layout ``load_vgg19`` reads
    (conv ``features.N.weight/bias``; batch norms as ``gamma/beta/moving_mean/moving_variance``). The classifier
    is left out."""
    from mindspore import Tensor

    convs = [k for k, v in state.items() if k.startswith("features.") and k.endswith(".weight") and v.ndim == 4]
    widths = [state[k].shape[0] for k in convs]
    if len(convs) != 16 or tuple(widths) != N.VGG19_WIDTHS:
        raise UserError(
            f"{path} is not a torchvision VGG19 state dict: found {len(convs)} conv layers with widths "
            f"{_some_widths(widths)}, expected 16 with {', '.join(map(str, N.VGG19_WIDTHS[:5]))} ... "
            f"(vgg19 or vgg19_bn)"
        )
    tensors = {}
    for key, value in state.items():
        if not key.startswith("features.") or key.endswith("num_batches_tracked"):
            continue
        layer, leaf = key.rsplit(".", 1)
        is_bn = value.ndim == 1 and f"{layer}.running_mean" in state
        if is_bn and leaf not in N.BN_NAMES:
            continue
        name = f"{layer}.{N.BN_NAMES[leaf]}" if is_bn else key
        tensors[name] = Tensor(np.ascontiguousarray(value, np.float32))
    return tensors


def convert_vgg19(state, path, out):
    """Write :func:`vgg19_tensors` as a MindSpore checkpoint for ``--vgg_pre_trained``."""
    from src.common.checkpoint import FORMAT_VERSION, save_with_meta

    tensors = vgg19_tensors(state, path)
    ignored = [k for k in state if not k.startswith("features.")]
    meta = dict(model="vgg19", network="vgg19", version=FORMAT_VERSION, converted_from=os.path.basename(path))
    save_with_meta([{"name": k, "data": v} for k, v in tensors.items()], out, meta)
    return len(tensors), ignored


def _some_widths(shapes):
    return ", ".join(str(s) for s in shapes[:6]) + (" ..." if len(shapes) > 6 else "")

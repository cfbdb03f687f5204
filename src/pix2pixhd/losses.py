"""pix2pixHD losses: multi-scale GAN loss, discriminator feature matching, VGG19 perceptual loss.

- GAN: LSGAN (``no_lsgan`` = vanilla BCE) on the last output of every scale, summed over the scales.
- Feature matching: L1 between the discriminator features of fake and (detached) real, every block but the last,
  weighted ``4 / (n_layers_D + 1)`` per layer, ``1 / num_D`` per scale, times ``lambda_feat``.
- VGG: L1 between VGG19 features of fake and (detached) real after relu1_1, relu2_1, relu3_1, relu4_1, relu5_1,
  weighted 1/32, 1/16, 1/8, 1/4, 1, times ``lambda_feat``. The VGG19 weights come from a MindSpore checkpoint the
  user supplies (``vgg_pre_trained``); nothing is downloaded.
"""

import os
import re

import numpy as np
from mindspore import nn, ops

from src.common.layers import conv2d
from src.common.losses import lsgan_loss, vanilla_gan_loss
from src.errors import UserError

VGG_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)
# VGG19 conv widths up to conv5_1, grouped into the five slices that end at relu1_1 .. relu5_1.
VGG_SLICES = ((64,), (64, "M", 128), (128, "M", 256), (256, 256, 256, "M", 512), (512, 512, 512, "M", 512))


def multiscale_gan_loss(no_lsgan):
    """``loss(pred, target_is_real)`` over a multi-scale D output (list of per-scale feature lists)."""
    base = vanilla_gan_loss if no_lsgan else lsgan_loss

    def loss(pred, target_is_real):
        total = 0.0
        for scale in pred:
            total = total + base(scale[-1], target_is_real)
        return total

    return loss


def feature_matching_loss(pred_fake, pred_real, num_D, n_layers_D, lambda_feat):
    """Discriminator feature matching (see the module docstring); ``pred_real`` is detached here."""
    feat_weight = 4.0 / (n_layers_D + 1)
    d_weight = 1.0 / num_D
    total = 0.0
    for i in range(num_D):
        for j in range(len(pred_fake[i]) - 1):
            diff = ops.abs(pred_fake[i][j] - ops.stop_gradient(pred_real[i][j])).mean()
            total = total + diff * (d_weight * feat_weight * lambda_feat)
    return total


class VGG19Features(nn.Cell):
    """VGG19 convolutions up to relu5_1 (torchvision ``features[0:30]`` layout); returns the five slice outputs.

    Parameters are frozen (``requires_grad False``); gradients still flow to the input.
    """

    def __init__(self):
        super().__init__()
        slices, in_ch = [], 3
        for spec in VGG_SLICES:
            layers = []
            for item in spec:
                if item == "M":
                    layers.append(nn.MaxPool2d(2, 2))
                else:
                    layers += [conv2d(in_ch, item, 3, 1, 1, has_bias=True), nn.ReLU()]
                    in_ch = item
            slices.append(nn.SequentialCell(layers))
        self.slices = nn.CellList(slices)
        for p in self.get_parameters():
            p.requires_grad = False

    def construct(self, x):
        outs = []
        for s in self.slices:
            x = s(x)
            outs.append(x)
        return outs

    def conv_layers(self):
        return [c for _, c in self.cells_and_names() if isinstance(c, nn.Conv2d)]


def _natural_key(name):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def load_vgg19(net, path):
    """Load VGG19 conv weights from a MindSpore checkpoint (e.g. the model zoo's ``vgg19`` ImageNet checkpoint, or
    one converted from torchvision with ``export.py --convert_from_torch vgg19.pth --convert_net vgg19``), or
    directly from torchvision's ``vgg19-*.pth``.

    The first 13 3x3 conv weights in the file (in layer order) with the VGG19 shapes are used, with their biases;
    classifier and batch-norm entries are ignored.
    """
    if not path or not os.path.isfile(path):
        raise UserError(
            f"VGG19 checkpoint not found: '{path}'. The VGG perceptual loss needs ImageNet VGG19 weights: the model "
            f"zoo's vgg19 MindSpore checkpoint or torchvision's vgg19-dcbb9e9d.pth (see README, pix2pixHD); pass "
            f"--vgg_pre_trained PATH, or train without it with --no_vgg_loss True"
        )
    from src.common.checkpoint import read_checkpoint
    from src.common.tensors import assign

    if path.endswith((".pth", ".pt")):  # torchvision's vgg19 state dict, read without PyTorch
        from src.convert.torch_reader import read_state_dict
        from src.convert.vgg19 import vgg19_tensors

        params = vgg19_tensors(read_state_dict(path), path)
    else:
        params = read_checkpoint(path)
    convs = net.conv_layers()
    weights = [k for k, v in params.items() if hasattr(v, "shape") and len(v.shape) == 4 and v.shape[2:] == (3, 3)]
    weights.sort(key=_natural_key)
    if len(weights) < len(convs):
        raise UserError(f"{path} holds {len(weights)} 3x3 conv weights; a VGG19 checkpoint has at least 16")
    for conv, key in zip(convs, weights):
        w = params[key]
        if tuple(w.shape) != tuple(conv.weight.shape):
            raise UserError(
                f"{path} is not a VGG19 checkpoint: {key} has shape {tuple(w.shape)}, expected "
                f"{tuple(conv.weight.shape)}"
            )
        w = w.asnumpy().astype(np.float64)
        bias_key = key[: -len("weight")] + "bias" if key.endswith("weight") else None
        b = params[bias_key].asnumpy().astype(np.float64) if bias_key in params else np.zeros(w.shape[0])
        bn = _following_batch_norm(params, key)
        if bn is not None:  # a VGG19-BN checkpoint: fold the (inference) batch norm into the conv
            gamma, beta, mean, var = (params[bn + k].asnumpy().astype(np.float64) for k in _BN_KEYS)
            scale = gamma / np.sqrt(var + 1e-5)
            w, b = w * scale[:, None, None, None], (b - mean) * scale + beta
        assign(conv.weight, w.astype(np.float32))
        assign(conv.bias, b.astype(np.float32))
    return net


_BN_KEYS = ("gamma", "beta", "moving_mean", "moving_variance")


def _following_batch_norm(params, weight_key):
    """Prefix of the batch norm right after the conv ``weight_key`` (``layers.3.weight`` -> ``layers.4.``), if any."""
    parts = weight_key.split(".")
    if len(parts) < 3 or not parts[-2].isdigit():
        return None
    prefix = ".".join(parts[:-2] + [str(int(parts[-2]) + 1)]) + "."
    return prefix if all(prefix + k in params for k in _BN_KEYS) else None


def vgg_feature_loss(f_fake, f_real, lambda_feat):
    """VGG19 perceptual loss (see the module docstring) from the fake's and the real image's ``VGG19Features``
    outputs (the real ones as constants)."""
    total = 0.0
    for w, a, b in zip(VGG_WEIGHTS, f_fake, f_real):
        total = total + ops.abs(a - ops.stop_gradient(b)).mean() * w
    return total * lambda_feat

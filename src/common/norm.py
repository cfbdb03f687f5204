"""Normalisation layers and the factory that picks one by name.

MindSpore 2.8 has no CPU kernel for ``nn.InstanceNorm2d``, so :class:`InstanceNorm2d` is batch norm with batch
statistics over the ``(1, N*C, H, W)`` view (:func:`instance_norm_via_batch_norm`); it runs on every device and is what
all three models use.
"""

import mindspore as ms
from mindspore import nn, ops

from src.errors import UserError

NORMS = ("batch", "instance", "none")


class InstanceNorm2d(nn.Cell):
    """Instance normalisation over H and W of an NCHW tensor (biased variance, like PyTorch).

    ``affine=False`` (the default, as in the pix2pix/CycleGAN/pix2pixHD references) has no parameters.
    """

    def __init__(self, num_features, eps=1e-5, affine=False):
        super().__init__()
        self.eps = eps
        self.affine = affine
        self.export_friendly = False  # set by src.common.layers.set_export_friendly for ONNX export
        if affine:
            self.gamma = ms.Parameter(ops.ones((1, num_features, 1, 1), ms.float32), name="gamma")
            self.beta = ms.Parameter(ops.zeros((1, num_features, 1, 1), ms.float32), name="beta")

    def construct(self, x):
        if self.export_friendly:  # for ONNX export: the same values from mean/variance ops
            mean = x.mean(axis=(2, 3), keep_dims=True)
            centred = x - mean
            out = centred / ops.sqrt((centred * centred).mean(axis=(2, 3), keep_dims=True) + self.eps)
        else:
            out = instance_norm_via_batch_norm(x, self.eps)
        if self.affine:
            out = out * self.gamma + self.beta
        return out


def instance_norm_via_batch_norm(x, eps=1e-5):
    """Instance norm as batch norm (batch statistics) over ``(1, N*C, H, W)``: each (sample, channel) plane is one
    "channel". MindSpore's CPU batch norm (oneDNN) is about 4x faster forward+backward than ``ops.group_norm`` with
    one group per channel (measured: 64x256x256, 23 vs 83 ms).

    Batch norm updates its running-statistics inputs in place; here they are scratch tensors that are thrown away.
    They must not hold the same values as the affine ``weight`` (ones) and ``bias`` (zeros): in a compiled graph,
    equal constants of equal shape are merged into one tensor, and the in-place update would then overwrite the
    scale and shift of this and every other instance norm of that size (measured: wrong losses and gradients under
    ``jit`` + ``value_and_grad``, right ones in PyNative; tests/test_networks.py checks both modes). The running
    statistics therefore start at 0.5 and 2.0, values nothing reads in training mode.
    """
    n, c, h, w = x.shape
    scratch_mean = ops.full((n * c,), 0.5, dtype=x.dtype)
    scratch_var = ops.full((n * c,), 2.0, dtype=x.dtype)
    weight = ops.ones((n * c,), x.dtype)
    bias = ops.zeros((n * c,), x.dtype)
    y = ops.batch_norm(x.reshape(1, n * c, h, w), scratch_mean, scratch_var, weight, bias, True, 0.1, eps)
    return y.reshape(n, c, h, w)


class Identity(nn.Cell):
    """Returns its input (``norm: none``)."""

    def construct(self, x):
        return x


def make_norm(kind, num_features):
    """A normalisation Cell by name: ``batch`` (PyTorch defaults: momentum 0.1, eps 1e-5), ``instance``, ``none``."""
    if kind == "batch":
        # MindSpore's momentum is the weight of the old statistics: 1 - PyTorch's 0.1.
        return nn.BatchNorm2d(num_features, eps=1e-5, momentum=0.9)
    if kind == "instance":
        return InstanceNorm2d(num_features)
    if kind == "none":
        return Identity()
    raise UserError(f"unknown norm '{kind}'; valid norms are: {', '.join(NORMS)}")


def conv_has_bias(kind):
    """As the pix2pix/CycleGAN reference: convs have a bias only before instance norm (batch norm's beta is one;
    with ``none`` the reference builds them without bias too, ``use_bias = norm_layer == InstanceNorm2d``)."""
    return kind == "instance"

"""Weight initialisation as in the reference implementations (``init_weights`` of pytorch-CycleGAN-and-pix2pix).

Conv and dense weights: normal(0, gain), xavier-normal(gain), kaiming-normal (fan-in, a=0), orthogonal(gain) or
truncated normal(gain); their biases zero (``bias_init="zeros"``, junyanz's ``init_weights``) or left at PyTorch's
default, uniform in +-1/sqrt(fan_in) (``bias_init="torch_default"``: NVIDIA pix2pixHD's ``weights_init`` sets only the
conv weights). Batch-norm scale ~ normal(1, gain), shift zero. Instance norm without affine parameters has nothing
to initialise.
"""

import math

import numpy as np
from mindspore import nn
from mindspore.common import initializer as init

from src.errors import UserError

INIT_TYPES = ("normal", "xavier", "kaiming", "orthogonal", "trunc_normal")
BIAS_INITS = ("zeros", "torch_default")


def _weight_initializer(init_type, gain):
    if init_type == "normal":
        return init.Normal(sigma=gain, mean=0.0)
    if init_type == "xavier":
        return init.XavierNormal(gain=gain)
    if init_type == "kaiming":
        return init.HeNormal(negative_slope=0, mode="fan_in", nonlinearity="leaky_relu")
    if init_type == "orthogonal":
        return init.Orthogonal(gain=gain)
    if init_type == "trunc_normal":
        # Truncated at two standard deviations (MindSpore's a/b are absolute bounds, default +-2).
        return init.TruncatedNormal(sigma=gain, a=-2.0 * gain, b=2.0 * gain)
    raise UserError(f"unknown init_type '{init_type}'; valid types are: {', '.join(INIT_TYPES)}")


def torch_default_bias_bound(weight_shape):
    """PyTorch's default bias bound of a conv / transposed conv / dense layer: 1 / sqrt(fan_in), where fan_in is
    ``weight.shape[1] * prod(kernel)`` (MindSpore's weight layouts equal PyTorch's, transposed conv included)."""
    fan_in = int(np.prod(weight_shape[1:]))
    return 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0


def init_weights(net, init_type="normal", init_gain=0.02, bias_init="zeros"):
    """Initialise every conv / transposed conv / dense / batch-norm layer of ``net`` in place; returns ``net``.

    ``bias_init``: ``zeros`` (pix2pix, CycleGAN) or ``torch_default`` (pix2pixHD; see the module docstring).
    """
    if bias_init not in BIAS_INITS:
        raise UserError(f"unknown bias_init '{bias_init}'; valid values are: {', '.join(BIAS_INITS)}")
    weight_init = _weight_initializer(init_type, init_gain)
    for _, cell in net.cells_and_names():
        if isinstance(cell, (nn.Conv2d, nn.Conv2dTranspose, nn.Dense, nn.Conv1d)):
            cell.weight.set_data(init.initializer(weight_init, cell.weight.shape, cell.weight.dtype))
            bias = getattr(cell, "bias", None)
            if bias is not None:
                if bias_init == "zeros":
                    bias_values = "zeros"
                else:
                    bias_values = init.Uniform(scale=torch_default_bias_bound(cell.weight.shape))
                bias.set_data(init.initializer(bias_values, bias.shape, bias.dtype))
        elif isinstance(cell, nn.BatchNorm2d):
            cell.gamma.set_data(init.initializer(init.Normal(sigma=init_gain, mean=1.0), cell.gamma.shape))
            cell.beta.set_data(init.initializer("zeros", cell.beta.shape))
    return net


def count_params(net, trainable_only=True):
    """Number of parameters (trainable by default, as the references count them)."""
    params = net.trainable_params() if trainable_only else net.get_parameters()
    return int(sum(int(np.prod(p.shape)) if p.shape else 1 for p in params))


def fan_in_std(shape):
    """He-normal std for a conv weight of ``shape`` (out, in, kh, kw); used by tests."""
    fan_in = int(np.prod(shape[1:]))
    return math.sqrt(2.0 / fan_in)

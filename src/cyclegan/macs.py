"""Multiply-accumulate counts of a network's convolutions, from the shapes of one forward pass.

Every ``nn.Conv2d`` and ``nn.Conv2dTranspose`` is counted (they hold all but a negligible share of the work in these
generators); norms, activations and additions are not, as in the usual MAC counters.

- Conv2d: ``N * H_out * W_out * C_out * (C_in / groups) * k_h * k_w``;
- Conv2dTranspose: every input pixel is scattered through the whole kernel, ``N * H_in * W_in * C_in *
  (C_out / groups) * k_h * k_w``.
"""

import mindspore as ms
import numpy as np
from mindspore import nn


def _kernel(cell):
    k = cell.kernel_size
    return (k, k) if isinstance(k, int) else tuple(k)


def conv_macs(cell, in_shape, out_shape):
    """MACs of one conv or transposed conv call with NCHW input and output shapes."""
    kh, kw = _kernel(cell)
    groups = int(getattr(cell, "group", 1) or 1)
    if isinstance(cell, nn.Conv2dTranspose):
        n, c_in, h, w = in_shape
        return int(n * h * w * c_in * (cell.out_channels // groups) * kh * kw)
    n, c_out, h, w = out_shape
    return int(n * h * w * c_out * (cell.in_channels // groups) * kh * kw)


def count_macs(net, input_shape):
    """MACs of ``net`` on one input of ``input_shape`` (NCHW), counted over its Conv2d / Conv2dTranspose layers.

    Runs one forward pass in PyNative mode with hooks that record the layer shapes; the network's train/eval mode
    is left as it was.
    """
    records = []
    handles = []

    def hook(cell, inputs, output):
        records.append(conv_macs(cell, tuple(inputs[0].shape), tuple(output.shape)))

    for _, cell in net.cells_and_names():
        if isinstance(cell, (nn.Conv2d, nn.Conv2dTranspose)):
            handles.append(cell.register_forward_hook(hook))
    try:
        net(ms.Tensor(np.zeros(input_shape, np.float32)))
    finally:
        for h in handles:
            h.remove()
    return int(sum(records))


def format_count(n):
    """``11378179 -> '11.38 M'``, ``56_870_000_000 -> '56.87 G'``."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return str(int(n))

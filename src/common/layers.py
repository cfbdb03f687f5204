"""Convolution helpers with PyTorch's padding semantics, shared by every network."""

from mindspore import nn


def conv2d(in_ch, out_ch, kernel_size, stride=1, padding=0, has_bias=True):
    """``nn.Conv2d`` with explicit zero padding (MindSpore's default is 'same' and no bias)."""
    if padding:
        return nn.Conv2d(in_ch, out_ch, kernel_size, stride, pad_mode="pad", padding=padding, has_bias=has_bias)
    return nn.Conv2d(in_ch, out_ch, kernel_size, stride, pad_mode="valid", has_bias=has_bias)


def conv_transpose2d(in_ch, out_ch, kernel_size, stride=1, padding=0, has_bias=True):
    """``nn.Conv2dTranspose`` with PyTorch's ``padding`` meaning: output = (H - 1) * stride - 2 * padding + k."""
    if padding:
        return nn.Conv2dTranspose(
            in_ch, out_ch, kernel_size, stride, pad_mode="pad", padding=padding, has_bias=has_bias
        )
    return nn.Conv2dTranspose(in_ch, out_ch, kernel_size, stride, pad_mode="valid", has_bias=has_bias)

"""Convolution helpers with PyTorch's padding semantics, shared by every network."""

from mindspore import nn, ops

from src.common.fast_conv import FastConv2d
from src.common.phase_conv import PhaseConv2d, PhaseConvTranspose2d
from src.common.polyphase import PolyphaseConv2d, PolyphaseConvTranspose2d


def conv2d(in_ch, out_ch, kernel_size, stride=1, padding=0, has_bias=True):
    """A conv with PyTorch's defaults (MindSpore's are 'same' padding and no bias): zero padding ``padding`` on every
    side. An ``nn.Conv2d`` that uses a faster algorithm where one applies (``src.common.fast_conv``; stride-2 4x4
    convs: ``src.common.polyphase``; stride-2 3x3 convs with padding 1: ``src.common.phase_conv``)."""
    if stride == 2 and kernel_size == 4:
        return PolyphaseConv2d(in_ch, out_ch, padding, has_bias)
    if (stride, kernel_size, padding) == (2, 3, 1):
        return PhaseConv2d(in_ch, out_ch, has_bias)
    return FastConv2d(in_ch, out_ch, kernel_size, stride, padding, has_bias)


def conv_transpose2d(in_ch, out_ch, kernel_size, stride=1, padding=0, has_bias=True, output_padding=0):
    """``nn.Conv2dTranspose`` with PyTorch's ``padding`` and ``output_padding`` meaning:
    output = (H - 1) * stride - 2 * padding + kernel_size + output_padding.

    PyTorch's layer is the full transposed conv cropped by ``padding`` at the top/left and by ``padding -
    output_padding`` at the bottom/right; that is MindSpore's asymmetric padding ``(top, bottom, left, right)``.
    MindSpore 2.8's own ``output_padding`` argument fills the extra row and column with zeros instead of the
    kernel's contributions (measured on the CPU), and cropping a 'valid' output with a slice costs more than the
    conv on the CPU, so neither is used. tests/test_conv_transpose.py checks this against the definition. The 4x4
    stride-2 padding-1 layer uses a faster algorithm where one applies (``src.common.polyphase``); the 3x3 stride-2
    padding-1 output-padding-1 layer runs no backward conv kernel (``src.common.phase_conv``).
    """
    if not 0 <= output_padding <= padding:
        raise ValueError(f"output_padding {output_padding} must be in [0, padding {padding}]")
    if (kernel_size, stride, padding, output_padding) == (4, 2, 1, 0):
        return PolyphaseConvTranspose2d(in_ch, out_ch, has_bias)  # the U-Net's up-convs
    if (kernel_size, stride, padding, output_padding) == (3, 2, 1, 1):
        return PhaseConvTranspose2d(in_ch, out_ch, has_bias)  # the ResNet generators' up-convs
    if padding:
        end = padding - output_padding
        pads = padding if end == padding else (padding, end, padding, end)
        return nn.Conv2dTranspose(in_ch, out_ch, kernel_size, stride, pad_mode="pad", padding=pads, has_bias=has_bias)
    return nn.Conv2dTranspose(in_ch, out_ch, kernel_size, stride, pad_mode="valid", has_bias=has_bias)


class LeakyReLU(nn.Cell):
    """``max(x, alpha * x)`` for ``0 < alpha < 1``, computed as ``relu(x) - alpha * relu(-x)``: the same values
    (exactly: the negative part is ``alpha * x`` rounded once), and a backward of two ReLU gradients. MindSpore 2.8's
    ``nn.LeakyReLU`` is ``maximum(alpha * x, x)``, whose gradient is two Selects and three compares: about 3.5x
    slower forward + backward on the CPU (measured at 64x256x512), and the discriminators have one after every conv.
    The gradient at exactly 0 is 0 instead of ``alpha``."""

    def __init__(self, alpha=0.2):
        super().__init__()
        if not 0 < alpha < 1:
            raise ValueError(f"LeakyReLU alpha must be in (0, 1), got {alpha}")
        self.alpha = float(alpha)

    def construct(self, x):
        return ops.relu(x) - self.alpha * ops.relu(-x)


def _mirror(x, width, axis, offset):
    """``x`` mirror-padded by ``width`` along ``axis``, without the edge value (``offset`` 1, REFLECT: ``dcb|abcd|cba``)
    or with it (0, SYMMETRIC: ``cba|abcd|dcb``): two flipped slices and one concat."""
    n = x.shape[axis]
    head = ops.flip(ops.narrow(x, axis, offset, width), (axis,))
    tail = ops.flip(ops.narrow(x, axis, n - offset - width, width), (axis,))
    return ops.cat((head, x, tail), axis)


# Inputs of this many values (per sample) or more are mirror-padded with flipped slices instead of MirrorPad, whose
# CPU kernel slows down sharply above ~6M values but is faster below (forward + backward, padding 3, measured on 2
# cores: 64x256x512 64 -> 34 ms, 64x512x1024 181 -> 119 ms; 64x200x400 13 vs 30 ms).
FLIP_PAD_MIN_VALUES = 8_000_000


class MirrorPad2d(nn.Cell):
    """REFLECT (``dcb|abcd|cba``) or SYMMETRIC (``cba|abcd|dcb``) padding of H and W by ``width`` pixels.

    Training and inference use ``nn.Pad`` (MindSpore's MirrorPad); the padding of an input of at least
    ``FLIP_PAD_MIN_VALUES`` values per sample is built from two flipped slices and a concat per axis instead (same
    values; its gradient is faster there). MirrorPad has no ONNX exporter, so with ``export_friendly`` set (export.py
    does this) the same values are built from one-pixel slices and one concat per axis (a test compares every form
    with ``np.pad``); that form is slow to train (every slice's gradient is a full-size tensor), so it is used for
    export only.
    """

    def __init__(self, width, mode="REFLECT"):
        super().__init__()
        self.width = int(width)
        self.offset = 1 if mode == "REFLECT" else 0
        self.pad = nn.Pad(((0, 0), (0, 0), (self.width, self.width), (self.width, self.width)), mode=mode)
        self.export_friendly = False

    def construct(self, x):
        if not self.export_friendly:
            if x.shape[1] * x.shape[2] * x.shape[3] >= FLIP_PAD_MIN_VALUES:
                return _mirror(_mirror(x, self.width, 2, self.offset), self.width, 3, self.offset)
            return self.pad(x)
        p, off = self.width, self.offset
        h = x.shape[2]
        top = [x[:, :, k : k + 1] for k in range(p + off - 1, off - 1, -1)]
        bottom = [x[:, :, k : k + 1] for k in range(h - 1 - off, h - 1 - off - p, -1)]
        x = ops.cat(top + [x] + bottom, 2)
        w = x.shape[3]
        left = [x[:, :, :, k : k + 1] for k in range(p + off - 1, off - 1, -1)]
        right = [x[:, :, :, k : k + 1] for k in range(w - 1 - off, w - 1 - off - p, -1)]
        return ops.cat(left + [x] + right, 3)


def set_export_friendly(net, flag=True):
    """Switch every layer of ``net`` that has an ``export_friendly`` form (mirror padding, instance norm) to that form,
    built from ops MindSpore's ONNX exporter handles (it has none for MirrorPad). Outputs stay the same; training is
    slower."""
    for _, cell in net.cells_and_names():
        if hasattr(cell, "export_friendly"):
            cell.export_friendly = flag
    return net

"""3x3 stride-2 convs and transposed convs that run no backward conv kernel: forward conv kernels and GEMMs only.

The ResNet generators of pix2pixHD and CycleGAN change resolution with 3x3 stride-2 convs (padding 1) and 3x3
stride-2 transposed convs (padding 1, output padding 1). In a MindSpore 2.8 CPU jit graph, the kernels of their
backward passes (``Conv2DBackpropInput`` and ``Conv2DBackpropFilter``, which is also the transposed conv's forward)
keep their im2col buffers for the life of the graph; the forward ``Conv2D`` kernel keeps none (measured). pix2pixHD's
generator at 512x1024 has four of each layer, and replacing them with buffer-free stand-ins lowered the process peak
from 13.8 to 11.0 GB. Here every kernel is a forward conv or a GEMM:

- **The stride-2 conv's input gradient, and the transposed conv's forward**, is the adjoint of the stride-2 conv
  (:class:`Adjoint`). Output pixel ``(2i + s, 2j + u)`` (phase ``(s, u)``) receives the taps of one parity
  class: phase (0, 0) the centre tap, (0, 1) and (1, 0) two taps, (1, 1) the four corners. Each phase is one forward
  conv (1x1, 1x2, 2x1 or 2x2 kernel of the transposed, flipped weight) of the input zero-extended by one row and
  column, and the four phases are interleaved into the 2x output: the columns by a GEMM that reads the two phases
  transposed (``(2, n)^T x I``, an exact copy without a Transpose kernel), the rows by a concat.
- **The transposed conv's input gradient** is the stride-2 conv of the output gradient: a forward ``Conv2D``.
- **Both weight gradients** are one GEMM per sample with the 3x3 windows of the input at stride 2 (:func:`windows`),
  which a forward conv of the single-channel planes with the nine unit kernels gives in the GEMM's layout.

This runs in training only (``self.training``). A forward alone keeps nothing either way, and the transposed conv's
four phase convs and interleave are slower than MindSpore's kernel there (pix2pixHD 256x512 inference 1.20 -> 1.43 s),
so inference uses MindSpore's kernels.

Measured (2026-12-05, 2 cores): four (64 -> 128 stride-2 conv, ReLU, 128 -> 64 transposed conv, ReLU) stages at
256x512, forward + backward, 1314 ms and 1480 MB above the inputs with MindSpore's kernels, 1216 ms and 694 MB here;
pix2pixHD at 512x1024, benchmark.py's peak 13.8 -> 11.6 GB. The results equal MindSpore's convs up to float32 rounding
(tests/test_phase_conv.py compares outputs and gradients).
"""

import mindspore as ms
import numpy as np
from mindspore import nn, ops

from src.common import native
from src.common.fast_conv import CustomBackward, crop, samples, swap_leading_axes

_UNIT = np.eye(9, dtype=np.float32).reshape(9, 1, 3, 3)  # the nine 3x3 unit kernels, tap (ky, kx) in channel 3ky + kx
_MM_TN = ops.MatMul(transpose_a=True)
_MM_NT = ops.MatMul(transpose_b=True)
TRANSPOSED_GRADIENT_MAX = 1 << 19  # weights up to this many elements get their gradient as (c * 9, a), transposed


def _tap(weight, rows, cols):
    """The taps ``rows`` x ``cols`` of a (b, a, 3, 3) weight as a (b, a, len(rows), len(cols)) kernel."""
    w = ops.cat([ops.narrow(weight, 2, r, 1) for r in rows], 2) if len(rows) > 1 else ops.narrow(weight, 2, rows[0], 1)
    return ops.cat([ops.narrow(w, 3, c, 1) for c in cols], 3) if len(cols) > 1 else ops.narrow(w, 3, cols[0], 1)


def interleave(p00, p01, p10, p11, identity):
    """Four (n, c, h, w) phases -> (n, c, 2h, 2w) with ``y[2i + s, 2j + u] = p_su[i, j]``. The columns: a GEMM that
    reads the stacked phases (2, n*c*h*w) transposed, times the 2x2 ``identity`` (exact); the rows: a concat."""
    n, c, h, w = p00.shape

    def columns(a, b):
        return _MM_TN(ops.cat((a.reshape(1, -1), b.reshape(1, -1))), identity).reshape(n * c * h, 1, 2 * w)

    return ops.cat((columns(p00, p01), columns(p10, p11)), 1).reshape(n, c, 2 * h, 2 * w)


class Adjoint(nn.Cell):
    """The adjoint of the 3x3 stride-2 padding-1 conv with a (a, ``channels``, 3, 3) weight, i.e. its input gradient
    for an output gradient ``d`` (n, a, h, w), or the transposed conv of ``d``: (n, channels, 2h, 2w). Per output
    phase a forward conv of ``d`` with the phase's taps of the flipped, transposed weight, zero padding at the bottom
    and right only (the primitive's (top, bottom, left, right) padding). The four tap kernels come from the native
    copy of :func:`src.common.native.layout_ops` on the CPU (:meth:`set_native`), else from a split + concat swap,
    a flip and narrows (61 against 6 ms for a 1024 x 512 x 3 x 3 weight)."""

    def __init__(self, channels):
        super().__init__()
        self.taps = None  # the native taps op (set_native)
        self.identity = ms.Tensor(np.eye(2, dtype=np.float32))
        self.conv00 = ops.Conv2D(channels, 1)
        self.conv01 = ops.Conv2D(channels, (1, 2), pad_mode="pad", pad=(0, 0, 0, 1))
        self.conv10 = ops.Conv2D(channels, (2, 1), pad_mode="pad", pad=(0, 1, 0, 0))
        self.conv11 = ops.Conv2D(channels, 2, pad_mode="pad", pad=(0, 1, 0, 1))

    def set_native(self, flag=True):
        """Take the tap kernels from the native copy (CPU only; with no C++ compiler the ops below stay)."""
        layout = native.layout_ops() if flag else None
        self.taps = None if layout is None else layout[1]

    def construct(self, d, weight):
        if self.taps is None:
            k = ops.flip(swap_leading_axes(weight), (2, 3))  # (channels, a, 3, 3)
            k00, k01 = _tap(k, (1,), (1,)), _tap(k, (1,), (0, 2))
            k10, k11 = _tap(k, (0, 2), (1,)), _tap(k, (0, 2), (0, 2))
        else:
            k00, k01, k10, k11 = self.taps(weight)
        p00 = self.conv00(d, k00)
        p01 = self.conv01(d, k01)
        p10 = self.conv10(d, k10)
        p11 = self.conv11(d, k11)
        return interleave(p00, p01, p10, p11, self.identity)


def windows(x, unit, height, width):
    """The 3x3 windows at stride 2 (zero padding 1) of one sample ``x`` (1, c, H, W) as the (c * 9, height * width)
    matrix of a GEMM, channel major and tap minor as in a (k, c, 3, 3) weight: a forward conv of the c
    single-channel planes with the nine ``unit`` kernels."""
    c, h, w = x.shape[1], x.shape[2], x.shape[3]
    v = ops.conv2d(x.reshape(c, 1, h, w), unit, stride=2, pad_mode="pad", padding=1)
    return v.reshape(c * 9, height * width)


def _weight_gradient(a_rows, b_samples, unit, height, width):
    """sum over the samples of ``a (a, P) @ windows(b)^T``, as (a, c * 9) with ``b`` (1, c, H, W) per sample. For a
    small weight (at most ``TRANSPOSED_GRADIENT_MAX`` elements: the early layers, where P is long) the GEMM runs as
    ``windows(b) @ a^T`` (c * 9, a) and the result is transposed back: 37-43 against 52-53 ms for a 64 -> 128 conv at
    256x512. A large weight's gradient comes out of ``a @ windows(b)^T`` as it is: a 512 -> 1024 conv at 16x32 took
    25-28 ms against 52-77 ms for the other order and the transpose, whose kernel would also keep an index of 8 bytes
    per element for the life of the graph (38 MB for this weight; see ``swap_leading_axes``)."""
    c9, a = b_samples[0].shape[1] * 9, a_rows[0].shape[0]
    small = a * c9 <= TRANSPOSED_GRADIENT_MAX
    total = None
    for rows, x in zip(a_rows, b_samples):
        win = windows(x, unit, height, width)
        g = _MM_NT(win, rows) if small else _MM_NT(rows, win)
        total = g if total is None else total + g
    return total.transpose(1, 0) if small else total


class _StridedGradients(nn.Cell):
    """The backward pass of :class:`PhaseConv2d`."""

    def __init__(self, in_channels):
        super().__init__()
        self.unit = ms.Tensor(_UNIT)
        self.adjoint = Adjoint(in_channels)

    def gradients(self, x, weight, dout):
        k, c = weight.shape[0], weight.shape[1]
        h, w, oh, ow = x.shape[2], x.shape[3], dout.shape[2], dout.shape[3]
        rows = [d.reshape(k, oh * ow) for d in samples(dout)]
        dweight = _weight_gradient(rows, samples(ops.depend(x, dout)), self.unit, oh, ow)
        dx = crop(self.adjoint(dout, weight), h, w)  # (n, c, 2 oh, 2 ow): an odd input's extra row and column cut
        return dx, dweight.reshape(k, c, 3, 3)


class _TransposedGradients(nn.Cell):
    """The backward pass of :class:`PhaseConvTranspose2d`: the input gradient is the stride-2 conv of the output
    gradient, the weight gradient a GEMM of the input with the output gradient's windows."""

    def __init__(self):
        super().__init__()
        self.unit = ms.Tensor(_UNIT)

    def gradients(self, x, weight, dout):
        c, k = weight.shape[0], weight.shape[1]
        h, w = x.shape[2], x.shape[3]
        dx = ops.conv2d(dout, weight, stride=2, pad_mode="pad", padding=1)
        rows = [s.reshape(c, h * w) for s in samples(x)]
        dweight = _weight_gradient(rows, samples(dout), self.unit, h, w)
        return dx, dweight.reshape(c, k, 3, 3)


class PhaseConv2d(nn.Conv2d):
    """``nn.Conv2d(in, out, 3, stride 2, padding 1)`` whose backward pass uses forward conv kernels and GEMMs (see the
    module docstring); same ``weight`` and ``bias``. ``set_conv_algorithm`` switches it like
    :class:`~src.common.fast_conv.FastConv2d`."""

    fast_algorithm = "phase"

    def __init__(self, in_channels, out_channels, has_bias=True):
        super().__init__(in_channels, out_channels, 3, 2, pad_mode="pad", padding=1, has_bias=has_bias)
        self.use_fast = True
        self.with_gradients = CustomBackward(_StridedGradients(in_channels))

    def construct(self, x):
        if not self.use_fast or not self.training:
            return super().construct(x)
        y = self.conv2d(ops.stop_gradient(x), ops.stop_gradient(self.weight))  # nn.Conv2d's own primitive
        y = self.with_gradients(x, self.weight, y)
        return ops.bias_add(y, self.bias) if self.has_bias else y


class PhaseConvTranspose2d(nn.Conv2dTranspose):
    """The 3x3 stride-2 transposed conv with padding 1 and output padding 1 (output 2H x 2W; PyTorch's
    ``ConvTranspose2d(in, out, 3, 2, 1, output_padding=1)``, MindSpore's padding (1, 0, 1, 0)) computed by
    :class:`Adjoint`, with a backward pass of a forward conv and GEMMs; same ``weight`` and ``bias``."""

    fast_algorithm = "phase"

    def __init__(self, in_channels, out_channels, has_bias=True):
        super().__init__(in_channels, out_channels, 3, 2, pad_mode="pad", padding=(1, 0, 1, 0), has_bias=has_bias)
        self.use_fast = True
        self.adjoint = Adjoint(out_channels)
        self.with_gradients = CustomBackward(_TransposedGradients())

    def construct(self, x):
        if not self.use_fast or not self.training:
            return super().construct(x)
        y = self.adjoint(ops.stop_gradient(x), ops.stop_gradient(self.weight))
        y = self.with_gradients(x, self.weight, y)
        return ops.bias_add(y, self.bias) if self.has_bias else y

"""Stride-2 convolutions and transposed convolutions by Winograd's minimal filtering on their phases.

Every generator and discriminator here changes resolution with stride-2 convs (3x3 or 4x4) and stride-2 transposed
convs (4x4 padding 1, or 3x3 padding 1 with output padding 1), which MindSpore 2.8's CPU kernel runs as im2col + GEMM
at 60-190 GFLOP/s on 2 cores, keeping an im2col buffer per kernel for the life of a jit graph. Both split into 2x2
stride-1 convs, one per phase (polyphase decomposition), and a 2-tap filter has a cheap Winograd transform F(t, 2)
(Lavin and Gray, 2016; 1-D transforms from Toom-Cook at 0, 1, -1 (, 2) and infinity):

- **Stride-2 conv** (kernel 3 or 4, any zero padding): ``y[i] = sum_s sum_p x_s[i + p] w[2p + s]`` with ``x_s[m] =
  xpad[2m + s]`` the even (s = 0) and odd (s = 1) samples; a 3-tap kernel is the 4-tap one with ``w[3] = 0``. Per
  output tile of t x t, one conv of each input channel plane with a 2(t+1) x 2(t+1) kernel at stride 2t transforms
  the (t+1)^2 inputs of all four phases, one GEMM per point sums over the phases and the input channels, and the
  output transform gives the tile: (t+1)^2 x 4 multiplications per t^2 outputs instead of 16 (F(4x4, 2x2): 2.56x
  fewer for 4x4 kernels, 1.44x for 3x3).
- **Transposed conv** (4x4 padding 1, or 3x3 padding 1 output padding 1: the same positions, ``w[3] = 0``): output
  phase ``(s, u)`` (``y[2i+s, 2j+u]``) is a 2x2 conv of the input zero-padded by 1 with taps ``w[3 - s - 2p, 3 - u -
  2q]``. Per input tile of t x t, one conv transforms the (t+2)^2 inputs for all four phases, one GEMM per (phase,
  point) multiplies, and one output transform interleaves the phases into the 2t x 2t output tile.

At inference on the CPU, the U-Net's larger layers run the same algorithm with native transforms
(:mod:`src.common.native`: compiled loops instead of the transform convs, regroupings and small GEMMs, see
:func:`native_tile`); the GEMMs stay MindSpore's.

Every transform is a GEMM or a conv of single-channel planes, so no kernel holds an im2col buffer of the layer's size
(measured, forward + backward of a 64 -> 128 4x4 stride-2 conv at 256x512: 460 -> 250 ms, the process peak grew by
292 instead of 443 MB). Inputs that do not split into whole tiles are zero-padded at the bottom and right and the
output cropped. Results equal the direct convolution up to float32 rounding (tests/test_polyphase.py compares outputs
and gradients with ``nn.Conv2d`` and ``nn.Conv2dTranspose``).
"""

import mindspore as ms
import numpy as np
from mindspore import nn, ops

from src.common import native
from src.common.fast_conv import (
    SwapLeading,
    crop,
    output_planes,
    points_first,
    round_up,
    samples,
    swap_leading_axes,
    toom_cook,
    zero_extend,
)

# output tile -> F(tile, 2) 1-D transforms (A^T, G, B^T)
_F2 = {2: toom_cook(2, 2, (0, 1)), 4: toom_cook(4, 2, (0, 1, -1, 2))}
POLYPHASE_TILES = (4, 2)  # preferred first
MIN_CHANNELS = 32  # fewer input or output channels and the transforms cost more than the GEMMs save
MIN_TRAIN_TILES = 64  # 4x4 tiles per sample from which forward + backward pays (see polyphase_tile)
MIN_EVAL_TILES = 256  # the same for a forward alone (stride-2 convs only)
NATIVE_TILE = 4  # the tile of the convs at inference with the native transforms (src.common.native)
MIN_NATIVE_TILES = 64  # 4x4 tiles per sample from which it pays


def polyphase_tile(transposed, training, in_channels, out_channels, h, w):
    """The tile of the polyphase conv, or 0 for MindSpore's own kernel. ``h`` x ``w``: the output of a stride-2
    conv, the input of a transposed conv (one tile per t x t of it). Measured on 2 cores (4x4 kernels, ms, direct ->
    F(4x4, 2x2)), forward + backward: 64 -> 128 at 128x128 56 -> 33, 128 -> 256 at 64x64 (64 tiles) 43 -> 31,
    256 -> 512 at 32x32 (16 tiles) 37 -> 65; transposed 512 -> 128 at 32x32 (64 tiles) 75 -> 35, 256 -> 64 at 64x64
    46 -> 41, 128 -> 3 at 128x128 7 -> 45; pix2pixHD's discriminator (padding 2) 39 -> 64 at 256x512 161 -> 133, 64 ->
    128 99 -> 77, 128 -> 256 86 -> 66. A forward alone gains less: 64 -> 128 at 128x128 15 -> 9 ms, but 128 -> 256
    at 64x64 12 -> 12 and every transposed conv loses (256 -> 64 at 64x64 23 -> 25), so inference (``training``
    False) uses it for large stride-2 convs only. 3x3 kernels (1.44x fewer multiplications, not 2.56x) did not pay
    (CycleGAN's 64 -> 128 at 256x256 68 -> 74 ms), so only 4x4 kernels come here. The output is computed in whole
    tiles when that adds at most 20% to it."""
    if min(in_channels, out_channels) < MIN_CHANNELS or (transposed and not training):
        return 0
    min_tiles = MIN_TRAIN_TILES if training else MIN_EVAL_TILES
    for t in POLYPHASE_TILES:
        hh, ww = round_up(h, t), round_up(w, t)
        if hh * ww * 5 <= h * w * 6 and hh * ww >= min_tiles * 16:
            return t
    return 0


def native_tile(in_channels, out_channels, h, w):
    """The tile of a 4x4 stride-2 conv or transposed conv at inference with the native transforms of
    :mod:`src.common.native`, or 0 for the other forms (``h`` x ``w``: the output of a stride-2 conv, the input of a
    transposed conv, as for :func:`polyphase_tile`). Measured in pix2pix's U-Net at inference on 2 cores (paired
    runs in one process, ms per image): the transposed 512 -> 128 at 32x32 and 256 -> 64 at 64x64 with the native
    form 97.3 -> 92.0, with the stride-2 64 -> 128 at 64x64 and 128 -> 256 at 32x32 output as well 86.3. Fewer
    tiles lose or do not pay: the transposed 1024 -> 256 at 16x16 with 2x2 tiles (64 of them) cost 83.0 against
    75.9 ms of kernel time, and the stride-2 256 -> 512 at 16x16 with 2x2 tiles 77.3 against 77.3 ms (their
    transformed weights, 36 or 100 per input-output pair, cost as much to write and read as the GEMMs save)."""
    if min(in_channels, out_channels) < MIN_CHANNELS:
        return 0
    t = NATIVE_TILE
    hh, ww = round_up(h, t), round_up(w, t)
    return t if hh * ww * 5 <= h * w * 6 and hh * ww >= MIN_NATIVE_TILES * t * t else 0


def strided_matrices(t):
    """The 1-D transforms of the stride-2 conv with output tile ``t`` (see :func:`strided_transforms`), a = t + 1:
    the input transform (2a, 2a), row (P, s) reading the window's sample ``2m + s`` with ``B^T[P, m]``; the weight
    transform (2a, 4) of a 4-tap kernel, row (P, s) taking tap ``2p + s`` with ``G[P, p]``; and A^T (t, a)."""
    at, g, bt = _F2[t]
    a = t + 1
    b1 = np.zeros((a, 2, 2 * a))
    g1 = np.zeros((a, 2, 4))
    for s in range(2):
        b1[:, s, s::2] = bt
        g1[:, s, s::2] = g
    return b1.reshape(2 * a, 2 * a), g1.reshape(2 * a, 4), at


def strided_transforms(t, kernel):
    """Transforms of the stride-2 ``kernel`` x ``kernel`` conv (3 or 4) with output tile ``t`` (a = t + 1 points per
    axis and phase): the input transform as a conv kernel (4a^2, 1, 2a, 2a) and the weight transform (4a^2, kernel^2),
    both with rows ordered (P, Q, s, u), point major and phase minor, and the 1-D output transform A^T (t, a). Row
    (P, s) of the 1-D input transform reads the window's sample ``2m + s`` with ``B^T[P, m]``; of the weight
    transform, tap ``2p + s`` with ``G[P, p]`` (tap 3 of a 3-tap kernel is zero, so its column is dropped)."""
    a = t + 1
    b1, g1, at = strided_matrices(t)
    b1, g1 = b1.reshape(a, 2, 2 * a), g1.reshape(a, 2, 4)[:, :, :kernel]
    tile_in = np.einsum("psi,quj->pqsuij", b1, b1).reshape(4 * a * a, 1, 2 * a, 2 * a)
    weight = np.einsum("psi,quj->pqsuij", g1, g1).reshape(4 * a * a, kernel * kernel)
    return at, weight, tile_in


def transposed_matrices(t):
    """The 1-D transforms of the stride-2 transposed conv with input tile ``t`` (see :func:`transposed_transforms`):
    the input transform ``b1`` (n, t+2) that gives phase s's a = t + 1 points from the window at offset s, the
    weight transform ``g1`` (n, 4) of a 4-tap kernel (phase s: taps 3 - s and 1 - s), and the output transform
    ``a_out`` (2t, n) that interleaves the phases, n = 2a."""
    at, g, bt = _F2[t]
    a = t + 1
    b1 = np.zeros((2 * a, t + 2))
    g1 = np.zeros((2 * a, 4))
    a_out = np.zeros((2 * t, 2 * a))
    for s in range(2):
        b1[s * a : (s + 1) * a, s : s + a] = bt
        g1[s * a : (s + 1) * a, [3 - s, 1 - s]] = g
        a_out[s::2, s * a : (s + 1) * a] = at
    return b1, g1, a_out


def transposed_transforms(t, kernel):
    """Transforms of the stride-2 transposed conv (4x4 padding 1, or 3x3 padding 1 output padding 1) with input tile
    ``t``: the input transform as a conv kernel (n^2, 1, t+2, t+2) and the weight transform (n^2, kernel^2), n = 2a =
    2(t + 1), rows ordered (s, P, u, Q), and the 1-D output transform (2t, n) that interleaves the phases: output
    ``2r + s`` takes ``A^T[r, P]`` of phase s. Phase s reads the window from offset s (``B^T``) with taps ``3 - s -
    2p`` (``G[P, p]``; tap 3 of a 3-tap kernel is zero)."""
    b1, g1, a_out = transposed_matrices(t)
    g1 = g1[:, :kernel]
    n = 2 * (t + 1)
    tile_in = np.einsum("ai,bj->abij", b1, b1).reshape(n * n, 1, t + 2, t + 2)
    weight = np.einsum("ai,bj->abij", g1, g1).reshape(n * n, kernel * kernel)
    return a_out, weight, tile_in


class PolyphaseTransforms:
    """The constant tensors of one tile size ``t`` for a stride-2 conv or transposed conv with a 3x3 or 4x4 kernel."""

    def __init__(self, transposed, t, kernel):
        at, weight, tile_in = (transposed_transforms if transposed else strided_transforms)(t, kernel)
        self.t = t
        self.tile_in = ms.Tensor(tile_in.astype(np.float32))
        self.weight = ms.Tensor(weight.astype(np.float32))
        self.at = ms.Tensor(at.astype(np.float32))
        # A^T stacked once per point row, for the output transform's first GEMM
        self.a_stack = ms.Tensor(np.ascontiguousarray(np.broadcast_to(at.T, (at.shape[1],) + at.T.shape), np.float32))


def _per_sample(fn, x):
    """``fn`` over the :func:`~src.common.fast_conv.samples` of ``x``, concatenated."""
    ys = [fn(s) for s in samples(x)]
    return ys[0] if len(ys) == 1 else ops.cat(ys)


def strided_conv(x, weight, tf, padding, swap=swap_leading_axes):
    """Stride-2 conv of ``x`` (N, c, H, W) with ``weight`` (k, c, K, K), K 3 or 4, zero padding ``padding``; no bias.
    ``swap``: how the regroupings swap two axes (:class:`~src.common.fast_conv.SwapLeading`)."""
    k, c, kernel = weight.shape[0], weight.shape[1], weight.shape[2]
    t, a = tf.t, tf.t + 1
    oh = (x.shape[2] + 2 * padding - kernel) // 2 + 1
    ow = (x.shape[3] + 2 * padding - kernel) // 2 + 1
    th, tw = -(-oh // t), -(-ow // t)
    # (P, Q) points, each a GEMM over the (s, u) phases and the c input channels: U^T (4c, k) per point
    u = ops.MatMul(transpose_b=True)(tf.weight, swap(weight).reshape(c * k, kernel * kernel))
    u = u.reshape(a * a, 4 * c, k)

    def sample(xs):
        # whole tiles: the padded input must reach 2t * th + 2 rows (extra zeros at the bottom and right)
        xs = zero_extend(xs, 2 * t * th + 2 - 2 * padding, 2 * t * tw + 2 - 2 * padding)
        h, w = xs.shape[2], xs.shape[3]
        v = ops.conv2d(xs.reshape(c, 1, h, w), tf.tile_in, stride=2 * t, pad_mode="pad", padding=padding)
        vh, vw = v.shape[2], v.shape[3]  # th, tw (more where the symmetric padding added whole tiles)
        v = points_first(v, c, 4 * a * a, vh * vw, swap).reshape(a * a, 4 * c, vh * vw)
        m = ops.BatchMatMul(transpose_a=True)(u, v)  # (a*a, k, tiles)
        y = output_planes(m, tf.at, tf.a_stack, vh, vw, swap)
        return crop(y, oh, ow)

    return _per_sample(sample, x)


def transposed_conv(x, weight, tf, swap=swap_leading_axes):
    """Stride-2 transposed conv of ``x`` (N, c, H, W) to (N, k, 2H, 2W): ``weight`` (c, k, 4, 4) with padding 1, or
    (c, k, 3, 3) with padding 1 and output padding 1 (MindSpore's and PyTorch's transposed-conv layout); no bias.
    ``swap`` as for :func:`strided_conv`."""
    c, k, kernel = weight.shape[0], weight.shape[1], weight.shape[2]
    t, n = tf.t, 2 * (tf.t + 1)
    oh, ow = 2 * x.shape[2], 2 * x.shape[3]
    th, tw = -(-x.shape[2] // t), -(-x.shape[3] // t)
    u = ops.MatMul(transpose_b=True)(tf.weight, weight.reshape(c * k, kernel * kernel)).reshape(n * n, c, k)

    def sample(xs):
        xs = zero_extend(xs, t * th, t * tw)
        v = ops.conv2d(xs.reshape(c, 1, t * th, t * tw), tf.tile_in, stride=t, pad_mode="pad", padding=1)
        v = points_first(v, c, n * n, th * tw, swap)
        m = ops.BatchMatMul(transpose_a=True)(u, v)  # (n*n, k, tiles)
        return crop(output_planes(m, tf.at, tf.a_stack, th, tw, swap), oh, ow)

    return _per_sample(sample, x)


def native_conv(x, weight, native, oh, ow):
    """The stride-2 conv or transposed conv of ``x`` (N, c, H, W) to (N, k, oh, ow) with the Custom ops ``native``
    of :func:`src.common.native.strided_ops` or :func:`~src.common.native.transposed_ops`: the weight transform
    gives one (k, depth) matrix per point, the input transform the points' planes, which the batched GEMM takes
    ``depth`` rows at a time (the stride-2 conv sums over its four phases there), and the output transform the
    tiles of the output (cropped to ``oh`` x ``ow``). For inference: the ops have no gradient."""
    into, out, transform_weight = native
    u = transform_weight(weight)  # (points, k, depth): the batched GEMM reads neither side transposed
    points, k, depth = u.shape

    def sample(xs):
        v = into(xs.reshape(xs.shape[1:]))  # (planes, c, th, tw); planes * c = points * depth
        th, tw = v.shape[2], v.shape[3]
        m = ops.BatchMatMul()(u, v.reshape(points, depth, th * tw))  # (points, k, tiles)
        y = out(m.reshape(points, k, th, tw))  # (k, th * tile, tw * tile)
        return crop(y.reshape((1,) + y.shape), oh, ow)

    return _per_sample(sample, x)


class PolyphaseConv2d(nn.Conv2d):
    """A stride-2 4x4 ``nn.Conv2d`` (zero padding ``padding``) computed by :func:`strided_conv` where
    :func:`polyphase_tile` says it pays, or at inference by :func:`native_conv` where :func:`native_tile` does; same
    ``weight`` and ``bias``. ``set_conv_algorithm`` switches it like :class:`~src.common.fast_conv.FastConv2d`."""

    fast_algorithm = "polyphase"

    def __init__(self, in_channels, out_channels, padding=1, has_bias=True):
        super().__init__(in_channels, out_channels, 4, 2, pad_mode="pad" if padding else "valid", padding=padding,
                         has_bias=has_bias)  # fmt: skip
        self.zero_padding = int(padding)
        self.use_fast = True
        self.transforms = {t: PolyphaseTransforms(False, t, 4) for t in POLYPHASE_TILES}
        self.native = None  # the native transforms' ops at inference (set_native)
        self.swap = SwapLeading()  # the training path's regroupings (set_conv_algorithm sets its native form)
        self.forward_only = False  # no gradient will be taken, even in training mode (fast_conv.forward_only)

    def set_native(self, flag=True):
        """Use the native transforms of :mod:`src.common.native` at inference where :func:`native_tile` says it
        pays (``set_conv_algorithm`` calls this on the CPU); with no C++ compiler, the ops of :func:`strided_conv`
        or MindSpore's kernel stay."""
        t = NATIVE_TILE
        self.native = native.strided_ops(t, self.zero_padding, *strided_matrices(t)) if flag else None

    def construct(self, x):
        if self.use_fast:
            p = self.zero_padding
            oh, ow = (x.shape[2] + 2 * p - 4) // 2 + 1, (x.shape[3] + 2 * p - 4) // 2 + 1
            if (self.forward_only or not self.training) and self.native is not None:
                if native_tile(self.in_channels, self.out_channels, oh, ow):
                    y = native_conv(x, self.weight, self.native, oh, ow)
                    return self.bias_add(y, self.bias) if self.has_bias else y
            t = polyphase_tile(False, self.training, self.in_channels, self.out_channels, oh, ow)
            if t:
                y = strided_conv(x, self.weight, self.transforms[t], self.zero_padding, self.swap)
                return self.bias_add(y, self.bias) if self.has_bias else y
        return super().construct(x)


class PolyphaseConvTranspose2d(nn.Conv2dTranspose):
    """A stride-2 4x4 ``nn.Conv2dTranspose`` with padding 1 (output 2H x 2W) computed by :func:`transposed_conv` where
    :func:`polyphase_tile` says it pays, or at inference by :func:`native_conv` where :func:`native_tile` does; same
    ``weight`` and ``bias``."""

    fast_algorithm = "polyphase"

    def __init__(self, in_channels, out_channels, has_bias=True):
        super().__init__(in_channels, out_channels, 4, 2, pad_mode="pad", padding=1, has_bias=has_bias)
        self.use_fast = True
        self.transforms = {t: PolyphaseTransforms(True, t, 4) for t in POLYPHASE_TILES}
        self.native = None  # the native transforms' ops at inference (set_native)
        self.swap = SwapLeading()  # the training path's regroupings (set_conv_algorithm sets its native form)
        self.forward_only = False  # no gradient will be taken, even in training mode (fast_conv.forward_only)

    def set_native(self, flag=True):
        """Use the native transforms of :mod:`src.common.native` at inference where :func:`native_tile` says it
        pays (``set_conv_algorithm`` calls this on the CPU); with no C++ compiler, MindSpore's kernel stays."""
        t = NATIVE_TILE
        self.native = native.transposed_ops(t, *transposed_matrices(t)) if flag else None

    def construct(self, x):
        if self.use_fast:
            if (self.forward_only or not self.training) and self.native is not None:
                if native_tile(self.in_channels, self.out_channels, x.shape[2], x.shape[3]):
                    y = native_conv(x, self.weight, self.native, 2 * x.shape[2], 2 * x.shape[3])
                    return self.bias_add(y, self.bias) if self.has_bias else y
            t = polyphase_tile(True, self.training, self.in_channels, self.out_channels, x.shape[2], x.shape[3])
            if t:
                y = transposed_conv(x, self.weight, self.transforms[t], self.swap)
                return self.bias_add(y, self.bias) if self.has_bias else y
        return super().construct(x)

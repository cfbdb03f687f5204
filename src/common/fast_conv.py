"""Convolutions computed by faster algorithms than MindSpore 2.8's CPU kernel: same weights, same function.

MindSpore 2.8's CPU backend runs every convolution as im2col + GEMM on NCHW tensors (oneDNN 2.2 ``gemm:jit``). Two
layer kinds of the generators lose most of their time to it (measured on 2 cores, CycleGAN's resnet_9blocks at
256x256, forward + backward):

- **3x3 stride-1 convs** (the residual blocks: 88% of the generator's MACs). :class:`FastConv2d` computes them with
  Winograd's minimal filtering F(4x4, 3x3) (Lavin and Gray, 2016): each 6x6 input tile and 3x3 kernel are
  transformed, multiplied point-wise as 36 batched GEMMs (4x fewer multiplications than the direct conv), and
  transformed back to a 4x4 output tile. The backward pass is three GEMM-shaped ops instead of two im2col convs:
  about 2.5x faster forward + backward for 256 channels at 64x64. Where the transformed weights are larger than the
  transformed input (more output channels than tiles: pix2pixHD's 1024-channel blocks, 4x the weights' size), the
  backward pass recomputes them rather than keeping them from the forward pass (:class:`_WinogradConv`), except in
  layers marked by :func:`keep_transforms` (pix2pixHD's last two residual blocks: time for memory). Outputs
  with fewer than 32 4x4 tiles (pix2pixHD's 1024-channel blocks at 8x16) use F(2x2, 3x3): 16 GEMMs, 2.25x fewer
  multiplications, and 16 instead of 36 transformed weights per channel pair (:func:`winograd_tile`).
- **4x4 stride-1 convs** (pix2pixHD's discriminator, 256 -> 512 channels at 1/8 scale): Winograd F(2x2, 4x4), 25
  GEMMs instead of 64 multiplications per tile, from the Toom-Cook construction (:func:`toom_cook`); forward +
  backward 219-250 -> 116-157 ms at 256x512.
- An output that does not split into whole tiles (a PatchGAN's 31x31 map in 2x2 tiles) is computed on whole tiles,
  with extra zero padding at the bottom and right, and cropped, when that adds at most 20% (:func:`winograd_tile`).
- **Wide convs with few output channels** (the final 7x7 conv to RGB, a PatchGAN's last 4x4 conv to one channel).
  im2col of a 64-channel 262x262 input with a 7x7 kernel is an 822 MB matrix. Here the kernel is applied as one GEMM
  ``(k*k*out, in) x (in, H*W)`` followed by a sum of ``k*k`` shifted planes: forward 100 -> 24 ms, forward + backward
  about 7x faster; for pix2pixHD's last D conv (512 -> 1, 4x4, zero padding 2) forward + backward 47 -> 12 ms. Zero
  padding is applied to the planes (``out * k * k`` channels) rather than to the input.
- **The first 7x7 conv** (from the image or the label map: few inputs, more outputs, no padding). Its forward is
  MindSpore's; its weight gradient is a forward conv with the roles swapped, input channels as the batch and the
  output gradient as the kernel (:class:`_SwappedWeightGradConv`): pix2pixHD's (36 -> 64 at 256x512) forward +
  weight gradient 1.35-1.47 -> 0.89-1.02 s, and 790 MB less memory, because MindSpore's weight-gradient kernel holds
  its im2col buffer for the life of a jit graph.

In a MindSpore 2.8 CPU jit graph, every Transpose kernel keeps about twice its output outside the memory pool for the
life of the graph (measured), so the Winograd conv has none: it changes layouts with split + concat and with GEMMs
that read an operand transposed (see :meth:`FastConv2d._winograd_sample`).

Results equal the direct convolution up to float32 rounding (relative error ~1e-5 for Winograd, ~1e-6 for the
shifted sum; tests/test_fast_conv.py checks outputs and gradients against ``nn.Conv2d``). A layer whose input does not
fit an algorithm (too few tiles, say) uses the direct convolution.

Zero padding uses the ``ops.Pad`` primitive: with the functional ``ops.pad`` in the padded shifted sum, MindSpore 2.8's
CPU runtime hung from about the 7th call of the compiled graph (a test runs the case in a subprocess).

:class:`FastConv2d` is an ``nn.Conv2d`` with the same ``weight`` and ``bias`` parameters, so checkpoints, weight
initialisation, MAC counts and the PyTorch-weight import do not see a difference. ``set_conv_algorithm(net,
"direct")`` switches a built network back to ``nn.Conv2d``'s own kernel (export does this, so exported graphs hold
plain convolutions; the config key ``conv_algorithm`` does it for training and evaluation).
"""

import contextlib

import mindspore as ms
import numpy as np
from mindspore import nn, ops

from src.common import native
from src.errors import UserError

CONV_ALGORITHMS = ("auto", "fast", "direct")

# F(4x4, 3x3): Y = A^T [(G g G^T) * (B^T d B)] A, for cross-correlation as in convnets (Lavin and Gray, 2016).
_BT = np.array(
    [
        [4, 0, -5, 0, 1, 0],
        [0, -4, -4, 1, 1, 0],
        [0, 4, -4, -1, 1, 0],
        [0, -2, -1, 2, 1, 0],
        [0, 2, -1, -2, 1, 0],
        [0, 4, 0, -5, 0, 1],
    ],
    np.float64,
)
_G = np.array(
    [
        [1 / 4, 0, 0],
        [-1 / 6, -1 / 6, -1 / 6],
        [-1 / 6, 1 / 6, -1 / 6],
        [1 / 24, 1 / 12, 1 / 6],
        [1 / 24, -1 / 12, 1 / 6],
        [0, 0, 1],
    ],
    np.float64,
)
_AT = np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]], np.float64)


def toom_cook(tile, kernel, points):
    """1-D transforms ``(A^T, G, B^T)`` of Winograd's F(tile, kernel) for cross-correlation, from the Toom-Cook
    algorithm at ``points`` (tile + kernel - 2 finite points) and infinity: ``y = A^T [(G g) * (B^T d)]`` are the
    ``tile`` outputs of the ``kernel``-tap filter ``g`` over ``tile + kernel - 1`` inputs ``d``. A^T and G evaluate
    polynomials at the points; B^T is the transposed inverse of the Vandermonde matrix (Lavin and Gray, 2016)."""
    if len(points) != tile + kernel - 2:
        raise ValueError(f"F({tile}, {kernel}) needs {tile + kernel - 2} finite points, got {len(points)}")

    def evaluate(n):
        finite = [[float(p) ** j for j in range(n)] for p in points]
        return np.array(finite + [[0.0] * (n - 1) + [1.0]])

    return evaluate(tile).T, evaluate(kernel), np.linalg.inv(evaluate(tile + kernel - 1)).T


# (output tile, kernel) -> 1-D transforms. F(4x4, 3x3) as published; F(2x2, 3x3) (for outputs with few 4x4 tiles:
# 16 multiplications per tile instead of 36, i.e. 4/9 of the direct conv's instead of 1/4, but 16 instead of 36
# transformed weights per input-output pair) and F(2x2, 4x4) (pix2pixHD's stride-1 4x4 D conv: 25 multiplications
# per tile instead of 64) from Toom-Cook at 0, 1, -1 (, 2).
_TRANSFORMS = {(4, 3): (_AT, _G, _BT), (2, 3): toom_cook(2, 3, (0, 1, -1)), (2, 4): toom_cook(2, 4, (0, 1, -1, 2))}
WINOGRAD_TILES = {3: (4, 2), 4: (2,)}  # kernel size -> output tiles, preferred first
RECOMPUTE_MIN_CHANNELS = 1024  # see _WinogradConv.recomputes
MIN_WINOGRAD_TILES = 32  # fewer tiles than this (per GEMM) and the GEMMs are too narrow to pay


def winograd_matrices(kernel=3, tile=None):
    """The three 2-D transforms of the Winograd conv F(tile x tile, kernel x kernel) as float32 arrays, with a = tile +
    kernel - 1 input points per axis: input (a*a, 1, a, a) as a stride-``tile`` conv kernel, weight (a*a, kernel^2),
    output (tile^2, a*a). ``tile`` defaults to the kernel's preferred one: F(4x4, 3x3) with 36 points, F(2x2, 4x4)
    with 25; F(2x2, 3x3) has 16."""
    tile = WINOGRAD_TILES[kernel][0] if tile is None else tile
    at, g, bt = _TRANSFORMS[(tile, kernel)]
    a = tile + kernel - 1
    tile_in = np.einsum("ai,bj->abij", bt, bt).reshape(a * a, 1, a, a)
    weight = np.einsum("ai,bj->abij", g, g).reshape(a * a, kernel * kernel)
    tile_out = np.einsum("pa,qb->pqab", at, at).reshape(tile * tile, a * a)
    return tuple(m.astype(np.float32) for m in (tile_in, weight, tile_out))


def _pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


def choose_algorithm(in_channels, out_channels, kernel_size, stride, padding):
    """For stride-1 convs: ``shift`` for square kernels of 4 or more whose taps times outputs are at most the inputs
    (a PatchGAN's last conv to one channel; any zero padding) and for kernels of 5 or more with fewer outputs than
    inputs, no padding and at most 32x the input's size in planes (the last 7x7 conv to RGB: 2.3x for 64 channels,
    18x for 8); ``swap`` for the other kernels of 5 or more with no padding (the first 7x7 conv from the image or
    label map, and the local enhancer's 36 -> 32 one, whose 1568 planes, 44x its input, would be a 13 GB tensor at
    2048x1024); else ``winograd`` for 3x3 kernels
    with no or 1-pixel zero padding and for 4x4 kernels with any zero padding. ``direct`` otherwise (strided convs
    among them)."""
    kh, kw = _pair(kernel_size)
    if _pair(stride) != (1, 1) or kh != kw:
        return "direct"
    if kh >= 4 and kh * kw * out_channels <= in_channels:
        return "shift"
    if kh >= 5 and out_channels < in_channels and padding == 0 and kh * kw * out_channels <= 32 * in_channels:
        return "shift"
    if kh >= 5 and padding == 0:
        return "swap"
    if (kh == 3 and padding in (0, 1)) or kh == 4:
        return "winograd"
    return "direct"


def round_up(size, tile):
    return -(-size // tile) * tile


def zero_extend(x, height, width):
    """``x`` (1, c, h, w) with zero rows and columns appended up to ``height`` x ``width`` (``ops.conv2d`` pads
    symmetrically only)."""
    _, c, h, w = x.shape
    if height > h:
        x = ops.cat((x, ops.zeros((1, c, height - h, w), x.dtype)), 2)
    if width > w:
        x = ops.cat((x, ops.zeros((1, c, x.shape[2], width - w), x.dtype)), 3)
    return x


def crop(y, height, width):
    """``y`` (n, k, h, w) cut to its first ``height`` rows and ``width`` columns (the whole-tile outputs' extra)."""
    if y.shape[2] != height:
        y = ops.narrow(y, 2, 0, height)
    if y.shape[3] != width:
        y = ops.narrow(y, 3, 0, width)
    return y


def samples(x):
    """The samples of a batch as a tuple of (1, ...) tensors: the Winograd convs transform one sample at a time, so
    that a sample's tiles are the GEMMs' columns without a transpose."""
    return ops.split(x, 1, 0) if x.shape[0] > 1 else (x,)


def swap_leading_axes(x):
    """``x`` (a, b, ...) -> (b, a, ...), i.e. ``x.transpose(1, 0, ...)``, by split + concat. MindSpore 2.8's CPU
    Transpose kernel builds an index of 8 bytes per element of its output when the graph is built and keeps it for
    the life of the graph (heaptrack, pix2pixHD's step at 256x512: 564 MB of the C heap in 65 Transpose kernels, most
    of them over the weights of its 512 -> 1024 layers); split + concat keeps nothing and took as long (a 1024 x 512
    x 3 x 3 weight: 12 ms either way)."""
    a, b = x.shape[0], x.shape[1]
    return ops.cat(ops.split(x, 1, 1), 0).reshape((b, a) + tuple(x.shape[2:]))


class SwapLeading(nn.Cell):
    """:func:`swap_leading_axes` as a layer of the convs that swap axes in their training graphs: split + concat,
    or on the CPU (``set_conv_algorithm`` calls :meth:`set_native`) the native copy of
    :func:`src.common.native.layout_ops`, whose gradient is the same copy back. Split + concat cuts a tensor into
    one piece per row of its second axis: the Winograd and polyphase convs' regroupings and their adjoints took
    0.25 s of pix2pixHD's 6.8 s step at 256x512 that way (profile, 2026-12-06)."""

    def __init__(self):
        super().__init__()
        self.native = None

    def set_native(self, flag=True):
        """Use the native copy (CPU only); with no C++ compiler, split + concat stays."""
        layout = native.layout_ops() if flag else None
        self.native = None if layout is None else layout[0]

    def construct(self, x):
        if self.native is None:
            return swap_leading_axes(x)
        return self.native(x)


def points_first(v, c, points, tiles, swap=swap_leading_axes):
    """A transformed input (c, points, tiles) -> (points, c, tiles) by ``swap`` (:func:`swap_leading_axes` or a
    :class:`SwapLeading`). In a MindSpore 2.8 CPU jit graph every Transpose kernel keeps about twice its output
    outside the memory pool for the life of the graph (measured), and split + concat is no slower: four 64-channel
    layers at 128x256, forward + backward, grew the process peak by 432 instead of 737 MB, in the same time."""
    return swap(v.reshape(c, points, tiles))


def output_planes(m, at, a_stack, th, tw, swap=swap_leading_axes):
    """``A^T m A`` of the point products ``m`` (a*a, k, th*tw) into the plane layout (1, k, th*t, tw*t), for the 1-D
    output transform ``at`` (t, a) and ``a_stack`` (its transpose stacked a times), one axis at a time and without a
    transpose: the columns (b -> j) per row point a, with the GEMM reading m transposed: (a, k*th*tw, j); the rows
    (a -> i) as one GEMM: (i, k*th, tw*j); i moved behind th by ``swap`` (as :func:`points_first`). Two 64-channel
    layers at 256x512 grew the process peak by 473 instead of 847 MB this way (split + concat against a Transpose),
    in the same time (a transposed conv with the channels as the batch held twice as much memory as the transpose,
    and DepthToSpace or stacks of the tile columns were slower)."""
    t, a = at.shape
    k = m.shape[1]
    z = ops.BatchMatMul(transpose_a=True)(m.reshape(a, a, k * th * tw), a_stack)
    z = ops.matmul(at, z.reshape(a, k * th * tw * t)).reshape(t, k * th, tw * t)
    return swap(z).reshape(1, k, th * t, tw * t)


def winograd_tile(n, h, w, kernel=3):
    """The output tile of the Winograd conv for an ``n x ? x h x w`` output (4 or 2 for a 3x3 kernel, 2 for 4x4), or
    0 for the direct conv. The output is computed in whole tiles, rounded up (extra zero padding at the bottom and
    right, cropped afterwards) when that adds at most 20% to it: a PatchGAN's 31x31 map becomes 32x32. The largest
    tile is taken that gives at least ``MIN_WINOGRAD_TILES`` tiles over the ``n`` samples that share the GEMMs
    (:class:`FastConv2d` transforms one sample at a time, so it passes 1): the GEMMs are ``points`` products of
    (out x in) by (in x tiles), and narrower ones do not pay for the transforms (measured on 2 cores,
    forward + backward of 3x3 convs with 1024 channels: 8x16 output, direct 73 ms, F(4x4) with 8 tiles 77 ms,
    F(2x2) with 32 tiles 48 ms; 16x32 output: direct 190, F(4x4) 86, F(2x2) 109 ms). The time saved and the
    transforms' cost both grow with in x out, so the channel counts do not enter."""
    for tile in WINOGRAD_TILES[kernel]:
        hh, ww = round_up(h, tile), round_up(w, tile)
        if hh * ww * 5 <= h * w * 6 and n * (hh // tile) * (ww // tile) >= MIN_WINOGRAD_TILES:
            return tile
    return 0


class _SwappedWeightGradConv(nn.Cell):
    """A valid stride-1 conv whose weight gradient is computed as a forward conv with the roles swapped: input
    channels as the batch, the output gradient as the kernel, ``dW[o, i] = sum_n x[n, i] (*) dy[n, o]``. MindSpore
    2.8's CPU weight-gradient kernel runs im2col + GEMM, slowly for few input channels (pix2pixHD's first 7x7 conv
    over 36 label channels at 256x512: 620 ms at about 50 GFLOP/s), and in a jit graph it holds its im2col buffer (925
    MB there) for the life of the graph; the forward conv takes 350 ms and holds no such buffer. The input gradient
    is MindSpore's own."""

    def __init__(self, out_channels, kernel_size):
        super().__init__()
        # (the forward is a primitive: with the functional conv2d in both construct and bprop, MindSpore 2.8 failed
        # to compile the graph, "The func graph is empty ... conv2d")
        self.conv = ops.Conv2D(out_channels, kernel_size)
        self.input_grad = ops.Conv2DBackpropInput(out_channels, kernel_size)
        self.swap = SwapLeading()

    def construct(self, x, weight):
        return self.conv(x, weight)

    def bprop(self, x, weight, out, dout):
        n, c, h, w = x.shape
        k, oh, ow = dout.shape[1], dout.shape[2], dout.shape[3]
        # one sample at a time, as the Winograd conv: a single sample's batch and channels swap with a reshape (a
        # Transpose kernel would keep about twice its output for the life of the graph)
        xs = ops.split(x, 1, 0) if n > 1 else (x,)
        ds = ops.split(dout, 1, 0) if n > 1 else (dout,)
        dweight = ops.conv2d(xs[0].reshape(c, 1, h, w), ds[0].reshape(k, 1, oh, ow))
        for i in range(1, n):
            dweight = dweight + ops.conv2d(xs[i].reshape(c, 1, h, w), ds[i].reshape(k, 1, oh, ow))
        # (c, k, kh, kw) -> (k, c, kh, kw)
        return self.input_grad(dout, weight, x.shape), self.swap(dweight)


def _winograd_tensors(kernel, tile):
    """The constants of the Winograd conv F(tile x tile, kernel x kernel), a = tile + kernel - 1 points per axis:
    input transform as a stride-``tile`` conv kernel (a*a, 1, a, a); weight transform (a*a, kernel^2); the 1-D
    output transform A^T (tile, a) and A stacked ``a`` times (a, a, tile) (the output transform is applied one axis
    at a time, see :meth:`_WinogradConv._output_transform`)."""
    tile_in, weight, _ = winograd_matrices(kernel, tile)
    at = _TRANSFORMS[(tile, kernel)][0].astype(np.float32)
    a = at.shape[1]
    a_stack = np.ascontiguousarray(np.broadcast_to(at.T, (a,) + at.T.shape))
    return tuple(ms.Tensor(m) for m in (tile_in, weight, at, a_stack))


class _WinogradConv(nn.Cell):
    """The stride-1 conv (zero padding ``padding``, no bias) of ``x`` by ``weight`` computed by Winograd's algorithm;
    :meth:`gradients` is its backward pass for :class:`CustomBackward`.

    Forward: the weights are transformed to ``u`` (``points`` matrices of out x in: 36 x 1024 x 1024, 151 MB, for
    pix2pixHD's residual convs), the input tiles to ``v``, and ``u[p] @ v[p]`` per point is transformed back. Under
    autodiff the product's backward saves ``u`` from the forward to the backward pass, i.e. 18 x 151 MB for
    pix2pixHD's generator: 2.6 of the 3.8 GB its step's memory pool peaked at. :meth:`gradients` needs only ``x``
    and ``weight``: it recomputes ``u`` and ``v`` and otherwise computes what autodiff does (``dm``, the output
    gradient taken through the output transform's adjoint; the input gradient, ``u[p]^T @ dm[p]`` through the input
    transform's adjoint; the weight gradient, ``dm[p] @ v[p]^T`` through the weight transform's adjoint).
    """

    def __init__(self, out_channels, kernel, padding):
        super().__init__()
        self.kernel, self.padding = kernel, padding
        self.tiles = WINOGRAD_TILES[kernel]
        # the constants of the preferred tile (a) and of the smaller one (b, 3x3 only; 4x4 has one tile)
        self.transforms_a = _winograd_tensors(kernel, self.tiles[0])
        self.transforms_b = self.transforms_a
        if len(self.tiles) > 1:
            self.transforms_b = _winograd_tensors(kernel, self.tiles[1])
        # GEMMs reading an operand transposed: MindSpore 2.8's CPU Transpose kernel keeps about twice its output
        # outside the memory pool for the life of a jit graph (see the module docstring)
        self.matmul_nt = ops.MatMul(transpose_b=True)
        self.matmul_tn = ops.MatMul(transpose_a=True)
        self.bmm_tn = ops.BatchMatMul(transpose_a=True)
        self.bmm_nt = ops.BatchMatMul(transpose_b=True)
        self.swap = SwapLeading()  # the regroupings of the transforms and their adjoints
        # the input transform's adjoint (its conv's input gradient), per tile
        self.input_adjoint_a, self.input_adjoint_b = (
            ops.Conv2DBackpropInput((t + kernel - 1) ** 2, t + kernel - 1, pad_mode="pad", pad=padding, stride=t)
            for t in (self.tiles + self.tiles)[:2]
        )

    def _transforms(self, tile):
        return self.transforms_a if tile == self.tiles[0] else self.transforms_b

    def construct(self, x, weight):
        r, p = self.kernel, self.padding
        h, w = x.shape[2] + 2 * p - r + 1, x.shape[3] + 2 * p - r + 1
        tile = winograd_tile(1, h, w, r)  # (the samples are transformed one at a time; FastConv2d checked it is one)
        transforms = self._transforms(tile)
        # once x exists: the transform depends on the weight only, and the scheduler could otherwise run every
        # layer's at the start of the graph and keep them all until their layer runs
        u = self._weight_transform(ops.depend(weight, x), transforms[1])
        return self._conv(x, u, p, h, w, tile, transforms)

    def recomputes(self, n, h, w, tile, out_channels):
        """Whether the backward pass recomputes the transforms (:class:`CustomBackward`) rather than autodiff
        keeping them: for 1024 or more output channels where ``u`` (points x out x in) is larger than ``v`` (points x
        in x the tiles of the ``n`` samples), i.e. pix2pixHD's 1024-channel residual blocks (151 MB of ``u`` each at
        256x512). Its VGG loss's 512-channel layers, its D's and VGG's large maps, and CycleGAN's 256-channel blocks
        keep autodiff's backward. pix2pixHD 256x512 peak and step (2026-12-05, idle, same sitting): recomputing in
        every Winograd layer 7.64 GB; where ``u`` is larger than ``v`` (VGG's 512-channel layers too) 7.44 GB, 5.92 s;
        in the 1024-channel layers only 7.14 GB, 5.97 s; autodiff everywhere 9.65 GB, 5.43 s."""
        tiles = n * (round_up(h, tile) // tile) * (round_up(w, tile) // tile)
        return out_channels >= RECOMPUTE_MIN_CHANNELS and out_channels > tiles

    def gradients(self, x, weight, dout):
        """The gradients of the conv with respect to ``x`` and ``weight`` for the output gradient ``dout``."""
        k, c, r, p = weight.shape[0], weight.shape[1], self.kernel, self.padding
        h, w = dout.shape[2], dout.shape[3]
        tile = winograd_tile(1, h, w, r)
        transforms = self._transforms(tile)
        input_adjoint = self.input_adjoint_a if tile == self.tiles[0] else self.input_adjoint_b
        u = self._weight_transform(weight, transforms[1])
        dms = [self._output_adjoint(d, tile, transforms[2], transforms[3]) for d in samples(dout)]
        # input gradient: dv[p] = u[p]^T @ dm[p] (the GEMM reads u transposed), then the input transform's adjoint
        dxs = [self._input_adjoint(self.bmm_tn(u, dm), x.shape, h, w, tile, transforms[0], input_adjoint) for dm in dms]
        # weight gradient: du[p] = dm[p] @ v[p]^T over all samples' tiles, then the weight transform's adjoint
        v = ops.cat([self._input_transform(s, p, h, w, tile, transforms[0]) for s in samples(x)], 2)
        du = self.bmm_nt(ops.cat(dms, 2) if len(dms) > 1 else dms[0], v)  # (points, k, c)
        dweight = self.matmul_tn(du.reshape(du.shape[0], k * c), transforms[1]).reshape(k, c, r, r)
        return dxs[0] if len(dxs) == 1 else ops.cat(dxs), dweight

    def _weight_transform(self, weight, transform):
        """G g G^T, straight into the (points, k, c) layout: the GEMM reads the weight transposed (an explicit
        transpose took as long as the product)."""
        k, c, r = weight.shape[0], weight.shape[1], self.kernel
        return self.matmul_nt(transform, weight.reshape(k * c, r * r)).reshape(transform.shape[0], k, c)

    def _input_adjoint(self, dv, x_shape, h, w, t, tile_in, input_adjoint):
        """The adjoint of :meth:`_input_transform` for one sample: (points, c, tiles) -> (1, c, H, W), as the
        stride-``t`` conv's input gradient with the channel planes as the batch (layout by ``swap``)."""
        points, c, tiles = dv.shape
        full_h, full_w = round_up(h, t), round_up(w, t)
        dv = self.swap(dv).reshape(c, points, full_h // t, -1)
        eh, ew = x_shape[2] + full_h - h, x_shape[3] + full_w - w  # the input with the whole tiles' zero rows
        dx = input_adjoint(dv, tile_in, (c, 1, eh, ew)).reshape(1, c, eh, ew)
        return crop(dx, x_shape[2], x_shape[3])

    def _conv(self, x, u, padding, h, w, tile, transforms):
        """The conv of every sample of ``x`` with the transformed weights ``u`` (points, out, in). One sample at a
        time: a sample's tiles are the GEMMs' columns without a transpose."""
        ys = [self._sample(s, u, padding, h, w, tile, transforms) for s in samples(x)]
        return ys[0] if len(ys) == 1 else ops.cat(ys)

    def _sample(self, x, u, padding, h, w, tile, transforms):
        v = self._input_transform(x, padding, h, w, tile, transforms[0])
        m = ops.bmm(u, v)  # (points, k, tiles): one GEMM per point
        return self._output_transform(m, h, w, tile, transforms[2], transforms[3])

    def _input_transform(self, x, padding, h, w, t, tile_in):
        """B^T d B of every tile of one sample (1 x c x H x W) for an h x w output, as (points, c, tiles)."""
        c = x.shape[1]
        full_h, full_w = round_up(h, t), round_up(w, t)  # whole tiles: extra zero padding at the bottom and right
        x = zero_extend(x, x.shape[2] + full_h - h, x.shape[3] + full_w - w)
        v = ops.conv2d(x.reshape(c, 1, x.shape[2], x.shape[3]), tile_in, stride=t, pad_mode="pad", padding=padding)
        return points_first(v, c, tile_in.shape[0], (full_h // t) * (full_w // t), self.swap)

    def _output_adjoint(self, dy, t, at, a_stack):
        """A dY A^T of every output tile of one sample's gradient (1 x k x h x w), as (points, k, tiles): the
        adjoint of :meth:`_output_transform`, step by step in reverse (the GEMMs autodiff would run)."""
        _, k, h, w = dy.shape
        full_h, full_w = round_up(h, t), round_up(w, t)
        dy = zero_extend(dy, full_h, full_w)
        th, tw = full_h // t, full_w // t
        a = at.shape[1]
        dz = self.swap(dy.reshape(k * th, t, tw * t))  # (t, k*th, tw*t)
        dz = self.matmul_tn(at, dz.reshape(t, k * th * tw * t)).reshape(a, k * th * tw, t)
        return self.bmm_nt(a_stack, dz).reshape(a * a, k, th * tw)

    def _output_transform(self, m, h, w, t, at, a_stack):
        """A^T m A into the plane layout (1, k, h, w) (:func:`output_planes`), cropped to h x w."""
        return crop(output_planes(m, at, a_stack, round_up(h, t) // t, round_up(w, t) // t, self.swap), h, w)


class CustomBackward(nn.Cell):
    """Gives ``y = conv(x, weight)``, computed outside (without a gradient), the backward pass ``conv.gradients(x,
    weight, dout)`` (:meth:`_WinogradConv.gradients`, and the layers of ``src.common.phase_conv``), run once the
    output gradient exists, so that what it recomputes is not kept from the forward pass. The forward stays outside
    this Cell: with the same Python function parsed into both a Cell's construct and its bprop, MindSpore 2.8 fails to
    compile the graph ("The func graph is empty")."""

    def __init__(self, conv):
        super().__init__()
        self.conv = conv

    def construct(self, x, weight, y):
        return y

    def bprop(self, x, weight, y, out, dout):
        weight = ops.depend(weight, dout)  # recomputed here, not kept from the forward pass
        dx, dweight = self.conv.gradients(x, weight, dout)
        return dx, dweight, ops.zeros_like(y)


class FastConv2d(nn.Conv2d):
    """``nn.Conv2d`` (zero padding ``padding`` on every side, or none) computed where that is faster on the CPU by
    Winograd (F(4x4, 3x3) or F(2x2, 3x3), F(2x2, 4x4)), as a sum of shifted GEMM planes, or with its weight gradient as
    a swapped-roles forward conv; see the module docstring."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, has_bias=True):
        if padding:
            super().__init__(in_channels, out_channels, kernel_size, stride, pad_mode="pad", padding=padding,
                             has_bias=has_bias)  # fmt: skip
        else:
            super().__init__(in_channels, out_channels, kernel_size, stride, pad_mode="valid", has_bias=has_bias)
        self.zero_padding = int(padding)
        self.fast_algorithm = choose_algorithm(in_channels, out_channels, kernel_size, stride, self.zero_padding)
        self.use_fast = self.fast_algorithm != "direct"  # set_conv_algorithm switches it
        if self.fast_algorithm == "shift":
            self.plane_matmul = ops.MatMul()
            if self.zero_padding:
                p = self.zero_padding
                self.zero_pad = ops.Pad(((0, 0), (0, 0), (p, p), (p, p)))
        if self.fast_algorithm == "swap":
            self.swapped = _SwappedWeightGradConv(out_channels, kernel_size)
        if self.fast_algorithm == "winograd":
            self.winograd = _WinogradConv(out_channels, _pair(kernel_size)[0], self.zero_padding)
            self.winograd_backward = CustomBackward(self.winograd)
        self.keep_transforms = False  # keep_transforms(): autodiff keeps u where the backward pass would recompute it

    def construct(self, x):
        if self.use_fast:
            if self.fast_algorithm == "winograd":
                r = self.winograd.kernel
                h, w = x.shape[2] + 2 * self.zero_padding - r + 1, x.shape[3] + 2 * self.zero_padding - r + 1
                tile = winograd_tile(1, h, w, r)  # (the samples are transformed one at a time)
                if tile and self.recomputes(x.shape[0], h, w, tile):
                    y = self.winograd(ops.stop_gradient(x), ops.stop_gradient(self.weight))
                    return self._add_bias(self.winograd_backward(x, self.weight, y))
                if tile:
                    return self._add_bias(self.winograd(x, self.weight))
            elif self.fast_algorithm == "swap":
                return self._add_bias(self.swapped(x, self.weight))
            else:
                return self._shifted_sum(x)
        return super().construct(x)

    def recomputes(self, n, h, w, tile):
        """Whether the Winograd backward pass recomputes the transformed weights (:meth:`_WinogradConv.recomputes`)
        rather than autodiff keeping them from the forward pass; never after :func:`keep_transforms`."""
        return not self.keep_transforms and self.winograd.recomputes(n, h, w, tile, self.out_channels)

    def _add_bias(self, y):
        if self.has_bias:
            return ops.bias_add(y, self.bias)
        return y

    def _shifted_sum(self, x):
        n, c, hp, wp = x.shape
        o = self.out_channels
        kh, kw = _pair(self.kernel_size)
        # every kernel tap applied to the whole input at once: planes p[i, j, o] = W[o, :, i, j] . x, one 2-D GEMM
        # per sample (a GEMM broadcast over the batch has Transpose kernels in its gradient, holding an index of 8
        # bytes per element of the planes: 230 MB for pix2pixHD's last conv at 256x512; see swap_leading_axes)
        taps = self.weight.transpose(2, 3, 0, 1).reshape(kh * kw * o, c)  # (a small weight)
        planes = [self.plane_matmul(taps, s.reshape(c, hp * wp)) for s in samples(x)]
        p = (planes[0] if n == 1 else ops.cat(planes)).reshape(n, kh * kw * o, hp, wp)
        if self.zero_padding:  # the planes of a zero-padded input are the zero-padded planes (fewer of them)
            p = self.zero_pad(p)
            hp, wp = hp + 2 * self.zero_padding, wp + 2 * self.zero_padding
        h, w = hp - kh + 1, wp - kw + 1
        # out[o, y, x] = sum_ij p[i, j, o, y + i, x + j]: rows first, then columns. split + narrow on 4-D tensors;
        # MindSpore 2.8's CPU strided slice of a 5-D tensor is ~50x slower.
        rows = ops.split(p, kw * o, 1)
        q = ops.narrow(rows[0], 2, 0, h)
        for i in range(1, kh):
            q = q + ops.narrow(rows[i], 2, i, h)
        cols = ops.split(q, o, 1)
        y = ops.narrow(cols[0], 3, 0, w)
        for j in range(1, kw):
            y = y + ops.narrow(cols[j], 3, j, w)
        return self._add_bias(y)


def resolve_conv_algorithm(algorithm, device_target="CPU"):
    """The config's ``conv_algorithm`` -> ``fast`` or ``direct``. ``auto`` is ``fast`` on the CPU only: on GPU and
    Ascend, cuDNN and CANN have their own fast convolutions (cuDNN's include Winograd)."""
    if algorithm not in CONV_ALGORITHMS:
        raise UserError(f"unknown conv_algorithm '{algorithm}'; valid values are: {', '.join(CONV_ALGORITHMS)}")
    if algorithm == "auto":
        return "fast" if str(device_target).upper() == "CPU" else "direct"
    return algorithm


def set_conv_algorithm(net, algorithm, device_target="CPU"):
    """``algorithm`` as the config's ``conv_algorithm`` (``auto`` resolved for ``device_target``). ``fast``: every
    conv of ``net`` with a ``fast_algorithm`` (:class:`FastConv2d`, the stride-2 convs of ``src.common.polyphase``
    and ``src.common.phase_conv``) uses it where one applies; ``direct``: MindSpore's own convolution everywhere. Set
    it before the network's graphs are compiled. Returns ``net``."""
    algorithm = resolve_conv_algorithm(algorithm, device_target)
    cpu = str(device_target).upper() == "CPU"
    for _, cell in net.cells_and_names():
        if hasattr(cell, "fast_algorithm"):
            cell.use_fast = algorithm == "fast" and cell.fast_algorithm != "direct"
        if hasattr(cell, "set_native"):  # native CPU kernels (src.common.native) for the CPU only
            cell.set_native(algorithm == "fast" and cpu)
    return net


def keep_transforms(net):
    """The Winograd convs of ``net`` keep their transformed weights ``u`` from the forward to the backward pass
    (autodiff's backward) even where :meth:`_WinogradConv.recomputes` would recompute them: one weight transform
    (a GEMM writing 151 MB for a 1024-channel conv, 20-30 ms on 2 cores) less per step, for ``u`` kept through the
    step. pix2pixHD's generator does this for its last two residual blocks (``src.pix2pixhd.networks``). Returns
    ``net``."""
    for _, cell in net.cells_and_names():
        if isinstance(cell, FastConv2d):
            cell.keep_transforms = True
    return net


@contextlib.contextmanager
def forward_only(net):
    """Within this context the layers of ``net`` that have forms without a gradient (the native transforms of
    ``src.common.polyphase``) may use them even in training mode: for inference with batch statistics and dropout
    (pix2pix's ``test_mode paper``), where no gradient is taken. Graphs traced inside keep what they were traced
    with; the training step, traced outside, never sees it."""
    cells = [cell for _, cell in net.cells_and_names() if hasattr(cell, "forward_only")]
    for cell in cells:
        cell.forward_only = True
    try:
        yield net
    finally:
        for cell in cells:
            cell.forward_only = False

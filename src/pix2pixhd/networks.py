"""pix2pixHD networks: global generator, local enhancer, feature encoder with instance-wise average pooling, and the
multi-scale discriminator.

Layouts follow the paper (Wang et al., CVPR 2018) and the behaviour of its reference implementation:

- ``GlobalGenerator``: reflect-pad 3, conv 7x7, norm, ReLU; ``n_downsampling`` x (conv 3x3 stride 2, norm, ReLU);
  ``n_blocks`` residual blocks; ``n_downsampling`` x (transposed conv 3x3 stride 2, output padding 1, norm, ReLU);
  reflect-pad 3, conv 7x7, tanh. Every conv has a bias; instance norm has no affine parameters.
  The layers before the output head are ``model`` (parameter names ``model.*``); the head is ``head``. The local
  enhancer holds a global generator without its head under the same name ``model``, so a 512p ``G`` checkpoint
  loads into the global part of a 1024p ``G`` (``load_pretrain``).
- ``LocalEnhancer``: the global generator runs on the input downsampled ``n_local_enhancers`` times; each local
  branch downsamples its full-resolution input once, adds the coarser output and upsamples.
- ``Encoder``: an encoder-decoder whose output is averaged over each instance (``instance_pool``).
- ``MultiscaleDiscriminator``: ``num_D`` PatchGANs returning every block's features, on the input downsampled by
  ``AvgPool2d(3, 2, padding 1, count_include_pad=False)`` between scales (:class:`AvgPoolExcludePad`, which has an
  ONNX-exportable form).
"""

from mindspore import nn, ops

from src.common.discriminators import NLayerDiscriminator
from src.common.fast_conv import keep_transforms
from src.common.layers import MirrorPad2d, conv2d, conv_transpose2d
from src.common.norm import make_norm
from src.errors import UserError

# The residual blocks (the last ones) whose Winograd convs keep their transformed weights from the forward to the
# backward pass instead of recomputing them (src.common.fast_conv.keep_transforms): 151 MB each for 1024 channels.
# pix2pixHD's step, 2026-12-06, 2 cores: two blocks (four convs) add 0.5 GB at 256x512 (after training 5.33 -> 5.84
# GB) and 0.3-0.4 GB at 512x1024 (9.64 -> 9.94-10.05 GB), and save the four recomputed weight transforms; three
# blocks added 1.75 GB at 256x512 (the memory pool grows in steps), all nine 2.3 GB.
KEPT_TRANSFORM_BLOCKS = 2


def reflect_pad(p):
    """Reflection padding (MirrorPad; switched to an ONNX-exportable form by ``set_export_friendly`` for export)."""
    return MirrorPad2d(p, "REFLECT")


def conv_transpose_up(in_ch, out_ch):
    """Transposed conv 3x3, stride 2, padding 1, output padding 1 (doubles H and W), with bias."""
    return conv_transpose2d(in_ch, out_ch, 3, 2, 1, has_bias=True, output_padding=1)


class AvgPoolExcludePad(nn.Cell):
    """``AvgPool2d(kernel, stride, padding, count_include_pad=False)``: the mean over the window's pixels that lie
    inside the image.

    Training and inference use MindSpore's pooling (which lowers to AvgPool3D). AvgPool3D has no ONNX exporter, so
    with ``export_friendly`` set (``src.common.layers.set_export_friendly``, as export.py does for ONNX) the same
    values are computed as (zero-pad, average pool without padding) divided by the same pooling of a zero-padded
    map of ones, i.e. the window sum over the number of valid pixels; both ops export (Pad, AveragePool). A test
    compares the two forms.
    """

    def __init__(self, kernel_size=3, stride=2, padding=1):
        super().__init__()
        self.pool = nn.AvgPool2d(kernel_size, stride, pad_mode="pad", padding=padding, count_include_pad=False)
        self.zero_pad = nn.Pad(((0, 0), (0, 0), (padding, padding), (padding, padding)), mode="CONSTANT")
        self.pool_valid = nn.AvgPool2d(kernel_size, stride, pad_mode="valid")
        self.export_friendly = False

    def construct(self, x):
        if not self.export_friendly:
            return self.pool(x)
        valid = self.pool_valid(self.zero_pad(ops.ones_like(x[:, :1])))  # fraction of the window inside the image
        return self.pool_valid(self.zero_pad(x)) / valid


def downsample_avg():
    """Average pooling 3, stride 2, padding 1, padding excluded from the mean (between D scales and G levels)."""
    return AvgPoolExcludePad(3, 2, 1)


class ResnetBlock(nn.Cell):
    """x + [reflect-pad 1, conv 3x3, norm, ReLU, reflect-pad 1, conv 3x3, norm](x)."""

    def __init__(self, dim, norm="instance"):
        super().__init__()
        self.block = nn.SequentialCell(
            [
                reflect_pad(1),
                conv2d(dim, dim, 3, 1, 0, has_bias=True),
                make_norm(norm, dim),
                nn.ReLU(),
                reflect_pad(1),
                conv2d(dim, dim, 3, 1, 0, has_bias=True),
                make_norm(norm, dim),
            ]
        )

    def construct(self, x):
        return x + self.block(x)


def _encoder_decoder(input_nc, ngf, n_downsampling, n_blocks, norm):
    """Layers of the global generator up to (and including) the last upsampling ReLU."""
    layers = [reflect_pad(3), conv2d(input_nc, ngf, 7, 1, 0, has_bias=True), make_norm(norm, ngf), nn.ReLU()]
    for i in range(n_downsampling):
        mult = 2**i
        layers += [
            conv2d(ngf * mult, ngf * mult * 2, 3, 2, 1, has_bias=True),
            make_norm(norm, ngf * mult * 2),
            nn.ReLU(),
        ]
    mult = 2**n_downsampling
    blocks = [ResnetBlock(ngf * mult, norm) for _ in range(n_blocks)]
    for block in blocks[max(0, n_blocks - KEPT_TRANSFORM_BLOCKS) :]:
        keep_transforms(block)
    layers += blocks
    for i in range(n_downsampling):
        mult = 2 ** (n_downsampling - i)
        layers += [conv_transpose_up(ngf * mult, ngf * mult // 2), make_norm(norm, ngf * mult // 2), nn.ReLU()]
    return layers


def _output_head(ngf, output_nc):
    return nn.SequentialCell([reflect_pad(3), conv2d(ngf, output_nc, 7, 1, 0, has_bias=True), nn.Tanh()])


class GlobalGenerator(nn.Cell):
    """G1 of pix2pixHD (see the module docstring)."""

    def __init__(self, input_nc, output_nc, ngf=64, n_downsampling=3, n_blocks=9, norm="instance"):
        super().__init__()
        if n_blocks < 0 or n_downsampling < 1:
            raise UserError(
                f"n_downsample_global must be >= 1 and n_blocks_global >= 0, got {n_downsampling}, {n_blocks}"
            )
        self.model = nn.SequentialCell(_encoder_decoder(input_nc, ngf, n_downsampling, n_blocks, norm))
        self.head = _output_head(ngf, output_nc)
        self.size_multiple = 2**n_downsampling

    def construct(self, x):
        return self.head(self.model(x))

    def stages(self):
        """The layers as a chain of stages (tuples of cells) whose composition is this network: the layers before the
        residual blocks, each block, and the layers after them with the head. A train step can then run each
        stage's backward pass on its own and update the stage's parameters before the next one (see
        ``Pix2PixHDModel._build_step``)."""
        layers = tuple(self.model.cells())
        blocks = [i for i, layer in enumerate(layers) if isinstance(layer, ResnetBlock)]
        if not blocks:
            return (layers + (self.head,),)
        return (layers[: blocks[0]],) + tuple((layers[i],) for i in blocks) + (layers[blocks[-1] + 1 :] + (self.head,),)


class LocalEnhancer(nn.Cell):
    """G2 of pix2pixHD: ``n_local_enhancers`` local branches of width ``ngf`` around a global generator of width
    ``ngf * 2**n_local_enhancers`` that runs at ``1 / 2**n_local_enhancers`` of the resolution."""

    def __init__(
        self,
        input_nc,
        output_nc,
        ngf=32,
        n_downsample_global=3,
        n_blocks_global=9,
        n_local_enhancers=1,
        n_blocks_local=3,
        norm="instance",
    ):
        super().__init__()
        if n_local_enhancers < 1:
            raise UserError(f"n_local_enhancers must be >= 1 for netG local, got {n_local_enhancers}")
        self.n_local_enhancers = n_local_enhancers
        ngf_global = ngf * 2**n_local_enhancers
        self.model = nn.SequentialCell(
            _encoder_decoder(input_nc, ngf_global, n_downsample_global, n_blocks_global, norm)
        )
        downs, ups = [], []
        for n in range(1, n_local_enhancers + 1):
            width = ngf * 2 ** (n_local_enhancers - n)
            downs.append(
                nn.SequentialCell(
                    [
                        reflect_pad(3),
                        conv2d(input_nc, width, 7, 1, 0, has_bias=True),
                        make_norm(norm, width),
                        nn.ReLU(),
                        conv2d(width, width * 2, 3, 2, 1, has_bias=True),
                        make_norm(norm, width * 2),
                        nn.ReLU(),
                    ]
                )
            )
            up = [ResnetBlock(width * 2, norm) for _ in range(n_blocks_local)]
            up += [conv_transpose_up(width * 2, width), make_norm(norm, width), nn.ReLU()]
            if n == n_local_enhancers:
                up += [reflect_pad(3), conv2d(ngf, output_nc, 7, 1, 0, has_bias=True), nn.Tanh()]
            ups.append(nn.SequentialCell(up))
        self.local_down = nn.CellList(downs)
        self.local_up = nn.CellList(ups)
        self.downsample = downsample_avg()
        self.size_multiple = 2 ** (n_downsample_global + n_local_enhancers)

    def construct(self, x):
        pyramid = [x]
        for _ in range(self.n_local_enhancers):
            pyramid.append(self.downsample(pyramid[-1]))
        out = self.model(pyramid[self.n_local_enhancers])
        for n in range(self.n_local_enhancers):
            level = pyramid[self.n_local_enhancers - 1 - n]
            out = self.local_up[n](self.local_down[n](level) + out)
        return out


def instance_pool(feats, segment_ids, num_segments):
    """Instance-wise average pooling: every pixel gets the mean of ``feats`` over the pixels of its segment.

    ``feats``: N x C x H x W; ``segment_ids``: N x H x W int32 in ``[0, num_segments)`` and disjoint across the batch
    (see :func:`src.pix2pixhd.features.segment_ids`). Differentiable (segment sums and a gather).
    """
    n, c, h, w = feats.shape
    flat = feats.transpose(0, 2, 3, 1).reshape(n * h * w, c)
    ids = segment_ids.reshape(n * h * w)
    sums = ops.unsorted_segment_sum(flat, ids, num_segments)
    counts = ops.unsorted_segment_sum(ops.ones((n * h * w, 1), flat.dtype), ids, num_segments)
    means = sums / ops.maximum(counts, 1.0)
    out = ops.gather(means, ids, 0)
    return out.reshape(n, h, w, c).transpose(0, 3, 1, 2)


class Encoder(nn.Cell):
    """Feature encoder E: image -> ``feat_num`` channels, averaged over each instance."""

    def __init__(self, input_nc, output_nc, ngf=16, n_downsampling=4, norm="instance"):
        super().__init__()
        layers = _encoder_decoder(input_nc, ngf, n_downsampling, 0, norm)
        layers += [reflect_pad(3), conv2d(ngf, output_nc, 7, 1, 0, has_bias=True), nn.Tanh()]
        self.model = nn.SequentialCell(layers)
        self.size_multiple = 2**n_downsampling

    def construct(self, x, segment_ids, num_segments):
        return instance_pool(self.model(x), segment_ids, num_segments)


class MultiscaleDiscriminator(nn.Cell):
    """``num_D`` PatchGANs (kernel 4, padding 2, intermediate features) at successively halved resolutions; as the
    reference, widths ``nf = min(nf * 2, 512)`` and every conv with a bias (also with batch norm).

    Returns a list (one per scale, finest first) of lists of block outputs; the last of each is the patch map.
    """

    def __init__(self, input_nc, ndf=64, n_layers=3, norm="instance", num_D=2):
        super().__init__()
        self.num_D = num_D
        self.nets = nn.CellList(
            [
                NLayerDiscriminator(
                    input_nc, ndf, n_layers, norm, 0.2, return_features=True, padding=2, max_width=512, always_bias=True
                )
                for _ in range(num_D)
            ]
        )
        self.downsample = downsample_avg()

    def construct(self, x):
        results = []
        for i in range(self.num_D):
            if i > 0:
                x = self.downsample(x)
            results.append(self.nets[i](x))
        return results

"""The ResNet generator of CycleGAN, as in the paper's reference implementation (``ResnetGenerator``).

c7s1-ngf, d2ngf, d4ngf, ``n_blocks`` x R4ngf, u2ngf, ungf, c7s1-output_nc:

- reflection padding 3 + 7x7 conv + norm + ReLU;
- two 3x3 stride-2 convs (zero padding 1) + norm + ReLU;
- ``n_blocks`` residual blocks ``x + [pad, conv3x3, norm, ReLU, (dropout 0.5), pad, conv3x3, norm](x)``, each its
  own Cell with its own weights;
- two 3x3 stride-2 transposed convs (padding 1, output padding 1) + norm + ReLU;
- reflection padding 3 + 7x7 conv (with bias) + Tanh.

``pad_mode`` is the padding inside the residual blocks (the reference's ``padding_type``); the two 7x7 convs always
use reflection padding, as in the reference (the model zoo applied ``pad_mode`` to them too).

Convs before a batch norm have no bias, as in the reference; with instance norm (no affine parameters) they keep it,
which gives 11,378,179 parameters for resnet_9blocks at ngf 64.
"""

from mindspore import nn

from src.common.layers import MirrorPad2d, conv2d, conv_transpose2d
from src.common.norm import conv_has_bias, make_norm
from src.errors import UserError

PAD_MODES = ("REFLECT", "CONSTANT", "SYMMETRIC")
SIZE_MULTIPLE = 4  # two stride-2 downsamplings, undone exactly by the two transposed convs


def make_pad(pad_mode, width):
    """Spatial padding of ``width`` pixels on each side of an NCHW tensor: REFLECT, CONSTANT (zeros) or SYMMETRIC."""
    mode = str(pad_mode).upper()
    if mode not in PAD_MODES:
        raise UserError(f"unknown pad_mode '{pad_mode}'; valid modes are: {', '.join(PAD_MODES)}")
    if mode == "CONSTANT":
        return nn.Pad(((0, 0), (0, 0), (width, width), (width, width)), mode="CONSTANT")
    return MirrorPad2d(width, mode)


class ResnetBlock(nn.Cell):
    """``x + conv_block(x)``; ``conv_block`` = pad, conv3x3, norm, ReLU, [dropout], pad, conv3x3, norm."""

    def __init__(self, dim, norm="instance", use_dropout=False, pad_mode="REFLECT"):
        super().__init__()
        use_bias = conv_has_bias(norm)
        layers = [make_pad(pad_mode, 1), conv2d(dim, dim, 3, 1, 0, has_bias=use_bias), make_norm(norm, dim), nn.ReLU()]
        if use_dropout:
            layers.append(nn.Dropout(p=0.5))
        layers += [make_pad(pad_mode, 1), conv2d(dim, dim, 3, 1, 0, has_bias=use_bias), make_norm(norm, dim)]
        self.conv_block = nn.SequentialCell(layers)

    def construct(self, x):
        return x + self.conv_block(x)


class ResnetGenerator(nn.Cell):
    """ResNet generator with ``n_blocks`` residual blocks (9 = resnet_9blocks, 6 = resnet_6blocks)."""

    def __init__(self, input_nc=3, output_nc=3, ngf=64, n_blocks=9, norm="instance", use_dropout=False,
                 pad_mode="REFLECT"):  # fmt: skip
        super().__init__()
        if n_blocks < 0:
            raise UserError(f"the ResNet generator needs 0 or more residual blocks (g_layers), got {n_blocks}")
        if ngf < 1:
            raise UserError(f"ngf must be at least 1, got {ngf}")
        use_bias = conv_has_bias(norm)
        self.n_blocks = n_blocks
        layers = [
            make_pad("REFLECT", 3),
            conv2d(input_nc, ngf, 7, 1, 0, has_bias=use_bias),
            make_norm(norm, ngf),
            nn.ReLU(),
        ]
        for i in range(2):  # downsampling
            mult = 2**i
            layers += [
                conv2d(ngf * mult, ngf * mult * 2, 3, 2, 1, has_bias=use_bias),
                make_norm(norm, ngf * mult * 2),
                nn.ReLU(),
            ]
        dim = ngf * 4
        # a fresh Cell per block: no weight sharing between blocks
        layers += [ResnetBlock(dim, norm, use_dropout, pad_mode) for _ in range(n_blocks)]
        for i in range(2):  # upsampling
            mult = 2 ** (2 - i)
            layers += [
                conv_transpose2d(ngf * mult, ngf * mult // 2, 3, 2, 1, has_bias=use_bias, output_padding=1),
                make_norm(norm, ngf * mult // 2),
                nn.ReLU(),
            ]
        layers += [make_pad("REFLECT", 3), conv2d(ngf, output_nc, 7, 1, 0, has_bias=True), nn.Tanh()]
        self.model = nn.SequentialCell(layers)

    @property
    def size_multiple(self):
        """Input height and width must be multiples of this."""
        return SIZE_MULTIPLE

    def construct(self, x):
        return self.model(x)


def check_resnet_size(height, width, pad_mode="REFLECT", what="crop_size"):
    """Raise a clear error when an image is too small or not a multiple of 4 for the ResNet generator."""
    if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
        raise UserError(
            f"{what} {height}x{width} does not fit the ResNet generator: height and width must be multiples of "
            f"{SIZE_MULTIPLE}"
        )
    # reflection padding of 1 in the residual blocks needs at least 2 pixels at 1/4 resolution
    if str(pad_mode).upper() != "CONSTANT" and min(height, width) < 2 * SIZE_MULTIPLE:
        raise UserError(
            f"{what} {height}x{width} is too small for the ResNet generator with pad_mode {pad_mode}; use at least "
            f"{2 * SIZE_MULTIPLE}x{2 * SIZE_MULTIPLE}"
        )

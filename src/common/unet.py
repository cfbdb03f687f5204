"""U-Net generator of pix2pix (also a CycleGAN option), as in the paper's reference implementation.

``g_layers`` downsamplings (7 = unet_128, 8 = unet_256); each level halves the image, so the input side must be a
multiple of ``2 ** g_layers``. Encoder C64-C128-C256-C512-C512-C512-C512-C512, decoder with skip connections and
dropout 0.5 in the three blocks next to the innermost one.

One behaviour of the PyTorch reference is kept on purpose: its encoder LeakyReLU runs in place on the block input,
so the skip connection carries ``leaky_relu(x)``, not ``x``. We compute that same function explicitly.
"""

from mindspore import nn, ops

from src.common.layers import LeakyReLU, conv2d, conv_transpose2d
from src.common.norm import conv_has_bias, make_norm
from src.errors import UserError


class UnetBlock(nn.Cell):
    """One U-Net level: down-conv, the inner levels, up-conv; non-outermost levels concatenate the skip."""

    def __init__(
        self,
        outer_nc,
        inner_nc,
        input_nc=None,
        submodule=None,
        outermost=False,
        innermost=False,
        norm="batch",
        use_dropout=False,
        alpha=0.2,
    ):
        super().__init__()
        self.outermost = outermost
        input_nc = outer_nc if input_nc is None else input_nc
        use_bias = conv_has_bias(norm)
        self.down_act = LeakyReLU(alpha)
        self.down_conv = conv2d(input_nc, inner_nc, 4, 2, 1, has_bias=use_bias)
        if outermost:
            up_conv = conv_transpose2d(inner_nc * 2, outer_nc, 4, 2, 1, has_bias=True)
            down, up = [self.down_conv], [nn.ReLU(), up_conv, nn.Tanh()]
        elif innermost:
            up_conv = conv_transpose2d(inner_nc, outer_nc, 4, 2, 1, has_bias=use_bias)
            down, up = [self.down_conv], [nn.ReLU(), up_conv, make_norm(norm, outer_nc)]
        else:
            up_conv = conv_transpose2d(inner_nc * 2, outer_nc, 4, 2, 1, has_bias=use_bias)
            down = [self.down_conv, make_norm(norm, inner_nc)]
            up = [nn.ReLU(), up_conv, make_norm(norm, outer_nc)]
            if use_dropout:
                up.append(nn.Dropout(p=0.5))
        layers = down + ([submodule] if submodule is not None else []) + up
        self.model = nn.SequentialCell(layers)

    def construct(self, x):
        if self.outermost:
            return self.model(x)
        h = self.down_act(x)
        return ops.cat((h, self.model(h)), 1)


class UnetGenerator(nn.Cell):
    """U-Net with ``num_downs`` levels; ``ngf`` filters in the outermost conv."""

    def __init__(self, input_nc=3, output_nc=3, num_downs=8, ngf=64, norm="batch", use_dropout=True, alpha=0.2):
        super().__init__()
        if num_downs < 5:
            raise UserError(f"g_layers must be at least 5 for the U-Net generator, got {num_downs}")
        self.num_downs = num_downs
        kw = dict(norm=norm, alpha=alpha)
        block = UnetBlock(ngf * 8, ngf * 8, innermost=True, **kw)
        for _ in range(num_downs - 5):
            block = UnetBlock(ngf * 8, ngf * 8, submodule=block, use_dropout=use_dropout, **kw)
        block = UnetBlock(ngf * 4, ngf * 8, submodule=block, **kw)
        block = UnetBlock(ngf * 2, ngf * 4, submodule=block, **kw)
        block = UnetBlock(ngf, ngf * 2, submodule=block, **kw)
        self.model = UnetBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True, **kw)

    @property
    def size_multiple(self):
        """Input height and width must be multiples of this."""
        return 2**self.num_downs

    def construct(self, x):
        return self.model(x)


def check_unet_size(num_downs, height, width, what="crop_size"):
    """Raise a clear error when an image size does not fit a U-Net of ``num_downs`` levels."""
    multiple = 2**num_downs
    if height % multiple or width % multiple:
        fit = max(5, min(num_downs, _max_levels(min(height, width))))
        raise UserError(
            f"{what} {height}x{width} does not fit a U-Net with g_layers={num_downs}: height and width must be "
            f"multiples of {multiple}; use a size that is a multiple of {multiple} or g_layers={fit} or less"
        )


def _max_levels(side):
    levels = 0
    while side % 2 == 0 and side > 1:
        side //= 2
        levels += 1
    return levels

"""PatchGAN discriminators (pix2pix, CycleGAN, and the per-scale net of pix2pixHD)."""

from mindspore import nn

from src.common.layers import LeakyReLU, conv2d
from src.common.norm import conv_has_bias, make_norm
from src.errors import UserError


class NLayerDiscriminator(nn.Cell):
    """PatchGAN: ``n_layers`` stride-2 4x4 convs (3 = the 70x70 PatchGAN), then two stride-1 convs to one channel.

    With ``return_features`` the construct returns the list of every block's output (pix2pixHD's feature matching);
    the last entry is the patch map. Widths are junyanz's ``ndf * min(2**n, 8)``, or with ``max_width`` NVIDIA
    pix2pixHD's ``nf = min(nf * 2, max_width)``; convs before a norm have a bias only before instance norm (junyanz),
    or always with ``always_bias`` (NVIDIA).
    """

    def __init__(
        self,
        input_nc,
        ndf=64,
        n_layers=3,
        norm="batch",
        alpha=0.2,
        return_features=False,
        padding=1,
        kernel_size=4,
        max_width=None,
        always_bias=False,
    ):
        super().__init__()
        if n_layers < 1:
            raise UserError(f"d_layers must be at least 1, got {n_layers}")
        use_bias = True if always_bias else conv_has_bias(norm)
        kw, pw = kernel_size, padding
        if max_width is None:  # junyanz: ndf * min(2**n, 8)
            widths = [ndf * min(2**n, 8) for n in range(n_layers + 1)]
        else:  # NVIDIA pix2pixHD: nf = min(nf * 2, max_width)
            widths = [ndf]
            for _ in range(n_layers):
                widths.append(min(widths[-1] * 2, max_width))
        blocks = [[conv2d(input_nc, ndf, kw, 2, pw, has_bias=True), LeakyReLU(alpha)]]
        for n in range(1, n_layers + 1):
            stride = 2 if n < n_layers else 1
            blocks.append(
                [
                    conv2d(widths[n - 1], widths[n], kw, stride, pw, has_bias=use_bias),
                    make_norm(norm, widths[n]),
                    LeakyReLU(alpha),
                ]
            )
        blocks.append([conv2d(widths[-1], 1, kw, 1, pw, has_bias=True)])
        self.return_features = return_features
        if return_features:
            self.blocks = nn.CellList([nn.SequentialCell(b) for b in blocks])
        else:
            self.model = nn.SequentialCell([layer for b in blocks for layer in b])

    def construct(self, x):
        if not self.return_features:
            return self.model(x)
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return feats


class PixelDiscriminator(nn.Cell):
    """1x1 PixelGAN: classifies every pixel on its own."""

    def __init__(self, input_nc, ndf=64, norm="batch", alpha=0.2):
        super().__init__()
        use_bias = conv_has_bias(norm)
        self.model = nn.SequentialCell(
            [
                conv2d(input_nc, ndf, 1, 1, 0, has_bias=True),
                LeakyReLU(alpha),
                conv2d(ndf, ndf * 2, 1, 1, 0, has_bias=use_bias),
                make_norm(norm, ndf * 2),
                LeakyReLU(alpha),
                conv2d(ndf * 2, 1, 1, 1, 0, has_bias=use_bias),
            ]
        )

    def construct(self, x):
        return self.model(x)


def make_discriminator(kind, input_nc, ndf=64, n_layers=3, norm="batch", alpha=0.2):
    """A discriminator by name: ``basic`` (PatchGAN with ``n_layers``) or ``pixel``."""
    if kind == "basic":
        return NLayerDiscriminator(input_nc, ndf, n_layers, norm, alpha)
    if kind == "pixel":
        return PixelDiscriminator(input_nc, ndf, norm, alpha)
    raise UserError(f"unknown netD '{kind}'; valid discriminators are: basic, pixel")

"""The polyphase Winograd forms of stride-2 convs and transposed convs compute MindSpore's own convolutions, forward
and backward."""

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn

import src.device  # noqa: F401
from src.common import polyphase
from src.common.layers import conv_transpose2d
from tests.conv_check import assert_close, copy_params, layer_outputs_and_grads, outputs_and_grads


@pytest.mark.parametrize(
    "kernel, padding, height, width, tile",
    [(4, 1, 16, 16, 2), (4, 1, 16, 24, 4), (4, 2, 13, 11, 2), (3, 1, 16, 16, 4), (3, 1, 15, 10, 2), (4, 0, 12, 12, 4)],
)
def test_strided_conv_matches_direct(kernel, padding, height, width, tile):
    rng = np.random.default_rng(kernel * 100 + padding * 10 + height)
    direct = nn.Conv2d(5, 6, kernel, 2, pad_mode="pad" if padding else "valid", padding=padding, has_bias=False)
    tf = polyphase.PolyphaseTransforms(False, tile, kernel)
    x = ms.Tensor(rng.standard_normal((2, 5, height, width)).astype(np.float32))
    oh, ow = (height + 2 * padding - kernel) // 2 + 1, (width + 2 * padding - kernel) // 2 + 1
    dy = ms.Tensor(rng.standard_normal((2, 6, oh, ow)).astype(np.float32))

    def fast(inp):
        return polyphase.strided_conv(inp, direct.weight, tf, padding)

    got = outputs_and_grads(fast, [direct.weight], x, dy)
    want = outputs_and_grads(direct, [direct.weight], x, dy)
    assert_close(got, want, ("output", "d input", "d weight"), 2e-5)


@pytest.mark.parametrize(
    "kernel, padding, output_padding, height, width, tile",
    [(4, 1, 0, 8, 8, 2), (4, 1, 0, 8, 12, 4), (4, 1, 0, 7, 5, 2), (3, 1, 1, 8, 8, 4), (3, 1, 1, 9, 6, 2)],
)
def test_transposed_conv_matches_direct(kernel, padding, output_padding, height, width, tile):
    rng = np.random.default_rng(kernel * 100 + height * 10 + width)
    direct = conv_transpose2d(5, 6, kernel, 2, padding, has_bias=False, output_padding=output_padding)
    tf = polyphase.PolyphaseTransforms(True, tile, kernel)
    x = ms.Tensor(rng.standard_normal((2, 5, height, width)).astype(np.float32))
    dy = ms.Tensor(rng.standard_normal((2, 6, 2 * height, 2 * width)).astype(np.float32))

    def fast(inp):
        return polyphase.transposed_conv(inp, direct.weight, tf)

    got = outputs_and_grads(fast, [direct.weight], x, dy)
    want = outputs_and_grads(direct, [direct.weight], x, dy)
    assert_close(got, want, ("output", "d input", "d weight"), 2e-5)


def test_transforms_are_the_phase_decomposition():
    """The weight transform of every tile and kernel maps a kernel of ones to G 1 G^T per phase; a test that the
    phase bookkeeping itself can fail: the transposed conv's phase (0, 0) of a 4x4 kernel takes taps 3 and 1 of each
    axis."""
    for tile in polyphase.POLYPHASE_TILES:
        at, weight, tile_in = polyphase.transposed_transforms(tile, 4)
        n = 2 * (tile + 1)
        assert (
            weight.shape == (n * n, 16)
            and tile_in.shape == (n * n, 1, tile + 2, tile + 2)
            and at.shape == (2 * tile, n)
        )
        w = np.zeros((4, 4))
        w[3, 3] = 1.0  # tap (3, 3) belongs to phase (0, 0) only
        rows = (weight @ w.ravel()).reshape(2, tile + 1, 2, tile + 1)
        assert np.abs(rows[0, :, 0, :]).sum() > 0
        assert np.abs(rows[1]).sum() == 0 and np.abs(rows[:, :, 1]).sum() == 0


def _layer_vs_direct(fast, direct, x, dy):
    copy_params(fast, direct)
    got, want = layer_outputs_and_grads(fast, x, dy), layer_outputs_and_grads(direct, x, dy)
    assert_close(got, want, ("output", "d input", "d weight", "d bias")[: len(want)], 2e-5)


def test_layers_use_the_polyphase_form_where_it_pays_and_equal_direct():
    """conv2d / conv_transpose2d give the polyphase layers for 4x4 stride-2 convs; at a size where the rule picks a
    tile (32 channels, 64 tiles) they compute nn.Conv2d's / nn.Conv2dTranspose's outputs and gradients."""
    from src.common.layers import conv2d

    rng = np.random.default_rng(3)
    down = conv2d(32, 32, 4, 2, 1, has_bias=True)
    up = conv_transpose2d(32, 32, 4, 2, 1, has_bias=True)
    assert isinstance(down, polyphase.PolyphaseConv2d) and isinstance(up, polyphase.PolyphaseConvTranspose2d)
    assert polyphase.polyphase_tile(False, True, 32, 32, 32, 32) == 4
    assert polyphase.polyphase_tile(True, True, 32, 32, 32, 32) == 4
    for layer in (down, up):
        layer.bias.set_data(ms.Tensor(rng.standard_normal(32).astype(np.float32)))
        layer.set_train(True)
    x = ms.Tensor(rng.standard_normal((1, 32, 64, 64)).astype(np.float32))
    dy = ms.Tensor(rng.standard_normal((1, 32, 32, 32)).astype(np.float32))
    _layer_vs_direct(down, nn.Conv2d(32, 32, 4, 2, pad_mode="pad", padding=1, has_bias=True), x, dy)
    x = ms.Tensor(rng.standard_normal((1, 32, 32, 32)).astype(np.float32))
    dy = ms.Tensor(rng.standard_normal((1, 32, 64, 64)).astype(np.float32))
    _layer_vs_direct(up, nn.Conv2dTranspose(32, 32, 4, 2, pad_mode="pad", padding=1, has_bias=True), x, dy)


def test_tile_rule():
    """Few channels, few tiles, too much rounding, or a transposed conv at inference: MindSpore's kernel."""
    assert polyphase.polyphase_tile(False, True, 6, 64, 128, 128) == 0  # pix2pix D's first conv
    assert polyphase.polyphase_tile(True, True, 128, 3, 128, 128) == 0  # the U-Net's last up-conv
    assert polyphase.polyphase_tile(False, True, 256, 512, 16, 16) == 0  # 16 tiles
    assert polyphase.polyphase_tile(False, True, 64, 128, 129, 257) == 4  # pix2pixHD's D: 132x260, 3.5% more
    assert polyphase.polyphase_tile(False, True, 64, 128, 33, 33) == 4  # 36x36: 19% more
    assert polyphase.polyphase_tile(False, True, 64, 128, 5, 1000) == 2  # 8x1000: 60% more, 6x1000 20%
    assert polyphase.polyphase_tile(False, True, 64, 128, 21, 21) == 0  # 24x24: 31% more; 22x22: too few tiles
    assert polyphase.polyphase_tile(True, False, 256, 64, 64, 64) == 0
    assert polyphase.polyphase_tile(False, False, 128, 256, 32, 32) == 0  # forward alone: 256 tiles or more
    assert polyphase.polyphase_tile(False, False, 64, 128, 64, 64) == 4


def test_direct_algorithm_switches_the_polyphase_layers_off():
    from src.common.fast_conv import set_conv_algorithm
    from src.common.unet import UnetGenerator

    net = UnetGenerator(3, 3, 5, 32)
    kinds = (polyphase.PolyphaseConv2d, polyphase.PolyphaseConvTranspose2d)
    layers = [c for _, c in net.cells_and_names() if isinstance(c, kinds)]
    assert len(layers) == 10  # every level's down-conv and up-conv
    set_conv_algorithm(net, "direct")
    assert not any(c.use_fast for c in layers)
    set_conv_algorithm(net, "fast")
    assert all(c.use_fast for c in layers)

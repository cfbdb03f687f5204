"""The fast convolution algorithms compute the same function as MindSpore's own convolution, forward and backward."""

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn

import src.device  # noqa: F401
from src.common.fast_conv import (
    FastConv2d,
    choose_algorithm,
    resolve_conv_algorithm,
    set_conv_algorithm,
    winograd_matrices,
    winograd_pays,
)
from src.common.layers import conv2d
from src.cyclegan.resnet import ResnetGenerator
from src.errors import UserError


def _outputs_and_grads(conv, x, dy):
    """Output and the gradients of sum(conv(x) * dy) with respect to x and every parameter, in a jit graph."""

    def loss(inp):
        out = conv(inp)
        return (out * dy).sum(), out

    grad_fn = ms.value_and_grad(loss, 0, conv.trainable_params(), has_aux=True)
    (_, out), (dx, dparams) = ms.jit(grad_fn)(x)
    return [out.asnumpy(), dx.asnumpy()] + [g.asnumpy() for g in dparams]


def _compare(in_ch, out_ch, kernel, padding, size, batch=2, rtol=2e-5):
    rng = np.random.default_rng(in_ch * 100 + out_ch + kernel + size)
    fast = conv2d(in_ch, out_ch, kernel, 1, padding, has_bias=True)
    fast.bias.set_data(ms.Tensor(rng.standard_normal(out_ch).astype(np.float32)))
    direct = nn.Conv2d(in_ch, out_ch, kernel, 1, pad_mode="pad" if padding else "valid", padding=padding,
                       has_bias=True)  # fmt: skip
    direct.weight.set_data(fast.weight.value())
    direct.bias.set_data(fast.bias.value())
    x = ms.Tensor(rng.standard_normal((batch, in_ch, size, size)).astype(np.float32))
    out_size = size + 2 * padding - kernel + 1
    dy = ms.Tensor(rng.standard_normal((batch, out_ch, out_size, out_size)).astype(np.float32))
    got, want = _outputs_and_grads(fast, x, dy), _outputs_and_grads(direct, x, dy)
    for name, g, w in zip(("output", "d input", "d weight", "d bias"), got, want):
        assert g.shape == w.shape, name
        scale = np.abs(w).max()
        assert np.abs(g - w).max() <= rtol * scale, f"{name}: max error {np.abs(g - w).max()} vs scale {scale}"
    return fast


@pytest.mark.parametrize("padding, size", [(0, 18), (1, 16)])
def test_winograd_conv_matches_the_direct_conv_forward_and_backward(padding, size):
    fast = _compare(12, 10, 3, padding, size)
    assert fast.fast_algorithm == "winograd"


def test_shifted_sum_conv_matches_the_direct_conv_forward_and_backward():
    fast = _compare(16, 3, 7, 0, 14)
    assert fast.fast_algorithm == "shift"


def test_winograd_conv_falls_back_to_the_direct_conv_when_the_output_is_not_a_multiple_of_4():
    conv = conv2d(4, 4, 3, 1, 0)
    x = ms.Tensor(np.random.default_rng(0).standard_normal((1, 4, 12, 12)).astype(np.float32))  # 10x10 output
    fast = conv(x).asnumpy()
    set_conv_algorithm(conv, "direct")
    np.testing.assert_array_equal(fast, conv(x).asnumpy())


def test_winograd_transforms_are_exact_on_a_single_tile():
    """A^T [(G g G^T) * (B^T d B)] A equals the 4x4 valid cross-correlation of a 6x6 tile with a 3x3 kernel."""
    tile_in, weight, tile_out = (m.astype(np.float64) for m in winograd_matrices())
    rng = np.random.default_rng(1)
    d, g = rng.standard_normal((6, 6)), rng.standard_normal((3, 3))
    v = tile_in.reshape(36, 36) @ d.reshape(36)
    u = weight @ g.reshape(9)
    y = (tile_out @ (u * v)).reshape(4, 4)
    want = np.array([[(d[i : i + 3, j : j + 3] * g).sum() for j in range(4)] for i in range(4)])
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_algorithm_choice():
    assert choose_algorithm(256, 256, 3, 1, 0) == "winograd"
    assert choose_algorithm(64, 128, 3, 1, 1) == "winograd"
    assert choose_algorithm(64, 128, 3, 2, 1) == "direct"  # strided
    assert choose_algorithm(64, 64, 3, 1, 2) == "direct"  # padding 2
    assert choose_algorithm(64, 3, 7, 1, 0) == "shift"
    assert choose_algorithm(3, 64, 7, 1, 0) == "direct"  # more outputs than inputs: im2col is small
    assert choose_algorithm(64, 1, 4, 1, 1) == "direct"


def test_conv_algorithm_setting():
    assert resolve_conv_algorithm("auto", "CPU") == "fast"
    assert resolve_conv_algorithm("auto", "GPU") == "direct"
    assert resolve_conv_algorithm("auto", "Ascend") == "direct"
    assert resolve_conv_algorithm("fast", "Ascend") == "fast"
    with pytest.raises(UserError, match="valid values are: auto, fast, direct"):
        resolve_conv_algorithm("winograd")


def test_fast_convs_keep_the_parameter_names_and_counts_of_the_generator():
    net = ResnetGenerator(ngf=8, n_blocks=2)
    kinds = [c.fast_algorithm for _, c in net.cells_and_names() if isinstance(c, FastConv2d)]
    assert kinds.count("winograd") == 4 and kinds.count("shift") == 1
    names = [p.name for p in net.trainable_params()]
    assert "model.10.conv_block.1.weight" in names and "model.10.conv_block.5.bias" in names
    assert all(isinstance(c, nn.Conv2d) for _, c in net.cells_and_names() if isinstance(c, FastConv2d))


def test_resnet_generator_gives_the_same_outputs_with_fast_and_direct_convs():
    ms.set_seed(3)
    net = ResnetGenerator(ngf=8, n_blocks=2)
    net.set_train(False)
    x = ms.Tensor(np.random.default_rng(2).uniform(-1, 1, (1, 3, 32, 32)).astype(np.float32))
    fast = net(x).asnumpy()
    set_conv_algorithm(net, "direct")
    direct = net(x).asnumpy()
    assert fast.std() > 1e-3  # a real image, not a constant
    assert np.abs(fast - direct).max() < 1e-4


def test_winograd_is_used_only_with_enough_tiles_for_the_channels():
    assert winograd_pays(1, 64, 64, 256, 256)  # CycleGAN's residual blocks at 256x256
    assert not winograd_pays(1, 16, 32, 1024, 1024)  # pix2pixHD's at 256x512: 32 tiles for 1024 channels
    assert winograd_pays(8, 16, 32, 1024, 1024)  # a batch of 8 has the tiles
    assert not winograd_pays(1, 66, 64, 8, 8)  # not a multiple of 4
    conv = conv2d(64, 64, 3, 1, 1)
    x = ms.Tensor(np.random.default_rng(0).standard_normal((1, 64, 4, 4)).astype(np.float32))  # 1 tile, 64 channels
    fast = conv(x).asnumpy()
    set_conv_algorithm(conv, "direct")
    np.testing.assert_array_equal(fast, conv(x).asnumpy())  # the direct conv ran both times

"""The 3x3 stride-2 convs and transposed convs of src.common.phase_conv compute MindSpore's own convolutions,
forward and backward, and switch back to them with set_conv_algorithm."""

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn

import src.device  # noqa: F401
from src.common import phase_conv
from src.common.fast_conv import set_conv_algorithm
from src.common.layers import conv2d, conv_transpose2d
from tests.conv_check import assert_close, copy_params, layer_outputs_and_grads


@pytest.mark.parametrize("batch, height, width, has_bias", [(1, 16, 16, True), (2, 13, 10, True), (2, 8, 11, False)])
@pytest.mark.parametrize("gradient_max", [phase_conv.TRANSPOSED_GRADIENT_MAX, 0])
def test_strided_conv_matches_direct(batch, height, width, has_bias, gradient_max, monkeypatch):
    """Both orders of the weight gradient's GEMM: transposed afterwards (small weights) and straight (large ones,
    forced here with a threshold of 0)."""
    monkeypatch.setattr(phase_conv, "TRANSPOSED_GRADIENT_MAX", gradient_max)
    rng = np.random.default_rng(height * 100 + width)
    fast = conv2d(5, 7, 3, 2, 1, has_bias=has_bias)
    assert isinstance(fast, phase_conv.PhaseConv2d)
    fast.set_train(True)  # the phase path runs in training; a forward alone is MindSpore's kernel
    direct = nn.Conv2d(5, 7, 3, 2, pad_mode="pad", padding=1, has_bias=has_bias)
    copy_params(fast, direct)
    x = ms.Tensor(rng.standard_normal((batch, 5, height, width)).astype(np.float32))
    dy = ms.Tensor(rng.standard_normal((batch, 7, (height + 1) // 2, (width + 1) // 2)).astype(np.float32))
    assert_close(layer_outputs_and_grads(fast, x, dy), layer_outputs_and_grads(direct, x, dy))


def _transposed_reference(x, weight, bias):
    """PyTorch's ConvTranspose2d(3, stride 2, padding 1, output_padding 1) by its definition, in NumPy: every input
    pixel scatters its weighted kernel into the (2H + 1) x (2W + 1) full output, of which rows and columns 1..2H are
    kept."""
    n, _, h, w = x.shape
    k = weight.shape[1]
    full = np.zeros((n, k, 2 * h + 2, 2 * w + 2), np.float64)
    for i in range(h):
        for j in range(w):
            full[:, :, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3] += np.einsum("nc,ckyx->nkyx", x[:, :, i, j], weight)
    out = full[:, :, 1 : 2 * h + 1, 1 : 2 * w + 1]
    return out + (0 if bias is None else bias[None, :, None, None])


@pytest.mark.parametrize("batch, height, width, has_bias", [(1, 8, 8, True), (2, 5, 7, True), (2, 6, 3, False)])
@pytest.mark.parametrize("gradient_max", [phase_conv.TRANSPOSED_GRADIENT_MAX, 0])
def test_transposed_conv_matches_direct_and_definition(batch, height, width, has_bias, gradient_max, monkeypatch):
    monkeypatch.setattr(phase_conv, "TRANSPOSED_GRADIENT_MAX", gradient_max)
    rng = np.random.default_rng(height * 10 + width)
    fast = conv_transpose2d(6, 4, 3, 2, 1, has_bias=has_bias, output_padding=1)
    assert isinstance(fast, phase_conv.PhaseConvTranspose2d)
    fast.set_train(True)
    direct = conv_transpose2d(6, 4, 3, 2, 1, has_bias=has_bias, output_padding=1)
    set_conv_algorithm(direct, "direct")
    assert not direct.use_fast
    copy_params(fast, direct)
    x = ms.Tensor(rng.standard_normal((batch, 6, height, width)).astype(np.float32))
    dy = ms.Tensor(rng.standard_normal((batch, 4, 2 * height, 2 * width)).astype(np.float32))
    got = layer_outputs_and_grads(fast, x, dy)
    assert_close(got, layer_outputs_and_grads(direct, x, dy))
    bias = fast.bias.asnumpy() if has_bias else None
    want = _transposed_reference(x.asnumpy(), fast.weight.asnumpy(), bias)
    assert np.abs(got[0] - want).max() <= 1e-5 * np.abs(want).max()
    fast.set_train(False)  # inference: MindSpore's own kernel, the same function
    assert np.abs(fast(x).asnumpy() - want).max() <= 1e-5 * np.abs(want).max()


def test_interleave_places_the_phases():
    p = [np.full((1, 2, 3, 4), v, np.float32) + np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4) for v in range(4)]
    y = phase_conv.interleave(*[ms.Tensor(a) for a in p], ms.Tensor(np.eye(2, dtype=np.float32))).asnumpy()
    assert y.shape == (1, 2, 6, 8)
    for s in range(2):
        for u in range(2):
            np.testing.assert_array_equal(y[:, :, s::2, u::2], p[2 * s + u])


def test_set_conv_algorithm_switches_phase_layers():
    net = nn.SequentialCell([conv2d(4, 8, 3, 2, 1), conv_transpose2d(8, 4, 3, 2, 1, output_padding=1)])
    set_conv_algorithm(net, "direct")
    assert not any(c.use_fast for c in net.cells())
    set_conv_algorithm(net, "fast")
    assert all(c.use_fast for c in net.cells())

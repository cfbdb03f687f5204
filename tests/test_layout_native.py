"""The native layout copies of the training graphs (src/common/layout_native.cc, ``native.layout_ops``): the swap and
its gradient equal a transpose, the phase taps equal the flipped, transposed weight's taps, and every conv that uses
them still computes MindSpore's conv, forward and backward, when ``set_conv_algorithm`` switches them on (CPU)."""

import os

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn

import src.device  # noqa: F401
from src.common import fast_conv, native, phase_conv, polyphase
from src.common.fast_conv import FastConv2d, SwapLeading, set_conv_algorithm
from tests.conftest import needs_compiler
from tests.conv_check import assert_close, copy_params, layer_outputs_and_grads


@needs_compiler
@pytest.mark.parametrize("shape", [(5, 7), (3, 70, 100), (40, 33, 3, 3), (300, 17, 9), (33, 20, 64), (2, 3, 4, 5, 6)])
def test_swap_is_a_transpose_and_its_gradient_the_transpose_back(own_cache, shape):
    """Short rows (copied in blocks) and long ones (copied whole), eagerly and in a jit graph with its gradient."""
    swap = native.layout_ops()[0]
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape).astype(np.float32)
    dy = rng.standard_normal((shape[1], shape[0]) + shape[2:]).astype(np.float32)
    np.testing.assert_array_equal(swap(ms.Tensor(x)).asnumpy(), np.swapaxes(x, 0, 1))

    def loss(t):
        y = swap(t)
        return (y * ms.Tensor(dy)).sum(), y

    (_, y), dx = ms.jit(ms.value_and_grad(loss, 0, has_aux=True))(ms.Tensor(x))
    np.testing.assert_array_equal(y.asnumpy(), np.swapaxes(x, 0, 1))
    np.testing.assert_array_equal(dx.asnumpy(), np.swapaxes(dy, 0, 1))


@needs_compiler
@pytest.mark.parametrize("a, c", [(37, 21), (16, 16), (1, 3)])
def test_phase_taps_are_the_flipped_transposed_weights_taps(own_cache, a, c):
    taps = native.layout_ops()[1]
    w = np.random.default_rng(a).standard_normal((a, c, 3, 3)).astype(np.float32)
    k = np.flip(np.swapaxes(w, 0, 1), (2, 3))  # (c, a, 3, 3)
    want = [k[:, :, 1:2, 1:2], k[:, :, 1:2, 0::2], k[:, :, 0::2, 1:2], k[:, :, 0::2, 0::2]]
    got = taps(ms.Tensor(w))
    assert len(got) == 4
    for g, want_k in zip(got, want):
        np.testing.assert_array_equal(g.asnumpy(), want_k)


def _winograd(batch, c, k, size, kernel, padding):
    layer = FastConv2d(c, k, kernel, padding=padding)
    assert layer.fast_algorithm == "winograd"
    return layer, (batch, c, size, size)


def _layer(case):
    """The layer of ``case``, the input shape, and the cells that must have taken the native copies."""
    if case == "winograd":  # F(4x4, 3x3), autodiff's backward pass
        layer, shape = _winograd(2, 8, 12, 24, 3, 1)
        return layer, shape, [layer.winograd.swap]
    if case == "winograd_recompute":  # F(4x4, 3x3) with its own backward pass (40 outputs > 36 tiles)
        layer, shape = _winograd(1, 8, 40, 24, 3, 1)
        return layer, shape, [layer.winograd.swap]
    if case == "winograd_4x4":  # F(2x2, 4x4), a PatchGAN's stride-1 conv with padding 2
        layer, shape = _winograd(1, 6, 5, 14, 4, 2)
        return layer, shape, [layer.winograd.swap]
    if case == "swap":  # the first 7x7 conv: its weight gradient swapped back
        layer = FastConv2d(3, 8, 7)
        assert layer.fast_algorithm == "swap"
        return layer, (2, 3, 20, 20), [layer.swapped.swap]
    if case == "polyphase":
        layer = polyphase.PolyphaseConv2d(32, 33)
        return layer, (1, 32, 64, 62), [layer.swap]
    if case == "polyphase_transposed":
        layer = polyphase.PolyphaseConvTranspose2d(32, 34)
        return layer, (1, 32, 32, 31), [layer.swap]
    if case == "phase":
        layer = phase_conv.PhaseConv2d(5, 7)
        return layer, (2, 5, 13, 10), [layer.with_gradients.conv.adjoint]
    layer = phase_conv.PhaseConvTranspose2d(6, 4)
    return layer, (2, 6, 5, 7), [layer.adjoint]


def _native_of(cell):
    return cell.native if isinstance(cell, SwapLeading) else cell.taps


@needs_compiler
@pytest.mark.parametrize(
    "case",
    [
        "winograd",
        "winograd_recompute",
        "winograd_4x4",
        "swap",
        "polyphase",
        "polyphase_transposed",
        "phase",
        "phase_transposed",
    ],
)
def test_convs_with_the_native_copies_equal_mindspores(own_cache, monkeypatch, case):
    monkeypatch.setattr(fast_conv, "RECOMPUTE_MIN_CHANNELS", 1)
    layer, shape, users = _layer(case)
    set_conv_algorithm(layer, "fast", "CPU")
    for cell in users:  # the native copy is what runs
        assert _native_of(cell) is not None
    direct, _, _ = _layer(case)
    set_conv_algorithm(direct, "direct")
    copy_params(layer, direct)
    layer.set_train(True)
    direct.set_train(True)
    rng = np.random.default_rng(len(case))
    x = ms.Tensor(rng.standard_normal(shape).astype(np.float32))
    y = direct(x)
    dy = ms.Tensor(rng.standard_normal(y.shape).astype(np.float32))
    assert_close(layer_outputs_and_grads(layer, x, dy), layer_outputs_and_grads(direct, x, dy), rtol=3e-5)


def test_the_copies_are_for_the_cpu_and_the_fast_algorithm_only(own_cache, monkeypatch):
    monkeypatch.setattr(native, "layout_ops", lambda: ("swap", "taps"))
    layer = nn.SequentialCell(FastConv2d(8, 8, 3, padding=1), phase_conv.PhaseConvTranspose2d(8, 8))
    cells = (layer[0].winograd.swap, layer[1].adjoint)
    set_conv_algorithm(layer, "auto", "CPU")
    assert [_native_of(cell) for cell in cells] == ["swap", "taps"]
    for algorithm, device in (("direct", "CPU"), ("auto", "GPU"), ("fast", "Ascend")):
        set_conv_algorithm(layer, algorithm, device)
        assert [_native_of(cell) for cell in cells] == [None, None], (algorithm, device)


def test_without_a_compiler_the_ops_of_mindspore_stay(own_cache, monkeypatch):
    monkeypatch.setattr(native, "compiler", lambda: None)
    layer = phase_conv.PhaseConv2d(5, 7)
    with pytest.warns(UserWarning, match="no C\\+\\+ compiler"):
        set_conv_algorithm(layer, "fast", "CPU")
    assert layer.with_gradients.conv.adjoint.taps is None and not os.path.exists(own_cache)
    direct = phase_conv.PhaseConv2d(5, 7)
    set_conv_algorithm(direct, "direct")
    copy_params(layer, direct)
    layer.set_train(True)
    direct.set_train(True)
    rng = np.random.default_rng(3)
    x = ms.Tensor(rng.standard_normal((1, 5, 9, 9)).astype(np.float32))
    dy = ms.Tensor(rng.standard_normal((1, 7, 5, 5)).astype(np.float32))
    assert_close(layer_outputs_and_grads(layer, x, dy), layer_outputs_and_grads(direct, x, dy))

"""The native CPU kernels of the polyphase convs at inference (src/common/native.py): each transform equals its
definition, the layers equal MindSpore's conv and transposed conv, and without a compiler or with a failed build the
layers keep the other forms and nothing half-built is left in the cache."""

import os

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn

import src.device  # noqa: F401
from src.common import native, polyphase
from src.common.fast_conv import forward_only, set_conv_algorithm
from tests.conftest import needs_compiler
from tests.conv_check import copy_params


def _windows(x, t):
    """(c, L, L, th, tw): the (t+2) x (t+2) window of every input tile of x (c, h, w) zero-padded by 1."""
    c, h, w = x.shape
    th, tw = -(-h // t), -(-w // t)
    xp = np.zeros((c, th * t + 2, tw * t + 2), np.float32)
    xp[:, 1 : h + 1, 1 : w + 1] = x
    return np.stack(
        [np.stack([xp[:, i * t : i * t + t + 2, j * t : j * t + t + 2] for j in range(tw)], -1) for i in range(th)],
        -2,
    )


@needs_compiler
@pytest.mark.parametrize("t", polyphase.POLYPHASE_TILES)
@pytest.mark.parametrize("c, k, h, w", [(3, 5, 7, 5), (40, 33, 30, 22)])
def test_transforms_equal_their_definitions(own_cache, t, c, k, h, w):
    """Input, weight and output transform against NumPy's einsum of b1, g1 and a_out (odd sizes: partial tiles)."""
    b1, g1, a_out = polyphase.transposed_matrices(t)
    into, out, weight = native.transposed_ops(t, b1, g1, a_out)
    n, th, tw = 2 * (t + 1), -(-h // t), -(-w // t)
    rng = np.random.default_rng(c + h)
    x = rng.standard_normal((c, h, w)).astype(np.float32)
    wgt = rng.standard_normal((c, k, 4, 4)).astype(np.float32)
    m = rng.standard_normal((n * n, k, th, tw)).astype(np.float32)

    v = into(ms.Tensor(x)).asnumpy()
    want = np.einsum("ap,bq,cpqij->abcij", b1, b1, _windows(x, t)).reshape(n * n, c, th, tw)
    assert v.shape == want.shape and np.abs(v - want).max() <= 1e-5 * np.abs(want).max()
    u = weight(ms.Tensor(wgt)).asnumpy()
    want = np.einsum("ap,bq,ckpq->abkc", g1, g1, wgt).reshape(n * n, k, c)
    assert u.shape == want.shape and np.abs(u - want).max() <= 1e-5 * np.abs(want).max()
    y = out(ms.Tensor(m)).asnumpy()
    want = np.einsum("ra,sb,abkij->kirjs", a_out, a_out, m.reshape(n, n, k, th, tw)).reshape(k, 2 * t * th, -1)
    assert y.shape == want.shape and np.abs(y - want).max() <= 1e-5 * np.abs(want).max()


def _jit_output(net, x):
    def forward(inp):
        return net(inp)

    return ms.jit(forward)(x).asnumpy()


@needs_compiler
@pytest.mark.parametrize("height, width", [(32, 32), (31, 33)])
def test_layer_at_inference_uses_the_native_kernels_and_equals_direct(own_cache, height, width):
    """A 4x4 transposed conv from 48 to 32 channels and 64 tiles, set to ``auto`` on the CPU: at inference it runs the
    native transforms (31x33 in whole tiles, cropped), with the bias, on a batch of two; training is unchanged."""
    rng = np.random.default_rng(height)
    layer = polyphase.PolyphaseConvTranspose2d(48, 32, has_bias=True)
    layer.bias.set_data(ms.Tensor(rng.standard_normal(32).astype(np.float32)))
    set_conv_algorithm(layer, "auto", "CPU")
    assert layer.native is not None and polyphase.native_tile(48, 32, height, width) == 4
    direct = nn.Conv2dTranspose(48, 32, 4, 2, pad_mode="pad", padding=1, has_bias=True)
    copy_params(layer, direct)
    layer.set_train(False)
    x = ms.Tensor(rng.standard_normal((2, 48, height, width)).astype(np.float32))
    got, want = _jit_output(layer, x), _jit_output(direct, x)
    assert got.shape == want.shape == (2, 32, 2 * height, 2 * width)
    assert np.abs(got - want).max() <= 2e-5 * np.abs(want).max()


def _strided_windows(x, t, pad):
    """(c, 2a, 2a, th, tw): the 2(t+1) x 2(t+1) window of every output tile of a stride-2 4x4 conv of x (c, h, w)."""
    c, h, w = x.shape
    oh, ow = (h + 2 * pad - 4) // 2 + 1, (w + 2 * pad - 4) // 2 + 1
    th, tw = -(-oh // t), -(-ow // t)
    size = 2 * t + 2
    xp = np.zeros((c, 2 * t * th + size, 2 * t * tw + size), np.float32)
    xp[:, pad : pad + h, pad : pad + w] = x
    rows = [
        np.stack([xp[:, 2 * t * i : 2 * t * i + size, 2 * t * j : 2 * t * j + size] for j in range(tw)], -1)
        for i in range(th)
    ]
    return np.stack(rows, -2)


@needs_compiler
@pytest.mark.parametrize("t", polyphase.POLYPHASE_TILES)
@pytest.mark.parametrize("c, k, h, w, pad", [(3, 5, 9, 12, 1), (40, 33, 30, 23, 2), (6, 4, 16, 16, 0)])
def test_strided_transforms_equal_their_definitions(own_cache, t, c, k, h, w, pad):
    """The stride-2 conv's transforms: point (P, s) x (Q, u) of the input goes to plane (P, Q, s, u), and the weight
    (k, c, 4, 4) to (a*a, k, 4c) with the phases (s, u) before the input channels."""
    b1, g1, at = polyphase.strided_matrices(t)
    into, out, weight = native.strided_ops(t, pad, b1, g1, at)
    a = t + 1
    rng = np.random.default_rng(c + h + pad)
    x = rng.standard_normal((c, h, w)).astype(np.float32)
    wgt = rng.standard_normal((k, c, 4, 4)).astype(np.float32)
    win = _strided_windows(x, t, pad)
    th, tw = win.shape[3], win.shape[4]
    m = rng.standard_normal((a * a, k, th, tw)).astype(np.float32)

    b = b1.reshape(a, 2, 2 * a)
    want = np.einsum("Psi,Quj,cijxy->PQsucxy", b, b, win).reshape(4 * a * a, c, th, tw)
    v = into(ms.Tensor(x)).asnumpy()
    assert v.shape == want.shape and np.abs(v - want).max() <= 1e-5 * np.abs(want).max()
    g = g1.reshape(a, 2, 4)
    want = np.einsum("Psp,Quq,kcpq->PQksuc", g, g, wgt).reshape(a * a, k, 4 * c)
    u = weight(ms.Tensor(wgt)).asnumpy()
    assert u.shape == want.shape and np.abs(u - want).max() <= 1e-5 * np.abs(want).max()
    want = np.einsum("rP,sQ,PQkij->kirjs", at, at, m.reshape(a, a, k, th, tw)).reshape(k, t * th, t * tw)
    y = out(ms.Tensor(m)).asnumpy()
    assert y.shape == want.shape and np.abs(y - want).max() <= 1e-5 * np.abs(want).max()


@needs_compiler
@pytest.mark.parametrize("height, width, padding", [(64, 64, 1), (63, 66, 1), (64, 64, 2), (64, 70, 0)])
def test_strided_layer_at_inference_uses_the_native_kernels_and_equals_direct(own_cache, height, width, padding):
    rng = np.random.default_rng(height + padding)
    layer = polyphase.PolyphaseConv2d(40, 36, padding=padding, has_bias=True)
    layer.bias.set_data(ms.Tensor(rng.standard_normal(36).astype(np.float32)))
    set_conv_algorithm(layer, "auto", "CPU")
    oh, ow = (height + 2 * padding - 4) // 2 + 1, (width + 2 * padding - 4) // 2 + 1
    assert layer.native is not None and polyphase.native_tile(40, 36, oh, ow) == 4
    mode = "pad" if padding else "valid"
    direct = nn.Conv2d(40, 36, 4, 2, pad_mode=mode, padding=padding, has_bias=True)
    copy_params(layer, direct)
    layer.set_train(False)
    x = ms.Tensor(rng.standard_normal((2, 40, height, width)).astype(np.float32))
    got, want = _jit_output(layer, x), _jit_output(direct, x)
    assert got.shape == want.shape == (2, 36, oh, ow)
    assert np.abs(got - want).max() <= 2e-5 * np.abs(want).max()


def test_native_tile_rule():
    """Where the native form pays at inference (measured, see native_tile): the U-Net's 256 -> 64 at 64x64 and 512 ->
    128 at 32x32; not its 1024-channel layers at 16x16 and less, nor few channels."""
    assert polyphase.native_tile(64, 128, 64, 64) == 4  # stride-2, 64x64 output
    assert polyphase.native_tile(128, 256, 32, 32) == 4
    assert polyphase.native_tile(256, 512, 16, 16) == 0
    assert polyphase.native_tile(256, 64, 64, 64) == 4
    assert polyphase.native_tile(512, 128, 32, 32) == 4
    assert polyphase.native_tile(1024, 256, 16, 16) == 0
    assert polyphase.native_tile(1024, 512, 8, 8) == 0
    assert polyphase.native_tile(128, 3, 128, 128) == 0
    assert polyphase.native_tile(64, 64, 31, 31) == 4  # 32x32: 7% more
    assert polyphase.native_tile(64, 64, 29, 29) == 0  # 32x32: 22% more
    assert polyphase.native_tile(64, 64, 28, 28) == 0  # 49 tiles


def test_only_the_cpu_and_the_fast_algorithm_use_native_kernels(own_cache, monkeypatch):
    built = []
    monkeypatch.setattr(native, "transposed_ops", lambda t, *m: built.append(t) or ("in", "out", "weight"))
    monkeypatch.setattr(native, "strided_ops", lambda t, *m: built.append(t) or ("in", "out", "weight"))
    for layer in (polyphase.PolyphaseConvTranspose2d(32, 32), polyphase.PolyphaseConv2d(32, 32)):
        set_conv_algorithm(layer, "auto", "CPU")
        assert layer.native == ("in", "out", "weight")
        for algorithm, device in (("direct", "CPU"), ("auto", "GPU"), ("fast", "Ascend")):
            set_conv_algorithm(layer, algorithm, device)
            assert layer.native is None, (algorithm, device)
    assert built == [4, 4]


def test_without_a_compiler_the_layer_keeps_mindspores_kernel(own_cache, monkeypatch):
    monkeypatch.setattr(native, "compiler", lambda: None)
    layer = polyphase.PolyphaseConvTranspose2d(32, 32, has_bias=False)
    with pytest.warns(UserWarning, match="no C\\+\\+ compiler"):
        set_conv_algorithm(layer, "auto", "CPU")
    assert layer.native is None and not os.path.exists(own_cache)
    layer.set_train(False)
    direct = nn.Conv2dTranspose(32, 32, 4, 2, pad_mode="pad", padding=1, has_bias=False)
    copy_params(layer, direct)
    x = ms.Tensor(np.random.default_rng(0).standard_normal((1, 32, 32, 32)).astype(np.float32))
    assert np.abs(layer(x).asnumpy() - direct(x).asnumpy()).max() <= 2e-5 * np.abs(direct(x).asnumpy()).max()


@needs_compiler
def test_a_failed_build_leaves_nothing_and_a_built_library_is_reused(own_cache, monkeypatch):
    with pytest.warns(UserWarning, match="building broken .* failed"):
        assert native.build_library("this is not C++", "broken") is None
    assert os.listdir(own_cache) == []  # no source, object or half-written library left behind
    source = 'extern "C" int Answer() { return 42; }\n'
    path = native.build_library(source, "answer")
    assert os.listdir(own_cache) == [os.path.basename(path)]

    def no_compiler_call(*args, **kwargs):
        raise AssertionError("the cached library should have been reused")

    monkeypatch.setattr(native.subprocess, "run", no_compiler_call)
    assert native.build_library(source, "answer") == path


@needs_compiler
def test_forward_only_lets_training_mode_inference_use_them_and_training_does_not(own_cache, monkeypatch):
    """pix2pix's ``test_mode paper`` runs G in training mode without a gradient: inside ``forward_only`` the native
    form is used (and equals the direct conv); a training step outside never uses it and has gradients. Run
    eagerly, so that the calls can be counted."""
    traced = []
    real = polyphase.native_conv
    monkeypatch.setattr(polyphase, "native_conv", lambda *a: traced.append(1) or real(*a))
    rng = np.random.default_rng(5)
    layer = polyphase.PolyphaseConvTranspose2d(48, 32, has_bias=False)
    set_conv_algorithm(layer, "auto", "CPU")
    layer.set_train(True)
    direct = nn.Conv2dTranspose(48, 32, 4, 2, pad_mode="pad", padding=1, has_bias=False)
    copy_params(layer, direct)
    x = ms.Tensor(rng.standard_normal((1, 48, 32, 32)).astype(np.float32))
    with forward_only(layer):
        got = layer(x).asnumpy()
    assert traced == [1] and not layer.forward_only
    want = direct(x).asnumpy()
    assert np.abs(got - want).max() <= 2e-5 * np.abs(want).max()

    def loss(inp):
        return layer(inp).sum()

    _, grads = ms.value_and_grad(loss, None, layer.trainable_params())(x)
    assert traced == [1] and float(np.abs(grads[0].asnumpy()).sum()) > 0


def test_an_unwritable_cache_falls_back_with_a_warning(tmp_path, monkeypatch):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    with pytest.warns(UserWarning, match="building anything in .* failed"):
        assert native.build_library("int anything;\n", "anything") is None
    assert blocker.read_text() == "a file where the cache folder would go"

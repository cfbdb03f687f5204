import mindspore as ms
import numpy as np
import pytest

from src.common.discriminators import NLayerDiscriminator, PixelDiscriminator, make_discriminator
from src.common.init import count_params, init_weights
from src.common.norm import InstanceNorm2d, instance_norm_via_batch_norm, make_norm
from src.common.unet import UnetGenerator, check_unet_size
from src.errors import UserError


def test_reference_parameter_counts():
    # Counts of the PyTorch reference (junyanz): unet_256 with batch norm, basic D with 6 input channels.
    assert count_params(UnetGenerator(3, 3, 8, 64, "batch", True)) == 54_413_955
    assert count_params(NLayerDiscriminator(6, 64, 3, "batch")) == 2_768_705
    assert count_params(NLayerDiscriminator(3, 64, 3, "instance")) == 2_764_737  # CycleGAN's D


def test_unet128_count_and_shapes():
    g = UnetGenerator(3, 3, 7, 64, "batch", True)
    # unet_128 is unet_256 without one 512->512 level: conv 4*4*512*512 + convT 4*4*1024*512 + 2 BN of 512.
    assert count_params(g) == 54_413_955 - (4 * 4 * 512 * 512 + 4 * 4 * 1024 * 512 + 4 * 512)
    assert g.size_multiple == 128


def test_unet_forward_shape_and_range():
    g = init_weights(UnetGenerator(3, 2, 5, 8, "instance", True), "normal", 0.02)
    g.set_train(False)
    y = g(ms.Tensor(np.random.default_rng(0).uniform(-1, 1, (2, 3, 64, 32)).astype(np.float32))).asnumpy()
    assert y.shape == (2, 2, 64, 32)
    assert np.all(np.abs(y) <= 1.0)


def test_unet_skip_carries_leaky_relu_of_input():
    # The reference's in-place LeakyReLU makes the skip carry leaky_relu(x): check on the innermost block.
    from src.common.unet import UnetBlock

    block = UnetBlock(4, 4, innermost=True, norm="none", alpha=0.2)
    block.set_train(False)
    x = np.random.default_rng(1).normal(size=(1, 4, 8, 8)).astype(np.float32)
    out = block(ms.Tensor(x)).asnumpy()
    np.testing.assert_allclose(out[:, :4], np.where(x > 0, x, 0.2 * x), rtol=1e-6, atol=1e-6)


def test_patchgan_receptive_outputs():
    d = NLayerDiscriminator(6, 8, 3, "batch")
    assert d(ms.Tensor(np.zeros((1, 6, 256, 256), np.float32))).shape == (1, 1, 30, 30)
    p = PixelDiscriminator(6, 8, "batch")
    assert p(ms.Tensor(np.zeros((1, 6, 16, 16), np.float32))).shape == (1, 1, 16, 16)
    feats = NLayerDiscriminator(3, 8, 3, "instance", return_features=True)(
        ms.Tensor(np.zeros((1, 3, 64, 64), np.float32))
    )
    assert [tuple(f.shape) for f in feats] == [
        (1, 8, 32, 32),
        (1, 16, 16, 16),
        (1, 32, 8, 8),
        (1, 64, 7, 7),
        (1, 1, 6, 6),
    ]


def test_no_bias_before_batch_norm_bias_otherwise():
    d_bn = NLayerDiscriminator(6, 8, 3, "batch")
    d_in = NLayerDiscriminator(6, 8, 3, "instance")
    # instance norm has no parameters, but the three inner convs gain biases
    assert count_params(d_in) - count_params(d_bn) == (16 + 32 + 64) - 2 * (16 + 32 + 64)


def test_instance_norm_matches_numpy():
    x = np.random.default_rng(2).normal(2.0, 3.0, (2, 3, 5, 7)).astype(np.float32)
    y = InstanceNorm2d(3)(ms.Tensor(x)).asnumpy()
    m = x.mean(axis=(2, 3), keepdims=True)
    v = x.var(axis=(2, 3), keepdims=True)
    np.testing.assert_allclose(y, (x - m) / np.sqrt(v + 1e-5), rtol=1e-4, atol=1e-5)
    affine = InstanceNorm2d(3, affine=True)
    assert count_params(affine) == 6


@pytest.mark.parametrize("init_type", ["normal", "xavier", "kaiming", "orthogonal", "trunc_normal"])
def test_init_types(init_type):
    d = init_weights(NLayerDiscriminator(6, 16, 2, "batch"), init_type, 0.02)
    w = d.model[0].weight.asnumpy()
    assert np.isfinite(w).all() and w.std() > 0
    assert np.all(d.model[0].bias.asnumpy() == 0)
    if init_type == "normal":
        assert abs(w.std() - 0.02) < 0.004
    if init_type == "trunc_normal":
        assert np.abs(w).max() <= 2 * 0.02 + 1e-6
    bn = [c for _, c in d.cells_and_names() if isinstance(c, ms.nn.BatchNorm2d)][0]
    gamma = bn.gamma.asnumpy()
    assert abs(gamma.mean() - 1.0) < 0.02 and gamma.std() > 0


def test_bad_names_and_sizes():
    with pytest.raises(UserError, match="valid norms are: batch, instance, none"):
        make_norm("layer", 4)
    with pytest.raises(UserError, match="basic, pixel"):
        make_discriminator("n_layers", 6)
    with pytest.raises(UserError, match="does not fit a U-Net with g_layers=8.*multiples of 256"):
        check_unet_size(8, 128, 128)
    check_unet_size(7, 128, 128)


def test_instance_norm_export_form_is_the_same_function():
    from src.common.layers import set_export_friendly

    x = ms.Tensor(np.random.default_rng(3).normal(1.0, 2.0, (2, 4, 6, 5)).astype(np.float32))
    norm = InstanceNorm2d(4)
    fast = norm(x).asnumpy()
    set_export_friendly(norm)
    assert norm.export_friendly
    np.testing.assert_allclose(norm(x).asnumpy(), fast, rtol=1e-5, atol=1e-5)


def _mean_var_instance_norm(x):
    m = x.mean(axis=(2, 3), keep_dims=True)
    c = x - m
    return c / ms.ops.sqrt((c * c).mean(axis=(2, 3), keep_dims=True) + 1e-5)


def _three_norms(x, w1, w2):
    """Three instance norms of the same size, with learned ops between them; a scalar loss."""
    y = instance_norm_via_batch_norm(ms.ops.relu(x * w1 + 0.5))
    y = instance_norm_via_batch_norm(ms.ops.relu(y) * w2 + y)
    return (instance_norm_via_batch_norm(y * y + x) * x).sum()


def _three_norms_reference(x, w1, w2):
    y = _mean_var_instance_norm(ms.ops.relu(x * w1 + 0.5))
    y = _mean_var_instance_norm(ms.ops.relu(y) * w2 + y)
    return (_mean_var_instance_norm(y * y + x) * x).sum()


@pytest.mark.parametrize("compiled", [False, True])
def test_instance_norm_value_and_grad_in_graph_and_pynative(compiled):
    """Several instance norms of one size under value_and_grad: with the running-statistics scratch tensors equal to
    the affine constants, the compiled graph merged them and got wrong values (the eager run did not)."""
    rng = np.random.default_rng(5)
    x = ms.Tensor(rng.normal(1.0, 2.0, (2, 3, 6, 5)).astype(np.float32))
    w1 = ms.Tensor(rng.normal(1.0, 0.5, (1, 3, 1, 1)).astype(np.float32))
    w2 = ms.Tensor(rng.normal(0.0, 1.0, (1, 3, 1, 1)).astype(np.float32))
    fn = ms.value_and_grad(_three_norms, (0, 1, 2))
    if compiled:
        fn = ms.jit(fn)
    value, grads = fn(x, w1, w2)
    ref_value, ref_grads = ms.value_and_grad(_three_norms_reference, (0, 1, 2))(x, w1, w2)
    np.testing.assert_allclose(value.asnumpy(), ref_value.asnumpy(), rtol=1e-4, atol=1e-4)
    for got, want in zip(grads, ref_grads):
        want = want.asnumpy()
        np.testing.assert_allclose(got.asnumpy(), want, rtol=1e-3, atol=1e-4 * np.abs(want).max())


def test_leaky_relu_equals_mindspore_leaky_relu_with_the_reference_gradient():
    from src.common.layers import LeakyReLU

    x = np.random.default_rng(4).normal(size=(2, 3, 5, 7)).astype(np.float32)
    ours = LeakyReLU(0.2)
    np.testing.assert_array_equal(ours(ms.Tensor(x)).asnumpy(), ms.nn.LeakyReLU(0.2)(ms.Tensor(x)).asnumpy())

    def total(inp):
        return (ours(inp) * ms.Tensor(np.arange(x.size, dtype=np.float32).reshape(x.shape))).sum()

    grad = ms.jit(ms.grad(total))(ms.Tensor(x)).asnumpy()
    np.testing.assert_allclose(grad, np.where(x > 0, 1.0, 0.2) * np.arange(x.size).reshape(x.shape), rtol=1e-6)
    with pytest.raises(ValueError, match="alpha"):
        LeakyReLU(1.5)


def _weighted_sum(cell, weights):
    def total(inp):
        return (cell(inp) * weights).sum()

    return total


@pytest.mark.parametrize("mode, np_mode", [("REFLECT", "reflect"), ("SYMMETRIC", "symmetric")])
def test_mirror_pad_from_flipped_slices_matches_numpy_and_mirror_pad(monkeypatch, mode, np_mode):
    """Large inputs are mirror-padded with flipped slices (faster to train on the CPU); same values and gradients."""
    from src.common import layers

    x = np.random.default_rng(5).normal(size=(1, 3, 6, 9)).astype(np.float32)
    dy = ms.Tensor(np.random.default_rng(6).normal(size=(1, 3, 12, 15)).astype(np.float32))
    expected = np.pad(x, ((0, 0), (0, 0), (3, 3), (3, 3)), mode=np_mode)
    results = []
    for threshold in (0, 10**12):  # flipped slices, then MirrorPad
        monkeypatch.setattr(layers, "FLIP_PAD_MIN_VALUES", threshold)
        pad = layers.MirrorPad2d(3, mode)
        np.testing.assert_array_equal(pad(ms.Tensor(x)).asnumpy(), expected)
        results.append(ms.jit(ms.grad(_weighted_sum(pad, dy)))(ms.Tensor(x)).asnumpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5, atol=1e-5)
    assert np.abs(results[1]).sum() > 0

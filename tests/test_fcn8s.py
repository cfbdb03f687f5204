"""FCN-8s in MindSpore vs a NumPy re-statement of Caffe's layer semantics, on a width-reduced synthetic model."""

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from src.errors import UserError
from src.metrics import caffemodel as cm
from tests.test_caffemodel import encode_net, fcn8s_layers, reduced_widths


# ---- Caffe semantics in NumPy ---------------------------------------------------------------------------------------
def np_conv(x, w, b, pad):
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    win = sliding_window_view(x, w.shape[2:], axis=(1, 2))  # C, H', W', kh, kw
    return np.einsum("chwij,ocij->ohw", win, w, optimize=True) + b[:, None, None]


def np_pool_ceil(x, k=2, s=2):
    c, h, w = x.shape
    oh, ow = -(-(h - k) // s) + 1, -(-(w - k) // s) + 1
    padded = np.full((c, (oh - 1) * s + k, (ow - 1) * s + k), -np.inf, dtype=x.dtype)
    padded[:, :h, :w] = x
    return sliding_window_view(padded, (k, k), axis=(1, 2))[:, ::s, ::s].max(axis=(3, 4))


def np_deconv(x, w, s):
    c_in, h, wd = x.shape
    k = w.shape[2]
    out = np.zeros((w.shape[1], (h - 1) * s + k, (wd - 1) * s + k), dtype=np.float64)
    for i in range(k):
        for j in range(k):
            out[:, i : i + s * (h - 1) + 1 : s, j : j + s * (wd - 1) + 1 : s] += np.einsum(
                "chw,co->ohw", x, w[:, :, i, j]
            )
    return out


def np_crop(a, ref_hw, off):
    return a[:, off : off + ref_hw[0], off : off + ref_hw[1]]


def np_fcn8s(blobs, x):
    relu = lambda t: np.maximum(t, 0)  # noqa: E731
    conv = lambda name, t, pad: np_conv(t, *blobs[name], pad)  # noqa: E731
    h = relu(conv("conv1_1", x, 100))
    h = np_pool_ceil(relu(conv("conv1_2", h, 1)))
    h = np_pool_ceil(relu(conv("conv2_2", relu(conv("conv2_1", h, 1)), 1)))
    pool3 = np_pool_ceil(relu(conv("conv3_3", relu(conv("conv3_2", relu(conv("conv3_1", h, 1)), 1)), 1)))
    pool4 = np_pool_ceil(relu(conv("conv4_3", relu(conv("conv4_2", relu(conv("conv4_1", pool3, 1)), 1)), 1)))
    h = np_pool_ceil(relu(conv("conv5_3", relu(conv("conv5_2", relu(conv("conv5_1", pool4, 1)), 1)), 1)))
    h = conv("score_fr", relu(conv("fc7_cs", relu(conv("fc6_cs", h, 0)), 0)), 0)
    up2 = np_deconv(h, blobs["upscore2"][0], 2)
    h = up2 + np_crop(conv("score_pool4", pool4, 0), up2.shape[1:], 5)
    up4 = np_deconv(h, blobs["upscore_pool4"][0], 2)
    h = up4 + np_crop(conv("score_pool3", pool3, 0), up4.shape[1:], 9)
    return np_crop(np_deconv(h, blobs["upscore8"][0], 8), x.shape[1:], 31)


# ---- tests ---------------------------------------------------------------------------------------------------------
def test_pool_ceil_mode_matches_caffe():
    import mindspore as ms
    from mindspore import nn

    x = np.random.default_rng(0).standard_normal((1, 2, 5, 7)).astype("f4")
    got = nn.MaxPool2d(2, 2, pad_mode="pad", ceil_mode=True)(ms.Tensor(x)).asnumpy()[0]
    assert got.shape == (2, 3, 4)
    np.testing.assert_array_equal(got, np_pool_ceil(x[0]))


def test_full_width_parameter_count():
    from src.metrics.fcn8s import FCN8s, count_parameters

    net = FCN8s()
    assert count_parameters(net) == 134_473_084
    assert net.conv1_1.padding == 100 and net.upscore8.weight.shape == (20, 20, 16, 16)


@pytest.mark.parametrize("hw", [(12, 20), (9, 9)])
def test_mindspore_forward_matches_numpy_caffe_reference(tmp_path, hw):
    from src.metrics.fcn8s import build_fcn8s, predict_scores, preprocess

    widths = reduced_widths(16)
    path = tmp_path / "tiny.caffemodel"
    path.write_bytes(encode_net(fcn8s_layers(widths, seed=2, scale=0.2)))
    layers = cm.read_caffemodel(path)
    cm.validate_fcn8s(layers, str(path), allow_reduced_width=True)
    net = build_fcn8s(cm.fcn8s_param_dict(layers), str(path))
    rgb = np.random.default_rng(3).integers(0, 256, hw + (3,), dtype=np.uint8)
    got = predict_scores(net, rgb)
    assert got.shape == (20,) + hw
    blobs = {k: [b.astype(np.float64) for b in v] + ([np.zeros(v[0].shape[0])] if len(v) == 1 else []) for k, v in
             layers.items()}  # fmt: skip
    want = np_fcn8s(blobs, preprocess(rgb)[0].astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4 * np.abs(want).max())
    # BGR order and mean: the first input channel is blue minus 72.78044
    assert abs(preprocess(rgb)[0, 0, 0, 0] - (rgb[0, 0, 2] - 72.78044)) < 1e-4


def test_checkpoint_with_wrong_shapes_is_rejected():
    from src.metrics.fcn8s import build_fcn8s

    params = cm.fcn8s_param_dict(dict((n, b) for n, _, b in fcn8s_layers(reduced_widths(16))))
    params["score_pool3.weight"] = np.zeros((20, 7, 1, 1), "f4")
    with pytest.raises(UserError, match=r"'score_pool3.weight' has shape \(20, 7, 1, 1\), expected \(20, 16, 1, 1\)"):
        build_fcn8s(params, "x.ckpt")
    del params["fc6_cs.weight"]
    with pytest.raises(UserError, match="'fc6_cs.weight' is missing"):
        build_fcn8s(params, "x.ckpt")

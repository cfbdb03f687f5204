"""Transposed convolutions with PyTorch's padding / output_padding, against the direct definition."""

import mindspore as ms
import numpy as np
import pytest

from src.common.layers import conv_transpose2d


def reference_conv_transpose(x, w, b, stride, padding, output_padding):
    """Scatter every input pixel through the kernel, then crop ``padding`` top/left and
    ``padding - output_padding`` bottom/right (PyTorch's ConvTranspose2d)."""
    n, c_in, h, wd = x.shape
    _, c_out, k, _ = w.shape
    full = np.zeros((n, c_out, (h - 1) * stride + k, (wd - 1) * stride + k), np.float64)
    for i in range(h):
        for j in range(wd):
            full[:, :, i * stride : i * stride + k, j * stride : j * stride + k] += np.einsum(
                "nc,cokl->nokl", x[:, :, i, j], w
            )
    end = padding - output_padding
    out = full[:, :, padding : full.shape[2] - end, padding : full.shape[3] - end]
    return out + b[None, :, None, None]


@pytest.mark.parametrize("k,stride,padding,output_padding", [(3, 2, 1, 1), (4, 2, 1, 0), (3, 2, 1, 0), (5, 2, 2, 1)])
def test_conv_transpose_matches_definition(k, stride, padding, output_padding):
    rng = np.random.default_rng(k + padding + output_padding)
    x = rng.standard_normal((2, 3, 5, 6)).astype(np.float32)
    layer = conv_transpose2d(3, 4, k, stride, padding, has_bias=True, output_padding=output_padding)
    w = rng.standard_normal(tuple(layer.weight.shape)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    layer.weight.set_data(ms.Tensor(w))
    layer.bias.set_data(ms.Tensor(b))
    got = layer(ms.Tensor(x)).asnumpy()
    want = reference_conv_transpose(x.astype(np.float64), w.astype(np.float64), b, stride, padding, output_padding)
    assert got.shape == want.shape == (2, 4, (5 - 1) * stride - 2 * padding + k + output_padding,
                                       (6 - 1) * stride - 2 * padding + k + output_padding)  # fmt: skip
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("k,stride,padding,output_padding", [(3, 2, 1, 1), (5, 2, 2, 1)])
def test_conv_transpose_onnx_export_matches(tmp_path, k, stride, padding, output_padding):
    """MindSpore writes ConvTranspose ``pads`` in (top, bottom, left, right) order; export.py reorders them to ONNX's
    (top, left, bottom, right). Asymmetric padding (``output_padding``) is where the two differ."""
    pytest.importorskip("onnxruntime")
    from export import export_network, run_exported

    rng = np.random.default_rng(7)
    layer = conv_transpose2d(3, 4, k, stride, padding, has_bias=True, output_padding=output_padding)
    layer.weight.set_data(ms.Tensor(rng.standard_normal(tuple(layer.weight.shape)).astype(np.float32)))
    x = rng.standard_normal((1, 3, 5, 7)).astype(np.float32)
    path = str(tmp_path / "ct.onnx")
    export_network(layer, x, path, "ONNX")
    got = run_exported(path, "ONNX", x)
    want = layer(ms.Tensor(x)).asnumpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)

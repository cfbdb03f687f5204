"""Comparing a conv layer (or function) with MindSpore's own: outputs and gradients in a jit graph."""

import mindspore as ms
import numpy as np


def outputs_and_grads(forward, params, x, dy):
    """Output and the gradients of sum(forward(x) * dy) with respect to x and ``params``, in a jit graph."""

    def loss(inp):
        out = forward(inp)
        return (out * dy).sum(), out

    grad_fn = ms.value_and_grad(loss, 0, params, has_aux=True)
    (_, out), (dx, dparams) = ms.jit(grad_fn)(x)
    return [out.asnumpy(), dx.asnumpy()] + [g.asnumpy() for g in dparams]


def layer_outputs_and_grads(layer, x, dy):
    """:func:`outputs_and_grads` of a layer with respect to x and every trainable parameter."""
    return outputs_and_grads(layer, layer.trainable_params(), x, dy)


def assert_close(got, want, names=None, rtol=2e-5):
    """Every tensor of ``got`` has the shape of its twin in ``want`` and differs by at most ``rtol`` of its scale."""
    assert len(got) == len(want)
    names = names or [f"tensor {i}" for i in range(len(want))]
    for name, g, w in zip(names, got, want):
        assert g.shape == w.shape, name
        scale = np.abs(w).max()
        assert np.abs(g - w).max() <= rtol * scale, f"{name}: max error {np.abs(g - w).max()} vs scale {scale}"


def copy_params(src, dst):
    """``dst``'s trainable parameters set to ``src``'s (same layout)."""
    for a, b in zip(src.trainable_params(), dst.trainable_params()):
        b.set_data(a.value())

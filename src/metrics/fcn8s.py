"""The Cityscapes FCN-8s of the pix2pix / CycleGAN FCN score, in MindSpore, layer for layer as its ``deploy.prototxt``.

Caffe semantics reproduced here (see ``docs/fcn_score.md``):

* ``conv1_1`` pads by 100 pixels; every other 3x3 conv pads by 1; ``fc6_cs`` (7x7), ``fc7_cs``, ``score_*`` (1x1)
  do not pad; every conv has a bias; ReLU after every conv up to ``fc7_cs`` (none after the score layers);
* max pooling 2x2 stride 2 rounds the output size **up** (``ceil((H - 2) / 2) + 1``; the last window is partial);
* the three deconvolutions (``upscore2`` 4/2, ``upscore_pool4`` 4/2, ``upscore8`` 16/8) are learned, dense 20x20,
  without bias and without padding: ``out = (H - 1) * s + k``;
* crops (``axis: 2``) at offsets 5 (``score_pool4`` to ``upscore2``), 9 (``score_pool3`` to ``upscore_pool4``) and
  31 (``upscore8`` to the input): ``A[:, :, o:o + ref_h, o:o + ref_w]``;
* 20 output channels (``score``, 1 x 20 x H x W for an H x W input).

Channel widths come from a dict (default: the full model, 134,473,084 parameters), so a width-reduced synthetic
model loads and runs in tests within seconds. Parameter names are ``<caffe layer>.weight`` / ``<caffe layer>.bias``.
"""

import mindspore as ms
import numpy as np
from mindspore import nn

from src.errors import UserError
from src.metrics.caffemodel import FCN8S_FULL_WIDTHS, FCN8S_LAYERS, FCN8S_NUM_OUTPUTS, expected_shapes

MEAN_BGR = (72.78044, 83.21195, 73.45286)
"""Per-channel mean subtracted from the B, G, R channels (``cityscapes.py`` of the reference)."""

_CONV_PAD = {"conv1_1": 100}
_POOL_AFTER = ("conv1_2", "conv2_2", "conv3_3", "conv4_3", "conv5_3")


def _conv(c_in, c_out, k, pad):
    if pad:
        return nn.Conv2d(c_in, c_out, k, stride=1, pad_mode="pad", padding=pad, has_bias=True)
    return nn.Conv2d(c_in, c_out, k, stride=1, pad_mode="valid", has_bias=True)


class FCN8s(nn.Cell):
    """FCN-8s: ``construct(x)`` maps ``1 x 3 x H x W`` (BGR, mean subtracted) to ``1 x 20 x H x W`` scores."""

    def __init__(self, widths=None):
        super().__init__()
        widths = dict(FCN8S_FULL_WIDTHS if widths is None else widths)
        self.widths = widths
        full = dict(widths, data=3)
        for name, kind, src, k in FCN8S_LAYERS:
            c_in, c_out = full[src], full[name]
            if kind == "conv":
                pad = _CONV_PAD.get(name, 1 if k == 3 else 0)
                setattr(self, name, _conv(c_in, c_out, k, pad))
            else:
                setattr(self, name, nn.Conv2dTranspose(c_in, c_out, k, stride=k // 2, pad_mode="valid", has_bias=False))
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2, 2, pad_mode="pad", ceil_mode=True)

    def _block(self, x, names):
        for name in names:
            x = self.relu(getattr(self, name)(x))
        return self.pool(x)

    def construct(self, x):
        h, w = x.shape[2], x.shape[3]
        x = self._block(x, ("conv1_1", "conv1_2"))
        x = self._block(x, ("conv2_1", "conv2_2"))
        pool3 = self._block(x, ("conv3_1", "conv3_2", "conv3_3"))
        pool4 = self._block(pool3, ("conv4_1", "conv4_2", "conv4_3"))
        x = self._block(pool4, ("conv5_1", "conv5_2", "conv5_3"))
        x = self.relu(self.fc6_cs(x))
        x = self.relu(self.fc7_cs(x))
        x = self.score_fr(x)
        up2 = self.upscore2(x)
        sp4 = self.score_pool4(pool4)
        x = up2 + sp4[:, :, 5 : 5 + up2.shape[2], 5 : 5 + up2.shape[3]]
        up4 = self.upscore_pool4(x)
        sp3 = self.score_pool3(pool3)
        x = up4 + sp3[:, :, 9 : 9 + up4.shape[2], 9 : 9 + up4.shape[3]]
        x = self.upscore8(x)
        return x[:, :, 31 : 31 + h, 31 : 31 + w]


def count_parameters(net):
    return int(sum(int(np.prod(p.shape)) for p in net.get_parameters()))


def widths_from_params(params, path="checkpoint"):
    """Widths from ``{name: array}`` of an FCN-8s checkpoint; checks every shape (clear error naming the layer)."""
    widths = {}
    for name, kind, _, _ in FCN8S_LAYERS:
        key = f"{name}.weight"
        if key not in params:
            raise UserError(f"{path} is not an FCN-8s checkpoint: parameter '{key}' is missing")
        shape = tuple(params[key].shape)
        if len(shape) != 4:
            raise UserError(f"{path}: parameter '{key}' has shape {shape}, expected 4 dimensions")
        widths[name] = shape[0] if kind == "conv" else shape[1]
    for name in ("score_fr", "upscore2", "score_pool4", "upscore_pool4", "score_pool3", "upscore8"):
        if widths[name] != FCN8S_NUM_OUTPUTS:
            raise UserError(
                f"{path}: layer '{name}' has {widths[name]} outputs, expected {FCN8S_NUM_OUTPUTS} "
                "(the Cityscapes FCN-8s has 20 output channels)"
            )
    for name, (w_shape, b_shape) in expected_shapes(widths).items():
        got = tuple(params[f"{name}.weight"].shape)
        if got != w_shape:
            raise UserError(f"{path}: parameter '{name}.weight' has shape {got}, expected {w_shape}")
        if b_shape is not None:
            b = params.get(f"{name}.bias")
            if b is None or tuple(b.shape) != b_shape:
                raise UserError(
                    f"{path}: parameter '{name}.bias' has shape {None if b is None else tuple(b.shape)}, "
                    f"expected {b_shape}"
                )
    return widths


def build_fcn8s(params, path="checkpoint"):
    """An :class:`FCN8s` sized after ``params`` (``{name: array}``) with those weights loaded."""
    from src.common.tensors import assign

    net = FCN8s(widths_from_params(params, path))
    for p in net.get_parameters():
        assign(p, params[p.name])
    net.set_train(False)
    return net


def preprocess(rgb):
    """``HxWx3`` uint8 RGB -> ``1x3xHxW`` float32: RGB -> BGR, minus :data:`MEAN_BGR` (the reference's order)."""
    arr = np.asarray(rgb, dtype=np.float32)[:, :, ::-1] - np.asarray(MEAN_BGR, dtype=np.float32)
    return np.ascontiguousarray(arr.transpose(2, 0, 1)[None])


def predict_scores(net, rgb):
    """Run the net on one RGB uint8 image; returns the ``20 x H x W`` float32 scores."""
    out = net(ms.Tensor(preprocess(rgb)))
    return out.asnumpy()[0]

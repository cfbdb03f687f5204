"""The InceptionV3 of the standard FID (pytorch-fid's ``FIDInceptionV3``) in MindSpore, up to the 2048-d pool features.

Re-stated from the published architecture (torchvision's Inception3 with the FID patches of pytorch-fid), not copied:

* every conv is ``BasicConv2d``: conv without bias, batch norm (eps 0.001, inference statistics), ReLU;
* stem: ``Conv2d_1a_3x3`` (stride 2), ``Conv2d_2a_3x3``, ``Conv2d_2b_3x3`` (pad 1), max pool 3/2, ``Conv2d_3b_1x1``,
  ``Conv2d_4a_3x3``, max pool 3/2 (no padding, floor);
* ``Mixed_5b/5c/5d`` (InceptionA), ``Mixed_6a`` (InceptionB), ``Mixed_6b..6e`` (InceptionC), ``Mixed_7a``
  (InceptionD), ``Mixed_7b`` (InceptionE), ``Mixed_7c`` (InceptionE), global average pool -> ``N x 2048``;
* the FID patches: the 3x3 stride-1 average pools of the A, C and first E blocks do **not** count the zero padding
  (TensorFlow's pooling), and the last E block (``Mixed_7c``) max-pools instead of averaging;
* the input (RGB in [0, 1]) is resized to 299x299 (bilinear, ``align_corners=False``, no antialiasing, as
  ``F.interpolate``; done on the host by :func:`resize_bilinear`) and mapped to [-1, 1] by ``2 x - 1``.

Parameter names are pytorch-fid's keys with MindSpore's batch-norm leaves (``Mixed_5b.branch1x1.bn.gamma`` for
``Mixed_5b.branch1x1.bn.weight``), so :func:`load_pt_inception` maps ``pt_inception-2015-12-05-*.pth`` one to one.
"""

import os

import numpy as np
from mindspore import nn, ops

from src.errors import UserError

FID_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
FEATURE_DIM = 2048
INPUT_SIZE = 299
BN_EPS = 1e-3
_BN_LEAVES = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


class BasicConv2d(nn.Cell):
    """conv (no bias) + batch norm (eps 0.001, eval) + ReLU; ``padding`` is PyTorch's (per side, h and w)."""

    def __init__(self, c_in, c_out, kernel_size, stride=1, padding=0):
        super().__init__()
        ph, pw = _pair(padding)
        if ph or pw:
            self.conv = nn.Conv2d(
                c_in, c_out, kernel_size, stride, pad_mode="pad", padding=(ph, ph, pw, pw), has_bias=False
            )
        else:
            self.conv = nn.Conv2d(c_in, c_out, kernel_size, stride, pad_mode="valid", has_bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=BN_EPS, use_batch_statistics=False)
        self.relu = nn.ReLU()

    def construct(self, x):
        return self.relu(self.bn(self.conv(x)))


class AvgPoolNoPad(nn.Cell):
    """3x3 stride-1 average pool, zero padding 1, padded zeros not counted (``count_include_pad=False``)."""

    def construct(self, x):
        return ops.avg_pool2d(x, 3, 1, 1, count_include_pad=False)


class InceptionA(nn.Cell):
    def __init__(self, c_in, pool_features):
        super().__init__()
        self.branch1x1 = BasicConv2d(c_in, 64, 1)
        self.branch5x5_1 = BasicConv2d(c_in, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.pool = AvgPoolNoPad()
        self.branch_pool = BasicConv2d(c_in, pool_features, 1)

    def construct(self, x):
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(self.pool(x))
        return ops.concat((b1, b5, b3, bp), 1)


class InceptionB(nn.Cell):
    def __init__(self, c_in):
        super().__init__()
        self.branch3x3 = BasicConv2d(c_in, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)
        self.pool = nn.MaxPool2d(3, 2, pad_mode="valid")

    def construct(self, x):
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return ops.concat((b3, bd, self.pool(x)), 1)


class InceptionC(nn.Cell):
    def __init__(self, c_in, c7):
        super().__init__()
        self.branch1x1 = BasicConv2d(c_in, 192, 1)
        self.branch7x7_1 = BasicConv2d(c_in, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(c_in, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.pool = AvgPoolNoPad()
        self.branch_pool = BasicConv2d(c_in, 192, 1)

    def construct(self, x):
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        bd = self.branch7x7dbl_3(self.branch7x7dbl_2(bd))
        bd = self.branch7x7dbl_5(self.branch7x7dbl_4(bd))
        bp = self.branch_pool(self.pool(x))
        return ops.concat((b1, b7, bd, bp), 1)


class InceptionD(nn.Cell):
    def __init__(self, c_in):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(c_in, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(c_in, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)
        self.pool = nn.MaxPool2d(3, 2, pad_mode="valid")

    def construct(self, x):
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return ops.concat((b3, b7, self.pool(x)), 1)


class InceptionE(nn.Cell):
    """``max_pool=False``: FIDInceptionE_1 (average pool without padded zeros); ``True``: FIDInceptionE_2."""

    def __init__(self, c_in, max_pool):
        super().__init__()
        self.branch1x1 = BasicConv2d(c_in, 320, 1)
        self.branch3x3_1 = BasicConv2d(c_in, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(c_in, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.pool = nn.MaxPool2d(3, 1, pad_mode="pad", padding=1) if max_pool else AvgPoolNoPad()
        self.branch_pool = BasicConv2d(c_in, 192, 1)

    def construct(self, x):
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = ops.concat((self.branch3x3_2a(b3), self.branch3x3_2b(b3)), 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = ops.concat((self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)), 1)
        bp = self.branch_pool(self.pool(x))
        return ops.concat((b1, b3, bd, bp), 1)


class FIDInceptionV3(nn.Cell):
    """``construct(x)``: ``N x 3 x 299 x 299`` in [-1, 1] -> ``N x 2048`` pool features (see the module docstring)."""

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, 32)
        self.Mixed_5c = InceptionA(256, 64)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128)
        self.Mixed_6c = InceptionC(768, 160)
        self.Mixed_6d = InceptionC(768, 160)
        self.Mixed_6e = InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.maxpool = nn.MaxPool2d(3, 2, pad_mode="valid")
        for p in self.get_parameters():
            p.requires_grad = False

    def construct(self, x):
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = self.maxpool(x)
        x = self.maxpool(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)))
        x = self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(x)))
        x = self.Mixed_6a(x)
        x = self.Mixed_6e(self.Mixed_6d(self.Mixed_6c(self.Mixed_6b(x))))
        x = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x)))
        return x.mean(axis=(2, 3))


def _resize_matrix(n_in, n_out):
    """``n_out x n_in`` weights of 1-D linear interpolation with ``align_corners=False`` (half-pixel centres,
    source coordinates below 0 clamped to 0, the upper neighbour clamped to the last pixel), float64."""
    scale = n_in / n_out
    src = np.maximum((np.arange(n_out) + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = src - i0
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.arange(n_out), i0), 1.0 - lam)
    np.add.at(m, (np.arange(n_out), i1), lam)
    return m


def resize_bilinear(chw, size=INPUT_SIZE):
    """``C x H x W`` float -> ``C x size x size``, as ``F.interpolate(mode="bilinear", align_corners=False)``."""
    _, h, w = chw.shape
    if (h, w) == (size, size):
        return np.asarray(chw, np.float32)
    mh, mw = _resize_matrix(h, size), _resize_matrix(w, size)
    out = np.einsum("oh,chw,pw->cop", mh, np.asarray(chw, np.float64), mw, optimize=True)
    return out.astype(np.float32)


def preprocess(images_01):
    """A list of ``3 x H x W`` arrays in [0, 1] (sizes may differ) -> ``N x 3 x 299 x 299`` float32 in [-1, 1]."""
    return np.stack([2.0 * resize_bilinear(img) - 1.0 for img in images_01]).astype(np.float32)


def expected_shapes(net=None):
    """``{pytorch-fid key: shape}`` of the network's weights (the ``fc`` classifier is not needed)."""
    net = net or FIDInceptionV3()
    inverse = {v: k for k, v in _BN_LEAVES.items()}
    shapes = {}
    for p in net.get_parameters():
        prefix, leaf = p.name.rsplit(".", 1)
        shapes[f"{prefix}.{inverse.get(leaf, leaf)}"] = (p.name, tuple(p.shape))
    return shapes


def load_pt_inception(path, net=None):
    """An eval-mode :class:`FIDInceptionV3` with the weights of ``pt_inception-2015-12-05-*.pth`` (read without
    PyTorch). A missing file, a file of another network or a wrong shape is a one-line :class:`UserError`."""
    from src.common.tensors import assign
    from src.convert.torch_reader import read_state_dict

    if not path or not os.path.isfile(path):
        raise UserError(
            f"FID weights not found: '{path}'; download {FID_WEIGHTS_NAME} (pytorch-fid's InceptionV3, "
            f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{FID_WEIGHTS_NAME}) and pass "
            "its path (see docs/fid.md)"
        )
    state = read_state_dict(path)
    net = net or FIDInceptionV3()
    shapes = expected_shapes(net)
    missing = [k for k in shapes if k not in state]
    if missing:
        raise UserError(
            f"{path} is not pytorch-fid's InceptionV3 ({FID_WEIGHTS_NAME}): {len(missing)} of {len(shapes)} "
            f"weights are missing, e.g. '{missing[0]}'"
        )
    params = {p.name: p for p in net.get_parameters()}
    for key, (name, shape) in shapes.items():
        value = state[key]
        if tuple(value.shape) != shape:
            raise UserError(f"{path}: '{key}' has shape {tuple(value.shape)}, expected {shape} ({FID_WEIGHTS_NAME})")
        assign(params[name], np.ascontiguousarray(value, np.float32))
    net.set_train(False)
    return net

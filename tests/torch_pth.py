"""Write small PyTorch-format checkpoints without PyTorch, for tests.

The committed fixtures in ``tests/fixtures/torch`` were written by PyTorch itself; this writer covers what is too big
to commit (a VGG19-shaped state dict) and hostile files. It emits the zip layout of ``torch.save`` (>= 1.6):
``archive/data.pkl`` (pickle protocol 2) whose tensors are ``torch._utils._rebuild_tensor_v2`` calls on persistent
storages ``("storage", torch.FloatStorage, key, "cpu", numel)``, and ``archive/data/<key>`` with the raw bytes.
"""

import io
import pickle
import zipfile
import zlib
from collections import OrderedDict

import numpy as np

STORAGE = {np.dtype(np.float32): "FloatStorage", np.dtype(np.int64): "LongStorage", np.dtype(np.float16): "HalfStorage"}


class Global:
    """Pickled as ``GLOBAL module name`` (a name that need not exist here)."""

    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle insists that a reduce function is callable
        raise RuntimeError("not callable here")


class _Storage:
    def __init__(self, key, array):
        self.key, self.array = key, array


class _Tensor:
    def __init__(self, storage, shape):
        self.storage, self.shape = storage, shape

    def __reduce__(self):
        stride = tuple(int(np.prod(self.shape[i + 1 :])) for i in range(len(self.shape)))
        args = (self.storage, 0, tuple(self.shape), stride, False, OrderedDict())
        return Global("torch._utils", "_rebuild_tensor_v2"), args


class Reduce:
    """An object pickled as ``func(*args)`` for an arbitrary global ``func`` (to build hostile pickles)."""

    def __init__(self, module, name, args):
        self.func, self.args = Global(module, name), args

    def __reduce__(self):
        return self.func, self.args


class _Pickler(pickle._Pickler):  # the pure-Python pickler, whose dispatch table can take one more type
    dispatch = dict(pickle._Pickler.dispatch)

    def _save_global(self, obj):
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())

    dispatch[Global] = _save_global

    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            return ("storage", Global("torch", STORAGE[obj.array.dtype]), obj.key, "cpu", obj.array.size)
        return None


def pth_bytes(state):
    """A zip-format ``.pth`` of ``state`` (name -> NumPy array, or any picklable object such as :class:`Reduce`)."""
    storages, obj = [], OrderedDict()
    for name, value in state.items():
        if isinstance(value, np.ndarray):
            storage = _Storage(str(len(storages)), np.ascontiguousarray(value))
            storages.append(storage)
            value = _Tensor(storage, value.shape)
        obj[name] = value
    pkl = io.BytesIO()
    _Pickler(pkl, protocol=2).dump(obj)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("archive/data.pkl", pkl.getvalue())
        zf.writestr("archive/byteorder", "little")
        for s in storages:
            zf.writestr(f"archive/data/{s.key}", s.array.astype(s.array.dtype.newbyteorder("<")).tobytes())
    return out.getvalue()


def write_pth(path, state):
    with open(path, "wb") as f:
        f.write(pth_bytes(state))
    return path


def vgg19_state(seed=0):
    """A torchvision ``vgg19`` state dict with deterministic weights (the ``vgg19_features.npz`` fixture holds
    PyTorch's outputs for exactly these): sin/cos patterns scaled like He initialisation."""
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]
    state, idx, in_ch = OrderedDict(), 0, 3
    for v in cfg:
        if v == "M":
            idx += 1
            continue
        n = v * in_ch * 9
        w = np.sin(np.arange(n, dtype=np.float64) * 0.7311 + idx) * (4.0 / (in_ch * 9)) ** 0.5
        state[f"features.{idx}.weight"] = w.astype(np.float32).reshape(v, in_ch, 3, 3)
        state[f"features.{idx}.bias"] = (np.cos(np.arange(v, dtype=np.float64) * 1.3 + idx) * 0.05).astype(np.float32)
        idx += 2
        in_ch = v
    state["classifier.0.weight"] = np.zeros((4, 8), np.float32)  # a stand-in for the (ignored) classifier
    state["classifier.0.bias"] = np.zeros(4, np.float32)
    return state


def vgg19_normal_state(seed=0):
    """A torchvision ``vgg19`` state dict with He-normal conv weights from ``np.random.default_rng(seed)`` and small
    biases. The training-step fixtures (tests/fixtures/train/) use these: the sin/cos patterns of
    :func:`vgg19_state` are so correlated that the VGG loss's gradient loses about 0.5% to float32 rounding (PyTorch's
    own float32 and float64 training steps then differ by 7e-5 in G's weights), while these lose about 1e-7."""
    state = vgg19_state(seed)
    rng = np.random.default_rng(seed)
    for key, value in state.items():
        if key.startswith("features.") and value.ndim == 4:
            fan_in = value.shape[1] * 9
            state[key] = (rng.standard_normal(value.shape) * (2.0 / fan_in) ** 0.5).astype(np.float32)
        elif key.startswith("features."):
            state[key] = (rng.uniform(-0.05, 0.05, value.shape)).astype(np.float32)
    return state


def inception_state(shapes, seed=0):
    """A pytorch-fid InceptionV3 state dict (``{key: shape}`` -> arrays) with deterministic random weights that keep
    activations near unit scale: He-scaled conv weights, batch-norm statistics near the identity (mean ~0, var in
    [0.5, 1.5], gamma in [0.8, 1.2], beta ~0.05). ``tests/fixtures/fid/features.npz`` holds pytorch-fid's features
    for exactly these weights. Each tensor has its own generator (seeded by ``seed`` and the key), so the order of
    ``shapes`` does not matter."""
    state = OrderedDict()
    for key, shape in shapes.items():
        rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
        leaf = key.rsplit(".", 1)[1]
        if leaf == "weight" and len(shape) == 4:
            fan_in = shape[1] * shape[2] * shape[3]
            value = rng.standard_normal(shape) * (2.0 / fan_in) ** 0.5
        elif leaf == "weight":
            value = rng.uniform(0.8, 1.2, shape)
        elif leaf == "bias":
            value = rng.standard_normal(shape) * 0.05
        elif leaf == "running_mean":
            value = rng.standard_normal(shape) * 0.05
        else:  # running_var
            value = rng.uniform(0.5, 1.5, shape)
        state[key] = value.astype(np.float32)
    return state

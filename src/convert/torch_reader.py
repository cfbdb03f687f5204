"""Read PyTorch ``.pth`` checkpoints without PyTorch: tensors and plain containers only.

A ``.pth`` file is a pickle, and unpickling can run arbitrary code. This reader uses a restricted unpickler that
resolves only the few names a state dict needs (``collections.OrderedDict``, torch's tensor-rebuild functions,
storage types, ``torch.Size``) and refuses everything else before it is called, so a hostile file cannot execute
anything. Tensors come back as NumPy arrays.

Three container formats, as written by ``torch.save`` over the years:

- **zip** (PyTorch >= 1.6): ``<archive>/data.pkl`` is the pickle; each storage is the member ``<archive>/data/<key>``
  (raw little-endian elements); persistent ids are ``("storage", type, key, location, numel)``.
- **legacy pickle** (PyTorch 0.4 - 1.5, and ``_use_new_zipfile_serialization=False``): a stream of pickles (magic
  number, protocol version, system info, the object, the list of storage keys) followed by each storage as an int64
  element count and its raw bytes; persistent ids are ``("storage", type, key, location, numel, view)``.
- **legacy tar** (the earliest releases): a tar with members ``storages`` (count, then per storage a pickled
  ``(key, location, type)``, an int64 element count and the bytes; then a list of storage views), ``tensors`` (count,
  then per tensor a pickled ``(key, storage key, type)``, int32 ndim + 4 padding bytes, int64 sizes, strides and
  offset) and ``pickle`` (the object, whose persistent ids are tensor keys).
"""

import io
import pickle
import struct
import tarfile
import zipfile
from collections import OrderedDict

import numpy as np

from src.errors import UserError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# storage class name -> NumPy dtype ("BFloat16" is widened to float32 after reading as uint16)
STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "BFloat16Storage": np.uint16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _StorageType:
    """Stands for a torch storage class (``torch.FloatStorage``) in the pickle."""

    def __init__(self, name):
        self.name = name
        self.dtype = np.dtype(STORAGE_DTYPES[name])


class _Storage:
    """A storage's elements; ``data`` is filled as soon as the container format makes the bytes available."""

    def __init__(self, stype, numel, data=None):
        self.stype = stype
        self.numel = int(numel)
        self.data = data


class _LazyTensor:
    """A tensor whose storage may not be read yet (legacy format): resolved to an array after loading."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, int(offset), tuple(size), tuple(stride)

    def to_numpy(self, path):
        data = self.storage.data
        if data is None:
            raise UserError(f"{path}: a tensor refers to a storage that is missing from the file (truncated?)")
        size, stride, offset = self.size, self.stride, self.offset
        if len(size) != len(stride) or any(s < 0 for s in size) or any(s < 0 for s in stride):
            raise UserError(f"{path}: a tensor has an invalid size {size} / stride {stride} (corrupt file?)")
        last = offset + sum((n - 1) * s for n, s in zip(size, stride)) if all(size) else offset - 1
        if offset < 0 or last >= data.size:
            raise UserError(
                f"{path}: a tensor of size {size} reaches beyond its storage of {data.size} elements (truncated?)"
            )
        item = data.itemsize
        arr = np.lib.stride_tricks.as_strided(data[offset:], size, [s * item for s in stride]).copy()
        if self.storage.stype.name == "BFloat16Storage":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        return arr


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    if not isinstance(storage, _Storage):
        raise UserError("the pickle rebuilds a tensor from something that is not a storage")
    return _LazyTensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *unused):
    return data


def _size(*args):
    return tuple(*args) if args else ()


ALLOWED = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch", "Size"): _size,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only :data:`ALLOWED` names and storage types; anything else is refused before it is called."""

    def __init__(self, file, path, persistent):
        super().__init__(file, encoding="utf-8")
        self._path = path
        self._persistent = persistent

    def find_class(self, module, name):
        if (module, name) in ALLOWED:
            return ALLOWED[(module, name)]
        if module in ("torch", "torch.cuda") and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise UserError(
            f"{self._path}: refusing to load: the pickle asks for '{module}.{name}', which is not a tensor or a plain "
            f"container (a .pth file can run code when unpickled; only state dicts are read here)"
        )

    def persistent_load(self, pid):
        return self._persistent(pid)


def _decode(text):
    return text.decode("ascii") if isinstance(text, bytes) else text


def _unpickle(data, path, persistent):
    try:
        return _RestrictedUnpickler(io.BytesIO(data) if isinstance(data, bytes) else data, path, persistent).load()
    except UserError:
        raise
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, KeyError, IndexError, struct.error) as exc:
        raise UserError(f"{path}: cannot unpickle the checkpoint (truncated or corrupt?): {exc}") from None


def _resolve(obj, path):
    """Replace every lazy tensor in (nested) containers by its array."""
    if isinstance(obj, _LazyTensor):
        return obj.to_numpy(path)
    if isinstance(obj, dict):
        out = OrderedDict() if isinstance(obj, OrderedDict) else {}
        for k, v in obj.items():
            out[k] = _resolve(v, path)
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_resolve(v, path) for v in obj)
    return obj


def _storage_from_pid(pid, storages, path):
    if not isinstance(pid, tuple) or not pid or _decode(pid[0]) != "storage":
        raise UserError(f"{path}: unexpected persistent object {pid!r:.60} (not a tensor storage)")
    stype, key, numel = pid[1], str(pid[2]), pid[4]
    if not isinstance(stype, _StorageType):
        raise UserError(f"{path}: a storage of unknown type {stype!r:.60}")
    if key not in storages:
        storages[key] = _Storage(stype, numel)
    storage = storages[key]
    view = pid[5] if len(pid) > 5 else None
    if view is not None:  # legacy view into a larger storage: (view key, offset, size)
        view_key, offset, view_size = str(view[0]), int(view[1]), int(view[2])
        if view_key not in storages:
            storages[view_key] = _View(storage, offset, view_size)
        return storages[view_key]
    return storage


class _View(_Storage):
    """A legacy storage view: a window of a root storage, resolved once the root is read."""

    def __init__(self, root, offset, numel):
        super().__init__(root.stype, numel)
        self.root, self.offset = root, offset

    @property
    def data(self):
        if self.root.data is None:
            return None
        return self.root.data[self.offset : self.offset + self.numel]

    @data.setter
    def data(self, value):
        pass


def _read_zip(path):
    try:
        zf = zipfile.ZipFile(path)
        names = zf.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise UserError(
            f"{path}: not a readable PyTorch checkpoint (truncated or corrupt zip archive: {exc})"
        ) from None
    with zf:
        pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if not pkl:
            raise UserError(f"{path}: a zip archive without data.pkl is not a PyTorch checkpoint")
        prefix = pkl[0][: -len("data.pkl")]
        big_endian = False
        if prefix + "byteorder" in names:
            big_endian = zf.read(prefix + "byteorder").strip() == b"big"
        storages = {}

        def persistent(pid):
            storage = _storage_from_pid(pid, storages, path)
            if storage.data is None:
                member = f"{prefix}data/{_decode(pid[2])}"
                try:
                    raw = zf.read(member)
                except KeyError:
                    raise UserError(f"{path}: storage {member} is missing from the archive (truncated?)") from None
                except (zipfile.BadZipFile, OSError, EOFError) as exc:
                    raise UserError(f"{path}: cannot read {member} (truncated or corrupt?): {exc}") from None
                dtype = storage.stype.dtype.newbyteorder(">" if big_endian else "<")
                if len(raw) < storage.numel * dtype.itemsize:
                    raise UserError(f"{path}: storage {member} is shorter than its {storage.numel} elements")
                storage.data = np.frombuffer(raw, dtype, count=storage.numel).astype(storage.stype.dtype)
            return storage

        try:
            data = zf.read(pkl[0])
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise UserError(f"{path}: cannot read {pkl[0]} (truncated or corrupt?): {exc}") from None
        return _resolve(_unpickle(data, path, persistent), path)


def _read_raw_storage(f, storage, path):
    head = f.read(8)
    if len(head) < 8:
        raise UserError(f"{path}: the file ends before all tensor data was read (truncated?)")
    (numel,) = struct.unpack("<q", head)
    nbytes = numel * storage.stype.dtype.itemsize
    raw = f.read(nbytes)
    if numel < 0 or len(raw) < nbytes:
        raise UserError(f"{path}: the file ends inside a tensor's data (truncated?)")
    storage.data = np.frombuffer(raw, storage.stype.dtype.newbyteorder("<"), count=numel).astype(storage.stype.dtype)


def _read_legacy(path, f):
    def plain(what):
        return _unpickle(f, path, lambda pid: (_ for _ in ()).throw(UserError(f"{path}: unexpected data in {what}")))

    if plain("the header") != LEGACY_MAGIC:
        raise UserError(f"{path}: not a PyTorch checkpoint (no zip archive and no legacy magic number)")
    if plain("the header") != LEGACY_PROTOCOL:
        raise UserError(f"{path}: unsupported legacy PyTorch protocol version")
    plain("the header")  # system info (byte order, type sizes)
    storages = {}
    obj = _unpickle(f, path, lambda pid: _storage_from_pid(pid, storages, path))
    keys = plain("the storage list")
    for key in keys:
        storage = storages.get(str(key))
        if storage is None:
            raise UserError(f"{path}: the storage list names an unknown storage {key!r} (corrupt file?)")
        _read_raw_storage(f, storage, path)
    return _resolve(obj, path)


def _read_tar(path, tar):
    def member(name):
        try:
            return io.BytesIO(tar.extractfile(name).read())
        except (KeyError, AttributeError, tarfile.TarError, OSError) as exc:
            raise UserError(f"{path}: legacy tar checkpoint without a readable '{name}' member: {exc}") from None

    def refuse(pid):
        raise UserError(f"{path}: unexpected persistent object in the storage tables")

    storages = {}
    f = member("storages")
    for _ in range(int(_unpickle(f, path, refuse))):
        key, _location, stype = _unpickle(f, path, refuse)
        if not isinstance(stype, _StorageType):
            raise UserError(f"{path}: a storage of unknown type {stype!r:.60}")
        storages[key] = _Storage(stype, 0)
        _read_raw_storage(f, storages[key], path)
    for target, root, offset, numel in _unpickle(f, path, refuse):
        view = _View(storages[root], int(offset), int(numel))
        storages[target] = view
    tensors = {}
    f = member("tensors")
    for _ in range(int(_unpickle(f, path, refuse))):
        key, storage_key, _ttype = _unpickle(f, path, refuse)
        head = f.read(8)
        if len(head) < 8:
            raise UserError(f"{path}: the tensor table ends early (truncated?)")
        (ndim,) = struct.unpack("<i", head[:4])
        body = f.read(16 * ndim + 8)
        if ndim < 0 or len(body) < 16 * ndim + 8:
            raise UserError(f"{path}: the tensor table ends early (truncated?)")
        size = struct.unpack(f"<{ndim}q", body[: 8 * ndim])
        stride = struct.unpack(f"<{ndim}q", body[8 * ndim : 16 * ndim])
        (offset,) = struct.unpack("<q", body[16 * ndim :])
        if storage_key not in storages:
            raise UserError(f"{path}: a tensor refers to an unknown storage {storage_key!r}")
        tensors[key] = _LazyTensor(storages[storage_key], offset, size, stride)

    def persistent(pid):
        if isinstance(pid, tuple):  # a module's source (whole-model pickles): not a state dict
            raise UserError(f"{path}: the file pickles a whole nn.Module, not a state dict; save model.state_dict()")
        try:
            return tensors[int(pid)]
        except (KeyError, ValueError):
            raise UserError(f"{path}: the pickle refers to an unknown tensor {pid!r:.40}") from None

    return _resolve(_unpickle(member("pickle").read(), path, persistent), path)


def read_torch_file(path):
    """The object saved in a ``.pth`` file, with tensors as NumPy arrays (see the module docstring)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise UserError(f"cannot open PyTorch checkpoint {path}: {exc.strerror or exc}") from None
    if head.startswith(b"PK"):
        return _read_zip(path)
    try:
        is_tar = tarfile.is_tarfile(path)
    except OSError:
        is_tar = False
    if is_tar:
        with tarfile.open(path, "r:") as tar:
            return _read_tar(path, tar)
    with open(path, "rb") as f:
        return _read_legacy(path, f)


def read_state_dict(path):
    """The tensors of a ``.pth`` state dict: ``OrderedDict`` name -> array, ``module.`` prefixes removed.

    A checkpoint that wraps the state dict (``{"state_dict": ...}``, ``{"model": ...}``) is unwrapped.
    """
    obj = read_torch_file(path)
    for wrapper in ("state_dict", "model", "net", "netG"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
            break
    if not isinstance(obj, dict) or not obj:
        raise UserError(f"{path} holds a {type(obj).__name__}, not a state dict of tensors")
    out = OrderedDict()
    for key, value in obj.items():
        if not isinstance(value, np.ndarray):
            raise UserError(f"{path}: entry '{key}' is a {type(value).__name__}, not a tensor; expected a state dict")
        out[key[len("module.") :] if str(key).startswith("module.") else str(key)] = value
    return out

"""A small, safe, torch-free reader for PyTorch's zip checkpoint format (`torch.save`, torch >= 1.6).

A `.pth` file is a zip holding `<name>/data.pkl` (a pickle of the saved object) and one raw
little-endian buffer per tensor storage in `<name>/data/<key>`. Pickle can call arbitrary code,
so the unpickler here resolves only a fixed allow-list of globals: the tensor rebuild functions,
`collections.OrderedDict` and torch's storage type markers. Tensors become numpy arrays.

Any other global a checkpoint mentions (an `argparse.Namespace` of training args, a numpy scalar
for the best accuracy, ...) becomes an inert placeholder that runs no code and is never a tensor;
unknown *torch* globals raise `UnsupportedPickleError` so the caller can fall back to
`torch.load(weights_only=True)` when torch is installed.
"""
import collections
import pickle
import zipfile

import numpy as np

# torch storage class name -> numpy dtype ("bfloat16" has no numpy dtype: widened to float32).
STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16",
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class UnsupportedPickleError(ValueError):
    """The file is a PyTorch checkpoint this reader cannot (or will not) decode."""


class _StorageType:
    """Stands for `torch.FloatStorage` & co. in the pickle: only its dtype matters."""

    def __init__(self, name):
        self.name = name
        self.dtype = STORAGE_DTYPES[name]


class Opaque:
    """Inert stand-in for a global outside the allow-list: records what it was, executes nothing."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self._state = state

    def __repr__(self):
        return f"<opaque {type(self).__qualname__}>"


def _opaque_class(module, name):
    return type(f"{module}.{name}", (Opaque,), {"__module__": "kconvnext.weights.torch_zip"})


def bfloat16_to_float32(raw):
    """bfloat16 bits (uint16) -> float32: bfloat16 is the top half of a float32."""
    return (np.asarray(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


class _Storage:
    def __init__(self, archive, entry, storage_type, numel, big_endian):
        self.archive, self.entry = archive, entry
        self.storage_type, self.numel = storage_type, int(numel)
        self.big_endian = big_endian
        self._array = None

    def array(self):
        if self._array is None:
            dtype = self.storage_type.dtype
            raw_dtype = np.dtype(np.uint16 if dtype == "bfloat16" else dtype)
            if self.big_endian:
                raw_dtype = raw_dtype.newbyteorder(">")
            try:
                data = self.archive.read(self.entry)
            except KeyError:
                raise UnsupportedPickleError(f"storage entry {self.entry!r} is missing from the archive") from None
            arr = np.frombuffer(data, dtype=raw_dtype)
            if arr.size < self.numel:
                raise UnsupportedPickleError(
                    f"storage {self.entry!r} holds {arr.size} elements, the pickle says {self.numel}"
                )
            arr = arr[: self.numel].astype(raw_dtype.newbyteorder("="), copy=False)
            self._array = bfloat16_to_float32(arr) if dtype == "bfloat16" else arr
        return self._array


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    if not isinstance(storage, _Storage):
        raise UnsupportedPickleError(f"tensor rebuilt from a non-storage object {type(storage).__name__}")
    flat = storage.array()
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if not size:
        return np.array(flat[storage_offset])
    extent = storage_offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1
    if any(n == 0 for n in size):
        return np.zeros(size, dtype=flat.dtype)
    if storage_offset < 0 or extent > flat.size or any(s < 0 for s in stride):
        raise UnsupportedPickleError(f"tensor of size {size} / stride {stride} overruns its storage")
    base = flat[storage_offset:]
    view = np.lib.stride_tricks.as_strided(
        base, shape=size, strides=tuple(s * flat.itemsize for s in stride), writeable=False
    )
    return np.array(view)  # contiguous copy


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    return data


def _rebuild_parameter_with_state(data, requires_grad=False, backward_hooks=None, state=None):
    return data


_ALLOWED = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter_with_state,
    ("collections", "OrderedDict"): collections.OrderedDict,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, archive, prefix, big_endian):
        super().__init__(file)
        self.archive, self.prefix, self.big_endian = archive, prefix, big_endian
        self.storages = {}

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        if module == "torch" or module.startswith("torch."):
            raise UnsupportedPickleError(f"unsupported torch global {module}.{name}")
        return _opaque_class(module, name)

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise UnsupportedPickleError(f"unsupported persistent id {pid!r}")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, _StorageType):
            raise UnsupportedPickleError(f"unsupported storage type {storage_type!r}")
        key = str(key)
        if key not in self.storages:
            self.storages[key] = _Storage(
                self.archive, f"{self.prefix}data/{key}", storage_type, numel, self.big_endian
            )
        return self.storages[key]


def load_torch_zip(path):
    """Read a `torch.save` zip checkpoint into plain Python containers holding numpy arrays."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise UnsupportedPickleError(
            "not a zip-format PyTorch checkpoint (legacy pre-1.6 torch.save format?)"
        ) from None
    with archive:
        pickles = [n for n in archive.namelist() if n.endswith("data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise UnsupportedPickleError("zip file has no single '<name>/data.pkl' entry")
        prefix = pickles[0][: -len("data.pkl")]
        big_endian = False
        if f"{prefix}byteorder" in archive.namelist():
            big_endian = archive.read(f"{prefix}byteorder").decode().strip() == "big"
        with archive.open(pickles[0]) as fh:
            unpickler = _RestrictedUnpickler(fh, archive, prefix, big_endian)
            try:
                return unpickler.load()
            except UnsupportedPickleError:
                raise
            except Exception as exc:  # malformed pickle, an Opaque misused as a callable, ...
                raise UnsupportedPickleError(f"could not unpickle data.pkl: {exc}") from exc

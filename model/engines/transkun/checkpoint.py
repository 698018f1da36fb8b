"""Read a PyTorch checkpoint's tensors without PyTorch.

A `.pt` file is a zip: `<name>/data.pkl`, a pickle whose tensors point at raw
storages `<name>/data/<key>`, little-endian. The pickle is read with an
Unpickler that knows exactly the few globals a state dict of float32 tensors
uses and refuses every other one, so reading a checkpoint runs no code from it.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile

import numpy as np

from ...errors import WeightsError
from ...vocabulary import Code

_STORAGE_DTYPES = {"FloatStorage": np.dtype("<f4")}


def read_state_dict(data: bytes, *, what: str) -> dict[str, np.ndarray]:
    """The tensors of the checkpoint `data` ({"state_dict": {name: tensor}}) as float32 arrays, by name.

    Raises WeightsError model_corrupt, naming `what`, when it is no checkpoint of that shape.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            pickles = [name for name in archive.namelist() if name.endswith("/data.pkl")]
            if len(pickles) != 1:
                raise ValueError(f"{len(pickles)} data.pkl members, expected 1")
            prefix = pickles[0].removesuffix("data.pkl")
            if archive.read(prefix + "byteorder") != b"little":
                raise ValueError("tensors not stored little-endian")
            checkpoint = _Unpickler(archive, prefix).load()
        state = checkpoint["state_dict"]
        return {str(name): np.ascontiguousarray(tensor) for name, tensor in state.items()}
    except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile, pickle.UnpicklingError) as error:
        raise WeightsError(Code.MODEL_CORRUPT, f"{what} cannot be read as a checkpoint of tensors: {error}") from error


class _StorageType:
    def __init__(self, name: str):
        self.dtype = _STORAGE_DTYPES[name]


class _Unpickler(pickle.Unpickler):
    def __init__(self, archive: zipfile.ZipFile, prefix: str):
        super().__init__(io.BytesIO(archive.read(prefix + "data.pkl")))
        self._archive = archive
        self._prefix = prefix

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refusing {module}.{name}: not part of a state dict of float32 tensors")

    def persistent_load(self, pid):
        kind, storage_type, key, _location, n_elements = pid
        if kind != "storage" or not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        raw = self._archive.read(f"{self._prefix}data/{key}")
        return np.frombuffer(raw, dtype=storage_type.dtype, count=n_elements)


def _rebuild_tensor(
    storage: np.ndarray, offset: int, shape: tuple, stride: tuple, _requires_grad=False, _hooks=None, _metadata=None
) -> np.ndarray:
    """torch._utils._rebuild_tensor_v2: a view of `storage` by offset, shape and stride (in elements), copied."""
    if offset < 0 or (shape and offset + sum((n - 1) * s for n, s in zip(shape, stride)) >= storage.shape[0]):
        raise ValueError(f"a tensor of shape {shape} reaches past its storage")
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=shape, strides=[s * storage.itemsize for s in stride]
    )
    return view.copy()

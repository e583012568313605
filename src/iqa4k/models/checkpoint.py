"""Reading official checkpoints as they are published, and writing ours.

Official files come in three shapes: a state_dict (often saved under ``nn.DataParallel``, so
every key starts with ``module.``), a dict holding several state_dicts (AHIQ's heads), or a
whole pickled ``nn.Module`` (MANIQA's PIPAL release). None of them is loaded by running its
code: state_dicts go through torch's restricted loader (``torch.load`` with
``weights_only=True``, the only way this module calls it; ``test_checkpoint.py`` checks that),
and pickled modules, which that loader refuses, are read here from torch's zip archive with
:class:`_InertUnpickler`. It rebuilds tensors from the archive's storage records and names
nothing callable but the tensor rebuilders and plain containers: every other class or function
the pickle names becomes an inert record, and storage types a tag that refuses to be called.

Our own format is safetensors plus JSON metadata in the safetensors header.
"""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import IQAError

# Globals a pickled module may really use: the tensor rebuilders torch.save writes, and the
# containers around them. Anything else becomes an _Inert record.
_ALLOWED = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): torch._utils._rebuild_parameter_with_state,
    ("torch", "Size"): torch.Size,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "object"): object,
}

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # first pickle of a pre-1.6 torch.save file
_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}


class CheckpointError(IQAError):
    """A checkpoint file that cannot be read or does not fit the model."""


class _Inert:
    """Stands in for any class or function a pickle names; records its state, runs nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots) form
            state = {**(state[0] or {}), **(state[1] or {})}
        if isinstance(state, dict):
            self.__dict__.update(state)


def _inert_class(module: str, name: str) -> type:
    return type(name, (_Inert,), {"__module__": f"inert.{module}"})


class _StorageTag:
    """A storage type named in a storage record: its dtype, and nothing a pickle can call
    (``torch.UntypedStorage(n)`` called from a file would allocate whatever it asks)."""

    def __init__(self, name: str) -> None:
        self.name = name
        kind = getattr(torch, name)
        self.dtype = torch.uint8 if kind is torch.UntypedStorage else kind._dtype

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise pickle.UnpicklingError(f"the pickle calls torch.{self.name}: refused")


class _InertUnpickler(pickle.Unpickler):
    """Unpickles torch.save's main pickle; ``storage(key, dtype, numel)`` supplies the tensor
    data its storage records name (from the zip archive, or the legacy stream)."""

    def __init__(self, file: Any, storage: Any) -> None:
        super().__init__(file)
        self._storage = storage
        self._storages: dict[str, torch.storage.TypedStorage] = {}

    def persistent_load(self, pid: Any) -> Any:
        """``('storage', type, key, location, numel[, view])``; legacy files also record
        module classes as ``('module', class, file, source)``, kept as the inert class."""
        kind = pid[0].decode("ascii") if isinstance(pid[0], bytes) else pid[0]
        if kind == "module":
            return pid[1]
        if kind != "storage" or len(pid) not in (5, 6):
            raise pickle.UnpicklingError(f"unknown persistent record {pid!r}")
        storage_type, key, _location, numel = pid[1:5]
        if len(pid) == 6 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views (torch < 0.4 files) are not supported")
        if key not in self._storages:
            if not isinstance(storage_type, _StorageTag):
                raise pickle.UnpicklingError(f"storage record of type {storage_type!r}")
            self._storages[key] = self._storage(key, storage_type.dtype, numel)
        return self._storages[key]

    def find_class(self, module: str, name: str) -> Any:
        module = _PY2_MODULES.get(module, module)  # protocol-2 pickles use Python 2 names
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "copyreg" and name == "_reconstructor":
            return _reconstruct
        if module == "torch" and name.endswith("Storage") and hasattr(torch, name):
            return _StorageTag(name)
        return _inert_class(module, name)


def _reconstruct(cls: type, base: type, state: Any) -> Any:
    """copyreg._reconstructor limited to inert classes and plain objects."""
    if not issubclass(cls, _Inert):
        raise pickle.UnpicklingError(f"refusing to reconstruct {cls!r}")
    return cls()


def _module_state(obj: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    """The state_dict of an unpickled (inert) ``nn.Module`` tree."""
    state: dict[str, torch.Tensor] = {}
    skip = set(getattr(obj, "_non_persistent_buffers_set", ()) or ())
    for group in ("_parameters", "_buffers"):
        for name, tensor in (getattr(obj, group, None) or {}).items():
            if tensor is not None and name not in skip:
                state[prefix + name] = tensor.detach()
    for name, child in (getattr(obj, "_modules", None) or {}).items():
        if child is not None:
            state.update(_module_state(child, f"{prefix}{name}."))
    return state


def strip_prefix(state: Mapping[str, torch.Tensor], prefix: str = "module.") -> dict:
    """Drop ``prefix`` (``nn.DataParallel``'s ``module.``) from every key that has it."""
    return {(k[len(prefix) :] if k.startswith(prefix) else k): v for k, v in state.items()}


def read_checkpoint(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(state, meta)``: the contents of a checkpoint file, read without executing code.

    ``state`` is a flat ``{name: tensor}`` state_dict with any ``module.`` prefix removed, or for
    files that hold several state_dicts (AHIQ), a dict of such state_dicts. ``meta`` is the
    JSON metadata of our safetensors files (model, release, options, ...), ``{}`` for others.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        obj = _read_pickled_module(path)  # a whole nn.Module: read inertly
    except Exception as err:  # torch raises several types for damaged files
        raise CheckpointError(f"cannot read checkpoint {path}: {err}".splitlines()[0]) from err
    return _normalise(obj, path), {}


def _read_pickled_module(path: Path) -> Any:
    """A whole pickled object saved by torch.save, unpickled inertly."""
    try:
        if zipfile.is_zipfile(path):
            return _read_zip(path)
        with open(path, "rb") as f:
            return _read_legacy(f)
    except CheckpointError:
        raise
    except Exception as err:  # a damaged archive or pickle
        raise CheckpointError(f"cannot read checkpoint {path}: {err}") from err


def _typed(data: bytearray, dtype: torch.dtype) -> torch.storage.TypedStorage:
    raw = torch.frombuffer(data, dtype=torch.uint8) if data else torch.empty(0, dtype=torch.uint8)
    return torch.storage.TypedStorage(
        wrap_storage=raw.untyped_storage(), dtype=dtype, _internal=True
    )


def _read_zip(path: Path) -> Any:
    """torch >= 1.6: a zip with ``<root>/data.pkl`` and one ``<root>/data/<key>`` per storage."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("data.pkl") and n.count("/") <= 1]
        if not pickles:
            raise CheckpointError(f"{path}: a zip file without torch's data.pkl")
        root = pickles[0][: -len("data.pkl")]
        if f"{root}byteorder" in names and archive.read(f"{root}byteorder") != b"little":
            raise CheckpointError(f"{path}: saved on a big-endian machine")

        def storage(key: str, dtype: torch.dtype, numel: int) -> torch.storage.TypedStorage:
            return _typed(bytearray(archive.read(f"{root}data/{key}")), dtype)

        return _InertUnpickler(io.BytesIO(archive.read(f"{root}data.pkl")), storage).load()


def _read_legacy(f: Any) -> Any:
    """torch < 1.6: three header pickles, the main pickle, the list of storage keys, then each
    storage's bytes in that order, each after its element count (int64, little-endian)."""
    magic, _protocol, sys_info = (_InertUnpickler(f, _no_storage).load() for _ in range(3))
    if magic != _LEGACY_MAGIC:
        raise CheckpointError("not a file written by torch.save")
    if not (isinstance(sys_info, dict) and sys_info.get("little_endian", True)):
        raise CheckpointError("saved on a big-endian machine")
    allocated: dict[str, torch.storage.TypedStorage] = {}

    def storage(key: str, dtype: torch.dtype, numel: int) -> torch.storage.TypedStorage:
        allocated[key] = _typed(bytearray(numel * torch._utils._element_size(dtype)), dtype)
        return allocated[key]

    obj = _InertUnpickler(f, storage).load()
    for key in _InertUnpickler(f, _no_storage).load():
        target = allocated[key]
        count = int.from_bytes(f.read(8), "little")
        nbytes = count * torch._utils._element_size(target.dtype)
        data = bytearray(f.read(nbytes))
        if nbytes != target._untyped_storage.nbytes() or len(data) != nbytes:
            raise CheckpointError(f"storage {key} is truncated or of the wrong size")
        target._untyped_storage.copy_(_typed(data, torch.uint8)._untyped_storage)
    return obj


def _no_storage(key: str, dtype: torch.dtype, numel: int) -> torch.storage.TypedStorage:
    raise pickle.UnpicklingError("a storage record outside the main pickle")


def _normalise(obj: Any, path: Path) -> dict[str, Any]:
    if isinstance(obj, _Inert):
        return strip_prefix(_module_state(obj))
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state_dict")
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return strip_prefix(obj)
    for key in ("state_dict", "model", "model_state_dict", "net"):  # common wrappers
        if isinstance(obj.get(key), Mapping):
            return _normalise(obj[key], path)
    nested = {k: strip_prefix(v) for k, v in obj.items() if _is_state_dict(v)}
    if not nested:
        raise CheckpointError(f"{path} holds no tensors; keys: {', '.join(map(str, obj))}")
    return nested


def _is_state_dict(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and bool(value)
        and all(isinstance(v, torch.Tensor) for v in value.values())
    )


def read_meta(path: str | Path) -> dict[str, Any]:
    """The iqa4k metadata of a checkpoint (``{}`` for official files), from the safetensors
    header alone: no tensor is read."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    return _read_safetensors(path, tensors=False)[1] if path.suffix == ".safetensors" else {}


def _read_safetensors(path: Path, tensors: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            keys = f.keys() if tensors else []
            state = {k: f.get_tensor(k) for k in keys}
            meta = f.metadata() or {}
        doc = json.loads(meta.get("iqa4k", "{}"))
    except Exception as err:  # safetensors' own error type, JSON errors: a damaged file
        raise CheckpointError(f"cannot read checkpoint {path}: {err}".splitlines()[0]) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("options", {}), dict):
        raise CheckpointError(f"cannot read checkpoint {path}: its iqa4k metadata is malformed")
    return state, doc


def save_checkpoint(path: str | Path, state: Mapping[str, torch.Tensor], meta: dict) -> Path:
    """Write ``state`` as safetensors with ``meta`` (model, variant, options, ...) as JSON."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    save_file(tensors, str(path), metadata={"iqa4k": json.dumps(meta, sort_keys=True)})
    return path


def load_into(model: torch.nn.Module, state: Mapping[str, torch.Tensor], what: str) -> None:
    """``model.load_state_dict(state, strict=True)`` with an error that lists the mismatch."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape", wrong)):
            if keys:
                shown = ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")
                parts.append(f"{len(keys)} {label}: {shown}")
        raise CheckpointError(f"{what} does not fit the model: " + "; ".join(parts))
    model.load_state_dict(state, strict=True)

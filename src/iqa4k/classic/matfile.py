"""MATLAB ``.mat`` files of every version, read into the structures ``scipy.io.loadmat`` gives.

Versions 4 to 7 are scipy's. Version 7.3 (``save -v7.3``) is HDF5, which scipy does not read;
:func:`load` reads it with h5py and converts each variable as scipy would for a v7 file: a
struct becomes a structured array of object fields, a cell an object array, a numeric or
logical array a numpy array with MATLAB's shape (HDF5 stores it transposed), a char array a
string. Nothing in either format is executed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def load(path: str | Path) -> dict[str, Any]:
    """The variables of the .mat file ``path`` (raises what scipy or h5py raise for bad files)."""
    import scipy.io

    with open(path, "rb") as f:
        major, _ = scipy.io.matlab.matfile_version(f)
    if major < 2:
        return scipy.io.loadmat(str(path))
    import h5py

    with h5py.File(path, "r") as file:
        return {name: _convert(file, item) for name, item in file.items() if name != "#refs#"}


def _matlab_class(item: Any) -> str:
    value = item.attrs.get("MATLAB_class", b"")
    return value.decode() if isinstance(value, bytes) else str(value)


def _convert(file: Any, item: Any) -> Any:
    import h5py

    kind = _matlab_class(item)
    if isinstance(item, h5py.Group):
        if kind != "struct":
            raise ValueError(f"{item.name}: an HDF5 group of MATLAB class {kind!r}")
        return _struct(file, item)
    data = item[()]
    if item.attrs.get("MATLAB_empty", 0):
        return np.zeros(tuple(int(d) for d in np.ravel(data))[::-1] if data.size else (0, 0))
    if kind == "cell":
        return _cell(file, data)
    if kind == "char":
        return "".join(chr(c) for c in np.ravel(data.T))
    array = np.asarray(data).T  # MATLAB is column-major: HDF5 holds the dims reversed
    return array.astype(bool) if kind == "logical" else array


def _cell(file: Any, refs: np.ndarray) -> np.ndarray:
    refs = refs.T
    out = np.empty(refs.shape, dtype=object)
    for index, ref in np.ndenumerate(refs):
        out[index] = _convert(file, file[ref])
    return out


def _struct(file: Any, group: Any) -> np.ndarray:
    """A struct as scipy returns it: a structured array whose fields hold objects.

    A 1x1 struct stores each field as a member; a struct array stores each field as an array
    of references, one per element, without a ``MATLAB_class`` of its own.
    """
    import h5py

    names = list(group.keys())
    fields = {name: group[name] for name in names}
    element_refs = {
        name: item[()].T
        for name, item in fields.items()
        if isinstance(item, h5py.Dataset)
        and item.dtype == h5py.ref_dtype
        and not _matlab_class(item)
    }
    shape = next(iter(element_refs.values())).shape if element_refs else (1, 1)
    out = np.empty(shape, dtype=[(name, object) for name in names])
    for name, item in fields.items():
        if name in element_refs:
            for index, ref in np.ndenumerate(element_refs[name]):
                out[name][index] = _convert(file, file[ref])
        else:
            out[name][(0,) * len(shape)] = _convert(file, item)
    return out

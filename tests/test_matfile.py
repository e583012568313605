"""MATLAB v7.3 (HDF5) files read into what scipy.io.loadmat gives for the same data in v7.

The v7.3 files are written here in MATLAB's layout: a 512-byte header in the HDF5 user block,
``MATLAB_class`` on every variable, dimensions reversed (column-major), cells and struct-array
fields as object references into ``#refs#``, empty arrays as their dimensions plus
``MATLAB_empty``.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.io

from iqa4k.classic import matfile

h5py = pytest.importorskip("h5py")

_CLASSES = {np.dtype(np.float64): b"double", np.dtype(np.int32): b"int32"}
_counter = itertools.count()


def _header() -> bytes:
    text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5"
    return text.ljust(116) + b" " * 8 + b"\x00\x02IM"


def _put(file, parent, name, value):
    """Write ``value`` as MATLAB -v7.3 would: dict = 1x1 struct, list of dicts = struct
    array (row), object array = cell, str = char, bool array = logical."""
    if isinstance(value, dict):
        group = parent.create_group(name)
        group.attrs["MATLAB_class"] = np.bytes_(b"struct")
        for key, item in value.items():
            _put(file, group, key, item)
        return
    if isinstance(value, list):  # struct array: each field an array of element references
        group = parent.create_group(name)
        group.attrs["MATLAB_class"] = np.bytes_(b"struct")
        for key in value[0]:
            refs = [_ref(file, element[key]) for element in value]
            group.create_dataset(key, data=np.array(refs, dtype=h5py.ref_dtype)[:, None])
        return
    if isinstance(value, str):
        data = np.array([[ord(c)] for c in value], dtype=np.uint16)
        parent.create_dataset(name, data=data).attrs["MATLAB_class"] = np.bytes_(b"char")
        return
    array = np.asarray(value)
    if array.dtype == object:
        refs = np.empty(array.shape, dtype=h5py.ref_dtype)
        for index, item in np.ndenumerate(array):
            refs[index] = _ref(file, item)
        parent.create_dataset(name, data=refs.T).attrs["MATLAB_class"] = np.bytes_(b"cell")
        return
    if array.size == 0:
        ds = parent.create_dataset(name, data=np.array(array.shape[::-1], dtype=np.uint64))
        ds.attrs["MATLAB_class"] = np.bytes_(b"double")
        ds.attrs["MATLAB_empty"] = np.uint8(1)
        return
    kind = b"logical" if array.dtype == bool else _CLASSES[array.dtype]
    stored = array.astype(np.uint8) if array.dtype == bool else array
    parent.create_dataset(name, data=np.atleast_2d(stored).T).attrs["MATLAB_class"] = kind


def _ref(file, value):
    refs = file.require_group("#refs#")
    name = f"r{next(_counter)}"
    _put(file, refs, name, value)
    return refs[name].ref


def save_v73(path, variables: dict) -> None:
    with h5py.File(path, "w", userblock_size=512) as file:
        for name, value in variables.items():
            _put(file, file, name, value)
    with open(path, "r+b") as f:
        f.write(_header())


def test_numeric_char_logical_and_empty_arrays(tmp_path):
    path = tmp_path / "v73.mat"
    matrix = np.arange(6, dtype=np.float64).reshape(2, 3)
    save_v73(
        path,
        {
            "m": matrix,
            "i": np.array([[1, 2, 3]], dtype=np.int32),
            "s": "forest",
            "b": np.array([[True, False]]),
            "e": np.zeros((0, 3)),
        },
    )
    assert scipy.io.matlab.matfile_version(str(path))[0] == 2  # scipy sees a v7.3 file
    got = matfile.load(path)
    assert np.array_equal(got["m"], matrix) and got["m"].shape == (2, 3)
    assert got["i"].tolist() == [[1, 2, 3]] and got["s"] == "forest"
    assert got["b"].tolist() == [[True, False]] and got["e"].shape == (0, 3)


def test_structs_and_cells_read_as_scipy_reads_them_in_v7(tmp_path):
    cell = np.empty((1, 2), dtype=object)
    cell[0, 0], cell[0, 1] = {"w": np.ones((2, 2))}, np.array([[7.0]])
    data = {"model": {"rf": cell, "linear": np.array([[0.5], [0.4]])}}
    save_v73(tmp_path / "v73.mat", data)
    scipy.io.savemat(tmp_path / "v7.mat", data)
    new, old = matfile.load(tmp_path / "v73.mat"), matfile.load(tmp_path / "v7.mat")
    for mat in (new, old):
        model = mat["model"]
        assert model.shape == (1, 1) and set(model.dtype.names) == {"rf", "linear"}
        rf = model["rf"][0, 0]
        assert rf.shape == (1, 2) and rf.dtype == object
        assert np.array_equal(rf[0, 0]["w"][0, 0], np.ones((2, 2)))
        assert np.array_equal(rf[0, 1], [[7.0]])
        assert np.array_equal(model["linear"][0, 0], [[0.5], [0.4]])


def test_struct_arrays_hold_one_value_per_element(tmp_path):
    save_v73(tmp_path / "v73.mat", {"s": [{"a": np.array([[1.0]])}, {"a": np.array([[2.0]])}]})
    s = matfile.load(tmp_path / "v73.mat")["s"]
    assert s.shape == (1, 2) and [float(v[0, 0]) for v in s["a"].ravel()] == [1.0, 2.0]

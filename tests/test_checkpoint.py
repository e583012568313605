"""Official checkpoint formats load as they are, and nothing in a file is ever executed."""

from __future__ import annotations

import io
import pickle
import sys
import types

import pytest
import torch
from torch import nn

from iqa4k.models.checkpoint import (
    CheckpointError,
    load_into,
    read_checkpoint,
    save_checkpoint,
    strip_prefix,
)


class _Holder:
    """An arbitrary class: torch's safe loader refuses a pickle that names it."""


class _Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.bn = nn.BatchNorm1d(2)
        self.act = nn.GELU()
        self.register_buffer("index", torch.arange(4))
        self.register_buffer("scratch", torch.ones(1), persistent=False)


@pytest.fixture
def toy_module(monkeypatch):
    """A model class importable as ``official_models.toy``, as an official repo's would be."""
    package = types.ModuleType("official_models")
    module = types.ModuleType("official_models.toy")
    toy = type("Toy", (_Toy,), {"__module__": "official_models.toy"})
    module.Toy = toy
    package.toy = module
    monkeypatch.setitem(sys.modules, "official_models", package)
    monkeypatch.setitem(sys.modules, "official_models.toy", module)
    torch.manual_seed(0)
    return toy()


def test_state_dict_with_dataparallel_prefix(tmp_path, toy_module):
    path = tmp_path / "sd.pth"
    torch.save(nn.DataParallel(toy_module).state_dict(), path)
    state, _ = read_checkpoint(path)
    assert set(state) == set(toy_module.state_dict())
    assert all(torch.equal(state[k], v) for k, v in toy_module.state_dict().items())


@pytest.mark.filterwarnings("ignore:Couldn't retrieve source code")  # legacy torch.save
@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_whole_pickled_module_loads_without_its_code(tmp_path, toy_module, monkeypatch, zip_format):
    path = tmp_path / "whole.pt"
    torch.save(nn.DataParallel(toy_module), path, _use_new_zipfile_serialization=zip_format)
    expected = toy_module.state_dict()
    real_load = torch.load

    def safe_only(*args, **kwargs):
        assert kwargs.get("weights_only") is True, "torch.load without weights_only=True"
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", safe_only)
    # The official code is gone (as for a user of iqa4k): the file must still be readable.
    monkeypatch.delitem(sys.modules, "official_models.toy")
    monkeypatch.delitem(sys.modules, "official_models")
    state, _ = read_checkpoint(path)
    assert set(state) == set(expected)  # non-persistent buffers are not part of it
    assert all(torch.equal(state[k], v) for k, v in expected.items())


def test_a_malicious_pickle_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (eval, (f"open({str(marker)!r}, 'w').write('x')",))

    path = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(2), "payload": Exploit()}, path)
    with pytest.raises(CheckpointError):
        read_checkpoint(path)
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError):  # and torch's own safe loader refuses it too
        torch.load(path, weights_only=True)


def test_a_pickle_cannot_call_a_storage_type():
    """Storage types are named in storage records; a pickle that calls one (an allocation of
    any size it likes) is refused by the unpickler that reads whole modules, not run."""
    from iqa4k.models.checkpoint import _InertUnpickler

    calls = b"\x80\x02ctorch\nUntypedStorage\nK@\x85R."  # torch.UntypedStorage(64)
    with pytest.raises(pickle.UnpicklingError, match="calls torch.UntypedStorage: refused"):
        _InertUnpickler(io.BytesIO(calls), storage=None).load()


def test_dict_of_state_dicts_as_ahiq_saves_them(tmp_path):
    heads = {
        "epoch": 7,
        "regressor_model_state_dict": {"conv.0.weight": torch.ones(1, 2, 1, 1)},
        "deform_net_model_state_dict": {"module.conv_offset.weight": torch.zeros(18, 3, 3, 3)},
        "loss": 0.25,
    }
    path = tmp_path / "epoch_10.pth"
    torch.save(heads, path)
    state, _ = read_checkpoint(path)
    assert set(state) == {"regressor_model_state_dict", "deform_net_model_state_dict"}
    assert list(state["deform_net_model_state_dict"]) == ["conv_offset.weight"]


def test_safetensors_round_trip_keeps_metadata(tmp_path, toy_module):
    meta = {"model": "toy", "variant": "x", "options": {"scale": 0.8}}
    path = save_checkpoint(tmp_path / "ours.safetensors", toy_module.state_dict(), meta)
    state, saved = read_checkpoint(path)
    assert saved == meta
    fresh = _Toy()
    load_into(fresh, state, "ours")
    assert torch.equal(fresh.fc.weight, toy_module.fc.weight)


def test_mismatched_state_dict_names_the_keys(toy_module):
    state = toy_module.state_dict()
    state["extra.weight"] = state.pop("fc.weight")
    state["bn.bias"] = torch.zeros(5)
    with pytest.raises(CheckpointError) as err:
        load_into(_Toy(), state, "file.pth")
    text = str(err.value)
    assert "missing: fc.weight" in text and "unexpected: extra.weight" in text
    assert "shape: bn.bias" in text


def test_unreadable_files_get_a_clear_error(tmp_path):
    bad = tmp_path / "truncated.pth"
    torch.save({"w": torch.zeros(100)}, bad)
    bad.write_bytes(bad.read_bytes()[:50])
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        read_checkpoint(bad)
    with pytest.raises(CheckpointError, match="does not exist"):
        read_checkpoint(tmp_path / "absent.pth")


def test_strip_prefix_only_touches_prefixed_keys():
    state = {"module.a": 1, "b": 2, "x.module.c": 3}
    assert strip_prefix(state) == {"a": 1, "b": 2, "x.module.c": 3}


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_tensors_sharing_a_storage_stay_views_of_it(tmp_path, zip_format):
    """Offsets, strides and shared storages survive the inert reader (a pickled object whose
    tensors are views forces that reader: torch's safe loader refuses the object)."""
    base = torch.arange(12.0)
    holder = _Holder()
    holder.__dict__ = {"_parameters": {}, "_buffers": {"a": base[2:8:2], "b": base.view(3, 4)}}
    path = tmp_path / "views.pt"
    torch.save(holder, path, _use_new_zipfile_serialization=zip_format)
    state, _ = read_checkpoint(path)
    assert torch.equal(state["a"], base[2:8:2]) and torch.equal(state["b"], base.view(3, 4))
    assert state["a"].untyped_storage().data_ptr() == state["b"].untyped_storage().data_ptr()

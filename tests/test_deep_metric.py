"""Deep models through the metric API: weights from files, never from the network unasked,
deterministic whole-image scores, conversion to our checkpoint format.

HyperIQA stands in for every crop-based model here (it is the smallest); the model files'
own tests check each network against the official code.
"""

from __future__ import annotations

import socket
import urllib.request

import pytest
import torch

import iqa4k
from iqa4k import weights
from iqa4k.cli import main
from iqa4k.errors import WeightsNotFoundError
from iqa4k.models import create_model
from iqa4k.models._common import deterministic_init
from iqa4k.models.checkpoint import read_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A HyperIQA state_dict saved as the official release is (plain torch.save), and its net."""
    net = deterministic_init(create_model("hyperiqa"), seed=5).eval()
    path = tmp_path_factory.mktemp("ckpt") / "koniq_pretrained.pkl"
    torch.save(torch.nn.DataParallel(net).state_dict(), path)  # with module. prefixes
    return path, net


@pytest.fixture(scope="module")
def metric(checkpoint):
    return iqa4k.create_metric("hyperiqa", weights=str(checkpoint[0]), n_crops=4, batch_size=3)


def _image(seed: int, height: int = 300, width: int = 400) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, height, width, generator=g)


def test_missing_weights_name_the_file_and_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("IQA4K_HOME", str(tmp_path))
    monkeypatch.setenv("IQA4K_OFFLINE", "1")

    def refuse(*args, **kwargs):
        raise AssertionError("network used while IQA4K_OFFLINE is set")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    with pytest.raises(WeightsNotFoundError) as err:
        iqa4k.create_metric("hyperiqa")
    text = str(err.value)
    assert "koniq_pretrained.pkl" in text and str(tmp_path / "hyperiqa-koniq") in text
    assert "weights='/path/to/koniq_pretrained.pkl'" in text


def test_scores_equal_the_network_on_the_same_crops(metric, checkpoint):
    _, net = checkpoint
    x = _image(0, 224, 224)  # one exact-fit crop: the score is the network's output
    protocol_free = iqa4k.create_metric("hyperiqa", weights=str(checkpoint[0]), sampling="centre")
    with torch.no_grad():
        expected = net(net.net_input.normalize(x))
    assert protocol_free(x).item() == pytest.approx(expected.item(), abs=1e-5)


def test_same_image_same_score_whatever_the_batch(metric):
    a, b = _image(1), _image(2)
    both = metric(torch.cat([a, b]))
    alone = torch.cat([metric(a), metric(b)])
    assert both.shape == (2,)
    assert torch.allclose(both, alone, atol=1e-5)
    assert torch.equal(metric(a), metric(a))  # seeded crops: deterministic


def test_seed_and_policy_change_the_crops_not_the_determinism(checkpoint):
    path = str(checkpoint[0])
    x = _image(3, 600, 500)
    s0 = iqa4k.create_metric("hyperiqa", weights=path, seed=0, n_crops=3)(x)
    s1 = iqa4k.create_metric("hyperiqa", weights=path, seed=1, n_crops=3)(x)
    assert s0.item() != s1.item()
    grid = iqa4k.create_metric("hyperiqa", weights=path, sampling="grid", overlap=16)
    assert torch.equal(grid(x), grid(x))


def test_convert_checkpoint_round_trip(tmp_path, checkpoint, metric):
    source, net = checkpoint
    out = tmp_path / "hyperiqa.safetensors"
    assert main(["convert-checkpoint", "hyperiqa", str(source), "-o", str(out)]) == 0
    state = read_checkpoint(out)
    meta = state.pop("__metadata__")
    assert meta["model"] == "hyperiqa" and meta["release"] == "koniq"
    assert meta["source_sha256"] == weights.sha256_of(source)
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    ours = iqa4k.create_metric("hyperiqa", weights=str(out), n_crops=4, batch_size=3)
    x = _image(4)
    assert torch.equal(ours(x), metric(x))

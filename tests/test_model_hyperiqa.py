"""HyperIQA against numbers from the official code (SSL92/hyperIQA models.py).

The golden scores come from the official ``HyperNet(16, 112, 224, 112, 56, 28, 14, 7)`` followed
by ``TargetNet(paras)(paras['target_in_vec'])``, run on the CPU in float32 at commit
c42e7279717e7dcb693a24b891fc14a4189a45ee (ResNet-50 download stubbed out), with weights from
``deterministic_init(seed=0)`` and the input below.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from iqa4k.models import hyperiqa
from iqa4k.testing import deterministic_init

from .conftest import official_keys

# official outputs for the two seeded crops (batch of 2), and for the first crop alone
GOLDEN_B2 = (2.4297771, 2.6144047)
GOLDEN_B1 = (2.4297776,)


@pytest.fixture(scope="module")
def model() -> hyperiqa.HyperIQA:
    return deterministic_init(hyperiqa.build(), seed=0).eval()


@pytest.fixture(scope="module")
def crops() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return hyperiqa.NET_INPUT.normalize(torch.rand(2, 3, 224, 224, generator=g))


@pytest.fixture(scope="module")
def outputs(model, crops) -> dict:
    """One pass over the batch and one per crop, shared by the tests (ResNet-50 on the CPU)."""
    with torch.no_grad():
        paras = model.hyper(crops)
        return {
            "paras": paras,
            "both": model.target_net(paras),
            "alone": [model(crops[i : i + 1]) for i in range(len(crops))],
        }


def test_state_dict_equals_the_official_one(model):
    official = official_keys("hyperiqa")
    assert len(official) == 355
    ours = [(name, tuple(t.shape)) for name, t in model.state_dict().items()]
    assert ours == official
    assert not any(name.startswith("res.fc") for name, _ in official)  # no classifier
    # a strict load checks every name and shape; on the meta device it costs no memory or time
    with torch.device("meta"):
        fresh = hyperiqa.build()
        state = {name: torch.zeros(shape) for name, shape in official}
    fresh.load_state_dict(state, strict=True, assign=True)
    assert sum(p.numel() for p in fresh.parameters()) == 27_375_369


def test_scores_equal_the_official_code(outputs):
    both, first = outputs["both"], outputs["alone"][0]
    assert both.shape == (2,) and first.shape == (1,)  # no 0-d result at B=1
    torch.testing.assert_close(both, torch.tensor(GOLDEN_B2), rtol=0, atol=1e-5)
    torch.testing.assert_close(first, torch.tensor(GOLDEN_B1), rtol=0, atol=1e-5)


def test_batch_invariance(outputs):
    """Scores of the batch (hyper() then target()) equal forward() on each crop alone."""
    alone = torch.cat(outputs["alone"])
    torch.testing.assert_close(outputs["both"], alone, rtol=0, atol=1e-5)


def test_hyper_outputs_and_target_net_per_image(outputs):
    """The parameter dict has the official shapes; the batched target net equals a loop."""
    paras, scores = outputs["paras"], outputs["both"]
    shapes = {name: tuple(t.shape) for name, t in paras.items()}
    assert shapes == {
        "target_in_vec": (2, 224, 1, 1),
        "target_fc1w": (2, 112, 224, 1, 1),
        "target_fc1b": (2, 112),
        "target_fc2w": (2, 56, 112, 1, 1),
        "target_fc2b": (2, 56),
        "target_fc3w": (2, 28, 56, 1, 1),
        "target_fc3b": (2, 28),
        "target_fc4w": (2, 14, 28, 1, 1),
        "target_fc4b": (2, 14),
        "target_fc5w": (2, 1, 14, 1, 1),
        "target_fc5b": (2, 1),
    }
    assert set(paras) == set(hyperiqa.PARA_KEYS)
    for b in range(2):  # each image through its own fully connected layers, one at a time
        q = paras["target_in_vec"][b].flatten()
        for i in range(1, 6):
            w = paras[f"target_fc{i}w"][b].flatten(1)
            q = F.linear(q, w, paras[f"target_fc{i}b"][b])
            q = torch.sigmoid(q) if i < 5 else q
        torch.testing.assert_close(q, scores[b : b + 1], rtol=0, atol=1e-5)

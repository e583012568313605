"""MANIQA against numbers produced by the official code (IIGROUP/MANIQA).

The golden scores were computed by the official ``models/maniqa.py`` / ``models/swin.py``
(as read at 6a9d49f67afce095b62909902f8dc74779367366; models.md lists HEAD
f573d862401243c45641951a0303b8059c1c8577), run on the CPU with timm 1.0.31 after patching
only ``pretrained=True`` -> False and ``.cuda()`` -> no-op, with ``deterministic_init(seed=0)``
and the input below. Ours matched them exactly (max abs difference 0.0) at both scales.
"""

from __future__ import annotations

import pytest
import torch

from iqa4k.models import maniqa
from iqa4k.testing import deterministic_init

from .conftest import official_keys

# official MANIQA outputs for the two images below, per Swin residual scale
GOLDEN = {
    0.13: [4.2772312, 5.4412241],  # PIPAL 2022 release
    0.8: [14.436465, 15.323909],  # KADID-10k / KonIQ-10k releases
}


@pytest.fixture(scope="module")
def run() -> dict:
    """One network (scale 0.13), a few forwards; everything the tests below check."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the golden values were computed single-threaded
    try:
        net = deterministic_init(maniqa.build(scale=0.13), seed=0).eval()
        g = torch.Generator().manual_seed(0)
        x = maniqa.NET_INPUT.normalize(torch.rand(2, 3, 224, 224, generator=g))
        out = {"net": net}
        with torch.no_grad():
            out["batch"] = net(x, return_patches=True)
            out["second_alone"] = net(x[1:])
            for swin in (net.swintransformer1, net.swintransformer2):
                swin.scale = 0.8
            out["first_08"] = net(x[:1])
            for swin in (net.swintransformer1, net.swintransformer2):
                swin.scale = 0.13
    finally:
        torch.set_num_threads(threads)
    return out


def test_state_dict_matches_official_keys(run: dict) -> None:
    ours = [(k, tuple(v.shape)) for k, v in run["net"].state_dict().items()]
    official = official_keys("maniqa")
    assert len(official) == 316
    assert ours == official
    # the dead parts the checkpoints carry are there: ViT classifier, Swin downsample
    names = {k for k, _ in ours}
    assert {"vit.head.weight", "vit.blocks.11.mlp.fc2.bias", "vit.norm.weight"} <= names
    assert "swintransformer2.downsample.weight" in names


def test_loads_a_state_dict_built_from_the_key_list(run: dict) -> None:
    # the fixture's outputs are already computed, so its network may be overwritten here
    state = {name: torch.zeros(shape) for name, shape in official_keys("maniqa")}
    run["net"].load_state_dict(state, strict=True)
    assert all((v == 0).all() for v in run["net"].state_dict().values())


def test_scores_equal_official_code(run: dict) -> None:
    score = run["batch"][0]
    assert score.shape == (2,)
    torch.testing.assert_close(score, torch.tensor(GOLDEN[0.13]), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(run["first_08"], torch.tensor(GOLDEN[0.8][:1]), rtol=1e-5, atol=1e-5)


def test_batch_invariance(run: dict) -> None:
    assert run["second_alone"].shape == (1,)  # [B] even at B = 1
    torch.testing.assert_close(run["second_alone"][0], run["batch"][0][1], rtol=1e-5, atol=1e-5)


def test_patch_maps_give_the_score(run: dict) -> None:
    score, f, w = run["batch"]
    assert f.shape == w.shape == (2, 28, 28)
    assert (f >= 0).all() and (w > 0).all() and (w <= 1).all()  # ReLU and sigmoid heads
    weighted = (f * w).sum(dim=(1, 2)) / w.sum(dim=(1, 2))
    torch.testing.assert_close(weighted, score, rtol=1e-6, atol=0)


def test_module_data() -> None:
    assert maniqa.NET_INPUT.size == 224 and maniqa.NET_INPUT.mean == (0.5, 0.5, 0.5)
    assert maniqa.PROTOCOL.n_crops == 20 and maniqa.PROTOCOL.resize is None
    assert {k: (r.metric, r.options["scale"]) for k, r in maniqa.RELEASES.items()} == {
        "koniq": ("maniqa", 0.8),
        "kadid": ("maniqa-kadid", 0.8),
        "pipal": ("maniqa-pipal", 0.13),
    }
    assert maniqa.ENTRY.inputs.patch_scores
    with pytest.raises(TypeError):
        maniqa.build(no_such_option=1)

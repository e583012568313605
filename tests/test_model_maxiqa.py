"""MaxIQA against the official code (mb21100/myModel, models/maxiqa.py, class MANIQA).

Golden values: the official class of commit 48d1e2b2bf57d647d07fbd6e9e8b945b2c4fdd0b (file text
as stored from 3672f80, the one version known) run with timm.create_model forced to
pretrained=False, deterministic_init(seed=0), eval mode, no_grad, float32 on the CPU, on
torch.rand(2, 3, 224, 224, generator=manual_seed(0)) normalised to [-1, 1]. Ours matched it
exactly (max abs difference 0.0).
"""

from __future__ import annotations

import pytest
import torch

from iqa4k.models import maxiqa
from iqa4k.models.inputs import HALF
from iqa4k.testing import deterministic_init

from .conftest import official_keys

OFFICIAL_SCORES = [0.42231864, 0.41343835]


def _input(batch: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return maxiqa.NET_INPUT.normalize(torch.rand(batch, 3, 224, 224, generator=g))


@pytest.fixture(scope="module")
def net() -> maxiqa.MaxIQA:
    torch.manual_seed(0)
    return deterministic_init(maxiqa.build(), seed=0).eval()


@pytest.fixture(scope="module")
def run(net: maxiqa.MaxIQA) -> dict:
    """One pass over the golden input (forward = head(features)), keeping what tests inspect."""
    block_inputs: list[torch.Tensor] = []  # input of each stage's first MBConv block
    handles = [
        getattr(net.backbone, f"stages_{i}")
        .blocks[0]
        .conv.register_forward_pre_hook(lambda m, args: block_inputs.append(args[0]))
        for i in range(4)
    ]
    try:
        with torch.no_grad():
            pairs = net.features(_input())
            scores = net.head(pairs)
    finally:
        for h in handles:
            h.remove()
    return {"pairs": pairs, "scores": scores, "block_inputs": block_inputs}


def test_matches_official_outputs(run: dict) -> None:
    assert run["scores"].shape == (2,)
    torch.testing.assert_close(run["scores"], torch.tensor(OFFICIAL_SCORES), rtol=0, atol=1e-5)


def test_state_dict_equals_official_keys(net: maxiqa.MaxIQA) -> None:
    official = dict(official_keys("maxiqa"))
    assert len(official) == 1408
    ours = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert ours == official
    assert list(ours) == list(official)  # same order as the checkpoint too


def test_loads_official_layout_strictly(net: maxiqa.MaxIQA) -> None:
    # a state_dict laid out by the official list (values: the model's own, so it stays intact)
    own = net.state_dict()
    state = {k: own[k].reshape(s) for k, s in dict(official_keys("maxiqa")).items()}
    result = net.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys


def test_batch_invariance(net: maxiqa.MaxIQA, run: dict) -> None:
    with torch.no_grad():
        first = net(_input()[:1])
    assert first.shape == (1,)
    torch.testing.assert_close(first, run["scores"][:1], rtol=0, atol=1e-5)


def test_local_taps_are_first_mbconv_branches(net: maxiqa.MaxIQA, run: dict) -> None:
    for i, ((local, global_), inp) in enumerate(
        zip(run["pairs"], run["block_inputs"], strict=True)
    ):
        side = 224 // 2 ** (i + 2)
        assert local.shape == global_.shape == (2, [96, 192, 384, 768][i], side, side)
        mbconv = getattr(net.backbone, f"stages_{i}").blocks[0].conv
        with torch.no_grad():  # this call fires the hook too, with no forward waiting for it
            branch = mbconv(inp) - mbconv.shortcut(inp)
        torch.testing.assert_close(local, branch, rtol=1e-4, atol=1e-4)
        assert not torch.allclose(local, global_, atol=1e-3)
    # slots are disarmed outside MaxIQA.features: no tensor is held between calls
    assert all(net._tap_site(i).__dict__[maxiqa._TAP_SLOT] is None for i in range(4))


def _replicate_like_data_parallel(module: torch.nn.Module) -> torch.nn.Module:
    """What nn.DataParallel's replicate does to the module tree, without needing GPUs.

    Every module is shallow-copied (sharing hook dicts and parameters), and the copies are
    wired to each other. The official hooks wrote into the original model's dict here, so the
    replica silently used the global maps as local ones and scored 0.40995246 instead of
    0.42231864 on the first image.
    """
    modules = list(module.modules())
    copies = {}
    for m in modules:
        copy = m._replicate_for_data_parallel()
        copy._parameters = dict(m._parameters)
        copies[id(m)] = copy
    for m in modules:
        for name, child in m._modules.items():
            copies[id(m)]._modules[name] = None if child is None else copies[id(child)]
    return copies[id(module)]


def test_replica_uses_its_own_taps(net: maxiqa.MaxIQA, run: dict) -> None:
    replica = _replicate_like_data_parallel(net)
    with torch.no_grad():
        second = replica(_input()[1:])
    torch.testing.assert_close(second, run["scores"][1:], rtol=0, atol=1e-5)


def test_declared_data() -> None:
    assert maxiqa.NET_INPUT.size == 224
    assert maxiqa.NET_INPUT.mean == HALF and maxiqa.NET_INPUT.std == HALF
    assert maxiqa.PROTOCOL.n_crops == 15 and maxiqa.PROTOCOL.resize is None
    assert not maxiqa.PROTOCOL.centre
    release = maxiqa.RELEASES["pipal"]
    assert release.file.sha256 is None and release.score_range == (0.0, 1.0)
    with pytest.raises(TypeError):
        maxiqa.build(scale=0.1)

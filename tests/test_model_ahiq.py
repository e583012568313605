"""AHIQ against numbers from the official pipeline (IIGROUP/AHIQ train.py / test.py).

The golden scores come from the official heads (``model/deform_regressor.py``:
``deform_fusion``, ``Pixel_Prediction``) fed by forward hooks on timm backbones exactly as
``train.py`` / ``test.py`` wire them (``utils/util.py`` SaveOutput,
``script/extract_feature.py``), at commit 9cc6a4eed821bb8f16a1aae00d420b24625bc07a, run on the
CPU in float32 with timm 0.5.4 (the official requirement; timm 1.0.31 gives the same numbers),
backbones in eval mode, weights from ``deterministic_init(seed=0)`` over the names
``resnet.*``, ``vit.*``, ``deform_net.*``, ``regressor.*``, distorted input from seed 0 and
reference input from seed 1.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import timm
import torch

from iqa4k.models import ahiq
from iqa4k.testing import deterministic_init

from .conftest import official_keys

# official predictions for the seeded pair batch (B=2), patch size 8 and 16
GOLDEN_P8 = (0.41167876, 0.29640472)
GOLDEN_P16 = (0.46580267, 0.45081094)


def _pair() -> tuple[torch.Tensor, torch.Tensor]:
    dist = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    ref = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    return ahiq.NET_INPUT.normalize(dist), ahiq.NET_INPUT.normalize(ref)


@pytest.fixture(scope="module")
def model() -> ahiq.AHIQ:
    return deterministic_init(ahiq.build(), seed=0).eval()


@pytest.fixture(scope="module")
def run(model) -> dict:
    """One pass over the pair batch, recording which backbone parts ran (CPU, ~10 s)."""
    ran: list[str] = []
    watched = {
        "vit.blocks.4": model.vit.blocks[4],
        "vit.blocks.5": model.vit.blocks[5],
        "vit.norm": model.vit.norm,
        "resnet.layer1.2": model.resnet.layer1[2],
        "resnet.layer2": model.resnet.layer2,
    }
    handles = [
        m.register_forward_hook(lambda *_, name=name: ran.append(name))
        for name, m in watched.items()
    ]
    dist, ref = _pair()
    try:
        with torch.no_grad():
            score, patches, weights = model(dist, ref, return_patches=True)
    finally:
        for h in handles:
            h.remove()
    return {"dist": dist, "ref": ref, "score": score, "f": patches, "w": weights, "ran": ran}


def test_head_state_dict_equals_the_official_checkpoint(model):
    official = official_keys("ahiq")
    heads = [
        (k, tuple(v.shape))
        for k, v in model.state_dict().items()
        if k.startswith(("regressor.", "deform_net."))
    ]
    assert heads == official
    # an official checkpoint dict loads strictly through load_official_heads (fresh heads:
    # the shared model stays as initialised)
    fresh = SimpleNamespace(regressor=ahiq.PixelPrediction(), deform_net=ahiq.DeformFusion())
    ckpt = {"epoch": 32, "loss": 0.0, "optimizer_state_dict": {}, "scheduler_state_dict": {}}
    for part in ("regressor", "deform_net"):
        ckpt[f"{part}_model_state_dict"] = {
            name[len(part) + 1 :]: torch.full(shape, 0.25)
            for name, shape in official
            if name.startswith(part + ".")
        }
    ahiq.load_official_heads(fresh, ckpt)
    assert all((v == 0.25).all() for k, v in fresh.regressor.state_dict().items())
    assert all((v == 0.25).all() for k, v in fresh.deform_net.state_dict().items())
    del ckpt["deform_net_model_state_dict"]["conv_offset.bias"]
    with pytest.raises(RuntimeError, match="conv_offset.bias"):
        ahiq.load_official_heads(fresh, ckpt)


def test_backbones_are_timms_for_the_release_tags(model):
    fresh = SimpleNamespace()
    for part, tag in (("resnet", ahiq.RESNET_TAG), ("vit", ahiq.VIT_TAGS[8])):
        assert ahiq.RELEASES[tag].file.filename == f"{tag}.safetensors"
        setattr(fresh, part, timm.create_model(tag, pretrained=False))
        assert {k: v.shape for k, v in getattr(model, part).state_dict().items()} == {
            k: v.shape for k, v in getattr(fresh, part).state_dict().items()
        }
    resnet_sd = {k: torch.zeros_like(v) for k, v in model.resnet.state_dict().items()}
    vit_sd = {k: torch.ones_like(v) for k, v in model.vit.state_dict().items()}
    ahiq.load_backbones(fresh, resnet_sd, vit_sd)
    assert (fresh.resnet.conv1.weight == 0).all() and (fresh.vit.pos_embed == 1).all()
    with pytest.raises(RuntimeError):
        ahiq.load_backbones(fresh, {}, vit_sd)


def test_matches_the_official_pipeline(run):
    torch.testing.assert_close(run["score"], torch.tensor(GOLDEN_P8), rtol=0, atol=1e-5)


def test_patch_maps_pool_to_the_score(run):
    assert run["f"].shape == run["w"].shape == (2, 28, 28)
    assert ((run["w"] > 0) & (run["w"] < 1)).all()  # sigmoid weights
    pooled = (run["f"] * run["w"]).sum((1, 2)) / run["w"].sum((1, 2))
    torch.testing.assert_close(pooled, run["score"], rtol=0, atol=1e-6)


def test_only_the_tapped_backbone_layers_run(run):
    assert sorted(set(run["ran"])) == ["resnet.layer1.2", "vit.blocks.4"]


def test_batch_size_invariance(model, run):
    with torch.no_grad():
        alone = model(run["dist"][1:], run["ref"][1:])
    assert alone.shape == (1,)
    torch.testing.assert_close(alone, run["score"][1:], rtol=0, atol=1e-5)


@pytest.mark.slow
def test_patch16_matches_the_official_pipeline():
    net = deterministic_init(ahiq.build(patch_size=16), seed=0).eval()
    assert net.deform_net.conv1[2].stride == (2, 2)
    dist, ref = _pair()
    with torch.no_grad():
        score, patches, _ = net(dist[:1], ref[:1], return_patches=True)
    assert patches.shape == (1, 14, 14)
    torch.testing.assert_close(score, torch.tensor(GOLDEN_P16[:1]), rtol=0, atol=1e-5)


def test_backbones_stay_frozen(model):
    try:
        model.train()
        assert model.regressor.training and model.deform_net.training
        assert not model.resnet.training and not model.vit.training
    finally:
        model.eval()
    assert not any(p.requires_grad for p in model.resnet.parameters())
    assert not any(p.requires_grad for p in model.vit.parameters())
    assert all(p.requires_grad for p in model.regressor.parameters())
    assert all(p.requires_grad for p in model.deform_net.parameters())
    with pytest.raises(ValueError):
        ahiq.build(patch_size=14)
    with pytest.raises(TypeError):
        ahiq.build(scale=0.1)


def test_cpu_deformable_convolution_equals_torchvision():
    """The CPU path (bilinear sampling + one matmul) against torchvision's kernel, with offsets
    large enough to leave the image and land between pixels."""
    from torchvision.ops import deform_conv2d

    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 6, 9, 11, generator=g)
    offset = torch.randn(2, 18, 9, 11, generator=g) * 4
    weight, bias = torch.randn(5, 6, 3, 3, generator=g), torch.randn(5, generator=g)
    expected = deform_conv2d(x, offset, weight, bias, padding=1)
    torch.testing.assert_close(ahiq.deform_conv3x3(x, offset, weight, bias), expected)


@pytest.mark.parametrize(("side", "out"), [(28, 56), (14, 56), (20, 56)])
def test_nearest_upsampling_equals_interpolate(side, out):
    x = torch.rand(2, 5, side, side, generator=torch.Generator().manual_seed(side))
    expected = torch.nn.functional.interpolate(x, size=(out, out), mode="nearest")
    assert torch.equal(ahiq._upsample_nearest(x, torch.Size([out, out])), expected)

"""Deep models through the metric API: weights from files, never from the network unasked,
deterministic whole-image scores, conversion to our checkpoint format.

HyperIQA stands in for every crop-based model here (it is the smallest); the model files'
own tests check each network against the official code.
"""

from __future__ import annotations

import csv
import dataclasses
import socket
import urllib.request

import pytest
import torch

import iqa4k
from iqa4k import weights
from iqa4k.cli import main
from iqa4k.errors import OptionError, WeightsNotFoundError
from iqa4k.io import save_image
from iqa4k.models import ENTRIES, create_model, hyperiqa
from iqa4k.models.checkpoint import read_checkpoint, save_checkpoint
from iqa4k.testing import deterministic_init


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
        expected = net(hyperiqa.NET_INPUT.normalize(x))
    assert protocol_free(x).item() == pytest.approx(expected.item(), abs=1e-5)


def test_same_image_same_score_whatever_the_batch(metric):
    a, b = _image(1), _image(2)
    both = metric(torch.cat([a, b]))
    alone = torch.cat([metric(a), metric(b)])
    assert both.shape == (2,)
    assert torch.allclose(both, alone, atol=1e-5)
    assert torch.equal(metric(a), metric(a))  # seeded crops: deterministic


def test_bf16_precision_is_an_option_that_moves_scores_slightly(checkpoint, metric, tmp_path):
    path = str(checkpoint[0])
    half = iqa4k.create_metric("hyperiqa", weights=path, n_crops=4, precision="bfloat16")
    x = _image(4)
    full, reduced = metric(x), half(x)
    assert reduced.dtype == torch.float32 and 0 < abs(reduced - full).item() < 0.01 * abs(full)
    assert torch.equal(half(x), reduced)  # deterministic on the same machine and batch
    with pytest.raises(OptionError, match="precision must be one of"):
        iqa4k.create_metric("hyperiqa", weights=path, precision="float16")
    image = tmp_path / "x.png"
    save_image(x[0], image)
    out = tmp_path / "s.csv"
    args = ["score", "-m", "hyperiqa", "--opt", f"weights={path}", "--opt", "n_crops=4"]
    assert main([*args, "--opt", "precision=bfloat16", str(image), "-o", str(out)]) == 0
    row = next(csv.DictReader(out.open()))
    assert float(row["hyperiqa"]) == pytest.approx(half(str(image)).item(), abs=1e-6)


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
    state, meta = read_checkpoint(out)
    assert meta["model"] == "hyperiqa" and meta["release"] == "koniq"
    assert meta["source_sha256"] == weights.sha256_of(source)
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    ours = iqa4k.create_metric("hyperiqa", weights=str(out), n_crops=4, batch_size=3)
    x = _image(4)
    assert torch.equal(ours(x), metric(x))
    # an -o that names the input, or a file of another kind, is never overwritten
    labels = tmp_path / "mos.csv"
    labels.write_text("image,mos\n")
    for target in (labels, source):
        before = target.read_bytes()
        assert main(["convert-checkpoint", "hyperiqa", str(source), "-o", str(target)]) == 1
        assert target.read_bytes() == before
    trained = tmp_path / "trained.safetensors"  # what training records is kept
    save_checkpoint(trained, state, {**meta, "mos_scale": {"low": 1.0}, "dataset": "csv:x"})
    again = tmp_path / "again.safetensors"
    assert main(["convert-checkpoint", "hyperiqa", str(trained), "-o", str(again)]) == 0
    kept = read_checkpoint(again)[1]
    assert kept["mos_scale"] == {"low": 1.0} and kept["dataset"] == "csv:x"


# --------------------------------------------------------------------------- AHIQ and UIQA


def test_ahiq_official_heads_with_backbones_from_the_cache(tmp_path, monkeypatch):
    """AHIQ's release holds only the heads; the timm backbones come from their own files."""
    from safetensors.torch import save_file

    from iqa4k.models.ahiq import NET_INPUT, RESNET_TAG, VIT_TAGS
    from iqa4k.models.loading import weights_on_disk

    monkeypatch.setenv("IQA4K_HOME", str(tmp_path / "cache"))
    torch.manual_seed(0)
    net = create_model("ahiq").eval()
    heads = tmp_path / "AHIQ_vit_p8_epoch33.pth"
    torch.save(
        {
            "epoch": 33,
            "regressor_model_state_dict": net.regressor.state_dict(),
            "deform_net_model_state_dict": net.deform_net.state_dict(),
            "optimizer_state_dict": {"state": {}, "param_groups": []},
        },
        heads,
    )
    assert not weights_on_disk(ENTRIES["ahiq"], "pipal")
    with pytest.raises(WeightsNotFoundError, match=RESNET_TAG):
        iqa4k.create_metric("ahiq", weights=str(heads))
    for tag, backbone in ((RESNET_TAG, net.resnet), (VIT_TAGS[8], net.vit)):
        # stand-ins for the published files: their published checksums cannot match
        unchecked = dataclasses.replace(weights.REGISTRY[f"ahiq-{tag}"], sha256=None)
        monkeypatch.setitem(weights.REGISTRY, f"ahiq-{tag}", unchecked)
        target = weights.cache_path(f"ahiq-{tag}")
        target.parent.mkdir(parents=True)
        save_file({k: v.contiguous() for k, v in backbone.state_dict().items()}, str(target))
    metric = iqa4k.create_metric("ahiq", weights=str(heads), sampling="centre")
    dist, ref = _image(6, 224, 224), _image(7, 224, 224)
    with torch.no_grad():
        pair = NET_INPUT.normalize(dist), NET_INPUT.normalize(ref)
        expected, patch_scores, _ = net(*pair, return_patches=True)
    assert metric(dist, ref).item() == pytest.approx(expected.item(), abs=1e-5)
    scores, (quality,) = metric.with_maps(dist, ref)  # per-patch scores, 8x8 pixels each
    assert scores.item() == pytest.approx(expected.item(), abs=1e-5)
    assert quality.shape == (224, 224)
    assert torch.allclose(quality[::8, ::8], patch_scores[0], atol=1e-5)

    # two tiles pooled patch by patch with the model's weights, not as a mean of two scores
    pooled = iqa4k.create_metric(
        "ahiq", weights=str(heads), sampling="grid", aggregate="patch_weights"
    )
    wide_d, wide_r = _image(8, 224, 448), _image(9, 224, 448)
    tiles = [t.view(1, 3, 224, 2, 224).permute(3, 0, 1, 2, 4)[:, 0] for t in (wide_d, wide_r)]
    with torch.no_grad():
        _, f, w = net(*(NET_INPUT.normalize(t) for t in tiles), return_patches=True)
    expected = ((f * w).sum() / w.sum()).item()
    assert pooled(wide_d, wide_r).item() == pytest.approx(expected, abs=1e-5)


def test_uiqa_views_seeded_and_saliency_option(tmp_path):
    net = create_model("uiqa").eval()
    path = tmp_path / "UIQA.pth"
    torch.save(net.state_dict(), path)
    x = _image(8, 520, 700)
    official = iqa4k.create_metric("uiqa", weights=str(path))
    first = official(x)
    assert torch.equal(first, official(x))  # fragment offsets are seeded
    assert first.item() != iqa4k.create_metric("uiqa", weights=str(path), seed=3)(x).item()
    salient = iqa4k.create_metric("uiqa", weights=str(path), salient="saliency")
    assert torch.isfinite(salient(x)).all() and salient(x).item() != first.item()


# ------------------------------------------------------------------------------ quality maps


def test_grid_maps_paint_each_tile_with_its_score(checkpoint):
    path = str(checkpoint[0])
    grid = iqa4k.create_metric("hyperiqa", weights=path, sampling="grid")
    x = _image(9, 448, 672)  # exactly 2 x 3 tiles
    scores, (quality,) = grid.with_maps(x)
    assert torch.equal(scores, grid(x))
    assert quality.shape == (448, 672) and torch.isfinite(quality).all()
    tiles = quality[::224, ::224]
    assert tiles.shape == (2, 3)
    assert torch.equal(quality[:224, :224], tiles[0, 0].expand(224, 224))
    assert tiles.mean().item() == pytest.approx(scores.item(), abs=1e-5)


def test_random_crop_maps_leave_uncovered_pixels_empty(checkpoint, metric):
    x = _image(10, 600, 900)
    scores, (quality,) = metric.with_maps(x)
    assert torch.isnan(quality).any() and torch.isfinite(quality).any()
    with pytest.raises(iqa4k.OptionError, match="no quality maps"):
        iqa4k.create_metric("psnr").with_maps(x, x)


def test_score_command_saves_overlays(tmp_path, checkpoint):
    from PIL import Image

    from iqa4k.io import save_image

    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(2):
        save_image(_image(11 + i, 300, 400)[0], folder / f"img{i}.png")
    out, maps = tmp_path / "scores.csv", tmp_path / "maps"
    argv = ["score", "-m", "hyperiqa,psnr", str(folder), "--ref", str(folder), "-o", str(out)]
    argv += ["--opt", f"hyperiqa.weights={checkpoint[0]}", "--opt", "hyperiqa.n_crops=2"]
    assert main([*argv, "--maps", str(maps), "--no-progress"]) == 0
    written = sorted(p.name for p in maps.iterdir())
    assert written == ["img0.hyperiqa.png", "img1.hyperiqa.png"]
    assert Image.open(maps / written[0]).size == (400, 300)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_scores_equal_cpu_scores(checkpoint, metric):
    x = _image(13, 400, 500)
    gpu = iqa4k.create_metric("hyperiqa", weights=str(checkpoint[0]), n_crops=4, device="cuda")
    torch.testing.assert_close(gpu(x).cpu(), metric(x), rtol=0, atol=1e-5)
    # bfloat16 autocast on the GPU: within the CPU's bfloat16 bound of the float32 score
    path = str(checkpoint[0])
    half = iqa4k.create_metric(
        "hyperiqa", weights=path, n_crops=4, device="cuda", precision="bfloat16"
    )
    assert abs(half(x).cpu() - metric(x)).item() < 0.01 * abs(metric(x)).item()


def test_only_file_hosts_are_fetched_automatically():
    assert weights.REGISTRY["maniqa-koniq"].fetch_as == "create_metric('maniqa')"
    assert weights.REGISTRY["uiqa-uhd-iqa"].fetch_as  # a Dropbox link with dl=1: the file
    for name in ("hyperiqa-koniq", "maxiqa-pipal"):  # Google Drive: pages
        entry = weights.REGISTRY[name]
        assert entry.fetch_as == "" and f"weights='/path/to/{entry.filename}'" in entry.pass_as


def test_official_resize_is_torchvision_on_8_bit_pil_images():
    """HyperIQA's and TReS's KonIQ loaders: Resize((512, 384)) on a PIL image."""
    from torchvision import transforms

    from iqa4k.models.inputs import pil_resize

    x = (_image(14, 768, 1024) * 255).round() / 255
    pil = transforms.functional.to_pil_image(x[0])
    expected = transforms.ToTensor()(transforms.Resize((512, 384))(pil))
    torch.testing.assert_close(pil_resize(x, (512, 384))[0], expected, rtol=0, atol=1e-7)


def test_maniqa_pipal_release_as_a_pickled_module(tmp_path, monkeypatch):
    """The PIPAL release is ``torch.save(nn.DataParallel(MANIQA))`` with the official classes;
    it loads without them, into a network built with that release's scale (0.13)."""
    import sys
    import types

    from iqa4k.models import maniqa
    from iqa4k.models.maniqa import MANIQA

    official = types.ModuleType("models.maniqa")
    official.MANIQA = type("MANIQA", (MANIQA,), {"__module__": "models.maniqa"})
    monkeypatch.setitem(sys.modules, "models", types.ModuleType("models"))
    monkeypatch.setitem(sys.modules, "models.maniqa", official)
    torch.manual_seed(0)
    net = official.MANIQA(scale=0.13).eval()
    path = tmp_path / "ckpt_valid"
    torch.save(torch.nn.DataParallel(net), path)
    monkeypatch.delitem(sys.modules, "models.maniqa")
    monkeypatch.delitem(sys.modules, "models")

    metric = iqa4k.create_metric("maniqa-pipal", weights=str(path), sampling="centre")
    x = _image(15, 224, 224)
    with torch.no_grad():
        expected = net(maniqa.NET_INPUT.normalize(x))
    assert metric(x).item() == pytest.approx(expected.item(), abs=1e-5)

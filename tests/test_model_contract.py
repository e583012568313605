"""The model contract: each model declared once (its ENTRY), everything else derived from it.

Also the declared facts of the crop-based models whose tests are otherwise alike (HyperIQA and
TReS), the rule that function defaults equal the option table's, and the round trip a trainer
relies on: build from the entry, make training inputs, save ours, score it with create_metric.
"""

from __future__ import annotations

import inspect
import os
import types
from pathlib import Path

import pytest
import torch

import iqa4k
from iqa4k import weights
from iqa4k.models import ENTRIES, MODELS, backbones, hyperiqa, tres
from iqa4k.models.checkpoint import save_checkpoint
from iqa4k.models.inputs import Crops
from iqa4k.models.loading import checkpoint_meta
from iqa4k.models.table import metric_spec
from iqa4k.perceptual import backbone as perceptual_backbone
from iqa4k.registry import METRICS

from .conftest import python_words


def test_models_metric_rows_and_files_come_from_the_entries():
    assert MODELS == tuple(ENTRIES)
    assert MODELS == ("maxiqa", "uiqa", "ahiq", "maniqa", "hyperiqa", "tres", "smalliqa")
    deep = {name: spec for name, spec in METRICS.items() if spec.model is not None}
    expected = {}
    for entry in ENTRIES.values():
        for key, release in entry.releases.items():
            if release.metric:
                expected[release.metric] = (entry.name, key)
    assert {name: spec.model for name, spec in deep.items()} == expected
    for name, (model, key) in expected.items():
        derived = metric_spec(ENTRIES[model], key)
        spec = METRICS[name]
        assert (spec.kind, spec.summary, spec.citation, list(spec.options)) == (
            derived.kind,
            derived.summary,
            derived.citation,
            list(derived.options),
        )
    files = {f.name for entry in ENTRIES.values() for f in entry.files()}
    shared = {f.name for f in backbones.FILES}  # pretrained starts for training
    perceptual = {f.name for f in perceptual_backbone.FILES}  # LPIPS and DISTS ImageNet backbones
    assert set(weights.REGISTRY) == files | shared | perceptual | {"nrqm"}


def test_direction_and_range_belong_to_the_release():
    for spec in METRICS.values():
        if spec.model is not None:
            model, key = spec.model
            release = ENTRIES[model].releases[key]
            assert spec.higher_is_better == release.higher_is_better
            assert spec.score_range == release.score_range
    assert tres.RELEASES["live"].higher_is_better is False  # realigned DMOS
    assert METRICS["maxiqa"].score_range == (0.0, 1.0)


def test_release_files_are_registered_on_import_without_heavy_imports(tmp_path):
    """A fresh interpreter: the registry knows every release file right after the import, and
    neither timm nor torchvision was imported (model modules defer them to constructors)."""
    code = (
        "import sys; from iqa4k import weights; "
        "print(weights.available('maniqa-koniq'), weights.available('ahiq-pipal')); "
        "print('timm' in sys.modules, 'torchvision' in sys.modules)"
    )
    env = {**os.environ, "IQA4K_HOME": str(tmp_path)}
    assert python_words(code, env=env) == ["False", "False", "False", "False"]


def test_a_release_lists_what_it_needs_and_who_reads_it():
    ahiq = ENTRIES["ahiq"]
    assert ahiq.releases["pipal"].needs == (
        "resnet50.a1_in1k",
        "vit_base_patch8_224.augreg_in21k_ft_in1k",
    )
    assert weights.REGISTRY["ahiq-resnet50.a1_in1k"].metrics == ("ahiq",)
    assert "tres-live" not in weights.REGISTRY  # no metric scores with it (data only)
    assert [ENTRIES[m].n_images for m in MODELS] == [1, 3, 2, 1, 1, 1, 1]


def test_function_defaults_equal_the_option_table():
    """Defaults live in the option table; a function default that exists must agree with
    the metric named after the function (a variant such as psnr_y overrides some)."""
    for spec in METRICS.values():
        if spec.function.__name__ in METRICS and spec.function.__name__ != spec.name:
            continue
        for name, param in inspect.signature(spec.function).parameters.items():
            if name in spec.options and param.default is not inspect.Parameter.empty:
                assert param.default == spec.options[name].default, (spec.name, name)


@pytest.mark.parametrize(
    ("module", "n_crops", "filename", "url_part", "bad_option"),
    [
        (hyperiqa, 25, "koniq_pretrained.pkl", "1OOUmnbvpGea0LIGpIWEbOyxfWx6UCiiE", "scale"),
        (tres, 50, "bestmodel_1_2021", "149CcTlnVX3fXmNFmnFRwUmX0PL8jd5vf", "scale"),
    ],
)
def test_koniq_crop_models_declared_data(module, n_crops, filename, url_part, bad_option):
    entry = module.ENTRY
    assert isinstance(entry.inputs, Crops) and entry.inputs.net_input.size == 224
    p = entry.inputs.protocol
    assert (p.n_crops, p.resize, p.centre) == (n_crops, (512, 384), False)
    release = entry.releases["koniq"].file
    assert release.filename == filename and release.sha256 is None and url_part in release.url
    with torch.device("meta"):
        net = entry.build()
        with pytest.raises(ValueError, match="224x224"):
            net(torch.zeros(1, 3, 256, 256))
        with pytest.raises(TypeError):
            entry.build(**{bad_option: 2})


def test_entry_trains_and_its_checkpoint_scores_through_create_metric(tmp_path):
    """What a trainer does with an entry: build, make training inputs, step, save ours; the
    file is read back by create_metric with no conversion and scores as the trained net."""
    entry = ENTRIES["hyperiqa"]
    torch.manual_seed(0)
    net = entry.build(**entry.releases["koniq"].options)
    g = torch.Generator().manual_seed(0)
    images = torch.rand(4, 3, 300, 260, generator=g)
    (crops,) = entry.inputs.training_inputs((images,), g)
    assert crops.shape == (4, 3, 224, 224)
    target = torch.tensor([0.2, 0.4, 0.6, 0.8])
    optimiser = torch.optim.SGD(net.parameters(), lr=1e-3)
    for _ in range(2):
        optimiser.zero_grad()
        torch.nn.functional.mse_loss(net(crops), target).backward()
        optimiser.step()
    path = save_checkpoint(
        tmp_path / "trained.safetensors", net.state_dict(), checkpoint_meta(entry, "koniq")
    )
    metric = iqa4k.create_metric("hyperiqa", weights=str(path), sampling="centre")
    x = torch.rand(1, 3, 224, 224, generator=g)
    with torch.no_grad():
        expected = net.eval()(entry.inputs.net_input.normalize(x))
    assert metric(x).item() == pytest.approx(expected.item(), abs=1e-5)


def test_fr_training_inputs_share_the_window_and_views_are_the_models():
    ahiq = ENTRIES["ahiq"].inputs
    x = torch.rand(2, 3, 240, 250, generator=torch.Generator().manual_seed(1))
    dist, ref = ahiq.training_inputs((x, x.clone()), torch.Generator().manual_seed(2))
    assert dist.shape == (2, 3, 224, 224) and torch.equal(dist, ref)
    uiqa = ENTRIES["uiqa"].inputs
    views = uiqa.training_inputs((x,), torch.Generator().manual_seed(2))
    assert [v.shape for v in views] == [(2, 3, 480, 480)] * 3


def test_a_new_model_needs_only_its_entry(tmp_path, monkeypatch):
    """The add-a-model example of docs/architecture.md, run as written: its module alone
    gives a metric row, a registry file and a working metric (the registration below is what
    listing the module in ``_MODULES`` does on import)."""
    doc = (Path(__file__).parents[1] / "docs" / "architecture.md").read_text()
    code = doc.split("```python\n", 1)[1].split("```", 1)[0]
    module = types.ModuleType("iqa4k.models.tinynet")
    module.__package__ = "iqa4k.models"
    exec(compile(code, "architecture.md", "exec"), module.__dict__)
    entry = module.ENTRY
    spec = metric_spec(entry, "koniq")
    assert (spec.name, spec.kind, spec.score_range) == ("tinynet", "NR", (0.0, 100.0))
    assert [f.name for f in entry.files()] == ["tinynet-koniq"]
    for file in entry.files():
        monkeypatch.setitem(weights.REGISTRY, file.name, file)
    torch.manual_seed(0)
    net = entry.build(width=8)
    torch.save(net.state_dict(), tmp_path / "tinynet_koniq.pth")
    metric = iqa4k.Metric(spec, weights=str(tmp_path / "tinynet_koniq.pth"), n_crops=2)
    x = torch.rand(1, 3, 40, 50, generator=torch.Generator().manual_seed(3))
    scores, (quality,) = metric.with_maps(x)
    assert scores.shape == (1,) and quality.shape == (40, 50)
    assert torch.equal(metric(x), scores)  # seeded crops


def test_training_inputs_of_an_image_smaller_than_the_crop_say_so():
    small = torch.rand(1, 3, 100, 300)
    with pytest.raises(
        iqa4k.InputError, match="image is 300x100, smaller than the model's 192x192"
    ):
        ENTRIES["smalliqa"].inputs.training_inputs((small,), torch.Generator().manual_seed(0))

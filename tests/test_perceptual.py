"""LPIPS and DISTS against their reference packages (``lpips`` 0.1.4, ``DISTS_pytorch`` 0.1),
side by side with the same weights: each package's own calibration weights, and a backbone
initialised at random (the ImageNet files cannot be downloaded here), handed to iqa4k as a
torchvision-layout file."""

from __future__ import annotations

import sys
import types
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torchvision

import iqa4k
from iqa4k.errors import WeightsNotFoundError
from iqa4k.perceptual.dists import _alpha_beta

lpips_ref = pytest.importorskip("lpips", reason="the reference package (dev extra)")
dists_ref = pytest.importorskip("DISTS_pytorch.DISTS_pt", reason="the reference package (dev)")

LPIPS_NETS = {"lpips": "alex", "lpips_vgg": "vgg"}


def _lpips_reference(name: str) -> tuple[Callable, dict]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torchvision's `pretrained` deprecation
        ref = lpips_ref.LPIPS(net=LPIPS_NETS[name], pnet_rand=True, verbose=False)
    # the package names its layers net.slice<k>.<torchvision index>: torchvision's own keys
    backbone = {
        "features." + k.split(".", 2)[2]: v
        for k, v in ref.state_dict().items()
        if k.startswith("net.slice")
    }
    return lambda x, y: ref.eval()(x, y, normalize=True).flatten(), backbone


def _dists_reference() -> tuple[Callable, dict]:
    vgg = torchvision.models.vgg16(weights=None)
    real = dists_ref.models  # the package asks torchvision for the ImageNet VGG16: give it this
    dists_ref.models = types.SimpleNamespace(vgg16=lambda pretrained: vgg)
    try:
        ref = dists_ref.DISTS().eval()
    finally:
        dists_ref.models = real
    return lambda x, y: ref(x, y).flatten(), vgg.state_dict()


@pytest.fixture(scope="module", params=[*sorted(LPIPS_NETS), "dists"])
def pair(request, tmp_path_factory):
    """(metric name, the reference's score function, our metric with the same weights)."""
    torch.manual_seed(0)
    name = request.param
    ref, backbone = _dists_reference() if name == "dists" else _lpips_reference(name)
    path = tmp_path_factory.mktemp("w") / f"{name}.pth"
    torch.save(backbone, path)
    yield name, ref, iqa4k.create_metric(name, backbone=str(path))
    path.unlink()  # 0.5 GB for VGG16


def _images(seed: int, shape=(2, 3, 96, 128)) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(*shape, generator=g)
    return x, (x + 0.3 * torch.randn(*shape, generator=g)).clamp(0, 1)


def test_equal_to_the_reference_package(pair):
    _, ref, ours = pair
    for seed, shape in ((1, (2, 3, 96, 128)), (2, (1, 3, 64, 64)), (3, (1, 3, 131, 77))):
        x, y = _images(seed, shape)
        with torch.no_grad():
            expected = ref(x, y)
            got = ours(x, y)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
        assert (got > 0).all() and (got < ours.info.score_range[1]).all()


def test_identical_images_score_zero_and_gradients_flow(pair):
    _, _, ours = pair
    x, y = _images(4)
    assert ours(x, x).abs().max() < 1e-12  # DISTS: 1 - (sum of the weights) in float64
    y.requires_grad_(True)
    loss = ours.as_loss(y, x)  # lower is better: the mean score itself
    assert loss == ours(y, x).mean()
    loss.backward()
    assert y.grad is not None and torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0


def test_batch_and_layout_do_not_change_the_numbers(pair):
    _, _, ours = pair
    x, y = _images(5)
    whole = ours(x, y)
    one = torch.cat([ours(x[i : i + 1], y[i : i + 1]) for i in range(2)])
    cl = ours(x.contiguous(memory_format=torch.channels_last), y)
    torch.testing.assert_close(one, whole, rtol=0, atol=1e-6)
    torch.testing.assert_close(cl, whole, rtol=0, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_gives_the_cpu_numbers(pair):
    name, _, ours = pair
    x, y = _images(6)
    on_cpu = ours(x, y)
    on_gpu = iqa4k.create_metric(name, device="cuda", **ours.options)(x, y)
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, rtol=1e-4, atol=1e-5)  # TF32/cuDNN sums


def test_the_bundled_dists_weights_are_the_packages():
    package = torch.load(Path(sys.prefix) / "weights.pt")  # where its wheel installs them
    alpha, beta = _alpha_beta()
    assert torch.equal(torch.from_numpy(alpha), package["alpha"])
    assert torch.equal(torch.from_numpy(beta), package["beta"])


@pytest.mark.parametrize(
    ("name", "file", "entry"),
    [
        ("lpips", "alexnet-owt-7be5be79.pth", "torchvision-alexnet"),
        ("dists", "vgg16-397923af.pth", "torchvision-vgg16"),
    ],
)
def test_the_backbone_comes_from_the_cache_or_a_clear_error(
    tmp_path, monkeypatch, name, file, entry
):
    monkeypatch.setenv("IQA4K_HOME", str(tmp_path))
    with pytest.raises(WeightsNotFoundError) as err:
        iqa4k.create_metric(name)
    text = str(err.value)
    assert file in text and f"iqa4k weights fetch {entry}" in text
    assert not (tmp_path / entry).exists()  # nothing downloaded

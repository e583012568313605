"""LPIPS against the reference ``lpips`` 0.1.4 package, side by side with the same weights: the
package's own calibrated lin layers, and a backbone it initialised at random (the ImageNet
files cannot be downloaded here), handed to iqa4k as a torchvision-layout file."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

import iqa4k
from iqa4k.errors import WeightsNotFoundError

lpips_ref = pytest.importorskip("lpips", reason="the reference package (dev extra)")

NETS = {"lpips": "alex", "lpips_vgg": "vgg"}


@pytest.fixture(scope="module", params=sorted(NETS))
def pair(request, tmp_path_factory):
    """(metric name, the reference module, our metric with the same weights)."""
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torchvision's `pretrained` deprecation
        ref = lpips_ref.LPIPS(net=NETS[request.param], pnet_rand=True, verbose=False)
    # the package names its layers net.slice<k>.<torchvision index>: torchvision's own keys
    backbone = {
        "features." + k.split(".", 2)[2]: v
        for k, v in ref.state_dict().items()
        if k.startswith("net.slice")
    }
    path = tmp_path_factory.mktemp("w") / f"{request.param}.pth"
    torch.save(backbone, path)
    return request.param, ref.eval(), iqa4k.create_metric(request.param, backbone=str(path))


def _images(seed: int, shape=(2, 3, 96, 128)) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(*shape, generator=g)
    return x, (x + 0.2 * torch.randn(*shape, generator=g)).clamp(0, 1)


def test_equal_to_the_reference_package(pair):
    name, ref, ours = pair
    for seed, shape in ((1, (2, 3, 96, 128)), (2, (1, 3, 64, 64)), (3, (1, 3, 131, 77))):
        x, y = _images(seed, shape)
        with torch.no_grad():
            expected = ref(x, y, normalize=True).flatten()
            got = ours(x, y)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
        assert (got > 0).all()


def test_identical_images_score_zero_and_gradients_flow(pair):
    _, _, ours = pair
    x, y = _images(4)
    assert torch.equal(ours(x, x), torch.zeros(2))
    y.requires_grad_(True)
    ours(x, y).sum().backward()
    assert y.grad is not None and torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0


def test_batch_and_layout_do_not_change_the_numbers(pair):
    _, _, ours = pair
    x, y = _images(5)
    whole = ours(x, y)
    one = torch.cat([ours(x[i : i + 1], y[i : i + 1]) for i in range(2)])
    cl = ours(x.contiguous(memory_format=torch.channels_last), y)
    torch.testing.assert_close(one, whole, rtol=0, atol=1e-6)
    torch.testing.assert_close(cl, whole, rtol=0, atol=1e-6)


def test_the_backbone_comes_from_the_cache_or_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("IQA4K_HOME", str(tmp_path))
    with pytest.raises(WeightsNotFoundError) as err:
        iqa4k.create_metric("lpips")
    text = str(err.value)
    assert "alexnet-owt-7be5be79.pth" in text and "iqa4k weights fetch torchvision-alexnet" in text
    assert Path(tmp_path / "torchvision-alexnet").exists() is False

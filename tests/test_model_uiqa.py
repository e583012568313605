"""UIQA against numbers produced by the official code (sunwei925/UIQA@624d1727).

Golden scores come from the official ``models/UIQA.py`` ``UIQA_Model`` (torchvision ``swin_t``
patched to ``weights=None``) after ``deterministic_init(seed=0)``, fed ``torch.rand`` views from
generators seeded 0, 1, 2 and ImageNet-normalised. Fragment digests come from the official
``get_spatial_fragments`` (``test_single_image.py``) after ``torch.manual_seed(2)``.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from iqa4k.models import uiqa
from iqa4k.testing import deterministic_init

from .conftest import fixture_path, load_rgb, official_keys

# official UIQA_Model outputs for the batch of two below (float32, CPU)
GOLDEN = (-0.23590629, -0.23176217)


def _inputs(batch: int = 2, size: int = 480) -> list[torch.Tensor]:
    return [
        uiqa.NET_INPUT.normalize(
            torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))
        )
        for seed in (0, 1, 2)
    ]


@pytest.fixture(scope="module")
def model() -> uiqa.UIQA:
    return deterministic_init(uiqa.build(), seed=0).eval()


@pytest.fixture(scope="module")
def batch_scores(model: uiqa.UIQA) -> torch.Tensor:
    with torch.no_grad():
        return model(*_inputs())


def test_keys_and_shapes_equal_official(model: uiqa.UIQA) -> None:
    official = official_keys("uiqa")
    assert len(official) == 553
    ours = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert ours == official
    # a state_dict laid out from the list alone loads strictly (our own values: the module
    # fixture stays as it was, and a second 83M-parameter build is avoided)
    state = model.state_dict()
    model.load_state_dict({k: state[k].clone().reshape(s) for k, s in official}, strict=True)


def test_scores_equal_official(batch_scores: torch.Tensor) -> None:
    assert batch_scores.shape == (2,)
    torch.testing.assert_close(batch_scores, torch.tensor(GOLDEN), rtol=0, atol=1e-5)


def test_batch_invariance(model: uiqa.UIQA, batch_scores: torch.Tensor) -> None:
    # the second image alone (one B=1 pass: three Swin-T at 480 cost ~2 s on one core)
    with torch.no_grad():
        single = model(*(v[1:2] for v in _inputs()))
    assert single.shape == (1,)  # one score per image, also at B=1
    torch.testing.assert_close(single, batch_scores[1:], rtol=0, atol=1e-5)


# sha256 of the official fragments (float32 bytes, [3,480,480]) of torch.rand images: a plain
# grid, one needing bilinear upsampling (grid still on the small size), one with column offsets
# only (490 // 15 = 32 leaves no room in rows, so the first draw is the columns')
FRAGMENT_DIGESTS = {
    (1080, 1920, 0): "3adb7e2ae667e8e663001f0b4d9864ebd29d946fb3636b9c93abb9dd74c0cd27",
    (300, 700, 1): "7b84452c2c4c56e7c02b50d86c9d63d09c6ba7baa3d4b0bc72c8bb310276b771",
    (490, 2000, 2): "ff91bb3784b2c3e818d5baedc2b8e5bc3200adfba8852e7b2adc1cd84437f072",
}


@pytest.mark.parametrize(("h", "w", "seed"), list(FRAGMENT_DIGESTS))
def test_fragments_bit_identical_to_official(h: int, w: int, seed: int) -> None:
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed))
    out = uiqa.fragment_view(x, torch.Generator().manual_seed(uiqa.FRAGMENT_SEED))
    assert out.shape == (1, 3, 480, 480)
    digest = hashlib.sha256(out[0].numpy().tobytes()).hexdigest()
    assert digest == FRAGMENT_DIGESTS[(h, w, seed)]


def test_fragment_layout_and_determinism() -> None:
    h, w = 1000, 1500
    rows = torch.arange(h, dtype=torch.float64).view(h, 1).expand(h, w)
    cols = torch.arange(w, dtype=torch.float64).view(1, w).expand(h, w)
    x = torch.stack([rows, cols, rows * 0]).unsqueeze(0)
    out = uiqa.fragment_view(x, torch.Generator().manual_seed(5))[0]
    again = uiqa.fragment_view(x, torch.Generator().manual_seed(5))[0]
    other = uiqa.fragment_view(x, torch.Generator().manual_seed(6))[0]
    assert torch.equal(out, again) and not torch.equal(out, other)
    cell_h, cell_w = h // 15, w // 15
    for i in range(15):
        for j in range(15):
            tile = out[:, 32 * i : 32 * i + 32, 32 * j : 32 * j + 32]
            top, left = int(tile[0, 0, 0]), int(tile[1, 0, 0])
            # a contiguous 32x32 block starting inside cell (i, j), offset below cell - 32
            assert 0 <= top - i * cell_h < cell_h - 32
            assert 0 <= left - j * cell_w < cell_w - 32
            assert torch.equal(tile[0], (top + torch.arange(32.0)).view(32, 1).expand(32, 32))
            assert torch.equal(tile[1], (left + torch.arange(32.0)).view(1, 32).expand(32, 32))


def test_fragment_batch_draws_image_after_image() -> None:
    x = torch.rand(2, 3, 600, 800, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(2)
    one_by_one = torch.cat([uiqa.fragment_view(x[i : i + 1], g) for i in range(2)])
    assert torch.equal(uiqa.fragment_view(x, torch.Generator().manual_seed(2)), one_by_one)
    with pytest.raises(ValueError, match="smaller than one"):
        uiqa.fragment_view(torch.rand(1, 3, 31, 900))


def _pil(h: int, w: int, seed: int) -> Image.Image:
    array = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    return Image.fromarray(array)


@pytest.mark.parametrize(("h", "w"), [(900, 1601), (481, 480), (400, 600), (300, 477)])
def test_salient_view_is_torchvision_centre_crop(h: int, w: int) -> None:
    img = _pil(h, w, h + w)
    expected = transforms.ToTensor()(transforms.CenterCrop(480)(img))
    ours = uiqa.salient_view(torch.from_numpy(np.array(img)).permute(2, 0, 1)[None] / 255.0)
    assert torch.equal(ours[0], expected)


def test_aesthetic_view_equals_official_pil() -> None:
    img = Image.open(fixture_path("uhd", "uhd_photo_3840x2560.jpg")).convert("RGB")
    expected = transforms.ToTensor()(transforms.CenterCrop(480)(transforms.Resize(512)(img)))
    ours = uiqa.aesthetic_view(load_rgb(fixture_path("uhd", "uhd_photo_3840x2560.jpg")))[0]
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-7)


@pytest.mark.parametrize(("h", "w"), [(517, 1001), (1001, 517), (300, 700)])
def test_aesthetic_view_geometry_matches_torchvision(h: int, w: int) -> None:
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))
    x = x.mul(255).round() / 255  # 8-bit images, as the official loader reads
    pil = transforms.functional.to_pil_image(x[0])
    expected = transforms.ToTensor()(transforms.CenterCrop(480)(transforms.Resize(512)(pil)))
    torch.testing.assert_close(uiqa.aesthetic_view(x)[0], expected, rtol=0, atol=1e-7)


def test_module_data() -> None:
    assert uiqa.ENTRY.inputs.net_input is uiqa.NET_INPUT and uiqa.NET_INPUT.size == 480
    release = uiqa.RELEASES["uhd-iqa"].file
    assert release.filename == "UIQA.pth" and release.sha256 is None
    assert "dropbox.com" in release.url and release.direct  # dl=1: fetched as the file
    with pytest.raises(TypeError):
        uiqa.build(scale=0.5)

"""PIQE against MATLAB's piqe(): published values, an independent loop port, maps and errors."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

import iqa4k
from iqa4k import degrade
from iqa4k.classic import piqe as piqe_module
from iqa4k.classic.piqe import PIQEResult, piqe
from iqa4k.color import RGB2GRAY, to_channels
from iqa4k.demo import sample_image

from .conftest import fixture_path, load_rgb, posterised

# --------------------------------------------------------------------------- a loop oracle


def _matlab_piqe(gray255: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """piqe.m transcribed block by block: float64, explicit 7x7 window, no vectorisation.

    ``gray255`` holds the rounded gray levels 0..255. Returns the score and the three masks.
    """
    bs = 16
    h, w = gray255.shape
    img = np.pad(gray255.astype(np.float64), ((0, -h % bs), (0, -w % bs)), mode="edge")
    t = np.arange(7) - 3.0
    g = np.exp(-(t[:, None] ** 2 + t[None] ** 2) / (2 * (7 / 6) ** 2))
    g /= g.sum()
    padded = np.pad(img, 3, mode="edge")  # imgaussfilt 'Padding','replicate'
    hp, wp = img.shape

    def gauss(a: np.ndarray) -> np.ndarray:
        return sum(g[i, j] * a[i : i + hp, j : j + wp] for i in range(7) for j in range(7))

    mu = gauss(padded)
    sigma = np.sqrt(np.abs(gauss(padded * padded) - mu * mu))
    imnorm = (img - mu) / (sigma + 1)
    activity = np.zeros((hp, wp), bool)
    artifacts, noise = activity.copy(), activity.copy()
    total, n_active = 0.0, 0
    for i in range(0, hp, bs):
        for j in range(0, wp, bs):
            block = imnorm[i : i + bs, j : j + bs]
            var = block.var(ddof=1)
            if var <= 0.1:
                continue
            n_active += 1
            activity[i : i + bs, j : j + bs] = True
            edges = (block[0], block[:, -1], block[-1], block[:, 0])
            impaired = any(e[k : k + 6].std(ddof=1) < 0.1 for e in edges for k in range(11))
            centre = np.concatenate([block[:, 7], block[:, 8]])
            kept = block.copy()
            kept = np.delete(kept, 7, axis=1)  # Block(:,center1) = []
            kept = np.delete(kept, 8, axis=1)  # Block(:,center2) = [] on the shifted block
            ratio = centre.std(ddof=1) / kept.std(ddof=1)
            ratio = 0.0 if np.isnan(ratio) else ratio
            sd = np.sqrt(var)
            noisy = sd > 2 * (abs(sd - ratio) / max(sd, ratio))
            artifacts[i : i + bs, j : j + bs] = impaired
            noise[i : i + bs, j : j + bs] = noisy
            total += impaired * (1 - var) + noisy * var
    score = (total + 1) / (n_active + 1) * 100
    return score, activity[:h, :w], artifacts[:h, :w], noise[:h, :w]


def _gray255(x: torch.Tensor) -> np.ndarray:
    """MATLAB rgb2gray of a [1,3,H,W] tensor in [0,1], computed independently in float64."""
    rgb = np.rint(x[0].double().numpy() * 255)
    v = sum(c * rgb[k] for k, c in enumerate(RGB2GRAY))
    return np.floor(v + 0.5)


def _crops() -> list[torch.Tensor]:
    """Real image patches with sizes that are and are not multiples of the block."""
    x = sample_image()[None].double()
    rng = np.random.default_rng(3)
    noise = torch.from_numpy(rng.integers(0, 256, (1, 3, 40, 56)) / 255.0)
    return [x[..., 100:196, 200:328], x[..., 37:127, 401:501], x[..., 250:, :77], noise]


@pytest.mark.parametrize("index", range(4))
def test_matches_a_literal_loop_port_of_piqe_m(index):
    x = _crops()[index]
    expected, activity, artifacts, noise = _matlab_piqe(_gray255(x))
    result = piqe(x, return_maps=True)
    assert float(result.score[0]) == pytest.approx(expected, rel=1e-10, abs=1e-10)
    assert np.array_equal(result.activity_mask[0].numpy(), activity)
    assert np.array_equal(result.noticeable_artifacts_mask[0].numpy(), artifacts)
    assert np.array_equal(result.noise_mask[0].numpy(), noise)


@pytest.mark.parametrize("index", range(4))
def test_gradients_and_float32_maps_do_not_change_the_cpu_result(index):
    # One implementation whatever the device or autograd state: the same bits.
    x = _crops()[index]
    plain = piqe(x, return_maps=True)
    graded = piqe(x.clone().requires_grad_(True), return_maps=True)
    for a, b in zip(plain[:5], graded[:5], strict=True):
        assert torch.equal(a, b)
    fast = piqe(x, precision="float32", return_maps=True)
    assert float(fast.score[0]) == pytest.approx(float(plain.score[0]), rel=5e-3)


@pytest.mark.parametrize("blocks", [2, 3])
def test_band_height_does_not_change_a_bit(blocks, monkeypatch):
    x = torch.cat([posterised(), posterised(seed=6)])  # flat areas, a ramp, noise
    whole = piqe(x, return_maps=True)
    monkeypatch.setattr(piqe_module, "_BAND_BLOCKS", blocks)
    for a, b in zip(whole[:5], piqe(x, return_maps=True)[:5], strict=True):
        assert torch.equal(a, b)


# --------------------------------------------------------------------- published values


def _reference_scores() -> dict[str, float]:
    with open(fixture_path("calibration", "reference_scores.csv"), newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["metric"] == "piqe")
    return {k: float(v) for k, v in row.items() if k != "metric"}


@pytest.mark.parametrize("image", ["I03.bmp", "I04.bmp"])
def test_matches_matlab_reference_values(image):
    official = _reference_scores()[image]
    path = fixture_path("calibration", "dist", image)
    for dtype in (torch.float32, torch.float64):
        ours = float(piqe(load_rgb(path, dtype)))
        assert ours == pytest.approx(official, rel=5e-3)
        assert abs(ours - official) <= 0.005  # the value is published to two decimals
    assert float(iqa4k.create_metric("piqe")(path)) == pytest.approx(official, abs=0.005)


def test_flat_areas_match_matlab_and_their_rounding_noise_decides_nothing(monkeypatch):
    # calibration_flat: 41.1475 vs MATLAB's 41.15. PIQE's criteria are variances and stds
    # against 0.1: replacing every near-zero MSCN coefficient (flat 7x7 neighbourhoods) by
    # +-1e-300 changes no bit of the score or the masks (11 block scores move by <= 2e-15).
    with open(fixture_path("calibration_flat", "reference_scores.csv"), newline="") as f:
        official = float(next(r for r in csv.reader(f) if r[0] == "piqe")[1])
    x = load_rgb(fixture_path("calibration_flat", "dist", "I08.bmp"), torch.float64)
    result = piqe(x, return_maps=True)
    assert abs(float(result.score[0]) - official) <= 0.005
    rows = piqe_module.mscn_rows
    for sign in (1.0, -1.0):

        def forced(*args, sign=sign, **kwargs):
            s = rows(*args, **kwargs)
            s[np.abs(s) < 1e-9] = sign * 1e-300
            return s

        monkeypatch.setattr(piqe_module, "mscn_rows", forced)
        other = piqe(x, return_maps=True)
        for a, b in zip(result[2:5], other[2:5], strict=True):
            assert torch.equal(a, b)
        assert torch.equal(result.score, other.score)
        assert torch.allclose(result.block_scores, other.block_scores, rtol=0, atol=1e-14)


def test_i03_has_no_active_block_and_scores_exactly_100():
    # The distorted I03 of the calibration pair has no block with MSCN variance > 0.1.
    result = piqe(load_rgb(fixture_path("calibration", "dist", "I03.bmp")), return_maps=True)
    assert float(result.score[0]) == 100.0
    assert not result.activity_mask.any()


# ---------------------------------------------------------------------------------- maps


def test_maps_have_matlab_shapes_and_recompose_the_score():
    x = sample_image()[None]  # 600x400: the last block column is padded
    r = piqe(x, return_maps=True)
    assert isinstance(r, PIQEResult) and r.block_size == 16
    assert r.score.shape == (1,)
    assert r.block_scores.shape == (1, 25, 38)  # ceil(400/16) x ceil(600/16)
    for mask in (r.activity_mask, r.noticeable_artifacts_mask, r.noise_mask):
        assert mask.shape == (1, 400, 600) and mask.dtype == torch.bool
    assert r.quality_map().shape == (1, 400, 600)
    # Distortion flags only on active blocks; every block is uniform in every map.
    assert not (r.noticeable_artifacts_mask & ~r.activity_mask).any()
    assert not (r.noise_mask & ~r.activity_mask).any()
    active = r.activity_mask[:, ::16, ::16]
    assert active.shape == r.block_scores.shape
    assert (r.block_scores[~active] == 0).all()
    expanded = active.repeat_interleave(16, -2).repeat_interleave(16, -1)[..., :400, :600]
    assert torch.equal(expanded, r.activity_mask)
    # MATLAB's pooling: (sum of block scores + 1) / (active blocks + 1) * 100.
    recomposed = (r.block_scores.double().sum() + 1) / (active.sum() + 1) * 100
    assert float(r.score[0]) == pytest.approx(float(recomposed), rel=1e-6)
    assert torch.equal(r.score, piqe(x))
    # A block's score is 1 - v (artifact), v (noise) or 1 (both), v > 0.1 its MSCN variance.
    artifact = r.noticeable_artifacts_mask[:, ::16, ::16]
    noisy = r.noise_mask[:, ::16, ::16]
    assert torch.allclose(r.block_scores[artifact & noisy], torch.tensor(1.0))
    assert (r.block_scores[artifact & ~noisy] < 0.9).all()
    assert (r.block_scores[noisy & ~artifact] > 0.1).all()


def test_flat_images_score_100_with_empty_masks():
    # piqe.m's note 5: a uniform image has no active block, (0 + 1) / (0 + 1) * 100 = 100.
    for level in (0.0, 0.5, 1.0):
        r = piqe(torch.full((1, 3, 64, 80), level), return_maps=True)
        assert float(r.score[0]) == 100.0
        assert not (r.activity_mask.any() or r.noise_mask.any())
        assert not r.noticeable_artifacts_mask.any()


# ----------------------------------------------------------------------------- behaviour


def _sample_scores(images: list[torch.Tensor]) -> list[float]:
    return piqe(torch.cat(images)).tolist()


def test_more_noise_blur_or_compression_scores_worse_on_a_real_photo():
    x = sample_image()[None]
    noise = _sample_scores([degrade.gaussian_noise(x, s) for s in (0.02, 0.05, 0.1)])
    blur = _sample_scores([x] + [degrade.gaussian_blur(x, s) for s in (1.0, 2.0, 3.0)])
    jpeg = _sample_scores([degrade.jpeg(x, q) for q in (70, 30, 10, 5)])
    for scores in (noise, blur, jpeg):
        assert scores == sorted(scores) and len(set(scores)) == len(scores), scores


def test_deterministic_and_batch_equals_one_by_one():
    x = sample_image()[None]
    y = degrade.jpeg(x, 20)
    batch = piqe(torch.cat([x, y]))
    assert torch.equal(batch, piqe(torch.cat([x, y])))
    assert torch.equal(batch, torch.cat([piqe(x), piqe(y)]))
    maps = piqe(torch.cat([x, y]), return_maps=True)
    single = piqe(y, return_maps=True)
    for a, b in zip(maps[1:5], single[1:5], strict=True):
        assert torch.equal(a[1:], b)


def test_gray_input_equals_the_same_gray_as_rgb_and_float32_matches_float64():
    x = sample_image()[None]
    gray = to_channels(x, "gray")
    assert torch.equal(piqe(gray), piqe(gray.expand(-1, 3, -1, -1)))
    assert float(piqe(x)) == pytest.approx(float(piqe(x.double())), rel=1e-6)


def test_float32_precision_stays_close_to_matlab():
    # Opt-in speed: the MSCN map in float32 moves a few block decisions in 10^5.
    x = sample_image()[None]
    exact = piqe(x)
    fast = piqe(x, precision="float32")
    assert float(fast[0]) == pytest.approx(float(exact[0]), rel=5e-3)
    official = _reference_scores()["I04.bmp"]
    path = fixture_path("calibration", "dist", "I04.bmp")
    assert float(piqe(load_rgb(path), precision="float32")) == pytest.approx(official, rel=5e-3)


def test_registered_metric_options_and_crop_border():
    spec = iqa4k.METRICS["piqe"]
    assert spec.kind == "NR" and not spec.higher_is_better and spec.score_range == (0.0, 100.0)
    x = sample_image()[None]
    metric = iqa4k.create_metric("piqe", crop_border=4)
    assert torch.equal(metric(x), piqe(x[..., 4:-4, 4:-4]))
    assert torch.equal(iqa4k.create_metric("piqe", data_range=255.0)(x * 255), piqe(x))
    assert not torch.equal(iqa4k.create_metric("piqe", color_space="y")(x), piqe(x))


# -------------------------------------------------------------------------------- errors


def test_too_small_images_are_refused_clearly():
    with pytest.raises(iqa4k.InputError, match="at least 16x16 pixels .*got 20x15"):
        piqe(torch.rand(1, 3, 15, 20))
    with pytest.raises(iqa4k.InputError, match="got 12x12 after shaving 4 per side"):
        iqa4k.create_metric("piqe", crop_border=4)(torch.rand(1, 3, 20, 20))
    assert piqe(torch.rand(1, 3, 16, 16)).shape == (1,)  # one block is enough


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"block_size": 15}, "even integer"),
        ({"block_size": 2}, "block_size"),
        ({"segment_length": 17}, "segment_length"),
        ({"color_space": "rgb"}, "color_space"),
        ({"precision": "float16"}, "precision"),
    ],
)
def test_bad_options_are_refused(options, message):
    with pytest.raises(iqa4k.OptionError, match=message):
        iqa4k.create_metric("piqe", **options)(torch.rand(1, 3, 32, 32))


def test_wrong_shapes_are_refused():
    with pytest.raises(iqa4k.InputError, match=r"\[B,3,H,W\]"):
        piqe(torch.rand(3, 32, 32))

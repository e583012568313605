"""NRQM and PI: the model file's loader, the forests, the features, the weights cache.

Ma et al.'s model.mat is not available here, so the forests are tested on small forests built
in the same layout, the features against values derived by hand or by a direct per-window
route, and the official reference values only when the real file is provided
(``IQA4K_NRQM_MODEL=/path/to/model.mat`` or the iqa4k cache).
"""

from __future__ import annotations

import csv
import math
import os
import re
import statistics
from pathlib import Path

import numpy as np
import pytest
import scipy.fft
import scipy.io
import torch

import iqa4k
from iqa4k import weights
from iqa4k.classic import nrqm as nrqm_mod
from iqa4k.classic import nrqm_features as nf
from iqa4k.classic.steerable import build_sf_pyramid, reconstruct_sf_pyramid
from iqa4k.color import rgb_to_y
from iqa4k.errors import InputError, IQAError, WeightsNotFoundError
from iqa4k.metric import Metric
from iqa4k.metric_spec import Setup
from iqa4k.registry import METRICS, MetricSpec, Option

from .conftest import fixture_path, load_rgb

LEAF, SPLIT = -1, -3  # randomForest's nodestatus codes


# ----------------------------------------------------------------- forests in model.mat layout


def _forest(trees: list[list[tuple]], coef=(0.0, 0.0)) -> dict:
    """A randomforest-matlab regression forest as regRF_train saves it.

    Each tree is a list of nodes (1-based order): ``("split", var, threshold, left, right)``
    or ``("leaf", value)``; unused node slots stay zero, as in real forests.
    """
    nrnodes = max(len(t) for t in trees) + 1
    shape = (nrnodes, len(trees))
    arrays = {
        "lDau": np.zeros(shape, np.int32),
        "rDau": np.zeros(shape, np.int32),
        "nodestatus": np.zeros(shape, np.int32),
        "upper": np.zeros(shape),
        "avnode": np.zeros(shape),
        "mbest": np.zeros(shape, np.int32),
    }
    for t, nodes in enumerate(trees):
        for k, node in enumerate(nodes):
            if node[0] == "split":
                _, var, threshold, left, right = node
                arrays["nodestatus"][k, t] = SPLIT
                arrays["mbest"][k, t] = var
                arrays["upper"][k, t] = threshold
                arrays["lDau"][k, t], arrays["rDau"][k, t] = left, right
            else:
                arrays["nodestatus"][k, t] = LEAF
                arrays["avnode"][k, t] = node[1]
    return {
        **arrays,
        "nrnodes": float(nrnodes),
        "ndtree": np.array([[len(t) for t in trees]], np.int32),
        "ntree": float(len(trees)),
        "coef": np.array([coef], dtype=np.float64),
        "mse": np.zeros((1, len(trees))),  # regRF_train saves more fields; they are ignored
    }


# Tree walks written out by hand for the feature vectors below.
TREE_A = [  # x1 <= 0.5 ? 1.0 : (x2 <= -1 ? 2.0 : 3.0)
    ("split", 1, 0.5, 2, 3),
    ("leaf", 1.0),
    ("split", 2, -1.0, 4, 5),
    ("leaf", 2.0),
    ("leaf", 3.0),
]
TREE_B = [("split", 3, 10.0, 2, 3), ("leaf", 5.0), ("leaf", 7.0)]  # x3 <= 10 ? 5 : 7
TREE_C = [("leaf", 4.0)]  # a stump
TREE_D = [("split", 45, 0.25, 3, 2), ("leaf", -1.0), ("leaf", 1.0)]  # x45 <= .25 ? 1 : -1
TREE_E = [("split", 75, 3.0, 2, 3), ("leaf", 0.0), ("leaf", 9.0)]  # x75 <= 3 ? 0 : 9
LINEAR = [0.5, 0.4, 0.3, 0.3]


def _write_model(path: Path, forests: list[dict], linear=LINEAR, shape=(1, 3)) -> Path:
    cell = np.empty(shape, dtype=object)
    for i, forest in enumerate(forests):
        cell.flat[i] = forest
    model = {"rf": cell, "linear": np.array(linear, dtype=np.float64).reshape(-1, 1)}
    scipy.io.savemat(path, {"model": model})
    return path


@pytest.fixture
def model_file(tmp_path) -> Path:
    forests = [_forest([TREE_A, TREE_B]), _forest([TREE_D, TREE_C]), _forest([TREE_E])]
    return _write_model(tmp_path / "model.mat", forests)


def _vector(size: int, **values: float) -> np.ndarray:
    """A feature vector of zeros with 1-based entries set, e.g. ``_vector(18, x1=0.7)``."""
    v = np.zeros(size)
    for key, value in values.items():
        v[int(key[1:]) - 1] = value
    return v


def test_loader_reads_the_model_mat_layout(model_file):
    model = nrqm_mod.load_model(model_file)
    assert len(model.forests) == 3 and model.linear.tolist() == LINEAR
    assert model.forests[0].status.shape == (6, 2)  # [nrnodes, ntree]
    assert model.forests[0].threshold[2, 0] == -1.0 and model.forests[0].var[0, 1] == 3


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        (_vector(18, x1=0.5, x3=10.0), (1.0 + 5.0) / 2),  # both '<=' ties go left
        (_vector(18, x1=0.6, x2=-1.0, x3=10.5), (2.0 + 7.0) / 2),
        (_vector(18, x1=2.0, x2=-0.9, x3=-3.0), (3.0 + 5.0) / 2),
        (_vector(18, x1=np.nan, x2=-5.0, x3=np.nan), (2.0 + 7.0) / 2),  # NaN goes right
    ],
)
def test_forest_matches_hand_walk(model_file, x, expected):
    forest = nrqm_mod.load_model(model_file).forests[0]
    assert forest.predict(x[None]) == pytest.approx([expected], abs=1e-15)


def test_forest_walks_many_samples_at_once(model_file):
    forest = nrqm_mod.load_model(model_file).forests[0]
    xs = np.stack(
        [_vector(18, x1=a, x2=b, x3=c) for a, b, c in [(0, 0, 0), (1, -2, 11), (1, 0, 0)]]
    )
    assert forest.predict(xs).tolist() == [3.0, 4.5, 4.0]


def test_linear_stage_combines_the_three_forests(model_file):
    model = nrqm_mod.load_model(model_file)
    f1 = _vector(18, x1=0.6, x2=-1.0, x3=10.5)  # forest 1: 4.5
    f2 = _vector(45, x45=0.25)  # forest 2: (1 + 4) / 2
    f3 = _vector(75, x75=3.5)  # forest 3: 9
    expected = 0.5 + 0.4 * 4.5 + 0.3 * 2.5 + 0.3 * 9.0
    assert nrqm_mod.predict(model, f1, f2, f3) == pytest.approx([expected], abs=1e-12)


def test_bias_correction_coef_is_applied_when_nonzero(tmp_path):
    forests = [_forest([TREE_B], coef=(1.0, 2.0)), _forest([TREE_C]), _forest([TREE_C])]
    model = nrqm_mod.load_model(_write_model(tmp_path / "m.mat", forests, shape=(3, 1)))
    assert model.forests[0].predict(_vector(18, x3=20.0)[None]) == pytest.approx([15.0])


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: f[1].pop("upper"), "model.rf{2} has no field 'upper'"),
        (lambda f: f[2].pop("mbest"), "model.rf{3} has no field 'mbest'"),
        (lambda f: f[0].pop("lDau"), "model.rf{1} has no field 'lDau'"),
    ],
)
def test_loader_names_the_missing_field(tmp_path, damage, message):
    forests = [_forest([TREE_A]), _forest([TREE_B]), _forest([TREE_C])]
    damage(forests)
    with pytest.raises(IQAError, match=re.escape(message)):
        nrqm_mod.load_model(_write_model(tmp_path / "m.mat", forests))


def test_loader_rejects_other_layouts(tmp_path):
    path = tmp_path / "m.mat"
    scipy.io.savemat(path, {"model": {"rf": np.zeros(3)}})
    with pytest.raises(IQAError, match="model has no field 'linear'|cell of 3 forests"):
        nrqm_mod.load_model(path)
    scipy.io.savemat(path, {"weights": np.zeros(3)})
    with pytest.raises(IQAError, match="no variable 'model'"):
        nrqm_mod.load_model(path)
    path.write_bytes(b"not a mat file")
    with pytest.raises(IQAError, match="not a readable MATLAB"):
        nrqm_mod.load_model(path)


def test_forest_with_a_cycle_is_an_error():
    cycle = [("split", 1, 0.0, 2, 2), ("split", 1, 0.0, 1, 1)]
    arrays = _forest([cycle])
    forest = nrqm_mod.Forest(
        left=arrays["lDau"],
        right=arrays["rDau"],
        status=arrays["nodestatus"],
        threshold=arrays["upper"],
        value=arrays["avnode"],
        var=arrays["mbest"],
    )
    with pytest.raises(IQAError, match="cycle"):
        forest.predict(np.zeros((1, 1)))


# ----------------------------------------------------------------------- the metric pipeline


def _coffee() -> torch.Tensor:
    from iqa4k.demo import sample_image

    return sample_image()[None]  # [1, 3, 400, 600]


def test_pipeline_is_features_then_forests_then_linear(model_file):
    x = _coffee()
    metric = iqa4k.create_metric("nrqm", model_path=str(model_file))
    score = metric(x)
    assert score.shape == (1,) and torch.isfinite(score).all()
    # The same three stages by hand: luma as MATLAB's uint8, 4-pixel shave, features, model.
    luma = torch.round(rgb_to_y(x.double())[0, 0] * 255)[4:-4, 4:-4]
    f1, f2, f3 = (f.numpy() for f in nf.nrqm_features(luma))
    expected = nrqm_mod.predict(nrqm_mod.load_model(model_file), f1, f2, f3)
    assert score.double().numpy() == pytest.approx(expected, abs=1e-6)


def test_batch_scores_equal_single_scores(model_file):
    x = _coffee()
    y = torch.flip(x, dims=[-1]) * 0.8
    metric = iqa4k.create_metric("nrqm", model_path=str(model_file))
    both = metric(torch.cat([x, y]))
    assert both.tolist() == pytest.approx([metric(x).item(), metric(y).item()], abs=1e-6)


def test_pi_is_half_of_ten_minus_nrqm_plus_niqe(model_file):
    from iqa4k.classic.niqe import niqe

    x = _coffee()
    ma = iqa4k.create_metric("nrqm", model_path=str(model_file))(x).double()
    natural = niqe(x.double(), color_space="y", crop_border=4)
    pi = iqa4k.create_metric("pi", model_path=str(model_file))(x).double()
    assert pi.item() == pytest.approx(0.5 * ((10 - ma.item()) + natural.item()), abs=1e-6)


def test_registry_entries():
    nrqm, pi = METRICS["nrqm"], METRICS["pi"]
    assert (nrqm.kind, nrqm.higher_is_better, nrqm.score_range) == ("NR", True, (0.0, 10.0))
    assert (pi.kind, pi.higher_is_better, pi.score_range) == ("NR", False, (0.0, math.inf))
    for spec in (nrqm, pi):
        assert spec.defaults == {
            "color_space": "y",
            "quantize": True,
            "crop_border": 4,
            "data_range": 1.0,
            "model_path": "",
            "download": False,
        }
        assert spec.setup is not None and "Ma" in spec.citation
    assert "PIRM" in pi.citation


@pytest.mark.parametrize("name", ["nrqm", "pi"])
def test_missing_model_fails_at_creation_with_instructions(tmp_path, monkeypatch, name):
    monkeypatch.setenv("IQA4K_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("IQA4K_OFFLINE", raising=False)
    with pytest.raises(WeightsNotFoundError) as err:
        iqa4k.create_metric(name)
    text = str(err.value)
    assert "model.mat" in text and str(tmp_path / "cache" / "nrqm") in text
    assert weights.REGISTRY["nrqm"].url in text
    assert "create_metric('nrqm', model_path=" in text and "download=True" in text


def test_too_small_image_is_an_input_error(model_file):
    metric = iqa4k.create_metric("nrqm", model_path=str(model_file))
    with pytest.raises(InputError, match="at least"):
        metric(torch.rand(1, 3, 60, 60))


# --------------------------------------------------------------------------------- features


def test_ggd_table_lookup_known_shapes():
    ratios = torch.tensor([math.pi / 2, 2.0, 0.0, 1e12, float("nan")], dtype=torch.float64)
    # Gaussian (g = 2): r = pi / 2; Laplacian (g = 1): r = 2; beyond the table: its ends.
    assert nf.ggd_shape_from_ratio(ratios).tolist() == pytest.approx([2.0, 1.0, 10.0, 0.03, 0.03])


def test_block_dct_of_a_zero_image():
    # Every window is zero: shape ratio 0 -> g = 10 (table end), coefficient variations 0.
    assert nf.block_dct_features(torch.zeros(30, 40, dtype=torch.float64)).tolist() == [
        10.0,
        10.0,
        0.0,
        0.0,
        0.0,
        0.0,
    ]


def test_block_dct_statistics_of_a_centred_impulse():
    # A 3x3 image with a 1 in the middle is one blkproc window: a 7x7 block with a centred
    # impulse, whose DCT is c_k c_l cos(pi k / 2) cos(pi l / 2): nonzero only for even k, l.
    im = torch.zeros(3, 3, dtype=torch.float64)
    im[1, 1] = 1.0
    shape, cv, ori = nf.dct_block_statistics(im)
    c = [math.sqrt(1 / 7)] + [math.sqrt(2 / 7)] * 6

    def coefficient(k: int, m: int) -> float:
        if k % 2 or m % 2:
            return 0.0
        return c[k] * c[m] * (-1) ** ((k + m) // 2)

    ac = [coefficient(k, m) for k in range(7) for m in range(7)][1:]
    magnitudes = [abs(v) for v in ac]
    assert sum(v > 0 for v in magnitudes) == 15
    expected_cv = statistics.stdev(magnitudes) / (statistics.fmean(magnitudes) + 1e-7)
    assert cv.item() == pytest.approx(expected_cv)
    groups = [
        [(0, 1), (0, 2), (0, 3), (0, 4), (0, 5), (0, 6), (1, 2), (1, 3), (1, 4), (1, 5), (1, 6)]
        + [(2, 4), (2, 5), (2, 6), (3, 5), (3, 6)],
        [(1, 1), (2, 2), (2, 3), (3, 2), (3, 3), (3, 4), (4, 3), (4, 4), (4, 5), (4, 6)]
        + [(5, 4), (5, 5), (5, 6), (6, 4), (6, 5), (6, 6)],
    ]
    groups.append([(m, k) for k, m in groups[0]])
    rho = []
    for group in groups:
        values = [abs(coefficient(k, m)) for k, m in group]
        rho.append(statistics.stdev(values) / (statistics.fmean(values) + 1e-8))
    assert rho[0] == rho[2]  # the impulse is symmetric
    assert ori.item() == pytest.approx(statistics.variance(rho))
    mean = statistics.fmean(ac)
    ratio = statistics.variance(ac) / (statistics.fmean(abs(v - mean) for v in ac) ** 2 + 1e-7)
    assert shape.item() == nf.ggd_shape_from_ratio(torch.tensor(ratio)).item()


def _windows_by_loop(im: np.ndarray):
    """blkproc(im, [3 3], [2 2], fun) written out window by window with scipy's DCT."""
    h, w = im.shape
    padded = np.zeros((3 * math.ceil(h / 3) + 4, 3 * math.ceil(w / 3) + 4))
    padded[2 : 2 + h, 2 : 2 + w] = im
    shapes, cvs, oris = [], [], []
    sets = [[k * 7 + m for k, m in zip(*np.nonzero(mask), strict=True)] for mask in _masks()]
    for i in range(math.ceil(h / 3)):
        for j in range(math.ceil(w / 3)):
            d = scipy.fft.dctn(padded[3 * i : 3 * i + 7, 3 * j : 3 * j + 7], norm="ortho")
            flat = d.reshape(-1)
            ac = flat[1:]
            rho = np.var(ac, ddof=1) / (np.mean(np.abs(ac - ac.mean())) ** 2 + 1e-7)
            shapes.append(rho)
            cvs.append(np.std(np.abs(ac), ddof=1) / (np.mean(np.abs(ac)) + 1e-7))
            g = [np.std(np.abs(flat[s]), ddof=1) / (np.mean(np.abs(flat[s])) + 1e-8) for s in sets]
            oris.append(np.var(g, ddof=1))
    ratio = torch.tensor(shapes, dtype=torch.float64)
    return nf.ggd_shape_from_ratio(ratio).numpy(), np.array(cvs), np.array(oris)


def _masks() -> list[np.ndarray]:
    """oriented{1,2,3}_dct_rho_config3's 7x7 groups as masks (MATLAB rows 1-based -> 0-based)."""
    m1 = np.zeros((7, 7), bool)
    for row, first in [(0, 1), (1, 2), (2, 4), (3, 5)]:
        m1[row, first:] = True
    m2 = np.zeros((7, 7), bool)
    for row, (a, b) in {1: (1, 2), 2: (2, 4), 3: (2, 5), 4: (3, 7), 5: (4, 7), 6: (4, 7)}.items():
        m2[row, a:b] = True
    return [m1, m2, m1.T]


def test_block_dct_statistics_match_a_window_by_window_loop(rng):
    im = rng.random((20, 23))
    ours = nf.dct_block_statistics(torch.from_numpy(im))
    for a, b in zip(ours, _windows_by_loop(im), strict=True):
        assert a.numpy() == pytest.approx(b, rel=1e-10, abs=1e-12)


def test_block_dct_pooling_uses_matlab_indices(rng):
    im = rng.random((31, 29))  # 11 x 10 = 110 windows
    shape, cv, ori = (np.sort(v) for v in _windows_by_loop(im))
    n = 110
    first, last = math.ceil(n * 0.1), int(n * 0.9)  # 11 lowest; sorted(99:end), 1-based
    assert (first, last) == (11, 99)
    expected = [
        shape[:first].mean(),
        shape.mean(),
        cv[last - 1 :].mean(),
        cv.mean(),
        ori[last - 1 :].mean(),
        ori.mean(),
    ]
    assert nf.block_dct_features(torch.from_numpy(im)).numpy() == pytest.approx(expected)


def test_spatial_scales_are_zero_padded_gaussian_then_even_samples():
    im = torch.ones(8, 10, dtype=torch.float64)
    s1, s2, s3 = nf.spatial_scales(im)
    assert s2.shape == (4, 5) and s3.shape == (2, 2)
    g = np.exp(-np.array([1.0, 0.0, 1.0]) / (2 * 0.25))
    g /= g.sum()
    # Interior samples keep the constant; the last row/column touches the zero padding.
    assert s2[0, 0].item() == pytest.approx(1.0)
    assert s2[-1, 0].item() == pytest.approx(g[0] + g[1])  # row 7: rows 6, 7 and a zero row
    assert s2[-1, -1].item() == pytest.approx((g[0] + g[1]) ** 2)


def test_patch_singular_values_by_hand():
    flat = nf.patch_singular_values(torch.full((10, 10), 0.5, dtype=torch.float64))
    assert flat[0].item() == pytest.approx(0.5 * 10) and flat[1:].abs().max() < 1e-12
    # 6x5 ones: one full patch and one with a single row of ones (zero padding below).
    # Gram matrix [[25, 5], [5, 5]]: eigenvalues 15 +- sqrt(125).
    sv = nf.patch_singular_values(torch.ones(6, 5, dtype=torch.float64))
    assert sv.shape == (2,)
    assert sv.tolist() == pytest.approx([math.sqrt(15 + math.sqrt(125)), math.sqrt(15 - 125**0.5)])


def test_patch_singular_values_match_numpy_svd(rng):
    im = rng.random((23, 31))
    padded = np.zeros((25, 35))
    padded[:23, :31] = im
    cols = padded.reshape(5, 5, 7, 5).transpose(1, 3, 0, 2).reshape(25, -1)
    expected = np.linalg.svd(cols, compute_uv=False)
    assert nf.patch_singular_values(torch.from_numpy(im)).numpy() == pytest.approx(expected)


@pytest.mark.parametrize("size", [(64, 64), (63, 80), (97, 131)])
def test_steerable_pyramid_inverts_and_is_a_tight_frame(rng, size):
    x = torch.from_numpy(rng.random(size) * 255)
    pyr = build_sf_pyramid(x, height=2, order=5)
    assert [b.shape for b in (pyr.highpass, pyr.bands[0][0], pyr.bands[1][5])] == [
        size,
        size,
        tuple(math.ceil((n - 0.5) / 2) for n in size),
    ]
    # Exact up to the lookup tables' linear interpolation of the masks (about 1e-6).
    recon = reconstruct_sf_pyramid(pyr)
    assert (recon - x).abs().max().item() < 1e-4 * 255
    weighted = pyr.highpass.square().sum() + sum(
        b.square().sum() * b.numel() / x.numel() for level in pyr.bands for b in level
    )
    weighted += pyr.lowpass.square().sum() * pyr.lowpass.numel() / x.numel()
    assert weighted.item() == pytest.approx(x.square().sum().item(), rel=1e-5)


def _literal_sf_pyramid(im: np.ndarray, height: int, order: int):
    """buildSFpyr / buildSFpyrLevs step by step: centred spectrum, one inverse FFT per band."""

    def point_op(v, lut, origin, step):
        pos = (v - origin) / step
        i = np.clip(np.trunc(pos), 0, len(lut) - 2).astype(int)
        return lut[i] + (lut[i + 1] - lut[i]) * (pos - i)

    h, w = im.shape
    ctr = [math.ceil((n + 0.5) / 2) for n in (h, w)]
    xx, yy = np.meshgrid(
        (np.arange(1, w + 1) - ctr[1]) / (w / 2), (np.arange(1, h + 1) - ctr[0]) / (h / 2)
    )
    angle = np.arctan2(yy, xx)
    rad = np.sqrt(xx**2 + yy**2)
    rad[ctr[0] - 1, ctr[1] - 1] = rad[ctr[0] - 1, ctr[1] - 2]
    log_rad = np.log2(rad)
    x = np.pi * np.arange(-257, 2) / 512  # rcosFn(1, -1/2, [0 1])
    y = np.cos(x) ** 2
    y[0], y[-1] = y[1], y[-2]
    xr = -0.5 + (2 / np.pi) * (x + np.pi / 4)
    yr = np.sqrt(y)
    yir = np.sqrt(1 - yr**2)
    nb = order + 1
    xc = np.pi * np.arange(-2049, 1026) / 1024
    const = 2 ** (2 * order) * math.factorial(order) ** 2 / (nb * math.factorial(2 * order))
    yc = np.sqrt(const) * np.cos(xc) ** order
    dft = np.fft.fftshift(np.fft.fft2(im))
    hi0 = np.fft.ifft2(np.fft.ifftshift(dft * point_op(log_rad, yr, xr[0], xr[1] - xr[0]))).real
    lo = dft * point_op(log_rad, yir, xr[0], xr[1] - xr[0])
    bands = []
    for _ in range(height):
        xr = xr - 1
        himask = point_op(log_rad, yr, xr[0], xr[1] - xr[0])
        level = []
        for b in range(nb):
            amask = point_op(angle, yc, xc[0] + np.pi * b / nb, xc[1] - xc[0])
            banddft = (-1j) ** order * lo * amask * himask
            level.append(np.fft.ifft2(np.fft.ifftshift(banddft)).real)
        bands.append(level)
        box = []
        for n in lo.shape:
            c, d = math.ceil((n + 0.5) / 2), math.ceil((n - 0.5) / 2)
            start = c - math.ceil((d + 0.5) / 2)
            box.append(slice(start, start + d))
        log_rad, angle, lo = log_rad[tuple(box)], angle[tuple(box)], lo[tuple(box)]
        lo = lo * point_op(log_rad, yir, xr[0], xr[1] - xr[0])
    return hi0, bands, np.fft.ifft2(np.fft.ifftshift(lo)).real


@pytest.mark.parametrize("size", [(64, 64), (63, 80), (97, 131)])
def test_steerable_pyramid_matches_a_literal_transcription(rng, size):
    im = rng.random(size) * 255
    hi0, bands, low = _literal_sf_pyramid(im, 2, 5)
    pyr = build_sf_pyramid(torch.from_numpy(im), height=2, order=5)
    assert pyr.highpass.numpy() == pytest.approx(hi0, abs=1e-10)
    for ours, theirs in zip(pyr.bands, bands, strict=True):
        for a, b in zip(ours, theirs, strict=True):
            assert a.numpy() == pytest.approx(b, abs=1e-10)
    assert pyr.lowpass.numpy() == pytest.approx(low, abs=1e-10)


def test_steerable_pyramid_of_a_batch_equals_each_image(rng):
    batch = torch.from_numpy(rng.random((2, 40, 52)))
    both = build_sf_pyramid(batch, height=2, order=5)
    for k in range(2):
        one = build_sf_pyramid(batch[k], height=2, order=5)
        assert torch.allclose(both.bands[1][3][k], one.bands[1][3], atol=1e-12)
        assert torch.allclose(both.highpass[k], one.highpass, atol=1e-12)
    assert torch.allclose(reconstruct_sf_pyramid(both), batch, atol=1e-3)


def test_steerable_bands_of_a_constant_image_vanish():
    pyr = build_sf_pyramid(torch.full((64, 48), 7.0, dtype=torch.float64), height=2, order=5)
    assert max(b.abs().max().item() for level in pyr.bands for b in level) < 1e-10
    assert pyr.highpass.abs().max().item() < 1e-10


def _literal_normalization(band, parent, siblings, guard):
    """``norm_sender_normalized.m`` for one band, whole arrays at once (NumPy)."""
    nv, nh = band.shape[0] - 2, band.shape[1] - 2
    columns = [band[dy : dy + nv, dx : dx + nh] for dy in range(3) for dx in range(3)]
    columns += [s[1 : 1 + nv, 1 : 1 + nh] for s in ([parent] if parent is not None else [])]
    columns += [s[1 : 1 + nv, 1 : 1 + nh] for s in siblings]
    y = np.stack([c.ravel() for c in columns], axis=1)
    cov = y.T @ y / y.shape[0]
    lam, q = np.linalg.eigh((cov + cov.T) / 2)
    positive = np.where(lam > 0, lam, 0.0)
    cov = (q * (positive * lam.sum() / positive.sum())) @ q.T
    u, s, vt = np.linalg.svd(cov)
    inverse = (vt.T * np.where(s > max(cov.shape) * np.spacing(s.max()), 1 / s, 0.0)) @ u.T
    z = np.sqrt(np.einsum("ij,jk,ik->i", y, inverse, y) / (9 + (parent is not None)))
    centre = band[1 : 1 + nv, 1 : 1 + nh]
    g = ((centre.ravel() - centre.mean()) / z).reshape(nv, nh)
    g = g[guard : nv - guard, guard : nh - guard]
    return g - g.mean()


def test_level_normalisation_in_place_matches_a_literal_transcription(rng, monkeypatch):
    # Small blocks: results are written back over the bands one block late, across many
    # blocks; every band must still see its siblings' raw values.
    monkeypatch.setattr(nf, "_ROW_CHUNK_SAMPLES", 100)
    raw = [rng.standard_normal((60, 70)) for _ in range(6)]
    parents = [rng.standard_normal((60, 70)) for _ in range(5)] + [None]
    bands = [torch.from_numpy(b.copy()) for b in raw]
    ours = nf._normalize_level_in_place(
        bands, [None if p is None else torch.from_numpy(p) for p in parents], guard=16
    )
    for o, g in enumerate(ours):
        expected = _literal_normalization(raw[o], parents[o], raw[:o] + raw[o + 1 :], 16)
        assert g.shape == (60 - 2 - 32, 70 - 2 - 32) and abs(g.mean().item()) < 1e-12
        assert np.abs(g.numpy() - expected).max() < 1e-11


def test_divisive_normalisation_is_proportional_to_scale(rng):
    raw = [torch.from_numpy(rng.standard_normal((60, 70))) for _ in range(6)]
    g = nf._normalize_level_in_place([b.clone() for b in raw], [None] * 6, guard=8)
    scaled = nf._normalize_level_in_place([7 * b for b in raw], [None] * 6, guard=8)
    # z = sqrt(y' C^-1 y / N) does not change with the scale, so the result scales with it.
    assert max((s - 7 * a).abs().max().item() for s, a in zip(scaled, g, strict=True)) < 1e-9


def test_chunked_and_stripped_paths_match_whole_arrays(rng, monkeypatch):
    # The memory-bounding chunk sizes must not change any feature beyond rounding.
    im = torch.from_numpy(rng.random((150, 170)) * 255)
    reference = torch.cat(nf.nrqm_features(im))
    monkeypatch.setattr(nf, "_BLOCK_CHUNK", 7)
    monkeypatch.setattr(nf, "_ROW_CHUNK_SAMPLES", 300)
    monkeypatch.setattr(nf, "_STRIP_ROWS", 3)
    chunked = torch.cat(nf.nrqm_features(im))
    assert (chunked - reference).abs().max().item() < 1e-9


def test_features_move_only_in_the_last_bits_with_threads_and_simd_paths(rng):
    # The QR of the patch matrix and the products split work across threads, and OpenCV's
    # float64 filters round differently on its optimised and baseline paths: the features
    # may differ in their last bits, never more.
    import cv2

    im = torch.from_numpy(np.round(rng.random((180, 240)) * 255))
    before, optimised = torch.get_num_threads(), cv2.useOptimized()
    results = []
    try:
        for threads, simd in ((2, True), (1, True), (2, False), (1, False)):
            torch.set_num_threads(threads)
            cv2.setUseOptimized(simd)
            results.append(torch.cat(nf.nrqm_features(im)))
    finally:
        torch.set_num_threads(before)
        cv2.setUseOptimized(optimised)
    for other in results[1:]:
        assert ((other - results[0]).abs() / results[0].abs()).max().item() < 1e-13


def test_structure_means_do_not_depend_on_the_worker_threads(rng, monkeypatch):
    # strips are summed in their order, whichever thread filtered them
    from iqa4k.classic import backend

    monkeypatch.setattr(nf, "_STRIP_ROWS", 5)
    images = [torch.from_numpy(rng.random((60, 50)) * 255) for _ in range(3)]
    pairs = [(0, 2), (1, 2), (0, 1)]
    two = nf._structure_means(images, pairs)
    monkeypatch.setattr(backend, "THREADS", 1)
    assert torch.equal(nf._structure_means(images, pairs), two)


def test_gaussian_window_torch_and_opencv_paths_agree(rng):
    x = torch.from_numpy(rng.random((40, 50)))
    fast = torch.from_numpy(nf._gauss_valid(x.numpy(), 0.5))  # NumPy: OpenCV (CPU inference)
    slow = nf._gauss_valid(x, 0.5)  # a tensor: conv2d, any device
    assert fast.shape == (30, 40) and (fast - slow).abs().max().item() < 1e-12


def test_structure_means_numpy_and_torch_paths_agree(rng, monkeypatch):
    # CPU inference sums NumPy strips on two threads; the torch path serves other devices
    monkeypatch.setattr(nf, "_STRIP_ROWS", 7)
    images = [torch.from_numpy(rng.random((40, 50)) * 255) for _ in range(3)]
    pairs = [(0, 2), (1, 2), (0, 1)]
    fast = nf._structure_means(images, pairs)
    slow = nf._structure_means([x.clone().requires_grad_() for x in images], pairs).detach()
    assert fast.shape == (3,) and (fast - slow).abs().max().item() < 1e-12


def test_features_have_the_official_sizes_and_ranges():
    luma = torch.round(rgb_to_y(_coffee().double())[0, 0] * 255)
    f1, f2, f3 = nf.nrqm_features(luma)
    assert (f1.numel(), f2.numel(), f3.numel()) == (18, 45, 75)
    assert ((f2[:18] >= 0.03) & (f2[:18] <= 10)).all() and (f2[18:] <= 1).all()
    assert all((f3[25 * s : 25 * s + 24] >= f3[25 * s + 1 : 25 * s + 25]).all() for s in range(3))


def _letterboxed_luma() -> torch.Tensor:
    luma = torch.round(rgb_to_y(_coffee().double())[0, 0] * 255)
    luma[:40] = luma[-40:] = 16  # video black bars: exactly flat areas
    return luma


def _posterised_luma() -> torch.Tensor:
    x = load_rgb(fixture_path("calibration_flat", "dist", "I08.bmp"), torch.float64)
    return torch.round(rgb_to_y(x)[0, 0] * 255)[4:-4, 4:-4]


@pytest.mark.parametrize("image", [_letterboxed_luma, _posterised_luma])
def test_features_do_not_depend_on_the_fft_implementation(image, monkeypatch):
    # In flat areas the bands are rounding noise of the FFT; the features must not follow
    # it. Another FFT (scipy's pocketfft instead of torch's) must give the same features.
    luma = image()
    reference = torch.cat(nf.nrqm_features(luma))

    def fft2(x, out=None):
        return torch.from_numpy(scipy.fft.fft2(x.numpy()))

    def ifft2(x, out=None):
        y = torch.from_numpy(scipy.fft.ifft2(x.numpy()))
        return y if out is None else out.copy_(y)

    monkeypatch.setattr(torch.fft, "fft2", fft2)
    monkeypatch.setattr(torch.fft, "ifft2", ifft2)
    other = torch.cat(nf.nrqm_features(luma))
    assert not torch.equal(other, reference)  # the FFT did change the rounding
    assert ((other - reference).abs() / reference.abs()).max().item() < 1e-11


# ---------------------------------------------------------------------- the metric extension


def test_metric_setup_runs_once_at_creation_and_feeds_every_call():
    calls = []

    def setup(options):
        calls.append(dict(options))
        return Setup({"offset": options["base"] + 1.0})

    def function(x, *, offset):
        return x.flatten(1).mean(1) + offset

    spec = MetricSpec(
        name="dummy",
        kind="NR",
        higher_is_better=True,
        score_range=(0.0, 1.0),
        differentiable=False,
        summary="test",
        citation="test",
        function=function,
        options={"base": Option(1.0, "base"), "data_range": Option(1.0, "range")},
        setup=setup,
        range_option="data_range",
    )
    metric = Metric(spec, base=2.0)
    assert calls == [{"base": 2.0}]  # the range option is not a call option
    x = torch.zeros(2, 3, 8, 8)
    assert metric(x).tolist() == [3.0, 3.0] and metric(x).tolist() == [3.0, 3.0]
    assert len(calls) == 1


def test_nrqm_entry_has_no_invented_checksum():
    entry = weights.REGISTRY["nrqm"]
    assert entry.filename == "model.mat" and entry.sha256 is None
    # the id chaoma99/sr-metric's tree lists for model.mat (commit 51218db)
    assert entry.git_blob == "a852aefb6a49e52703044fee4fa60c3f5b8d5adc"
    assert entry.url.startswith("https://") and "chaoma99/sr-metric" in entry.url
    assert "MIT" in entry.licence


# ----------------------------------------------------------------- official reference values


def _real_model() -> Path:
    given = os.environ.get("IQA4K_NRQM_MODEL")
    if given:
        return Path(given)
    cached = weights.cache_path("nrqm")
    if cached.is_file():
        return cached
    pytest.skip(
        "Ma et al.'s model.mat is not available: set IQA4K_NRQM_MODEL=/path/to/model.mat or "
        f"put it at {cached} to check the official NRQM/PI values"
    )


@pytest.mark.parametrize("metric", ["nrqm", "pi"])
@pytest.mark.parametrize("image", ["I03.bmp", "I04.bmp"])
def test_matches_official_values_with_the_real_model(metric, image):
    model = _real_model()
    with fixture_path("calibration", "reference_scores.csv").open() as f:
        official = {row["metric"]: row for row in csv.DictReader(f)}[metric][image]
    x = load_rgb(fixture_path("calibration", "dist", image), torch.float64)
    score = iqa4k.create_metric(metric, model_path=str(model))(x).item()
    assert score == pytest.approx(float(official), abs=0.01 if metric == "nrqm" else 0.02)


def test_loader_reads_a_v73_model_mat_like_a_v7_one(tmp_path):
    """MATLAB's ``save -v7.3`` writes HDF5; the same forests read from either file agree."""
    from .test_matfile import save_v73

    forests = [_forest([TREE_A, TREE_B]), _forest([TREE_D, TREE_C]), _forest([TREE_E])]
    cell = np.empty((1, 3), dtype=object)
    for i, forest in enumerate(forests):
        cell[0, i] = forest
    linear = np.array(LINEAR, dtype=np.float64).reshape(-1, 1)
    save_v73(tmp_path / "v73.mat", {"model": {"rf": cell, "linear": linear}})
    new = nrqm_mod.load_model(tmp_path / "v73.mat")
    old = nrqm_mod.load_model(_write_model(tmp_path / "v7.mat", forests))
    assert new.linear.tolist() == old.linear.tolist() == LINEAR
    for a, b in zip(new.forests, old.forests, strict=True):
        for field in ("left", "right", "status", "threshold", "value", "var", "coef"):
            assert np.array_equal(getattr(a, field), getattr(b, field)), field
    xs = np.stack([_vector(18, x1=0.6, x2=-1.0, x3=10.5), _vector(18, x1=2.0, x3=-3.0)])
    assert new.forests[0].predict(xs).tolist() == old.forests[0].predict(xs).tolist()

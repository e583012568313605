"""iqa4k.stats: values checked against scipy, known curves and closed forms."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from iqa4k.errors import InputError, OptionError
from iqa4k.stats import (
    bootstrap_ci,
    compare,
    evaluate,
    fit_logistic,
    krcc,
    mae,
    plcc,
    rmse,
    srcc,
    williams_test,
)


def _correlated(n: int, rho: float = 0.6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mos = rng.normal(size=n)
    pred = rho * mos + math.sqrt(1 - rho**2) * rng.normal(size=n)
    return pred, mos


def _vqeg5(x, b1, b2, b3, b4, b5):
    return b1 * (0.5 - 1 / (1 + np.exp(b2 * (x - b3)))) + b4 * x + b5


def _vqeg4(x, b1, b2, b3, b4):
    return (b1 - b2) / (1 + np.exp(-(x - b3) / abs(b4))) + b2


# ----------------------------------------------------------------------------- correlations


@pytest.mark.parametrize("ties", [False, True])
def test_correlations_match_scipy(ties):
    pred, mos = _correlated(200, seed=1)
    if ties:  # coarse scores, like MOS on a 5-point scale
        pred, mos = np.round(pred, 1), np.round(mos * 2) / 2
    assert srcc(pred, mos) == pytest.approx(sps.spearmanr(pred, mos)[0], abs=1e-12)
    assert krcc(pred, mos) == pytest.approx(sps.kendalltau(pred, mos)[0], abs=1e-12)
    assert plcc(pred, mos) == pytest.approx(sps.pearsonr(pred, mos)[0], abs=1e-12)


def test_perfect_and_reversed_orderings():
    x = np.arange(1.0, 21.0)
    for f in (srcc, krcc):
        assert f(x, x**3) == pytest.approx(1.0)
        assert f(x, -np.exp(x / 4)) == pytest.approx(-1.0)
    assert plcc(x, 3 * x + 2) == pytest.approx(1.0)
    assert plcc(x, -x) == pytest.approx(-1.0)


def test_accepts_lists_and_tensors():
    pred, mos = [1.0, 2.0, 4.0, 3.0], [1.0, 3.0, 5.0, 4.5]
    assert srcc(pred, mos) == pytest.approx(1.0)
    torch = pytest.importorskip("torch")
    t = torch.tensor(pred, requires_grad=True)
    assert plcc(t, torch.tensor(mos)) == pytest.approx(plcc(pred, mos))


def test_rmse_mae_by_hand():
    pred, mos = [1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 4.0, 2.0]  # errors 0, 0, -1, 2
    assert rmse(pred, mos) == pytest.approx(math.sqrt(5 / 4))
    assert mae(pred, mos) == pytest.approx(3 / 4)


def test_constant_input_gives_nan_not_an_error():
    assert math.isnan(srcc([1, 1, 1, 1], [1, 2, 3, 4]))
    assert math.isnan(krcc([1, 2, 3, 4], [2, 2, 2, 2]))
    assert math.isnan(plcc([0.1, 0.1, 0.1], [1, 2, 3]))  # mean(0.1 x 3) != 0.1 in floats


# --------------------------------------------------------------------------- logistic fit


@pytest.mark.parametrize("scale", [1.0, 5000.0])
def test_5pl_recovers_a_known_curve(scale):
    rng = np.random.default_rng(2)
    u = rng.uniform(size=300)
    true = (4.0, 20.0 / scale, 0.5 * scale, 0.5 / scale, 3.0)  # steep: strongly nonlinear
    mos = _vqeg5(u * scale, *true) + rng.normal(scale=0.03, size=u.size)
    fit = fit_logistic(u * scale, mos, params=5)
    assert fit.converged, fit.message
    grid = np.linspace(0, scale, 201)
    assert np.max(np.abs(fit.predict(grid) - _vqeg5(grid, *true))) < 0.1  # MOS spans ~4.5
    assert fit.coef[2] == pytest.approx(0.5 * scale, rel=0.03)  # coef in the caller's units
    assert plcc(fit.predict(u * scale), mos) > plcc(u, mos) + 0.02


@pytest.mark.parametrize("scale", [1.0, 5000.0])
def test_4pl_recovers_a_known_curve(scale):
    rng = np.random.default_rng(3)
    u = rng.uniform(size=300)
    true = (5.0, 1.0, 0.4 * scale, 0.06 * scale)
    mos = _vqeg4(u * scale, *true) + rng.normal(scale=0.03, size=u.size)
    fit = fit_logistic(u * scale, mos, params=4)
    assert fit.converged, fit.message
    grid = np.linspace(0, scale, 201)
    assert np.max(np.abs(fit.predict(grid) - _vqeg4(grid, *true))) < 0.1
    assert np.allclose(fit.coef, true, rtol=0.05)
    assert plcc(fit.predict(u * scale), mos) > plcc(u, mos) + 0.02


@pytest.mark.parametrize("params", [4, 5])
def test_fit_of_a_decreasing_relation(params):
    rng = np.random.default_rng(4)
    u = rng.uniform(size=200)
    mos = _vqeg4(u, 1.0, 5.0, 0.5, 0.1) + rng.normal(scale=0.03, size=u.size)  # decreasing
    fit = fit_logistic(u, mos, params=params)
    assert fit.converged, fit.message
    assert rmse(fit.predict(u), mos) < 0.05
    assert plcc(fit.predict(u), mos) > 0.99


def test_constant_pred_fails_cleanly_with_a_linear_fallback():
    mos = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 2.5])
    fit = fit_logistic(np.full(6, 7.0), mos)
    assert not fit.converged and "distinct" in fit.message
    assert np.allclose(fit.predict([0.0, 7.0, 1e6]), mos.mean())
    ev = evaluate(np.full(6, 7.0), mos, n_boot=50)
    assert math.isnan(ev.srcc) and math.isnan(ev.plcc_raw) and math.isnan(ev.plcc)
    assert ev.rmse == pytest.approx(mos.std())
    assert ev.mae == pytest.approx(np.mean(np.abs(mos - mos.mean())))
    json.dumps(ev.to_dict(), allow_nan=False)  # NaN is written as null


@pytest.mark.parametrize("params", [4, 5])
def test_three_distinct_values_never_raise(params):
    rng = np.random.default_rng(5)
    pred = rng.integers(0, 3, size=40).astype(float)
    mos = pred + rng.normal(scale=0.5, size=40)
    fit = fit_logistic(pred, mos, params=params)
    assert not fit.converged and fit.message
    slope, intercept = np.polyfit(pred, mos, 1)
    assert np.allclose(fit.predict(pred), slope * pred + intercept)
    ev = evaluate(pred, mos, fit=f"{params}pl", n_boot=100)
    assert ev.plcc == pytest.approx(abs(ev.plcc_raw))  # a line keeps |r|
    assert all(math.isfinite(v) for v in (ev.srcc, ev.krcc, ev.plcc, ev.rmse, ev.mae))
    assert all(math.isfinite(v) for v in ev.ci["srcc"])


def test_fit_never_raises_on_tiny_or_wild_inputs():
    for pred, mos in [([1.0, 2.0, 3.0], [3.0, 1.0, 2.0]), ([0, 1e-300, 1e300], [1, 2, 3])]:
        for params in (4, 5):
            fit = fit_logistic(pred, mos, params)
            assert np.all(np.isfinite(fit.predict(pred))) or not fit.converged


# ------------------------------------------------------------------------------- bootstrap


def test_bootstrap_ci_contains_estimate_and_is_deterministic():
    pred, mos = _correlated(300, seed=6)
    for f in (srcc, krcc, plcc, rmse):
        lo, hi = bootstrap_ci(f, pred, mos, n_boot=500, seed=1)
        assert lo < f(pred, mos) < hi
        assert bootstrap_ci(f, pred, mos, n_boot=500, seed=1) == (lo, hi)
        assert bootstrap_ci(f, pred, mos, n_boot=500, seed=2) != (lo, hi)
        assert bootstrap_ci(f.__name__, pred, mos, n_boot=500, seed=1) == (lo, hi)


def test_bootstrap_ci_narrows_with_n():
    widths = []
    for n in (100, 1000):
        lo, hi = bootstrap_ci(srcc, *_correlated(n, seed=7), n_boot=500)
        widths.append(hi - lo)
    assert widths[1] < 0.5 * widths[0]  # ~ 1/sqrt(10) in theory


def test_bootstrap_pearson_width_matches_fisher_z():
    pred, mos = _correlated(200, rho=0.6, seed=8)
    r = plcc(pred, mos)
    half = 1.959964 / math.sqrt(200 - 3)  # Fisher: atanh(r) is ~normal with sd 1/sqrt(n-3)
    fisher = math.tanh(math.atanh(r) + half) - math.tanh(math.atanh(r) - half)
    lo, hi = bootstrap_ci(plcc, pred, mos, n_boot=2000)
    assert 0.7 < (hi - lo) / fisher < 1.3


@pytest.mark.parametrize(
    ("fast", "slow"),
    [
        (srcc, lambda p, m: sps.spearmanr(p, m)[0]),
        (krcc, lambda p, m: sps.kendalltau(p, m)[0]),
        (plcc, lambda p, m: sps.pearsonr(p, m)[0]),
    ],
)
def test_vectorised_bootstrap_equals_the_plain_loop(fast, slow):
    pred, mos = _correlated(60, seed=9)
    pred, mos = np.round(pred, 1), np.round(mos, 1)  # ties, made worse by resampling
    assert bootstrap_ci(fast, pred, mos, n_boot=200) == pytest.approx(
        bootstrap_ci(slow, pred, mos, n_boot=200), abs=1e-12
    )


def test_bootstrap_drops_undefined_resamples():
    # With 4 points about 1 in 64 resamples is constant (srcc undefined): dropped, not NaN.
    lo, hi = bootstrap_ci(srcc, [1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0], n_boot=300)
    assert math.isfinite(lo) and math.isfinite(hi) and lo <= hi


# ------------------------------------------------------------------------------ evaluate


def test_evaluate_values_and_json():
    rng = np.random.default_rng(10)
    u = rng.uniform(size=200)
    mos = _vqeg5(u, 4.0, 20.0, 0.5, 0.5, 3.0) + rng.normal(scale=0.2, size=u.size)
    ev = evaluate(u * 1000, mos, n_boot=300)
    assert ev.n == 200 and ev.fit is not None and ev.fit.converged
    assert ev.srcc == pytest.approx(srcc(u, mos)) and ev.krcc == pytest.approx(krcc(u, mos))
    assert ev.plcc_raw == pytest.approx(plcc(u, mos))
    fitted = ev.fit.predict(u * 1000)
    assert ev.plcc == pytest.approx(plcc(fitted, mos)) and ev.plcc > ev.plcc_raw
    assert ev.rmse == pytest.approx(rmse(fitted, mos)) and ev.rmse == pytest.approx(0.2, rel=0.2)
    assert ev.mae == pytest.approx(mae(fitted, mos))
    for name in ("srcc", "krcc", "plcc", "rmse"):
        lo, hi = ev.ci[name]
        assert lo < getattr(ev, name) < hi
    # same resamples as bootstrap_ci with the same seed
    assert ev.ci["srcc"] == pytest.approx(bootstrap_ci(srcc, u, mos, n_boot=300))
    d = json.loads(json.dumps(ev.to_dict()))
    assert d["fit"]["converged"] is True and len(d["ci"]["plcc"]) == 2


def test_evaluate_lower_is_better_flips_the_sign():
    pred, mos = _correlated(100, seed=11)
    up = evaluate(pred, mos, fit="4pl", n_boot=0)
    down = evaluate(-pred, mos, fit="4pl", n_boot=0, higher_is_better=False)
    assert down.negated and not up.negated and down.ci == {}
    for name in ("srcc", "krcc", "plcc_raw", "plcc", "rmse"):
        assert getattr(down, name) == pytest.approx(getattr(up, name), abs=1e-9)
    raw = evaluate(-pred, mos, fit="none", n_boot=0)
    assert raw.srcc == pytest.approx(-up.srcc) and raw.plcc == raw.plcc_raw and raw.fit is None


def test_evaluate_orients_both_directions_so_good_metrics_are_positive():
    pred, mos = _correlated(100, seed=11)
    up = evaluate(pred, mos, n_boot=0)
    for hib, mos_hib, p, m in (
        (True, False, pred, -mos),  # PSNR against a DMOS
        (False, True, -pred, mos),  # NIQE against a MOS
        (False, False, -pred, -mos),  # NIQE against a DMOS: no negation
    ):
        ev = evaluate(p, m, n_boot=0, higher_is_better=hib, mos_higher_is_better=mos_hib)
        assert ev.srcc == pytest.approx(up.srcc) and ev.plcc == pytest.approx(up.plcc, abs=1e-6)
        assert ev.negated == (hib != mos_hib)


@pytest.mark.parametrize("fit", ["5pl", "4pl", "none"])
def test_a_metric_that_runs_against_the_mos_shows_a_negative_plcc_too(fit):
    # The fitted curve may fall: PLCC after it keeps that direction instead of hiding it.
    pred, mos = _correlated(100, seed=11)
    good = evaluate(pred, mos, fit=fit, n_boot=200)
    wrong = evaluate(-pred, mos, fit=fit, n_boot=200)  # taken as higher is better: it is not
    assert wrong.srcc == pytest.approx(-good.srcc) and wrong.srcc < 0
    assert wrong.plcc == pytest.approx(-good.plcc, abs=1e-6) and wrong.plcc < 0
    if fit != "none":  # the fitted curve itself is as good (without one, RMSE is of raw scores)
        assert wrong.rmse == pytest.approx(good.rmse, rel=1e-6)
    lo, hi = wrong.ci["plcc"]
    assert lo <= wrong.plcc <= hi < 0


def test_evaluate_on_three_points():
    ev = evaluate([1.0, 2.0, 3.0], [2.0, 1.0, 3.0], n_boot=100)
    assert ev.fit is not None and not ev.fit.converged
    assert ev.srcc == pytest.approx(0.5) and math.isfinite(ev.rmse)
    # the reader is told: few images, and the 5PL fit did not happen
    assert any("only 3 images" in w for w in ev.warnings)
    assert any("logistic fit failed" in w and "straight line" in w for w in ev.warnings)


def test_evaluate_warns_on_constant_scores_and_not_on_good_data():
    pred, mos = _correlated(100, seed=14)
    assert evaluate(pred, mos, n_boot=0).warnings == ()
    flat = evaluate(np.full(100, 0.5), mos, n_boot=0)
    assert any("scores are constant (0.5)" in w for w in flat.warnings)
    negated = evaluate(np.full(100, 5.0), mos, n_boot=0, higher_is_better=False)
    assert any("scores are constant (5)" in w for w in negated.warnings)  # as given, not -5


# ----------------------------------------------------------------------------- compare


def test_compare_identical_metrics():
    pred, mos = _correlated(100, seed=12)
    for statistic in ("srcc", "plcc"):
        c = compare(pred, pred.copy(), mos, statistic=statistic, n_boot=300)
        assert c.diff == 0 and c.ci == (0.0, 0.0)
        assert c.p_value == 1.0 and c.p_williams == 1.0 and not c.significant


def test_compare_detects_the_better_metric():
    rng = np.random.default_rng(13)
    mos = rng.normal(size=300)
    good, poor = mos + 0.3 * rng.normal(size=300), mos + 1.5 * rng.normal(size=300)
    for statistic in ("srcc", "plcc"):
        c = compare(good, poor, mos, statistic=statistic, n_boot=1000)
        assert c.a > c.b and c.diff == pytest.approx(c.a - c.b)
        assert c.ci[0] > 0 and c.significant and c.p_value < 0.01 and c.p_williams < 0.01
        assert compare(poor, good, mos, statistic=statistic, n_boot=1000).diff == -c.diff
    k = compare(good, poor, mos, statistic="krcc", n_boot=200)
    assert k.significant and k.p_williams is None
    # a lower-is-better metric against a DMOS, vs a higher-is-better one: both oriented
    flipped = compare(
        -good, poor, -mos, n_boot=1000, higher_is_better_a=False, mos_higher_is_better=False
    )
    straight = compare(good, poor, mos, n_boot=1000)
    assert flipped.a == pytest.approx(straight.a) and flipped.b == pytest.approx(straight.b)
    assert flipped.a > 0 and flipped.b > 0


def test_williams_test_by_hand():
    # r_a = 0.9, r_b = 0.8, r_ab = 0.85, n = 50:
    #   |R|  = 1 - 0.81 - 0.64 - 0.7225 + 2(0.9)(0.8)(0.85) = 0.0515
    #   rbar = 0.85, rbar^2 (1 - r_ab)^3 = 0.7225 * 0.003375 = 0.0024384375
    #   den  = 2 (49/47) 0.0515 + 0.0024384375 = 0.107382979 + 0.002438438 = 0.109821416
    #   t    = 0.1 * sqrt(49 * 1.85 / 0.109821416) = 0.1 * sqrt(825.4329) = 2.87303, df = 47
    p = williams_test(0.9, 0.8, 0.85, 50)
    assert p == pytest.approx(2 * sps.t.sf(2.87303, 47), rel=1e-4)
    assert p == pytest.approx(0.00608, abs=1e-4)
    assert williams_test(0.8, 0.9, 0.85, 50) == pytest.approx(p)  # two-sided
    assert williams_test(0.7, 0.7, 0.5, 20) == 1.0


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("pred", "mos", "match"),
    [
        ([1.0, 2.0, 3.0], [1.0, 2.0], r"mismatched lengths: pred has 3, mos has 2"),
        ([1.0, 2.0, np.nan, 4.0, np.inf], [1.0] * 5, r"pred: 2 non-finite .* index 2, 4"),
        ([1.0, 2.0, 3.0], [1.0, np.nan, 3.0], r"mos: 1 non-finite .* index 1"),
        ([1.0, 2.0], [1.0, 2.0], r"at least 3"),
        ([[1.0, 2.0, 3.0]], [1.0, 2.0, 3.0], r"1-D"),
    ],
)
def test_bad_inputs_raise_input_error(pred, mos, match):
    for f in (srcc, krcc, plcc, rmse, mae, fit_logistic, evaluate):
        with pytest.raises(InputError, match=match):
            f(pred, mos)
    with pytest.raises(InputError):
        compare(pred, pred, mos)


def test_bad_options_raise_option_error():
    pred, mos = _correlated(20)
    with pytest.raises(OptionError, match="fit"):
        evaluate(pred, mos, fit="3pl")
    with pytest.raises(OptionError, match="params"):
        fit_logistic(pred, mos, params=3)
    with pytest.raises(OptionError, match="unknown statistic"):
        bootstrap_ci("spearman", pred, mos)
    with pytest.raises(OptionError, match="level"):
        bootstrap_ci(srcc, pred, mos, level=95)
    with pytest.raises(OptionError, match="statistic"):
        compare(pred, pred, mos, statistic="rmse")
    with pytest.raises(InputError, match="n >= 4"):
        williams_test(0.5, 0.4, 0.3, 3)
    with pytest.raises(InputError, match="correlation matrix"):
        williams_test(0.9, -0.9, 0.9, 30)

"""How well a metric's scores agree with human opinion scores (MOS), the way IQA papers report it.

SRCC / KRCC / PLCC, the VQEG logistic map applied before PLCC and RMSE, percentile-bootstrap
confidence intervals, and significance tests between two metrics scored on the same images.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy import optimize, special, stats

from .errors import InputError, OptionError

__all__ = [
    "Comparison",
    "Agreement",
    "LogisticFit",
    "bootstrap_ci",
    "compare",
    "evaluate",
    "fit_logistic",
    "krcc",
    "mae",
    "plcc",
    "rmse",
    "srcc",
    "orientation",
    "williams_test",
]

ArrayLike = Any  # list, tuple, numpy array or torch tensor of scores
# A kernel computes one statistic for each row of `idx` (a batch of resampled image indices).
Kernel = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]

_MIN_POINTS = 3
_CHUNK_ELEMENTS = 1 << 20  # resampled values held at once: 8 MiB per float array
_KENDALL_DENSE_MAX = 2000  # above this the n x n pair-sign matrix costs too much memory
_MAXFEV = 10_000
_FITS = {"5pl": 5, "4pl": 4, "none": 0}


# ---------------------------------------------------------------------------- input checks


def _to_numpy(x: ArrayLike) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor: drop autograd and leave the GPU before numpy sees it
        x = x.detach().cpu()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise InputError(f"cannot read scores as numbers: {e}") from e


def _paired(**named: ArrayLike) -> list[np.ndarray]:
    arrays = {name: _to_numpy(x) for name, x in named.items()}
    for name, a in arrays.items():
        if a.ndim != 1:
            raise InputError(f"{name}: expected a 1-D sequence of scores, got shape {a.shape}")
    lengths = {len(a) for a in arrays.values()}
    if len(lengths) > 1:
        desc = ", ".join(f"{name} has {len(a)}" for name, a in arrays.items())
        raise InputError(f"mismatched lengths: {desc}")
    n = lengths.pop()
    if n < _MIN_POINTS:
        raise InputError(f"need at least {_MIN_POINTS} paired scores, got {n}")
    for name, a in arrays.items():
        bad = np.flatnonzero(~np.isfinite(a))
        if bad.size:
            where = ", ".join(str(i) for i in bad[:8]) + (", ..." if bad.size > 8 else "")
            raise InputError(f"{name}: {bad.size} non-finite value(s) (NaN/inf) at index {where}")
    return list(arrays.values())


def _check_boot(n_boot: int, level: float, minimum: int = 1) -> None:
    if int(n_boot) != n_boot or n_boot < minimum:
        raise OptionError(f"n_boot must be an integer >= {minimum}, got {n_boot!r}")
    if not 0.0 < level < 1.0:
        raise OptionError(f"level must be in (0, 1), got {level!r}")


# ------------------------------------------------------------------- batched statistics


def _constant_rows(a: np.ndarray) -> np.ndarray:
    # Exact test: the mean of equal floats need not equal them, so a variance can be ~1e-33.
    return a.max(axis=-1) == a.min(axis=-1)


def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    xc = x - x.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.einsum("ij,ij->i", xc, yc) / np.sqrt(
            np.einsum("ij,ij->i", xc, xc) * np.einsum("ij,ij->i", yc, yc)
        )
    r = np.clip(r, -1.0, 1.0)
    r[_constant_rows(x) | _constant_rows(y)] = np.nan
    return r


def _plcc_kernel(x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return _pearson_rows(x[idx], y[idx])


def _draw_counts(idx: np.ndarray, n: int) -> np.ndarray:
    """w[r, i] = how many times image i was drawn in resample r."""
    rows = idx.shape[0]
    offsets = (idx + n * np.arange(rows)[:, None]).ravel()
    return np.bincount(offsets, minlength=rows * n).reshape(rows, n).astype(np.float64)


def _tie_groups(w: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Draws per distinct value of v for each row of w, and each point's value group."""
    order = np.argsort(v, kind="stable")
    new = np.r_[True, v[order][1:] != v[order][:-1]]
    group = np.empty(v.size, dtype=np.intp)
    group[order] = np.cumsum(new) - 1
    return np.add.reduceat(w[:, order], np.flatnonzero(new), axis=1), group


def _srcc_kernel(x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> np.ndarray:
    # Spearman = Pearson of average ranks (as scipy's spearmanr). Ranks within a resample follow
    # from draw counts in value order, so no per-resample sort is needed; the correlation is then
    # a count-weighted Pearson over the original images.
    w = _draw_counts(idx, x.size)
    ranks, varied = [], np.ones(len(w), dtype=bool)
    for v in (x, y):
        g, group = _tie_groups(w, v)
        ranks.append((np.cumsum(g, axis=1) - g + (g + 1) / 2)[:, group])  # average ranks
        varied &= np.count_nonzero(g, axis=1) > 1
    m = w.sum(axis=1, keepdims=True)
    dx, dy = (r - (w * r).sum(axis=1, keepdims=True) / m for r in ranks)
    sxy, sxx, syy = ((w * a * b).sum(axis=1) for a, b in ((dx, dy), (dx, dx), (dy, dy)))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = sxy / np.sqrt(sxx * syy)
    return np.where(varied, np.clip(rho, -1.0, 1.0), np.nan)


def _kendall_scipy(x: np.ndarray, y: np.ndarray) -> float:
    if x.max() == x.min() or y.max() == y.min():
        return math.nan  # tau-b is undefined; scipy would warn
    return float(stats.kendalltau(x, y)[0])  # tau-b is scipy's default variant


def _krcc_kernel(x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> np.ndarray:
    n = x.size
    if n > _KENDALL_DENSE_MAX:
        return np.array([_kendall_scipy(x[i], y[i]) for i in idx])
    # Tau-b of a resample is a quadratic form of its draw counts over the pair signs, so one
    # matmul does all resamples (integer-exact in float64).
    w = _draw_counts(idx, n)
    s = np.sign(x[:, None] - x[None, :]) * np.sign(y[:, None] - y[None, :])
    net = 0.5 * np.einsum("ri,ri->r", w @ s, w)  # concordant minus discordant pairs
    m = idx.shape[1]
    total = m * (m - 1) / 2
    tied = [(g * (g - 1) / 2).sum(axis=1) for g, _ in (_tie_groups(w, x), _tie_groups(w, y))]
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = net / np.sqrt((total - tied[0]) * (total - tied[1]))
    return np.clip(tau, -1.0, 1.0)  # 0/0 (a constant resample) stays NaN


def _rmse_kernel(x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return np.sqrt(np.mean((x[idx] - y[idx]) ** 2, axis=1))


def _mae_kernel(x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return np.mean(np.abs(x[idx] - y[idx]), axis=1)


def _point(kernel: Kernel, x: np.ndarray, y: np.ndarray) -> float:
    return float(kernel(x, y, np.arange(x.size)[None])[0])


def _bootstrap(
    columns: Sequence[tuple[Kernel, np.ndarray]], y: np.ndarray, n_boot: int, seed: int
) -> np.ndarray:
    """(len(columns), n_boot) replicates; every column sees the same paired resamples."""
    n = y.size
    rng = np.random.default_rng(seed)
    out = np.empty((len(columns), n_boot))
    rows = max(1, _CHUNK_ELEMENTS // n)  # chunk the index matrix so memory stays bounded
    for start in range(0, n_boot, rows):
        idx = rng.integers(0, n, size=(min(rows, n_boot - start), n))
        for k, (kernel, x) in enumerate(columns):
            out[k, start : start + len(idx)] = kernel(x, y, idx)
    return out


def _interval(values: np.ndarray, level: float) -> tuple[float, float]:
    values = values[np.isfinite(values)]  # resamples where the statistic is undefined
    if values.size == 0:
        return (math.nan, math.nan)
    lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return (float(lo), float(hi))


# ---------------------------------------------------------------------- plain statistics


def srcc(pred: ArrayLike, mos: ArrayLike) -> float:
    """Spearman rank-order correlation; NaN when either input is constant."""
    x, y = _paired(pred=pred, mos=mos)
    return _point(_srcc_kernel, x, y)


def krcc(pred: ArrayLike, mos: ArrayLike) -> float:
    """Kendall rank correlation (tau-b, ties corrected); NaN when either input is constant."""
    x, y = _paired(pred=pred, mos=mos)
    return _kendall_scipy(x, y)


def plcc(pred: ArrayLike, mos: ArrayLike) -> float:
    """Pearson linear correlation of the raw scores (no fit); NaN when either input is constant."""
    x, y = _paired(pred=pred, mos=mos)
    return _point(_plcc_kernel, x, y)


def rmse(pred: ArrayLike, mos: ArrayLike) -> float:
    """Root mean squared error between pred and MOS (both in MOS units)."""
    x, y = _paired(pred=pred, mos=mos)
    return _point(_rmse_kernel, x, y)


def mae(pred: ArrayLike, mos: ArrayLike) -> float:
    """Mean absolute error between pred and MOS (both in MOS units)."""
    x, y = _paired(pred=pred, mos=mos)
    return _point(_mae_kernel, x, y)


_KERNELS: dict[Any, Kernel] = {
    srcc: _srcc_kernel,
    krcc: _krcc_kernel,
    plcc: _plcc_kernel,
    rmse: _rmse_kernel,
    mae: _mae_kernel,
}
_KERNELS.update({f.__name__: k for f, k in list(_KERNELS.items())})


# ----------------------------------------------------------------------- logistic mapping


def _logistic5(x: np.ndarray, b1: float, b2: float, b3: float, b4: float, b5: float) -> np.ndarray:
    # expit(t) - 0.5 == 0.5 - 1/(1 + exp(t)): the VQEG form without overflow at large |t|
    return b1 * (special.expit(b2 * (x - b3)) - 0.5) + b4 * x + b5


def _logistic4(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    # (b1 - b2) / (1 + exp(-(x - b3)/|b4|)) + b2, written with expit for the same reason
    return (b1 - b2) * special.expit((x - b3) / abs(b4)) + b2


@dataclass(frozen=True)
class LogisticFit:
    """A VQEG logistic map from metric scores to MOS units; ``coef`` are b1.. in original units.

    If ``converged`` is False, ``coef`` is NaN and ``predict`` applies the least-squares line.
    """

    params: int
    coef: tuple[float, ...]
    converged: bool
    message: str
    linear: tuple[float, float] = (0.0, 0.0)  # (slope, intercept) of the least-squares line

    def predict(self, x: ArrayLike) -> np.ndarray:
        """Map metric scores to MOS units (the logistic, or the line when the fit failed)."""
        x = _to_numpy(x)
        if not self.converged:
            return self.linear[0] * x + self.linear[1]
        f = _logistic5 if self.params == 5 else _logistic4
        with np.errstate(all="ignore"):
            return np.asarray(f(x, *self.coef), dtype=np.float64)


def _linear_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    xc = x - x.mean()
    k = float(np.abs(xc).max())
    if k == 0:  # constant pred: the best line is flat at mean(MOS)
        return 0.0, float(y.mean())
    u = xc / k  # scaled so that u @ u cannot overflow, whatever the units of pred
    slope = float(u @ (y - y.mean())) / float(u @ u) / k
    return slope, float(y.mean() - slope * x.mean())


def _start_values(params: int, z: np.ndarray, t: np.ndarray) -> list[tuple[float, ...]]:
    """Start points in standardised units (z, t have mean 0, sd 1): a few, to dodge bad minima."""
    r = _point(_srcc_kernel, z, t)
    sign = -1.0 if r < 0 else 1.0
    med = float(np.median(z))
    if params == 5:
        span = float(t.max() - t.min())
        # Slope sign*1 in z units spans the data; the last start is almost the least-squares line
        # (b1 small, b4 = r), a safe fallback when the data show no S-shape at all.
        return [
            (span, sign * 1.0, 0.0, 0.0, 0.0),
            (span, sign * 3.0, med, 0.0, 0.0),
            (span, sign * 0.3, 0.0, 0.0, 0.0),
            (0.1 * span, sign * 1.0, 0.0, float(np.corrcoef(z, t)[0, 1]), 0.0),
        ]
    hi, lo = float(t.max()), float(t.min())
    if sign < 0:  # decreasing relation: b1 (the asymptote at +inf) is the low one
        hi, lo = lo, hi
    return [(hi, lo, 0.0, 1.0), (hi, lo, med, 0.3), (hi, lo, 0.0, 3.0)]


def fit_logistic(pred: ArrayLike, mos: ArrayLike, params: int = 5) -> LogisticFit:
    """Fit the VQEG 5- or 4-parameter logistic from pred to MOS by least squares.

    Never raises on a failed fit: it returns ``converged=False``, why, and a linear ``predict``.
    """
    if params not in (4, 5):
        raise OptionError(f"params must be 4 or 5, got {params!r}")
    x, y = _paired(pred=pred, mos=mos)
    linear = _linear_fit(x, y)

    def failed(why: str) -> LogisticFit:
        return LogisticFit(params, (math.nan,) * params, False, why, linear)

    distinct = np.unique(x).size
    if distinct < params:
        return failed(
            f"only {distinct} distinct pred value(s); a {params}-parameter logistic needs {params}"
        )
    if y.max() == y.min():
        return failed("MOS is constant: nothing to fit")

    # Fit in standardised units so start values and tolerances suit pred in [0, 1] or [0, 5000].
    mu, s, my, sy = x.mean(), x.std(), y.mean(), y.std()
    z, t = (x - mu) / s, (y - my) / sy
    f = _logistic5 if params == 5 else _logistic4
    good_enough = t.size * (1 - np.corrcoef(z, t)[0, 1] ** 2)  # SSE of the least-squares line
    best: tuple[np.ndarray, float, str] | None = None
    why = "no start point converged"
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", optimize.OptimizeWarning)  # covariance only; unused
        for p0 in _start_values(params, z, t):
            try:
                c, _, _, mesg, _ = optimize.curve_fit(
                    f, z, t, p0=p0, maxfev=_MAXFEV, full_output=True
                )
            except (RuntimeError, ValueError, TypeError, FloatingPointError) as e:
                why = f"curve_fit failed: {e}"
                continue
            sse = float(np.sum((f(z, *c) - t) ** 2))
            if np.all(np.isfinite(c)) and np.isfinite(sse) and (best is None or sse < best[1]):
                best = (c, sse, mesg)
                if sse <= good_enough:  # beats the line: skip the remaining start points
                    break
    if best is None:
        return failed(why)

    # Undo the standardisation so coef are the textbook b1.. in the caller's units.
    c, _, mesg = best
    if params == 5:
        b4 = sy * c[3] / s
        coef = (sy * c[0], c[1] / s, mu + s * c[2], b4, my + sy * c[4] - b4 * mu)
    else:
        coef = (my + sy * c[0], my + sy * c[1], mu + s * c[2], s * abs(c[3]))
    fit = LogisticFit(
        params, tuple(float(b) for b in coef), True, " ".join(str(mesg).split()), linear
    )
    if not np.all(np.isfinite(fit.predict(x))):
        return failed("fitted logistic gives non-finite predictions")
    return fit


# ----------------------------------------------------------------------------- bootstrap


def bootstrap_ci(
    fn: Callable[[np.ndarray, np.ndarray], float] | str,
    pred: ArrayLike,
    mos: ArrayLike,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap CI of fn(pred, mos), resampling images in pairs; same seed, same CI.

    srcc/krcc/plcc/rmse/mae (or their names) run vectorised; NaN resamples are dropped.
    """
    _check_boot(n_boot, level)
    x, y = _paired(pred=pred, mos=mos)
    kernel = _KERNELS.get(fn)
    if kernel is None:
        if not callable(fn):
            names = [k for k in _KERNELS if isinstance(k, str)]
            raise OptionError(f"unknown statistic {fn!r}; use a callable or one of {names}")

        def kernel(x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> np.ndarray:
            return np.array([fn(x[i], y[i]) for i in idx], dtype=np.float64)

    return _interval(_bootstrap([(kernel, x)], y, n_boot, seed)[0], level)


# ---------------------------------------------------------------------------- evaluation


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None  # strict JSON has no NaN
    return v


@dataclass(frozen=True)
class Agreement:
    """Agreement of one metric with MOS; plcc/rmse/mae are after the fit, in MOS units."""

    n: int
    srcc: float
    krcc: float
    plcc_raw: float
    plcc: float
    rmse: float
    mae: float
    fit: LogisticFit | None
    ci: dict[str, tuple[float, float]]
    level: float = 0.95
    negated: bool = False  # pred was negated: its direction is not the MOS direction
    warnings: tuple[str, ...] = ()  # why these figures may mislead (few images, failed fit, ...)

    @property
    def fit_status(self) -> str:
        """The map behind plcc/rmse: ``5pl``/``4pl``, ``5pl failed, linear``, or ``none``."""
        if self.fit is None:
            return "none"
        name = f"{self.fit.params}pl"
        return name if self.fit.converged else f"{name} failed, linear"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for json.dumps; NaN becomes None."""
        return _jsonable(asdict(self))


def evaluate(
    pred: ArrayLike,
    mos: ArrayLike,
    *,
    fit: Literal["5pl", "4pl", "none"] = "5pl",
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    higher_is_better: bool | None = None,
    mos_higher_is_better: bool = True,
) -> Agreement:
    """SRCC, KRCC, raw PLCC, then PLCC/RMSE/MAE after the logistic fit, with bootstrap CIs.

    Oriented so that a good metric has positive SRCC and PLCC: pred is negated when its
    direction (``higher_is_better``; None counts as higher) differs from the MOS direction
    (``mos_higher_is_better=False`` for DMOS). CIs keep the full-sample fit and resample
    (fitted, MOS) pairs: no refit, so they ignore the fit's own uncertainty. n_boot=0: no CIs.
    """
    if fit not in _FITS:
        raise OptionError(f"fit must be one of {list(_FITS)}, got {fit!r}")
    _check_boot(n_boot, level, minimum=0)
    x, y = _paired(pred=pred, mos=mos)
    negated = orientation(higher_is_better, mos_higher_is_better) < 0
    if negated:
        x = -x
    lf = fit_logistic(x, y, _FITS[fit]) if _FITS[fit] else None
    mapped = lf.predict(x) if lf is not None else x
    # A decreasing fit would turn a metric that runs against the MOS into a positive PLCC:
    # PLCC keeps the sign of the fitted curve's direction, as SRCC keeps the ranks'.
    falling = mapped[np.argmax(x)] < mapped[np.argmin(x)]
    columns: dict[str, tuple[Kernel, np.ndarray]] = {
        "srcc": (_srcc_kernel, x),
        "krcc": (_krcc_kernel, x),
        "plcc_raw": (_plcc_kernel, x),
        "plcc": (_plcc_kernel, -mapped if falling else mapped),
        "rmse": (_rmse_kernel, mapped),
        "mae": (_mae_kernel, mapped),
    }
    point = {name: _point(k, a, y) for name, (k, a) in columns.items() if name != "krcc"}
    point["krcc"] = _kendall_scipy(x, y)  # O(n log n), unlike the dense bootstrap kernel
    ci: dict[str, tuple[float, float]] = {}
    if n_boot:
        reps = _bootstrap(list(columns.values()), y, n_boot, seed)
        ci = {name: _interval(r, level) for name, r in zip(columns, reps, strict=True)}
    return Agreement(
        n=x.size,
        fit=lf,
        ci=ci,
        level=level,
        negated=negated,
        warnings=_warnings(-x if negated else x, y, lf),
        **point,
    )


_FEW_IMAGES = 10


def orientation(higher_is_better: bool | None, mos_higher_is_better: bool = True) -> float:
    """-1 when the scores run against the MOS (a lower-is-better metric against MOS, ...)."""
    return 1.0 if (higher_is_better is not False) == mos_higher_is_better else -1.0


def _warnings(x: np.ndarray, y: np.ndarray, lf: LogisticFit | None) -> tuple[str, ...]:
    """What a reader must know before trusting the figures of (x, y); ``x`` as given, before
    any negation, so that the values quoted are the user's."""
    out = []
    if x.size < _FEW_IMAGES:
        out.append(f"only {x.size} images: the figures are unreliable (see the CIs)")
    if _constant_rows(x[None])[0]:
        out.append(f"the scores are constant ({x[0]:.6g}): SRCC and PLCC are undefined")
    if _constant_rows(y[None])[0]:
        out.append("the MOS is constant: SRCC and PLCC are undefined")
    if lf is not None and not lf.converged:
        out.append(
            f"the {lf.params}-parameter logistic fit failed ({lf.message}); "
            "PLCC and RMSE are after a straight line"
        )
    return tuple(out)


# --------------------------------------------------------------------------- significance


def williams_test(r_a: float, r_b: float, r_ab: float, n: int) -> float:
    """Two-sided p of Williams' t-test that r(a, mos) == r(b, mos) given r(a, b) (Steiger 1980).

    t = (r_a - r_b) sqrt((n-1)(1+r_ab) / (2 (n-1)/(n-3) |R| + rbar^2 (1-r_ab)^3)), df = n - 3.
    """
    for name, r in (("r_a", r_a), ("r_b", r_b), ("r_ab", r_ab)):
        if not -1.0 <= r <= 1.0:
            raise InputError(f"{name} must be a correlation in [-1, 1], got {r!r}")
    if n < 4:
        raise InputError(f"Williams' test needs n >= 4 (df = n - 3), got {n}")
    if abs(r_a - r_b) <= 1e-12:  # equal up to rounding (e.g. b is a linear rescale of a)
        return 1.0
    det = 1 - r_a**2 - r_b**2 - r_ab**2 + 2 * r_a * r_b * r_ab  # |R| of the 3x3 matrix
    if det < -1e-12:
        raise InputError(f"r_a={r_a}, r_b={r_b}, r_ab={r_ab} are not a valid correlation matrix")
    rbar = (r_a + r_b) / 2
    den = 2 * (n - 1) / (n - 3) * max(det, 0.0) + rbar**2 * (1 - r_ab) ** 3
    if den <= 0:  # singular case (e.g. r_ab = -1 with r_b = -r_a): t is 0/0
        return math.nan
    t = (r_a - r_b) * math.sqrt((n - 1) * (1 + r_ab) / den)
    return float(2 * stats.t.sf(abs(t), n - 3))


@dataclass(frozen=True)
class Comparison:
    """Paired-bootstrap comparison of two metrics on the same images: diff = a - b."""

    statistic: str
    n: int
    a: float
    b: float
    diff: float
    ci: tuple[float, float]
    p_value: float
    significant: bool
    p_williams: float | None = None  # Williams' t-test; None for krcc

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for json.dumps; NaN becomes None."""
        return _jsonable(asdict(self))


def compare(
    pred_a: ArrayLike,
    pred_b: ArrayLike,
    mos: ArrayLike,
    *,
    statistic: Literal["srcc", "plcc", "krcc"] = "srcc",
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
    higher_is_better_a: bool | None = None,
    higher_is_better_b: bool | None = None,
    mos_higher_is_better: bool = True,
) -> Comparison:
    """Is metric a's correlation with MOS different from b's? Paired bootstrap of the difference.

    Each side is oriented as in :func:`evaluate` (from its direction and the MOS direction), so
    a and b are the positive correlations of good metrics. plcc is raw Pearson (map with
    fit_logistic first if wanted).
    """
    kernels = {"srcc": _srcc_kernel, "plcc": _plcc_kernel, "krcc": _krcc_kernel}
    if statistic not in kernels:
        raise OptionError(f"statistic must be one of {list(kernels)}, got {statistic!r}")
    if not 0.0 < alpha < 1.0:
        raise OptionError(f"alpha must be in (0, 1), got {alpha!r}")
    _check_boot(n_boot, 1 - alpha)
    xa, xb, y = _paired(pred_a=pred_a, pred_b=pred_b, mos=mos)
    xa = xa * orientation(higher_is_better_a, mos_higher_is_better)
    xb = xb * orientation(higher_is_better_b, mos_higher_is_better)
    k = kernels[statistic]
    if statistic == "krcc":
        a, b = _kendall_scipy(xa, y), _kendall_scipy(xb, y)
    else:
        a, b = _point(k, xa, y), _point(k, xb, y)
    reps = _bootstrap([(k, xa), (k, xb)], y, n_boot, seed)
    d = reps[0] - reps[1]
    d = d[np.isfinite(d)]
    if d.size:
        # Two-sided percentile p: how often the resampled difference reaches 0, +1 corrected.
        tail = min(np.count_nonzero(d <= 0), np.count_nonzero(d >= 0))
        p = float(min(1.0, 2 * (tail + 1) / (d.size + 1)))
    else:
        p = math.nan
    p_williams = None
    if statistic != "krcc":
        r_ab = _point(k, xa, xb)
        ok = y.size >= 4 and all(math.isfinite(r) for r in (a, b, r_ab))
        p_williams = williams_test(a, b, r_ab, y.size) if ok else math.nan
    return Comparison(
        statistic=statistic,
        n=y.size,
        a=a,
        b=b,
        diff=a - b,
        ci=_interval(d, 1 - alpha),
        p_value=p,
        significant=bool(p < alpha),
        p_williams=p_williams,
    )

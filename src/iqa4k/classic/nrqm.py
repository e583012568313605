"""NRQM (Ma et al.) and the PIRM perceptual index, faithful to the authors' MATLAB code.

- NRQM: C. Ma, C.-Y. Yang, X. Yang, M.-H. Yang, "Learning a no-reference quality metric for
  single-image super-resolution", CVIU 158:1-16, 2017 (github.com/chaoma99/sr-metric, MIT).
  ``quality_predict.m``: three feature groups (:mod:`.nrqm_features`), one regression forest
  each (``regRF_predict`` of randomforest-matlab), then ``[1 s1 s2 s3] * model.linear``.
- PI: Y. Blau, R. Mechrez, R. Timofte, T. Michaeli, L. Zelnik-Manor, "The 2018 PIRM challenge
  on perceptual image super-resolution", ECCV Workshops 2018: ``((10 - NRQM) + NIQE) / 2``,
  both on the Y channel with a 4-pixel border shaved.

The forests and the linear stage live in Ma's ``model.mat``, which iqa4k does not ship: see
:mod:`iqa4k.weights` for how it is found. :func:`load_model` reads it with ``scipy.io``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import weights
from ..color import to_channels
from ..errors import IQAError
from ..metric_spec import Setup
from . import matfile
from .niqe import niqe
from .nrqm_features import F1_SIZE, F2_SIZE, F3_SIZE, nrqm_features
from .prepare import shave

NODE_TERMINAL = -1  # nodestatus of a leaf in randomForest's C code (interior nodes are -3)
_FOREST_FIELDS = ("lDau", "rDau", "nodestatus", "upper", "avnode", "mbest")
_FEATURES = (F1_SIZE, F2_SIZE, F3_SIZE)


@dataclass(frozen=True)
class Forest:
    """A randomforest-matlab regression forest; every array is ``[nrnodes, ntree]``."""

    left: np.ndarray  # lDau: 1-based left child of each node
    right: np.ndarray  # rDau: 1-based right child
    status: np.ndarray  # nodestatus: -1 for a leaf
    threshold: np.ndarray  # upper: go left when x[var] <= threshold
    value: np.ndarray  # avnode: prediction of a leaf
    var: np.ndarray  # mbest: 1-based feature tested at the node
    coef: tuple[float, float] = (0.0, 0.0)  # bias correction a + b * y, used when non-zero

    def predict(self, x: np.ndarray) -> np.ndarray:
        """``regRF_predict(x, model)`` for ``x`` ``[n, features]`` -> ``[n]``."""
        return forest_predict(x, self)


@dataclass(frozen=True)
class NRQMModel:
    """Ma et al.'s ``model.mat``: the three forests (DCT, GSM, PCA features) and ``linear``."""

    forests: tuple[Forest, Forest, Forest]
    linear: np.ndarray  # [4]: intercept, then the weight of each forest's score
    source: str = ""


def forest_predict(x: np.ndarray, forest: Forest) -> np.ndarray:
    """Average leaf value over the trees, every sample walking every tree at once.

    As ``predictRegTree`` in randomForest's C code: from the root, while the node is not a
    leaf, go to ``lDau`` when ``x[mbest] <= upper`` and to ``rDau`` otherwise (a NaN feature
    goes right); the forest's prediction is the mean of the trees' leaf values, then the bias
    correction ``coef[0] + coef[1] * y`` when ``coef`` is not all zero.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be [samples, features], got shape {x.shape}")
    nrnodes, ntree = forest.status.shape
    rows = np.arange(x.shape[0])[:, None]
    trees = np.arange(ntree)[None, :]
    node = np.zeros((x.shape[0], ntree), dtype=np.int64)
    for _ in range(nrnodes):  # a path visits each node at most once
        active = forest.status[node, trees] != NODE_TERMINAL
        if not active.any():
            break
        var = forest.var[node, trees] - 1
        if (var[active] < 0).any() or (var[active] >= x.shape[1]).any():
            raise IQAError(f"forest splits on a feature outside 1..{x.shape[1]}")
        value = x[rows, var.clip(0, x.shape[1] - 1)]
        go_left = value <= forest.threshold[node, trees]
        child = np.where(go_left, forest.left[node, trees], forest.right[node, trees]) - 1
        if ((child[active] < 0) | (child[active] >= nrnodes)).any():
            raise IQAError("forest has a split node whose child is outside the tree")
        node = np.where(active, child, node)
    else:
        raise IQAError("forest has a cycle: a path did not reach a leaf")
    y = forest.value[node, trees].mean(axis=1)
    if any(forest.coef):
        y = forest.coef[0] + forest.coef[1] * y
    return y


# ------------------------------------------------------------------------------ model.mat


def _field(struct: np.ndarray, name: str, where: str, source: str) -> Any:
    """Field ``name`` of a 1x1 MATLAB struct as ``scipy.io.loadmat`` returns it."""
    names = struct.dtype.names or ()
    if name not in names:
        present = ", ".join(names) or "none"
        raise IQAError(
            f"{source}: {where} has no field '{name}' (fields present: {present}); this is not "
            "the layout of Ma et al.'s model.mat (struct 'model' with 'rf', a cell of three "
            "randomforest-matlab regression forests, and 'linear', 4 numbers)"
        )
    return struct[name].reshape(-1)[0]


def _forest(struct: np.ndarray, where: str, source: str) -> Forest:
    arrays = {}
    for name in _FOREST_FIELDS:
        value = np.asarray(_field(struct, name, where, source))
        if value.ndim == 1:  # a one-tree forest saved as a column
            value = value[:, None]
        arrays[name] = value
    shapes = {name: a.shape for name, a in arrays.items()}
    if len(set(shapes.values())) != 1:
        raise IQAError(f"{source}: {where} arrays differ in shape: {shapes}")
    coef = (0.0, 0.0)
    if "coef" in (struct.dtype.names or ()):
        c = np.asarray(_field(struct, "coef", where, source), dtype=np.float64).reshape(-1)
        if c.size == 2:
            coef = (float(c[0]), float(c[1]))
    return Forest(
        left=arrays["lDau"].astype(np.int64),
        right=arrays["rDau"].astype(np.int64),
        status=arrays["nodestatus"].astype(np.int64),
        threshold=arrays["upper"].astype(np.float64),
        value=arrays["avnode"].astype(np.float64),
        var=arrays["mbest"].astype(np.int64),
        coef=coef,
    )


def load_model(path: str | Path) -> NRQMModel:
    """Read Ma et al.'s ``model.mat`` (any MATLAB version, v7.3 included); a file of another
    layout names the missing field."""
    import scipy.io

    source = str(path)
    try:
        mat = matfile.load(source)
    except (OSError, ValueError, KeyError, scipy.io.matlab.MatReadError) as err:
        raise IQAError(f"{source}: not a readable MATLAB .mat file ({err})") from err
    if "model" not in mat:
        found = ", ".join(k for k in mat if not k.startswith("__")) or "none"
        raise IQAError(f"{source}: no variable 'model' (variables: {found})")
    model = mat["model"]
    if model.dtype.names is None:
        raise IQAError(f"{source}: 'model' is not a struct")
    cell = np.asarray(_field(model, "rf", "model", source))
    if cell.dtype != object or cell.size != 3:
        raise IQAError(f"{source}: model.rf must be a cell of 3 forests, got {cell.shape}")
    forests = tuple(
        _forest(f, f"forest model.rf{{{i + 1}}}", source)
        for i, f in enumerate(cell.reshape(-1, order="F"))
    )
    linear = np.asarray(_field(model, "linear", "model", source), dtype=np.float64).reshape(-1)
    if linear.size != 4:
        raise IQAError(f"{source}: model.linear must hold 4 numbers, got {linear.size}")
    return NRQMModel(forests=forests, linear=linear, source=source)


def setup(options: Mapping[str, Any]) -> Setup:
    """Metric setup: find and load ``model.mat`` once, when the metric is created.

    The call gets the loaded model in place of ``model_path``/``download``.
    """
    call = {k: v for k, v in options.items() if k not in ("model_path", "download")}
    path = weights.resolve("nrqm", options.get("model_path") or None, options.get("download"))
    call["model"] = load_model(path)
    return Setup(call)


# ------------------------------------------------------------------------------ metrics


def _luma_255(x: torch.Tensor, color_space: str, quantize: bool, crop_border: int):
    """The channel NRQM is computed on, float64 on [0, 255] (integers when quantized)."""
    y = to_channels(x.detach().to(torch.float64), color_space, quantize) * 255.0
    if quantize:
        y = y.round()  # exact integers, as MATLAB's uint8 luma
    y = shave(y, crop_border)
    return y[:, 0]


def predict(model: NRQMModel, f1: np.ndarray, f2: np.ndarray, f3: np.ndarray) -> np.ndarray:
    """The second and third stages: the forests' scores ``[n, 3]``, then the linear map."""
    feats = (np.atleast_2d(f1), np.atleast_2d(f2), np.atleast_2d(f3))
    for i, (f, size) in enumerate(zip(feats, _FEATURES, strict=True)):
        if f.shape[1] != size:
            raise ValueError(f"feature group {i + 1} must have {size} values, got {f.shape[1]}")
    trees = zip(feats, model.forests, strict=True)
    scores = np.stack([forest_predict(f, forest) for f, forest in trees], axis=1)
    return model.linear[0] + scores @ model.linear[1:]


def nrqm(
    x: torch.Tensor,
    *,
    model: NRQMModel,
    color_space: str = "y",
    quantize: bool = True,
    crop_border: int = 4,
) -> torch.Tensor:
    """NRQM of each image of ``[B,3,H,W]`` in [0,1] -> ``[B]`` (higher is better, about 0-10).

    Features run in float64 on the input's device; the forests on the CPU.
    """
    luma = _luma_255(x, color_space, quantize, crop_border)
    feats = [nrqm_features(img) for img in luma]
    f1, f2, f3 = (torch.stack(g).cpu().numpy() for g in zip(*feats, strict=True))
    score = predict(model, f1, f2, f3)
    return torch.from_numpy(score).to(x.device, x.dtype)


def pi(
    x: torch.Tensor,
    *,
    model: NRQMModel,
    color_space: str = "y",
    quantize: bool = True,
    crop_border: int = 4,
) -> torch.Tensor:
    """PIRM perceptual index ``((10 - NRQM) + NIQE) / 2`` -> ``[B]`` (lower is better)."""
    options = {"color_space": color_space, "quantize": quantize, "crop_border": crop_border}
    ma = nrqm(x, model=model, **options).to(torch.float64)
    natural = niqe(x, **options).to(ma)
    return ((10.0 - ma + natural) / 2.0).to(x.dtype)

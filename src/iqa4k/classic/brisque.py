"""BRISQUE, faithful to the LIVE release's ``brisquescore.m`` with its LIBSVM model.

A. Mittal, A. K. Moorthy, A. C. Bovik, "No-reference image quality assessment in the
spatial domain", IEEE Transactions on Image Processing 21(12):4695-4708, 2012.

``brisque_feature.m``: at two scales (the second by MATLAB ``imresize(., 0.5)``) the MSCN
coefficients of the gray image on [0, 255] (``filter2(..., 'same')``: zero padding) give a
GGD shape and variance, and the products with four ``circshift``-ed copies (wrapping around
the whole image) give AGGD shape, mean and left/right variances: 18 features per scale.
``brisquescore.m`` then writes them to a text file (``%f``), ``svm-scale -r allrange`` maps
them to [-1, 1] and prints ``%g``, and ``svm-predict`` evaluates the epsilon-SVR
``sum_i coef_i exp(-gamma |x - sv_i|^2) - rho`` of the LIVE ``allmodel``. Both text round
trips are reproduced: they move the score by up to ~5e-4 (TID2013 I04: -0.107618 with them,
as published, -0.107169 without).
"""

from __future__ import annotations

import functools
import math
from importlib import resources

import numpy as np
import torch
from scipy.special import gamma

from ..errors import InputError
from .matlab import imresize
from .nss import aggd_fit, ggd_fit, image_sums, luma_255, mscn, not_flat

SVR_MODEL = "brisque_live_svr.npz"
MIN_SIZE = 13  # the half-scale image must still hold the 7x7 window


@functools.cache
def live_svr() -> dict[str, np.ndarray]:
    """The LIVE ``allmodel`` SVR and ``allrange`` scaling (see assets/README.md)."""
    with (resources.files("iqa4k") / "assets" / SVR_MODEL).open("rb") as f:
        with np.load(f) as data:
            arrays = {key: data[key] for key in data.files}
    for array in arrays.values():
        array.setflags(write=False)  # shared by every call
    return arrays


def _scale_features(s: np.ndarray) -> list[np.ndarray]:
    """``brisque_feature.m``'s 18 features of one MSCN map (one scale)."""
    sums = image_sums(s)
    alpha, sigma = ggd_fit(sums[0], s.size)
    feats = [alpha, sigma**2]
    for k in range(1, 5):
        alpha, left, right = aggd_fit(sums[k], s.size)
        const = np.sqrt(gamma(1 / alpha)) / np.sqrt(gamma(3 / alpha))
        mean = (right - left) * (gamma(2 / alpha) / gamma(1 / alpha)) * const
        feats += [alpha, mean, left**2, right**2]
    return feats


def brisque_features(image: np.ndarray) -> np.ndarray:
    """The 36 BRISQUE features of a 2-D float64 image on [0, 255]."""
    feats = []
    for scale in (1, 2):
        feats += _scale_features(mscn(image, "zeros"))
        if scale == 1:
            image = imresize(torch.from_numpy(image)[None, None], scale=0.5)[0, 0].numpy()
    return np.array(feats, dtype=np.float64)


def _text_round_trip(values: np.ndarray, fmt: str) -> np.ndarray:
    """``values`` printed with a C format and read back, as the release's files do."""
    return np.array([float(fmt % v) for v in values])


def svr_score(features: np.ndarray, feature_rounding: bool = True) -> float:
    """``svm-scale -r allrange`` then ``svm-predict`` with the LIVE model, in float64.

    The release passes the features through two text files: ``brisquescore.m`` writes them
    with ``%f`` (``feature_rounding``) and ``svm-scale`` prints the scaled values with
    ``%g``; both roundings are reproduced.
    """
    m = live_svr()
    if feature_rounding:
        features = _text_round_trip(features, "%f")
    lower, upper = m["scale_to"]
    lo, hi = m["feature_min"], m["feature_max"]
    scaled = lower + (upper - lower) * (features - lo) / (hi - lo)
    scaled = np.where(features == lo, lower, np.where(features == hi, upper, scaled))
    scaled = _text_round_trip(scaled, "%g")
    # LIBSVM's order: the squared differences summed feature by feature, then the weighted
    # kernels vector by vector (cumsum adds in order; np.dot's BLAS kernel, and np.exp's
    # SIMD code, would follow the CPU). math.exp is the C library's, as LIBSVM's.
    distances = np.cumsum((m["sv"] - scaled) ** 2, axis=1)[:, -1]
    gamma = float(m["gamma"])
    kernel = np.array([math.exp(-gamma * d) for d in distances.tolist()])
    return float(np.cumsum(m["coef"] * kernel)[-1] - m["rho"])


def brisque(
    x: torch.Tensor,
    *,
    color_space: str = "gray",
    quantize: bool = True,
    crop_border: int = 0,
    feature_rounding: bool = True,
) -> torch.Tensor:
    """BRISQUE of each image of ``[B,3,H,W]`` in [0,1] -> ``[B]`` (lower is better).

    Computed on the CPU in float64 whatever the input's device and dtype.
    """
    h, w = (n - 2 * crop_border for n in x.shape[-2:])
    if min(h, w) < MIN_SIZE:
        raise InputError(
            f"BRISQUE needs images of at least {MIN_SIZE}x{MIN_SIZE} pixels (its 7x7 window "
            f"at half scale), got {w}x{h}"
        )
    planes = luma_255(x, color_space, quantize, crop_border)
    scores = [svr_score(brisque_features(not_flat(p, "BRISQUE")), feature_rounding) for p in planes]
    return torch.tensor(scores, dtype=torch.float64).to(x.device, x.dtype)

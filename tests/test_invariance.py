"""A classical metric's score does not move with the input's memory layout, the batch it is
in, or the number of torch threads: bit for bit. The images are 600 rows tall, so the banded
paths (PSNR's squared errors, SSIM's moments: 256 rows a band) cross band boundaries."""

from __future__ import annotations

import os

import cv2
import pytest
import torch

import iqa4k
from iqa4k.classic.table import SPECS

from .conftest import fixture_path, load_rgb, posterised, python_words

# NRQM and PI need Ma's model.mat, which is not bundled
NAMES = [s.name for s in SPECS if s.name not in ("nrqm", "pi")]


def _pair() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(11)
    ref = torch.nn.functional.interpolate(
        torch.rand(2, 3, 75, 25, generator=g), size=(600, 200), mode="bicubic"
    ).clamp(0, 1)
    return (ref + 0.05 * torch.randn(ref.shape, generator=g)).clamp(0, 1), ref


def _score(metric, x, y):
    return metric(x, y) if metric.info.kind == "FR" else metric(x)


@pytest.mark.parametrize("name", NAMES)
def test_layout_batch_and_threads_do_not_move_the_score(name):
    metric = iqa4k.create_metric(name)
    x, y = _pair()
    whole = _score(metric, x, y)
    last = torch.channels_last
    assert torch.equal(
        _score(metric, x.contiguous(memory_format=last), y.contiguous(memory_format=last)), whole
    )
    singles = torch.cat([_score(metric, x[i : i + 1], y[i : i + 1]) for i in range(2)])
    assert torch.equal(singles, whole)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert torch.equal(_score(metric, x, y), whole)
    finally:
        torch.set_num_threads(before)


def _flat_image(name: str) -> torch.Tensor:
    if name == "posterised":
        return posterised()
    return load_rgb(fixture_path("calibration_flat", "dist", "I08.bmp"), torch.float64)


@pytest.mark.parametrize("image", ["calibration_flat", "posterised"])
@pytest.mark.parametrize("name", ["niqe", "brisque", "piqe", "piqe:float32"])
def test_flat_areas_give_the_same_bits_on_every_simd_path_and_thread_count(name, image):
    # Flat 7x7 neighbourhoods have MSCN 0 in exact arithmetic; the rounding noise's sign used
    # to follow OpenCV's SIMD path (NIQE 3.1847 vs 3.2043 on calibration_flat). PIQE's
    # float32 option is documented as the same bits everywhere too.
    name, _, precision = name.partition(":")
    metric = iqa4k.create_metric(name, **({"precision": precision} if precision else {}))
    x = _flat_image(image)
    whole = metric(x)
    optimised, threads = cv2.useOptimized(), torch.get_num_threads()
    try:
        for simd, n in ((False, threads), (True, 1), (False, 1)):
            cv2.setUseOptimized(simd)
            torch.set_num_threads(n)
            assert torch.equal(metric(x), whole), (simd, n)
    finally:
        cv2.setUseOptimized(optimised)
        torch.set_num_threads(threads)
    batch = metric(torch.cat([x.flip(-1), x]))
    assert torch.equal(batch[1:], whole)


@pytest.mark.parametrize("name", ["psnr", "ssim", "ssim_y", "ms_ssim"])
def test_fr_scores_give_the_same_bits_on_every_simd_path_and_thread_count(name):
    # SSIM's moments used OpenCV's float32 filter, whose optimised path fuses multiplies and
    # adds: 3 float32 ulps apart from its baseline path on this pair.
    metric = iqa4k.create_metric(name)
    x, y = _pair()
    whole = metric(x, y)
    optimised, threads = cv2.useOptimized(), torch.get_num_threads()
    try:
        for simd, n in ((False, threads), (True, 1), (False, 1)):
            cv2.setUseOptimized(simd)
            torch.set_num_threads(n)
            assert torch.equal(metric(x, y), whole), (simd, n)
    finally:
        cv2.setUseOptimized(optimised)
        torch.set_num_threads(threads)


_SCORES = """
import sys, torch, iqa4k
from tests.conftest import posterised
x = posterised()
metrics = [iqa4k.create_metric(n) for n in sys.argv[1:]]
print(*((m(x, x.flip(-1)) if m.info.kind == "FR" else m(x)).item().hex() for m in metrics))
"""


@pytest.mark.slow
def test_scores_ignore_numpy_simd_targets_and_blas_kernels():
    # NumPy's, OpenBLAS's and torch's kernels are chosen by CPU at start-up: a second
    # interpreter with NumPy's SIMD targets disabled, OpenBLAS on its oldest x86 kernel and
    # torch on its non-vectorised one must print the same bits (np.exp, np.dot and LAPACK's
    # SVD did not).
    names = ["niqe", "brisque", "piqe", "ssim", "ms_ssim"]
    x = posterised()
    metrics = [iqa4k.create_metric(n) for n in names]
    here = [(m(x, x.flip(-1)) if m.info.kind == "FR" else m(x)).item().hex() for m in metrics]
    env = dict(os.environ, OPENBLAS_CORETYPE="Nehalem", ATEN_CPU_CAPABILITY="default")
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__
    except ImportError:
        __cpu_dispatch__ = []
    if __cpu_dispatch__:
        env["NPY_DISABLE_CPU_FEATURES"] = " ".join(__cpu_dispatch__)
    assert python_words(_SCORES, *names, env=env) == here

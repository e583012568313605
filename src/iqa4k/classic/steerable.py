"""The steerable pyramid of matlabPyrTools (Simoncelli), built in the frequency domain.

``build_sf_pyramid`` reproduces ``buildSFpyr(im, height, order)``: a high-pass residual,
``height`` levels of ``order + 1`` oriented band-pass images (each level half the size of the
previous one, the first at full size) and a low-pass residual. Masks are raised cosines in
log-radius and ``cos(angle)^order`` in angle, read from the same lookup tables with the same
linear interpolation as matlabPyrTools' ``pointOp`` MEX, so the bands match MATLAB's to
rounding. The transform is a tight frame: ``reconstruct_sf_pyramid`` inverts it, and the
squared norms of the bands, each weighted by its pixel count relative to the image, add up to
the image's squared norm (up to the lookup-table interpolation, about 1e-6 relative).

Tensors are float64 ``[..., H, W]``; leading dimensions are a batch sharing one mask set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

_LUT_SIZE = 1024  # angular lookup table resolution of buildSFpyrLevs
_RCOS_SIZE = 256  # radial lookup table resolution of rcosFn


@dataclass
class SFPyramid:
    """Bands of a frequency-domain steerable pyramid, as ``buildSFpyr`` orders them."""

    highpass: torch.Tensor  # the high-pass residual, image size
    bands: list[list[torch.Tensor]]  # bands[level][orientation]; level 0 is the finest
    lowpass: torch.Tensor  # the low-pass residual


_POINT_OP_ROWS = 128  # rows interpolated at a time: the temporaries stay small and in cache


def _point_op(
    values: torch.Tensor, lut: torch.Tensor, origin: float, step: float, out=None
) -> torch.Tensor:
    """matlabPyrTools ``pointOp``: linear interpolation in ``lut``, extrapolation at the ends.

    The result goes to ``out`` when given (any strides, e.g. one plane of a complex array).
    """
    slope = lut[1:] - lut[:-1]
    out = torch.empty_like(values) if out is None else out
    for r in range(0, values.shape[0], _POINT_OP_ROWS):
        pos = (values[r : r + _POINT_OP_ROWS] - origin).div_(step)
        # The MEX truncates toward zero and clamps, so the end segments extrapolate linearly.
        index = torch.trunc(pos).clamp_(0, lut.numel() - 2)
        i = index.long()  # gathered with take: faster than advanced indexing
        frac = pos.sub_(index)
        torch.addcmul(lut.take(i), slope.take(i), frac, out=out[r : r + _POINT_OP_ROWS])
    return out


def _masked(dft: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``dft .* mask`` for a real mask, without promoting the mask to complex."""
    return torch.view_as_complex(torch.view_as_real(dft) * mask[..., None])


def _mask_in_place(dft: torch.Tensor, mask: torch.Tensor) -> None:
    torch.view_as_real(dft).mul_(mask[..., None])


def _radial_ifft2(dft: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``real(ifft2(dft .* mask))`` for a real image's ``dft`` and a radial ``mask``.

    The product is Hermitian (a radial mask takes the same value at k and -k), so the inverse
    real FFT of its left half is the whole answer, at half the cost of a complex transform.
    """
    h, w = dft.shape[-2:]
    half = dft[..., : w // 2 + 1]
    if mask is not None:
        half = _masked(half, mask[..., : w // 2 + 1])
    return torch.fft.irfft2(half, s=(h, w))


def _radial_lut(device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``rcosFn(1, -1/2, [0 1])`` as (X, sqrt(Y), sqrt(1 - Y)): the high/low transition."""
    n = _RCOS_SIZE
    x = math.pi * torch.arange(-n - 1, 2, dtype=torch.float64, device=device) / (2 * n)
    y = torch.cos(x).square()
    y[0], y[-1] = y[1], y[-2]  # flat beyond the transition
    x = -0.5 + (2 / math.pi) * (x + math.pi / 4)
    hi = y.sqrt()
    return x, hi, (1.0 - hi.square()).sqrt()


def _angle_lut(nbands: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """X and Y of the ``cos(angle)^order`` table over [-2 pi, pi], normalised to a tight frame."""
    x = math.pi * torch.arange(-(2 * _LUT_SIZE + 1), _LUT_SIZE + 2, dtype=torch.float64) / _LUT_SIZE
    order = nbands - 1
    const = 2 ** (2 * order) * math.factorial(order) ** 2 / (nbands * math.factorial(2 * order))
    return x.to(device), (math.sqrt(const) * torch.cos(x) ** order).to(device)


def _polar_grid(h: int, w: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(log2 radius, angle) of the frequency grid, in FFT order (DC first, not centred).

    ``buildSFpyr`` lays the grid out centred (``fftshift``); computing it centred and shifting
    it once lets every mask apply to ``fft2`` output directly, with no shift of the data.
    """
    cy, cx = math.ceil((h + 0.5) / 2), math.ceil((w + 0.5) / 2)  # 1-based centre
    y = (torch.arange(1, h + 1, dtype=torch.float64, device=device) - cy) / (h / 2)
    x = (torch.arange(1, w + 1, dtype=torch.float64, device=device) - cx) / (w / 2)
    yy, xx = torch.meshgrid(y, x, indexing="ij")
    angle = torch.atan2(yy, xx)
    rad = torch.sqrt(xx.square() + yy.square())
    rad[cy - 1, cx - 1] = rad[cy - 1, cx - 2]  # avoid log2(0) at DC
    return (torch.fft.ifftshift(g, dim=(-2, -1)) for g in (torch.log2(rad), angle))


def _low_band(n: int, device: torch.device) -> torch.Tensor:
    """FFT-order indices of the next level's samples along an axis of ``n`` frequencies.

    ``buildSFpyrLevs`` keeps the centred block ``lostart : lostart + lodims`` of the centred
    spectrum; in FFT order that block is these indices, already in the smaller grid's order.
    """
    lo = math.ceil((n - 0.5) / 2)
    start = math.ceil((n + 0.5) / 2) - math.ceil((lo + 0.5) / 2)  # 0-based, centred layout
    j = torch.arange(lo, device=device)
    return (start + (j + lo // 2) % lo - n // 2) % n


def _crop(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    return x.index_select(-2, rows).index_select(-1, cols)


def max_height(h: int, w: int) -> int:
    """Most levels ``buildSFpyr`` accepts for an ``h x w`` image."""
    return int(math.floor(math.log2(min(h, w)))) - 2


def build_sf_pyramid(image: torch.Tensor, height: int, order: int) -> SFPyramid:
    """``buildSFpyr(image, height, order)`` of a float64 ``[..., H, W]`` tensor."""
    h, w = image.shape[-2:]
    if not 1 <= height <= max_height(h, w):
        raise ValueError(f"a {w}x{h} image allows 1..{max_height(h, w)} levels, not {height}")
    nbands = order + 1
    device = image.device
    log_rad, angle = _polar_grid(h, w, device)
    xr, yr, yir = _radial_lut(device)
    step = (xr[1] - xr[0]).item()
    xa, ya = _angle_lut(nbands, device)
    astep = (xa[1] - xa[0]).item()

    dft = torch.fft.fft2(image)
    highpass = _radial_ifft2(dft, _point_op(log_rad, yr, xr[0].item(), step))
    _mask_in_place(dft, _point_op(log_rad, yir, xr[0].item(), step))
    bands = []
    for _ in range(height):
        xr = xr - 1.0  # each level's transition lies one octave lower
        origin, step = xr[0].item(), (xr[1] - xr[0]).item()
        himask = _point_op(log_rad, yr, origin, step)
        # The next level's grid is cut now, so this level's full-size log radius is freed
        # before its bands are formed (the bands, not the grids, should fill the memory).
        rows, cols = _low_band(log_rad.shape[0], device), _low_band(log_rad.shape[1], device)
        log_rad = _crop(log_rad, rows, cols)
        bands.append(_oriented_bands(dft, himask, angle, (xa[0].item(), astep, ya), order))
        del himask
        angle = _crop(angle, rows, cols)
        dft = _crop(dft, rows, cols)
        _mask_in_place(dft, _point_op(log_rad, yir, origin, step))
    return SFPyramid(highpass, bands, _radial_ifft2(dft))


def _oriented_bands(
    dft: torch.Tensor, himask: torch.Tensor, angle: torch.Tensor, lut: tuple, order: int
) -> list[torch.Tensor]:
    """``real(ifft2((-i)^order .* dft .* anglemask(b) .* himask))`` for every orientation b.

    Each band's spectrum is Hermitian (the band is real), so one inverse FFT of
    ``S_a + i S_b`` gives band a as its real part and band b as its imaginary part.
    """
    origin, step, values = lut
    nbands = order + 1
    # (-i)^order * (a + i b), exactly: each factor -i maps (re, im) to (im, -re). The masks
    # are written with their signs straight into the planes of one complex array, reused
    # for every pair (no mask arrays, no negated copies).
    parts, signs = [0, 1], [1.0, 1.0]
    for _ in range(order % 4):
        parts, signs = [parts[1], parts[0]], [signs[1], -signs[0]]
    spectrum = torch.empty(angle.shape, dtype=dft.dtype, device=dft.device)
    planes = torch.view_as_real(spectrum)
    out = []
    for k in range(0, nbands, 2):
        for plane, (part, sign) in enumerate(zip(parts, signs, strict=True)):
            b, target = k + part, planes[..., plane]
            if b == nbands:  # an odd number of bands: the last pair has one
                target.zero_()
                continue
            _point_op(angle, values, origin + math.pi * b / nbands, step, out=target)
            target.mul_(himask)
            if sign < 0:
                target.neg_()
        # In place when there is no batch dimension: one complex image less at 4K.
        z = spectrum.mul_(dft) if spectrum.shape == dft.shape else spectrum * dft
        z = torch.fft.ifft2(z, out=z)
        # Copies: views into z would keep the complex array (twice their size) alive.
        out += [z.real.clone(), z.imag.clone()] if k + 1 < nbands else [z.real.clone()]
        del z
    return out


def reconstruct_sf_pyramid(pyr: SFPyramid) -> torch.Tensor:
    """``reconSFpyr``: the image a :class:`SFPyramid` was built from (its adjoint transform)."""
    nbands = len(pyr.bands[0])
    order = nbands - 1
    h, w = pyr.highpass.shape[-2:]
    device = pyr.highpass.device
    xr, yr, yir = _radial_lut(device)
    step = (xr[1] - xr[0]).item()
    xa, ya = _angle_lut(nbands, device)
    astep = (xa[1] - xa[0]).item()
    rotation = (1, 1j, -1, -1j)[order % 4]  # sqrt(-1)^order undoes the analysis phase
    grids = [tuple(_polar_grid(h, w, device))]
    boxes = []
    for _ in pyr.bands:
        log_rad, angle = grids[-1]
        rows, cols = _low_band(log_rad.shape[0], device), _low_band(log_rad.shape[1], device)
        boxes.append((rows, cols))
        grids.append((_crop(log_rad, rows, cols), _crop(angle, rows, cols)))

    dft = torch.fft.fft2(pyr.lowpass)
    for level in range(len(pyr.bands) - 1, -1, -1):  # coarsest first
        log_rad, angle = grids[level]
        shifted = xr - float(level + 1)
        origin, lstep = shifted[0].item(), (shifted[1] - shifted[0]).item()
        rows, cols = boxes[level]
        lomask = _point_op(grids[level + 1][0], yir, origin, lstep)
        full = torch.zeros(dft.shape[:-2] + log_rad.shape, dtype=dft.dtype, device=device)
        full[..., rows[:, None], cols[None, :]] = dft * lomask
        himask = _point_op(log_rad, yr, origin, lstep)
        for b, band in enumerate(pyr.bands[level]):
            amask = _point_op(angle, ya, xa[0].item() + math.pi * b / nbands, astep)
            full = full + torch.fft.fft2(band) * (amask * himask * rotation)
        dft = full
    log_rad = grids[0][0]
    dft = dft * _point_op(log_rad, yir, xr[0].item(), step)
    dft = dft + torch.fft.fft2(pyr.highpass) * _point_op(log_rad, yr, xr[0].item(), step)
    return torch.fft.ifft2(dft).real

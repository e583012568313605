"""Images enter iqa4k here, once, and become float RGB tensors in [0, 1].

``load_image`` decodes one file, ``to_batch`` turns whatever a metric is given (tensor, array,
PIL image, path, or a list of those) into ``[B,3,H,W]``, and ``list_images`` / ``pair_by_name``
find the files and pair distorted images with their references.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import math
import os
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from .errors import ImageReadError, InputError, OptionError
from .layout import memory_order

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "ImageLike",
    "list_images",
    "load_image",
    "pair_by_name",
    "pixel_limit",
    "save_image",
    "to_batch",
]

# 16K x 16K = 268 MP covers 8K and 16K photos and stitched panoramas; Pillow's own default
# (89 MP) already rejects some real 12K panoramas. Overridable per call or by IQA4K_MAX_PIXELS.
DEFAULT_MAX_PIXELS = 16384 * 16384
# Peak memory of the heaviest classical metric (a full-reference pair, both files decoded),
# per pixel: benchmarks/memory.py measures 36 B/px at 4K, 8K and 16K (BENCHMARKS.md).
PEAK_BYTES_PER_PIXEL = 36
MAX_PIXELS_ENV = "IQA4K_MAX_PIXELS"

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp"})

ImageLike = torch.Tensor | np.ndarray | Image.Image | str | os.PathLike

# Only these Pillow decoders are used: fewer parsers for untrusted files (no EPS/Ghostscript).
_FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "GIF", "WEBP")
_RANGE_TOLERANCE = 1e-6  # resampling and colour conversions overshoot [0, 1] by rounding noise
_SEPARATORS = "_-."  # between a reference stem and a distortion suffix: I01_01_5, baboon_x4

# EXIF orientation -> view that shows the image upright (as ImageOps.exif_transpose does).
_ORIENT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}


def load_image(path: str | os.PathLike, *, max_pixels: int | None = None) -> torch.Tensor:
    """Decode an image file to a float32 ``[3,H,W]`` RGB tensor in [0, 1], EXIF orientation applied.

    8-bit samples are divided by 255, 16-bit PNG/TIFF by 65535 (full precision); float TIFF must
    already lie in [0, 1]. Grey and palette images become RGB. Alpha is dropped, not composited:
    a quality metric measures the colour samples, not a blend on an arbitrary background.
    Files over ``max_pixels`` (None: ``$IQA4K_MAX_PIXELS`` or ``DEFAULT_MAX_PIXELS``; 0: no
    limit) are refused before decoding. Every failure raises :class:`ImageReadError`.
    The result may be a channels-last view (strides of ``[H,W,3]``); use ``.contiguous()``
    before ``.view()``.
    """
    path = Path(path)
    limit = pixel_limit(max_pixels)
    if not path.exists():
        if path.is_symlink():
            raise ImageReadError(path, f"a broken link (to {os.readlink(path)})")
        raise ImageReadError(path, "no such file")
    if path.is_dir():
        raise ImageReadError(path, "is a directory, not an image file")
    if not path.is_file():  # opening a FIFO would wait for a writer forever
        raise ImageReadError(path, "not a regular file (a FIFO, socket or device); not opened")
    try:
        with _without_pillow_pixel_limit(), Image.open(path, formats=_pillow_formats()) as img:
            _check_size(img, path, limit)
            frames = getattr(img, "n_frames", 1)
            if frames > 1 and img.format != "MPO":  # MPO: a camera JPEG and its previews
                raise ImageReadError(
                    path,
                    f"has {frames} frames (an animation or a multi-page file); iqa4k scores "
                    "single images: save the frame you mean as its own file",
                )
            if _is_deep_colour(img):
                return _decode_deep_colour(img, path)
            img.load()  # decode here, inside the try: truncated data raises instead of being filled
            ImageOps.exif_transpose(img, in_place=True)
            return _pil_to_chw(img)
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        if path.suffix.lower() in (".tif", ".tiff"):  # float RGB TIFF: Pillow has no such mode
            x = _read_tiff_with_opencv(path, limit)
            if x is not None:
                return x
        msg = "not a PNG, JPEG, BMP, TIFF, GIF or WebP image, or its header is corrupt"
        raise ImageReadError(path, msg) from None
    except InputError as exc:  # decoded, but the samples are unusable (float TIFF out of range)
        raise ImageReadError(path, str(exc)) from None
    except Exception as exc:  # decoders raise OSError, SyntaxError, EOFError, zlib/struct errors...
        raise ImageReadError(path, f"cannot decode ({type(exc).__name__}: {exc})") from exc


def _read_tiff_with_opencv(path: Path, limit: int | None) -> torch.Tensor | None:
    """A TIFF Pillow cannot read (3- or 4-channel float samples) through OpenCV, or None."""
    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if arr is None:
        return None
    if limit and arr.shape[0] * arr.shape[1] > limit:
        raise ImageReadError(path, f"{arr.shape[1]}x{arr.shape[0]} is over the pixel limit")
    if arr.ndim == 3 and arr.shape[2] >= 3:
        arr = np.concatenate([arr[..., 2::-1], arr[..., 3:]], axis=2)  # BGR(A) -> RGB(A)
    try:
        return _hwc_to_tensor(arr if arr.ndim == 3 else arr[..., None], _dtype_scale(arr.dtype))
    except InputError as exc:
        raise ImageReadError(path, str(exc)) from None


def to_batch(images: ImageLike | Sequence[ImageLike]) -> torch.Tensor:
    """Convert what a metric was given into a ``[B,3,H,W]`` float tensor in [0, 1].

    Tensors are channel-first (``[H,W]``, ``[C,H,W]``, ``[B,C,H,W]``; C = 1 or 3), keep their
    device, float64 stays float64, and a valid float ``[B,3,H,W]`` is returned as is (no copy,
    gradients flow). Arrays are channel-last (``HxW``, ``HxWxC``, ``BxHxWxC``; C = 1, 3, or 4
    with alpha dropped). uint8 is divided by 255, uint16 by 65535; floats must lie in [0, 1].
    Paths go through :func:`load_image`; lists are stacked and must share one size.
    """
    if isinstance(images, torch.Tensor):
        return _tensor_to_batch(images)
    if isinstance(images, np.ndarray):
        if images.ndim not in (2, 3, 4) or (images.ndim == 3 and images.shape[-1] not in (1, 3, 4)):
            raise InputError(
                f"arrays are read as HxW, HxWxC or BxHxWxC with C = 1, 3 or 4; got shape "
                f"{images.shape}"
            )
        arr = images[..., None] if images.ndim == 2 else images
        batch = _hwc_to_tensor(arr, _dtype_scale(arr.dtype))
        return batch if batch.ndim == 4 else batch[None]
    if isinstance(images, Image.Image):
        try:
            return _pil_to_chw(ImageOps.exif_transpose(images))[None]
        except OSError as exc:  # a lazily opened image decodes here (truncated file...)
            name = getattr(images, "filename", "") or "<PIL image>"
            raise ImageReadError(name, str(exc)) from exc
    if isinstance(images, (str, os.PathLike)):
        return load_image(images)[None]
    if isinstance(images, (list, tuple)):
        if not images:
            raise InputError("no images: the list is empty")
        parts = [to_batch(item) for item in images]
        devices = sorted({str(p.device) for p in parts})
        if len(devices) > 1:
            raise InputError(f"images in one batch must be on one device; got {devices}")
        sizes = [f"{p.shape[-2]}x{p.shape[-1]}" for p in parts]
        if len(set(sizes)) > 1:
            shown = ", ".join(sizes[:10]) + (", ..." if len(sizes) > 10 else "")
            raise InputError(f"images in one batch must share a size; got HxW sizes {shown}")
        return torch.cat(parts)
    raise InputError(f"cannot read an image from a {type(images).__name__}")


def list_images(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """Expand folders into their image files (sorted by name) and keep files as given."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            # Non-recursive; hidden files (.DS_Store, ._I01.png from macOS) are never images.
            # A broken link is kept, so that its row says so instead of it vanishing.
            found += sorted(
                (
                    p
                    for p in path.iterdir()
                    if p.suffix.lower() in IMAGE_EXTENSIONS
                    and not p.name.startswith(".")
                    and (p.is_file() or (p.is_symlink() and not p.exists()))
                ),
                key=lambda p: p.name,
            )
        elif path.exists():
            found.append(path)  # any extension: the decoder decides
        elif glob.has_magic(str(path)):  # a quoted pattern: 'shots/*.jpg', 'sets/**/*.png'
            found_here = glob.glob(str(path), recursive=True)  # ** reaches every subfolder
            matches = sorted(Path(p) for p in found_here if Path(p).is_file())
            if not matches:
                raise InputError(f"{path}: no file matches this pattern")
            found += matches
        else:
            raise InputError(f"{path}: no such file or folder")
    return found


def pair_by_name(
    dist: Sequence[str | os.PathLike], ref: str | os.PathLike | Iterable[str | os.PathLike]
) -> list[tuple[Path, Path]]:
    """Pair each distorted image with its reference: same name, else same stem, else the longest
    reference stem followed by ``_``, ``-`` or ``.`` (case-insensitive); one ref file pairs all.
    """
    dist = [Path(d) for d in dist]
    if isinstance(ref, (str, os.PathLike)) and Path(ref).is_file():
        return [(d, Path(ref)) for d in dist]
    refs = list(dict.fromkeys(list_images(ref)))
    if not refs:
        raise InputError(f"no reference images found in {ref}")
    by_name: dict[str, list[Path]] = defaultdict(list)
    by_stem: dict[str, list[Path]] = defaultdict(list)
    for r in refs:
        by_name[r.name.lower()].append(r)
        by_stem[r.stem.lower()].append(r)

    pairs, unmatched, ambiguous = [], [], []
    for d in dist:
        hits = _find_reference(d, by_name, by_stem)
        if len(hits) == 1:
            pairs.append((d, hits[0]))
        elif hits:
            ambiguous.append(f"{d.name} ({' / '.join(r.name for r in hits)})")
        else:
            unmatched.append(d.name)
    problems = []
    if unmatched:
        problems.append(
            f"{len(unmatched)} distorted image(s) have no reference (same name, same stem, or a "
            f"reference stem followed by '_', '-' or '.'): {_first(unmatched)}"
        )
    if ambiguous:
        problems.append(f"{len(ambiguous)} match several references: {_first(ambiguous)}")
    if problems:
        raise InputError("; ".join(problems))
    return pairs


def save_image(image: torch.Tensor, path: str | os.PathLike, *, quality: int = 95) -> None:
    """Write a ``[3,H,W]`` or ``[1,3,H,W]`` tensor in [0, 1] as an 8-bit image (PNG, JPEG, ...).

    Values are clamped to [0, 1] and rounded; the format follows the file extension.
    """
    x = image.detach()
    if x.ndim == 4 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 3 or x.shape[0] != 3:
        raise InputError(f"save_image expects [3,H,W] or [1,3,H,W], got {tuple(image.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise InputError("save_image: the image has NaN or infinite values")
    Image.fromarray(to_8bit_hwc(x.float().cpu()).numpy()).save(path, quality=quality)


_QUANTIZE_ROWS = 64  # rows rounded at a time: the float temporaries stay in cache


def to_8bit_hwc(image: torch.Tensor) -> torch.Tensor:
    """``[C,H,W]`` in [0, 1] (CPU) -> ``[H,W,C]`` uint8: clamped, times 255 and rounded to
    nearest in the image's dtype, a band of rows at a time."""
    h, w = image.shape[-2:]
    out = torch.empty(h, w, image.shape[0], dtype=torch.uint8)
    for r in range(0, h, _QUANTIZE_ROWS):
        band = image[:, r : r + _QUANTIZE_ROWS].clamp(0, 1).mul_(255).round_()
        out[r : r + _QUANTIZE_ROWS].copy_(band.to(torch.uint8).permute(1, 2, 0))
    return out


# --- decoding ---------------------------------------------------------------------------------


@functools.cache
def _pillow_formats() -> tuple[str, ...]:
    """Our formats that this Pillow build can decode (WebP support is optional)."""
    Image.init()
    return tuple(f for f in _FORMATS if f in Image.OPEN)


def pixel_limit(max_pixels: int | None = None) -> int | None:
    """The pixel limit in force: argument, else environment, else default; None = unlimited."""
    if max_pixels is None:
        env = os.environ.get(MAX_PIXELS_ENV, "").strip()
        try:
            max_pixels = int(env) if env else DEFAULT_MAX_PIXELS
        except ValueError:
            raise OptionError(
                f"{MAX_PIXELS_ENV} must be a whole number of pixels (0 = no limit), got {env!r}"
            ) from None
    if max_pixels < 0:
        raise OptionError(f"max_pixels must be >= 0 (0 = no limit), got {max_pixels}")
    return max_pixels or None


_pillow_limit_lock = threading.Lock()
_pillow_limit_users = 0
_pillow_saved_limit: int | None = None


@contextlib.contextmanager
def _without_pillow_pixel_limit() -> Iterator[None]:
    """Switch Pillow's decompression-bomb check off while we decode: ours replaces it.

    Pillow only has a process-wide limit (checked in open() and again in some load() paths),
    so it is set to None while any load_image call runs and restored when the last one ends.
    """
    global _pillow_limit_users, _pillow_saved_limit
    with _pillow_limit_lock:
        if _pillow_limit_users == 0:
            _pillow_saved_limit = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
        _pillow_limit_users += 1
    try:
        yield
    finally:
        with _pillow_limit_lock:
            _pillow_limit_users -= 1
            if _pillow_limit_users == 0:
                Image.MAX_IMAGE_PIXELS = _pillow_saved_limit


def _check_size(img: Image.Image, path: Path, limit: int | None) -> None:
    """Refuse empty images and, from the header alone, images over the pixel limit."""
    w, h = img.size
    if w <= 0 or h <= 0:
        raise ImageReadError(path, f"image has zero size ({w}x{h})")
    if limit is not None and w * h > limit:
        raise ImageReadError(
            path,
            f"{w}x{h} = {w * h:,} pixels exceeds the limit of {limit:,} pixels "
            f"(decompression-bomb guard); decoded it takes {_gb(w * h * 12)} as float32 RGB, "
            f"and scoring it with a classical metric about {_gb(w * h * PEAK_BYTES_PER_PIXEL)} "
            f"at the peak; raise the limit with load_image(..., max_pixels=N) or the "
            f"environment variable {MAX_PIXELS_ENV} (0 = no limit)",
        )


def _gb(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def _is_deep_colour(img: Image.Image) -> bool:
    """True for 16-bit colour files (RGB, RGBA, grey+alpha), which Pillow cuts to 8 bits."""
    if img.mode not in ("RGB", "RGBA", "LA") or not img.tile:
        return False
    args = img.tile[0][3]
    rawmode = args[0] if isinstance(args, tuple) else args
    return isinstance(rawmode, str) and ";16" in rawmode


def _decode_deep_colour(img: Image.Image, path: Path) -> torch.Tensor:
    """Decode 16-bit colour with OpenCV (Pillow has no 16-bit RGB mode) and orient it ourselves."""
    data = path.read_bytes()
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype != np.uint16 or arr.ndim != 3 or arr.shape[2] < 3:
        raise ImageReadError(path, "OpenCV cannot decode the 16-bit colour data (corrupt file?)")
    arr = arr[..., 2::-1]  # BGR(A) -> RGB, alpha dropped
    orientation = _exif_orientation(img, data)
    # Whether the decoder already applied the orientation depends on format and version
    # (OpenCV 5 does for TIFF, not for PNG eXIf): compare with Pillow's upright 8-bit decode.
    if orientation in _ORIENT and not _is_upright(arr, img):
        arr = _ORIENT[orientation](arr)
    return _hwc_to_tensor(arr, 65535.0)


def _exif_orientation(img: Image.Image, data: bytes) -> int:
    """EXIF orientation tag (1 = upright) without decoding the pixels."""
    if img.format == "PNG" and b"eXIf" not in data and b"Raw profile type exif" not in data:
        return 1  # PngImageFile.getexif() would decode the whole image only to find no EXIF
    return int(img.getexif().get(ExifTags.Base.Orientation, 1))


def _is_upright(arr: np.ndarray, img: Image.Image) -> bool:
    """Whether a 16-bit [H,W,3] array matches Pillow's upright 8-bit decode of the same file."""
    img.load()  # Pillow keeps the high byte of each sample
    ImageOps.exif_transpose(img, in_place=True)  # a no-op where load() already oriented it
    upright = np.asarray(img)[..., :3]
    if upright.shape != arr.shape:
        return False
    return int(np.abs((arr >> 8).astype(np.int32) - upright).max()) <= 1


def _pil_to_chw(img: Image.Image) -> torch.Tensor:
    """A PIL image of any mode -> ``[3,H,W]`` float tensor in [0, 1] (grey replicated)."""
    if img.mode in ("P", "PA"):
        img = img.convert("RGBA")  # palette entries may carry transparency; alpha dropped below
    elif img.mode == "1":
        img = img.convert("L")
    elif img.mode not in ("L", "LA", "RGB", "RGBA", "I", "F") and not img.mode.startswith("I;16"):
        img = img.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX...
    arr = np.asarray(img)
    if arr.ndim == 2:
        arr = arr[..., None]
    elif img.mode == "LA":
        arr = arr[..., :1]
    if img.mode == "I":  # 32-bit integer grey: Pillow's mode for some 16-bit files
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 65535:
            raise InputError(f"32-bit integer image with values {lo}..{hi}, outside 0..65535")
        return _hwc_to_tensor(arr, 65535.0)
    return _hwc_to_tensor(arr, _dtype_scale(arr.dtype))


# --- conversion and checks --------------------------------------------------------------------


def _dtype_scale(dtype: np.dtype) -> float:
    """The value of full intensity for an array dtype: 255, 65535 or 1.0 (floats)."""
    if dtype.kind == "f":
        return 1.0
    if dtype.kind == "u" and dtype.itemsize in (1, 2):
        return 255.0 if dtype.itemsize == 1 else 65535.0
    raise InputError(
        f"unsupported array dtype {dtype}: use uint8 (/255), uint16 (/65535) or floats in [0, 1]"
    )


def _hwc_to_tensor(arr: np.ndarray, scale: float) -> torch.Tensor:
    """``[..., H, W, C]`` array (C = 1, 3 or 4) -> ``[..., 3, H, W]`` tensor divided by scale."""
    if arr.shape[-1] not in (1, 3, 4):
        raise InputError(f"expected 1, 3 or 4 channels (grey, RGB, RGBA), got shape {arr.shape}")
    arr = arr[..., :3]  # alpha dropped: scores measure the colour samples, not a composite
    dtype = np.float64 if arr.dtype == np.float64 else np.float32
    if scale != 1.0:  # integers: convert and divide in one pass, the one copy
        arr = np.divide(arr, dtype(scale), dtype=dtype)
    else:
        arr = arr.astype(dtype, copy=False)
    if not arr.flags.writeable or min(arr.strides, default=0) < 0:
        arr = arr.copy()  # torch.from_numpy needs writable memory and non-negative strides
    x = torch.from_numpy(arr).movedim(-1, -3)  # a view: no transposing copy
    if scale == 1.0:
        x = _check_range(x)
    if x.shape[-3] == 1:
        x = x.expand(*x.shape[:-3], 3, *x.shape[-2:]).contiguous()
    return x


def _tensor_to_batch(x: torch.Tensor) -> torch.Tensor:
    """A channel-first tensor -> checked ``[B,3,H,W]``, copying only when something changes."""
    if x.dtype == torch.uint8:
        x = x.float().div_(255)
    elif x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    elif x.dtype not in (torch.float32, torch.float64):
        raise InputError(f"unsupported tensor dtype {x.dtype}: use floats in [0, 1] or uint8")
    if x.ndim in (2, 3):
        x = x.reshape((1,) * (4 - x.ndim) + tuple(x.shape))
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise InputError(
            "tensors are channel-first [H,W], [C,H,W] or [B,C,H,W] with C = 1 or 3; got shape "
            f"{tuple(x.shape)}"
        )
    x = _check_range(x)
    return x.expand(-1, 3, -1, -1).contiguous() if x.shape[1] == 1 else x


def _check_range(x: torch.Tensor) -> torch.Tensor:
    """Refuse empty, NaN/Inf and out-of-[0,1] data; clamp rounding noise of up to 1e-6."""
    if x.numel() == 0:
        raise InputError(f"empty image of shape {tuple(x.shape)}")
    lo, hi = torch.aminmax(memory_order(x.detach()))  # any layout, one pass
    lo, hi = torch.stack([lo, hi]).tolist()  # one device sync
    if not (math.isfinite(lo) and math.isfinite(hi)):  # NaN and Inf propagate to min/max
        n_nan, n_inf = int(torch.isnan(x).sum()), int(torch.isinf(x).sum())
        raise InputError(f"image has {n_nan} NaN and {n_inf} infinite values")
    if lo < -_RANGE_TOLERANCE or hi > 1 + _RANGE_TOLERANCE:
        raise InputError(
            f"image values must lie in [0, 1]; observed min {lo:.6g}, max {hi:.6g} "
            "(divide 8-bit data by 255)"
        )
    return x.clamp(0, 1) if lo < 0 or hi > 1 else x


def _find_reference(
    dist: Path, by_name: dict[str, list[Path]], by_stem: dict[str, list[Path]]
) -> list[Path]:
    """Candidate references of one distorted file, by the first rule that matches any."""
    if hits := by_name.get(dist.name.lower()):
        return hits
    stem = dist.stem.lower()
    if hits := by_stem.get(stem):
        return hits
    for i in range(len(stem) - 1, 0, -1):  # longest prefix first
        if stem[i] in _SEPARATORS and (hits := by_stem.get(stem[:i])):
            return hits
    return []


def _first(names: list[str], n: int = 5) -> str:
    return ", ".join(names[:n]) + (f", ... ({len(names) - n} more)" if len(names) > n else "")

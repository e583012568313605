"""iqa4k.io: decoding real files, the to_batch converter, and file listing / pairing."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from iqa4k.errors import ImageReadError, InputError, OptionError
from iqa4k.io import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    list_images,
    load_image,
    pair_by_name,
    save_image,
    to_batch,
)
from iqa4k.scoring import score_files

# Pillow's transpose for each EXIF orientation, as ImageOps.exif_transpose uses it.
PIL_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def chw(arr: np.ndarray, scale: float = 255.0) -> torch.Tensor:
    """What load_image should return for an HxWx3 integer array."""
    return torch.from_numpy(arr.astype(np.float32)).permute(2, 0, 1) / scale


def smooth_rgb(h: int, w: int) -> np.ndarray:
    """A smooth image JPEG keeps well."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (h + w) + 64], -1).astype(np.uint8)


def png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def png16(arr: np.ndarray, color_type: int) -> bytes:
    """A 16-bit PNG written byte by byte (cv2 cannot write grey+alpha)."""
    h, w = arr.shape[:2]
    rows = b"".join(b"\x00" + arr[i].astype(">u2").tobytes() for i in range(h))
    header = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


def with_exif_chunk(png: bytes, orientation: int) -> bytes:
    """Insert an eXIf chunk carrying an orientation tag before the image data."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    at = png.index(b"IDAT") - 4
    return png[:at] + png_chunk(b"eXIf", exif.tobytes()[6:]) + png[at:]  # no "Exif\0\0" in PNG


def tiff16_rgb(arr: np.ndarray, orientation: int) -> bytes:
    """An uncompressed 16-bit RGB TIFF with an Orientation tag (Pillow and cv2 cannot write one)."""
    h, w, _ = arr.shape
    pixels = arr.astype("<u2").tobytes()
    bits_at = 8 + len(pixels)
    tags = [
        (256, 3, 1, w),
        (257, 3, 1, h),
        (258, 3, 3, bits_at),
        (259, 3, 1, 1),
        (262, 3, 1, 2),
        (273, 4, 1, 8),
        (274, 3, 1, orientation),
        (277, 3, 1, 3),
        (278, 3, 1, h),
        (279, 4, 1, len(pixels)),
        (284, 3, 1, 1),
    ]
    ifd = struct.pack("<H", len(tags)) + b"".join(struct.pack("<HHII", *t) for t in tags)
    return (
        b"II*\0"
        + struct.pack("<I", bits_at + 6)
        + pixels
        + struct.pack("<3H", 16, 16, 16)
        + ifd
        + b"\0\0\0\0"
    )


def oriented(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Pillow's transposition of an HxWxC uint16 array, channel by channel (mode I;16)."""
    if orientation == 1:
        return arr
    planes = [
        np.asarray(Image.fromarray(arr[..., c]).transpose(PIL_TRANSPOSE[orientation]))
        for c in range(arr.shape[2])
    ]
    return np.stack(planes, -1)


# --- load_image: formats and values -----------------------------------------------------------


@pytest.mark.parametrize(
    "ext, options",
    [
        (".png", {}),
        (".bmp", {}),
        (".tif", {}),
        (".tiff", {"compression": "tiff_lzw"}),
        (".webp", {"lossless": True}),
    ],
)
def test_lossless_round_trip_is_exact(tmp_path, rng, ext, options):
    arr = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    path = tmp_path / f"img{ext}"
    Image.fromarray(arr).save(path, **options)
    x = load_image(path)
    assert x.dtype == torch.float32 and x.shape == (3, 37, 53)
    assert torch.equal(x, chw(arr))


def test_gif_palette_256_colours(tmp_path, rng):
    palette = rng.integers(0, 256, (256, 3), dtype=np.uint8)
    index = rng.integers(0, 256, (40, 30), dtype=np.uint8)
    img = Image.fromarray(index, mode="P")
    img.putpalette(palette.tobytes())
    img.save(tmp_path / "p.gif")
    assert torch.equal(load_image(tmp_path / "p.gif"), chw(palette[index]))


def test_jpeg_is_close(tmp_path):
    arr = smooth_rgb(64, 96)
    Image.fromarray(arr).save(tmp_path / "a.jpg", quality=95)
    x = load_image(tmp_path / "a.jpg")
    assert x.shape == (3, 64, 96)
    assert (x - chw(arr)).abs().mean() < 0.01


def test_jpeg_exif_orientation_6_rotates_clockwise(tmp_path):
    # coarse quadrants: top-left red, top-right green, bottom-left blue, bottom-right white
    arr = np.zeros((32, 64, 3), np.uint8)
    arr[:16, :32] = (255, 0, 0)
    arr[:16, 32:] = (0, 255, 0)
    arr[16:, :32] = (0, 0, 255)
    arr[16:, 32:] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(arr).save(tmp_path / "r.jpg", exif=exif, quality=95)
    x = load_image(tmp_path / "r.jpg")
    assert x.shape == (3, 64, 32)  # width and height swapped
    upright = chw(np.rot90(arr, -1).copy())  # 90 degrees clockwise: bottom-left is now top-left
    assert (x - upright).abs().mean() < 0.02
    assert x[:, 2, 2].round().tolist() == [0.0, 0.0, 1.0]


def test_16bit_grey_png_and_tiff_keep_precision(tmp_path, rng):
    data = rng.integers(0, 65536, (21, 34), dtype=np.uint16)
    data[0, 0] = 1000  # not a multiple of 257: an 8-bit detour would change it
    expected = torch.from_numpy(data.astype(np.float32)) / 65535
    for name in ("g.png", "g.tif"):
        assert cv2.imwrite(str(tmp_path / name), data)
        x = load_image(tmp_path / name)
        assert x.dtype == torch.float32 and x.shape == (3, 21, 34)
        for c in range(3):
            assert torch.equal(x[c], expected)
        assert abs(float(x[0, 0, 0]) * 65535 - 1000) < 1e-3


@pytest.mark.parametrize("name", ["c.png", "c.tif"])
def test_16bit_rgb_keeps_precision(tmp_path, rng, name):
    rgb = rng.integers(0, 65536, (19, 27, 3), dtype=np.uint16)
    rgb[0, 0] = (1000, 2001, 65534)
    assert cv2.imwrite(str(tmp_path / name), rgb[..., ::-1].copy())  # cv2 writes BGR
    x = load_image(tmp_path / name)
    assert torch.equal(x, chw(rgb, 65535.0))
    assert torch.allclose(x[:, 0, 0] * 65535, torch.tensor([1000.0, 2001.0, 65534.0]), atol=1e-2)


def test_16bit_rgba_and_grey_alpha_png_drop_alpha_keep_precision(tmp_path, rng):
    rgba = rng.integers(0, 65536, (9, 11, 4), dtype=np.uint16)
    assert cv2.imwrite(str(tmp_path / "a.png"), rgba[..., [2, 1, 0, 3]].copy())
    assert torch.equal(load_image(tmp_path / "a.png"), chw(rgba[..., :3], 65535.0))
    la = rng.integers(0, 65536, (9, 11, 2), dtype=np.uint16)
    (tmp_path / "la.png").write_bytes(png16(la, color_type=4))
    assert torch.equal(load_image(tmp_path / "la.png"), chw(la[..., [0, 0, 0]], 65535.0))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_16bit_png_exif_orientation(tmp_path, rng, orientation):
    rgb = rng.integers(0, 65536, (5, 7, 3), dtype=np.uint16)
    ok, png = cv2.imencode(".png", rgb[..., ::-1].copy())
    (tmp_path / "o.png").write_bytes(with_exif_chunk(png.tobytes(), orientation))
    assert torch.equal(load_image(tmp_path / "o.png"), chw(oriented(rgb, orientation), 65535.0))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_16bit_tiff_orientation_applied_once(tmp_path, rng, orientation):
    # some OpenCV versions apply the TIFF orientation themselves: it must not be applied twice
    rgb = rng.integers(0, 65536, (5, 7, 3), dtype=np.uint16)
    (tmp_path / "o.tif").write_bytes(tiff16_rgb(rgb, orientation))
    assert torch.equal(load_image(tmp_path / "o.tif"), chw(oriented(rgb, orientation), 65535.0))


def test_grey_rgba_la_palette_and_bilevel(tmp_path, rng):
    grey = rng.integers(0, 256, (10, 12), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "l.png")
    x = load_image(tmp_path / "l.png")
    assert torch.equal(x, chw(np.stack([grey] * 3, -1)))

    rgba = rng.integers(0, 256, (10, 12, 4), dtype=np.uint8)
    rgba[..., 3] = 0  # fully transparent: the colour samples must still come through unchanged
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    assert torch.equal(load_image(tmp_path / "rgba.png"), chw(rgba[..., :3]))

    la = np.stack([grey, 255 - grey], -1)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    assert torch.equal(load_image(tmp_path / "la.png"), chw(np.stack([grey] * 3, -1)))

    palette = rng.integers(0, 256, (4, 3), dtype=np.uint8)
    index = rng.integers(0, 4, (10, 12), dtype=np.uint8)
    img = Image.fromarray(index, "P")
    img.putpalette(palette.tobytes())
    img.save(tmp_path / "pt.png", transparency=1)  # colour 1 transparent: kept as its colour
    assert torch.equal(load_image(tmp_path / "pt.png"), chw(palette[index]))

    Image.fromarray(grey > 127).save(tmp_path / "b.png")  # mode "1"
    x = load_image(tmp_path / "b.png")
    assert torch.equal(x[0], torch.from_numpy((grey > 127).astype(np.float32)))


def test_cmyk_jpeg_converted_by_pillow(tmp_path, rng):
    img = Image.fromarray(smooth_rgb(16, 16)).convert("CMYK")
    img.save(tmp_path / "c.jpg", quality=95)
    x = load_image(tmp_path / "c.jpg")
    with Image.open(tmp_path / "c.jpg") as ref:
        assert ref.mode == "CMYK"
        assert torch.equal(x, chw(np.asarray(ref.convert("RGB"))))


def test_float_tiff_taken_as_is_or_refused(tmp_path, rng):
    data = rng.random((8, 9), dtype=np.float32)
    Image.fromarray(data, "F").save(tmp_path / "f.tif")
    assert torch.equal(load_image(tmp_path / "f.tif")[1], torch.from_numpy(data))
    Image.fromarray(data * 2, "F").save(tmp_path / "big.tif")
    with pytest.raises(ImageReadError, match=r"big\.tif.*\[0, 1\].*max 1\.9"):
        load_image(tmp_path / "big.tif")
    data[2, 3] = np.nan
    Image.fromarray(data, "F").save(tmp_path / "nan.tif")
    with pytest.raises(ImageReadError, match="1 NaN"):
        load_image(tmp_path / "nan.tif")


# --- load_image: pixel limit ------------------------------------------------------------------


@pytest.fixture
def png100(tmp_path) -> Path:
    path = tmp_path / "100.png"
    Image.new("RGB", (100, 100), (10, 20, 30)).save(path)
    return path


def test_pixel_limit_argument(png100, monkeypatch):
    monkeypatch.delenv("IQA4K_MAX_PIXELS", raising=False)
    expected = r"100\.png: 100x100 = 10,000 pixels.*limit of 5,000.*max_pixels"
    with pytest.raises(ImageReadError, match=expected):
        load_image(png100, max_pixels=5000)
    assert load_image(png100, max_pixels=10_000).shape == (3, 100, 100)
    assert load_image(png100, max_pixels=0).shape == (3, 100, 100)
    assert DEFAULT_MAX_PIXELS == 16384 * 16384
    with pytest.raises(OptionError):
        load_image(png100, max_pixels=-1)
    big = png100.with_name("big.png")  # a 20000x20000 PNG header: refused before decoding
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr))
    end = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk + end)
    with pytest.raises(
        ImageReadError, match=r"takes 4\.5 GiB as float32 RGB.* 13\.4 GiB at the peak"
    ):
        load_image(big)


def test_pixel_limit_environment(png100, monkeypatch):
    monkeypatch.setenv("IQA4K_MAX_PIXELS", "5000")
    with pytest.raises(ImageReadError, match="IQA4K_MAX_PIXELS"):
        load_image(png100)
    assert load_image(png100, max_pixels=0).shape == (3, 100, 100)  # the argument wins
    monkeypatch.setenv("IQA4K_MAX_PIXELS", "0")
    assert load_image(png100).shape == (3, 100, 100)
    monkeypatch.setenv("IQA4K_MAX_PIXELS", "lots")
    with pytest.raises(OptionError, match="IQA4K_MAX_PIXELS"):
        load_image(png100)
    with pytest.raises(OptionError, match="IQA4K_MAX_PIXELS"):  # once, before any image
        score_files(png100, "piqe", png100.with_name("s.csv"), progress=False)
    assert not png100.with_name("s.csv").exists()


def test_pillow_limit_replaced_by_ours_and_restored(png100, monkeypatch):
    # 10,000 pixels is over twice Pillow's limit here: Pillow alone would raise
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    assert load_image(png100).shape == (3, 100, 100)
    assert Image.MAX_IMAGE_PIXELS == 1000
    with pytest.raises(ImageReadError):
        load_image(png100, max_pixels=10)
    assert Image.MAX_IMAGE_PIXELS == 1000


def test_concurrent_loads_restore_pillow_limit(png100, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with ThreadPoolExecutor(4) as pool:
        shapes = list(pool.map(lambda _: load_image(png100).shape, range(32)))
    assert shapes == [(3, 100, 100)] * 32
    assert Image.MAX_IMAGE_PIXELS == 1000


# --- load_image: errors -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["t.jpg", "t.png", "t16.png"])
def test_truncated_files_raise(tmp_path, name):
    full = tmp_path / f"full_{name}"
    if name == "t16.png":
        assert cv2.imwrite(str(full), np.full((64, 64, 3), 40000, np.uint16))
    else:
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(full)
    data = full.read_bytes()
    (tmp_path / name).write_bytes(data[: len(data) // 2])
    assert not ImageFile.LOAD_TRUNCATED_IMAGES
    with pytest.raises(ImageReadError, match=name.replace(".", r"\.")):
        load_image(tmp_path / name)


def test_unreadable_paths(tmp_path):
    (tmp_path / "x.png").write_text("not an image\n")
    with pytest.raises(ImageReadError, match=r"x\.png: not a PNG, JPEG"):
        load_image(tmp_path / "x.png")
    with pytest.raises(ImageReadError, match=r"missing\.png: no such file"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ImageReadError, match="directory"):
        load_image(tmp_path)
    Image.new("RGB", (4, 4)).save(tmp_path / "a.ppm")  # Pillow reads it, iqa4k does not
    with pytest.raises(ImageReadError, match=r"a\.ppm"):
        load_image(tmp_path / "a.ppm")
    assert issubclass(ImageReadError, InputError)


def test_zero_size_png(tmp_path):
    Image.new("L", (3, 3)).save(tmp_path / "ok.png")
    png = (tmp_path / "ok.png").read_bytes()
    ihdr = png.index(b"IHDR")
    header = struct.pack(">II", 0, 3) + png[ihdr + 12 : ihdr + 17]
    (tmp_path / "z.png").write_bytes(
        png[: ihdr - 4] + png_chunk(b"IHDR", header) + png[ihdr + 21 :]
    )
    with pytest.raises(ImageReadError, match=r"z\.png"):
        load_image(tmp_path / "z.png")


# --- to_batch ---------------------------------------------------------------------------------


def test_to_batch_tensor_shapes(rng):
    x = torch.from_numpy(rng.random((2, 3, 5, 6), dtype=np.float32))
    assert to_batch(x) is x  # valid input: returned as is, no copy
    assert to_batch(x).data_ptr() == x.data_ptr()
    assert torch.equal(to_batch(x[0]), x[:1])
    grey = x[:, :1]
    assert torch.equal(to_batch(grey), grey.expand(-1, 3, -1, -1))
    assert torch.equal(to_batch(grey[0]), grey[:1].expand(-1, 3, -1, -1))
    assert torch.equal(to_batch(grey[0, 0]), grey[:1].expand(-1, 3, -1, -1))
    for bad in (
        x[:, :2],
        torch.rand(1, 5, 4, 4),
        torch.rand(1, 4, 4, 4),
        torch.rand(4, 4, 3),
        torch.rand(3),
        torch.rand(1, 1, 3, 4, 4),
    ):
        with pytest.raises(InputError, match="channel-first"):
            to_batch(bad)


def test_to_batch_tensor_dtypes(rng):
    u8 = torch.from_numpy(rng.integers(0, 256, (3, 4, 5), dtype=np.uint8))
    out = to_batch(u8)
    assert out.dtype == torch.float32 and torch.equal(out[0], u8.float() / 255)
    half = torch.rand(1, 3, 4, 4).half()
    assert to_batch(half).dtype == torch.float32
    assert torch.equal(to_batch(half), half.float())
    double = torch.rand(1, 3, 4, 4, dtype=torch.float64)
    assert to_batch(double) is double
    for bad in (torch.zeros(3, 4, 4, dtype=torch.int64), torch.zeros(3, 4, 4, dtype=torch.bool)):
        with pytest.raises(InputError, match="dtype"):
            to_batch(bad)


def test_to_batch_range_and_finiteness():
    x = torch.rand(2, 3, 4, 4)
    x[0, 1, 2, 3] = 1.5
    x[1, 0, 0, 0] = -0.25
    with pytest.raises(InputError, match=r"\[0, 1\].*min -0\.25, max 1\.5"):
        to_batch(x)
    x = torch.rand(1, 3, 4, 4)
    x[0, 0, 0, :2] = float("nan")
    x[0, 0, 1, 0] = float("inf")
    with pytest.raises(InputError, match="2 NaN and 1 infinite"):
        to_batch(x)
    x = torch.full((1, 3, 2, 2), 0.5)
    x[0, 0, 0, 0] = 1 + 5e-7  # rounding noise: clamped, not refused
    x[0, 0, 0, 1] = -5e-7
    out = to_batch(x)
    assert float(out.max()) == 1.0 and float(out.min()) == 0.0
    with pytest.raises(InputError, match="empty"):
        to_batch(torch.rand(1, 3, 0, 4))


def test_to_batch_gradients_flow():
    x = torch.rand(1, 3, 4, 4, requires_grad=True)
    out = to_batch(x)
    assert out.requires_grad
    (out * 2).sum().backward()
    assert torch.equal(x.grad, torch.full_like(x, 2.0))
    g = torch.rand(1, 1, 4, 4, requires_grad=True)
    to_batch(g).sum().backward()
    assert torch.equal(g.grad, torch.full_like(g, 3.0))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_to_batch_keeps_device():
    x = torch.rand(1, 3, 4, 4, device="cuda")
    assert to_batch(x) is x
    assert to_batch((x * 255).to(torch.uint8)).device == x.device


def test_to_batch_arrays(rng):
    rgb = rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)
    assert torch.equal(to_batch(rgb), chw(rgb)[None])
    assert torch.equal(to_batch(rgb[..., ::-1]), chw(rgb[..., ::-1].copy())[None])  # cv2 BGR view
    rgba = np.concatenate([rgb, np.zeros_like(rgb[..., :1])], -1)
    assert torch.equal(to_batch(rgba), chw(rgb)[None])
    grey = rgb[..., 0]
    assert torch.equal(to_batch(grey), chw(np.stack([grey] * 3, -1))[None])
    assert torch.equal(to_batch(grey[..., None]), to_batch(grey))
    deep = rng.integers(0, 65536, (6, 7, 3), dtype=np.uint16)
    assert torch.equal(to_batch(deep), chw(deep, 65535.0)[None])
    floats = rng.random((6, 7, 3), dtype=np.float32)
    out = to_batch(floats)
    assert torch.equal(out, torch.from_numpy(floats).permute(2, 0, 1)[None])
    assert to_batch(floats.astype(np.float64)).dtype == torch.float64
    batch = rng.integers(0, 256, (2, 6, 7, 3), dtype=np.uint8)
    assert torch.equal(to_batch(batch), torch.stack([chw(batch[0]), chw(batch[1])]))
    with pytest.raises(InputError, match=r"max 1\.99"):
        to_batch(floats * 2)
    with pytest.raises(InputError, match="int64"):
        to_batch(rgb.astype(np.int64))
    for bad in (
        np.zeros((6, 7, 2), np.uint8),
        np.zeros((6, 7, 5), np.uint8),
        np.zeros((2, 6, 7, 5), np.uint8),
        np.zeros((3, 6, 7)),
        np.zeros(5),
    ):
        with pytest.raises(InputError):
            to_batch(bad)


def test_to_batch_pil_paths_and_lists(tmp_path, rng):
    rgb = rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)
    assert torch.equal(to_batch(Image.fromarray(rgb)), chw(rgb)[None])
    grey = Image.fromarray(rgb[..., 1])
    assert torch.equal(to_batch(grey), chw(np.stack([rgb[..., 1]] * 3, -1))[None])
    pa = Image.fromarray(rgb).convert("P").convert("PA")
    assert torch.equal(to_batch(pa), to_batch(pa.convert("RGB")))
    wide = np.array([[0, 1000, 65535]], np.int32)  # mode "I": 16-bit data in older Pillow
    expected = torch.tensor(wide[0] / 65535.0, dtype=torch.float32)
    assert torch.equal(to_batch(Image.fromarray(wide, "I"))[0, 2, 0], expected)
    with pytest.raises(InputError, match="0..65535"):
        to_batch(Image.fromarray(wide * 2, "I"))
    floats = rng.random((6, 7), dtype=np.float32)
    assert torch.equal(to_batch(Image.fromarray(floats, "F"))[0, 0], torch.from_numpy(floats))

    Image.fromarray(rgb).save(tmp_path / "a.png")
    Image.fromarray(rgb[::-1].copy()).save(tmp_path / "b.png")
    assert torch.equal(to_batch(str(tmp_path / "a.png")), chw(rgb)[None])
    assert torch.equal(to_batch(tmp_path / "a.png"), chw(rgb)[None])
    stacked = to_batch([tmp_path / "a.png", str(tmp_path / "b.png"), rgb, Image.fromarray(rgb)])
    assert stacked.shape == (4, 3, 6, 7)
    assert torch.equal(stacked[1], chw(rgb[::-1].copy()))
    assert torch.equal(stacked[2], stacked[0]) and torch.equal(stacked[3], stacked[0])
    assert to_batch((torch.rand(3, 6, 7), torch.rand(2, 3, 6, 7))).shape == (3, 3, 6, 7)

    with pytest.raises(InputError, match=r"share a size.*6x7, 7x6"):
        to_batch([rgb, rgb.transpose(1, 0, 2)])
    with pytest.raises(InputError, match="empty"):
        to_batch([])
    with pytest.raises(InputError, match="int"):
        to_batch(3)
    with pytest.raises(ImageReadError, match="no such file"):
        to_batch([tmp_path / "a.png", tmp_path / "missing.png"])


# --- save_image -------------------------------------------------------------------------------


def test_save_image_round_trip(tmp_path, rng):
    arr = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    x = chw(arr)
    save_image(x, tmp_path / "a.png")
    assert torch.equal(load_image(tmp_path / "a.png"), x)
    save_image(x[None], tmp_path / "b.png")
    assert torch.equal(load_image(tmp_path / "b.png"), x)
    noisy = x + torch.where(x > 0.5, 0.3, -0.3)  # out of range: clamped on the way out
    save_image(noisy, tmp_path / "c.png")
    assert torch.equal(load_image(tmp_path / "c.png"), noisy.clamp(0, 1).mul(255).round() / 255)
    smooth = chw(smooth_rgb(32, 48))
    save_image(smooth, tmp_path / "d.jpg")
    assert (load_image(tmp_path / "d.jpg") - smooth).abs().mean() < 0.01
    with pytest.raises(InputError):
        save_image(torch.rand(2, 3, 4, 4), tmp_path / "e.png")
    with pytest.raises(InputError):
        save_image(torch.full((3, 4, 4), float("nan")), tmp_path / "e.png")


# --- list_images and pair_by_name -------------------------------------------------------------


def touch(folder: Path, *names: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")
    return [folder / n for n in names]


def test_list_images(tmp_path):
    assert IMAGE_EXTENSIONS >= {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp"}
    touch(tmp_path / "d", "b.PNG", "a.jpg", "c.txt", ".hidden.png", "e.TIFF", "f.webp")
    (tmp_path / "d" / "sub.png").mkdir()  # a folder named like an image is skipped
    touch(tmp_path / "d" / "nested", "z.png")  # not recursive
    names = [p.name for p in list_images(tmp_path / "d")]
    assert names == ["a.jpg", "b.PNG", "e.TIFF", "f.webp"]
    odd = touch(tmp_path, "raw.dat")[0]
    listed = list_images([odd, str(tmp_path / "d")])
    assert listed[0] == odd and len(listed) == 5  # files are kept as given, any extension
    with pytest.raises(InputError, match="nope"):
        list_images(tmp_path / "nope")


def test_pair_by_name_rules(tmp_path):
    ref = tmp_path / "ref"
    touch(ref, "I01.BMP", "I02.png", "baboon.png", "img_01.png", "img.png", "x.png", "x.bmp")
    dist = touch(
        tmp_path / "dist",
        "I02.png",  # same name
        "i01_01_5.bmp",  # prefix + "_", case-insensitive
        "baboon_x4_bicubic.png",
        "img_01_blur.png",  # longest prefix wins over "img"
        "img-jpeg.png",  # "-" separator
        "img.07.png",  # "." separator
        "x.png",  # same name beats same stem (x.bmp)
        "I02.jpg",
    )  # same stem, other extension
    pairs = pair_by_name(dist, ref)
    assert [(d.name, r.name) for d, r in pairs] == [
        ("I02.png", "I02.png"),
        ("i01_01_5.bmp", "I01.BMP"),
        ("baboon_x4_bicubic.png", "baboon.png"),
        ("img_01_blur.png", "img_01.png"),
        ("img-jpeg.png", "img.png"),
        ("img.07.png", "img.png"),
        ("x.png", "x.png"),
        ("I02.jpg", "I02.png"),
    ]
    # a list of reference files works like the folder
    assert pair_by_name(dist, list_images(ref)) == pairs


def test_pair_by_name_single_reference_and_errors(tmp_path):
    ref = touch(tmp_path / "ref", "I01.png", "I01.bmp", "baboon.png")
    dist = touch(tmp_path / "dist", "anything.png", "other.jpg")
    assert pair_by_name(dist, ref[2]) == [(d, ref[2]) for d in dist]  # one file pairs all
    assert pair_by_name(dist, str(ref[2])) == [(d, ref[2]) for d in dist]

    with pytest.raises(InputError, match=r"2 distorted image\(s\) have no reference.*anything"):
        pair_by_name(dist, tmp_path / "ref")
    with pytest.raises(InputError, match=r"I01_03\.png \(I01\.(png|bmp) / I01\.(png|bmp)\)"):
        pair_by_name(touch(tmp_path / "d2", "I01_03.png"), tmp_path / "ref")
    with pytest.raises(InputError, match=r"baboonx4\.png"):  # no separator after the stem
        pair_by_name(touch(tmp_path / "d3", "baboonx4.png"), tmp_path / "ref")
    many = touch(tmp_path / "d4", *[f"u{i}.png" for i in range(8)])
    with pytest.raises(InputError, match=r"8 distorted.*u4\.png, \.\.\. \(3 more\)"):
        pair_by_name(many, tmp_path / "ref")
    touch(tmp_path / "empty")
    with pytest.raises(InputError, match="no reference images"):
        pair_by_name(dist, tmp_path / "empty")

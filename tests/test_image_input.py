"""Photos in: every kind of bad file is one line and exit 2 with nothing written; odd but
valid images (grayscale, CMYK, 16-bit, alpha, palette, EXIF-rotated) are read upright as
RGB. Files are built in tmp_path; the models run only where a test needs a hand."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO
from halo_fakes import run_cli
from PIL import Image

from halohand.apps.cli import reconstruct as reconstruct_cli
from halohand.core.errors import HalohandInputError
from halohand.image import from_image, load_photo
from halohand.image.io import MAX_PIXELS

PHOTOS = REPO / "examples" / "photos"
THUMB_UP = PHOTOS / "mpsamples_hand_thumb_up.jpg"


def png_header(path: Path, width: int, height: int) -> Path:
    """A small PNG that declares ``width x height`` pixels (a decompression bomb's header:
    its one data chunk holds a few bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def _gradient(w: int = 64, h: int = 48) -> np.ndarray:
    x = np.linspace(0, 255, w)[None, :, None]
    y = np.linspace(0, 255, h)[:, None, None]
    return np.broadcast_to(np.concatenate([x + 0 * y, y + 0 * x, (x + y) / 2], 2), (h, w, 3))


def bad_files(tmp: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, what its error line says)."""
    (tmp / "text.jpg").write_text("not an image at all\n")
    (tmp / "empty.png").write_bytes(b"")
    jpeg = THUMB_UP.read_bytes()
    (tmp / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    Image.new("RGB", (1, 1)).save(tmp / "one.png")
    return {
        "not an image": (tmp / "text.jpg", "not an image"),
        "empty": (tmp / "empty.png", "empty file"),
        "truncated": (tmp / "truncated.jpg", "truncated"),
        "1x1": (tmp / "one.png", "too small"),
        "huge": (png_header(tmp / "huge.png", 20000, 20000), "too large"),
        "over our limit": (
            png_header(tmp / "big.png", 8000, 8000),
            "8000x8000 pixels is too large",
        ),
        "folder": (tmp, "folder"),
    }


@pytest.mark.parametrize(
    "kind", ["not an image", "empty", "truncated", "1x1", "huge", "over our limit", "folder"]
)
def test_bad_files_are_one_line_and_exit_2_with_nothing_written(
    monkeypatch, capsys, tmp_path, kind
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    path, says = bad_files(folder)[kind]
    with pytest.raises(HalohandInputError, match=says):
        load_photo(path)
    monkeypatch.setattr(reconstruct_cli, "_load_model", lambda *a: pytest.fail("model loaded"))
    out = tmp_path / "out"
    # a good photo first: a bad one anywhere in the list stops the run before any output
    code, stdout, err = run_cli(monkeypatch, capsys, "image", THUMB_UP, path, "--out-dir", out)
    assert code == 2, (stdout, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], err
    assert str(path) in lines[0]
    assert not out.exists() or not any(out.iterdir())


def test_huge_header_is_refused_without_decoding(tmp_path) -> None:
    # 400 MP declared: refused on the header alone, fast and without memory
    with pytest.raises(HalohandInputError, match=f"at most {MAX_PIXELS:,} pixels"):
        load_photo(png_header(tmp_path / "huge.png", 20000, 20000))


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "I;16", "I", "F", "1"])
def test_every_image_mode_reads_as_rgb(tmp_path, mode) -> None:
    rgb = _gradient().astype(np.uint8)
    img = Image.fromarray(rgb)
    if mode == "I;16":
        img = Image.fromarray(rgb[..., 0].astype(np.uint16) * 257)
        assert img.mode == "I;16"
    elif mode in ("I", "F"):
        img = img.convert("L").convert(mode)
    elif mode == "RGBA":
        img = img.convert("RGBA")
        img.putalpha(Image.fromarray(np.full(rgb.shape[:2], 128, np.uint8)))
    else:
        img = img.convert(mode)
    ext = "jpg" if mode == "CMYK" else ("tif" if mode in ("I", "F") else "png")
    path = tmp_path / f"img.{ext}"
    img.save(path)
    photo = load_photo(path)
    assert photo.rgb.shape == (48, 64, 3) and photo.rgb.dtype == np.uint8
    if mode in ("L", "I;16", "I", "F"):
        gray = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.int16)
        expect = rgb[..., 0].astype(np.int16) if mode == "I;16" else gray
        assert np.abs(photo.rgb[..., 1].astype(np.int16) - expect).max() <= 1
    if mode == "RGBA":  # half-transparent over black
        assert np.abs(photo.rgb.astype(int) - np.round(rgb.astype(float) * 128 / 255)).max() <= 2


def test_arrays_and_pil_images_are_accepted_and_bad_arrays_refused() -> None:
    rgb = _gradient().astype(np.uint8)
    assert np.array_equal(load_photo(rgb).rgb, rgb)
    assert np.array_equal(load_photo(Image.fromarray(rgb)).rgb, rgb)
    assert load_photo(rgb[..., 0]).rgb.shape == (48, 64, 3)
    with pytest.raises(HalohandInputError, match="uint8"):
        load_photo(rgb.astype(np.float32))
    with pytest.raises(HalohandInputError, match="too small"):
        load_photo(np.zeros((4, 4, 3), np.uint8))


def test_from_image_refuses_bad_options() -> None:
    rgb = _gradient().astype(np.uint8)
    for bad in (0, 11, 1.5, True):
        with pytest.raises(HalohandInputError, match="max_hands"):
            from_image(rgb, max_hands=bad)
    for bad in (0.0, -5.0, float("nan")):
        with pytest.raises(HalohandInputError, match="focal_px"):
            from_image(rgb, focal_px=bad)


def test_exif_rotated_photo_is_read_upright(tmp_path) -> None:
    upright = Image.open(THUMB_UP)
    # stored turned a quarter left, with the orientation tag (6) that turns it back
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.png"
    stored.save(path, exif=exif.tobytes())
    photo = load_photo(path)
    assert np.array_equal(photo.rgb, np.asarray(upright.convert("RGB")))
    a, b = from_image(path), from_image(THUMB_UP)
    assert len(a.hands) == len(b.hands) == 1 and a.hands[0].side == b.hands[0].side
    assert np.abs(a.hands[0].landmarks.pixels - b.hands[0].landmarks.pixels).max() < 1e-6


def test_exif_focal_length_sets_the_camera(tmp_path) -> None:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0xA405] = 26  # 26 mm on 35 mm film
    path = tmp_path / "phone.jpg"
    Image.fromarray(_gradient(300, 400).astype(np.uint8)).save(path, exif=exif.tobytes())
    photo = load_photo(path)
    assert photo.focal_35mm == 26
    assert photo.focal_px() == pytest.approx(26 * 500 / np.hypot(36, 24))
    result = from_image(path)
    assert result.focal_source == "exif" and result.hands == ()
    assert result.camera.intrinsics[0, 0] == pytest.approx(photo.focal_px())
    assert from_image(path, focal_px=700.0).focal_source == "given"


def test_photo_without_hand_is_not_an_error(monkeypatch, capsys, tmp_path) -> None:
    Image.fromarray(_gradient(160, 120).astype(np.uint8)).save(tmp_path / "wall.png")
    monkeypatch.setattr(reconstruct_cli, "_load_model", lambda *a: object())
    out = tmp_path / "out"
    code, stdout, err = run_cli(
        monkeypatch, capsys, "image", tmp_path / "wall.png", "--out-dir", out
    )
    assert code == 0, err
    assert stdout.strip() == f"{tmp_path / 'wall.png'}: no hand found -> {out / 'wall.json'}"
    import json

    report = json.loads((out / "wall.json").read_text())
    assert report["hands"] == [] and report["width"] == 160
    assert sorted(p.name for p in out.iterdir()) == ["wall.json", "wall_overlay.png"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--max-hands", "0"], "--max-hands must be >= 1"),
        (["--max-hands", "11"], "--max-hands must be at most 10"),
        (["--focal-px", "-3"], "--focal-px must be a positive"),
        (["--resolution", "4"], "resolution must be"),
        (["--ext", "stl"], "unknown mesh format"),
        (["--touching", "glue"], "--touching"),
    ],
)
def test_bad_options_are_one_line(monkeypatch, capsys, tmp_path, args, says) -> None:
    code, _, err = run_cli(monkeypatch, capsys, "image", THUMB_UP, "--out-dir", tmp_path, *args)
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1, err


def test_two_photos_with_one_name_are_refused(monkeypatch, capsys, tmp_path) -> None:
    (tmp_path / "a").mkdir()
    Image.open(THUMB_UP).save(tmp_path / "a" / "mpsamples_hand_thumb_up.png")
    code, _, err = run_cli(
        monkeypatch, capsys, "image", THUMB_UP, tmp_path / "a" / "mpsamples_hand_thumb_up.png",
        "--out-dir", tmp_path / "out",
    )  # fmt: skip
    assert code == 2 and "rename one" in err

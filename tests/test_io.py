"""Image I/O: exact round trips, bit depths, channels, and one clear error per bad file."""

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from ncvsd_inverse.io import ImageReadError, list_images, read_image, write_image


def test_png_round_trip_is_exact(data_dir, tmp_path):
    original = np.asarray(Image.open(data_dir / "101087.png"))
    image = read_image(data_dir / "101087.png")
    assert image.shape == (1, 3, *original.shape[:2]) and image.dtype == torch.float32
    assert image.min() >= -1 and image.max() <= 1
    write_image(image, tmp_path / "copy.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "copy.png")), original)
    assert torch.equal(read_image(tmp_path / "copy.png"), image)


def test_gray_16bit_rgba_jpeg_bmp_tiff(tmp_path):
    rng = np.random.default_rng(0)
    gray16 = rng.integers(0, 65536, (20, 30), dtype=np.uint16)
    Image.fromarray(gray16).save(tmp_path / "g16.png")
    image = read_image(tmp_path / "g16.png")
    assert image.shape == (1, 1, 20, 30)
    assert np.allclose(((image[0, 0].numpy() + 1) / 2 * 65535), gray16, atol=0.02)
    write_image(image, tmp_path / "g16_out.png", bit_depth=16)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "g16_out.png")).astype(np.uint16), gray16)

    rgb16 = rng.integers(0, 65536, (12, 14, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "c16.tif", rgb16)
    image = read_image(tmp_path / "c16.tif")
    write_image(image, tmp_path / "c16_out.tif", bit_depth=16)
    assert np.array_equal(tifffile.imread(tmp_path / "c16_out.tif"), rgb16)

    rgba = rng.integers(0, 256, (10, 10, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    with pytest.warns(UserWarning, match="alpha channel dropped"):
        assert read_image(tmp_path / "a.png").shape == (1, 3, 10, 10)

    gray8 = rng.integers(0, 256, (9, 11), dtype=np.uint8)
    Image.fromarray(gray8).save(tmp_path / "g.bmp")
    expected = torch.from_numpy(gray8 / 255.0 * 2 - 1).float()[None, None]
    assert torch.allclose(read_image(tmp_path / "g.bmp"), expected, atol=1e-6)
    Image.fromarray(rgba[..., :3]).save(tmp_path / "c.jpg")
    assert read_image(tmp_path / "c.jpg").shape == (1, 3, 10, 10)
    assert [p.name for p in list_images(tmp_path)][:2] == ["a.png", "c.jpg"]


def test_bad_files_give_one_clear_error(tmp_path, data_dir):
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ImageReadError, match="not an image file"):
        read_image(tmp_path / "notes.png")
    truncated = (data_dir / "101087.png").read_bytes()[:5000]
    (tmp_path / "cut.png").write_bytes(truncated)
    with pytest.raises(ImageReadError, match="truncated"):
        read_image(tmp_path / "cut.png")
    with pytest.raises(ImageReadError, match="is a folder"):
        read_image(tmp_path)


def test_write_errors_and_atomicity(tmp_path, monkeypatch):
    image = torch.zeros(1, 3, 8, 8)
    with pytest.raises(OSError, match="does not exist"):
        write_image(image, tmp_path / "nowhere" / "x.png")
    with pytest.raises(ValueError, match="lossless"):
        write_image(image, tmp_path / "x.jpg")

    def broken_save(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        write_image(image, tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []  # no half-written file, no temp file


def test_an_image_of_zero_pixels_is_refused(tmp_path):
    """Found by the fuzz suite: a corrupted TIFF that decodes to 0 pixels must not reach the solver."""
    import tifffile

    tifffile.imwrite(tmp_path / "empty.tif", np.zeros((0, 5, 3), np.uint8))
    with pytest.raises(ImageReadError, match="empty image"):
        read_image(tmp_path / "empty.tif")


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_get_the_umask_mode_not_a_temp_files(tmp_path, umask):
    import os

    from ncvsd_inverse.files import atomic_write_text

    old = os.umask(umask)
    try:
        write_image(torch.zeros(1, 3, 4, 4), tmp_path / "x.png")
        atomic_write_text(tmp_path / "r.json", "{}")
    finally:
        os.umask(old)
    for name in ("x.png", "r.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "x.png"]  # no temporary files left

"""Image files <-> ``(1, C, H, W)`` float32 tensors in [-1, 1] (DESIGN 2: ``x = 2 v / max - 1``).

Reads PNG, JPEG, TIFF and BMP, 8- and 16-bit, gray (C = 1), RGB (C = 3) and RGBA (alpha
dropped with a warning). Writes 8-bit PNG/BMP/TIFF (lossless for 8-bit data) or 16-bit
PNG (gray) / TIFF (any) with ``bit_depth=16``. Writes are atomic: a temporary file in the
same folder is renamed into place, so a failure never leaves a half-written image, and the
file gets the mode the umask gives any new file.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ncvsd_inverse.files import atomic_write

READABLE = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


class ImageReadError(ValueError):
    """A missing, unreadable or truncated image file (message is one line, for users)."""


def _read_array(path: Path) -> np.ndarray:
    """Decode ``path`` to an ``(H, W)`` or ``(H, W, C)`` integer array (uint8 or uint16)."""
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        try:
            return np.asarray(tifffile.imread(path))
        except Exception:  # not a TIFF tifffile can read: let PIL try (e.g. PackBits 8-bit)
            pass
    with Image.open(path) as image:
        image.load()
        if image.mode in ("I;16", "I;16B", "I;16L", "I"):
            return np.asarray(image).astype(np.uint16)
        if image.mode not in ("L", "RGB", "RGBA", "LA"):
            image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        return np.asarray(image)


def read_image(path: str | Path) -> torch.Tensor:
    """Read an image file as a ``(1, C, H, W)`` float32 tensor in [-1, 1] (C = 1 or 3)."""
    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"{path}: no such file")
    if path.is_dir():
        raise ImageReadError(f"{path}: is a folder, not an image file")
    try:
        array = _read_array(path)
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not an image file PIL can read "
                             f"(supported: {', '.join(READABLE)})") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageReadError(f"{path}: unreadable or truncated image ({error})") from None
    if array.dtype == np.uint8:
        scale = 255.0
    elif array.dtype == np.uint16:
        scale = 65535.0
    elif array.dtype == bool:
        array, scale = array.astype(np.uint8), 1.0
    else:
        raise ImageReadError(f"{path}: unsupported pixel type {array.dtype} (need 8- or 16-bit)")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise ImageReadError(f"{path}: unsupported image layout {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageReadError(f"{path}: empty image ({array.shape[1]}x{array.shape[0]} pixels)")
    if array.shape[2] in (2, 4):
        warnings.warn(f"{path}: alpha channel dropped", stacklevel=2)
        array = array[:, :, :-1]
    tensor = torch.from_numpy(array.astype(np.float32) / scale).permute(2, 0, 1)[None]
    return (tensor * 2 - 1).contiguous()


def read_mask(path: str | Path) -> torch.Tensor:
    """Read a mask image (white = known, black = missing) as a ``(H, W)`` 0/1 float tensor."""
    image = read_image(path)  # (1, C, H, W) in [-1, 1]
    return (image.mean(dim=1)[0] > 0).float()


def to_uint(image: torch.Tensor, bit_depth: int = 8) -> np.ndarray:
    """``(1, C, H, W)`` or ``(C, H, W)`` in [-1, 1] -> ``(H, W)`` / ``(H, W, C)`` uint8/uint16 array."""
    if image.ndim == 4:
        if image.shape[0] != 1:
            raise ValueError(f"write one image at a time, got a batch of {image.shape[0]}")
        image = image[0]
    if image.ndim != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"image must be (1, C, H, W) with C = 1 or 3, got {tuple(image.shape)}")
    top = 255 if bit_depth == 8 else 65535
    scaled = ((image.detach().float().cpu().clamp(-1, 1) + 1) / 2 * top).round()
    array = scaled.permute(1, 2, 0).numpy().astype(np.uint8 if bit_depth == 8 else np.uint16)
    return array[:, :, 0] if array.shape[2] == 1 else array


def write_image(image: torch.Tensor, path: str | Path, bit_depth: int = 8) -> Path:
    """Write a ``(1, C, H, W)`` tensor in [-1, 1] to ``path`` atomically; returns the path.

    ``bit_depth=16`` writes 16-bit PNG (gray only) or TIFF. Values outside [-1, 1] are clipped.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".png", ".tif", ".tiff", ".bmp"):
        raise ValueError(f"{path}: write PNG, TIFF or BMP (lossless); {suffix or 'no suffix'} is not supported")
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")
    array = to_uint(image, bit_depth)
    if bit_depth == 16 and (suffix == ".bmp" or (suffix == ".png" and array.ndim == 3)):
        raise ValueError(f"{path}: 16-bit colour needs a .tif file")

    def encode(temp: Path) -> None:
        if suffix in (".tif", ".tiff"):
            import tifffile

            tifffile.imwrite(temp, array)
        else:
            Image.fromarray(array).save(temp, format="PNG" if suffix == ".png" else "BMP")

    atomic_write(path, encode)
    return path


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly inside ``folder`` (by suffix), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageReadError(f"{folder}: no such folder")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in READABLE and p.is_file())


def read_name_list(path: str | Path | None) -> list[str] | None:
    """The image file names listed in a text file, one per line (``#`` comments and blank lines
    skipped); None for no file. Used for validation splits and exclude lists."""
    if path is None:
        return None
    lines = Path(path).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def read_centre_crops(folder: str | Path, names: list[str] | tuple[str, ...] | None = None, first: int | None = None,
                      size: int | None = None) -> list[tuple[str, torch.Tensor]]:
    """``(name, image)`` for the images of ``folder`` (only ``names`` if given; the first ``first``
    by name), each cut to its centre ``size x size`` (None: whole) with gray replicated to RGB:
    ``(1, 3, size, size)`` in [-1, 1]. Raises :class:`ImageReadError` for an image smaller than
    ``size`` or a folder with no image."""
    paths = [p for p in list_images(folder) if names is None or p.name in names][:first]
    if not paths:
        raise ImageReadError(f"{folder}: no images" + (" of the listed names" if names is not None else ""))
    crops = []
    for path in paths:
        image = read_image(path)
        image = image.expand(-1, 3, -1, -1) if image.shape[1] == 1 else image
        if size is not None:
            if min(image.shape[-2:]) < size:
                raise ImageReadError(f"{path}: {image.shape[-2]}x{image.shape[-1]} is smaller than the crop {size}")
            top, left = (image.shape[-2] - size) // 2, (image.shape[-1] - size) // 2
            image = image[..., top:top + size, left:left + size]
        crops.append((path.name, image))
    return crops

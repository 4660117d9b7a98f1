"""Tiled network evaluation: large images in overlapping tiles, blended, with memory bounded by
the tile.

The UNet is local: an output pixel depends only on inputs within its receptive radius ``R``
(:func:`receptive_radius`). A tile's output is therefore exact wherever it lies at least ``R``
from the tile's inner edges (edges that cut the image; the image's own borders are padded the
same way as an untiled call). :func:`tiled_apply` gives each tile a weight that is 0 within
``margin`` of its inner edges and rises smoothly (sin^2) to 1 over ``ramp`` pixels, and
normalises the weighted sum: with ``margin >= R`` the result equals the untiled call up to float
rounding; a smaller margin trades a small error for less overlap.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from .networks import pad_to_multiple

Tensor = torch.Tensor


#: The smallest tile: below it the overlap would dominate.
MIN_TILE = 16


def check_tile(tile: int | None) -> None:
    """Refuse a tile size that is not None or an integer of at least :data:`MIN_TILE` pixels."""
    if tile is not None and (not isinstance(tile, int) or isinstance(tile, bool) or tile < MIN_TILE):
        raise ValueError(f"tile must be at least {MIN_TILE} pixels, got {tile!r}")


def tile_starts(length: int, tile: int, overlap: int, multiple: int = 1) -> list[int]:
    """Starts of tiles of ``tile`` pixels covering ``[0, length)`` with at least ``overlap``
    pixels shared by neighbours; every start is a multiple of ``multiple`` when ``length`` and
    ``tile`` are (the last tile ends at ``length``)."""
    if tile >= length:
        return [0]
    stride = max((tile - overlap) // multiple * multiple, multiple)
    starts = list(range(0, length - tile, stride))
    return starts + [length - tile]


def balanced_tile(length: int, tile: int, overlap: int, multiple: int = 1) -> int:
    """The smallest tile (a multiple of ``multiple``, at most ``tile``) that covers ``[0,
    length)`` with as few tiles as ``tile`` itself needs, neighbours sharing ``overlap`` pixels.

    With ``n`` the number of tiles of ``tile`` pixels (:func:`tile_starts`), tiles of about
    ``(length + (n - 1) overlap) / n`` pixels also need ``n``: the network evaluates ``n`` times
    that instead of ``n tile`` pixels per row. E.g. 1024 pixels in tiles of at most 512 with a
    124-pixel overlap: 3 tiles of 432, 1296 pixels evaluated per row instead of 1536.
    """
    if tile >= length:
        return length
    largest = max(tile // multiple * multiple, multiple)
    count = len(tile_starts(length, largest, overlap, multiple))
    fitted = math.ceil((length + (count - 1) * overlap) / count / multiple) * multiple
    while fitted < largest and len(tile_starts(length, fitted, overlap, multiple)) > count:
        fitted += multiple  # the stride is rounded down to the multiple
    return min(fitted, largest)


def blend_weights(start: int, tile: int, length: int, margin: int, ramp: int) -> Tensor:
    """``(tile,)`` weights of a tile at ``start`` on an axis of ``length``: 0 within ``margin`` of
    an inner edge, ``sin^2`` up to 1 over the next ``ramp`` pixels, 1 elsewhere (image borders
    are not inner edges)."""
    position = torch.arange(tile, dtype=torch.float64)
    distance = torch.full((tile,), math.inf, dtype=torch.float64)
    if start > 0:
        distance = torch.minimum(distance, position)
    if start + tile < length:
        distance = torch.minimum(distance, tile - 1 - position)
    rising = ((distance - margin + 1) / (ramp + 1)).clamp(0, 1)
    return torch.sin(rising * math.pi / 2) ** 2


def tiled_apply(network: Callable[..., Tensor], inputs: tuple[Tensor, ...], tile: int, margin: int, ramp: int = 16,
                multiple: int = 1, progress: Callable[[int, int], None] | None = None) -> Tensor:
    """``network(*inputs)`` evaluated tile by tile and blended (see the module docstring).

    inputs: ``(N, C, H, W)`` tensors of one size (what ``network`` takes per pixel, e.g. the noisy
    image and the generator's noise); ``network`` maps tiles of them to a ``(N, C', h, w)`` tile.
    They are first reflect-padded to a multiple of ``multiple`` (the network's own padding), so
    tiles are aligned with its pooling grid. ``tile`` is rounded down to that multiple and is
    the largest tile: each axis uses the smallest that needs no more tiles (:func:`balanced_tile`).
    ``progress(done, total)`` is called after each tile.
    """
    height, width = inputs[0].shape[-2:]
    padded = [pad_to_multiple(x, multiple)[0] for x in inputs]
    full_h, full_w = padded[0].shape[-2:]
    overlap = 2 * margin + ramp
    tile_h, tile_w = (balanced_tile(length, tile, overlap, multiple) for length in (full_h, full_w))
    rows = tile_starts(full_h, tile_h, overlap, multiple)
    cols = tile_starts(full_w, tile_w, overlap, multiple)
    out, total = None, None
    for index, (top, left) in enumerate((r, c) for r in rows for c in cols):
        window = [x[..., top:top + tile_h, left:left + tile_w] for x in padded]
        result = network(*window)
        weight = (blend_weights(top, tile_h, full_h, margin, ramp)[:, None]
                  * blend_weights(left, tile_w, full_w, margin, ramp)[None, :]).to(result)
        if out is None:
            out = result.new_zeros(*result.shape[:-2], full_h, full_w)
            total = result.new_zeros(full_h, full_w)
        out[..., top:top + tile_h, left:left + tile_w] += weight * result
        total[top:top + tile_h, left:left + tile_w] += weight
        if progress is not None:
            progress(index + 1, len(rows) * len(cols))
    return (out / total)[..., :height, :width]


def receptive_radius(network: torch.nn.Module, channels: int = 3) -> int:
    """The receptive radius (pixels) of a local network: how far from an output pixel an input
    pixel can change it. Measured by backpropagating from the centre pixel of an input large
    enough that the gradient's support does not reach its border."""
    return _probe_radius(network, channels)


def _probe_radius(network: torch.nn.Module, channels: int = 3, size: int = 128, limit: int = 2048) -> int:
    while size <= limit:
        x = torch.randn(1, channels, size, size, requires_grad=True)
        level = torch.tensor([0.5])
        with torch.enable_grad(), torch.inference_mode(False):
            out = network(x, level)
            out[0, :, size // 2, size // 2].sum().backward()
        support = torch.nonzero(x.grad.abs().sum(dim=(0, 1)) > 0)
        radius = int((support - size // 2).abs().max())
        if radius < size // 2 - 1:
            return radius
        size *= 2
    raise ValueError(f"the network's receptive field exceeds {limit} pixels: it is not local, do not tile it")


__all__ = ["MIN_TILE", "balanced_tile", "blend_weights", "check_tile", "receptive_radius", "tile_starts", "tiled_apply"]

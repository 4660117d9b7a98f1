"""How much memory a solve needs, checked against what the machine has free.

A solve holds the sampler's state for every chain (images, noise, the likelihood step's
temporaries) and, during each network call, the network's activations for the images of that
call. :func:`solve_memory_bytes` estimates the two; :func:`check_memory` refuses, in one line, a
problem whose estimate exceeds the memory available, before anything large is allocated.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .networks import UNetConfig, count_encoders, unet_config

#: float32 images of the clean size held per chain by the sampler and a likelihood step
#: (iterate, prior output, estimate, noise, FFT or singular-basis temporaries; complex counts twice).
STATE_COPIES = 24
#: floats of activations alive per channel of each UNet level during one call, per pixel of that
#: level, for each encoder and for the decoder. Calibrated on the shipped 4-level models
#: (``lab/levers/memory/calibrate.py``, ``lab/results/memory_calibration.json``): peak RSS growth of one
#: call, fitted as bytes per input pixel, is 1.7-1.9 KB (bfloat16) and 3.3-3.5 KB (float32) for the
#: generator (two encoders), 1.2 and 2.2-2.7 KB for the teacher (one), i.e. 16-17 and 11-12 floats
#: per channel-pixel; 5 + 10 = 15 (teacher) and 2 x 5 + 10 = 20 (generator) leave a margin: whole
#: 1024x1024 sr4x solves peaked at 0.78-0.93 of :func:`solve_memory_bytes` in both precisions.
ENCODER_FLOATS, DECODER_FLOATS = 5, 10
#: what one call allocates whatever the size (convolution workspaces, thread buffers): the fits'
#: intercepts were -8 to +20 MB.
CALL_OVERHEAD_BYTES = 24 * 2**20
#: bytes per float32
FLOAT_BYTES = 4
#: bytes per activation float by the network's arithmetic (:data:`~ncvsd_inverse.sampling.PRECISIONS`
#: once resolved): bfloat16 autocast halves the activations (a 1024x1024 solve peaked at 3.0 GB
#: in bfloat16 against 4.9 GB in float32, model and sampler state included)
ACTIVATION_BYTES = {"float32": 4, "bfloat16": 2}


class InsufficientMemoryError(MemoryError, ValueError):
    """The problem needs more memory than the machine has available (one-line message)."""


@dataclass(frozen=True)
class NetworkSize:
    """What the activation memory of one network call depends on: the UNet's size ``cfg``, its
    ``encoders`` (the generator's two, the teacher's one) and the ``precision`` of its activations
    (``"float32"`` or ``"bfloat16"``: :data:`ACTIVATION_BYTES` per float)."""

    cfg: UNetConfig
    encoders: int = 2
    precision: str = "float32"

    @classmethod
    def of(cls, model: nn.Module, precision: str = "float32") -> NetworkSize | None:
        """The size of ``model`` run in ``precision`` (None for a model not built on our UNet)."""
        cfg = unet_config(model)
        return None if cfg is None else cls(cfg, count_encoders(model), precision)


def network_bytes(network: NetworkSize, height: int, width: int, images: int = 1) -> int:
    """Peak activation memory of one call of ``network`` on ``images`` images of ``height x width``.

    ``(encoders ENCODER_FLOATS + DECODER_FLOATS) * sum_l model_channels * mult_l * H W / 4^l``
    floats per image (level ``l`` works at ``H/2^l x W/2^l``), plus the ``heads x (H W / 4^l)^2``
    attention weights (and their softmax) of each attention level, in :data:`ACTIVATION_BYTES` of the
    network's precision, plus :data:`CALL_OVERHEAD_BYTES`.
    """
    cfg, pixels = network.cfg, height * width
    per_channel_pixel = network.encoders * ENCODER_FLOATS + DECODER_FLOATS
    floats = sum(per_channel_pixel * cfg.model_channels * mult * pixels / 4 ** level
                 for level, mult in enumerate(cfg.channel_mult))
    for level in cfg.attn_levels:
        if level < len(cfg.channel_mult):
            heads = max(cfg.model_channels * cfg.channel_mult[level] // 64, 1)
            floats += 2 * heads * (pixels / 4 ** level) ** 2
    return int(images * floats * ACTIVATION_BYTES[network.precision]) + CALL_OVERHEAD_BYTES


def solve_memory_bytes(clean_shape: tuple[int, ...], chains: int = 1, network: NetworkSize | None = None,
                       images_per_call: int | None = None, tile: int | None = None) -> int:
    """Estimated peak bytes of a solve of ``clean_shape`` ``(N, C, H, W)`` with ``chains`` chains
    per image: the sampler state (``STATE_COPIES`` images per chain, plus the dense 1-D
    resampling matrices of SR) and one call of ``network`` (:func:`network_bytes`; None: the state
    alone) on ``images_per_call`` images (None: all ``chains x N`` at once), of at most
    ``tile x tile`` pixels when tiled (plus the tiled output and its weights: two more images)."""
    n, channels, height, width = (1, 1, *clean_shape) if len(clean_shape) == 2 else clean_shape[-4:]
    state = STATE_COPIES * chains * n * channels * height * width * FLOAT_BYTES
    matrices = 8 * (height ** 2 + width ** 2) * FLOAT_BYTES
    activations = 0
    if network is not None:
        per_call = images_per_call or chains * n
        if tile is not None and max(height, width) > tile:
            activations = network_bytes(network, min(height, tile), min(width, tile), per_call)
            activations += 2 * per_call * channels * height * width * FLOAT_BYTES
        else:
            activations = network_bytes(network, height, width, per_call)
    return state + matrices + activations


def available_memory_bytes(device: str | torch.device = "cpu") -> int | None:
    """Memory free for a solve on ``device``: ``NCVSD_MEMORY_LIMIT_GB`` when set, else free GPU
    memory (CUDA) or ``MemAvailable`` of ``/proc/meminfo`` (CPU); None where it cannot be read."""
    limit = os.environ.get("NCVSD_MEMORY_LIMIT_GB")
    if limit:
        try:
            return int(float(limit) * 2**30)
        except ValueError:
            raise ValueError(f"NCVSD_MEMORY_LIMIT_GB must be a number of GiB, got {limit!r}") from None
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_memory(clean_shape: tuple[int, ...], chains: int = 1, network: NetworkSize | None = None,
                 images_per_call: int | None = None, device: str | torch.device = "cpu",
                 tile: int | None = None) -> None:
    """Raise :class:`InsufficientMemoryError` when :func:`solve_memory_bytes` exceeds
    :func:`available_memory_bytes` (no check where the free memory cannot be read)."""
    needed = solve_memory_bytes(clean_shape, chains, network, images_per_call, tile)
    available = available_memory_bytes(device)
    if available is None or needed <= available:
        return
    height, width = clean_shape[-2:]
    side = largest_square_side(clean_shape, chains, network, images_per_call, available, tile)
    fits = f"the largest that fits is about {side}x{side}" if side else "not even a tiny image fits"
    remedy = "crop the image" + (" or use fewer runs" if chains > 1 else "")
    raise InsufficientMemoryError(
        f"a {height}x{width} solve with {chains} chain(s) needs about {needed / 2**30:.1f} GiB and "
        f"{torch.device(device).type} has {available / 2**30:.1f} GiB available ({fits}): {remedy} "
        "(NCVSD_MEMORY_LIMIT_GB sets the limit)")


def largest_square_side(clean_shape: tuple[int, ...], chains: int, network: NetworkSize | None,
                        images_per_call: int | None, available: int, tile: int | None = None) -> int:
    """The largest ``S`` (a multiple of 8) such that an ``S x S`` version of the problem fits
    ``available`` bytes (0 if none does)."""
    low, high = 0, 1 << 17
    while high - low > 8:
        middle = (low + high) // 16 * 8
        if solve_memory_bytes((*clean_shape[:-2], middle, middle), chains, network, images_per_call,
                              tile) <= available:
            low = middle
        else:
            high = middle
    return low


__all__ = ["InsufficientMemoryError", "NetworkSize", "available_memory_bytes", "check_memory", "largest_square_side",
           "network_bytes", "solve_memory_bytes"]

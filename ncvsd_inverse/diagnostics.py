"""How good is a generative denoiser? The diagnostic of ``docs/design.md`` section 3.6b.

For an exact sampler of the denoising posterior ``p(x | y)``, ``y = x + sigma n``, with ``mmse``
the teacher's error ``E||D(y, sigma) - x||^2``: one sample has error ``2 mmse`` (PSNR
``10 log10 2 = 3.01`` dB below the teacher's) and the mean of ``K`` independent samples has
``mmse (1 + 1/K)`` (0.51 dB below for K = 8). A mean far below that is biased, one sample far
below is over-dispersed; the sharpness (high-frequency energy against the clean image's) says
whether samples are sharp (about 1) or blurred (< 1). One implementation serves training
(``val_*`` statistics), ``benchmarks/denoising_quality.py`` and the model card.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .metrics import mean_lpips, psnr

Tensor = torch.Tensor

#: PSNR gap (dB) of one exact posterior sample below the MMSE estimate: ``10 log10 2``.
EXACT_ONE_SAMPLE_GAP_DB = 10 * math.log10(2.0)


def exact_mean_gap_db(samples: int) -> float:
    """PSNR gap (dB) of the mean of ``samples`` exact posterior samples below the MMSE: ``10 log10(1 + 1/K)``."""
    return 10 * math.log10(1 + 1 / samples)


def sharpness(samples: Tensor, clean: Tensor) -> Tensor:
    """High-frequency energy of ``samples`` relative to ``clean``, per image ``(N,)``.

    Energy of a discrete Laplacian; 1 = as sharp as the clean image, < 1 blurred, > 1 noisy.
    """
    kernel = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]], device=clean.device).expand(clean.shape[1], 1, 3, 3)

    def energy(x: Tensor) -> Tensor:
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=x.shape[1]).pow(2).flatten(1).sum(1)

    return energy(samples) / energy(clean).clamp_min(1e-12)


@torch.no_grad()
def denoising_diagnostic(teacher: Callable, clean: Tensor, sigma: float, generator_net: Callable | None = None,
                         samples: int = 8, rng: torch.Generator | None = None) -> dict[str, float | None]:
    """The diagnostic at one noise level on a batch ``clean`` ``(N, C, H, W)`` in [-1, 1].

    Draws ``y = clean + sigma n`` with ``rng``, then ``samples`` generator samples with ``rng``.
    Returns the teacher's ``mmse_psnr`` / ``mmse_lpips`` and, with a generator, ``one_psnr``,
    ``mean_psnr`` (mean of ``samples``), their LPIPS, their gaps below the MMSE (``one_gap``,
    ``mean_gap``; exact sampler: 3.01 dB and :func:`exact_mean_gap_db`) and ``sharpness`` of one
    sample. PSNR and sharpness are means over the batch; LPIPS is None when unavailable.
    """
    y = clean + sigma * torch.randn(clean.shape, generator=rng, device=clean.device)
    level = torch.full((clean.shape[0],), float(sigma), device=clean.device)
    denoised = teacher(y, level)
    row: dict[str, float | None] = {"sigma": float(sigma), "mmse_psnr": float(psnr(denoised, clean).mean()),
                                    "mmse_lpips": mean_lpips(denoised, clean)}
    if generator_net is None:
        return row
    draws = torch.stack([generator_net(y, level, rng=rng) for _ in range(samples)])
    row.update({"one_psnr": float(psnr(draws[0], clean).mean()), "mean_psnr": float(psnr(draws.mean(0), clean).mean()),
                "one_lpips": mean_lpips(draws[0], clean), "mean_lpips": mean_lpips(draws.mean(0), clean),
                "sharpness": float(sharpness(draws[0], clean).mean())})
    row["one_gap"] = row["mmse_psnr"] - row["one_psnr"]
    row["mean_gap"] = row["mmse_psnr"] - row["mean_psnr"]
    return row


def distance_from_exact(rows: list[dict], samples: int = 8) -> float:
    """The mean distance (dB) of the one-sample and mean gaps from an exact sampler's (lower is better)."""
    ideal = (EXACT_ONE_SAMPLE_GAP_DB, exact_mean_gap_db(samples))
    gaps = [abs(row["one_gap"] - ideal[0]) for row in rows] + [abs(row["mean_gap"] - ideal[1]) for row in rows]
    return float(np.mean(gaps))


@torch.no_grad()
def generator_diagnostic(generator_net: Callable, teacher: Callable, clean: Tensor, sigmas=(0.2, 0.5),
                         samples: int = 8, seed: int = 0) -> dict[str, float | None]:
    """The diagnostic at each of ``sigmas`` as flat training statistics: per sigma
    ``val_mmse_``, ``val_one_``, ``val_mean<K>_`` (PSNR), ``val_sharp_`` and ``val_lpips_{mmse,one,mean<K>}_``;
    ``val_gap`` is :func:`distance_from_exact`. One random stream (``seed``) for the whole batch."""
    rng = torch.Generator(device=clean.device).manual_seed(seed)
    rows = [denoising_diagnostic(teacher, clean, sigma, generator_net, samples, rng) for sigma in sigmas]
    out: dict[str, float | None] = {}
    for row in rows:
        tag = f"{row['sigma']:g}"
        out.update({f"val_mmse_{tag}": row["mmse_psnr"], f"val_one_{tag}": row["one_psnr"],
                    f"val_mean{samples}_{tag}": row["mean_psnr"], f"val_sharp_{tag}": row["sharpness"],
                    f"val_lpips_mmse_{tag}": row["mmse_lpips"], f"val_lpips_one_{tag}": row["one_lpips"],
                    f"val_lpips_mean{samples}_{tag}": row["mean_lpips"]})
    out["val_gap"] = distance_from_exact(rows, samples)
    return out


__all__ = ["EXACT_ONE_SAMPLE_GAP_DB", "denoising_diagnostic", "distance_from_exact", "exact_mean_gap_db",
           "generator_diagnostic", "sharpness"]

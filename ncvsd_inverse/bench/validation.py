"""A solver's scores on the validation split: the measured crops (seed = image index) and the
PSNR / LPIPS of one sample and of the mean of the runs. What the tuning script
(``benchmarks/tune_solver.py``) and the lab's lever scripts share. Validation images only, never
test sets."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from .. import metrics
from ..io import read_centre_crops, read_name_list


def measured_crops(task, folder: Path, names_file: Path, first: int, crop: int) -> list[tuple[str, Tensor, Tensor]]:
    """``(name, clean, y)`` for the first ``first`` images of the split ``names_file`` in
    ``folder``: centre crops of ``crop`` pixels (``(1, C, crop, crop)`` in [-1, 1]) and their
    measurements by ``task``, the noise drawn with seed = the image's index."""
    measured = []
    for index, (name, clean) in enumerate(read_centre_crops(folder, read_name_list(names_file), first, crop)):
        y = task.build_operator(clean.shape).measure(clean, task.sigma_y, torch.Generator().manual_seed(index))
        measured.append((name, clean, y))
    return measured


def mean_score(scores: list[dict], key: str) -> float | None:
    """The mean of ``key`` over per-image scores, or None where any image lacks it (LPIPS unavailable)."""
    values = [score[key] for score in scores]
    return None if any(v is None for v in values) else float(np.mean(values))


def scored(solve_crop: Callable, measured: list) -> dict:
    """``psnr_one``, ``lpips_one``, ``psnr_mean``, ``lpips_mean`` (means over the crops, of one
    sample and of the mean of the runs) and ``seconds`` (of a solve, on average);
    ``solve_crop(index, y)`` returns a :class:`~ncvsd_inverse.sampling.PosteriorResult`."""
    scores, seconds = {"one": [], "mean": []}, []
    for index, (_, clean, y) in enumerate(measured):
        result = solve_crop(index, y)
        scores["one"].append(metrics.image_scores(result.samples[0], clean))
        scores["mean"].append(metrics.image_scores(result.mean, clean))
        seconds.append(result.seconds)
    row = {f"{key}_{which}": mean_score(values, key) for which, values in scores.items() for key in ("psnr", "lpips")}
    return {**row, "seconds": float(np.mean(seconds))}


__all__ = ["mean_score", "measured_crops", "scored"]

"""The validation loop the lab's lever scripts share: the split, crops and seeds of
benchmarks/tune_solver.py (seed = image index), one solve per crop, scores of one sample and of
the mean of the runs. Validation images only, never test sets."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ncvsd_inverse import metrics
from ncvsd_inverse.io import read_centre_crops, read_name_list


def add_split_arguments(parser: argparse.ArgumentParser) -> None:
    """``--data --list --first --crop --runs --json``, with the defaults of the tuning rounds."""
    parser.add_argument("--data", type=Path, default=Path("../shared/data/cbsd432"))
    parser.add_argument("--list", type=Path, default=Path("benchmarks/splits/cbsd432_val32.txt"))
    parser.add_argument("--first", type=int, default=8)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)


def measured_crops(task, args: argparse.Namespace) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """``(name, clean, y)`` for each validation crop, measured with seed = its index."""
    crops = read_centre_crops(args.data, read_name_list(args.list), args.first, args.crop)
    measured = []
    for index, (name, clean) in enumerate(crops):
        y = task.build_operator(clean.shape).measure(clean, task.sigma_y, torch.Generator().manual_seed(index))
        measured.append((name, clean, y))
    return measured


def scored(solve_crop: Callable, measured: list) -> dict:
    """Mean PSNR / LPIPS of one sample and of the mean of the runs over the crops;
    ``solve_crop(index, y)`` returns a :class:`~ncvsd_inverse.sampling.PosteriorResult`."""
    scores = {"one": [], "mean": []}
    for index, (_, clean, y) in enumerate(measured):
        result = solve_crop(index, y)
        scores["one"].append(metrics.image_scores(result.samples[0], clean))
        scores["mean"].append(metrics.image_scores(result.mean, clean))
    return {f"{key}_{which}": float(np.mean([v[key] for v in values]))
            for which, values in scores.items() for key in ("psnr", "lpips")}


def row_text(row: dict, runs: int) -> str:
    return (f"mean-of-{runs} / one: PSNR {row['psnr_mean']:.2f} / {row['psnr_one']:.2f} "
            f"LPIPS {row['lpips_mean']:.3f} / {row['lpips_one']:.3f}")

"""What the lab's lever scripts add to the package's validation loop
(:mod:`ncvsd_inverse.bench.validation`, shared with benchmarks/tune_solver.py): the split's
command-line arguments and a row's text. Validation images only, never test sets."""

from __future__ import annotations

import argparse
from pathlib import Path

from ncvsd_inverse.bench.validation import measured_crops


def add_split_arguments(parser: argparse.ArgumentParser) -> None:
    """``--data --list --first --crop --runs --json``, with the defaults of the tuning rounds."""
    parser.add_argument("--data", type=Path, default=Path("../shared/data/cbsd432"))
    parser.add_argument("--list", type=Path, default=Path("benchmarks/splits/cbsd432_val32.txt"))
    parser.add_argument("--first", type=int, default=8)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)


def split_crops(task, args: argparse.Namespace) -> list:
    """The measured crops of the split the arguments name (:func:`measured_crops`)."""
    return measured_crops(task, args.data, args.list, args.first, args.crop)


def row_text(row: dict, runs: int) -> str:
    return (f"mean-of-{runs} / one: PSNR {row['psnr_mean']:.2f} / {row['psnr_one']:.2f} "
            f"LPIPS {row['lpips_mean']:.3f} / {row['lpips_one']:.3f}")

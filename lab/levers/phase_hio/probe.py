"""Issue 16 lever: a coarse-to-fine start for Fienup's HIO at 256x256 phase retrieval.

The low frequencies of y = |FFT_2N(pad(g))| are, up to a half-pixel shift (a phase ramp, invisible
in magnitudes) and a cos(pi k / 2N) factor per axis, twice the magnitudes of the 2x2-averaged
image's spectrum on the N grid (aliasing of the image's high frequencies neglected). So a
half-size problem can be cut out of the measurement, solved first (HIO there has fewer unknowns
and sees only the high-SNR frequencies), and its solution upsampled as the start of the next level.

    python lab/levers/phase_hio/probe.py --crop 256 --first 4 --levels 1 2 3

Prints PSNR (against the truth and against its 180-degree twin, the better of the two; for
reporting only: the kept start is the one with the lowest data misfit) and the misfit.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ncvsd_inverse import metrics
from ncvsd_inverse.io import read_centre_crops, read_name_list
from ncvsd_inverse.operators.phase_retrieval import hybrid_input_output
from ncvsd_inverse.tasks import load_task


def coarse_measurement(y: torch.Tensor) -> torch.Tensor:
    """Magnitudes of the 2x2-averaged image's padded spectrum (grid M/2) from those of the image (grid M)."""
    m_h, m_w = y.shape[-2:]
    k_h = torch.fft.fftfreq(m_h // 2, d=1 / (m_h // 2))
    k_w = torch.fft.fftfreq(m_w // 2, d=1 / (m_w // 2))
    rows = (k_h % m_h).long()
    cols = (k_w % m_w).long()
    low = y[..., rows[:, None], cols[None, :]]
    attenuation = (torch.cos(math.pi * k_h / m_h).abs()[:, None] * torch.cos(math.pi * k_w / m_w).abs()[None, :])
    return low / (2 * attenuation)


def hio_from(y, shape, padded, start, iterations, error_reduction, rng):
    """HIO (operators.phase_retrieval.hybrid_input_output) from a given start in [-1, 1] or random."""
    if start is None:
        return hybrid_input_output(y, shape, padded, iterations=iterations, error_reduction=error_reduction, rng=rng)
    # hybrid_input_output draws its own random start: emulate a given one by monkeypatching rand
    original = torch.rand

    def fixed_rand(size, generator=None, device=None, dtype=None):
        g = torch.zeros(size, dtype=dtype, device=device)
        g[..., : shape[-2], : shape[-1]] = (start + 1) / 2
        return g

    torch.rand = fixed_rand
    try:
        return hybrid_input_output(y, shape, padded, iterations=iterations, error_reduction=error_reduction, rng=rng)
    finally:
        torch.rand = original


def coarse_to_fine(y, shape, padded, levels, iterations, rng):
    """HIO on ``levels`` scales, coarsest first, each started from the previous one upsampled."""
    ys, shapes, paddeds = [y], [shape], [padded]
    for _ in range(levels - 1):
        ys.append(coarse_measurement(ys[-1]))
        shapes.append((*shapes[-1][:-2], shapes[-1][-2] // 2, shapes[-1][-1] // 2))
        paddeds.append((paddeds[-1][0] // 2, paddeds[-1][1] // 2))
    estimate = None
    for level in reversed(range(levels)):
        start = None if estimate is None else F.interpolate(estimate, size=shapes[level][-2:], mode="bilinear")
        estimate = hio_from(ys[level], shapes[level], paddeds[level], start, iterations, 100, rng)
    return estimate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=Path("../shared/data/cbsd432"))
    parser.add_argument("--list", type=Path, default=Path("benchmarks/splits/cbsd432_val32.txt"))
    parser.add_argument("--first", type=int, default=4)
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--starts", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    task = load_task("phase_retrieval")
    rows = []
    for index, (name, clean) in enumerate(read_centre_crops(args.data, read_name_list(args.list), args.first,
                                                              args.crop)):
        operator = task.build_operator(clean.shape)
        y = operator.measure(clean, task.sigma_y, torch.Generator().manual_seed(index))
        padded = operator.padded_size(*clean.shape[-2:])
        for levels in args.levels:
            rng = torch.Generator().manual_seed(0)
            started = time.perf_counter()
            runs = []
            for _ in range(args.starts):
                estimate = coarse_to_fine(y, tuple(clean.shape), padded, levels, args.iterations, rng)
                twin = max(metrics.psnr(estimate, clean), metrics.psnr(estimate.flip(-2, -1), clean))
                runs.append({"misfit": float(operator.misfit(estimate, y)), "psnr": float(metrics.psnr(estimate, clean)),
                             "psnr_twin": float(twin), "estimate": estimate})
            kept = min(runs, key=lambda r: r["misfit"])
            lp = metrics.lpips(kept["estimate"], clean)
            lp = None if lp is None else float(lp)
            row = {"image": name, "levels": levels, "kept_psnr": kept["psnr"], "kept_lpips": lp,
                   "kept_misfit": kept["misfit"], "psnrs": [r["psnr"] for r in runs],
                   "twin_psnrs": [r["psnr_twin"] for r in runs], "misfits": [r["misfit"] for r in runs],
                   "seconds": time.perf_counter() - started}
            rows.append(row)
            print(json.dumps(row), flush=True)
    for levels in args.levels:
        mine = [r for r in rows if r["levels"] == levels]
        lps = [r["kept_lpips"] for r in mine]
        print(f"levels {levels}: kept PSNR {sum(r['kept_psnr'] for r in mine) / len(mine):.2f}  LPIPS "
              f"{(sum(lps) / len(lps)) if None not in lps else float('nan'):.3f}  "
              f"s/image {sum(r['seconds'] for r in mine) / len(mine):.0f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()

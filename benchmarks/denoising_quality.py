"""Denoising quality of a teacher and a generator on fixed crops (DESIGN 3.6b).

    python benchmarks/denoising_quality.py --teacher runs/teacher [--generator runs/ncvsd] \
        --data ../shared/data/cbsd432 --list benchmarks/splits/cbsd432_val32.txt --crop 128

Teacher: denoising PSNR and LPIPS (the MMSE estimate) at each t. Generator (if given): at each
sigma, PSNR and LPIPS of one sample and of the mean of 8 samples, the PSNR gaps to the teacher's
MMSE (ideal: 3.01 dB and 0.51 dB) and sharpness (high-frequency energy relative to the clean
image; ideal 1).
Centre crops, noise seed 0. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from inverse_suite import load_crops
from ncvsd_inverse.io import read_name_list
from ncvsd_inverse.metrics import lpips_status, mean_lpips, psnr
from ncvsd_inverse.models import load_generator, load_teacher
from ncvsd_inverse.training import sharpness


def batched(fn, x: torch.Tensor, chunk: int = 8) -> torch.Tensor:
    return torch.cat([fn(x[i:i + chunk]) for i in range(0, x.shape[0], chunk)])


@torch.inference_mode()
def evaluate(teacher, generator, clean, levels, samples=8, seed=0) -> list[dict]:
    rows = []
    for level in levels:
        gen = torch.Generator().manual_seed(seed)
        noisy = clean + level * torch.randn(clean.shape, generator=gen)
        denoised = batched(lambda b: teacher(b, level), noisy)
        row = {"sigma": level, "mmse_psnr": float(psnr(denoised, clean).mean()),
               "mmse_lpips": mean_lpips(denoised, clean)}
        if generator is not None:
            draws = torch.stack([batched(lambda b: generator(b, level, generator=gen), noisy) for _ in range(samples)])
            row["one_psnr"] = float(psnr(draws[0], clean).mean())
            row[f"mean{samples}_psnr"] = float(psnr(draws.mean(0), clean).mean())
            row["one_lpips"] = mean_lpips(draws[0], clean)
            row[f"mean{samples}_lpips"] = mean_lpips(draws.mean(0), clean)
            row["one_gap"] = row["mmse_psnr"] - row["one_psnr"]
            row[f"mean{samples}_gap"] = row["mmse_psnr"] - row[f"mean{samples}_psnr"]
            row["sharpness"] = float(sharpness(draws[0], clean).mean())
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", required=True)
    parser.add_argument("--generator", default=None)
    parser.add_argument("--raw", action="store_true", help="use raw weights instead of the EMA")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--list", type=Path, default=None, help="file naming the images to use")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--levels", type=float, nargs="+", default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    clean = torch.cat([crop for _, crop in load_crops(args.data, read_name_list(args.list), args.limit, args.crop)])
    teacher = load_teacher(args.teacher, ema=not args.raw)
    generator = load_generator(args.generator, ema=not args.raw) if args.generator else None
    levels = args.levels or ([0.2, 0.5] if generator is not None else [0.05, 0.1, 0.2, 0.5])
    rows = evaluate(teacher, generator, clean, levels)
    print(f"{len(clean)} crops of {args.crop}x{args.crop} from {args.data}")
    keys = [k for k in rows[0] if k != "sigma"]
    print(f"{'sigma':>6s} " + " ".join(f"{k:>12s}" for k in keys))
    for row in rows:
        print(f"{row['sigma']:6.3g} " + " ".join("n/a".rjust(12) if row[k] is None else f"{row[k]:12.3f}"
                                                 for k in keys))
    print(lpips_status())
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"teacher": args.teacher, "generator": args.generator, "data": str(args.data),
                                         "images": len(clean), "crop": args.crop, "ema": not args.raw,
                                         "machine": platform.machine(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()

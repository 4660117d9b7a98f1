"""The in-training generator diagnostic (DESIGN 3.6b) for any generator file, on the validation crops.

Usage: ``python benchmarks/levers/diagnose.py --model runs/ncvsd3-avg/generator.safetensors`` prints
and (``--json``) writes what ``ncvsd-distill`` logs as ``val_*``: per sigma the teacher's MMSE PSNR,
one sample's PSNR, the PSNR of the mean of 8 samples and the sharpness. The defaults are the
``cpu-small`` run's: 16 crops of 128x128 from the validation split, seed 0, the shipped teacher.

``--teacher-sampler STEPS`` diagnoses the teacher's own posterior sampler instead of a generator
(:func:`~ncvsd_inverse.sampling.ancestral_posterior_sample`, ``STEPS`` NFE per sample): the
reference for how faithful a sampler the teacher implies, which is what distillation can reach.
It is slow: 16 crops of 64x64 (``--patch 64``), 128 steps, both sigmas took 9 min on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ncvsd_inverse import load_model, training  # noqa: E402
from ncvsd_inverse.io import read_name_list  # noqa: E402
from ncvsd_inverse.sampling import ancestral_posterior_sample  # noqa: E402


def teacher_sampler(teacher, steps: int):
    """The teacher's ancestral posterior sampler with a generator's call signature."""
    def sample(y, level, generator=None):
        return ancestral_posterior_sample(teacher, y, float(level.flatten()[0]), steps, generator=generator)
    return sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="generator: .safetensors or run folder")
    which.add_argument("--teacher-sampler", type=int, metavar="STEPS",
                       help="diagnose the teacher's ancestral posterior sampler with STEPS steps instead")
    parser.add_argument("--teacher", default=None, help="teacher (default: the shipped one)")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/cbsd432"))
    parser.add_argument("--list", type=Path, default=Path("benchmarks/splits/cbsd432_val32.txt"))
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.2, 0.5])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.teacher_sampler is not None and args.teacher_sampler < 2:
        parser.error(f"--teacher-sampler needs at least 2 steps (got {args.teacher_sampler})")
    teacher = load_model(args.teacher, "teacher", device="cpu")
    generator = (teacher_sampler(teacher, args.teacher_sampler) if args.teacher_sampler is not None
                 else load_model(args.model, "generator", device="cpu"))
    crops = training.PatchDataset(args.data, args.patch, files=read_name_list(args.list))
    clean = crops.batch(args.images, torch.Generator().manual_seed(12345))  # as ncvsd-distill draws them
    with torch.no_grad():
        diag = training.generator_diagnostic(generator, teacher, clean, tuple(args.sigmas), seed=0)
    for sigma in args.sigmas:
        mmse = diag[f"val_mmse_{sigma:g}"]
        print(f"sigma {sigma:g}: MMSE {mmse:.2f}  mean-of-8 gap {mmse - diag[f'val_mean8_{sigma:g}']:.2f}  "
              f"one-sample gap {mmse - diag[f'val_one_{sigma:g}']:.2f}  sharpness {diag[f'val_sharp_{sigma:g}']:.2f}  "
              f"LPIPS MMSE / one / mean-of-8 {diag[f'val_lpips_mmse_{sigma:g}']} / {diag[f'val_lpips_one_{sigma:g}']} / "
              f"{diag[f'val_lpips_mean8_{sigma:g}']}")
    if args.json:
        args.json.write_text(json.dumps({"model": args.model or f"teacher sampler, {args.teacher_sampler} steps",
                                           "images": args.images, "patch": args.patch, **diag}, indent=2))


if __name__ == "__main__":
    main()

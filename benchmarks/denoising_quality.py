"""Denoising quality of a teacher and a generative denoiser on fixed crops (the diagnostic of
``ncvsd_inverse.diagnostics``).

    python benchmarks/denoising_quality.py --data ../shared/data/cbsd432 \
        --list benchmarks/splits/cbsd432_val32.txt --crop 128 [--teacher T] [--generator G | --teacher-sampler 128]
    python benchmarks/denoising_quality.py --data ../shared/data/cbsd432 --list benchmarks/splits/cbsd432_val32.txt \
        --teacher diffusers:lab/models/foreign-ddpm --levels 0.1 0.2 0.5   # a foreign prior

Teacher: denoising PSNR and LPIPS (the MMSE estimate) at each level. Generator (if given): at
each level, PSNR and LPIPS of one sample and of the mean of 8 samples, their PSNR gaps below
the teacher's MMSE (an exact sampler: 3.01 dB and 0.51 dB) and the sharpness of one sample
(1 = as sharp as the clean image). ``--generator default`` is the shipped generator;
``--teacher-sampler STEPS`` measures the teacher's own ancestral posterior sampler instead
(STEPS NFE per sample: slow), the reference for how faithful a sampler distillation can reach.
Centre crops, noise seed 0 at each level. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from ncvsd_inverse import load_model, load_prior
from ncvsd_inverse.diagnostics import denoising_diagnostic
from ncvsd_inverse.io import read_centre_crops, read_name_list
from ncvsd_inverse.machine import describe_machine
from ncvsd_inverse.metrics import lpips_status
from ncvsd_inverse.models import weights_sha256
from ncvsd_inverse.sampling import ancestral_posterior_sample


def in_chunks(fn, chunk: int = 8):
    """``fn(x, level, **kw)`` applied to ``chunk`` images at a time (bounded memory)."""
    def apply(x, level, **kwargs):
        return torch.cat([fn(x[i:i + chunk], level[i:i + chunk], **kwargs) for i in range(0, x.shape[0], chunk)])
    return apply


def teacher_sampler(teacher, steps: int):
    """The teacher's ancestral posterior sampler with a generator's call signature."""
    def sample(y, level, rng=None):
        return ancestral_posterior_sample(teacher, y, float(level.flatten()[0]), steps, rng=rng)
    return sample


@torch.inference_mode()
def evaluate(teacher, generator, clean, levels, samples=8, seed=0) -> list[dict]:
    """One diagnostic row per level; each level draws its noise from ``seed``."""
    rows = []
    for level in levels:
        rng = torch.Generator().manual_seed(seed)
        rows.append(denoising_diagnostic(in_chunks(teacher), clean, level,
                                         None if generator is None else in_chunks(generator), samples, rng))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default=None,
                        help="teacher: any prior load_prior takes (an ncvsd-train checkpoint, diffusers:PATH, "
                             "deepinv:NAME:WEIGHTS; default: the shipped one)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--generator", default=None, help="generator file or run folder; 'default' = shipped")
    which.add_argument("--teacher-sampler", type=int, metavar="STEPS",
                       help="measure the teacher's ancestral posterior sampler with STEPS steps instead")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--list", type=Path, default=None, help="file naming the images to use")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--levels", type=float, nargs="+", default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.teacher_sampler is not None and args.teacher_sampler < 2:
        parser.error(f"--teacher-sampler needs at least 2 steps (got {args.teacher_sampler})")
    crops = read_centre_crops(args.data, read_name_list(args.list), args.limit, args.crop)
    clean = torch.cat([crop for _, crop in crops])
    teacher = load_prior(args.teacher, device="cpu")
    if args.teacher_sampler is not None:
        generator = teacher_sampler(teacher, args.teacher_sampler)
        described = f"teacher sampler, {args.teacher_sampler} steps"
    elif args.generator is not None:
        generator = load_model(None if args.generator == "default" else args.generator, "generator", device="cpu")
        described = args.generator
    else:
        generator, described = None, None
    levels = args.levels or ([0.2, 0.5] if generator is not None else [0.05, 0.1, 0.2, 0.5])
    rows = evaluate(teacher, generator, clean, levels)
    print(f"{len(clean)} crops of {args.crop}x{args.crop} from {args.data}")
    keys = [k for k in rows[0] if k != "sigma"]
    print(f"{'sigma':>6s} " + " ".join(f"{k:>11s}" for k in keys))
    for row in rows:
        print(f"{row['sigma']:6.3g} " + " ".join("n/a".rjust(11) if row[k] is None else f"{row[k]:11.3f}"
                                                 for k in keys))
    print(lpips_status())
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        digests = {"teacher_sha256": weights_sha256(teacher),
                   "generator_sha256": weights_sha256(generator) if isinstance(generator, torch.nn.Module) else None}
        args.json.write_text(json.dumps({"teacher": args.teacher or "shipped", "generator": described, **digests,
                                         "data": str(args.data), "images": len(clean), "crop": args.crop,
                                         "machine": describe_machine("cpu"), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()

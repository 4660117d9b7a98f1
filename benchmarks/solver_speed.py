"""Solver speed: seconds per image and per megapixel, NFE, the time outside the network, peak memory.

    python benchmarks/solver_speed.py --tasks sr4x --sizes 256 768x512 2048 [--tile auto]
        [--steps 50 preset] [--precision float32 auto] [--allocator system retain]

Solves each task on the example image (tiled to the size when it is smaller, centre-cropped when
larger; degraded with the task's operator, seed 0) with the task preset's steps (or each of
``--steps``), in each of ``--precision``, one run, after a 2-step warm-up at that size: so
yesterday's settings (``--steps 50 --precision float32``) and today's (``preset auto``) are
measured side by side in one run. ``--allocator system retain`` measures every row
with the system's malloc settings first, then with freed memory retained (what the command-line
tools do; :mod:`ncvsd_inverse.allocator`), side by side in one run. Run it on a quiet machine:
the numbers are timings. Prints a table and writes JSON with the machine. Peak memory is the
process's resident size sampled during the timed solve (on a GPU: CUDA's peak allocation); with
freed memory retained it includes what earlier rows left in the process.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import torch

from ncvsd_inverse import load_model, solve
from ncvsd_inverse.allocator import retain_freed_memory
from ncvsd_inverse.bench.runner import PeakMemory
from ncvsd_inverse.io import read_image
from ncvsd_inverse.machine import PRECISIONS, describe_machine, resolve_precision
from ncvsd_inverse.models import weights_sha256
from ncvsd_inverse.tasks import load_task

ROOT = Path(__file__).resolve().parents[1]


def parse_size(text: str) -> tuple[int, int]:
    """``256`` -> (256, 256); ``768x512`` -> width 768, height 512 -> (512, 768)."""
    width, _, height = text.partition("x")
    return (int(height or width), int(width))


def clean_of_size(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``image`` repeated (mirrored) until it covers ``height x width``, then centre-cropped."""
    while image.shape[-2] < height or image.shape[-1] < width:
        image = torch.cat([torch.cat([image, image.flip(-1)], -1), torch.cat([image.flip(-2), image.flip(-1, -2)], -1)],
                          -2)
    top, left = (image.shape[-2] - height) // 2, (image.shape[-1] - width) // 2
    return image[..., top:top + height, left:left + width]


def parse_steps(text: str) -> int | None:
    """``preset`` -> None (the task preset's steps); ``20`` -> 20."""
    return None if text == "preset" else int(text)


def measure(task, image: torch.Tensor, height: int, width: int, model, args, tile, steps: int | None,
            precision: str) -> dict:
    """One timed solve of ``task`` at ``height x width`` after a 2-step warm-up: the table's row."""
    clean = clean_of_size(image, height, width)
    y = task.build_operator(clean.shape).measure(clean, task.sigma_y, torch.Generator().manual_seed(0))
    solve(y, task, model=model, steps=2, device=args.device, tile=tile, precision=precision)  # warm-up
    with PeakMemory(args.device) as memory:
        result = solve(y, task, model=model, steps=steps, device=args.device, tile=tile, precision=precision)
    return {"task": task.name, "height": height, "width": width, "runs": 1, "nfe": result.nfe,
            "precision": resolve_precision(precision, torch.device(args.device).type),
            "seconds_per_step": result.seconds / result.nfe,
            "seconds_per_image": result.seconds, "seconds_per_megapixel": result.seconds / (height * width / 1e6),
            "network_seconds": result.network_seconds, "outside_network_fraction": result.outside_network_fraction,
            "peak_rss_mb": memory.peak_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="generator checkpoint or run folder (default: shipped)")
    parser.add_argument("--tasks", nargs="+", default=["sr4x", "box_inpainting"])
    parser.add_argument("--sizes", nargs="+", default=["256"], help="output sizes: N or WIDTHxHEIGHT")
    parser.add_argument("--steps", nargs="+", type=parse_steps, default=[None],
                        help="sampler steps, each measured: N or 'preset' (default: the preset's)")
    parser.add_argument("--tile", default="auto", help="auto, 0 (never) or a tile size")
    parser.add_argument("--precision", nargs="+", choices=PRECISIONS, default=["auto"],
                        help="network arithmetic, each measured (auto: bfloat16 where native)")
    parser.add_argument("--image", type=Path, default=ROOT / "ncvsd_inverse" / "data" / "examples" / "tiger.png")
    parser.add_argument("--allocator", nargs="+", choices=["system", "retain"], default=["retain"],
                        help="malloc settings to measure, in this order (system first: retain cannot be undone)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "solver_speed.json")
    args = parser.parse_args()
    if args.allocator != sorted(set(args.allocator), reverse=True):
        parser.error("--allocator: each once, system before retain")
    tile = "auto" if args.tile == "auto" else (int(args.tile) or None)
    model = load_model(args.model, device=args.device)
    image = read_image(args.image)
    rows = []
    for allocator in args.allocator:
        if allocator == "retain" and not retain_freed_memory():
            print("retain: not applied (not glibc, or NCVSD_MALLOC=system)")
        for name, size, steps, precision in itertools.product(args.tasks, args.sizes, args.steps, args.precision):
            rows.append({"allocator": allocator, **measure(load_task(name), image, *parse_size(size), model, args,
                                                           tile, steps, precision)})
            r = rows[-1]
            print(f"{allocator:6s} {name:16s} {r['width']:5d}x{r['height']:<5d} {r['precision']:8s} NFE {r['nfe']:3d}  "
                  f"{r['seconds_per_step']:7.3f} s/step {r['seconds_per_image']:8.2f} s  "
                  f"{r['seconds_per_megapixel']:8.2f} s/MP  outside net {r['outside_network_fraction']:6.1%}  "
                  f"peak RSS {r['peak_rss_mb']:7.0f} MB", flush=True)
    machine = {**describe_machine(args.device), "tile": args.tile}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    about = {"model": args.model or "shipped", "generator_sha256": weights_sha256(model)}
    args.json.write_text(json.dumps({"machine": machine, **about, "results": rows}, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

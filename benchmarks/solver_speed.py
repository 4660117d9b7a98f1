"""Solver speed: seconds per image, NFE and the fraction of time outside the network.

    python benchmarks/solver_speed.py --model runs/ncvsd [--tasks sr4x box_inpainting] [--size 256]

Solves each task on the centre crop of the example image (degraded with the task's operator,
seed 0) with the task preset's steps (50 for SR and deblurring, 10 for inpainting), one run.
Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from ncvsd_inverse import load_model, solve
from ncvsd_inverse.io import read_image
from tasks import load_task

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="generator checkpoint or run folder (default: shipped)")
    parser.add_argument("--tasks", nargs="+", default=["sr4x", "box_inpainting"])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--image", type=Path, default=ROOT / "examples" / "tiger.png")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "solver_speed.json")
    args = parser.parse_args()
    model = load_model(args.model, device=args.device)
    clean = read_image(args.image)
    top, left = (clean.shape[-2] - args.size) // 2, (clean.shape[-1] - args.size) // 2
    clean = clean[..., top:top + args.size, left:left + args.size]
    rows = []
    for name in args.tasks:
        task = load_task(name)
        y = task.build_operator(clean.shape).measure(clean, task.sigma_y, torch.Generator().manual_seed(0))
        solve(y, task, model=model, steps=2, device=args.device)  # warm-up
        result = solve(y, task, model=model, runs=args.runs, device=args.device)
        rows.append({"task": name, "size": args.size, "runs": args.runs, "nfe": result.nfe,
                     "seconds_per_image": result.seconds, "network_seconds": result.network_seconds,
                     "outside_network_fraction": result.outside_network_fraction})
    print(f"{'task':18s} {'size':>5s} {'NFE':>4s} {'s/image':>8s} {'outside net':>12s}")
    for r in rows:
        print(f"{r['task']:18s} {r['size']:5d} {r['nfe']:4d} {r['seconds_per_image']:8.2f} "
              f"{r['outside_network_fraction']:11.1%}")
    machine = {"device": args.device, "cpu": platform.processor() or platform.machine(),
               "threads": torch.get_num_threads(), "torch": torch.__version__}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": machine, "results": rows}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

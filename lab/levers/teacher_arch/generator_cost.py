"""Issue 17, goal 5: the cost of one 256x256 network evaluation of a generator distilled from a
candidate teacher, against the shipped generator, in one run (float32 and bfloat16 autocast).

The candidate generator is built from the teacher checkpoint by distillation's own
``build_distillation_nets`` with a preset's recipe (its weights do not matter for the time). Writes JSON; run it on a quiet CPU:

    python lab/levers/teacher_arch/generator_cost.py runs/teacher-4level \
        --out lab/results/teacher_arch/generator_cost.json
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ncvsd_inverse.api import load_model
from ncvsd_inverse.models import load_teacher
from ncvsd_inverse.networks import count_parameters
from ncvsd_inverse.sampling import native_bfloat16
from ncvsd_inverse.training import build_distillation_nets, load_preset


def seconds_per_call(generator: torch.nn.Module, size: int, dtype: torch.dtype | None, repeats: int) -> float:
    """Median seconds of ``generator(y, 0.2)`` on one ``size`` x ``size`` image (no grad)."""
    y = torch.rand(1, 3, size, size) * 2 - 1
    times = []
    with torch.no_grad(), torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
        generator(y, 0.2)
        for _ in range(repeats):
            start = time.perf_counter()
            generator(y, 0.2)
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("teacher", type=Path, help="candidate teacher checkpoint or run folder")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--preset", default="cpu-small", help="distillation recipe the generator is built with")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    candidate, _, _ = build_distillation_nets(load_teacher(args.teacher), load_preset(args.preset)[1])
    candidate.eval()
    generators = {"shipped": load_model(None, "generator", "cpu"), "candidate": candidate}
    precisions = {"float32": None, **({"bfloat16": torch.bfloat16} if native_bfloat16() else {})}
    rows = {}
    for name, generator in generators.items():
        rows[name] = {"parameters": count_parameters(generator),
                      **{f"s_{p}": seconds_per_call(generator, args.size, d, args.repeats) for p, d in precisions.items()}}
    for precision in precisions:
        rows["candidate"][f"cost_vs_shipped_{precision}"] = rows["candidate"][f"s_{precision}"] / rows["shipped"][f"s_{precision}"]
    result = {"teacher": str(args.teacher), "size": args.size, "threads": torch.get_num_threads(), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

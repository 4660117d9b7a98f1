"""Issue 42 lever: the hybrid chain, generator above a switch level and teacher below, or the reverse.

    OMP_NUM_THREADS=1 python lab/levers/hybrid_chain.py --task sr4x --switch 0.05 0.2 1.0 \
        --order generator_first teacher_first --json lab/results/tune_round12/hybrid_sr4x.json

Validation split only (first ``--first`` crops of ``--crop`` pixels, seed = image index, as
benchmarks/tune_solver.py). The task's preset settings run unchanged; only the prior step of each
level changes (:class:`ncvsd_inverse.sampling.SwitchedPrior`). Prints mean-of-runs / one-sample
PSNR and LPIPS per configuration, and the pure generator and pure teacher chains as references.
"""

from __future__ import annotations

import argparse
import json

from validation import add_split_arguments, row_text, split_crops

from ncvsd_inverse import load_model, solve
from ncvsd_inverse.bench.validation import scored
from ncvsd_inverse.problem import pose_problem
from ncvsd_inverse.sampling import DenoiserPrior, GenerativePrior, SwitchedPrior
from ncvsd_inverse.tasks import load_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True)
    parser.add_argument("--switch", type=float, nargs="+", required=True, help="switch levels (EDM sigma)")
    parser.add_argument("--order", nargs="+", choices=["generator_first", "teacher_first"], default=["generator_first"])
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--likelihood-scale", type=float, default=None)
    parser.add_argument("--references", action="store_true", help="also run the pure generator and teacher chains")
    add_split_arguments(parser)
    args = parser.parse_args()
    task = load_task(args.task)
    measured = split_crops(task, args)
    generator = GenerativePrior(load_model(None, "generator"), 3, "float32")
    teacher = DenoiserPrior(load_model(None, "teacher"), 3, "float32")
    configs = [(order, switch) for order in args.order for switch in args.switch]
    if args.references:
        configs = [("generator", None), ("teacher", None)] + configs
    rows = []
    for order, switch in configs:
        if switch is None:
            step = generator if order == "generator" else teacher
        elif order == "generator_first":
            step = SwitchedPrior(generator, teacher, switch)
        else:
            step = SwitchedPrior(teacher, generator, switch)

        def solve_crop(index, y):
            problem = pose_problem(y, task, runs=args.runs, steps=args.steps, likelihood_scale=args.likelihood_scale)
            return solve(problem, prior=step, runs=args.runs, seed=index)

        row = {"order": order, "switch": switch, **scored(solve_crop, measured)}
        rows.append(row)
        print(f"{order:16s} switch={switch!s:6s} {row_text(row, args.runs)}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"task": args.task, "steps": args.steps, "crop": args.crop, "runs": args.runs,
                                         "images": [n for n, _, _ in measured], "rows": rows}, indent=2))


if __name__ == "__main__":
    main()

"""Issue 42 lever: the likelihood scale as a function of the noise level.

    OMP_NUM_THREADS=1 python lab/levers/likelihood_growth.py --task sr4x --growth 0.02 0.1 0.5 \
        --json lab/results/tune_round13/sr4x_growth.json

The likelihood step of level ``i`` draws ``u ~ N(u; x_i, r^2 I) N(y; A u, s_i^2 I)`` with
``r = sigma_{i+1}`` and ``s_i = sqrt(s^2 + (growth * r)^2)`` instead of the preset's constant ``s``:
at low noise the preset's scale, at high noise a data pull capped at a fixed ratio
``r^2 / s_i^2 <= 1 / growth^2`` (as DiffPIR's lambda does), where the chain's early estimates are
mostly the prior's guess. ``growth 0`` is the preset itself. Validation split only (first
``--first`` crops of ``--crop`` pixels, seed = image index, as benchmarks/tune_solver.py).
"""

from __future__ import annotations

import argparse
import json
import math

from validation import add_split_arguments, row_text, split_crops

from ncvsd_inverse import load_model, solve
from ncvsd_inverse.bench.validation import scored
from ncvsd_inverse.problem import pose_problem
from ncvsd_inverse.tasks import load_task


def grown_scale(s: float, growth: float, r: float) -> float:
    """``s_i = sqrt(s^2 + (growth r)^2)``: the preset's scale at low noise, ``growth r`` at high noise."""
    return math.sqrt(s**2 + (growth * r) ** 2)


def with_grown_scale(likelihood_step, growth: float):
    """An operator's likelihood step whose scale grows with the level ``r`` (:func:`grown_scale`)."""
    def step(x, y, s, r, rng=None):
        return likelihood_step(x, y, grown_scale(float(s), growth, float(r)), r, rng=rng)
    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True)
    parser.add_argument("--growth", type=float, nargs="+", required=True)
    parser.add_argument("--likelihood-scale", type=float, default=None)
    add_split_arguments(parser)
    args = parser.parse_args()
    task = load_task(args.task)
    measured = split_crops(task, args)
    model = load_model(None, "generator")
    rows = []
    for growth in args.growth:
        def solve_crop(index, y):
            problem = pose_problem(y, task, runs=args.runs, likelihood_scale=args.likelihood_scale)
            problem.operator.likelihood_step = with_grown_scale(problem.operator.likelihood_step, growth)
            return solve(problem, model=model, runs=args.runs, seed=index, precision="float32")

        row = {"growth": growth, "likelihood_scale": args.likelihood_scale or task.sampler["likelihood_scale"],
               **scored(solve_crop, measured)}
        rows.append(row)
        print(f"growth={growth:<6g} s={row['likelihood_scale']:g}  {row_text(row, args.runs)}", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"task": args.task, "images": [n for n, _, _ in measured], "crop": args.crop,
                                         "runs": args.runs, "precision": "float32", "rows": rows}, indent=2))


if __name__ == "__main__":
    main()

"""Grid search of the solver settings of one task on the validation split (never on test sets).

    python benchmarks/tune_solver.py --model runs/ncvsd --task sr4x \
        --data ../shared/data/cbsd432 --list benchmarks/splits/cbsd432_val32.txt --first 8 --crop 128 \
        --likelihood-scale 0.002 0.005 0.01 0.02 --steps 20 50 --sigma-max 80 5 --sigma-min 0.002 0.05 \
        --ema 0 0.9 --init zero classical

Every configuration sees the same measurements (seed = image index). A setting not named keeps
the task preset's value. ``--langevin-steps`` sets the operator's inner Langevin steps (phase
retrieval) and ``--restarts`` the chains kept by data misfit. Prints the task's classical estimate
as a reference line, then the configurations sorted by the PSNR of the mean of ``--runs`` runs
(with PSNR and LPIPS of one run and of the mean), and writes JSON.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

from ncvsd_inverse import load_model, metrics, solve
from ncvsd_inverse.bench.validation import mean_score, measured_crops, scored
from ncvsd_inverse.machine import PRECISIONS
from ncvsd_inverse.tasks import INITS, load_task, task_from_dict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--prior", choices=["ncvsd", "teacher"], default="ncvsd")
    parser.add_argument("--task", required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--list", type=Path, required=True, help="the validation split")
    parser.add_argument("--first", type=int, default=8)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--likelihood-scale", type=float, nargs="+")
    parser.add_argument("--steps", type=int, nargs="+")
    parser.add_argument("--sigma-max", type=float, nargs="+")
    parser.add_argument("--sigma-min", type=float, nargs="+")
    parser.add_argument("--ema", type=float, nargs="+", help="EMA decays (applied below sigma 1)")
    parser.add_argument("--init", nargs="+", choices=INITS,
                        help="where the chain starts: u_0 = init + sigma_max z")
    parser.add_argument("--rho", type=float, nargs="+")
    parser.add_argument("--restarts", type=int, nargs="+", help="chains per run, the lowest data misfit kept")
    parser.add_argument("--langevin-steps", type=int, nargs="+",
                        help="the operator's inner Langevin steps (nonlinear operators)")
    parser.add_argument("--precision", choices=PRECISIONS, default="float32")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    task = load_task(args.task)
    model = load_model(args.model, "generator" if args.prior == "ncvsd" else "teacher")
    measured = measured_crops(task, args.data, args.list, args.first, args.crop)
    operators = [task.build_operator(clean.shape) for _, clean, _ in measured]
    classical = [metrics.image_scores(operator.classical_estimate(y, task.sigma_y), clean)
                 for operator, (_, clean, y) in zip(operators, measured)]
    reference = {key: value for key in ("psnr", "lpips") if (value := mean_score(classical, key)) is not None}
    print(f"classical ({operators[0].classical_name}): " + "  ".join(f"{k} {v:.3f}" for k, v in reference.items()),
          flush=True)
    rows = []
    preset = task.sampler  # a setting not named on the command line keeps the preset's value
    grid = itertools.product(args.likelihood_scale or [preset["likelihood_scale"]], args.steps or [preset["steps"]],
                             args.sigma_max or [preset["sigma_max"]], args.sigma_min or [preset["sigma_min"]],
                             args.ema or [preset["ema_decay"]], args.init or [preset["init"]],
                             args.rho or [preset["rho"]], args.restarts or [preset["restarts"]],
                             args.langevin_steps or [task.operator.get("langevin_steps")])
    for scale, steps, sigma_max, sigma_min, ema, init, rho, restarts, langevin_steps in grid:
        ema_sigma = preset["ema_sigma"] if args.ema is None else (1.0 if ema > 0 else 0.0)
        settings = {"likelihood_scale": scale, "sigma_max": sigma_max, "sigma_min": sigma_min, "init": init,
                    "ema_sigma": ema_sigma, "ema_decay": ema, "rho": rho, "restarts": restarts}
        variant = task if langevin_steps is None else task_from_dict(
            {**task.to_dict(), "operator": {**task.operator, "langevin_steps": langevin_steps}}, task.source)
        row = {**settings, "steps": steps, "langevin_steps": langevin_steps,
               **scored(lambda index, y: solve(y, variant, model=model, prior=args.prior, runs=args.runs, steps=steps,
                                               seed=index, precision=args.precision, **settings), measured)}
        rows.append(row)
        lpips_text = "" if row["lpips_one"] is None else f" LPIPS {row['lpips_mean']:.3f} / {row['lpips_one']:.3f}"
        print(f"s={scale:<7g} steps={steps:<4d} sigma_max={sigma_max:<5g} sigma_min={sigma_min:<6g} ema={ema:<5g} "
              f"init={init:<14s} rho={rho:g} restarts={restarts} langevin={langevin_steps}  "
              f"mean-of-{args.runs} / one: PSNR {row['psnr_mean']:.2f} / {row['psnr_one']:.2f}{lpips_text}  "
              f"{row['seconds']:.1f}s", flush=True)
    rows.sort(key=lambda r: -r["psnr_mean"])
    print("best:", json.dumps(rows[0]))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        images = [name for name, _, _ in measured]
        args.json.write_text(json.dumps({"task": args.task, "prior": args.prior,
                                         "model": args.model or "shipped default", "images": images,
                                         "crop": args.crop, "runs": args.runs, "precision": args.precision,
                                         "classical": reference, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()

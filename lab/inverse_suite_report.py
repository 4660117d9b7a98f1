"""Inverse-problem suite: data set x tasks x methods, the same measurements for every method.

RETIRED: ``ncvsd-bench`` (``benchmarks/suites/cbsd68-report.yaml``) replaces this script. It is
kept here, as run, as the record of how the committed float32 LPIPS report
``benchmarks/results/cbsd68_first16_256.{json,md,png}`` was made (finished 2026-11-27, with the
cpu-small model; the per-image results are in the JSON's ``per_image``; moved to
``lab/results/cbsd68_first16_256_cpu-small/`` when the 4-level model was shipped):

    python lab/inverse_suite_report.py --data ../shared/data/cbsd68 --first 16 --crop 256 \
        --precision float32 --out benchmarks/results/cbsd68_first16_256

    python benchmarks/inverse_suite.py --model runs/ncvsd --teacher runs/teacher \
        --data ../shared/data/cbsd68 --first 16 --crop 256 --tasks sr4x random_inpainting \
        --out benchmarks/results/cbsd68

Methods: ``ncvsd`` (one sample and the mean of ``--runs`` runs), ``teacher`` (the deterministic
ablation of the prior step, one run) and the classical baseline of each task (bicubic
upsampling for SR; biharmonic inpainting; Wiener and TV deconvolution (deepinv) for deblurring).
Measurements: the task's operator and noise with seed ``seed + image index``. Reports PSNR,
SSIM, LPIPS (or "unavailable"), NFE and seconds per image; writes JSON, a Markdown table and an
image grid PNG of the first image. Per-image results are appended to ``<out>.partial.jsonl`` as
they come: run the same command again after an interruption and it resumes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ncvsd_inverse import load_model, metrics, solve
from ncvsd_inverse.io import list_images, read_image, read_name_list, write_image
from ncvsd_inverse.problem import simulate_problem
from ncvsd_inverse.sampling import PRECISIONS
from ncvsd_inverse.operators import Blur, Inpainting, SuperResolution, measurement_to_deepinv, to_deepinv
from ncvsd_inverse.tasks import load_task


def load_crops(folder: Path, names: list[str] | None, first: int | None, size: int) -> list[tuple[str, torch.Tensor]]:
    """Centre ``size x size`` crops (gray replicated to RGB), sorted by file name."""
    paths = [p for p in list_images(folder) if names is None or p.name in names][:first]
    crops = []
    for path in paths:
        image = read_image(path)
        image = image.expand(-1, 3, -1, -1) if image.shape[1] == 1 else image
        top, left = (image.shape[-2] - size) // 2, (image.shape[-1] - size) // 2
        crops.append((path.name, image[..., top:top + size, left:left + size]))
    return crops


# --- classical baselines -------------------------------------------------------------------------


def tv_deconvolution(operator: Blur, y: torch.Tensor, sigma_y: float, weight: float = 0.02) -> torch.Tensor:
    """TV-regularised deconvolution with deepinv (PGD, TV prox), on deepinv's [0, 1] data."""
    import deepinv

    physics = to_deepinv(operator, sigma_y)
    y_d = measurement_to_deepinv(operator, y, y.shape)
    model = deepinv.optim.optim_builder(iteration="PGD", prior=deepinv.optim.TVPrior(n_it_max=50),
                                        data_fidelity=deepinv.optim.data_fidelity.L2(), max_iter=100,
                                        params_algo={"stepsize": 1.0, "lambda": weight})
    with torch.no_grad():
        x_d = model(y_d, physics)
    return x_d * 2 - 1


def classical(task, operator, y) -> dict:
    """The task's classical baselines as ``{name: callable() -> estimate}``: the operator's
    classical estimate (bicubic, biharmonic, Wiener), and TV deconvolution for blur."""
    if not isinstance(operator, (SuperResolution, Inpainting, Blur)):
        return {}
    baselines = {operator.classical_name: lambda: operator.classical_estimate(y, task.sigma_y)}
    if isinstance(operator, Blur):
        baselines["tv (deepinv)"] = lambda: tv_deconvolution(operator, y, task.sigma_y)
    return baselines


# --- the suite -------------------------------------------------------------------------------------


def score(estimate: torch.Tensor, clean: torch.Tensor) -> dict:
    estimate = estimate.clamp(-1, 1)
    return {"psnr": float(metrics.psnr(estimate, clean)[0]), "ssim": float(metrics.ssim(estimate, clean)[0]),
            "lpips": metrics.mean_lpips(estimate, clean)}


def run_image(task, clean, seed, methods, generator, teacher, runs, overrides) -> tuple[dict, dict]:
    """Scores and estimates of every method on one image, all from the same measurement."""
    problem, clean = simulate_problem(clean, task, seed, runs=runs, steps=overrides.get("steps"))
    operator, y = problem.operator, problem.measurement
    precision = overrides.get("precision", "float32")
    scores, images = {}, {}
    if "ncvsd" in methods:
        result = solve(problem, model=generator, runs=runs, seed=seed, precision=precision)
        for name, estimate in (("ncvsd (1 sample)", result.samples[0]), (f"ncvsd (mean of {runs})", result.mean)):
            scores[name] = {**score(estimate, clean), "nfe": result.nfe, "seconds": result.seconds}
            images[name] = estimate
    if "teacher" in methods:
        result = solve(problem, model=teacher, prior="teacher", runs=1, seed=seed, precision=precision)
        scores["teacher prior (ablation)"] = {**score(result.mean, clean), "nfe": result.nfe, "seconds": result.seconds}
        images["teacher prior (ablation)"] = result.mean
    if "classical" in methods:
        for name, method in classical(task, operator, y).items():
            started = time.perf_counter()
            estimate = method()
            scores[name] = {**score(estimate, clean), "nfe": 0, "seconds": time.perf_counter() - started}
            images[name] = estimate
    shown = operator.classical_estimate(y, task.sigma_y) if isinstance(operator, SuperResolution) else y
    images = {"clean": clean, "measurement": shown.clamp(-1, 1), **images}
    return scores, images


def average(per_image: list[dict]) -> dict:
    out = {}
    for method in per_image[0]:
        rows = [scores[method] for scores in per_image]
        out[method] = {key: (None if any(r[key] is None for r in rows) else float(np.mean([r[key] for r in rows])))
                       for key in rows[0]}
    return out


def markdown(results: dict, note: str) -> str:
    lines = ["| task | method | PSNR | SSIM | LPIPS | NFE | s/image |", "|---|---|---|---|---|---|---|"]
    for task, methods in results.items():
        for method, r in methods.items():
            lp = "n/a" if r["lpips"] is None else f"{r['lpips']:.4f}"
            lines.append(f"| {task} | {method} | {r['psnr']:.2f} | {r['ssim']:.4f} | {lp} | {r['nfe']:.0f} "
                         f"| {r['seconds']:.1f} |")
    return "\n".join(lines) + f"\n\n{note}\n"


def weights_sha256(model: torch.nn.Module | None) -> str | None:
    """sha256 of a model's weights: tells two versions of the shipped model apart."""
    if model is None:
        return None
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def suite_config(args, crops, generator=None, teacher=None) -> dict:
    """Everything the per-image results depend on (a resumed suite must match it), the models'
    weights included."""
    return {"data": str(args.data), "images": [n for n, _ in crops], "crop": args.crop, "tasks": args.tasks,
            "presets": {t: load_task(t).to_dict() for t in args.tasks}, "methods": args.methods,
            "runs": args.runs, "steps": args.steps, "seed": args.seed, "precision": args.precision,
            "model": args.model, "teacher": args.teacher,
            "generator_sha256": weights_sha256(generator), "teacher_sha256": weights_sha256(teacher)}


def read_partial(path: Path, config: dict) -> dict[tuple[str, str], dict]:
    """Per-image scores already computed by an interrupted run with the same configuration."""
    if not path.exists():
        return {}
    lines, text = [], path.read_text().splitlines()
    for number, line in enumerate(text, start=1):
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            if number < len(text):
                raise SystemExit(f"{path}: line {number} is corrupt; delete the file to start over") from None
            # the last line was being written when the run was killed: drop it, that image is redone
            path.write_text("".join(json.dumps(entry) + "\n" for entry in lines))
    if not lines or lines[0].get("config") != config:
        raise SystemExit(f"{path} holds results of other settings: delete it or choose another --out")
    return {(r["task"], r["image"]): r["scores"] for r in lines[1:]}


def grid_path(out: Path, task_name: str) -> Path:
    """Where the image grid of a task's first image is kept until the suite assembles them."""
    return out.parent / f"{out.name}.grid-{task_name}.png"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="generator (default: shipped)")
    parser.add_argument("--teacher", default=None, help="teacher for the ablation (default: shipped)")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--list", type=Path, default=None)
    parser.add_argument("--first", type=int, default=None)
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--tasks", nargs="+", default=["sr4x", "box_inpainting", "random_inpainting",
                                                       "gaussian_deblur", "motion_deblur"])
    parser.add_argument("--methods", nargs="+", default=["ncvsd", "teacher", "classical"])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", choices=PRECISIONS, default="float32")
    parser.add_argument("--out", type=Path, required=True,
                        help="prefix of the outputs (.json/.md/.png; .partial.jsonl holds per-image results, "
                             "so an interrupted suite resumes where it stopped)")
    args = parser.parse_args()
    crops = load_crops(args.data, read_name_list(args.list), args.first, args.crop)
    generator = load_model(args.model, "generator") if "ncvsd" in args.methods else None
    teacher = load_model(args.teacher, "teacher") if "teacher" in args.methods else None
    config = suite_config(args, crops, generator, teacher)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    partial_path = args.out.with_suffix(".partial.jsonl")
    done = read_partial(partial_path, config)
    if not partial_path.exists():
        partial_path.write_text(json.dumps({"config": config}) + "\n")
    overrides = {"steps": args.steps} if args.steps else {}
    overrides["precision"] = args.precision
    results = {}
    for task_name in args.tasks:
        task = load_task(task_name)
        per_image = []
        task_grid = grid_path(args.out, task_name)
        for index, (name, clean) in enumerate(crops):
            if (task_name, name) not in done or (index == 0 and not task_grid.exists()):
                scores, images = run_image(task, clean, args.seed + index, args.methods, generator, teacher,
                                           args.runs, overrides)
                if index == 0:
                    write_image(torch.cat([img.expand(-1, 3, -1, -1) for img in images.values()], dim=-1), task_grid)
                with partial_path.open("a") as handle:
                    handle.write(json.dumps({"task": task_name, "image": name, "scores": scores}) + "\n")
                    handle.flush()
                    os.fsync(handle.fileno())
                done[task_name, name] = scores
            scores = done[task_name, name]
            per_image.append(scores)
            line = "  ".join(f"{m}: {s['psnr']:.2f}" for m, s in scores.items())
            print(f"{task_name:18s} {name:12s} {line}", flush=True)
        results[task_name] = average(per_image)
    note = (f"{len(crops)} images ({args.data.name}, centre {args.crop}x{args.crop} crops), seed {args.seed}, "
            f"sigma_y 0.05, network in {args.precision}; {metrics.lpips_status()}; machine: {platform.machine()}, "
            f"{torch.get_num_threads()} threads, {'cuda' if torch.cuda.is_available() else 'cpu'}")
    table = markdown(results, note)
    print(table)
    per_image_rows = [{"task": t, "image": n, "scores": done[t, n]} for t in args.tasks for n, _ in crops]
    args.out.with_suffix(".json").write_text(json.dumps({"note": note, **config, "results": results,
                                                         "per_image": per_image_rows}, indent=2))
    args.out.with_suffix(".md").write_text(table)
    rows = [read_image(grid_path(args.out, t)) for t in args.tasks]
    width = max(row.shape[-1] for row in rows)
    grid = torch.cat([F.pad(row, (0, width - row.shape[-1]), value=1.0) for row in rows], dim=-2)
    write_image(grid.clamp(-1, 1), args.out.with_suffix(".png"))


if __name__ == "__main__":
    main()

"""Summarise the GPU lever runs of ``gpu_long.sh`` and pick the generators worth bringing back.

Usage: ``python lab/levers/gpu_collect.py candidates WORK`` prints, one per line, the
checkpoints to validate with the PnP presets (per run: the best in-training diagnostic, the last
two validated steps), and ``python lab/levers/gpu_collect.py collect WORK OUT`` writes
``OUT/summary.{json,md}``, exports up to ``--max-exports`` generators as ``OUT/<run>-<step>.safetensors``
(the best PnP score of each run first, then the next best overall) and packs the logs, stats and
PnP JSONs into ``OUT/results.tar.gz``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ncvsd_inverse.cli.export import export_model  # noqa: E402

TASKS = ("random_inpainting", "sr4x", "gaussian_deblur", "motion_deblur", "box_inpainting")


def validated_steps(run_dir: Path) -> list[dict]:
    """The stats records that carry the in-training diagnostic and have a checkpoint file."""
    records = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines() if line.strip()]
    return [r for r in records if "val_gap" in r and (run_dir / f"checkpoint-{r['step']:07d}.safetensors").exists()]


def candidates(work: Path) -> list[Path]:
    """Per run: the lowest ``val_gap``, the last two validated checkpoints and the last one
    (written when the wall-clock budget stopped the run, without the diagnostic)."""
    picks = []
    for run_dir in sorted(p for p in work.iterdir() if (p / "stats.jsonl").exists()):
        records = validated_steps(run_dir)
        steps = {r["step"] for r in records[-2:]}
        if records:
            steps.add(min(records, key=lambda r: r["val_gap"])["step"])
        picks += [run_dir / f"checkpoint-{s:07d}.safetensors" for s in sorted(steps)]
        latest = run_dir / (run_dir / "latest.safetensors").resolve().name
        if latest.exists() and latest not in picks:
            picks.append(latest)
    return picks


def pnp_scores(pnp_dir: Path) -> dict[str, dict[str, float]]:
    """``{model label: {task: mean-of-runs PSNR}}`` from the tune_solver JSONs ``<label>__<task>.json``."""
    scores: dict[str, dict[str, float]] = {}
    for path in sorted(pnp_dir.glob("*__*.json")):
        label, task = path.stem.split("__")
        rows = json.loads(path.read_text())["rows"]
        if rows:
            scores.setdefault(label, {})[task] = rows[0]["psnr_mean"]
    return scores


def label_of(checkpoint: Path) -> str:
    """``<run>-<step>`` for a checkpoint ``WORK/<run>/checkpoint-<step>.safetensors``."""
    return f"{checkpoint.parent.name}-{int(checkpoint.stem.split('-')[1])}"


def collect(work: Path, out: Path, max_exports: int) -> None:
    scores = pnp_scores(work / "pnp")
    baseline = scores.get("shipped", {})
    rows = []
    for run_dir in sorted(p for p in work.iterdir() if (p / "stats.jsonl").exists()):
        last = json.loads((run_dir / "stats.jsonl").read_text().splitlines()[-1])
        records = validated_steps(run_dir)
        latest = json.loads((run_dir / "latest.json").read_text()) if (run_dir / "latest.json").exists() else None
        if latest and latest["step"] not in {r["step"] for r in records}:
            records.append({"step": latest["step"]})  # stopped by the budget: PnP numbers only
        for record in records:
            label = f"{run_dir.name}-{record['step']}"
            pnp = scores.get(label, {})
            common = [t for t in ("random_inpainting", "sr4x") if t in pnp and t in baseline]
            rows.append({"run": run_dir.name, "step": record["step"], "last_step": last["step"],
                         "s_per_step": last.get("s_per_step"),
                         **{k: v for k, v in record.items() if k.startswith("val_")}, "pnp": pnp,
                         "pnp_gain": (sum(pnp[t] - baseline[t] for t in common) / len(common)) if common else None})
    chosen = []
    scored = sorted((r for r in rows if r["pnp_gain"] is not None), key=lambda r: -r["pnp_gain"])
    for row in scored:  # the best of each run first
        if row["run"] not in {c["run"] for c in chosen}:
            chosen.append(row)
    chosen += [r for r in scored if r not in chosen]
    chosen += sorted((r for r in rows if r["pnp_gain"] is None and r not in chosen),
                     key=lambda r: r.get("val_gap", float("inf")))
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as temp:
        for row in chosen[:max_exports]:
            source = work / row["run"] / f"checkpoint-{row['step']:07d}.safetensors"
            exported = export_model(source, "generator", Path(temp))
            shutil.move(exported, out / f"{row['run']}-{row['step']}.safetensors")
            row["exported"] = True
    summary = {"baseline_pnp": baseline, "rows": rows}
    (work / "summary.json").write_text(json.dumps(summary, indent=2))
    lines = ["| run | step | gap 0.2 | gap 0.5 | sharp 0.2 | sharp 0.5 | " + " | ".join(TASKS) + " | exported |",
             "|" + "---|" * (7 + len(TASKS))]
    lines.append("| shipped | | | | | | " + " | ".join(f"{baseline.get(t, float('nan')):.2f}" for t in TASKS) + " | |")
    for r in rows:
        diag = [(f"{r[f'val_mmse_{s}'] - r[f'val_mean8_{s}']:.2f}", f"{r[f'val_sharp_{s}']:.2f}")
                if f"val_mmse_{s}" in r else ("", "") for s in ("0.2", "0.5")]
        lines.append(f"| {r['run']} | {r['step']} | {diag[0][0]} | {diag[1][0]} | {diag[0][1]} | {diag[1][1]} | "
                     + " | ".join(f"{r['pnp'][t]:.2f}" if t in r["pnp"] else "" for t in TASKS)
                     + f" | {'yes' if r.get('exported') else ''} |")
    (work / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    with tarfile.open(out / "results.tar.gz", "w:gz") as tar:
        for path in sorted(work.rglob("*")):
            if path.is_file() and path.suffix in (".json", ".jsonl", ".log", ".md") and "checkpoint-" not in path.name:
                tar.add(path, arcname=str(path.relative_to(work)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["candidates", "collect"])
    parser.add_argument("work", type=Path)
    parser.add_argument("out", type=Path, nargs="?")
    parser.add_argument("--max-exports", type=int, default=6)
    args = parser.parse_args()
    if args.action == "candidates":
        print("\n".join(f"{label_of(p)} {p}" for p in candidates(args.work)))
    else:
        collect(args.work, args.out, args.max_exports)


if __name__ == "__main__":
    main()

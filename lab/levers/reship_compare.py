"""Issue 17: a reship's numbers beside the shipped model's, and the issue's goals checked on them.

Reads what ``lab/levers/reship_4level.sh`` wrote (``NEW``: ``generator_diagnostic_val.json``,
``cbsd68-report/results.json``) and the committed tables of the model it would replace. Prints:
- goal 2, the generator's fidelity targets on val32 (mean of 8 within 0.8 dB of the teacher's
  MMSE, one sample within 3.5 dB, sharpness 0.8-1.2);
- the CBSD68 report as the README's table, ``new · old`` in each cell (PSNR / LPIPS);
- goal 3 (the mean of 4 beats the old model's in PSNR and LPIPS on every task; sr4x's mean of 4
  at least 1.0 dB over bicubic; box inpainting's one sample ahead of biharmonic in LPIPS) and
  goal 4 at the presets' NFE (one sample below the teacher prior in LPIPS, the mean of 4 level
  with it in PSNR or better, on most tasks).
Parts whose files are not there yet are said to be missing. No network runs.

    python lab/levers/reship_compare.py runs/reship
    python lab/levers/reship_compare.py benchmarks/results --old-report benchmarks/results/cbsd68-report-cpu-small
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

TARGETS = {"mean_gap": 0.8, "one_gap": 3.5, "sharpness": (0.8, 1.2)}


def read_json(path: Path):
    return json.loads(path.read_text()) if path.exists() else None


def diagnostic_lines(new: dict, old: dict | None) -> list[str]:
    """Goal 2: one line per sigma, new (old) for each target, and whether the new model meets all."""
    old_rows = {row["sigma"]: row for row in (old or {}).get("rows", [])}
    lines = [f"generator {new['generator_sha256'][:16]}, teacher {new['teacher_sha256'][:16]}"
             + (f" (old: {old['generator_sha256'][:16]}, {old['teacher_sha256'][:16]})" if old else "")]
    for row in new["rows"]:
        before = old_rows.get(row["sigma"], {})
        low, high = TARGETS["sharpness"]
        met = row["mean_gap"] < TARGETS["mean_gap"] and row["one_gap"] < TARGETS["one_gap"] and low <= row[
            "sharpness"] <= high
        cells = [f"{key} {row[key]:.2f}" + (f" ({before[key]:.2f})" if key in before else "")
                 for key in ("mmse_psnr", "mean_gap", "one_gap", "sharpness")]
        lines.append(f"  sigma {row['sigma']}: " + ", ".join(cells) + ("  meets goal 2" if met else "  MISSES goal 2"))
    return lines


def by_task(records: list[dict]) -> dict[str, dict[str, dict]]:
    """``{task: {"ncvsd": record, "pnp_teacher": record, "<baseline>": record, ...}}``."""
    table: dict[str, dict[str, dict]] = {}
    for record in records:
        settings = record["settings"]
        table.setdefault(record["task"], {})[settings.get("baseline", settings["method"])] = record
    return table


def report_lines(new: list[dict], old: list[dict] | None) -> list[str]:
    """The README's table (new · old) and goals 3 and 4 on the new report."""
    new_table, old_table = by_task(new), by_task(old or [])
    lines = ["| task | NCVSD 1 sample | NCVSD mean of 4 | teacher prior | classical |", "|---|---|---|---|---|"]
    for task, methods in new_table.items():
        before = old_table.get(task, {})

        def cell(method: str, suffix: str = "") -> str:
            now, then = methods.get(method), before.get(method)
            if now is None:
                return "n/a"
            shown = f"{now['psnr' + suffix]:.2f} / {now['lpips' + suffix]:.3f}"
            return shown if then is None else f"{shown} · {then['psnr' + suffix]:.2f} / {then['lpips' + suffix]:.3f}"

        classical = ", ".join(f"{name} {cell(name)}" for name in methods if name not in ("ncvsd", "pnp_teacher"))
        lines.append(f"| {task} | {cell('ncvsd')} | {cell('ncvsd', '_mean')} | {cell('pnp_teacher')} | {classical} |")

    lines.append("")
    beats_old = []
    for task, methods in new_table.items():
        now, then = methods["ncvsd"], old_table.get(task, {}).get("ncvsd")
        if then is not None:
            beats_old.append(now["psnr_mean"] > then["psnr_mean"] and now["lpips_mean"] < then["lpips_mean"])
            lines.append(f"goal 3, {task}: mean of 4 {now['psnr_mean'] - then['psnr_mean']:+.2f} dB, "
                         f"LPIPS {now['lpips_mean'] - then['lpips_mean']:+.3f} against the old model"
                         + ("" if beats_old[-1] else "  (not ahead in both)"))
    if beats_old:
        lines.append(f"goal 3: the mean of 4 beats the old model in both on {sum(beats_old)} of {len(beats_old)} tasks")
    if "sr4x" in new_table and "bicubic" in new_table["sr4x"]:
        gain = new_table["sr4x"]["ncvsd"]["psnr_mean"] - new_table["sr4x"]["bicubic"]["psnr"]
        lines.append(f"goal 3: sr4x mean of 4 is {gain:+.2f} dB over bicubic (goal +1.00)")
    if "box_inpainting" in new_table and "biharmonic" in new_table["box_inpainting"]:
        box = new_table["box_inpainting"]
        lines.append(f"goal 3: box inpainting, one sample LPIPS {box['ncvsd']['lpips']:.3f} against biharmonic "
                     f"{box['biharmonic']['lpips']:.3f} (look at the grid)")
    sharper = [t for t, m in new_table.items()
               if "pnp_teacher" in m and m["ncvsd"]["lpips"] < m["pnp_teacher"]["lpips"]]
    level = [t for t, m in new_table.items()
             if "pnp_teacher" in m and m["ncvsd"]["psnr_mean"] >= m["pnp_teacher"]["psnr"] - 0.005]
    lines.append(f"goal 4 (the presets' NFE): one sample below the teacher prior in LPIPS on {len(sharper)} of "
                 f"{len(new_table)} tasks ({', '.join(sharper)}); the mean of 4 level or better in PSNR on "
                 f"{len(level)} ({', '.join(level)})")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("new", type=Path, help="the reship's folder (reship_4level.sh's OUT)")
    parser.add_argument("--old-report", type=Path, default=Path("benchmarks/results/cbsd68-report"))
    parser.add_argument("--old-diagnostic", type=Path, default=Path("benchmarks/results/generator_diagnostic_val.json"))
    args = parser.parse_args()
    diagnostic = read_json(args.new / "generator_diagnostic_val.json")
    print("\n".join(diagnostic_lines(diagnostic, read_json(args.old_diagnostic))) if diagnostic
          else f"goal 2: {args.new / 'generator_diagnostic_val.json'} is missing")
    print()
    report = read_json(args.new / "cbsd68-report" / "results.json")
    print("\n".join(report_lines(report, read_json(args.old_report / "results.json"))) if report
          else f"the CBSD68 report: {args.new / 'cbsd68-report' / 'results.json'} is missing")


if __name__ == "__main__":
    main()

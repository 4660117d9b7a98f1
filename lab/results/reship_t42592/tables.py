"""Issue 17: the reship's tables in this folder's README, from the committed results.

    python lab/results/reship_t42592/tables.py
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent


def by_task_and_method(path: Path) -> dict[tuple[str, str], dict]:
    return {(row["task"], row["method"].split()[0]): row for row in json.loads(path.read_text())}


def generators_in_the_chain() -> None:
    """NCVSD one sample and mean of 4 on the CBSD68 report's sr4x and motion deblurring, per generator."""
    sources = {"shipped, step 2200 (`0d49a144`)": ROOT / "benchmarks/results/cbsd68-report/results.json",
               "reship, stage 1 end, step 1200 (`19879713`)": HERE / "report-probe-s1/results.json",
               "reship, stage 3 end, step 1600 (`9c9e986a`)": HERE / "report-probe-s3/results.json",
               "reship, stage 4 end, step 2200 (`abe2873d`)": ROOT / "lab/runs/reship/cbsd68-report/results.json"}
    print("| generator | sr4x 1 sample | sr4x mean of 4 | motion 1 sample | motion mean of 4 |")
    print("|---|---|---|---|---|")
    for name, path in sources.items():
        rows, cells = by_task_and_method(path), []
        for task in ("sr4x", "motion_deblur"):
            row = rows[(task, "ncvsd")]
            cells += [f"{row['psnr']:.2f} / {row['lpips']:.3f}", f"{row['psnr_mean']:.2f} / {row['lpips_mean']:.3f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")


def teachers_in_the_chain() -> None:
    """The teacher's own chain on 16 validation crops, step 12000 against step 42592."""
    old = by_task_and_method(HERE / "val-chain-t12000/results.json")
    new = by_task_and_method(HERE / "val-chain-t42592/results.json")
    raw = by_task_and_method(HERE / "val-chain-raw42592/results.json")
    print("| task | step 12000 (shipped, `792f93cf`) | step 42592 (`11eed140`) | difference | step 42592, raw weights |")
    print("|---|---|---|---|---|")
    for task, method in old:
        a, b, c = old[(task, method)], new[(task, method)], raw[(task, method)]
        print(f"| {task} | {a['psnr']:.2f} / {a['lpips']:.3f} | {b['psnr']:.2f} / {b['lpips']:.3f} | "
              f"{b['psnr'] - a['psnr']:+.2f} / {b['lpips'] - a['lpips']:+.3f} | {c['psnr']:.2f} / {c['lpips']:.3f} |")


def generator_levels() -> None:
    """The single-step diagnostic outside sigma 0.2 / 0.5 (val32): one-sample gap, sharpness, one-sample LPIPS."""
    print("| sigma | one-sample gap: shipped / reship | sharpness | one-sample LPIPS |")
    print("|---|---|---|---|")
    for band in ("lowsigma", "highsigma"):
        old = json.loads((HERE / f"{band}_shipped.json").read_text())["rows"]
        new = json.loads((HERE / f"{band}_reship.json").read_text())["rows"]
        for a, b in zip(old, new):
            print(f"| {a['sigma']:g} | {a['one_gap']:.2f} / {b['one_gap']:.2f} | {a['sharpness']:.2f} / "
                  f"{b['sharpness']:.2f} | {a['one_lpips']:.3f} / {b['one_lpips']:.3f} |")


if __name__ == "__main__":
    generators_in_the_chain()
    print()
    teachers_in_the_chain()
    print()
    generator_levels()

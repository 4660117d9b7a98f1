"""The in-training validation rows of distillation runs, side by side (issue 17's 4-level branches).

    python lab/results/ncvsd_4level/branches.py NAME=STATS.jsonl [NAME=STATS.jsonl ...]

For each run and each validated step: the mean-of-8 and one-sample PSNR gaps below the teacher's
MMSE (dB; an exact sampler: 0.51 and 3.01) and the sharpness of one sample (target 0.8-1.2), at
sigma 0.2 / 0.5 (16 validation crops of 128x128). Prints a Markdown table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def validation_rows(stats: Path) -> list[dict]:
    """The records of ``stats`` that carry validation numbers."""
    records = (json.loads(line) for line in stats.read_text().splitlines() if line.strip())
    return [r for r in records if "val_mmse_0.2" in r]


def table_line(name: str, r: dict) -> str:
    def at_both_sigmas(value) -> str:
        return " / ".join(f"{value(s):.2f}" for s in ("0.2", "0.5"))
    mean8_gap = at_both_sigmas(lambda s: r[f"val_mmse_{s}"] - r[f"val_mean8_{s}"])
    one_gap = at_both_sigmas(lambda s: r[f"val_mmse_{s}"] - r[f"val_one_{s}"])
    sharpness = at_both_sigmas(lambda s: r[f"val_sharp_{s}"])
    return f"| {name} | {r['step']} | {mean8_gap} | {one_gap} | {sharpness} |"


def main() -> None:
    if len(sys.argv) < 2 or any("=" not in arg for arg in sys.argv[1:]):
        raise SystemExit(__doc__)
    print("| run | step | mean-of-8 gap 0.2 / 0.5 | one-sample gap 0.2 / 0.5 | sharpness 0.2 / 0.5 |")
    print("|---|---|---|---|---|")
    for arg in sys.argv[1:]:
        name, stats = arg.split("=", 1)
        for row in validation_rows(Path(stats)):
            print(table_line(name, row))


if __name__ == "__main__":
    main()

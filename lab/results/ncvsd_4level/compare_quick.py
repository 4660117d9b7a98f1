"""Two cbsd68-quick runs side by side on the images both finished (issue 17, goals 3-4).

    python lab/results/ncvsd_4level/compare_quick.py NEW_OUT OLD_OUT

NEW_OUT and OLD_OUT are ``ncvsd-bench --out`` folders (their ``cells/*.jsonl``; a run still going
is fine). For each (task, method label) of NEW_OUT: the number of images both runs finished, and
on those images the one-sample PSNR / LPIPS and the mean-of-runs PSNR / LPIPS of each run, with
the difference new - old (PSNR up and LPIPS down are better). Prints Markdown.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

METRICS = (("one", "psnr"), ("one", "lpips"), ("mean", "psnr"), ("mean", "lpips"))


def finished_cells(out: Path) -> dict[tuple[str, str, str], dict]:
    """The cells of a bench folder keyed by (task, label, image); a later line replaces an earlier one."""
    cells = {}
    for path in sorted((out / "cells").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                cell = json.loads(line)
                cells[(cell["task"], cell["label"], cell["image"])] = cell
    return cells


def metric(cell: dict, part: str, name: str) -> float | None:
    return (cell.get(part) or {}).get(name)


def mean_or_none(values: list) -> float | None:
    return None if not values or any(v is None for v in values) else sum(values) / len(values)


def column(new: float | None, old: float | None) -> str:
    if new is None or old is None:
        return "n/a"
    digits = 3 if abs(old) < 1 else 2
    return f"{new:.{digits}f} / {old:.{digits}f} ({new - old:+.{digits}f})"


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    new, old = (finished_cells(Path(p)) for p in sys.argv[1:])
    images = defaultdict(list)
    for key in sorted(new.keys() & old.keys()):
        images[key[:2]].append(key)
    print("| task | method | images | PSNR new / old (diff) | LPIPS new / old (diff) "
          "| mean PSNR new / old (diff) | mean LPIPS new / old (diff) |")
    print("|---|---|---|---|---|---|---|")
    for (task, label), keys in images.items():
        cols = [column(*(mean_or_none([metric(run[k], *m) for k in keys]) for run in (new, old)))
                for m in METRICS]
        print(f"| {task} | {label} | {len(keys)} | " + " | ".join(cols) + " |")


if __name__ == "__main__":
    main()

"""Two runs of one ncvsd-bench suite side by side on the images both finished (issue 17, goals 3-4):
cbsd68-quick of two models, or the cbsd68-report of the shipped model and of ``lab/models/cpu-small``.

    python lab/results/ncvsd_4level/compare_quick.py NEW_OUT OLD_OUT

NEW_OUT and OLD_OUT are ``ncvsd-bench --out`` folders (their ``cells/rank*.jsonl``; a run still going
is fine). For each (task, method label) of NEW_OUT: the number of images both runs finished, and
on those images the one-sample PSNR / LPIPS and the mean-of-runs PSNR / LPIPS of each run, with
the difference new - old (PSNR up and LPIPS down are better). Prints Markdown.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

from ncvsd_inverse.bench.report import _mean as mean_or_none
from ncvsd_inverse.bench.runner import read_cells

METRICS = (("one", "psnr"), ("one", "lpips"), ("mean", "psnr"), ("mean", "lpips"))


def finished_cells(out: Path) -> dict[tuple[str, str, str], dict]:
    """The cells of a bench folder keyed by (task, label, image); a later cell (a rerun under changed
    settings) replaces an earlier one. A last line cut by a kill is left out, as the runner does."""
    return {(cell["task"], cell["label"], cell["image"]): cell for cell in read_cells(out / "cells").values()}


def metric(cell: dict, part: str, name: str) -> float | None:
    return (cell.get(part) or {}).get(name)


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

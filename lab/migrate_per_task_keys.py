"""One-off (2026-12-03): move a benchmark folder's DiffPIR, DPS and DAPS cells to the key scheme
in which a per-task setting (DiffPIR's lambda_ and zeta, DPS's zeta, DAPS's lr) enters a cell's
key as its task's value only, so that retuning one task's lambda does not rerun the others.

    python lab/migrate_per_task_keys.py benchmarks/suites/cbsd68-quick.yaml benchmarks/results/cbsd68-quick

A stored cell is moved to the key of a planned cell when both name the same task, image and
method, the stored variant (whole mappings) resolved for that task is the planned variant, and the
old key recomputed from the planned cell's other parts with the stored variant is the stored key:
so a cell made with other models, crops, precision or settings is never moved. Cells no plan
matches are kept as they are (the report ignores them).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import ncvsd_inverse.bench.runner as runner
from ncvsd_inverse.bench import load_suite
from ncvsd_inverse.bench.methods import METHODS, Models


def planned_parts(suite, crops, digests) -> list[dict]:
    """The key parts of every planned cell, in plan order."""
    parts, real = [], runner.cell_key
    runner.cell_key = lambda **kwargs: parts.append(kwargs) or real(**kwargs)
    try:
        for _ in runner.plan(suite, crops, digests, list(range(len(crops)))):
            pass
    finally:
        runner.cell_key = real
    return parts


def main() -> None:
    suite_path, out = Path(sys.argv[1]), Path(sys.argv[2])
    suite = load_suite(suite_path)
    crops = runner.load_crops(suite)
    models = Models(suite.generator, suite.teacher, "cpu")
    digests = {kind: models.digest(kind) for kind in ("generator", "teacher")}
    planned = {(p["task"]["name"], p["image"], p["method"], json.dumps(p["variant"], sort_keys=True)): p
               for p in planned_parts(suite, crops, digests) if METHODS[p["method"]].task_fallbacks}
    moved = 0
    for path in sorted((out / "cells").glob("rank*.jsonl")):
        lines = []
        for line in path.read_text().splitlines():
            cell = json.loads(line)
            method = METHODS.get(cell["method"])
            if method is not None and method.task_fallbacks:
                resolved = method.for_task(cell["variant"], cell["task"])
                parts = planned.get((cell["task"], cell["image"], cell["method"], json.dumps(resolved, sort_keys=True)))
                if parts is not None and resolved != cell["variant"] and \
                        runner.cell_key(**{**parts, "variant": cell["variant"]}) == cell["key"]:
                    cell["key"], cell["variant"], moved = runner.cell_key(**parts), resolved, moved + 1
            lines.append(json.dumps(cell))
        path.write_text("\n".join(lines) + "\n")
    print(f"{moved} cells moved to the per-task keys")


if __name__ == "__main__":
    main()

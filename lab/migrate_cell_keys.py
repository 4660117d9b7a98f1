"""One-off (issue 18, 2026-12-01): move a benchmark folder's peer cells to the key scheme in which a
cell of a method that ignores the sampler presets holds only the task's problem (name, noise,
operator), so that the round-10 preset change reruns only the PnP-GD cells.

    python lab/migrate_cell_keys.py benchmarks/suites/cbsd68-quick.yaml benchmarks/results/cbsd68-quick 3c796c5

For every planned cell it computes the key the old scheme gave it (whole task dict, presets as
at commit OLD) and the new one; cells of peers found under an old key are rewritten with the new
key, PnP-GD cells are left as they are (their keys change with the presets, so they rerun).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

import ncvsd_inverse.bench.runner as runner
from ncvsd_inverse.bench import load_suite
from ncvsd_inverse.bench.methods import Models
from ncvsd_inverse.tasks import load_task, task_from_dict


def old_task(name: str, commit: str):
    text = subprocess.run(["git", "show", f"{commit}:tasks/{name}.yaml"], check=True, capture_output=True,
                          text=True).stdout
    return task_from_dict(yaml.safe_load(text), f"{commit}:tasks/{name}.yaml")


def planned_keys(suite, crops, digests) -> list[tuple[str, bool]]:
    return [(cell["key"], cell["method"].uses_sampler_settings)
            for cell in runner.plan(suite, crops, digests, list(range(len(crops)))) if cell["method"]]


def main() -> None:
    suite_path, out, commit = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    suite = load_suite(suite_path)
    crops = runner.load_crops(suite)
    models = Models(suite.generator, suite.teacher, "cpu")
    digests = {kind: models.digest(kind) for kind in ("generator", "teacher")}
    new = planned_keys(suite, crops, digests)
    runner.load_task, runner.cell_task = (lambda name: old_task(name, commit)), (lambda method, task: task.to_dict())
    old = planned_keys(suite, crops, digests)
    runner.load_task = load_task
    assert len(old) == len(new)
    renamed = {o: n for (o, pnp), (n, _) in zip(old, new) if not pnp}
    moved = 0
    for path in sorted((out / "cells").glob("rank*.jsonl")):
        lines = []
        for line in path.read_text().splitlines():
            cell = json.loads(line)
            if cell["key"] in renamed:
                cell["key"], moved = renamed[cell["key"]], moved + 1
            lines.append(json.dumps(cell))
        path.write_text("\n".join(lines) + "\n")
    print(f"{moved} peer cells moved to the new keys (PnP-GD cells keep theirs: those of changed presets rerun)")


if __name__ == "__main__":
    main()

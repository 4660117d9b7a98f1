"""Issue 17, goal 4: does the generator earn its keep against the teacher's own PnP chain?

Reads a committed ``ncvsd-bench`` results.json and prints, per task and NFE, NCVSD's one-sample
LPIPS against the teacher chain's, and the PSNR of the mean of the runs of each.

    python lab/results/generator_vs_teacher/compare.py benchmarks/results/cbsd68-quick/results.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(path: str) -> None:
    rows = {(row["task"], row["method"]): row for row in json.loads(Path(path).read_text())}
    tasks = list(dict.fromkeys(task for task, _ in rows))  # in the file's order
    print("| NFE | task | LPIPS one sample: ncvsd / teacher | PSNR mean of runs: ncvsd / teacher (diff) "
          "| calibration: ncvsd / teacher |")
    print("|---|---|---|---|---|")
    for nfe in (10, 20, 50):
        for task in tasks:
            gen, teacher = rows.get((task, f"ncvsd {nfe}")), rows.get((task, f"pnp_teacher {nfe}"))
            if gen is None or teacher is None:
                continue
            lead = "**" if gen["lpips"] < teacher["lpips"] else ""
            gap = gen["psnr_mean"] - teacher["psnr_mean"]
            print(f"| {nfe} | {task} | {lead}{gen['lpips']:.3f}{lead} / {teacher['lpips']:.3f} | "
                  f"{gen['psnr_mean']:.2f} / {teacher['psnr_mean']:.2f} ({gap:+.2f}) | "
                  f"{gen['calibration']:.2f} / {teacher['calibration']:.2f} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/cbsd68-quick/results.json")

"""Peak RSS growth of one network call of the shipped models, per kind, precision and size, and
an affine fit ``bytes = a * pixels + b`` of each: what ``ncvsd_inverse.memory`` is calibrated on.

    python lab/levers/memory/calibrate.py --out lab/results/memory_calibration.json
"""

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]


def load_probe() -> str:
    """The one-call probe of ``tests/test_memory.py`` (the test runs it at 192x192)."""
    spec = importlib.util.spec_from_file_location("test_memory", ROOT / "tests" / "test_memory.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.PEAK_OF_ONE_CALL


PEAK_OF_ONE_CALL = load_probe()


def peak(kind: str, allocator: str, precision: str, side: int) -> int:
    out = subprocess.run([sys.executable, "-c", PEAK_OF_ONE_CALL, kind, allocator, precision, str(side)],
                         check=True, capture_output=True, text=True).stdout
    return int(out.split()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sides", type=int, nargs="+", default=[128, 192, 256, 384])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out")
    args = parser.parse_args()
    rows = []
    for kind in ("generator", "teacher"):
        for precision in ("float32", "bfloat16"):
            for allocator in ("system", "retain"):
                peaks = {s: [peak(kind, allocator, precision, s) for _ in range(args.repeats)] for s in args.sides}
                pixels = np.array([s * s for s in args.sides for _ in range(args.repeats)], float)
                values = np.array([v for s in args.sides for v in peaks[s]], float)
                slope, intercept = np.polyfit(pixels, values, 1)
                row = dict(kind=kind, precision=precision, allocator=allocator, peaks=peaks,
                           bytes_per_pixel=slope, intercept_mb=intercept / 2**20)
                rows.append(row)
                print(f"{kind:9s} {precision:8s} {allocator:6s} {slope:8.0f} B/px  {intercept / 2**20:6.1f} MB  "
                      + " ".join(f"{s}:{min(v) / 2**20:.0f}-{max(v) / 2**20:.0f}" for s, v in peaks.items()),
                      flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()

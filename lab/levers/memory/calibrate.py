"""Peak RSS growth of one network call of the shipped models, per kind, precision and size, and
an affine fit ``bytes = a * pixels + b`` of each: what ``ncvsd_inverse.memory`` is calibrated on.

    python lab/levers/memory/calibrate.py --out lab/results/memory_calibration.json
"""

import argparse
import json
import subprocess
import sys

import numpy as np

PEAK_OF_ONE_CALL = """
import sys, torch
from pathlib import Path
from ncvsd_inverse import load_model
from ncvsd_inverse.allocator import retain_freed_memory
torch.set_num_threads(1)
if sys.argv[2] == "retain":
    retain_freed_memory()
model = load_model(None, sys.argv[1])
side = int(sys.argv[4])
x = torch.randn(1, 3, side, side)

def kib(field):
    line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith(field))
    return int(line.split()[1])

before = kib("VmRSS:")
Path("/proc/self/clear_refs").write_text("5")
with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=sys.argv[3] == "bfloat16"):
    model(x, torch.tensor([0.5]))
print((kib("VmHWM:") - before) * 1024)
"""


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

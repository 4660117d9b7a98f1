"""Add a method to a benchmark suite: the classical estimate, refined by one teacher call.

A method is a :class:`~ncvsd_inverse.bench.methods.Method` with a name, its settings' defaults
(a suite's values are checked against their types) and ``run``, which turns a posed problem
into ``(runs, N, C, H, W)`` estimates in [-1, 1]. Registered in ``METHODS``, it can be named in
any suite file beside the built-in ones; it runs on the suite's images, measurements and seeds,
its network calls are counted, and its cells are kept and resumed like theirs.

    python examples/bench_method.py [--out DIR] [--smoke]

``--smoke`` (or ``NCVSD_EXAMPLES_SMOKE=1``): one 32x32 crop and 4 NCVSD steps, for CI.
"""

import argparse
import os
from pathlib import Path

import torch

from ncvsd_inverse.bench import load_suite, run_suite
from ncvsd_inverse.bench.methods import METHODS, Method


class ClassicalRefined(Method):
    """The operator's classical estimate (bicubic, Wiener, ...), denoised once by the teacher at
    level ``sigma``: one network call, no sampling."""

    def __init__(self):
        super().__init__("classical_refined", {"sigma": 0.1}, sampling=False, models=("teacher",))

    def label(self, variant):
        return f"classical_refined {variant['sigma']}"

    def run(self, problem, variant, models, seed, runs, precision):
        start = problem.operator.classical_estimate(problem.measurement, problem.task.sigma_y)
        with torch.no_grad():
            estimate = models.get("teacher")(start, variant["sigma"])
        return estimate[None].clamp(-1, 1)


METHODS["classical_refined"] = ClassicalRefined()

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--out", type=Path, default=Path("examples_out"))
parser.add_argument("--smoke", action="store_true", default=os.environ.get("NCVSD_EXAMPLES_SMOKE") == "1")
args = parser.parse_args()

crop, images, steps = (32, 1, 4) if args.smoke else (64, 3, 20)
suite_file = args.out / "my_suite.yaml"
args.out.mkdir(parents=True, exist_ok=True)
suite_file.write_text(f"""\
name: my-suite
data: {{set: smoke, crop: {crop}, first: {images}}}   # three small crops shipped in the package
tasks: [sr4x, gaussian_deblur]
seed: 0
runs: 1
methods:
  classical_refined: {{sigma: 0.1}}
  ncvsd: {{steps: [{steps}]}}
  classical: {{}}
""")
records = run_suite(load_suite(suite_file), args.out / "bench", progress=False)
for record in records:
    lpips = "n/a" if record["lpips"] is None else f"{record['lpips']:.3f}"
    print(f"{record['task']:16s} {record['method']:24s} NFE {record['nfe']:5.1f}  "
          f"PSNR {record['psnr']:.2f} dB  LPIPS {lpips}")
print(f"wrote {args.out / 'bench'}/results.md and grid-<task>.png")

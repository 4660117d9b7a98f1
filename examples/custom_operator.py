"""Write your own operator and solve with it: colourise a gray photo.

An operator is a class with ``forward`` (and ``adjoint`` when it is linear) on ``(N, C, H, W)``
images in [-1, 1]. Here ``A`` averages the colour channels: ``y = (x_r + x_g + x_b) / 3``, a
``(N, 1, H, W)`` measurement. The sampler's likelihood step then falls back to an exact sampler
by conjugate gradients (DESIGN 3.7); a closed form, where you have one, goes in
``likelihood_step``. The task preset gives the measurement noise and the sampler settings.

    python examples/custom_operator.py [--out DIR] [--smoke]

``--smoke`` (or ``NCVSD_EXAMPLES_SMOKE=1``): a 48x48 crop and 4 steps, for CI.
"""

import argparse
import dataclasses
import os
from pathlib import Path

import torch

from ncvsd_inverse import solve
from ncvsd_inverse.datasets import example_image
from ncvsd_inverse.figures import write_panel
from ncvsd_inverse.io import read_image
from ncvsd_inverse.metrics import psnr
from ncvsd_inverse.operators import Operator
from ncvsd_inverse.problem import Problem, with_sampler_settings
from ncvsd_inverse.tasks import load_task


class Grayscale(Operator):
    """``A x``: the mean of the colour channels, ``(N, 3, H, W) -> (N, 1, H, W)``."""

    is_linear = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=1, keepdim=True)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return y.expand(-1, 3, -1, -1) / 3

    def clean_shape(self, measurement_shape):
        return (measurement_shape[0], 3, *measurement_shape[2:])


parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--out", type=Path, default=Path("examples_out"))
parser.add_argument("--smoke", action="store_true", default=os.environ.get("NCVSD_EXAMPLES_SMOKE") == "1")
args = parser.parse_args()

size, steps = (48, 4) if args.smoke else (128, None)
clean = read_image(example_image("tiger.png"))[..., 64:64 + size, 96:96 + size]   # (1, 3, size, size)
operator = Grayscale()

# the adjoint is right when <A x, y> = <x, A^T y> for random x, y
x, y_probe = torch.randn(1, 3, 8, 8), torch.randn(1, 1, 8, 8)
assert torch.allclose((operator(x) * y_probe).sum(), (x * operator.adjoint(y_probe)).sum(), atol=1e-5)

# the sampler settings of the denoising preset (20 steps from pure noise), with this task's name
task = dataclasses.replace(load_task("denoise"), name="colorize", description="colourise a gray image, noise 0.02",
                           sigma_y=0.02)
task = with_sampler_settings(task, steps)                  # steps None: the preset's
y = operator.measure(clean, task.sigma_y, torch.Generator().manual_seed(0))
result = solve(Problem(task, operator, y), runs=2, seed=0)
print(f"one sample {psnr(result.samples[0], clean).item():.2f} dB, mean of 2 {psnr(result.mean, clean).item():.2f} dB, "
      f"gray copy {psnr(operator.adjoint(y) * 3, clean).item():.2f} dB ({result.nfe} NFE)")

args.out.mkdir(parents=True, exist_ok=True)
path = write_panel([("measurement (gray)", y), ("sample 1", result.samples[0]), ("sample 2", result.samples[1]),
                    ("truth", clean)], args.out / "custom_operator.png")
print(f"wrote {path}")

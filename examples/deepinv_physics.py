"""Use a deepinv physics: inpaint a photo that deepinv degraded, with deepinv's [0, 1] units.

A deepinv ``Inpainting`` physics (half of the pixels missing, Gaussian noise 0.02 in [0, 1]
units) measures a 128x128 crop; ``solve(y, physics=physics, task=...)`` takes the physics and the
measurement as deepinv has them and returns [0, 1] images. Physics with a native twin here
(``Inpainting``, ``BlurFFT``, circular ``Blur``, ``Denoising``) run as this toolkit's operators,
with their exact likelihood steps; the task preset gives only the sampler settings.

    python examples/deepinv_physics.py [--out DIR] [--smoke]

``--smoke`` (or ``NCVSD_EXAMPLES_SMOKE=1``): a 48x48 crop and 4 steps, for CI.
"""

import argparse
import os
from pathlib import Path

import deepinv
import torch

from ncvsd_inverse import solve
from ncvsd_inverse.datasets import example_image
from ncvsd_inverse.figures import write_panel
from ncvsd_inverse.io import read_image
from ncvsd_inverse.metrics import psnr

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--out", type=Path, default=Path("examples_out"))
parser.add_argument("--smoke", action="store_true", default=os.environ.get("NCVSD_EXAMPLES_SMOKE") == "1")
args = parser.parse_args()

size, steps = (48, 4) if args.smoke else (128, None)
clean = (read_image(example_image("tiger.png"))[..., 64:64 + size, 96:96 + size] + 1) / 2   # [0, 1]

torch.manual_seed(0)                                        # deepinv draws its mask and noise from it
physics = deepinv.physics.Inpainting(img_size=clean.shape[1:], mask=0.5,
                                     noise_model=deepinv.physics.GaussianNoise(sigma=0.02))
y = physics(clean)                                          # deepinv's measurement, [0, 1] units

result = solve(y, physics=physics, task="random_inpainting", runs=2, steps=steps, seed=0)
print(f"measurement {psnr(2 * y - 1, 2 * clean - 1).item():.2f} dB -> one sample "
      f"{psnr(2 * result.samples[0] - 1, 2 * clean - 1).item():.2f} dB, mean of 2 "
      f"{psnr(2 * result.mean - 1, 2 * clean - 1).item():.2f} dB ({result.nfe} NFE)")

args.out.mkdir(parents=True, exist_ok=True)
path = write_panel([("deepinv measurement", 2 * y - 1), ("one sample", 2 * result.samples[0] - 1),
                    ("mean of 2", 2 * result.mean - 1), ("truth", 2 * clean - 1)], args.out / "deepinv_physics.png")
print(f"wrote {path}")

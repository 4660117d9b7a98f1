"""Restore a photo: 4x super-resolution of a small image with the shipped model.

Four posterior samples of the 256x256 image behind a 64x64 measurement (the package's example,
degraded by the ``sr4x`` preset), their mean, and a picture of input, one sample, the mean and
the truth. The same as ``ncvsd-solve --task sr4x IMAGE --runs 4``.

    python examples/restore_photo.py [--out DIR] [--smoke]

``--smoke`` (or ``NCVSD_EXAMPLES_SMOKE=1``): a 32x32 corner of the input, one run of 4 steps, for CI.
"""

import argparse
import os
from pathlib import Path

import torch.nn.functional as F

from ncvsd_inverse import solve
from ncvsd_inverse.datasets import example_image
from ncvsd_inverse.figures import write_panel
from ncvsd_inverse.io import read_image, write_image
from ncvsd_inverse.metrics import lpips, psnr

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--out", type=Path, default=Path("examples_out"))
parser.add_argument("--smoke", action="store_true", default=os.environ.get("NCVSD_EXAMPLES_SMOKE") == "1")
args = parser.parse_args()

low_res = read_image(example_image("tiger_sr4x.png"))     # (1, 3, 64, 64) in [-1, 1]
truth = read_image(example_image("tiger.png"))            # (1, 3, 256, 256)
runs, steps = 4, None                                    # None: the preset's 20 steps (= network calls)
if args.smoke:
    low_res, truth, runs, steps = low_res[..., :32, :32], truth[..., :128, :128], 1, 4

result = solve(low_res, task="sr4x", runs=runs, steps=steps, seed=0)   # model=None: the shipped generator
args.out.mkdir(parents=True, exist_ok=True)
write_image(result.mean, args.out / "restored.png")

score = lpips(result.samples[0], truth)                  # (N,); None until `ncvsd-weights lpips`
print(f"one sample: {psnr(result.samples[0], truth).item():.2f} dB"
      + (f", LPIPS {score.item():.3f}" if score is not None else " (LPIPS: run `ncvsd-weights lpips`)")
      + f"; mean of {runs}: {psnr(result.mean, truth).item():.2f} dB; {result.nfe} network calls per run")

upsampled = F.interpolate(low_res, scale_factor=4, mode="nearest")
height, width = low_res.shape[-2:]
write_panel([(f"input ({height}x{width}, shown x4)", upsampled), ("one sample", result.samples[0]),
             (f"mean of {runs}", result.mean), ("truth", truth)], args.out / "restore_photo.png")
print(f"wrote {args.out / 'restored.png'} and {args.out / 'restore_photo.png'}")

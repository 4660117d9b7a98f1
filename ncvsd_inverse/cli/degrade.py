"""``ncvsd-degrade``: simulate measurements of a clean image with the task presets."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
import torch

from ncvsd_inverse.cli.common import user_errors, version_option
from ncvsd_inverse.io import read_image, write_image
from ncvsd_inverse.operators import Blur, Inpainting
from ncvsd_inverse.tasks import available_tasks, load_task

EXAMPLES = """
\b
Examples:
  ncvsd-degrade photo.png                             # every task, into ./degraded
  ncvsd-degrade photo.png --task sr4x --task box_inpainting --out-dir out --seed 3
"""


@click.command(epilog=EXAMPLES)
@click.argument("image", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--task", "tasks", multiple=True, metavar="NAME|FILE",
              help="Task preset (repeatable); default: all shipped presets.")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("degraded"),
              show_default=True, help="Folder for the measurements.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the measurement noise.")
@version_option
def main(image: Path, tasks: tuple[str, ...], out_dir: Path, seed: int) -> None:
    """Degrade a clean IMAGE with each task's operator and noise, and write the measurements.

    Writes <stem>_<task>.png (phase retrieval: .npy, the raw Fourier magnitudes), plus the mask
    (<stem>_<task>_mask.png, white = known) for inpainting and the kernel (<stem>_<task>_kernel.npy)
    for deblurring, so the same problem can be handed to the solver.
    """
    with user_errors():
        clean = read_image(image)
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in tasks or available_tasks():
            task = load_task(name)
            operator = task.build_operator(clean.shape)
            generator = torch.Generator().manual_seed(seed)
            measurement = operator.measure(clean, task.sigma_y, generator)
            stem = out_dir / f"{image.stem}_{task.name}"
            if operator.is_linear:
                written = write_image(measurement.clamp(-1, 1), stem.with_suffix(".png"))
            else:
                written = stem.with_suffix(".npy")
                np.save(written, measurement[0].numpy())
            if isinstance(operator, Inpainting):
                write_image(operator.mask[:, :1] * 2 - 1, Path(f"{stem}_mask.png"))
            if isinstance(operator, Blur):
                np.save(f"{stem}_kernel.npy", operator.kernel.numpy())
            click.echo(f"{task.name:18s} {tuple(clean.shape[-2:])} -> {tuple(measurement.shape[-2:])}  {written}")


if __name__ == "__main__":
    main()

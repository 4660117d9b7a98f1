"""Pictures for people: a colour-mapped uncertainty map and labelled side-by-side panels
(used by ``ncvsd-solve --save-std``, the benchmark grids and the examples)."""

from __future__ import annotations

from pathlib import Path

import torch

from .files import atomic_write

Tensor = torch.Tensor


def std_map(std: Tensor) -> Tensor:
    """Per-pixel std ``(C, H, W)`` as a colour-mapped ``(1, 3, H, W)`` image in [-1, 1] (magma,
    scaled so that the largest std is the brightest)."""
    from matplotlib import colormaps

    level = std.mean(dim=0)
    scaled = (level / level.max().clamp_min(1e-8)).cpu().numpy()
    rgb = torch.from_numpy(colormaps["magma"](scaled)[..., :3]).float().permute(2, 0, 1)
    return rgb[None] * 2 - 1


def write_panel(columns: list[tuple[str, Tensor]], path: str | Path, title: str | None = None,
                inch_per_column: float = 2.2, dpi: int = 120) -> Path:
    """Images side by side, each with its label above, as one PNG written atomically.

    columns: ``(label, image)`` pairs, each image ``(1, C, H, W)`` or ``(C, H, W)`` in [-1, 1]
    (C = 1 or 3; sizes may differ: each is drawn in its own axis, nearest-neighbour).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    figure, axes = plt.subplots(1, len(columns), figsize=(inch_per_column * len(columns), inch_per_column + 0.4),
                                squeeze=False)
    for axis, (label, image) in zip(axes[0], columns):
        image = image[0] if image.ndim == 4 else image
        pixels = ((image.detach().float().cpu().permute(1, 2, 0).numpy() + 1) / 2).clip(0, 1)
        gray = pixels.shape[-1] == 1
        axis.imshow(pixels[..., 0] if gray else pixels, cmap="gray" if gray else None, vmin=0, vmax=1,
                    interpolation="nearest")
        axis.set_title(label, fontsize=8)
        axis.axis("off")
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    atomic_write(path, lambda temp: figure.savefig(temp, format="png", dpi=dpi))
    plt.close(figure)
    return path

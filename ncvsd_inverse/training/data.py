"""Training data: random patches of an image folder, drawn by per-step random generators."""

from __future__ import annotations

from pathlib import Path

import torch

from ..io import ImageReadError, list_images, read_image

Tensor = torch.Tensor


def step_generator(seed: int, step: int, rank: int, device: torch.device | str = "cpu") -> torch.Generator:
    """The generator for every random draw of one step on one rank (makes resume exact)."""
    return torch.Generator(device=device).manual_seed(((seed * 1_000_003 + step) * 4099 + rank) % (2**63))


class PatchDataset:
    """All images of a folder in memory (uint8); random patches with flips and 90-degree turns.

    Unreadable images and images smaller than the patch are skipped and counted.
    Gray images are replicated to ``channels == 3`` (and colour ones averaged for ``channels == 1``).
    """

    def __init__(self, folder: str | Path, patch: int, channels: int = 3, files: list[str] | None = None):
        paths = list_images(folder)
        if files is not None:
            wanted = set(files)
            paths = [p for p in paths if p.name in wanted]
        self.patch, self.images, self.skipped, self.names = patch, [], [], []
        for path in paths:
            try:
                image = read_image(path)
            except ImageReadError as error:
                self.skipped.append(str(error))
                continue
            if min(image.shape[-2:]) < patch:
                self.skipped.append(f"{path}: smaller than the {patch}x{patch} patch")
                continue
            if image.shape[1] != channels:
                image = image.expand(-1, 3, -1, -1) if channels == 3 else image.mean(1, keepdim=True)
            self.images.append(((image[0] + 1) * 127.5).round().to(torch.uint8))
            self.names.append(path.name)
        if not self.images:
            raise ImageReadError(f"{folder}: no usable images (found {len(paths)} image files, "
                                 f"{len(self.skipped)} skipped)")

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, size: int, rng: torch.Generator) -> Tensor:
        """``(size, C, patch, patch)`` float32 in [-1, 1]."""
        out = []
        picks = torch.randint(len(self.images), (size,), generator=rng).tolist()
        for index in picks:
            image = self.images[index]
            top = int(torch.randint(image.shape[1] - self.patch + 1, (1,), generator=rng))
            left = int(torch.randint(image.shape[2] - self.patch + 1, (1,), generator=rng))
            crop = image[:, top:top + self.patch, left:left + self.patch]
            turns, flip = torch.randint(4, (2,), generator=rng).tolist()
            crop = torch.rot90(crop, turns, dims=(1, 2))
            out.append(crop.flip(2) if flip % 2 else crop)
        return torch.stack(out).float() / 127.5 - 1


def cpu_rng(rng: torch.Generator) -> torch.Generator:
    """Patch indices are drawn on the CPU: ``rng`` itself, or a CPU generator seeded like it."""
    if rng.device.type == "cpu":
        return rng
    return torch.Generator().manual_seed(int(rng.initial_seed()))

"""Inpainting and denoising: operators that are diagonal in the pixel basis."""

from __future__ import annotations

import numpy as np
import torch

from .base import Operator, Tensor, diagonal_gaussian_sample, noise_scales


def box_mask(height: int, width: int, box_fraction: float = 0.5) -> Tensor:
    """A centred missing box: ``(H, W)`` mask, 1 = known, 0 inside the box.

    The box is ``box_fraction`` of each side (the paper's 128x128 box in 256x256 is 0.5).
    """
    mask = torch.ones(height, width)
    box_h, box_w = round(height * box_fraction), round(width * box_fraction)
    top, left = (height - box_h) // 2, (width - box_w) // 2
    mask[top:top + box_h, left:left + box_w] = 0.0
    return mask


def random_mask(height: int, width: int, missing_fraction: float = 0.7, seed: int = 0) -> Tensor:
    """A random pixel mask, ``(H, W)``, 1 = known; ``missing_fraction`` of the pixels are 0.

    Exactly ``round(missing_fraction * H * W)`` pixels are missing; the same seed gives the same
    mask on every machine (numpy's PCG64).
    """
    count = height * width
    missing = np.random.default_rng(seed).permutation(count)[: round(missing_fraction * count)]
    mask = np.ones(count, dtype=np.float32)
    mask[missing] = 0.0
    return torch.from_numpy(mask.reshape(height, width))


class Inpainting(Operator):
    """``A x = M * x`` with a 0/1 mask ``M`` (1 = known pixel).

    mask: ``(H, W)``, ``(1, 1, H, W)`` or ``(1, C, H, W)`` tensor. The measurement has the
    image's shape with zeros at missing pixels.
    """

    def __init__(self, mask: Tensor):
        mask = torch.as_tensor(mask, dtype=torch.float32)
        if mask.ndim == 2:
            mask = mask[None, None]
        if mask.ndim != 4 or mask.shape[0] != 1:
            raise ValueError(f"mask must be H x W or 1 x C x H x W, got shape {tuple(mask.shape)}")
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError("mask must contain only 0 (missing) and 1 (known)")
        self.mask = mask

    def _mask_for(self, x: Tensor) -> Tensor:
        if tuple(self.mask.shape[-2:]) != tuple(x.shape[-2:]):
            raise ValueError(f"mask is {self.mask.shape[-2]}x{self.mask.shape[-1]} but the image is "
                             f"{x.shape[-2]}x{x.shape[-1]}")
        return self.mask.to(device=x.device, dtype=x.dtype)

    def check_size(self, shape: tuple[int, ...]) -> None:
        if tuple(self.mask.shape[-2:]) != tuple(shape[-2:]):
            raise ValueError(f"mask is {self.mask.shape[-2]}x{self.mask.shape[-1]} but the image is "
                             f"{shape[-2]}x{shape[-1]}")

    def forward(self, x: Tensor) -> Tensor:
        return self._mask_for(x) * x

    def adjoint(self, y: Tensor) -> Tensor:
        return self._mask_for(y) * y

    def likelihood_step(self, x, y, s, r, rng=None):
        """Exact per-pixel sampler (DESIGN 3.7): ``var = 1 / (1/r^2 + M/s^2)``."""
        mask = self._mask_for(x)
        noise = torch.randn(x.shape, generator=rng, device=x.device, dtype=x.dtype)
        return diagonal_gaussian_sample(x, mask * y, mask, *noise_scales(s, r, x), noise)

    def pseudo_inverse(self, y: Tensor) -> Tensor:
        """Known pixels as measured, missing ones 0 (mid-grey)."""
        return self.adjoint(y)

    classical_name = "biharmonic"

    def classical_estimate(self, y: Tensor, sigma_y: float) -> Tensor:
        """Biharmonic inpainting (``skimage.restoration.inpaint_biharmonic``) per image and channel."""
        from skimage.restoration import inpaint_biharmonic

        mask = self._mask_for(y).expand(1, y.shape[1], -1, -1)[0].cpu().numpy()
        image = y.detach().cpu().double().numpy()
        filled = np.stack([np.stack([inpaint_biharmonic(image[n, c], mask[c] == 0) for c in range(y.shape[1])])
                           for n in range(y.shape[0])])
        return torch.from_numpy(filled).to(device=y.device, dtype=y.dtype)


class Denoising(Operator):
    """``A = I``: the measurement is the noisy image itself."""

    def forward(self, x: Tensor) -> Tensor:
        return x

    def adjoint(self, y: Tensor) -> Tensor:
        return y

    def likelihood_step(self, x, y, s, r, rng=None):
        """Exact: ``var = 1 / (1/r^2 + 1/s^2)``, ``mean = var (x/r^2 + y/s^2)``."""
        noise = torch.randn(x.shape, generator=rng, device=x.device, dtype=x.dtype)
        return diagonal_gaussian_sample(x, y, torch.ones_like(x[:1, :1, :1, :1]),
                                        *noise_scales(s, r, x), noise)

    def pseudo_inverse(self, y: Tensor) -> Tensor:
        return y

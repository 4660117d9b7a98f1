"""Circular convolution (FFT-diagonal) and the blur kernels of the task presets."""

from __future__ import annotations

import math

import numpy as np
import torch

from .base import Operator, Tensor, diagonal_gaussian_sample, noise_scales


def gaussian_kernel(size: int, std: float) -> Tensor:
    """A ``size x size`` isotropic Gaussian kernel with standard deviation ``std`` pixels, sum 1."""
    if size < 1 or std <= 0:
        raise ValueError(f"gaussian_kernel needs size >= 1 and std > 0, got {size}, {std}")
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    profile = torch.exp(-0.5 * (coords / std) ** 2)
    kernel = profile[:, None] * profile[None, :]
    return (kernel / kernel.sum()).float()


def motion_kernel(size: int, intensity: float = 0.5, seed: int = 0) -> Tensor:
    """A ``size x size`` motion-blur kernel from a random camera trajectory, sum 1.

    The trajectory is a random walk with inertia: at each of ``4 * size`` sub-steps the velocity
    turns by a random angle whose spread grows with ``intensity`` (0 = a straight line,
    1 = very shaky) and occasionally jerks. The path is scaled to span ~0.8 of the kernel,
    splatted bilinearly and centred on its centre of mass. Same seed -> same kernel.
    """
    if size < 3 or not 0.0 <= intensity <= 1.0:
        raise ValueError(f"motion_kernel needs size >= 3 and 0 <= intensity <= 1, got {size}, {intensity}")
    rng = np.random.default_rng(seed)
    steps = 4 * size
    angle = rng.uniform(0, 2 * np.pi)
    velocity = np.array([np.cos(angle), np.sin(angle)])
    position = np.zeros(2)
    path = [position.copy()]
    for _ in range(steps):
        turn = rng.normal(0.0, 0.05 + 0.6 * intensity)
        if rng.uniform() < 0.05 * intensity:  # an abrupt jerk of the hand
            turn += rng.normal(0.0, np.pi / 2)
        c, s = np.cos(turn), np.sin(turn)
        velocity = np.array([c * velocity[0] - s * velocity[1], s * velocity[0] + c * velocity[1]])
        position = position + velocity
        path.append(position.copy())
    path = np.array(path)
    path -= path.mean(axis=0)
    extent = np.abs(path).max()
    path *= 0.4 * (size - 1) / max(extent, 1e-8)
    path += (size - 1) / 2
    kernel = np.zeros((size, size))
    for row, col in path[:, ::-1]:  # (x, y) -> (row = y, col = x)
        r0, c0 = int(np.floor(row)), int(np.floor(col))
        fr, fc = row - r0, col - c0
        for dr, wr in ((0, 1 - fr), (1, fr)):
            for dc, wc in ((0, 1 - fc), (1, fc)):
                if 0 <= r0 + dr < size and 0 <= c0 + dc < size:
                    kernel[r0 + dr, c0 + dc] += wr * wc
    return torch.from_numpy(kernel / kernel.sum()).float()


def kernel_to_otf(kernel: Tensor, height: int, width: int) -> Tensor:
    """The ``(H, W)`` transfer function (FFT of the kernel placed with its centre at (0, 0)).

    Kernels larger than the image wrap around (circular convolution), their taps summed.
    """
    kh, kw = kernel.shape
    rows = (torch.arange(kh) - kh // 2) % height
    cols = (torch.arange(kw) - kw // 2) % width
    psf = torch.zeros(height, width, dtype=torch.float64)
    psf.index_put_((rows[:, None].expand(kh, kw), cols[None, :].expand(kh, kw)),
                   kernel.to(torch.float64), accumulate=True)
    return torch.fft.fft2(psf)


class Blur(Operator):
    """Circular convolution with ``kernel`` (2-D, any size, summing to 1), computed by FFT.

    The transfer function is built per image size and cached.
    """

    def __init__(self, kernel: Tensor):
        kernel = torch.as_tensor(kernel, dtype=torch.float32)
        if kernel.ndim != 2:
            raise ValueError(f"blur kernel must be 2-D, got shape {tuple(kernel.shape)}")
        if not math.isclose(float(kernel.sum()), 1.0, abs_tol=1e-3):
            raise ValueError(f"blur kernel must sum to 1, it sums to {float(kernel.sum()):.4f}")
        self.kernel = kernel
        self._otf_cache: dict[tuple, Tensor] = {}

    def otf(self, like: Tensor) -> Tensor:
        """Transfer function for ``like``'s size, on its device (complex64, ``(H, W)``)."""
        key = (like.shape[-2], like.shape[-1], like.device)
        if key not in self._otf_cache:
            self._otf_cache[key] = kernel_to_otf(self.kernel, *key[:2]).to(like.device, torch.complex64)
        return self._otf_cache[key]

    def forward(self, x: Tensor) -> Tensor:
        return torch.fft.ifft2(torch.fft.fft2(x) * self.otf(x)).real

    def adjoint(self, y: Tensor) -> Tensor:
        return torch.fft.ifft2(torch.fft.fft2(y) * self.otf(y).conj()).real

    def likelihood_step(self, x, y, s, r, rng=None):
        """Exact, per frequency (DESIGN 3.7): ``var_f = 1 / (1/r^2 + |K_f|^2/s^2)``.

        With the orthonormal FFT the sampler is diagonal; the noise is white noise's FFT, so
        the inverse transform is real.
        """
        otf = self.otf(x)
        noise = torch.randn(x.shape, generator=rng, device=x.device, dtype=x.dtype)
        sample_f = diagonal_gaussian_sample(
            torch.fft.fft2(x, norm="ortho"), torch.fft.fft2(y, norm="ortho") * otf.conj(),
            otf.abs() ** 2, *noise_scales(s, r, x), torch.fft.fft2(noise, norm="ortho"))
        return torch.fft.ifft2(sample_f, norm="ortho").real

    def _regularised_inverse(self, y: Tensor, damping: float) -> Tensor:
        """``conj(K) Y / (|K|^2 + damping)`` per frequency."""
        otf = self.otf(y)
        return torch.fft.ifft2(torch.fft.fft2(y) * otf.conj() / (otf.abs() ** 2 + damping)).real

    def pseudo_inverse(self, y: Tensor) -> Tensor:
        """Wiener-like regularised inverse ``conj(K) Y / (|K|^2 + 1e-3)``."""
        return self._regularised_inverse(y, 1e-3)

    classical_name = "wiener"

    def classical_estimate(self, y: Tensor, sigma_y: float) -> Tensor:
        """Wiener deconvolution with a flat signal spectrum (noise-to-signal ratio ``sigma_y^2 / 0.25``)."""
        return self._regularised_inverse(y, sigma_y**2 / 0.25)

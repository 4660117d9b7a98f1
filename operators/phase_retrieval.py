"""Fourier phase retrieval: the nonlinear forward model of the task presets."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Operator, Tensor


class PhaseRetrieval(Operator):
    """``A(x) = |FFT(pad((x + 1) / 2))|``: Fourier magnitudes of the image zero-padded to
    ``oversampling`` times its size (orthonormal FFT).

    The image is mapped to [0, 1] before padding, so the zero padding is black, as in the
    DPS/DAPS benchmarks. Nonlinear: the likelihood step is unadjusted Langevin; the magnitude
    cannot tell an image from its shifts or its 180-degree rotation, so the solver draws several
    runs and keeps the one with the lowest data misfit.
    """

    is_linear = False
    langevin_steps = 50
    lipschitz = 0.25  # |d A / d x| <= 1/2 with the orthonormal FFT

    def __init__(self, oversampling: float = 2.0):
        if oversampling < 1.0:
            raise ValueError(f"phase-retrieval oversampling must be >= 1, got {oversampling}")
        self.oversampling = float(oversampling)
        self.min_size = 2

    def padded_size(self, height: int, width: int) -> tuple[int, int]:
        return round(self.oversampling * height), round(self.oversampling * width)

    def clean_shape(self, measurement_shape: tuple[int, ...]) -> tuple[int, ...]:
        height, width = (round(n / self.oversampling) for n in measurement_shape[-2:])
        return (*measurement_shape[:-2], height, width)

    def forward(self, x: Tensor) -> Tensor:
        height, width = self.padded_size(x.shape[-2], x.shape[-1])
        padded = F.pad((x + 1) / 2, (0, width - x.shape[-1], 0, height - x.shape[-2]))
        spectrum = torch.fft.fft2(padded, norm="ortho")
        # sqrt(re^2 + im^2 + eps) instead of abs(): differentiable where the spectrum is 0
        return (spectrum.real**2 + spectrum.imag**2 + 1e-12).sqrt()


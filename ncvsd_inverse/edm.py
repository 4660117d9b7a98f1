"""The equations of DESIGN sections 2-3, each in one function.

Noise levels are standard deviations in [-1, 1] image units; tensors of levels are ``(N,)`` or
``(N, 1, 1, 1)`` and broadcast against ``(N, C, H, W)`` images.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

Tensor = torch.Tensor
#: the data's standard deviation in [-1, 1] units (DESIGN 2)
SIGMA_DATA = 0.5
#: the noise-level range of the EDM schedule (DESIGN 2): the sampler's default start and end
SIGMA_MIN, SIGMA_MAX = 0.002, 80.0
#: the generative denoiser's noise inflation ``sigma_hat = (1 + gamma) sigma`` (DESIGN 3.3)
NOISE_INFLATION = 0.414


def as_level(sigma: float | Tensor, like: Tensor) -> Tensor:
    """A float or ``(N,)`` tensor of noise levels as ``(N, 1, 1, 1)`` (float32, ``like``'s device)."""
    sigma = torch.as_tensor(sigma, dtype=torch.float32, device=like.device)
    if sigma.ndim == 0:
        sigma = sigma.expand(like.shape[0])
    return sigma.reshape(-1, *([1] * (like.ndim - 1)))


class Preconditioning(NamedTuple):
    """The EDM preconditioning coefficients at a noise level (DESIGN 3.1)."""

    c_skip: Tensor
    c_out: Tensor
    c_in: Tensor
    c_noise: Tensor


def edm_precond(sigma: Tensor, sigma_data: float = SIGMA_DATA) -> Preconditioning:
    """DESIGN 3.1: ``c_skip = sd^2 / (t^2 + sd^2)``, ``c_out = t sd / sqrt(t^2 + sd^2)``,
    ``c_in = 1 / sqrt(t^2 + sd^2)``, ``c_noise = ln(t) / 4``."""
    c_skip = sigma_data**2 / (sigma**2 + sigma_data**2)
    c_out = sigma * sigma_data / (sigma**2 + sigma_data**2).sqrt()
    c_in = 1 / (sigma**2 + sigma_data**2).sqrt()
    c_noise = sigma.log() / 4
    return Preconditioning(c_skip, c_out, c_in, c_noise)


def edm_loss_weight(sigma: Tensor, sigma_data: float = SIGMA_DATA) -> Tensor:
    """DESIGN 3.1: ``lambda(t) = (t^2 + sd^2) / (t sd)^2``."""
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


def uncertainty_weighted_loss(error2: Tensor, sigma: Tensor, logvar: Tensor,
                              sigma_data: float = SIGMA_DATA) -> Tensor:
    """DESIGN 3.1/3.4: ``lambda(t) / exp(u) * ||.||^2 + u`` per sample (``error2``: per-pixel squares).

    Returns the per-sample loss averaged over pixels, ``(N,)``.
    """
    weight = edm_loss_weight(sigma, sigma_data).flatten()
    logvar = logvar.flatten()
    return weight / logvar.exp() * error2.flatten(1).mean(1) + logvar


def denoising_posterior(y: Tensor, sigma: Tensor, x_t: Tensor, t: Tensor):
    """DESIGN 3.2: combine ``y = x + sigma n1`` and ``x_t = x + t n2`` into one observation.

    Returns ``(y_eff, sigma_eff)`` with ``sigma_eff^2 = 1 / (1/sigma^2 + 1/t^2)`` and
    ``y_eff = sigma_eff^2 (y / sigma^2 + x_t / t^2)``; ``p(x | y, x_t) = p(x | y_eff)``.
    """
    precision = 1 / sigma**2 + 1 / t**2
    y_eff = (y / sigma**2 + x_t / t**2) / precision
    return y_eff, precision.rsqrt()


def karras_sigmas(steps: int, sigma_max: float = SIGMA_MAX, sigma_min: float = SIGMA_MIN, rho: float = 7.0,
                  device: str | torch.device = "cpu") -> Tensor:
    """DESIGN 2: ``steps`` levels from ``sigma_max`` down to ``sigma_min`` (a ``(steps,)`` tensor)."""
    if steps == 1:
        return torch.tensor([sigma_max], device=device)
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    hi, lo = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    return ((hi + ramp * (lo - hi)) ** rho).float().to(device)


def lognormal_sigma(shape: int, p_mean: float, p_std: float, rng=None, device="cpu") -> Tensor:
    """``ln t ~ N(p_mean, p_std^2)``, a ``(shape,)`` tensor (DESIGN 3.1)."""
    return (torch.randn(shape, generator=rng, device=device) * p_std + p_mean).exp()


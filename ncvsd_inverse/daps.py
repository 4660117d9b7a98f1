"""DAPS: Decoupled Annealing Posterior Sampling (Zhang et al., CVPR 2025), on an EDM denoiser.

A peer of PnP-GD for the benchmarks (deepinv has no DAPS). The algorithm of the paper, in this
project's units (images in [-1, 1], EDM noise levels):

- anneal over ``sigma_0 > ... > sigma_{K-1}`` (EDM's poly-7 schedule from 100 towards 0.1), then 0
  (:func:`annealing_levels`);
- at level ``sigma_k``, from ``x_t``, an Euler probability-flow ODE down to ~0 gives ``x0_hat``
  (:func:`ode_denoise`, ``ode_steps`` network calls);
- Langevin dynamics on ``x0`` targets ``p(x0 | x_t, y) ~ N(x0; x0_hat, r_k^2 I) p(y | x0)`` with
  ``r_k = sigma_k`` and the likelihood ``p(y | x0) ~ exp(-||A(x0) - y||^2 / tau^2)``
  (:func:`operators.base.langevin_sample`), with a step size decaying linearly from ``lr``
  towards ``lr_min_ratio * lr`` over the annealing;
- ``x_{k+1} = x0 + sigma_{k+1} eps``: the next level's start is the sample re-noised.

Where the paper and the authors' code differ, this follows the code, whose settings (tau 0.01,
the lr per task) were tuned with it (checked against zhangbingliang2019/DAPS, 2026-12-02): its
Langevin step takes the gradient of ``||A(x0) - y||^2 / tau^2``, a likelihood of std
``tau / sqrt(2)`` where the paper writes ``1 / (2 tau^2)``; its grids of ``K`` annealing levels
and of ``ode_steps`` ODE levels are the first ``K`` (``ode_steps``) points of ``K + 1``-point
(``ode_steps + 1``) poly-7 grids, the last point replaced by 0; the step size at level ``k`` is
``lr (1 + k / (K + 1) (lr_min_ratio - 1))``.

NFE = ``annealing_steps x ode_steps`` (DAPS-1K: 200 x 5). The Langevin steps use only the
operator (and autograd for a nonlinear one), not the network.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from ncvsd_inverse.operators.base import langevin_sample

from .edm import karras_sigmas

Tensor = torch.Tensor

#: DAPS's annealing range (EDM levels) and its Langevin defaults (the DAPS-1K settings).
DAPS_SIGMA_MAX, DAPS_SIGMA_MIN = 100.0, 0.1
DAPS_TAU, DAPS_LANGEVIN_STEPS, DAPS_LR_MIN_RATIO = 0.01, 100, 0.01
#: The ODE's last level before its final jump to 0.
ODE_SIGMA_MIN = 0.01


def truncated_poly7_levels(count: int, sigma_max: float, sigma_min: float) -> list[float]:
    """The first ``count`` points of the ``count + 1``-point EDM poly-7 grid from ``sigma_max`` to
    ``sigma_min``, then 0 (the authors' grids: the last point is replaced by 0)."""
    return karras_sigmas(count + 1, sigma_max, sigma_min, rho=7.0).tolist()[:count] + [0.0]


def annealing_levels(annealing_steps: int, sigma_max: float = DAPS_SIGMA_MAX,
                     sigma_min: float = DAPS_SIGMA_MIN) -> list[float]:
    """``annealing_steps`` EDM poly-7 levels from ``sigma_max`` towards ``sigma_min``, then 0."""
    return truncated_poly7_levels(annealing_steps, sigma_max, sigma_min)


def ode_denoise(denoiser: Callable[[Tensor, Tensor], Tensor], x: Tensor, sigma: float, ode_steps: int) -> Tensor:
    """``x0_hat``: Euler steps of the probability-flow ODE ``dx/dsigma = (x - D(x, sigma)) / sigma``
    from ``sigma`` down a poly-7 grid towards :data:`ODE_SIGMA_MIN` (:func:`truncated_poly7_levels`),
    whose last step jumps to 0 (``x0_hat = D(x, sigma_last)``); ``ode_steps`` calls of
    ``denoiser(x, sigma_per_image)``. ``ode_steps = 1`` is the denoiser's MMSE estimate ``D(x, sigma)``."""
    levels = truncated_poly7_levels(ode_steps, sigma, min(ODE_SIGMA_MIN, sigma))
    for current, following in zip(levels[:-1], levels[1:]):
        denoised = denoiser(x, torch.full((x.shape[0],), current, device=x.device, dtype=x.dtype))
        x = denoised if following == 0 else x + (following - current) * (x - denoised) / current
    return x


@torch.no_grad()
def daps_sample(denoiser: Callable[[Tensor, Tensor], Tensor], operator, y: Tensor, annealing_steps: int = 200,
                ode_steps: int = 5, lr: float = 1e-4, tau: float = DAPS_TAU, langevin_steps: int = DAPS_LANGEVIN_STEPS,
                lr_min_ratio: float = DAPS_LR_MIN_RATIO, sigma_max: float = DAPS_SIGMA_MAX,
                sigma_min: float = DAPS_SIGMA_MIN, rng: torch.Generator | None = None) -> Tensor:
    """One DAPS sample per measurement in ``y`` ``(N, ...)``: ``(N, C, H, W)`` in [-1, 1] units.

    ``denoiser(x, sigma)``: an EDM denoiser (the teacher) with ``sigma`` of shape ``(N,)``;
    ``operator``: ours (``forward`` differentiable). See the module docstring for the algorithm.
    """
    if annealing_steps < 1 or ode_steps < 1 or langevin_steps < 0:
        raise ValueError("annealing_steps and ode_steps must be >= 1 and langevin_steps >= 0")
    shape = operator.clean_shape(tuple(y.shape))
    levels = annealing_levels(annealing_steps, sigma_max, sigma_min)

    x_t = levels[0] * torch.randn(shape, generator=rng, device=y.device, dtype=y.dtype)
    for k, (sigma, following) in enumerate(zip(levels[:-1], levels[1:])):
        x0_hat = ode_denoise(denoiser, x_t, sigma, ode_steps)
        step = lr * (1 + k / (annealing_steps + 1) * (lr_min_ratio - 1))
        # exp(-||A x0 - y||^2 / tau^2) is langevin_sample's likelihood at std tau / sqrt(2)
        x0 = langevin_sample(operator.forward, x0_hat, y, tau / math.sqrt(2), sigma, step, langevin_steps, rng)
        x_t = x0 + following * torch.randn(shape, generator=rng, device=y.device, dtype=y.dtype)
    return x_t


__all__ = ["annealing_levels", "daps_sample", "ode_denoise", "truncated_poly7_levels"]

"""The training losses: the teacher's denoising score matching (DESIGN 3.1) and NCVSD (3.4)."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..edm import (
    denoising_posterior,
    edm_loss_weight,
    edm_precond,
    karras_sigmas,
    lognormal_sigma,
    uncertainty_weighted_loss,
)
from .config import DistillConfig

Tensor = torch.Tensor


class TeacherLoss:
    """DESIGN 3.1: ``lambda(t)/exp(u(t)) ||D(x + t eps, t) - x||^2 + u(t)``, ``ln t ~ N(P_mean, P_std^2)``."""

    def __init__(self, p_mean: float = -0.8, p_std: float = 1.6):
        self.p_mean, self.p_std = p_mean, p_std

    def __call__(self, denoiser: Callable, x: Tensor, rng: torch.Generator) -> Tensor:
        t = lognormal_sigma(x.shape[0], self.p_mean, self.p_std, rng, x.device)
        noisy = x + t.reshape(-1, 1, 1, 1) * torch.randn(x.shape, generator=rng, device=x.device)
        denoised, logvar = denoiser(noisy, t, return_logvar=True)
        return uncertainty_weighted_loss((denoised - x) ** 2, t, logvar)


def posterior_mean_bias(first: Tensor, second: Tensor, mmse: Tensor) -> Tensor:
    """Unbiased estimate of ``||E_z G - D||^2`` per problem, averaged over pixels, ``(N,)``.

    ``first``, ``second``: two independent samples ``G(y, sigma, z1)``, ``G(y, sigma, z2)`` of the
    same problems ``(N, C, H, W)``; ``mmse``: the teacher's ``D(y, sigma)``. By Tweedie's formula
    ``D(y, sigma) = E[x | y]``, so an exact posterior sampler has ``E_z G = D``. The product of the
    two deviations has expectation ``||E G - D||^2`` whatever the samples' spread, so its gradient
    moves the samples' mean and, unlike the square of one deviation, does not reward shrinking their
    variance (the spread can still move through the weights the two share; see the model card).
    """
    return ((first - mmse) * (second - mmse)).flatten(1).mean(1)


class NCVSDLoss:
    """DESIGN 3.4: the three NCVSD losses for one batch of clean images.

    sigma ~ U(Karras grid of ``sigma_levels`` levels, rho ``sigma_rho``); ``t`` lognormal.
    """

    def __init__(self, cfg: DistillConfig):
        self.cfg = cfg
        self.grid = karras_sigmas(cfg.sigma_levels, cfg.sigma_max, cfg.sigma_min, cfg.sigma_rho)

    def draw_problem(self, x: Tensor, rng: torch.Generator) -> tuple[Tensor, Tensor]:
        """``(y, sigma)``: ``sigma`` from the grid, ``y = x + sigma n``."""
        if self.grid.device != x.device:  # once: no host-to-device copy in every step
            self.grid = self.grid.to(x.device)
        pick = torch.randint(len(self.grid), (x.shape[0],), generator=rng, device=rng.device)
        sigma = self.grid[pick.to(x.device)].reshape(-1, 1, 1, 1)
        return x + sigma * torch.randn(x.shape, generator=rng, device=x.device), sigma

    def draw_noisy(self, x: Tensor, rng: torch.Generator) -> tuple[Tensor, Tensor]:
        t = lognormal_sigma(x.shape[0], self.cfg.p_mean, self.cfg.p_std, rng, x.device).reshape(-1, 1, 1, 1)
        return x + t * torch.randn(x.shape, generator=rng, device=x.device), t

    def fake_score_loss(self, fake: Callable, xg: Tensor, y: Tensor, sigma: Tensor,
                        rng: torch.Generator) -> Tensor:
        """DSM of the fake score on generator samples ``xg`` (no gradient into the generator)."""
        x_t, t = self.draw_noisy(xg, rng)
        denoised, logvar = fake(x_t, t, y, sigma, return_logvar=True)
        return uncertainty_weighted_loss((denoised - xg) ** 2, t, logvar)

    def discriminator_loss(self, disc: nn.Module, x: Tensor, xg: Tensor, y: Tensor, sigma: Tensor,
                           rng: torch.Generator) -> Tensor:
        """Non-saturating BCE: real ``x + t eps`` against fake ``xg + t eps``."""
        real_t, t = self.draw_noisy(x, rng)
        fake_t = xg + t * torch.randn(xg.shape, generator=rng, device=xg.device)
        # one call for both halves: EDM2's forced weight normalisation updates the weights in place
        logits = disc(torch.cat([real_t, fake_t]), torch.cat([t, t]), torch.cat([y, y]), torch.cat([sigma, sigma]))
        real_logit, fake_logit = logits.chunk(2)
        return (F.binary_cross_entropy_with_logits(real_logit, torch.ones_like(real_logit), reduction="none")
                + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit), reduction="none"))

    def generator_loss(self, generator_net: Callable, teacher: Callable, fake: nn.Module, y: Tensor,
                       sigma: Tensor, rng: torch.Generator, disc: nn.Module | None = None,
                       gan_scale: float = 0.0, logvar_t: nn.Module | None = None) -> tuple[Tensor, Tensor]:
        """VSD (+ GAN, + posterior-mean) loss of the generator; returns ``(per-sample loss, xg)``.

        ``real = D_teacher(y_eff, sigma_eff)`` (DESIGN 3.2), ``fake = f(x_t, t | y, sigma)``;
        ``L = lambda(t)/exp(u) ||xg - sg(xg + real - fake)||^2 + u`` (DESIGN 3.4), where
        ``u = u(sigma)`` from the generator, plus ``logvar_t(c_noise(t))`` when that head is given.
        ``cfg.mean_scale > 0``: the batch's two halves must be the same problems (``y``, ``sigma``);
        each pair adds ``mean_scale * lambda(sigma) * posterior_mean_bias`` to both of its samples.
        ``gan_scale`` is an argument because the loop switches the GAN term on after its warm-up.
        """
        z = torch.randn(y.shape, generator=rng, device=y.device)
        xg, logvar = generator_net(y, sigma, z=z, return_logvar=True)
        x_t, t = self.draw_noisy(xg.detach(), rng)
        x_t = x_t + (xg - xg.detach())  # the same noisy sample, but differentiable in xg (for the GAN)
        with torch.no_grad():
            y_eff, sigma_eff = denoising_posterior(y, sigma, x_t.detach(), t)
            real = teacher(y_eff, sigma_eff.flatten())
            fake_denoised = fake(x_t.detach(), t, y, sigma)
            target = xg.detach() + real - fake_denoised
        if logvar_t is not None:
            logvar = logvar + logvar_t(edm_precond(t).c_noise.flatten())
        loss = uncertainty_weighted_loss((xg - target) ** 2, t, logvar)
        mean_scale = self.cfg.mean_scale
        if mean_scale > 0:
            y_half, sigma_half = y.chunk(2)[0], sigma.chunk(2)[0]
            with torch.no_grad():
                mmse = teacher(y_half, sigma_half.flatten())
            bias = mean_scale * edm_loss_weight(sigma_half).flatten() * posterior_mean_bias(*xg.chunk(2), mmse)
            loss = loss + bias.repeat(2)
        if disc is not None and gan_scale > 0:
            logit = disc(x_t, t, y, sigma)
            loss = loss + gan_scale * F.binary_cross_entropy_with_logits(
                logit, torch.ones_like(logit), reduction="none")
        return loss, xg.detach()


# ----------------------------------------------------------------------------------------------

"""The diffusion peers that deepinv implements (DPS, DiffPIR, DDRM), run on the suite's teacher
through :class:`DeepinvDenoiser`, and the deepinv physics of a posed problem."""

from __future__ import annotations

import torch

from ncvsd_inverse.operators import (
    Blur,
    Inpainting,
    SuperResolution,
    measurement_to_deepinv,
    to_deepinv,
    to_deepinv_svd,
)

from ...edm import SIGMA_MIN
from ...problem import Problem
from .base import Method, seeded_runs

Tensor = torch.Tensor


class DeepinvDenoiser(torch.nn.Module):
    """Our EDM denoiser as a deepinv denoiser: ``(D(2 x - 1, 2 c sigma) + 1) / 2`` on [0, 1]
    images with deepinv's ``sigma`` in [0, 1] units (float, 0-d or ``(B,)``). ``centered``: for a
    sampler that works on zero-mean data (DDRM starts unobserved components at 0), images are our
    [-1, 1] ones halved, ``D(2 x, 2 c sigma) / 2``. ``c`` (``sigma_scale``) corrects a sampler
    that tells the denoiser a level other than the one present. Levels below the network's
    smallest (``SIGMA_MIN``) are raised to it."""

    def __init__(self, denoiser: torch.nn.Module, sigma_scale: float = 1.0, centered: bool = False):
        super().__init__()
        self.denoiser, self.sigma_scale, self.offset = denoiser, sigma_scale, 0.0 if centered else 1.0

    def forward(self, x: Tensor, sigma, *args, **kwargs) -> Tensor:
        sigma = torch.as_tensor(sigma, device=x.device, dtype=torch.float32).flatten()
        sigma = (2 * self.sigma_scale * sigma).clamp_min(SIGMA_MIN).expand(x.shape[0]).contiguous()
        return (self.denoiser(2 * x.float() - self.offset, sigma) + self.offset) / 2


def ddrm_noise_scale(physics, shape: tuple[int, ...]) -> float:
    """The std, in image space, of the noise deepinv's DDRM injects per unit of the level it
    passes to the denoiser: it draws ``N(0, 1/2)`` in the spectral domain, i.e. ``1/sqrt(2)`` for
    a real SVD (inpainting, SR) but about 1 for ``BlurFFT``'s real-and-imaginary spectrum.
    Measured with a fixed seed."""
    spectrum = physics.V_adjoint(torch.zeros(1, *shape[1:]))
    rng = torch.Generator().manual_seed(0)
    noise = torch.randn((16, *spectrum.shape[1:]), generator=rng) / 2**0.5
    return float(physics.V(noise).std())


class DiffPIR(Method):
    """deepinv's ``DiffPIR`` (Zhu et al. 2023): ``steps`` iterations; ``zeta`` per task (the
    official configurations: 0.1-0.25 for SR and deblurring, 1.0 for inpainting); ``lambda_`` per
    task, chosen on the validation split.

    deepinv's data step solves ``(A^T A + 2 rho_t) x = A^T y + 2 rho_t x0`` with ``rho_t = lambda
    sigma_n^2 / sigma_t^2``, where the official code solves ``(A^T A + rho_t) x = ...``: deepinv's
    lambda ``L`` is the official ``2 L`` (the official configurations use 1, i.e. 0.5 here). Both
    measure ``sigma_n`` in [0, 1] units and ``sigma_t`` in [-1, 1] units; the mix is the official
    one and lambda absorbs it. The values per task were chosen on the validation split (the
    manual's Benchmarks page; ``lab/results/diffpir_lambda/`` in the repository).
    """

    def __init__(self):
        super().__init__("diffpir", {"steps": 100, "runs": None,
                                     "lambda_": {"sr4x": 7.0, "gaussian_deblur": 7.0, "motion_deblur": 25.0,
                                                 "box_inpainting": 0.5, "random_inpainting": 0.5},
                                     "zeta": {"sr4x": 0.25, "gaussian_deblur": 0.1, "motion_deblur": 0.1,
                                              "box_inpainting": 1.0, "random_inpainting": 1.0}},
                         task_fallbacks={"lambda_": 7.0, "zeta": 0.1})

    def applies(self, problem):
        return problem.operator.is_linear

    def label(self, variant):
        return f"diffpir {variant['steps']}"

    def run(self, problem, variant, models, seed, runs, precision):
        import deepinv

        physics, y_d = physics_and_measurement(problem)
        sampler = deepinv.sampling.DiffPIR(
            DeepinvDenoiser(models.get("teacher")), deepinv.optim.data_fidelity.L2(),
            sigma=problem.task.sigma_y / 2, max_iter=variant["steps"],
            lambda_=variant["lambda_"], zeta=variant["zeta"],
            device=problem.measurement.device)
        return seeded_runs(runs, seed, lambda run: sampler(y_d, physics) * 2 - 1)


class DDRM(Method):
    """deepinv's ``DDRM`` (Kawar et al. 2022) on an SVD of the operator (inpainting, FFT blur, our
    separable SR SVD), ``steps`` levels from deepinv's sigma 1 to 0, eta 0.85, etab 1. It runs on
    zero-mean data (our images halved) as the official DDRM does on [-1, 1]: deepinv's starts
    the unobserved components at 0, which on [0, 1] data is black."""

    def __init__(self):
        super().__init__("ddrm", {"steps": 100, "runs": None})

    def applies(self, problem):
        return isinstance(problem.operator, (SuperResolution, Inpainting, Blur))

    def label(self, variant):
        return f"ddrm {variant['steps']}"

    def run(self, problem, variant, models, seed, runs, precision):
        import deepinv
        import numpy as np

        physics = to_deepinv_svd(problem.operator, problem.clean_shape, problem.task.sigma_y)
        scale = ddrm_noise_scale(physics, problem.clean_shape)
        physics = physics.to(problem.measurement.device)
        denoiser = DeepinvDenoiser(models.get("teacher"), scale, centered=True)
        sampler = deepinv.sampling.DDRM(denoiser, sigmas=np.linspace(1, 0, variant["steps"]))
        # on our images halved: zero mean, noise sigma_y / 2 as the physics says
        return seeded_runs(runs, seed, lambda run: sampler(problem.measurement / 2, physics) * 2)


def dps_step_weights(sde, timesteps: Tensor) -> tuple[Tensor, Tensor]:
    """``(sigma_t, 1 / F_t)`` per step of deepinv's DDPM solver on a VP ``sde``: one step moves the
    state by ``-F_t w grad ||A D - y||_[0,1]`` with ``F_t = s(t0) s(t1) (sigma(t0)^2 - sigma(t1)^2)``
    (``~ beta_t``) for a data-fidelity weight ``w``. The DPS paper moves it by ``-zeta grad ||A D -
    y||`` in [-1, 1] units, twice the [0, 1] norm, so ``w_t = 2 zeta / F_t``."""
    t0, t1 = timesteps[:-1], timesteps[1:]
    factor = sde.scale_t(t0) * sde.scale_t(t1) * (sde.sigma_t(t0) ** 2 - sde.sigma_t(t1) ** 2)
    return sde.sigma_t(t0), 1 / factor


class DPS(Method):
    """DPS (Chung et al. 2023) as deepinv's ``PosteriorDiffusion`` with the DPS data fidelity on the
    residual norm, the VP schedule and the DDPM solver (deepinv's ``DPS`` defaults), ``steps``
    steps, with the paper's step size ``zeta`` per task (0.3 for SR and deblurring, 0.5 for
    inpainting, 1.0 for phase retrieval) mapped onto deepinv's per-step weight by
    :func:`dps_step_weights`. Each of the ``steps - 1`` solver steps is one network call and one
    backward pass (deepinv shares the denoiser output between the score and the guidance)."""

    def __init__(self):
        super().__init__("dps", {"steps": 1000, "runs": None,
                                 "zeta": {"sr4x": 0.3, "gaussian_deblur": 0.3, "motion_deblur": 0.3,
                                          "box_inpainting": 0.5, "random_inpainting": 0.5,
                                          "phase_retrieval": 1.0}}, task_fallbacks={"zeta": 0.3})

    def label(self, variant):
        return f"dps {variant['steps']}"

    def run(self, problem, variant, models, seed, runs, precision):
        from deepinv.sampling import DDPMSolver, DPSDataFidelity, PosteriorDiffusion, VariancePreservingDiffusion

        zeta = variant["zeta"]
        device = problem.measurement.device
        denoiser = DeepinvDenoiser(models.get("teacher"))
        timesteps = torch.linspace(1, 0, variant["steps"], device=device, dtype=torch.float64)
        sde = VariancePreservingDiffusion(device=device, dtype=torch.float64)
        levels, inverse_factor = dps_step_weights(sde, timesteps)

        class PaperStepFidelity(DPSDataFidelity):
            def forward(self, x, y, physics, sigma, *args, get_model_outputs=False, **kwargs):
                step = torch.argmin((levels - 2 * float(sigma)).abs())  # deepinv passes sigma / 2
                self.weight = float(2 * zeta * inverse_factor[step])
                return super().forward(x, y, physics, sigma, *args, get_model_outputs=get_model_outputs, **kwargs)

        physics, y_d = physics_and_measurement(problem)

        def draw(run: int) -> Tensor:
            rng = torch.Generator(device=device).manual_seed(seed * 1000 + run)
            sampler = PosteriorDiffusion(
                data_fidelity=PaperStepFidelity(denoiser, clip=[-1.0, 1.0], guidance="norm"), denoiser=denoiser,
                sde=sde, solver=DDPMSolver(timesteps=timesteps, rng=rng), dtype=torch.float64, device=device)
            return sampler(y_d, physics, x_init=tuple(problem.clean_shape)).float() * 2 - 1

        return seeded_runs(runs, seed, draw)


def physics_for(problem: Problem):
    """The deepinv physics of a linear problem: the SVD form where there is one (exact
    ``prox_l2``), else the generic ``LinearPhysics``."""
    try:
        physics = to_deepinv_svd(problem.operator, problem.clean_shape, problem.task.sigma_y)
    except TypeError:
        physics = to_deepinv(problem.operator, problem.task.sigma_y)
    return physics.to(problem.measurement.device)


def physics_and_measurement(problem: Problem):
    """``(physics, y_d)`` in deepinv's [0, 1] units. A nonlinear operator (phase retrieval) already
    reads its input through ``(x + 1) / 2``: its deepinv form is ``A_d(x_d) = A(2 x_d - 1)``, with
    our measurement and noise unchanged."""
    import deepinv

    if problem.operator.is_linear:
        y_d = measurement_to_deepinv(problem.operator, problem.measurement, problem.clean_shape)
        return physics_for(problem), y_d
    operator = problem.operator
    physics = deepinv.physics.Physics(A=lambda x: operator.forward(2 * x - 1),
                                      noise_model=deepinv.physics.GaussianNoise(sigma=problem.task.sigma_y))
    return physics, problem.measurement

"""Sampling with generative denoisers: zero-shot posterior sampling (PnP-GD, DESIGN 3.6) and
unconditional generation (DESIGN 3.5).

A *prior step* is any callable ``prior(u, sigma, generator) -> x``: one network evaluation that
turns a noisy image ``u`` at level ``sigma`` into a clean estimate. :class:`GenerativePrior`
draws a sample with a :class:`GenerativeDenoiser`; :class:`DenoiserPrior` (the ablation) returns
the deterministic MMSE estimate of a teacher.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable

import torch
from tqdm import tqdm

from .edm import SIGMA_MAX, SIGMA_MIN, as_level, karras_sigmas
from .networks import GenerativeDenoiser

Tensor = torch.Tensor
#: Arithmetic of the network evaluations (the likelihood steps are always float32).
PRECISIONS = ("float32", "bfloat16")


class GenerativePrior:
    """Prior step ``x ~ G(u, sigma)``: one sample of the clean image given the noisy ``u``.

    ``channels``: the model's channel count. Gray images are replicated to 3 channels for an RGB
    model and the result averaged back to gray; colour images given to a gray model are denoised
    channel by channel. ``precision``: ``"float32"`` (default) or ``"bfloat16"`` (the network
    under autocast; the result is float32). bfloat16 pays only on CPUs with native bf16
    (AVX512-BF16 or AMX); without it, it is many times slower.
    ``max_batch``: the most images per network call (runs are split into calls of that size;
    None: all at once, the default on GPUs). On a CPU one image per call is fastest, because
    the activations of a batch overflow the caches (measured 1.5x at 256x256 on 2 cores), so
    that is the default there. The noise of all images is drawn before the split, so the result
    does not depend on ``max_batch``.
    """

    def __init__(self, model: Callable, channels: int | None = None, precision: str = "float32",
                 max_batch: int | None = None):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if max_batch is not None and max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.model, self.channels, self.precision, self.calls, self.seconds = model, channels, precision, 0, 0.0
        self.max_batch = max_batch

    def _network(self, u: Tensor, sigma: Tensor, generator) -> Tensor:
        if self.precision == "float32":
            return self._evaluate_in_chunks(u, sigma, generator)
        with torch.autocast(u.device.type, dtype=torch.bfloat16):
            return self._evaluate_in_chunks(u, sigma, generator).float()

    def _evaluate_in_chunks(self, u: Tensor, sigma: Tensor, generator) -> Tensor:
        size = self.max_batch or (1 if u.device.type == "cpu" else u.shape[0])
        noise = self._draw_noise(u, generator)
        if size >= u.shape[0] or (noise is None and self._needs_generator):
            return self._evaluate(u, sigma, generator, noise)
        parts = [self._evaluate(u[i:i + size], sigma[i:i + size], generator,
                                None if noise is None else noise[i:i + size]) for i in range(0, u.shape[0], size)]
        return torch.cat(parts)

    @property
    def _needs_generator(self) -> bool:
        return True

    def _draw_noise(self, u: Tensor, generator) -> Tensor | None:
        """The generator's noise ``z`` for the whole batch, where the model takes it (a
        :class:`GenerativeDenoiser`), so that splitting the batch keeps the random stream."""
        if not isinstance(self.model, GenerativeDenoiser):
            return None
        return torch.randn(u.shape, generator=generator, device=u.device, dtype=u.dtype)

    def _evaluate(self, u: Tensor, sigma: Tensor, generator, noise: Tensor | None = None) -> Tensor:
        if noise is not None:
            return self.model(u, sigma, z=noise)
        return self.model(u, sigma, generator=generator)

    def __call__(self, u: Tensor, sigma: Tensor, generator: torch.Generator | None = None) -> Tensor:
        started = time.perf_counter()
        n, c = u.shape[:2]
        if self.channels == 3 and c == 1:  # gray image, RGB model: replicate, then average back
            x = self._network(u.expand(-1, 3, -1, -1), sigma, generator).mean(dim=1, keepdim=True)
        elif self.channels == 1 and c > 1:  # colour image, gray model: each channel on its own
            x = self._network(u.reshape(n * c, 1, *u.shape[2:]), sigma.repeat_interleave(c), generator)
            x = x.reshape(u.shape)
        else:
            x = self._network(u, sigma, generator)
        self.calls += 1
        self.seconds += time.perf_counter() - started
        return x


class DenoiserPrior(GenerativePrior):
    """Ablation: the teacher's deterministic MMSE estimate ``D(u, sigma)`` as the prior step."""

    @property
    def _needs_generator(self) -> bool:
        return False

    def _draw_noise(self, u: Tensor, generator) -> None:
        return None

    def _evaluate(self, u: Tensor, sigma: Tensor, generator, noise: Tensor | None = None) -> Tensor:
        return self.model(u, sigma)


@dataclasses.dataclass
class PosteriorResult:
    """What :func:`posterior_sample` returns. Images ``(runs, N, C, H, W)`` / ``(N, C, H, W)``."""

    samples: Tensor           # final estimate of each run
    mean: Tensor              # mean over runs (an MMSE-like estimate)
    std: Tensor               # per-pixel standard deviation over runs (zero for one run)
    measurement: Tensor
    nfe: int                  # network evaluations per image (all runs are batched together)
    network_calls: int        # batched network calls actually made
    seconds: float            # wall time
    network_seconds: float    # time inside the prior step
    sigmas: Tensor
    trajectory: list[Tensor] | None = None
    misfit: Tensor | None = None  # (runs, N) data misfit of the kept chains (nonlinear tasks)

    @property
    def outside_network_fraction(self) -> float:
        return max(self.seconds - self.network_seconds, 0.0) / max(self.seconds, 1e-12)


def pnp_sigmas(steps: int, sigma_max: float = SIGMA_MAX, sigma_min: float = SIGMA_MIN, rho: float = 2.0,
               device="cpu") -> Tensor:
    """DESIGN 3.6: ``steps + 1`` Karras levels ``sigma_0 = sigma_max > ... > sigma_N = sigma_min``."""
    return karras_sigmas(steps + 1, sigma_max, sigma_min, rho, device)


def _ema_update(estimate: Tensor | None, x: Tensor, sigma: float, ema_sigma: float, ema_decay: float) -> Tensor:
    """DESIGN 3.6: ``x_hat = x_i``, or an EMA of the ``x_i`` once ``sigma_i < ema_sigma``."""
    if estimate is None or sigma >= ema_sigma or ema_decay <= 0:
        return x
    return ema_decay * estimate + (1 - ema_decay) * x


@torch.inference_mode()
def posterior_sample(prior: Callable, operator, y: Tensor, sigmas: Tensor, likelihood_scale: float,
                     runs: int = 1, restarts: int = 1, x_init: Tensor | None = None, ema_sigma: float = 0.0,
                     ema_decay: float = 0.0, generator: torch.Generator | None = None,
                     keep_trajectory: bool = False, progress: bool = False) -> PosteriorResult:
    """PnP-GD (DESIGN 3.6): alternate one prior step and one exact likelihood step.

    ``u = x_init + sigma_0 z``; for each level ``x_i = prior(u, sigma_i)`` (1 NFE) and
    ``u ~ N(u; x_i, sigma_{i+1}^2 I) N(y; A u, s^2 I)`` with ``s = likelihood_scale``.

    y: ``(N, ...)`` measurement; sigmas: ``(steps + 1,)`` decreasing (:func:`pnp_sigmas`);
    x_init: ``(N, C, H, W)`` starting image (default zeros); ``runs`` independent chains per
    measurement, batched; ``restarts`` chains per run of which the one with the lowest data
    misfit ``||A(x) - y||^2`` is kept (for nonlinear problems). Returns a :class:`PosteriorResult`.
    """
    started = time.perf_counter()
    clean_shape = operator.clean_shape(tuple(y.shape))
    batch = y.shape[0]
    chains = runs * restarts
    if x_init is None:
        x_init = torch.zeros(clean_shape, device=y.device, dtype=y.dtype)
    ys = y.repeat(chains, *([1] * (y.ndim - 1)))
    start = x_init.repeat(chains, 1, 1, 1)
    noise = torch.randn(start.shape, generator=generator, device=y.device, dtype=y.dtype)
    u = start + float(sigmas[0]) * noise
    calls_before = getattr(prior, "calls", 0)
    network_before = getattr(prior, "seconds", 0.0)
    estimate, trajectory = None, [] if keep_trajectory else None
    levels = sigmas.tolist()
    for i in tqdm(range(len(levels) - 1), disable=not progress, desc="sampling", unit="step", leave=False):
        x = prior(u, as_level(levels[i], u).flatten(), generator)
        u = operator.likelihood_step(x, ys, likelihood_scale, levels[i + 1], generator=generator)
        estimate = _ema_update(estimate, x, levels[i], ema_sigma, ema_decay)
        if keep_trajectory:
            trajectory.append(estimate.detach().cpu())
    estimate = estimate.reshape(restarts, runs, batch, *estimate.shape[1:])
    misfit = None
    if restarts > 1:
        flat_misfit = operator.misfit(estimate.flatten(0, 2), ys)
        misfit_all = flat_misfit.reshape(restarts, runs, batch)
        best = misfit_all.argmin(dim=0)  # (runs, batch): never chosen by ground truth
        estimate = torch.gather(estimate, 0, best[None, :, :, None, None, None].expand(1, *estimate.shape[1:]))
        misfit = misfit_all.gather(0, best[None]).squeeze(0)
    samples = estimate[0]
    calls = getattr(prior, "calls", 0) - calls_before
    return PosteriorResult(
        samples=samples, mean=samples.mean(0), std=samples.std(0, unbiased=False), measurement=y,
        nfe=len(levels) - 1, network_calls=calls, seconds=time.perf_counter() - started,
        network_seconds=getattr(prior, "seconds", 0.0) - network_before, sigmas=sigmas,
        trajectory=trajectory, misfit=misfit)


@torch.inference_mode()
def ancestral_posterior_sample(denoiser: Callable, y: Tensor, sigma: float, steps: int = 128,
                               sigma_min: float = SIGMA_MIN, rho: float = 7.0,
                               generator: torch.Generator | None = None) -> Tensor:
    """A reference sample of the denoising posterior ``p(x | y)``, ``y = x + sigma n``, from an
    MMSE denoiser alone (``steps`` NFE where a generative denoiser needs 1).

    ``y`` is a draw of the data diffused to level ``sigma``, so running the reverse diffusion from
    ``sigma`` down to 0 ends at a draw of ``p(x | y)``. Each step is DDPM's ancestral step,
    ``x_t' ~ N(x0 + (t'/t)^2 (x_t - x0), t'^2 (1 - (t'/t)^2))`` with ``x0 = D(x_t, t)``, on
    ``steps`` Karras levels (``rho``) from ``sigma`` to ``sigma_min``; the last level is denoised.
    It is exact as ``steps`` grows when ``D`` is the exact posterior mean, so it measures how
    faithful a posterior sampler the teacher itself implies (the reference for DESIGN 3.6b).

    ``y``: ``(N, C, H, W)`` in [-1, 1] plus noise; returns a sample of the same shape.
    """
    if steps < 2:
        raise ValueError(f"steps must be at least 2 (got {steps})")
    levels = karras_sigmas(steps, sigma, sigma_min, rho).tolist()
    x = y
    for t, t_next in zip(levels[:-1], levels[1:]):
        x0 = denoiser(x, as_level(t, x).flatten())
        keep = (t_next / t) ** 2
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x = x0 + keep * (x - x0) + t_next * (1 - keep) ** 0.5 * noise
    return denoiser(x, as_level(levels[-1], x).flatten())


@torch.inference_mode()
def generate(model: Callable, shape: tuple[int, ...], ts: list[float] | None = None, sigma_max: float = SIGMA_MAX,
             generator: torch.Generator | None = None, device="cpu") -> Tensor:
    """Unconditional samples (DESIGN 3.5): one step ``G(80 z, 80)``, or the multi-step ``ts``
    sampler with the condition ``y = 80 z`` (pure noise at level 80)."""
    y = sigma_max * torch.randn(shape, generator=generator, device=device)
    if not ts:
        return model(y, sigma_max, generator=generator)
    return model.sample(y, sigma_max, ts=list(ts), generator=generator)

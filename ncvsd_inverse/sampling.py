"""Sampling with generative denoisers: zero-shot posterior sampling (PnP-GD, DESIGN 3.6) and
unconditional generation (DESIGN 3.5).

A *prior step* is any callable ``prior(u, sigma, rng) -> x``: one network evaluation that
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

from . import machine
from .edm import SIGMA_MAX, SIGMA_MIN, as_level, denoising_posterior, karras_sigmas
from .machine import PRECISIONS, native_bfloat16, resolve_precision  # noqa: F401 (this module's names before)
from .networks import GenerativeDenoiser, unet_config
from .tiling import check_tile, receptive_radius, tiled_apply

Tensor = torch.Tensor


class NonFiniteError(FloatingPointError):
    """A sampler step produced NaN or Inf (the message names the step and its noise level)."""


class GenerativePrior:
    """Prior step ``x ~ G(u, sigma)``: one sample of the clean image given the noisy ``u``.

    ``channels``: the model's channel count. Gray images are replicated to 3 channels for an RGB
    model and the result averaged back to gray; colour images given to a gray model are denoised
    channel by channel. ``precision``: ``"auto"`` (default, :func:`~ncvsd_inverse.machine.resolve_precision`),
    ``"float32"`` or ``"bfloat16"`` (the network under autocast; the result is float32). bfloat16
    pays only where it is native (:func:`~ncvsd_inverse.machine.native_bfloat16`); elsewhere it warns, because emulated
    bf16 is many times slower.
    ``max_batch``: the most images per network call (runs are split into calls of that size;
    None: all at once, the default on GPUs). On a CPU one image per call is fastest, because
    the activations of a batch overflow the caches, so that is the default there. The noise of
    all images is drawn before the split, so the result does not depend on ``max_batch``. The
    network sees its input in ``channels_last`` layout, faster on CPUs (the manual's Speed page
    has the measurements). ``tile``: images larger
    than ``tile`` pixels on a side are evaluated in overlapping tiles of that size, so memory is
    bounded by the tile (:mod:`~ncvsd_inverse.tiling`); ``tile_margin``: how far from a tile's
    inner edges its output is discarded. The model's full receptive radius makes the tiled result
    equal the untiled one up to float rounding; None takes half of it, for less overlap at a
    difference of the order of 1e-6 (``tests/test_tiling.py``).
    """

    def __init__(self, model: Callable, channels: int | None = None, precision: str = "auto",
                 max_batch: int | None = None, tile: int | None = None, tile_margin: int | None = None):
        machine.resolve_precision(precision)  # refuses an unknown precision here, not at the first step
        if max_batch is not None and max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        check_tile(tile)
        if tile_margin is not None and tile_margin < 0:
            raise ValueError(f"tile_margin must be >= 0, got {tile_margin}")
        self.model, self.channels, self.precision, self.calls, self.seconds = model, channels, precision, 0, 0.0
        self.max_batch, self.tile, self.tile_margin = max_batch, tile, tile_margin

    def _network(self, u: Tensor, sigma: Tensor, rng) -> Tensor:
        precision = machine.resolve_precision(self.precision, u.device.type)
        if precision == "bfloat16" and not machine.native_bfloat16(u.device.type):
            machine.warn_emulated_bfloat16(u.device.type)
        u = u.contiguous(memory_format=torch.channels_last)  # the convolutions' fastest layout
        if precision == "float32":
            return self._evaluate_in_chunks(u, sigma, rng).contiguous()
        with torch.autocast(u.device.type, dtype=torch.bfloat16):
            return self._evaluate_in_chunks(u, sigma, rng).float().contiguous()

    #: whether the model draws random numbers (a deterministic one can be split freely)
    uses_rng = True

    def _evaluate_in_chunks(self, u: Tensor, sigma: Tensor, rng) -> Tensor:
        size = self.max_batch or (1 if u.device.type == "cpu" else u.shape[0])
        noise = self._draw_noise(u, rng)
        evaluate = self._evaluate_tiled if self._tiles(u) else self._evaluate
        if size >= u.shape[0] or (noise is None and self.uses_rng):
            return evaluate(u, sigma, rng, noise)
        parts = [evaluate(u[i:i + size], sigma[i:i + size], rng, None if noise is None else noise[i:i + size])
                 for i in range(0, u.shape[0], size)]
        return torch.cat(parts)

    def _tiles(self, u: Tensor) -> bool:
        """Whether ``u`` is evaluated in tiles (a tile size is set and ``u`` is larger)."""
        return self.tile is not None and max(u.shape[-2:]) > self.tile

    def _evaluate_tiled(self, u: Tensor, sigma: Tensor, rng, noise: Tensor | None = None) -> Tensor:
        """:meth:`_evaluate` in overlapping tiles (:func:`~ncvsd_inverse.tiling.tiled_apply`), with
        the margin the model's receptive radius unless ``tile_margin`` is set."""
        if noise is None and self.uses_rng:
            raise ValueError("tiling needs the generator's noise drawn for the whole image: use a GenerativeDenoiser")
        if self.tile_margin is None:
            self.tile_margin = receptive_radius(self.model, u.shape[1]) // 2
        cfg = unet_config(self.model)
        multiple = 1 if cfg is None else cfg.size_multiple
        inputs = (u,) if noise is None else (u, noise)
        return tiled_apply(lambda *tiles: self._evaluate(tiles[0], sigma, rng, tiles[1] if len(tiles) > 1 else None),
                           inputs, self.tile, self.tile_margin, multiple=multiple)

    def _draw_noise(self, u: Tensor, rng) -> Tensor | None:
        """The generator's noise ``z`` for the whole batch, where the model takes it (a
        :class:`GenerativeDenoiser`), so that splitting the batch keeps the random stream."""
        if not (self.uses_rng and isinstance(self.model, GenerativeDenoiser)):
            return None
        return torch.randn(u.shape, generator=rng, device=u.device, dtype=u.dtype)

    def _evaluate(self, u: Tensor, sigma: Tensor, rng, noise: Tensor | None = None) -> Tensor:
        if noise is not None:
            return self.model(u, sigma, z=noise)
        return self.model(u, sigma, rng=rng)

    def __call__(self, u: Tensor, sigma: Tensor, rng: torch.Generator | None = None) -> Tensor:
        started = time.perf_counter()
        n, c = u.shape[:2]
        if self.channels == 3 and c == 1:  # gray image, RGB model: replicate, then average back
            x = self._network(u.expand(-1, 3, -1, -1), sigma, rng).mean(dim=1, keepdim=True)
        elif self.channels == 1 and c > 1:  # colour image, gray model: each channel on its own
            x = self._network(u.reshape(n * c, 1, *u.shape[2:]), sigma.repeat_interleave(c), rng)
            x = x.reshape(u.shape)
        elif self.channels is not None and c != self.channels:
            raise ValueError(f"the model takes {self.channels}-channel images; these have {c} channels")
        else:
            x = self._network(u, sigma, rng)
        self.calls += 1
        self.seconds += time.perf_counter() - started
        return x


class DenoiserPrior(GenerativePrior):
    """Ablation: the teacher's deterministic MMSE estimate ``D(u, sigma)`` as the prior step."""

    uses_rng = False

    def _evaluate(self, u: Tensor, sigma: Tensor, rng, noise: Tensor | None = None) -> Tensor:
        return self.model(u, sigma)


class SwitchedPrior:
    """A hybrid chain's prior step (issue 42): ``above(u, sigma)`` while ``sigma >= switch_sigma``,
    ``below(u, sigma)`` under it; e.g. the generator's samples at high noise and the teacher's
    MMSE estimates at low noise, or the reverse. Counts calls and time like its parts."""

    def __init__(self, above: Callable, below: Callable, switch_sigma: float):
        if switch_sigma <= 0:
            raise ValueError(f"switch_sigma must be > 0, got {switch_sigma}")
        self.above, self.below, self.switch_sigma = above, below, float(switch_sigma)

    @property
    def calls(self) -> int:
        return getattr(self.above, "calls", 0) + getattr(self.below, "calls", 0)

    @property
    def seconds(self) -> float:
        return getattr(self.above, "seconds", 0.0) + getattr(self.below, "seconds", 0.0)

    def __call__(self, u: Tensor, sigma: Tensor, rng: torch.Generator | None = None) -> Tensor:
        step = self.above if float(sigma.reshape(-1)[0]) >= self.switch_sigma else self.below
        return step(u, sigma, rng)


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
    misfit: Tensor | None = None  # (runs, N) data misfit of the kept chains (nonlinear tasks)
    settings: dict | None = None  # the sampler settings that ran (set by ``solve``)

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
                     ema_decay: float = 0.0, rng: torch.Generator | None = None,
                     callback: Callable[[dict], None] | None = None, progress: bool = False) -> PosteriorResult:
    """PnP-GD (DESIGN 3.6): alternate one prior step and one exact likelihood step.

    ``u = x_init + sigma_0 z``; for each level ``x_i = prior(u, sigma_i)`` (1 NFE) and
    ``u ~ N(u; x_i, sigma_{i+1}^2 I) N(y; A u, s^2 I)`` with ``s = likelihood_scale``.

    y: ``(N, ...)`` measurement; sigmas: ``(steps + 1,)`` decreasing (:func:`pnp_sigmas`);
    x_init: ``(N, C, H, W)`` starting image (default zeros); ``runs`` independent chains per
    measurement, batched; ``restarts`` chains per run of which the one with the lowest data
    misfit ``||A(x) - y||^2`` is kept (for nonlinear problems). ``rng`` draws all the noise.
    ``callback(info)`` runs after every step with ``info = {"i", "sigma", "sigma_next", "x", "u",
    "estimate"}`` (k-diffusion's convention): step index, levels, the prior step's output, the
    likelihood step's output and the current estimate, all ``(chains, C, H, W)``; use it for
    progress, trajectories or early inspection. Returns a :class:`PosteriorResult`.
    """
    started = time.perf_counter()
    clean_shape = operator.clean_shape(tuple(y.shape))
    batch = y.shape[0]
    chains = runs * restarts
    if x_init is None:
        x_init = torch.zeros(clean_shape, device=y.device, dtype=y.dtype)
    ys = y.repeat(chains, *([1] * (y.ndim - 1)))
    start = x_init.repeat(chains, 1, 1, 1)
    noise = torch.randn(start.shape, generator=rng, device=y.device, dtype=y.dtype)
    u = start + float(sigmas[0]) * noise
    calls_before = getattr(prior, "calls", 0)
    network_before = getattr(prior, "seconds", 0.0)
    estimate = None
    levels = sigmas.tolist()
    for i in tqdm(range(len(levels) - 1), disable=not progress, desc="sampling", unit="step", leave=False):
        x = prior(u, as_level(levels[i], u).flatten(), rng)
        if not bool(torch.isfinite(x).all()):
            raise NonFiniteError(f"step {i + 1} of {len(levels) - 1} (sigma {levels[i]:.4g}): the prior step returned "
                                 "NaN or Inf (a broken model, a bad preset or an overflow); nothing was written")
        u = operator.likelihood_step(x, ys, likelihood_scale, levels[i + 1], rng=rng)
        estimate = _ema_update(estimate, x, levels[i], ema_sigma, ema_decay)
        if callback is not None:
            callback({"i": i, "sigma": levels[i], "sigma_next": levels[i + 1], "x": x, "u": u, "estimate": estimate})
    estimate = estimate.reshape(restarts, runs, batch, *estimate.shape[1:])
    misfit = None
    if restarts > 1:
        flat_misfit = operator.misfit(estimate.flatten(0, 2), ys)
        misfit_all = flat_misfit.reshape(restarts, runs, batch)
        best = misfit_all.argmin(dim=0)  # (runs, batch): never chosen by ground truth
        estimate = torch.gather(estimate, 0, best[None, :, :, None, None, None].expand(1, *estimate.shape[1:]))
        misfit = misfit_all.gather(0, best[None]).squeeze(0)
    samples = operator.align_runs(estimate[0])
    calls = getattr(prior, "calls", 0) - calls_before
    return PosteriorResult(
        samples=samples, mean=samples.mean(0), std=samples.std(0, unbiased=False), measurement=y,
        nfe=len(levels) - 1, network_calls=calls, seconds=time.perf_counter() - started,
        network_seconds=getattr(prior, "seconds", 0.0) - network_before, sigmas=sigmas, misfit=misfit)


@torch.inference_mode()
def ancestral_posterior_sample(denoiser: Callable, y: Tensor, sigma: float, steps: int = 128,
                               sigma_min: float = SIGMA_MIN, rho: float = 7.0,
                               rng: torch.Generator | None = None,
                               callback: Callable[[dict], None] | None = None) -> Tensor:
    """A reference sample of the denoising posterior ``p(x | y)``, ``y = x + sigma n``, from an
    MMSE denoiser alone (``steps`` NFE where a generative denoiser needs 1).

    ``y`` is a draw of the data diffused to level ``sigma``, so running the reverse diffusion from
    ``sigma`` down to 0 ends at a draw of ``p(x | y)``. Each step is DDPM's ancestral step,
    ``x_t' ~ N(x0 + (t'/t)^2 (x_t - x0), t'^2 (1 - (t'/t)^2))`` with ``x0 = D(x_t, t)``, on
    ``steps`` Karras levels (``rho``) from ``sigma`` to ``sigma_min``; the last level is denoised.
    It is exact as ``steps`` grows when ``D`` is the exact posterior mean, so it measures how
    faithful a posterior sampler the teacher itself implies (the reference for DESIGN 3.6b).

    ``y``: ``(N, C, H, W)`` in [-1, 1] plus noise; returns a sample of the same shape.
    ``callback`` gets ``{"i", "sigma", "sigma_next", "x0", "x"}`` after each step.
    """
    if steps < 2:
        raise ValueError(f"steps must be at least 2 (got {steps})")
    levels = karras_sigmas(steps, sigma, sigma_min, rho).tolist()
    x = y
    for i, (t, t_next) in enumerate(zip(levels[:-1], levels[1:])):
        x0 = denoiser(x, as_level(t, x).flatten())
        keep = (t_next / t) ** 2
        noise = torch.randn(x.shape, generator=rng, device=x.device, dtype=x.dtype)
        x = x0 + keep * (x - x0) + t_next * (1 - keep) ** 0.5 * noise
        if callback is not None:
            callback({"i": i, "sigma": t, "sigma_next": t_next, "x0": x0, "x": x})
    return denoiser(x, as_level(levels[-1], x).flatten())


@torch.inference_mode()
def multistep_sample(model: Callable, y: Tensor, sigma: float | Tensor, ts: list[float],
                     rng: torch.Generator | None = None, callback: Callable[[dict], None] | None = None) -> Tensor:
    """One sample of ``p(x | y)``, ``y = x + sigma n``, by the multi-step sampler of DESIGN 3.5.

    ``x_t ~ N(0, t_0^2)``; for each ``t_i`` (decreasing) combine ``(y, sigma)`` with ``x_t`` into
    ``(y_eff, sigma_eff)`` (DESIGN 3.2), draw ``x_0 = G(y_eff, sigma_eff)`` and re-noise to
    ``t_{i+1}``: ``len(ts)`` network evaluations. ``callback`` gets ``{"i", "t", "x0"}`` after each.
    """
    sigma = as_level(sigma, y)
    x_t = ts[0] * torch.randn(y.shape, generator=rng, device=y.device, dtype=y.dtype)
    for i, t in enumerate(ts):
        y_eff, sigma_eff = denoising_posterior(y, sigma, x_t, as_level(t, y))
        x0 = model(y_eff, sigma_eff, rng=rng)
        if callback is not None:
            callback({"i": i, "t": t, "x0": x0})
        if i + 1 < len(ts):
            x_t = x0 + ts[i + 1] * torch.randn(y.shape, generator=rng, device=y.device, dtype=y.dtype)
    return x0


@torch.inference_mode()
def generate(model: Callable, shape: tuple[int, ...], ts: list[float] | None = None, sigma_max: float = SIGMA_MAX,
             rng: torch.Generator | None = None, device="cpu",
             callback: Callable[[dict], None] | None = None) -> Tensor:
    """Unconditional samples (DESIGN 3.5): one step ``G(80 z, 80)``, or :func:`multistep_sample`
    with ``ts`` and the condition ``y = 80 z`` (pure noise at level 80)."""
    y = sigma_max * torch.randn(shape, generator=rng, device=device)
    if not ts:
        return model(y, sigma_max, rng=rng)
    return multistep_sample(model, y, sigma_max, list(ts), rng, callback)

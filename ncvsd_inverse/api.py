"""The Python API: ``solve`` an inverse problem with a preset task (or a deepinv physics),
``load_model`` a generator or teacher."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Callable

import torch

from ncvsd_inverse.operators import DeepinvOperator, deepinv_noise_sigma, from_deepinv, measurement_from_deepinv
from ncvsd_inverse.tasks import SAMPLER_FIELDS, Task, load_task, task_from_dict

from .checkpoints import CheckpointError
from .machine import resolve_precision
from .memory import NetworkSize, available_memory_bytes, check_memory, solve_memory_bytes
from .models import load_generator, load_teacher
from .networks import unet_config
from .priors import load_prior
from .problem import Problem, check_size, pose_problem, with_sampler_settings
from .sampling import DenoiserPrior, GenerativePrior, PosteriorResult, pnp_sigmas, posterior_sample
from .tiling import check_tile

DEFAULT_MODEL_DIR = Path(__file__).parent / "default_model"

#: The chain a deepinv physics without a native twin runs when its task asks for a classical start
#: (which only the native operators have): from pure noise, as the SR and deblurring presets do.
FROM_NOISE = {"init": "zero", "sigma_max": 80.0, "rho": 4.0, "steps": 20}


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a torch device (None: cuda if present, else cpu). Raises ``ValueError`` in one
    line for a malformed name or a CUDA device this machine does not have."""
    if device is None:
        return default_device()
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"unknown device {str(device)!r} ({error}); use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device}: this machine has no CUDA GPU that torch can use; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device {device}: only {torch.cuda.device_count()} CUDA device(s) here")
    return device


def load_model(path: str | Path | None = None, kind: str = "generator", device=None):
    """A frozen model: the shipped default (``path=None``), a ``.safetensors`` checkpoint or a run folder.

    ``kind="generator"``: the NCVSD :class:`GenerativeDenoiser` (``G(y, sigma)``);
    ``kind="teacher"``: the EDM :class:`Denoiser` (``D(x, sigma)``).
    """
    device = resolve_device(device)
    if kind not in ("generator", "teacher"):
        raise ValueError(f"kind must be 'generator' or 'teacher', got {kind!r}")
    if path is None:
        path = DEFAULT_MODEL_DIR / f"{kind}.safetensors"
        if not path.exists():
            raise CheckpointError("no default model is shipped with this install yet; pass a model "
                                  "(--model PATH: an ncvsd-distill run folder or its .safetensors)")
    return (load_generator if kind == "generator" else load_teacher)(path, device)


def model_channels(model) -> int | None:
    """The channel count a model expects: its UNet's, or a foreign prior's ``img_channels``
    (None if unknown)."""
    cfg = unet_config(model)
    return getattr(model, "img_channels", None) if cfg is None else cfg.img_channels


def solve(measurement: torch.Tensor | Problem, task: Task | str = "sr4x", model=None, runs: int = 1,
          steps: int | None = None, seed: int = 0, device=None, prior: str | Callable = "ncvsd", mask=None, kernel=None,
          physics=None, progress: bool = False, callback=None, precision: str = "auto",
          tile: int | str | None = "auto", teacher=None, **overrides) -> PosteriorResult:
    """Recover clean images from ``measurement`` with PnP-GD (DESIGN 3.6).

    measurement: ``(N, C, h, w)`` degraded image(s) in [-1, 1] (for ``sr4x`` the low-resolution
      image; for inpainting the damaged image; for phase retrieval the Fourier magnitudes), or a
      :class:`~ncvsd_inverse.problem.Problem` already posed (then ``task``, ``mask``, ``kernel``,
      ``steps`` and ``overrides`` are its own).
    task: preset name (``"sr4x"``), YAML path or :class:`tasks.Task`.
    model: None (shipped default), a path, or a loaded GenerativeDenoiser (Denoiser with
      ``prior="teacher"``).
    runs: independent posterior samples per image; ``steps``: prior steps (= NFE); ``seed``.
    prior: ``"ncvsd"`` (generative denoiser), ``"teacher"`` (the PnP chain on a denoiser ``D(x, sigma)``),
      or a prior step ``step(u, sigma, rng) -> x`` (``u``: ``(chains, C, H, W)``, ``sigma``: ``(chains,)``),
      such as a :class:`~ncvsd_inverse.sampling.SwitchedPrior` (a hybrid chain) or a
      :class:`~ncvsd_inverse.sampling.GenerativePrior` built by hand. A step carries its own model,
      precision and tiles, so ``model``, ``teacher`` and ``tile`` are not taken with it.
    teacher: with ``prior="teacher"``, the prior model: anything :func:`~ncvsd_inverse.priors.load_prior`
      takes (an ``ncvsd-train`` checkpoint, ``"diffusers:PATH"``, ``"deepinv:NAME:WEIGHTS"``, a deepinv
      denoiser, a callable); None: ``model``, or the shipped teacher.
    mask / kernel: replace the preset's inpainting mask ((H, W), 1 = known) or blur kernel.
    physics: a deepinv ``LinearPhysics`` instead of the task's operator, with ``measurement`` in
      deepinv's [0, 1] units and its noise ``physics.noise_model.sigma``; the task then gives only
      the sampler settings and the result is in [0, 1] (see :func:`solve_deepinv`).
    callback: called after every step with a dict (see :func:`~ncvsd_inverse.sampling.posterior_sample`).
    precision: ``"auto"`` (default: bfloat16 where it is native, float32 elsewhere),
      ``"float32"`` or ``"bfloat16"`` (the network under autocast; emulated bf16 on a CPU without
      AVX512-BF16/AMX is many times slower, see :func:`~ncvsd_inverse.sampling.native_bfloat16`).
    tile: evaluate the network in overlapping tiles of this many pixels (memory bounded by the
      tile; :mod:`~ncvsd_inverse.tiling`); None: never; ``"auto"`` (default): untiled when the
      solve fits in memory, else the largest tiles that fit (:func:`choose_tile`).
    overrides: sampler settings (``likelihood_scale``, ``sigma_max``, ``sigma_min``, ``rho``,
      ``ema_sigma``, ``ema_decay``, ``init``, ``restarts``); None values are ignored.
    Returns a :class:`PosteriorResult`: ``samples`` (runs, N, C, H, W), ``mean`` and ``std``
    (N, C, H, W) in [-1, 1] units, ``nfe``, ``seconds``, ...
    """
    if physics is not None:
        if mask is not None or kernel is not None:
            raise ValueError(f"the {'mask' if mask is not None else 'kernel'} belongs to the deepinv physics; "
                             "do not pass it with physics=")
        return solve_deepinv(measurement, physics, task, model=model, runs=runs, steps=steps, seed=seed,
                             device=device, prior=prior, progress=progress, callback=callback,
                             precision=precision, teacher=teacher, **overrides)
    check_prior(prior, model, teacher, tile)
    if teacher is not None and prior != "teacher":
        raise ValueError("teacher= is the prior of prior='teacher'; for NCVSD pass the generator distilled from it "
                         "as model=")
    if isinstance(measurement, Problem):
        if steps is not None or mask is not None or kernel is not None or overrides:
            raise ValueError("a posed Problem carries its own steps, mask, kernel and sampler settings")
        problem = measurement
        check_size(problem.clean_shape, runs * problem.settings["restarts"])  # posed, maybe for fewer runs
    else:
        problem = pose_problem(measurement, task, mask=mask, kernel=kernel, runs=runs, steps=steps, **overrides)
    device = resolve_device(device)
    chains = runs * problem.settings["restarts"]
    if callable(prior):
        step = prior
        check_memory(problem.clean_shape, chains, None, None, device)  # its network's size is unknown
    else:
        step = built_prior_step(prior, model, teacher, problem.clean_shape, chains, device, precision, tile)
    problem = problem.to(device)
    settings = problem.settings
    rng = torch.Generator(device=device).manual_seed(seed)
    sigmas = pnp_sigmas(settings["steps"], settings["sigma_max"], settings["sigma_min"], settings["rho"], device)
    result = posterior_sample(step, problem.operator, problem.measurement, sigmas, settings["likelihood_scale"],
                              runs=runs, restarts=settings["restarts"], x_init=problem.initial_image(),
                              ema_sigma=settings["ema_sigma"], ema_decay=settings["ema_decay"], rng=rng,
                              callback=callback, progress=progress)
    return dataclasses.replace(result, settings=dict(settings))


#: Largest tiles ``tile="auto"`` tries, largest first, when the untiled solve does not fit, and
#: the share of the available memory it plans to use, leaving the rest to the machine.
AUTO_TILES, AUTO_MEMORY_SHARE = (2048, 1024, 512, 384, 256), 0.75


def choose_tile(tile: int | str | None, clean_shape: tuple[int, ...], chains: int, network: NetworkSize | None,
                images_per_call: int | None, device) -> int | None:
    """The tile size a solve uses: ``tile`` itself, or for ``"auto"`` None (untiled: tiles
    evaluate their overlaps twice) when the solve's estimate (:func:`solve_memory_bytes`) fits
    :data:`AUTO_MEMORY_SHARE` of the memory available, else the largest of :data:`AUTO_TILES`
    that does; the smallest when none does (the solve's memory check then says what fits).
    ``network``: the size of the network's calls (:class:`~ncvsd_inverse.memory.NetworkSize`).
    Where the free memory cannot be read, images above 2048 pixels on a side are tiled."""
    if tile != "auto":
        check_tile(tile)
        return tile
    available = available_memory_bytes(device)
    if available is None:
        return None if max(clean_shape[-2:]) <= AUTO_TILES[0] else AUTO_TILES[1]
    for candidate in (None, *AUTO_TILES):
        needed = solve_memory_bytes(clean_shape, chains, network, images_per_call, candidate)
        if needed <= AUTO_MEMORY_SHARE * available:
            return candidate
    return AUTO_TILES[-1]


def check_prior(prior, model, teacher, tile) -> None:
    """Refuse a ``prior`` that is neither ``"ncvsd"``, ``"teacher"`` nor a callable prior step, and
    the arguments that a prior step carries itself."""
    if callable(prior):
        given = [name for name, value in (("model", model), ("teacher", teacher)) if value is not None]
        if tile not in ("auto", None):
            given.append("tile")
        if given:
            raise ValueError(f"a prior step carries its own model, precision and tiles; do not pass {given[0]}= "
                             "with it (build the step with them instead, e.g. GenerativePrior(model, tile=256))")
    elif prior not in ("ncvsd", "teacher"):
        raise ValueError(f"prior must be 'ncvsd', 'teacher' or a prior step step(u, sigma, rng), got {prior!r}")


def built_prior_step(prior: str, model, teacher, clean_shape: tuple[int, ...], chains: int, device: torch.device,
                     precision: str, tile) -> GenerativePrior:
    """The prior step of ``prior="ncvsd"`` (the generator's sample) or ``"teacher"`` (the denoiser's
    estimate), its model loaded, its tiles chosen (:func:`choose_tile`) and the solve's memory
    checked (:func:`~ncvsd_inverse.memory.check_memory`)."""
    if prior == "teacher" and (teacher is not None or not isinstance(model, torch.nn.Module)):
        model = load_prior(teacher if teacher is not None else model, device)
    elif model is None or isinstance(model, (str, Path)):
        model = load_model(model, "generator", device)
    images_per_call = 1 if device.type == "cpu" else None
    network = NetworkSize.of(model, resolve_precision(precision, device.type))
    tile = choose_tile(tile, clean_shape, chains, network, images_per_call, device)
    check_memory(clean_shape, chains, network, images_per_call, device, tile)
    return (GenerativePrior if prior == "ncvsd" else DenoiserPrior)(model, model_channels(model), precision, tile=tile)


def solve_deepinv(measurement: torch.Tensor, physics, task: Task | str = "denoise", **kwargs) -> PosteriorResult:
    """:func:`solve` for a deepinv user: a ``LinearPhysics`` and its measurement in deepinv's
    conventions (images in [0, 1], noise ``physics.noise_model.sigma`` in [0, 1] units).

    The measurement is converted to ours (``y = 2 y_d - A 1``, ``sigma_y = 2 sigma_d``; see
    :mod:`ncvsd_inverse.operators.deepinv_bridge`). The physics becomes our operator: its native
    twin where it has one (``Inpainting``, ``BlurFFT``, circular ``Blur``, ``Denoising``: the same
    forward model with our exact likelihood step and classical start), else the physics itself
    (its closed-form ``prox_l2`` where deepinv has one). ``task`` supplies only the sampler
    settings; a task that starts from the classical estimate runs, for a physics without a twin,
    the from-noise chain :data:`FROM_NOISE` instead, with a warning (``result.settings`` holds
    what ran). The returned samples and mean are in [0, 1], the std in [0, 1] units. ``kwargs``:
    as for :func:`solve`.
    """
    runs, steps = kwargs.pop("runs", 1), kwargs.pop("steps", None)
    sampler = {k: kwargs.pop(k) for k in list(kwargs) if k in SAMPLER_FIELDS}
    operator = from_deepinv(physics)
    y = measurement_from_deepinv(physics, measurement)
    task = load_task(task)
    if isinstance(operator, DeepinvOperator) and sampler.get("init", task.sampler["init"]) == "classical":
        fallback = {k: v for k, v in FROM_NOISE.items() if sampler.get(k) is None and not (k == "steps" and steps)}
        warnings.warn(f"{type(physics).__name__} has no native twin and so no classical estimate to start from; "
                      f"running the task {task.name!r} from noise instead ({fallback})", stacklevel=3)
        sampler = {**sampler, **fallback}
    task = with_sampler_settings(task, steps, **sampler)
    task = task_from_dict({**task.to_dict(), "sigma_y": 2 * deepinv_noise_sigma(physics)}, task.source)
    result = solve(Problem(task, operator, y), runs=runs, **kwargs)
    return dataclasses.replace(result, samples=(result.samples + 1) / 2, mean=(result.mean + 1) / 2,
                               std=result.std / 2, measurement=measurement)

"""The methods a benchmark suite compares, all on the same teacher (and its NCVSD generator).

Each method turns a posed :class:`~ncvsd_inverse.problem.Problem` into ``runs`` estimates. Its
settings come from the suite file (validated by :meth:`Method.settings`); one *variant* per NFE
point (e.g. each entry of ``steps: [50, 20, 10]``). The network calls are counted by a forward
hook on the model (:class:`Models`), so the reported NFE is what ran, not what was asked for.

Peers run as their authors' defaults say, with these deliberate differences (also in
:data:`DEVIATIONS`, printed under the results table):

- DPS, DiffPIR and DDRM are deepinv 0.5's, on our teacher through :class:`DeepinvDenoiser`.
- DPS: the paper's step size mapped onto deepinv's per-step weight (:func:`dps_step_weights`).
- DDRM: the denoiser is told the noise level deepinv actually injects (:func:`ddrm_noise_scale`),
  and it runs on zero-mean data.
- DAPS is ours (:mod:`ncvsd_inverse.daps`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Callable

import torch

from ncvsd_inverse.operators import (
    Blur,
    Inpainting,
    PhaseRetrieval,
    SuperResolution,
    measurement_to_deepinv,
    to_deepinv,
    to_deepinv_svd,
)

from ..daps import DAPS_TAU
from ..edm import SIGMA_MIN
from ..models import weights_sha256
from ..problem import Problem, with_sampler_settings

Tensor = torch.Tensor


class MethodSettingsError(ValueError):
    """A method's settings in a suite file are wrong (the message names the entry)."""


# --- models and counting ------------------------------------------------------------------------


class Models:
    """The suite's generator and teacher, loaded on first use, each with a forward hook that
    counts the images it evaluates (``images_evaluated``)."""

    def __init__(self, generator: str | None = None, teacher: str | None = None, device: str = "cpu"):
        self.paths = {"generator": generator, "teacher": teacher}
        self.device = device
        self._loaded: dict[str, torch.nn.Module] = {}
        self.images_evaluated = 0

    def _count(self, module, inputs, output) -> None:
        first = output[0] if isinstance(output, tuple) else output
        self.images_evaluated += first.shape[0]

    def get(self, kind: str) -> torch.nn.Module:
        """The ``kind`` model: the generator (:func:`~ncvsd_inverse.api.load_model`) or the teacher,
        any prior :func:`~ncvsd_inverse.priors.load_prior` takes (``diffusers:``, ``deepinv:``, ...)."""
        if kind not in self._loaded:
            from ..api import load_model
            from ..priors import load_prior

            model = (load_model(self.paths[kind], kind, self.device) if kind == "generator"
                     else load_prior(self.paths[kind], self.device))
            model.register_forward_hook(self._count)
            self._loaded[kind] = model
        return self._loaded[kind]

    def digest(self, kind: str) -> str:
        """sha256 of the weights of the ``kind`` model (tells versions of a model apart)."""
        return weights_sha256(self.get(kind))


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


# --- the methods ----------------------------------------------------------------------------------


@dataclasses.dataclass
class Method:
    """A method: its name, its settings' defaults (validated by :meth:`settings`), whether it
    draws several runs, whether it reads the task preset's ``sampler:`` settings (only PnP-GD
    does: a peer's cells do not rerun when our sampler presets change), the value of each
    per-task setting for a task it does not name (``task_fallbacks``), and how it runs one
    variant."""

    name: str
    defaults: dict
    sampling: bool = True
    models: tuple[str, ...] = ("teacher",)
    uses_sampler_settings: bool = False
    task_fallbacks: dict = dataclasses.field(default_factory=dict)

    def settings(self, raw: dict | None, where: str) -> dict:
        """``raw`` checked against :attr:`defaults` (keys and types) and completed."""
        raw = {} if raw is None else raw
        if not isinstance(raw, dict):
            raise MethodSettingsError(f"{where}: must be a mapping of settings, got {raw!r}")
        unknown = sorted(set(raw) - set(self.defaults))
        if unknown:
            known = ", ".join(sorted(self.defaults)) or "none"
            raise MethodSettingsError(f"{where}: unknown key '{unknown[0]}' (known: {known})")
        out = dict(self.defaults)
        for key, value in raw.items():
            out[key] = _checked(value, self.defaults[key], f"{where}.{key}")
        return out

    def applies(self, problem: Problem) -> bool:
        return True

    def variants(self, settings: dict, problem: Problem) -> list[dict]:
        """One settings dict per NFE point, with the values for ``problem``'s task."""
        return [self.for_task(settings, problem.task.name)]

    def for_task(self, settings: dict, task: str) -> dict:
        """``settings`` with each per-task setting (a mapping of task names) replaced by its value
        for ``task``: a cell's key then holds only what its own task uses, so changing one task's
        value reruns only that task's cells."""
        return {key: value.get(task, self.task_fallbacks[key]) if isinstance(value, dict) else value
                for key, value in settings.items()}

    def label(self, variant: dict) -> str:
        return self.name

    def run(self, problem: Problem, variant: dict, models: Models, seed: int, runs: int,
            precision: str) -> Tensor:
        """``(runs, N, C, H, W)`` estimates in [-1, 1] units."""
        raise NotImplementedError


def _checked(value, default, where: str):
    """``value`` if it has the type of ``default`` (a list of positive ints where the default is
    one; None allowed where the default is None), else a :class:`MethodSettingsError`."""
    if isinstance(default, list):
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
            raise MethodSettingsError(f"{where}: must be a positive integer or a list of them, got {value!r}")
        return values
    if default is None:
        if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            raise MethodSettingsError(f"{where}: must be a positive integer, got {value!r}")
        return value
    if isinstance(default, bool) or isinstance(value, bool):
        if not isinstance(value, bool) or not isinstance(default, bool):
            raise MethodSettingsError(f"{where}: must be {type(default).__name__}, got {value!r}")
        return value
    if isinstance(default, int):
        if not isinstance(value, int) or value < 1:
            raise MethodSettingsError(f"{where}: must be a positive integer, got {value!r}")
        return value
    if isinstance(default, float):
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise MethodSettingsError(f"{where}: must be a positive number, got {value!r}")
        return float(value)
    if isinstance(default, dict):
        if not isinstance(value, dict) or not all(isinstance(v, (int, float)) and v > 0 for v in value.values()):
            raise MethodSettingsError(f"{where}: must map task names to positive numbers, got {value!r}")
        return {**default, **{k: float(v) for k, v in value.items()}}
    return value


class PnP(Method):
    """PnP-GD (DESIGN 3.6) with the task preset, at each of ``steps`` (None: the preset's);
    ``prior``: the NCVSD generator or (``pnp_teacher``) the teacher's deterministic estimate."""

    def __init__(self, name: str, prior: str):
        super().__init__(name, {"steps": [], "runs": None}, models=("generator",) if prior == "ncvsd" else ("teacher",),
                         uses_sampler_settings=True)
        self.prior = prior

    def settings(self, raw, where):
        out = super().settings(raw, where)
        out["steps"] = out["steps"] or None
        return out

    def variants(self, settings, problem):
        steps = settings["steps"] or [problem.settings["steps"]]
        return [{**settings, "steps": s} for s in steps]

    def label(self, variant):
        return f"{self.name} {variant['steps']}"

    def run(self, problem, variant, models, seed, runs, precision):
        from ..api import solve

        posed = dataclasses.replace(problem, task=with_sampler_settings(problem.task, variant["steps"]))
        result = solve(posed, model=models.get(self.models[0]), prior=self.prior, runs=runs, seed=seed,
                       precision=precision, device=models.device)
        return result.samples


def tv_deconvolution(problem: Problem, weight: float = 0.02) -> Tensor:
    """TV-regularised deconvolution with deepinv (PGD, TV prox, 100 iterations), on [0, 1] data."""
    import deepinv

    physics = to_deepinv(problem.operator, problem.task.sigma_y)
    y_d = measurement_to_deepinv(problem.operator, problem.measurement, problem.clean_shape)
    model = deepinv.optim.optim_builder(iteration="PGD", prior=deepinv.optim.TVPrior(n_it_max=50),
                                        data_fidelity=deepinv.optim.data_fidelity.L2(), max_iter=100,
                                        params_algo={"stepsize": 1.0, "lambda": weight})
    with torch.no_grad():
        return model(y_d, physics) * 2 - 1


class Classical(Method):
    """The task's classical baselines, one variant each: the operator's own (bicubic, biharmonic,
    Wiener, Fienup's HIO for phase retrieval) and, for blur, TV deconvolution (deepinv)."""

    def __init__(self):
        super().__init__("classical", {}, sampling=False, models=())

    def applies(self, problem):
        return isinstance(problem.operator, (SuperResolution, Inpainting, Blur, PhaseRetrieval))

    def variants(self, settings, problem):
        names = [problem.operator.classical_name] + (["tv"] if isinstance(problem.operator, Blur) else [])
        return [{"baseline": name} for name in names]

    def label(self, variant):
        return variant["baseline"]

    def run(self, problem, variant, models, seed, runs, precision):
        if variant["baseline"] == "tv":
            estimate = tv_deconvolution(problem)
        else:
            estimate = problem.operator.classical_estimate(problem.measurement, problem.task.sigma_y)
        return estimate[None]


def seeded_runs(runs: int, seed: int, draw: Callable[[int], Tensor]) -> Tensor:
    """``(runs, ...)``: ``draw(run)`` for each run, after seeding the global RNG with
    ``seed * 1000 + run`` (deepinv's samplers draw from it)."""
    out = []
    for run in range(runs):
        torch.manual_seed(seed * 1000 + run)
        out.append(draw(run))
    return torch.stack(out)


class DiffPIR(Method):
    """deepinv's ``DiffPIR`` (Zhu et al. 2023): ``steps`` iterations; ``zeta`` per task (the
    official configurations: 0.1-0.25 for SR and deblurring, 1.0 for inpainting); ``lambda_`` per
    task, chosen on the validation split.

    deepinv's data step solves ``(A^T A + 2 rho_t) x = A^T y + 2 rho_t x0`` with ``rho_t = lambda
    sigma_n^2 / sigma_t^2``, where the official code solves ``(A^T A + rho_t) x = ...``: deepinv's
    lambda ``L`` is the official ``2 L`` (the official configurations use 1, i.e. 0.5 here). Both
    measure ``sigma_n`` in [0, 1] units and ``sigma_t`` in [-1, 1] units; the mix is the official
    one and lambda absorbs it. On 2 validation crops (128x128, 2 runs) lambda 0.5 amplified the
    noise on deblurring (12.9 / 14.5 dB against 20.3 / 19.6 at 7) and was level or better
    elsewhere (random inpainting LPIPS 0.10 against 0.19): 0.5 for inpainting, 7 (deepinv's
    default) for SR and Gaussian deblurring, 25 for motion deblurring: with the 4-level teacher, on
    8 validation crops, 25 against 7 gained 0.91 dB and 0.084 LPIPS on motion blur but traded
    +0.26 dB for +0.019 LPIPS on Gaussian blur, and lost on SR (2 crops). A larger zeta (0.3)
    gains PSNR for LPIPS; the official 0.1 is kept. ``lab/results/diffpir_lambda/`` in the
    repository.
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

        physics, y_d = _physics_and_measurement(problem)
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

        physics, y_d = _physics_and_measurement(problem)

        def draw(run: int) -> Tensor:
            rng = torch.Generator(device=device).manual_seed(seed * 1000 + run)
            sampler = PosteriorDiffusion(
                data_fidelity=PaperStepFidelity(denoiser, clip=[-1.0, 1.0], guidance="norm"), denoiser=denoiser,
                sde=sde, solver=DDPMSolver(timesteps=timesteps, rng=rng), dtype=torch.float64, device=device)
            return sampler(y_d, physics, x_init=tuple(problem.clean_shape)).float() * 2 - 1

        return seeded_runs(runs, seed, draw)


class DAPS(Method):
    """DAPS (:mod:`ncvsd_inverse.daps`): ``annealing_steps`` levels x ``ode_steps`` ODE steps,
    100 Langevin steps, tau 0.01, lr per task (paper: 1e-4 for SR, Gaussian deblur and random
    inpainting; 5e-5 for motion deblur, box inpainting and phase retrieval). ``langevin`` names the
    Langevin convention (the authors' code's, see the module), so that cells made before it was
    adopted are not reused."""

    def __init__(self):
        super().__init__("daps", {"annealing_steps": 200, "ode_steps": 5, "langevin_steps": 100, "tau": DAPS_TAU,
                                  "langevin": "authors-code", "runs": None,
                                  "lr": {"sr4x": 1e-4, "gaussian_deblur": 1e-4, "random_inpainting": 1e-4,
                                         "motion_deblur": 5e-5, "box_inpainting": 5e-5, "phase_retrieval": 5e-5}},
                         task_fallbacks={"lr": 1e-4})

    def label(self, variant):
        return f"daps {variant['annealing_steps']}x{variant['ode_steps']}"

    def run(self, problem, variant, models, seed, runs, precision):
        from ..daps import daps_sample

        teacher = models.get("teacher")
        rng = torch.Generator(device=problem.measurement.device).manual_seed(seed)
        y = problem.measurement.repeat(runs, *([1] * (problem.measurement.ndim - 1)))
        x = daps_sample(teacher, problem.operator, y, variant["annealing_steps"], variant["ode_steps"],
                        lr=variant["lr"], tau=variant["tau"],
                        langevin_steps=variant["langevin_steps"], rng=rng)
        return x.reshape(runs, *problem.clean_shape)


def _physics_for(problem: Problem):
    """The deepinv physics of a linear problem: the SVD form where there is one (exact
    ``prox_l2``), else the generic ``LinearPhysics``."""
    try:
        physics = to_deepinv_svd(problem.operator, problem.clean_shape, problem.task.sigma_y)
    except TypeError:
        physics = to_deepinv(problem.operator, problem.task.sigma_y)
    return physics.to(problem.measurement.device)


def _physics_and_measurement(problem: Problem):
    """``(physics, y_d)`` in deepinv's [0, 1] units. A nonlinear operator (phase retrieval) already
    reads its input through ``(x + 1) / 2``: its deepinv form is ``A_d(x_d) = A(2 x_d - 1)``, with
    our measurement and noise unchanged."""
    import deepinv

    if problem.operator.is_linear:
        y_d = measurement_to_deepinv(problem.operator, problem.measurement, problem.clean_shape)
        return _physics_for(problem), y_d
    operator = problem.operator
    physics = deepinv.physics.Physics(A=lambda x: operator.forward(2 * x - 1),
                                      noise_model=deepinv.physics.GaussianNoise(sigma=problem.task.sigma_y))
    return physics, problem.measurement


METHODS: dict[str, Method] = {m.name: m for m in (PnP("ncvsd", "ncvsd"), PnP("pnp_teacher", "teacher"), DPS(),
                                                   DiffPIR(), DDRM(), DAPS(), Classical())}

#: Where a method deviates from its authors' defaults (printed under the results table).
DEVIATIONS = {
    "dps": "DPS: deepinv's posterior diffusion (VP, DDPM solver, residual-norm guidance) with the paper's step size "
           "zeta mapped onto deepinv's per-step weight; one network call and one backward pass per step, no call "
           "at the last of the `steps` time points.",
    "ddrm": "DDRM: deepinv's, run on zero-mean data (images halved from [-1, 1]) as the official code does, "
            "with the denoiser told the noise level actually injected (deepinv passes sigma and injects "
            "sigma/sqrt(2) on a real SVD); SR runs on our separable SVD of the bicubic resampling matrices.",
    "diffpir": "DiffPIR: deepinv's implementation; its lambda L weighs the data step as the official code's 2L "
               "(deepinv issue 1030); lambda 0.5 (official 1) for inpainting, 7 (official 14) for SR and Gaussian "
               "deblurring, 25 (official 50) for motion deblurring, chosen on the validation split.",
    "daps": "DAPS: this project's implementation on the EDM teacher with the authors' settings, following their "
            "code where it differs from the paper (Langevin on ||A x0 - y||^2 / tau^2, i.e. a likelihood std of "
            "tau/sqrt(2); truncated poly-7 grids).",
}


def timed_run(method: Method, problem: Problem, variant: dict, models: Models, seed: int, runs: int,
              precision: str) -> tuple[Tensor, float, float]:
    """``(estimates, NFE per image and run counted by the hooks, seconds per image)``."""
    before = models.images_evaluated
    started = time.perf_counter()
    estimates = method.run(problem, variant, models, seed, runs, precision)
    seconds = time.perf_counter() - started
    images = problem.measurement.shape[0]
    nfe = (models.images_evaluated - before) / (images * estimates.shape[0])
    return estimates, nfe, seconds / images

"""What every benchmark method shares: its settings (validated), the suite's models with the
network-call counter, seeded runs and the timed run."""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Callable

import torch

from ...models import weights_sha256
from ...problem import Problem

Tensor = torch.Tensor


class MethodSettingsError(ValueError):
    """A method's settings in a suite file are wrong (the message names the entry)."""


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
            from ...api import load_model
            from ...priors import load_prior

            model = (load_model(self.paths[kind], kind, self.device) if kind == "generator"
                     else load_prior(self.paths[kind], self.device))
            model.register_forward_hook(self._count)
            self._loaded[kind] = model
        return self._loaded[kind]

    def digest(self, kind: str) -> str:
        """sha256 of the weights of the ``kind`` model (tells versions of a model apart)."""
        return weights_sha256(self.get(kind))


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
            out[key] = checked_setting(value, self.defaults[key], f"{where}.{key}")
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


def checked_setting(value, default, where: str):
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


def seeded_runs(runs: int, seed: int, draw: Callable[[int], Tensor]) -> Tensor:
    """``(runs, ...)``: ``draw(run)`` for each run, after seeding the global RNG with
    ``seed * 1000 + run`` (deepinv's samplers draw from it)."""
    out = []
    for run in range(runs):
        torch.manual_seed(seed * 1000 + run)
        out.append(draw(run))
    return torch.stack(out)


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

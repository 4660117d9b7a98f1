"""Posing an inverse problem: task preset -> operator -> checks -> starting image, in one place.

The CLI, :func:`ncvsd_inverse.solve` and the benchmarks all go through :func:`pose_problem`
(a given measurement) or :func:`simulate_problem` (a clean image degraded with the task), so the
sampler settings, size limits and operators are built and checked once, the same way everywhere.
"""

from __future__ import annotations

import dataclasses

import torch

from ncvsd_inverse.operators import ImageTooSmallError, Operator
from ncvsd_inverse.tasks import SAMPLER_FIELDS, Task, load_task, task_from_dict

from .memory import check_memory

Tensor = torch.Tensor

#: Smallest clean image the solver accepts (height and width, pixels).
MIN_CLEAN_SIZE = 8


@dataclasses.dataclass
class Problem:
    """One posed inverse problem: the task with its final sampler settings, the operator and the
    measurement ``(N, ...)`` (float32)."""

    task: Task
    operator: Operator
    measurement: Tensor

    @property
    def settings(self) -> dict:
        """The sampler settings (DESIGN 3.6): steps, rho, sigma_max, sigma_min, likelihood_scale, ..."""
        return self.task.sampler

    @property
    def clean_shape(self) -> tuple[int, ...]:
        return self.operator.clean_shape(tuple(self.measurement.shape))

    def initial_image(self) -> Tensor | None:
        """The chain's start ``x_init`` (DESIGN 3.6: ``u_0 = x_init + sigma_max z``): None for
        ``init: zero``, ``A^+ y`` for ``pseudo_inverse``, the operator's classical estimate
        (bicubic, biharmonic, Wiener) for ``classical``."""
        init = self.settings["init"]
        if init == "pseudo_inverse":
            return self.operator.pseudo_inverse(self.measurement)
        if init == "classical":
            return self.operator.classical_estimate(self.measurement, self.task.sigma_y)
        return None

    def to(self, device) -> Problem:
        """The same problem with its measurement on ``device``."""
        return dataclasses.replace(self, measurement=self.measurement.to(device=device, dtype=torch.float32))


def with_sampler_settings(task: Task | str, steps: int | None = None, **overrides) -> Task:
    """``task`` with sampler settings replaced (None values ignored), validated like a preset.

    ``steps`` takes the preset's schedule for that count where it has one
    (:meth:`~ncvsd_inverse.tasks.Task.sampler_for`), then ``overrides`` apply. A task whose
    settings changed keeps no schedules: they were the preset's, not these settings'.
    """
    task = load_task(task)
    unknown = sorted(set(overrides) - set(SAMPLER_FIELDS))
    if unknown:
        raise ValueError(f"unknown sampler setting {unknown[0]!r}; known: {', '.join(sorted(SAMPLER_FIELDS))}")
    given = {k: v for k, v in overrides.items() if v is not None}
    if not given and steps in (None, task.sampler["steps"]):
        return task_from_dict(task.to_dict(), task.source)
    settings = {**(task.sampler if steps is None else task.sampler_for(steps)), **given}
    return task_from_dict({**task.to_dict(), "sampler": settings, "schedules": {}}, task.source)


def check_size(clean_shape: tuple[int, ...], chains: int = 1) -> None:
    """Refuse clean images smaller than :data:`MIN_CLEAN_SIZE`, and problems whose sampler state
    for ``chains`` chains alone would not fit in the memory available
    (:func:`~ncvsd_inverse.memory.check_memory`; the solve checks again with the network), each
    with a one-line message."""
    height, width = clean_shape[-2:]
    if min(height, width) < MIN_CLEAN_SIZE:
        raise ImageTooSmallError(f"image too small: the restored image would be {height}x{width}; "
                                 f"the solver needs at least {MIN_CLEAN_SIZE}x{MIN_CLEAN_SIZE}")
    check_memory(clean_shape, chains)


def pose_problem(measurement: Tensor, task: Task | str = "sr4x", mask: Tensor | None = None,
                 kernel: Tensor | None = None, runs: int = 1, steps: int | None = None, **overrides) -> Problem:
    """The problem of recovering clean images from ``measurement`` ``(N, C, h, w)`` with ``task``.

    ``mask`` ((H, W), 1 = known) or ``kernel`` (2-D, sum 1) replace the preset's own;
    ``steps`` and ``overrides`` replace sampler settings. Checks the size (at least
    :data:`MIN_CLEAN_SIZE`, and the memory for ``runs`` x restarts chains, see :func:`check_size`).
    """
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    task = with_sampler_settings(task, steps, **overrides)
    clean_shape = task.clean_shape(tuple(measurement.shape))
    check_size(clean_shape, runs * task.sampler["restarts"])
    operator = task.build_operator(clean_shape, mask=mask, kernel=kernel)
    return Problem(task, operator, measurement.to(torch.float32))


def simulate_problem(clean: Tensor, task: Task | str = "sr4x", seed: int = 0, mask: Tensor | None = None,
                     kernel: Tensor | None = None, runs: int = 1, steps: int | None = None,
                     **overrides) -> tuple[Problem, Tensor]:
    """Degrade ``clean`` ``(N, C, H, W)`` with the task's operator and noise (seed ``seed``) and
    pose the problem of recovering it. Returns ``(problem, clean)`` with ``clean`` cropped to the
    size the measurement determines (e.g. a multiple of the SR factor)."""
    task = with_sampler_settings(task, steps, **overrides)
    probe = torch.zeros(1, 1, *clean.shape[-2:])
    height, width = task.clean_shape(tuple(task.build_operator(probe.shape).forward(probe).shape))[-2:]
    clean = clean[..., :height, :width]
    check_size(tuple(clean.shape), runs * task.sampler["restarts"])
    operator = task.build_operator(tuple(clean.shape), mask=mask, kernel=kernel)
    measurement = operator.measure(clean, task.sigma_y, torch.Generator(device=clean.device).manual_seed(seed))
    return Problem(task, operator, measurement), clean


__all__ = ["MIN_CLEAN_SIZE", "Problem", "check_size", "pose_problem", "simulate_problem",
           "with_sampler_settings"]

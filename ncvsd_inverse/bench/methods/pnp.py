"""PnP-GD with the task preset (DESIGN 3.6): NCVSD on its generator, and the teacher's chain."""

from __future__ import annotations

import dataclasses

from ...problem import with_sampler_settings
from .base import Method


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
        """One per step count; a count with its own schedule in the preset names it, so that the
        cell's key changes with that schedule (the key holds the preset without its schedules)."""
        steps = settings["steps"] or [problem.settings["steps"]]
        schedules = problem.task.schedules
        return [{**settings, "steps": s, **({"schedule": schedules[s]} if s in schedules else {})} for s in steps]

    def label(self, variant):
        return f"{self.name} {variant['steps']}"

    def run(self, problem, variant, models, seed, runs, precision):
        from ...api import solve

        posed = dataclasses.replace(problem, task=with_sampler_settings(problem.task, variant["steps"]))
        result = solve(posed, model=models.get(self.models[0]), prior=self.prior, runs=runs, seed=seed,
                       precision=precision, device=models.device)
        return result.samples

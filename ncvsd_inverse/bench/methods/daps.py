"""DAPS (Zhang et al. 2025), this project's implementation (:mod:`ncvsd_inverse.daps`), as a
benchmark method."""

from __future__ import annotations

import torch

from ...daps import DAPS_TAU
from .base import Method


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
        from ...daps import daps_sample

        teacher = models.get("teacher")
        rng = torch.Generator(device=problem.measurement.device).manual_seed(seed)
        y = problem.measurement.repeat(runs, *([1] * (problem.measurement.ndim - 1)))
        x = daps_sample(teacher, problem.operator, y, variant["annealing_steps"], variant["ode_steps"],
                        lr=variant["lr"], tau=variant["tau"],
                        langevin_steps=variant["langevin_steps"], rng=rng)
        return x.reshape(runs, *problem.clean_shape)

"""The classical baselines: the operator's own and TV deconvolution (deepinv)."""

from __future__ import annotations

import torch

from ncvsd_inverse.operators import (
    Blur,
    Inpainting,
    PhaseRetrieval,
    SuperResolution,
    measurement_to_deepinv,
    to_deepinv,
)

from ...problem import Problem
from .base import Method

Tensor = torch.Tensor


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

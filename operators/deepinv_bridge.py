"""Interoperability with deepinv's ``Physics`` (deepinv images live in [0, 1]).

A linear operator acts the same on any range, up to the offset ``A 1``: for ``x`` in [-1, 1]
and ``x_d = (x + 1) / 2`` in [0, 1], ``A x_d = (A x + A 1) / 2``. So one of our measurements
``y = A x + sigma_y n`` is, for deepinv, ``y_d = (y + A 1) / 2`` with noise ``sigma_y / 2``.
"""

from __future__ import annotations

import deepinv
import torch

from .base import Operator, Tensor


class DeepinvOperator(Operator):
    """Any deepinv ``LinearPhysics`` as our operator, applied to [-1, 1] images.

    ``forward`` is ``physics.A`` and ``adjoint`` is ``physics.A_adjoint``; the likelihood step is
    the generic CG perturbation-optimisation (exact up to the CG tolerance).
    """

    def __init__(self, physics: "deepinv.physics.LinearPhysics"):
        if not isinstance(physics, deepinv.physics.LinearPhysics):
            raise TypeError(f"from_deepinv needs a deepinv LinearPhysics, got {type(physics).__name__}")
        self.physics = physics

    def forward(self, x: Tensor) -> Tensor:
        return self.physics.A(x)

    def adjoint(self, y: Tensor) -> Tensor:
        return self.physics.A_adjoint(y)


def from_deepinv(physics: "deepinv.physics.LinearPhysics") -> DeepinvOperator:
    """Wrap a deepinv ``LinearPhysics`` as an operator with a CG likelihood step."""
    return DeepinvOperator(physics)


def to_deepinv(operator: Operator, sigma_y: float = 0.0) -> "deepinv.physics.LinearPhysics":
    """Our linear operator as a deepinv ``LinearPhysics`` on [0, 1] images.

    The noise model is Gaussian with deepinv's ``sigma = sigma_y / 2``. Convert our measurements
    with :func:`measurement_to_deepinv` so deepinv solvers see exactly the same data.
    """
    if not operator.is_linear:
        raise TypeError(f"{type(operator).__name__} is not linear: deepinv LinearPhysics needs A^T")
    return deepinv.physics.LinearPhysics(
        A=operator.forward, A_adjoint=operator.adjoint,
        noise_model=deepinv.physics.GaussianNoise(sigma=sigma_y / 2))


def measurement_to_deepinv(operator: Operator, y: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Our measurement ``y`` of a [-1, 1] image of ``shape`` as deepinv's ``(y + A 1) / 2``."""
    ones = torch.ones(shape, device=y.device, dtype=y.dtype)
    return (y + operator.forward(ones)) / 2

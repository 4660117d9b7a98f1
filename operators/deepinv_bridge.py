"""Interoperability with deepinv's ``Physics`` (deepinv images live in [0, 1]).

A linear operator acts the same on any range, up to the offset ``A 1``: for ``x`` in [-1, 1]
and ``x_d = (x + 1) / 2`` in [0, 1], ``A x_d = (A x + A 1) / 2``. So one of our measurements
``y = A x + sigma_y n`` is, for deepinv, ``y_d = (y + A 1) / 2`` with noise ``sigma_y / 2``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .base import Operator, Tensor, perturbed_inputs

if TYPE_CHECKING:  # deepinv is imported only when a bridge is used: importing operators stays light
    import deepinv


class DeepinvOperator(Operator):
    """Any deepinv ``LinearPhysics`` as our operator, applied to [-1, 1] images.

    ``forward`` is ``physics.A`` and ``adjoint`` is ``physics.A_adjoint`` (a linear map acts the
    same on any range). The likelihood step is perturbation-optimisation: the target Gaussian's
    sample is ``argmin ||A u - (y + s n1)||^2 / (2 s^2) + ||u - (x + r n2)||^2 / (2 r^2)``, which
    is ``physics.prox_l2(x + r n2, y + s n1, gamma = r^2 / s^2)``. Where deepinv has that prox in
    closed form (a ``DecomposablePhysics``: inpainting, FFT blur, ...) it is used; otherwise
    our conjugate gradients solve the same system.
    """

    def __init__(self, physics: "deepinv.physics.LinearPhysics"):
        import deepinv

        if not isinstance(physics, deepinv.physics.LinearPhysics):
            raise TypeError(f"from_deepinv needs a deepinv LinearPhysics, got {type(physics).__name__}")
        self.physics = physics
        self.closed_form_prox = isinstance(physics, deepinv.physics.DecomposablePhysics)

    def forward(self, x: Tensor) -> Tensor:
        return self.physics.A(x)

    def clean_shape(self, measurement_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape ``A^T`` maps a measurement of ``measurement_shape`` to."""
        return tuple(self.physics.A_adjoint(torch.zeros(measurement_shape)).shape)

    def adjoint(self, y: Tensor) -> Tensor:
        return self.physics.A_adjoint(y)

    def likelihood_step(self, x: Tensor, y: Tensor, s: float | Tensor, r: float | Tensor,
                        rng: torch.Generator | None = None) -> Tensor:
        if not self.closed_form_prox:
            return self.cg_likelihood_step(x, y, s, r, rng)
        x_p, y_p, s, r = perturbed_inputs(x, y, s, r, rng)
        return self.physics.prox_l2(x_p, y_p, gamma=r**2 / s**2)


def from_deepinv(physics: "deepinv.physics.LinearPhysics") -> DeepinvOperator:
    """Wrap a deepinv ``LinearPhysics`` as an operator (likelihood step: deepinv's closed-form
    ``prox_l2`` where it has one, CG otherwise)."""
    return DeepinvOperator(physics)


def to_deepinv(operator: Operator, sigma_y: float = 0.0) -> "deepinv.physics.LinearPhysics":
    """Our linear operator as a deepinv ``LinearPhysics`` on [0, 1] images.

    The noise model is Gaussian with deepinv's ``sigma = sigma_y / 2``. Convert our measurements
    with :func:`measurement_to_deepinv` so deepinv solvers see exactly the same data.
    """
    import deepinv

    if not operator.is_linear:
        raise TypeError(f"{type(operator).__name__} is not linear: deepinv LinearPhysics needs A^T")
    return deepinv.physics.LinearPhysics(
        A=operator.forward, A_adjoint=operator.adjoint,
        noise_model=deepinv.physics.GaussianNoise(sigma=sigma_y / 2))


def measurement_from_deepinv(physics: "deepinv.physics.LinearPhysics", y_d: Tensor) -> Tensor:
    """deepinv's measurement ``y_d = A x_d + n_d`` of a [0, 1] image as ours of the [-1, 1]
    image: ``y = 2 y_d - A 1`` (the inverse of :func:`measurement_to_deepinv`)."""
    ones = torch.ones_like(physics.A_adjoint(y_d))
    return 2 * y_d - physics.A(ones)


def deepinv_noise_sigma(physics: "deepinv.physics.LinearPhysics") -> float:
    """The Gaussian noise std of a deepinv physics in its [0, 1] units (0 without noise);
    ours is twice that."""
    sigma = getattr(getattr(physics, "noise_model", None), "sigma", 0.0)
    sigma = torch.as_tensor(sigma).flatten()
    if sigma.numel() > 1 and not torch.all(sigma == sigma[0]):
        raise ValueError("the physics has a different noise level per image; solve them one at a time")
    return float(sigma[0]) if sigma.numel() else 0.0


def measurement_to_deepinv(operator: Operator, y: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Our measurement ``y`` of a [-1, 1] image of ``shape`` as deepinv's ``(y + A 1) / 2``."""
    ones = torch.ones(shape, device=y.device, dtype=y.dtype)
    return (y + operator.forward(ones)) / 2

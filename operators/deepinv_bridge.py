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
    closed form (a ``DecomposablePhysics``: inpainting, FFT blur, ...; ``Downsampling`` with
    circular padding, by FFT) it is used; otherwise our conjugate gradients solve the same
    system. Its classical estimate is only the generic pseudo-inverse: prefer
    :func:`from_deepinv`, which gives the native operator where one exists.
    """

    def __init__(self, physics: "deepinv.physics.LinearPhysics"):
        import deepinv

        if not isinstance(physics, deepinv.physics.LinearPhysics):
            raise TypeError(f"from_deepinv needs a deepinv LinearPhysics, got {type(physics).__name__}")
        self.physics = physics
        self.closed_form_prox = isinstance(physics, deepinv.physics.DecomposablePhysics) or (
            isinstance(physics, deepinv.physics.Downsampling) and physics.padding == "circular")

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


def _single(tensor: Tensor) -> Tensor | None:
    """``tensor`` ``(B, ...)`` as one ``(1, ...)`` when every batch entry is the same, else None."""
    tensor = torch.as_tensor(tensor).detach().cpu().float()
    return tensor[:1] if bool((tensor == tensor[:1]).all()) else None


def native_twin(physics: "deepinv.physics.LinearPhysics") -> Operator | None:
    """Our operator with exactly the forward model of ``physics``, or None where there is none.

    - ``Inpainting`` (a 0/1 mask, the same for every image) -> :class:`Inpainting`;
    - ``BlurFFT``, and ``Blur`` with ``padding="circular"`` (one kernel for all channels and
      images, summing to 1) -> :class:`Blur` (the same circular convolution, tested bit for bit
      for asymmetric kernels);
    - ``Denoising`` -> :class:`Denoising`.

    ``Downsampling`` has no twin: deepinv's bicubic filter is sampled at another phase (it
    equals our :class:`SuperResolution` of the image shifted by one pixel, away from the borders)
    and wraps around at the borders.
    """
    import deepinv

    from .blur import Blur
    from .inpainting import Denoising, Inpainting

    if type(physics) is deepinv.physics.Denoising:
        return Denoising()
    if type(physics) is deepinv.physics.Inpainting:
        mask = _single(physics.mask.reshape(-1, *physics.mask.shape[-3:]))
        if mask is None or not bool(((mask == 0) | (mask == 1)).all()):
            return None
        return Inpainting(mask[:, :1] if bool((mask == mask[:, :1]).all()) else mask)
    circular_blur = type(physics) is deepinv.physics.BlurFFT or (
        type(physics) is deepinv.physics.Blur and physics.padding == "circular")
    if circular_blur:
        kernel = _single(physics.filter)
        if kernel is None or not bool((kernel == kernel[:, :1]).all()):
            return None
        kernel = kernel[0, 0]
        return Blur(kernel) if abs(float(kernel.sum()) - 1) <= 1e-3 else None
    return None


def from_deepinv(physics: "deepinv.physics.LinearPhysics") -> Operator:
    """Our operator for a deepinv ``LinearPhysics``: its :func:`native_twin` where it has one
    (the same forward model, with our exact likelihood step and classical estimate: biharmonic
    inpainting, Wiener), else the physics wrapped as a :class:`DeepinvOperator` (deepinv's
    closed-form ``prox_l2`` where it has one, CG otherwise)."""
    return native_twin(physics) or DeepinvOperator(physics)


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


def to_deepinv_svd(operator: Operator, shape: tuple[int, ...],
                   sigma_y: float = 0.0) -> "deepinv.physics.DecomposablePhysics":
    """Our operator for clean images of ``shape`` ``(N, C, H, W)`` as a deepinv
    ``DecomposablePhysics`` ``A = U diag(mask) V^T`` (what DDRM needs; deepinv's ``prox_l2`` is
    then exact), with Gaussian noise ``sigma_y / 2`` as in :func:`to_deepinv`.

    Inpainting and blur become deepinv's own ``Inpainting`` and ``BlurFFT``. Super-resolution,
    which deepinv has no SVD for, becomes the separable SVD of the two 1-D resampling matrices,
    ``R = U S V^T``: ``V^T x = V_h^T x V_w`` (an ``H x W`` spectrum), ``mask = s_h s_w`` padded
    with zeros to ``H x W``, ``U z = U_h z_{:h,:w} U_w^T``. Raises ``TypeError`` for operators
    without an SVD.
    """
    import deepinv

    from .blur import Blur
    from .inpainting import Inpainting
    from .superres import SuperResolution

    noise = deepinv.physics.GaussianNoise(sigma=sigma_y / 2)
    channels, height, width = shape[-3:]
    if isinstance(operator, Inpainting):
        mask = operator.mask.expand(1, channels, height, width)[0].clone()
        return deepinv.physics.Inpainting(img_size=(channels, height, width), mask=mask, noise_model=noise)
    if isinstance(operator, Blur):
        return deepinv.physics.BlurFFT(img_size=(channels, height, width), filter=operator.kernel[None, None],
                                       noise_model=noise)
    if not isinstance(operator, SuperResolution):
        raise TypeError(f"{type(operator).__name__} has no SVD that deepinv can use")
    (_, uh, sh, vh), (_, uw, sw, vw) = operator._matrices(height, width, torch.device("cpu"))
    singular = torch.zeros(1, channels, height, width)
    singular[..., : sh.numel(), : sw.numel()] = sh[:, None] * sw[None, :]

    def u_adjoint(y: Tensor) -> Tensor:
        spectrum = torch.zeros(*y.shape[:-2], height, width, device=y.device, dtype=y.dtype)
        spectrum[..., : sh.numel(), : sw.numel()] = uh.T.to(y) @ y @ uw.to(y)
        return spectrum

    return deepinv.physics.DecomposablePhysics(
        U=lambda z: uh.to(z) @ z[..., : sh.numel(), : sw.numel()] @ uw.T.to(z), U_adjoint=u_adjoint,
        V=lambda z: vh.to(z) @ z @ vw.T.to(z), V_adjoint=lambda x: vh.T.to(x) @ x @ vw.to(x),
        mask=singular, noise_model=noise)

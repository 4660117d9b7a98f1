"""The operator contract and the generic likelihood steps (DESIGN 3.7).

Every forward model is an :class:`Operator`. Images are ``(N, C, H, W)`` float tensors in
[-1, 1]; noise levels ``s`` (likelihood scale) and ``r`` (prior-step level) are standard
deviations in the same units, given as floats or per-sample tensors of shape ``(N,)``.

The likelihood step draws ``u ~ N(u; x, r^2 I) * N(y; A u, s^2 I)``. Subclasses with a
closed form override :meth:`Operator.likelihood_step`; the base class falls back to
conjugate-gradient perturbation-optimisation (linear operators) or unadjusted Langevin
(nonlinear ones).
"""

from __future__ import annotations

from typing import Callable

import torch

Tensor = torch.Tensor


class ImageTooSmallError(ValueError):
    """The image is smaller than the operator (or network) needs."""


def per_sample(value: float | Tensor, like: Tensor) -> Tensor:
    """A float or ``(N,)`` tensor as a ``(N, 1, 1, 1)`` tensor broadcastable against ``like``."""
    value = torch.as_tensor(value, dtype=like.dtype if like.is_floating_point() else torch.float32,
                            device=like.device)
    if value.ndim == 0:
        return value.reshape(1, *([1] * (like.ndim - 1)))
    return value.reshape(-1, *([1] * (like.ndim - 1)))


def noise_scales(s: float | Tensor, r: float | Tensor, like: Tensor) -> tuple[Tensor, Tensor]:
    """The likelihood scale ``s`` and prior-step level ``r`` as ``(N, 1, 1, 1)`` tensors, checked:
    both must be finite and > 0 (a zero would divide by zero in every sampler)."""
    checked = []
    for name, value in (("s", s), ("r", r)):
        tensor = per_sample(value, like)
        if not bool(torch.isfinite(tensor).all()) or bool((tensor <= 0).any()):
            raise ValueError(f"likelihood step: {name} must be finite and > 0, got {value!r}")
        checked.append(tensor)
    return checked[0], checked[1]


def perturbed_inputs(x: Tensor, y: Tensor, s: float | Tensor, r: float | Tensor,
                     rng: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Perturbation-optimisation's inputs ``(x + r n2, y + s n1, s, r)``, ``n1, n2 ~ N(0, I)``
    (DESIGN 3.7): the minimiser of ``||A u - (y + s n1)||^2 / s^2 + ||u - (x + r n2)||^2 / r^2`` is
    an exact sample of the likelihood step. ``s``, ``r`` come back as checked ``(N, 1, 1, 1)``."""
    s, r = noise_scales(s, r, x)
    n1 = torch.randn(y.shape, generator=rng, device=y.device, dtype=y.dtype)
    n2 = torch.randn(x.shape, generator=rng, device=x.device, dtype=x.dtype)
    return x + r * n2, y + s * n1, s, r


def batch_dot(a: Tensor, b: Tensor) -> Tensor:
    """Per-sample inner product ``<a_n, b_n>`` as an ``(N, 1, 1, 1)`` tensor."""
    return (a * b).flatten(1).sum(1).reshape(-1, *([1] * (a.ndim - 1)))


def diagonal_gaussian_sample(x_b: Tensor, aty_b: Tensor, ata_diag: Tensor, s: Tensor, r: Tensor,
                             noise_b: Tensor) -> Tensor:
    """DESIGN 3.7, in a basis where ``A^T A`` is diagonal.

    ``S = 1 / (ata_diag / s^2 + 1 / r^2)``, ``m = S (A^T y / s^2 + x / r^2)``, sample
    ``m + sqrt(S) * noise``. All arguments are expressed in the same (orthonormal) basis:
    pixels for inpainting, Fourier frequencies for circular blur, singular vectors for SR.
    """
    var = 1.0 / (ata_diag / s**2 + 1.0 / r**2)
    mean = var * (aty_b / s**2 + x_b / r**2)
    return mean + var.sqrt() * noise_b


def conjugate_gradient(apply: Callable[[Tensor], Tensor], b: Tensor, x0: Tensor | None = None,
                       tol: float = 1e-6, max_iter: int = 500) -> Tensor:
    """Solve ``apply(x) = b`` per sample for a symmetric positive definite ``apply``.

    ``b``: ``(N, ...)``; each sample is its own system (step lengths are per sample).
    Stops when every residual is below ``tol * ||b||``.
    """
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    res = b - apply(x)
    direction = res.clone()
    res_norm2 = batch_dot(res, res)
    stop = (tol**2) * batch_dot(b, b).clamp_min(1e-30)
    for _ in range(max_iter):
        if bool((res_norm2 <= stop).all()):
            break
        a_dir = apply(direction)
        alpha = res_norm2 / batch_dot(direction, a_dir).clamp_min(1e-30)
        x = x + alpha * direction
        res = res - alpha * a_dir
        new_norm2 = batch_dot(res, res)
        direction = res + (new_norm2 / res_norm2.clamp_min(1e-30)) * direction
        res_norm2 = new_norm2
    return x


def langevin_sample(forward: Callable[[Tensor], Tensor], x: Tensor, y: Tensor, s: float | Tensor,
                    r: float | Tensor, step: float | Tensor, steps: int,
                    rng: torch.Generator | None = None) -> Tensor:
    """Unadjusted Langevin for ``p(u) ~ exp(-||forward(u) - y||^2 / (2 s^2) - ||u - x||^2 / (2 r^2))``:
    ``u <- u - step grad U(u) + sqrt(2 step) eps`` for ``steps`` steps from ``u = x``, the
    gradient of the data term by autograd (also under ``torch.inference_mode``).

    x: ``(N, C, H, W)``; y: ``(N, ...)``; s, r, step: floats or per-image ``(N, 1, 1, 1)`` tensors.
    """
    s_per_image = torch.as_tensor(s, device=x.device, dtype=x.dtype).flatten()
    step = torch.as_tensor(step, device=x.device, dtype=x.dtype)
    with torch.inference_mode(False), torch.enable_grad():
        u = x.detach().clone()
        y = y.detach().clone()
        for _ in range(steps):
            u.requires_grad_(True)
            energy = ((forward(u) - y) ** 2).flatten(1).sum(1) / (2 * s_per_image**2)
            (grad,) = torch.autograd.grad(energy.sum(), u)
            noise = torch.randn(u.shape, generator=rng, device=u.device, dtype=u.dtype)
            u = u.detach() - step * (grad + (u.detach() - x) / r**2) + (2 * step).sqrt() * noise
    return u.detach()


class Operator:
    """A forward model ``y = A(x) + sigma_y * n``.

    Subclasses implement :meth:`forward` (and :meth:`adjoint` when linear) and may override
    :meth:`likelihood_step` with an exact sampler, :meth:`pseudo_inverse` and
    :meth:`classical_estimate`.
    """

    is_linear: bool = True
    #: Langevin settings for nonlinear operators (DESIGN 3.7): steps and step-size constants.
    langevin_steps: int = 100
    langevin_c1: float = 0.5
    lipschitz: float = 1.0
    #: Smallest clean-image height/width this operator accepts.
    min_size: int = 1

    def forward(self, x: Tensor) -> Tensor:
        """``A(x)``: ``x`` (N, C, H, W) in [-1, 1] -> noiseless measurement."""
        raise NotImplementedError

    def adjoint(self, y: Tensor) -> Tensor:
        """``A^T y`` for linear operators."""
        raise NotImplementedError(f"{type(self).__name__} is not linear: it has no adjoint")

    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x)

    def measure(self, x: Tensor, sigma_y: float, rng: torch.Generator | None = None) -> Tensor:
        """A noisy measurement ``A(x) + sigma_y * n`` (noise drawn with ``rng``)."""
        clean = self.forward(x)
        noise = torch.randn(clean.shape, generator=rng, device=clean.device, dtype=clean.dtype)
        return clean + sigma_y * noise

    def clean_shape(self, measurement_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of the clean image that gives a measurement of ``measurement_shape``."""
        return tuple(measurement_shape)

    def check_size(self, shape: tuple[int, ...]) -> None:
        """Raise :class:`ImageTooSmallError` if a clean image of ``shape`` is too small."""
        height, width = shape[-2:]
        if min(height, width) < self.min_size:
            raise ImageTooSmallError(
                f"image of {height}x{width} pixels is too small for {type(self).__name__}: "
                f"it needs at least {self.min_size}x{self.min_size}")

    def misfit(self, x: Tensor, y: Tensor) -> Tensor:
        """Per-image data misfit ``||A(x) - y||^2``, ``(N,)`` (chooses among restarts, DESIGN 3.6)."""
        return ((self.forward(x) - y) ** 2).flatten(1).sum(1)

    def align_runs(self, runs: Tensor) -> Tensor:
        """Runs ``(R, N, C, H, W)`` of a solver on one measurement, put in one form where the
        operator cannot tell several images apart (phase retrieval's twin); as they are here."""
        return runs

    def modulo_ambiguity(self, runs: Tensor, clean: Tensor) -> Tensor:
        """Runs ``(R, N, C, H, W)``, already aligned (:meth:`align_runs`), as they are scored
        against the truth ``clean`` ``(N, C, H, W)`` where the operator cannot tell several images
        apart (phase retrieval: modulo its twin); as they are here. For scores only, never to
        choose a reconstruction."""
        return runs

    def gram(self, x: Tensor) -> Tensor:
        """``A^T A x``."""
        return self.adjoint(self.forward(x))

    def likelihood_step(self, x: Tensor, y: Tensor, s: float | Tensor, r: float | Tensor,
                        rng: torch.Generator | None = None) -> Tensor:
        """Draw ``u ~ N(u; x, r^2 I) * N(y; A u, s^2 I)`` (DESIGN 3.7).

        x: (N, C, H, W) prior-step estimate; y: measurement; s, r: floats or (N,) tensors.
        Generic fallback: CG perturbation-optimisation for linear operators, unadjusted
        Langevin otherwise.
        """
        if self.is_linear:
            return self.cg_likelihood_step(x, y, s, r, rng)
        return self.langevin_likelihood_step(x, y, s, r, rng)

    def cg_likelihood_step(self, x: Tensor, y: Tensor, s: float | Tensor, r: float | Tensor,
                           rng: torch.Generator | None = None, tol: float = 1e-6,
                           max_iter: int = 500) -> Tensor:
        """Perturbation-optimisation: an exact sample as the solution of one linear system.

        Solve ``(A^T A / s^2 + I / r^2) u = A^T (y + s n1) / s^2 + (x + r n2) / r^2`` by CG;
        with ``n1, n2 ~ N(0, I)`` the solution is distributed as the target Gaussian.
        """
        x_p, y_p, s, r = perturbed_inputs(x, y, s, r, rng)
        rhs = self.adjoint(y_p) / s**2 + x_p / r**2
        return conjugate_gradient(lambda u: self.gram(u) / s**2 + u / r**2, rhs, x0=x,
                                  tol=tol, max_iter=max_iter)

    def langevin_likelihood_step(self, x: Tensor, y: Tensor, s: float | Tensor, r: float | Tensor,
                                 rng: torch.Generator | None = None) -> Tensor:
        """Unadjusted Langevin on ``||A(u) - y||^2 / (2 s^2) + ||u - x||^2 / (2 r^2)``.

        Step size ``c1 / (c2 / s^2 + 1 / r^2)`` with ``c1 = langevin_c1`` and
        ``c2 = lipschitz`` (squared Lipschitz constant of ``A``), ``langevin_steps`` steps,
        started at ``x``.
        """
        s, r = noise_scales(s, r, x)
        step = self.langevin_c1 / (self.lipschitz / s**2 + 1.0 / r**2)
        return langevin_sample(self.forward, x, y, s, r, step, self.langevin_steps, rng)

    def pseudo_inverse(self, y: Tensor) -> Tensor:
        """A least-squares image consistent with ``y`` (initialisation for the solver).

        Generic: CG on the slightly damped normal equations ``(A^T A + 1e-3 I) x = A^T y``.
        """
        if not self.is_linear:
            raise NotImplementedError(f"{type(self).__name__} has no pseudo-inverse")
        aty = self.adjoint(y)
        return conjugate_gradient(lambda u: self.gram(u) + 1e-3 * u, aty, max_iter=100, tol=1e-4)

    #: What :meth:`classical_estimate` computes, as a baseline is named in reports.
    classical_name: str = "pseudo-inverse"

    def classical_estimate(self, y: Tensor, sigma_y: float) -> Tensor:
        """The standard classical reconstruction for this operator (a baseline and a solver start).

        ``y``: measurement (N, ...); returns ``(N, C, H, W)`` in roughly [-1, 1]. Generic: the
        pseudo-inverse; subclasses give bicubic upsampling, biharmonic inpainting, Wiener.
        """
        return self.pseudo_inverse(y)

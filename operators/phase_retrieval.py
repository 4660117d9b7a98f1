"""Fourier phase retrieval: the nonlinear forward model of the task presets."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Operator, Tensor


class PhaseRetrieval(Operator):
    """``A(x) = |FFT(pad((x + 1) / 2))|``: Fourier magnitudes of the image zero-padded to
    ``oversampling`` times its size (orthonormal FFT).

    The image is mapped to [0, 1] before padding, so the zero padding is black, as in the
    DPS/DAPS benchmarks. Nonlinear: the likelihood step is unadjusted Langevin; the magnitude
    cannot tell an image from its shifts or its 180-degree rotation, so the solver draws several
    runs and keeps the one with the lowest data misfit. ``langevin_steps``: inner steps of each
    likelihood step (the preset's ``operator.langevin_steps``), most of a solve's time outside
    the network.
    """

    is_linear = False
    lipschitz = 0.25  # |d A / d x| <= 1/2 with the orthonormal FFT

    def __init__(self, oversampling: float = 2.0, langevin_steps: int = 50):
        if oversampling < 1.0:
            raise ValueError(f"phase-retrieval oversampling must be >= 1, got {oversampling}")
        if int(langevin_steps) != langevin_steps or langevin_steps < 1:
            raise ValueError(f"langevin_steps must be a positive integer, got {langevin_steps}")
        self.oversampling, self.langevin_steps = float(oversampling), int(langevin_steps)
        self.min_size = 2

    def padded_size(self, height: int, width: int) -> tuple[int, int]:
        return round(self.oversampling * height), round(self.oversampling * width)

    def clean_shape(self, measurement_shape: tuple[int, ...]) -> tuple[int, ...]:
        height, width = (round(n / self.oversampling) for n in measurement_shape[-2:])
        return (*measurement_shape[:-2], height, width)

    def forward(self, x: Tensor) -> Tensor:
        height, width = self.padded_size(x.shape[-2], x.shape[-1])
        padded = F.pad((x + 1) / 2, (0, width - x.shape[-1], 0, height - x.shape[-2]))
        spectrum = torch.fft.fft2(padded, norm="ortho")
        # sqrt(re^2 + im^2 + eps) instead of abs(): differentiable where the spectrum is 0
        return (spectrum.real**2 + spectrum.imag**2 + 1e-12).sqrt()

    def align_runs(self, runs: Tensor) -> Tensor:
        """Each run ``(R, N, C, H, W)`` in the first run's orientation (:func:`align_twins`), so
        that their mean and spread do not mix an image with its twin."""
        return align_twins(runs, runs[:1])

    def modulo_ambiguity(self, runs: Tensor, clean: Tensor) -> Tensor:
        """Aligned runs turned together where their orientation is the truth's twin (:func:`modulo_twin`)."""
        return modulo_twin(runs, clean)

    classical_name = "hio"

    def classical_estimate(self, y: Tensor, sigma_y: float, rng: torch.Generator | None = None) -> Tensor:
        """Fienup's hybrid input-output with error reduction (:func:`hybrid_input_output`),
        its colour channels in one orientation (:func:`align_channel_twins`), :data:`HIO_RESTARTS`
        random starts per image, the one with the lowest data misfit kept."""
        shape = self.clean_shape(tuple(y.shape))
        rng = rng if rng is not None else torch.Generator(device=y.device).manual_seed(0)
        best, best_misfit = None, None
        for _ in range(HIO_RESTARTS):
            estimate = align_channel_twins(hybrid_input_output(y, shape, self.padded_size(*shape[-2:]), rng=rng))
            misfit = self.misfit(estimate, y)
            if best is None:
                best, best_misfit = estimate, misfit
            else:
                better = misfit < best_misfit
                best = torch.where(better[:, None, None, None], estimate, best)
                best_misfit = torch.minimum(misfit, best_misfit)
        return best


#: random starts of the classical baseline (the same number the phase_retrieval preset's solver uses)
HIO_RESTARTS = 4


def hermitian_magnitude(y: Tensor) -> Tensor:
    """``(y(k) + y(-k)) / 2`` (indices mod the grid): the part of measured magnitudes ``y`` that a
    real image can explain. Noise breaks the symmetry ``|F g|(k) = |F g|(-k)`` of a real ``g``;
    for a phase ``phi`` of a real image, ``Re IFFT(y e^{i phi}) = IRFFT(y_h e^{i phi})``."""
    flipped = torch.roll(y.flip(-2, -1), shifts=(1, 1), dims=(-2, -1))
    return (y + flipped) / 2


def magnitude_projection(g: Tensor, magnitude_half: Tensor) -> Tensor:
    """``g' = IFFT(y * FFT(g) / |FFT(g)|)`` for a real ``g`` ``(..., H, W)``, with ``magnitude_half``
    the first ``W // 2 + 1`` columns of :func:`hermitian_magnitude` (real FFTs: the real part of the
    full-FFT projection, at about an eighth of its cost)."""
    spectrum = torch.fft.rfft2(g, norm="ortho")
    phase = spectrum / spectrum.abs().clamp_min(torch.finfo(g.dtype).tiny)
    return torch.fft.irfft2(magnitude_half * phase, s=g.shape[-2:], norm="ortho")


def hybrid_input_output(y: Tensor, shape: tuple[int, ...], padded: tuple[int, int], iterations: int = 1000,
                        error_reduction: int = 100, beta: float = 0.9, rng: torch.Generator | None = None) -> Tensor:
    """Fienup's hybrid input-output (Fienup 1982) for ``y = |FFT(pad(g))|``, ``g = (x + 1) / 2``.

    From a random ``g`` on the support (the image's ``H x W`` corner of the padded grid), each
    iteration imposes the measured magnitudes, ``g' = Re IFFT(y * FFT(g) / |FFT(g)|)``
    (:func:`magnitude_projection`), then the object constraints (support, ``0 <= g' <= 1``):
    where ``g'`` meets them ``g = g'``, elsewhere ``g = g - beta g'`` (HIO). The last
    ``error_reduction`` iterations set ``g = 0`` there instead (error reduction). Returns ``x = 2
    g - 1`` on the support, ``shape`` ``(N, C, H, W)``.
    """
    height, width = shape[-2:]
    magnitude_half = hermitian_magnitude(y.clamp_min(0))[..., : padded[1] // 2 + 1]
    support = torch.zeros(padded, dtype=torch.bool, device=y.device)
    support[:height, :width] = True
    g = torch.rand((*shape[:-2], *padded), generator=rng, device=y.device, dtype=y.dtype) * support
    for iteration in range(iterations + error_reduction):
        projected = magnitude_projection(g, magnitude_half)
        valid = support & (projected >= 0) & (projected <= 1)
        outside = g - beta * projected if iteration < iterations else torch.zeros_like(g)
        g = torch.where(valid, projected, outside)
    return 2 * g[..., :height, :width].clamp(0, 1) - 1


def twin(x: Tensor) -> Tensor:
    """The 180-degree rotation ``x(-r)`` of images ``(..., H, W)``: the trivial ambiguity of
    Fourier phase retrieval. Its padded FFT is ``conj(FFT(pad(x)))`` times a phase ramp, so it has
    exactly the same magnitudes and lies on the same support; no data misfit, and no prior
    trained with 180-degree turns, tells the two apart (docs/design.md, section 6)."""
    return x.flip(-2, -1)


def turned_where(x: Tensor, turn: Tensor) -> Tensor:
    """Images ``x`` ``(..., C, H, W)`` with those flagged in ``turn`` (boolean, broadcastable to
    ``x.shape[:-3]``) replaced by their :func:`twin`."""
    return torch.where(turn[..., None, None, None], twin(x), x)


def twin_is_closer(x: Tensor, reference: Tensor) -> Tensor:
    """Per image of ``x`` ``(..., C, H, W)``: whether its :func:`twin` is closer to ``reference``
    (broadcastable to ``x``) in mean squared error. Boolean, shape ``x.shape[:-3]``."""
    as_is = (x - reference).pow(2).flatten(-3).mean(-1)
    turned = (twin(x) - reference).pow(2).flatten(-3).mean(-1)
    return turned < as_is


def align_twins(x: Tensor, reference: Tensor) -> Tensor:
    """Each image of ``x`` ``(..., C, H, W)`` or its :func:`twin`, whichever is closer to
    ``reference`` (broadcastable to ``x``): the runs of a solver put in one orientation (reference:
    one of them) before their mean is taken, or an estimate scored modulo the twin (reference: the
    ground truth; for scores only, never to choose a reconstruction)."""
    return turned_where(x, twin_is_closer(x, reference))


def align_channel_twins(x: Tensor) -> Tensor:
    """Images ``(N, C, H, W)`` with each channel after the first turned to its :func:`twin` where
    that correlates better with the channels before it (centred inner product with their sum).

    Each channel's magnitudes are measured on their own, so a per-channel solver such as HIO lands
    each channel on the image or its twin independently: on 6 of 8 validation crops (128x128) the
    channels of HIO's estimate disagreed, which shows as false colour. The channels of a natural
    image correlate strongly, so this puts them back in one orientation without the truth (8 of 8
    there); which of the two orientations the whole image takes stays open."""
    def centred(channel: Tensor) -> Tensor:
        return channel - channel.mean((-2, -1), keepdim=True)

    channels = [x[:, :1]]
    reference = centred(x[:, :1])
    for c in range(1, x.shape[1]):
        channel = x[:, c : c + 1]
        keep = (centred(channel) * reference).flatten(1).sum(1)
        turn = (centred(twin(channel)) * reference).flatten(1).sum(1)
        channel = turned_where(channel, turn > keep)
        channels.append(channel)
        reference = reference + centred(channel)
    return torch.cat(channels, 1)


def modulo_twin(runs: Tensor, clean: Tensor) -> Tensor:
    """Runs ``(R, N, C, H, W)`` of a solver, already in one orientation
    (:meth:`PhaseRetrieval.align_runs`), turned together where that orientation is the truth's
    (``clean``, ``(N, C, H, W)``) twin: what is scored, modulo the trivial ambiguity
    (docs/design.md, section 6). For scores only, never to choose a reconstruction."""
    return turned_where(runs, twin_is_closer(runs[:1], clean))

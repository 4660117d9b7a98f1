"""The preconditioned denoisers: the teacher ``Denoiser`` (DESIGN 3.1), the generator's
``ConditionalDenoiser`` and ``GenerativeDenoiser`` (DESIGN 3.3), and the learned uncertainty.
"""

from __future__ import annotations

import torch
from torch import nn

from ..edm import NOISE_INFLATION, SIGMA_DATA, as_level, edm_precond
from .layers import MPConv, MPFourier
from .unet import CONDITION_BACKBONES, UNet, UNetConfig, pad_to_multiple

Tensor = torch.Tensor


class UncertaintyHead(nn.Module):
    """The learned log-variance ``u(c_noise)`` of the EDM2 loss."""

    def __init__(self, channels: int = 128):
        super().__init__()
        self.fourier = MPFourier(channels)
        self.linear = MPConv(channels, 1, ())

    def forward(self, c_noise: Tensor) -> Tensor:
        return self.linear(self.fourier(c_noise)).reshape(-1, 1, 1, 1)


class Denoiser(nn.Module):
    """The teacher: ``D(x_t, sigma) = c_skip x_t + c_out F(c_in x_t, c_noise)`` (DESIGN 3.1).

    x: (N, C, H, W) noisy image in [-1, 1] + noise; sigma: float or (N,). Any H, W.
    ``backbone``: any module ``F(x, c_noise)`` (a :class:`UNet` by default).
    """

    def __init__(self, backbone: nn.Module, sigma_data: float = SIGMA_DATA):
        super().__init__()
        self.backbone, self.sigma_data = backbone, sigma_data
        self.uncertainty = UncertaintyHead()

    def forward(self, x: Tensor, sigma: float | Tensor, return_logvar: bool = False):
        sigma = as_level(sigma, x)
        c_skip, c_out, c_in, c_noise = edm_precond(sigma, self.sigma_data)
        padded, (height, width) = pad_to_multiple(c_in * x, getattr(self.backbone, "size_multiple", 1))
        out = self.backbone(padded, c_noise.flatten())[..., :height, :width]
        denoised = c_skip * x + c_out * out
        return (denoised, self.uncertainty(c_noise.flatten())) if return_logvar else denoised


class ConditionalDenoiser(nn.Module):
    """``D(x_t, sigma | y, sigma_y)``: EDM preconditioning on the main input, the condition fed
    as ``(c_in(sigma_y) y, c_noise(sigma_y))`` to a second encoder (DESIGN 3.3, 3.4).

    The log-variance ``u`` depends on ``sigma_y`` (``uncertainty_on='cond'``, the generator's) or
    on ``sigma`` (``'main'``, the fake score's).
    """

    def __init__(self, backbone: nn.Module, sigma_data: float = SIGMA_DATA, uncertainty_on: str = "main"):
        super().__init__()
        self.backbone, self.sigma_data, self.uncertainty_on = backbone, sigma_data, uncertainty_on
        self.uncertainty = UncertaintyHead()

    @classmethod
    def init_from(cls, teacher: Denoiser, uncertainty_on: str = "main",
                  condition: str = "encoder") -> "ConditionalDenoiser":
        """Copy the teacher's UNet into the backbone ``CONDITION_BACKBONES[condition]``: for
        ``"encoder"`` the encoder, the condition encoder and the decoder."""
        if condition not in CONDITION_BACKBONES:
            raise ValueError(f"condition must be one of {sorted(CONDITION_BACKBONES)}, got {condition!r}")
        backbone = CONDITION_BACKBONES[condition].from_unet(teacher.backbone)
        net = cls(backbone, teacher.sigma_data, uncertainty_on)
        net.uncertainty.load_state_dict(teacher.uncertainty.state_dict())
        return net

    def forward(self, x: Tensor, sigma: float | Tensor, y: Tensor, sigma_y: float | Tensor,
                return_logvar: bool = False):
        sigma, sigma_y = as_level(sigma, x), as_level(sigma_y, x)
        c_skip, c_out, c_in, c_noise = edm_precond(sigma, self.sigma_data)
        _, _, c_in_y, c_noise_y = edm_precond(sigma_y, self.sigma_data)
        multiple = getattr(self.backbone, "size_multiple", 1)
        padded, (height, width) = pad_to_multiple(c_in * x, multiple)
        padded_y, _ = pad_to_multiple(c_in_y * y, multiple)
        out = self.backbone(padded, c_noise.flatten(), padded_y, c_noise_y.flatten())[..., :height, :width]
        denoised = c_skip * x + c_out * out
        if not return_logvar:
            return denoised
        return denoised, self.uncertainty((c_noise_y if self.uncertainty_on == "cond" else c_noise).flatten())


class GenerativeDenoiser(nn.Module):
    """``G(y, sigma, z) ~ p(x | y)`` (DESIGN 3.3): one sample of the clean image per call.

    Inflates the noise to ``sigma_hat = (1 + gamma) sigma`` with ``z`` and denoises
    ``(y_hat, sigma_hat)`` conditioned on ``(y, sigma)``. y: (N, C, H, W); sigma: float or (N,).
    """

    def __init__(self, net: ConditionalDenoiser, gamma: float = NOISE_INFLATION):
        super().__init__()
        self.net, self.gamma = net, gamma

    @property
    def sigma_data(self) -> float:
        return self.net.sigma_data

    def forward(self, y: Tensor, sigma: float | Tensor, z: Tensor | None = None,
                rng: torch.Generator | None = None, return_logvar: bool = False):
        sigma = as_level(sigma, y)
        if z is None:
            z = torch.randn(y.shape, generator=rng, device=y.device, dtype=y.dtype)
        sigma_hat = (1 + self.gamma) * sigma
        y_hat = y + (sigma_hat**2 - sigma**2).sqrt() * z
        return self.net(y_hat, sigma_hat, y, sigma, return_logvar=return_logvar)


def build_teacher(cfg: UNetConfig) -> Denoiser:
    """A fresh EDM teacher with a UNet of size ``cfg``."""
    return Denoiser(UNet(cfg))

"""A generative denoiser (and fake score) built from a foreign prior's own network.

NCVSD initialises the generator and the fake score from the teacher (DESIGN 3.4). For a network
this project did not write (a diffusers ``UNet2DModel``, a deepinv denoiser; design notes section
8) the condition ``(c_in(sigma_y) y, c_noise(sigma_y))`` joins through extra input channels of
the network's first convolution, initialised to zero: at step 0 the generator is exactly the
teacher at the inflated level, ``G(y, sigma) = D(y_hat, sigma_hat)`` (the paper's
initialisation). The log-variance head is this project's generic one, a function of the level.
The GAN discriminator needs the teacher's encoder, which is known only for this project's UNet.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .edm import as_level, edm_precond
from .networks import UncertaintyHead

Tensor = torch.Tensor


def first_convolution(module: nn.Module) -> tuple[nn.Module, str]:
    """``(parent, attribute)`` of the first ``nn.Conv2d`` in ``module``'s registration order: the
    layer that sees the network's input in every UNet-like denoiser (diffusers' ``conv_in``,
    DRUNet's ``m_head``, ADM's first input block)."""
    for parent in module.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Conv2d):
                return parent, name
    raise ValueError(f"{type(module).__name__} has no Conv2d to join the condition to")


class ConditionedConv(nn.Module):
    """``conv(input) + extra(condition)``: the first convolution widened by the condition's
    channels. ``extra`` starts at zero. The condition (set by :class:`ForeignConditionalDenoiser`
    for the length of one call) is zero-padded or cropped at the bottom and right to the input's
    size, for networks that pad their input first."""

    def __init__(self, conv: nn.Conv2d, condition_channels: int):
        super().__init__()
        self.conv = conv
        self.extra = nn.Conv2d(condition_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                               conv.dilation, bias=False)
        nn.init.zeros_(self.extra.weight)
        self.condition: Tensor | None = None

    def forward(self, inputs: Tensor) -> Tensor:
        out = self.conv(inputs)
        if self.condition is None:
            return out
        condition = self.condition.to(inputs.dtype)
        height, width = inputs.shape[-2:]
        condition = F.pad(condition, (0, width - condition.shape[-1], 0, height - condition.shape[-2]))
        return out + self.extra(condition)


class ForeignConditionalDenoiser(nn.Module):
    """``D(x, sigma | y, sigma_y)`` on a copy of a foreign prior ``D(x, sigma)`` (trainable), with
    the condition ``(c_in(sigma_y) y, c_noise(sigma_y))`` (EDM preconditioning, DESIGN 3.1) as
    ``C + 1`` extra channels of its first convolution (:class:`ConditionedConv`). Same calls as
    :class:`~ncvsd_inverse.networks.ConditionalDenoiser`; ``uncertainty_on``: ``"cond"`` (the
    generator's log-variance depends on ``sigma_y``) or ``"main"`` (the fake score's, on ``sigma``)."""

    def __init__(self, prior: nn.Module, channels: int, uncertainty_on: str = "main", sigma_data: float = 0.5):
        super().__init__()
        self.prior = copy.deepcopy(prior).requires_grad_(True).train()
        parent, name = first_convolution(self.prior)
        conditioned = ConditionedConv(getattr(parent, name), channels + 1)
        setattr(parent, name, conditioned)
        # a plain reference, not a second registration (the weights live once, inside the prior)
        self.__dict__["conditioned"] = conditioned
        self.uncertainty = UncertaintyHead()
        self.uncertainty_on, self.sigma_data, self.channels = uncertainty_on, sigma_data, channels
        self.description = getattr(prior, "description", None)

    def forward(self, x: Tensor, sigma: float | Tensor, y: Tensor, sigma_y: float | Tensor,
                return_logvar: bool = False):
        sigma, sigma_y = as_level(sigma, x), as_level(sigma_y, x)
        _, _, c_in_y, c_noise_y = edm_precond(sigma_y, self.sigma_data)
        level = c_noise_y.reshape(-1, 1, 1, 1).expand(-1, 1, *y.shape[-2:])
        self.conditioned.condition = torch.cat([c_in_y * y, level], dim=1)
        try:
            denoised = self.prior(x, sigma.flatten())
        finally:
            self.conditioned.condition = None
        if not return_logvar:
            return denoised
        level = c_noise_y if self.uncertainty_on == "cond" else edm_precond(sigma, self.sigma_data)[3]
        return denoised, self.uncertainty(level.flatten())


__all__ = ["ConditionedConv", "ForeignConditionalDenoiser", "first_convolution"]

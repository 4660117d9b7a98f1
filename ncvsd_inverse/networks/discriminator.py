"""The NCVSD discriminator ``d(x_t, t | y, sigma)`` of the GAN term (DESIGN 3.4): two encoders
taken from the teacher, their deepest features pooled, one logit.
"""

from __future__ import annotations

import torch
from torch import nn

from ..edm import SIGMA_DATA, as_level, edm_precond
from .denoisers import Denoiser
from .layers import MPConv
from .unet import Encoder, UNetConfig, pad_to_multiple

Tensor = torch.Tensor


class Discriminator(nn.Module):
    """``d(x_t, t | y, sigma)``: two encoders (from the teacher), pooled deepest features, one logit."""

    def __init__(self, cfg: UNetConfig, sigma_data: float = SIGMA_DATA):
        super().__init__()
        self.cfg, self.sigma_data = cfg, sigma_data
        self.encoder, self.cond_encoder = Encoder(cfg), Encoder(cfg)
        self.head = MPConv(2 * self.encoder.skip_channels[-1], 1, ())

    @classmethod
    def init_from(cls, teacher: Denoiser) -> "Discriminator":
        disc = cls(teacher.backbone.cfg, teacher.sigma_data)
        disc.encoder.load_state_dict(teacher.backbone.encoder.state_dict())
        disc.cond_encoder.load_state_dict(teacher.backbone.encoder.state_dict())
        return disc

    def forward(self, x: Tensor, sigma: float | Tensor, y: Tensor, sigma_y: float | Tensor) -> Tensor:
        sigma, sigma_y = as_level(sigma, x), as_level(sigma_y, x)
        _, _, c_in, c_noise = edm_precond(sigma, self.sigma_data)
        _, _, c_in_y, c_noise_y = edm_precond(sigma_y, self.sigma_data)
        multiple = self.cfg.size_multiple
        skips, _ = self.encoder(pad_to_multiple(c_in * x, multiple)[0], c_noise.flatten())
        cond_skips, _ = self.cond_encoder(pad_to_multiple(c_in_y * y, multiple)[0], c_noise_y.flatten())
        pooled = torch.cat([skips[-1].mean(dim=(2, 3)), cond_skips[-1].mean(dim=(2, 3))], dim=1)
        return self.head(pooled).flatten()

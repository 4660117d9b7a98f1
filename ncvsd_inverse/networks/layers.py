"""EDM2's magnitude-preserving layers: normalisation, SiLU, sums and concatenations, Fourier
noise features, forced-weight-normalised convolutions and the residual block (Karras et al.,
2024, "Analyzing and Improving the Training Dynamics of Diffusion Models").

No normalisation uses spatial statistics (per-pixel channel normalisation only), so a network
trained on patches behaves the same on whole photos.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

Tensor = torch.Tensor


def normalize(x: Tensor, dim=None, eps: float = 1e-4) -> Tensor:
    """Scale ``x`` to unit root-mean-square along ``dim`` (all but the first by default)."""
    dim = list(range(1, x.ndim)) if dim is None else dim
    norm = torch.linalg.vector_norm(x, dim=dim, keepdim=True, dtype=torch.float32)
    norm = torch.add(eps, norm, alpha=math.sqrt(norm.numel() / x.numel()))
    return x / norm.to(x.dtype)


#: ``mp_silu(x) = silu(x) / MP_SILU_SCALE`` has unit variance for unit-variance ``x`` (EDM2)
MP_SILU_SCALE = 0.596


def mp_silu(x: Tensor) -> Tensor:
    return F.silu(x) / MP_SILU_SCALE


def mp_sum_weights(t: float) -> tuple[float, float]:
    """The weights ``(a_weight, b_weight)`` of :func:`mp_sum`: ``mp_sum(a, b, t) = a_weight a + b_weight b``."""
    norm = math.sqrt((1 - t) ** 2 + t**2)
    return (1 - t) / norm, t / norm


def fused_mp_sum(a: Tensor, weighted_b: Tensor, t: float) -> Tensor:
    """:func:`mp_sum` when ``b``'s weight is already in ``weighted_b`` (folded into the
    convolution that made it): ``weighted_b + a_weight a`` in one pass over memory."""
    dtype = torch.promote_types(a.dtype, weighted_b.dtype)  # under autocast one side may be bfloat16
    return torch.add(weighted_b.to(dtype), a.to(dtype), alpha=mp_sum_weights(t)[0])


def mp_sum(a: Tensor, b: Tensor, t: float = 0.5) -> Tensor:
    """EDM2's magnitude-preserving blend ``((1 - t) a + t b) / sqrt((1 - t)^2 + t^2)``."""
    return fused_mp_sum(a, b * mp_sum_weights(t)[1], t)


def mp_cat(a: Tensor, b: Tensor, t: float = 0.5) -> Tensor:
    na, nb = a.shape[1], b.shape[1]
    scale = math.sqrt((na + nb) / ((1 - t) ** 2 + t**2))
    return torch.cat([a * (scale / math.sqrt(na) * (1 - t)), b * (scale / math.sqrt(nb) * t)], dim=1)


class MPFourier(nn.Module):
    """Random Fourier features of a scalar, unit variance."""

    def __init__(self, channels: int, bandwidth: float = 1.0):
        super().__init__()
        gen = torch.Generator().manual_seed(channels)
        self.register_buffer("freqs", 2 * np.pi * torch.randn(channels, generator=gen) * bandwidth)
        self.register_buffer("phases", 2 * np.pi * torch.rand(channels, generator=gen))

    def forward(self, x: Tensor) -> Tensor:
        return (torch.outer(x.flatten().float(), self.freqs) + self.phases).cos() * math.sqrt(2)


class MPConv(nn.Module):
    """Convolution (or linear layer when ``kernel == ()``) with forced weight normalisation."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, ...]):
        super().__init__()
        self.out_channels = out_channels
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, *kernel))

    def project_weight_(self) -> None:
        """EDM2's forced weight normalisation: put the stored weight back on the unit sphere."""
        with torch.no_grad():
            self.weight.copy_(normalize(self.weight.float()))

    def forward(self, x: Tensor, gain: float | Tensor = 1.0) -> Tensor:
        # In training each call projects first. Under torch.compile the in-place write is lost
        # (measured: convolution weights kept their norm), so compile_for_training projects
        # eagerly before the compiled call instead.
        if self.training and not torch.compiler.is_compiling():
            self.project_weight_()
        w = self.weight.float()
        w = normalize(w) * (gain / math.sqrt(w[0].numel()))
        if w.ndim == 2:
            return x @ w.t()
        return F.conv2d(x, w, padding=w.shape[-1] // 2)


class Block(nn.Module):
    """EDM2 residual block: ``flavor`` 'enc' (normalises its input) or 'dec'; optional resampling."""

    def __init__(self, in_channels: int, out_channels: int, emb_channels: int, flavor: str = "enc",
                 resample: str = "keep", attention: bool = False, channels_per_head: int = 64,
                 res_balance: float = 0.3, attn_balance: float = 0.3, clip_act: float = 256):
        super().__init__()
        self.out_channels, self.flavor, self.resample = out_channels, flavor, resample
        self.res_balance, self.attn_balance, self.clip_act = res_balance, attn_balance, clip_act
        self.num_heads = max(out_channels // channels_per_head, 1) if attention else 0
        self.emb_gain = nn.Parameter(torch.zeros([]))
        self.conv_res0 = MPConv(out_channels if flavor == "enc" else in_channels, out_channels, (3, 3))
        self.emb_linear = MPConv(emb_channels, out_channels, ())
        self.conv_res1 = MPConv(out_channels, out_channels, (3, 3))
        self.conv_skip = MPConv(in_channels, out_channels, (1, 1)) if in_channels != out_channels else None
        self.attn_qkv = MPConv(out_channels, out_channels * 3, (1, 1)) if self.num_heads else None
        self.attn_proj = MPConv(out_channels, out_channels, (1, 1)) if self.num_heads else None

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        if self.resample == "down":
            x = F.avg_pool2d(x, 2)
        elif self.resample == "up":
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        if self.flavor == "enc":
            if self.conv_skip is not None:
                x = self.conv_skip(x)
            x = normalize(x, dim=1)  # per-pixel channel normalisation
        # The same computation as conv_res1(mp_silu(conv_res0(mp_silu(x)) * scale)) followed by
        # mp_sum(x, y): the constant factors (1 / MP_SILU_SCALE and mp_sum's weight of y) ride on
        # the convolutions' weights instead of taking passes over the activations, which dominate
        # the cost at large sizes (issue 18). The per-image scale stays a multiply, so that an
        # image's result does not depend on the batch it is in (tiles are batched).
        scale = self.emb_linear(emb, gain=self.emb_gain) + 1
        y = self.conv_res0(F.silu(x), gain=1 / MP_SILU_SCALE)
        y = F.silu(y * scale[:, :, None, None].to(y.dtype))
        y = self.conv_res1(y, gain=mp_sum_weights(self.res_balance)[1] / MP_SILU_SCALE)
        if self.flavor == "dec" and self.conv_skip is not None:
            x = self.conv_skip(x)
        x = fused_mp_sum(x, y, t=self.res_balance)
        if self.num_heads:
            qkv = self.attn_qkv(x).reshape(x.shape[0], self.num_heads, -1, 3, x.shape[2] * x.shape[3])
            q, k, v = normalize(qkv, dim=2).unbind(3)
            weights = torch.einsum("nhcq,nhck->nhqk", q, k / math.sqrt(q.shape[2])).softmax(dim=3)
            y = self.attn_proj(torch.einsum("nhqk,nhck->nhcq", weights, v).reshape(*x.shape))
            x = mp_sum(x, y, t=self.attn_balance)
        return x.clip(-self.clip_act, self.clip_act)

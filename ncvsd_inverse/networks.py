"""Networks: an EDM2-style magnitude-preserving UNet and the denoisers built from it.

Reads top to bottom: tiny pure functions, small modules, the encoder/decoder (UNet), then the
preconditioned wrappers that implement DESIGN 3.1 (``Denoiser``), 3.3 (``ConditionalDenoiser``,
``GenerativeDenoiser``) and the NCVSD ``Discriminator`` (3.4).

No normalisation uses spatial statistics (EDM2's per-pixel channel normalisation only), so a
network trained on patches behaves the same on whole photos. Any image size works: inputs are
reflect-padded to the multiple the UNet needs and cropped back.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .edm import NOISE_INFLATION, SIGMA_DATA, as_level, edm_precond

Tensor = torch.Tensor

# ----------------------------------------------------------------------------------------------
# Magnitude-preserving primitives (EDM2)


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


# ----------------------------------------------------------------------------------------------
# The UNet, split into an encoder (noise embedding + encoder blocks) and a decoder


@dataclasses.dataclass
class UNetConfig:
    """Size of the UNet. ``attn_levels``: indices of ``channel_mult`` levels with self-attention."""

    img_channels: int = 3
    model_channels: int = 32
    channel_mult: tuple[int, ...] = (1, 2, 2)
    num_blocks: int = 2
    attn_levels: tuple[int, ...] = ()

    def __post_init__(self):
        def positive_int(value) -> bool:
            return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 4096

        for name in ("img_channels", "model_channels", "num_blocks"):
            if not positive_int(getattr(self, name)):
                raise ValueError(f"UNet {name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("channel_mult", "attn_levels"):
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) and v >= 0 for v in value):
                raise ValueError(f"UNet {name} must be a list of non-negative integers, got {value!r}")
        if not self.channel_mult or not all(positive_int(m) for m in self.channel_mult):
            raise ValueError("UNet channel_mult must be a non-empty list of positive integers, "
                             f"got {self.channel_mult!r}")
        self.channel_mult, self.attn_levels = tuple(self.channel_mult), tuple(self.attn_levels)

    @property
    def size_multiple(self) -> int:
        return 2 ** (len(self.channel_mult) - 1)


class Encoder(nn.Module):
    """Noise embedding and the encoder half: ``(x, c_noise) -> (skips, emb)``."""

    def __init__(self, cfg: UNetConfig):
        super().__init__()
        widths = [cfg.model_channels * m for m in cfg.channel_mult]
        emb_channels = max(widths)
        self.emb_fourier = MPFourier(widths[0])
        self.emb_noise = MPConv(widths[0], emb_channels, ())
        self.blocks = nn.ModuleDict()
        self.input_conv = MPConv(cfg.img_channels + 1, widths[0], (3, 3))  # + a constant channel
        channels = widths[0]
        self.skip_channels = [channels]
        for level, width in enumerate(widths):
            if level > 0:
                self.blocks[f"{level}_down"] = Block(channels, channels, emb_channels, "enc", "down")
                self.skip_channels.append(channels)
            for idx in range(cfg.num_blocks):
                self.blocks[f"{level}_block{idx}"] = Block(channels, width, emb_channels, "enc",
                                                           attention=level in cfg.attn_levels)
                channels = width
                self.skip_channels.append(channels)

    def forward(self, x: Tensor, c_noise: Tensor, input_offset: Tensor | None = None) -> tuple[list[Tensor], Tensor]:
        """``input_offset``: added to the input layer's output (how :class:`InputConcatUNet` joins its condition)."""
        emb = mp_silu(self.emb_noise(self.emb_fourier(c_noise)))
        x = self.input_conv(torch.cat([x, torch.ones_like(x[:, :1])], dim=1))
        if input_offset is not None:
            x = x + input_offset
        skips = [x]
        for block in self.blocks.values():
            x = block(x, emb)
            skips.append(x)
        return skips, emb


class Decoder(nn.Module):
    """The decoder half: ``(skips, emb) -> F`` with ``img_channels`` channels."""

    def __init__(self, cfg: UNetConfig, skip_channels: list[int]):
        super().__init__()
        widths = [cfg.model_channels * m for m in cfg.channel_mult]
        emb_channels = max(widths)
        skips = list(skip_channels)
        channels = skips[-1]
        self.blocks = nn.ModuleDict()
        for level in reversed(range(len(widths))):
            if level == len(widths) - 1:
                self.blocks[f"{level}_in0"] = Block(channels, channels, emb_channels, "dec",
                                                    attention=level in cfg.attn_levels)
                self.blocks[f"{level}_in1"] = Block(channels, channels, emb_channels, "dec")
            else:
                self.blocks[f"{level}_up"] = Block(channels, channels, emb_channels, "dec", "up")
            for idx in range(cfg.num_blocks + 1):
                self.blocks[f"{level}_block{idx}"] = Block(channels + skips.pop(), widths[level], emb_channels,
                                                           "dec", attention=level in cfg.attn_levels)
                channels = widths[level]
        self.out_gain = nn.Parameter(torch.zeros([]))
        self.output_conv = MPConv(channels, cfg.img_channels, (3, 3))

    def forward(self, skips: list[Tensor], emb: Tensor) -> Tensor:
        skips = list(skips)
        x = skips[-1]
        for name, block in self.blocks.items():
            if "block" in name:
                x = mp_cat(x, skips.pop())
            x = block(x, emb)
        return self.output_conv(x, gain=self.out_gain)


class UNet(nn.Module):
    """``F(x, c_noise)``: the raw network inside the EDM preconditioning."""

    def __init__(self, cfg: UNetConfig):
        super().__init__()
        self.cfg = cfg
        self.size_multiple = cfg.size_multiple
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg, self.encoder.skip_channels)

    def forward(self, x: Tensor, c_noise: Tensor) -> Tensor:
        skips, emb = self.encoder(x, c_noise)
        return self.decoder(skips, emb)


class ConditionalUNet(nn.Module):
    """``F(x, c_noise | cond, cond_noise)``: two encoders and one decoder (DESIGN 3.3).

    The condition encoder's features are added to the main skips through per-skip gains that
    start at 0 (ControlNet-style), so right after :meth:`from_unet` the network equals the teacher.
    """

    def __init__(self, cfg: UNetConfig):
        super().__init__()
        self.cfg = cfg
        self.size_multiple = cfg.size_multiple
        self.encoder = Encoder(cfg)
        self.cond_encoder = Encoder(cfg)
        self.decoder = Decoder(cfg, self.encoder.skip_channels)
        self.cond_gains = nn.Parameter(torch.zeros(len(self.encoder.skip_channels)))

    @classmethod
    def from_unet(cls, unet: UNet) -> "ConditionalUNet":
        """All three parts initialised from the teacher's UNet."""
        net = cls(unet.cfg)
        net.encoder.load_state_dict(unet.encoder.state_dict())
        net.cond_encoder.load_state_dict(unet.encoder.state_dict())
        net.decoder.load_state_dict(unet.decoder.state_dict())
        return net

    def forward(self, x: Tensor, c_noise: Tensor, cond: Tensor, cond_noise: Tensor) -> Tensor:
        skips, emb = self.encoder(x, c_noise)
        cond_skips, _ = self.cond_encoder(cond, cond_noise)
        skips = [torch.addcmul(s, g, c) for s, g, c in zip(skips, self.cond_gains, cond_skips)]  # s + g c, one pass
        return self.decoder(skips, emb)


class InputConcatUNet(UNet):
    """``F(x, c_noise | cond)``: the concatenation variant of :class:`ConditionalUNet` (an
    alternative to DESIGN 3.3's separate condition encoder; see the model card).

    One encoder; the condition joins at the input layer as extra channels. The input convolution
    of ``[x, 1, cond]`` is written as ``conv([x, 1]) + g conv_cond(cond)`` with the gain ``g``
    starting at 0, so right after :meth:`from_unet` the network equals the teacher. ``cond_noise``
    is not used: the generator's own level ``(1 + gamma) sigma`` already carries ``sigma``.
    """

    def __init__(self, cfg: UNetConfig):
        super().__init__(cfg)  # the teacher's encoder and decoder
        self.cond_conv = MPConv(cfg.img_channels, cfg.model_channels * cfg.channel_mult[0], (3, 3))
        self.cond_gain = nn.Parameter(torch.zeros([]))

    @classmethod
    def from_unet(cls, unet: UNet) -> "InputConcatUNet":
        """Encoder and decoder initialised from the teacher's UNet."""
        net = cls(unet.cfg)
        net.encoder.load_state_dict(unet.encoder.state_dict())
        net.decoder.load_state_dict(unet.decoder.state_dict())
        return net

    def forward(self, x: Tensor, c_noise: Tensor, cond: Tensor, cond_noise: Tensor) -> Tensor:
        skips, emb = self.encoder(x, c_noise, input_offset=self.cond_conv(cond, gain=self.cond_gain))
        return self.decoder(skips, emb)


CONDITION_BACKBONES = {"encoder": ConditionalUNet, "concat": InputConcatUNet}


# ----------------------------------------------------------------------------------------------
# Preconditioned denoisers


def pad_to_multiple(x: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int]]:
    """Reflect-pad ``x`` on the bottom/right to a multiple of ``multiple``; returns the original size."""
    height, width = x.shape[-2:]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    if pad_h or pad_w:
        mode = "reflect" if pad_h < height and pad_w < width else "replicate"
        x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
    return x, (height, width)


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


def unet_config(model: nn.Module) -> UNetConfig | None:
    """The :class:`UNetConfig` a model is built on (a ``Denoiser``, a ``GenerativeDenoiser`` or
    anything with a UNet ``backbone``, directly or under ``.net``); None for other models."""
    for candidate in (model, getattr(model, "net", None)):
        cfg = getattr(getattr(candidate, "backbone", None), "cfg", None)
        if isinstance(cfg, UNetConfig):
            return cfg
    return None


def count_encoders(model: nn.Module) -> int:
    """How many UNet encoders one call of ``model`` runs: 2 for the generator's
    :class:`ConditionalUNet` (image and condition), 1 for the teacher's :class:`UNet`."""
    return sum(isinstance(module, Encoder) for module in model.modules())


def build_teacher(cfg: UNetConfig) -> Denoiser:
    """A fresh EDM teacher with a UNet of size ``cfg``."""
    return Denoiser(UNet(cfg))


def compile_for_training(net: nn.Module) -> Callable[..., Any]:
    """``torch.compile(net)`` for its training-mode calls, with the forced weight normalisation
    of every :class:`MPConv` in ``net`` done eagerly before each call (the compiled graph skips
    it, see ``MPConv.forward``): the same weights and outputs as the eager ``net``, in fewer
    passes over memory (1.5x per teacher training step on a 2-core AVX512-BF16 CPU)."""
    compiled = torch.compile(net)
    convs = [m for m in net.modules() if isinstance(m, MPConv)]

    def forward(*args, **kwargs):
        for conv in convs:
            if conv.training:
                conv.project_weight_()
        return compiled(*args, **kwargs)

    return forward


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def clone_frozen(module: nn.Module) -> nn.Module:
    """A deep copy in eval mode with gradients off (EMA copies, frozen teachers)."""
    frozen = copy.deepcopy(module).eval()
    frozen.requires_grad_(False)
    return frozen

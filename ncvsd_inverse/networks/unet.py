"""The UNet ``F(x, c_noise)`` inside the EDM preconditioning, split into an encoder (noise
embedding + encoder blocks) and a decoder, and the two conditional backbones of the generator
(DESIGN 3.3). Any image size works: inputs are reflect-padded to the multiple the UNet needs.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from .layers import Block, MPConv, MPFourier, mp_cat, mp_silu

Tensor = torch.Tensor


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


def pad_to_multiple(x: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int]]:
    """Reflect-pad ``x`` on the bottom/right to a multiple of ``multiple``; returns the original size."""
    height, width = x.shape[-2:]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    if pad_h or pad_w:
        mode = "reflect" if pad_h < height and pad_w < width else "replicate"
        x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
    return x, (height, width)


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

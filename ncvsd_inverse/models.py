"""Build networks from checkpoints (teacher or distilled generator), without pickle."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from .checkpoints import CheckpointError, read_checkpoint, resolve_checkpoint
from .edm import NOISE_INFLATION
from .networks import (
    CONDITION_BACKBONES,
    ConditionalDenoiser,
    Denoiser,
    GenerativeDenoiser,
    UNet,
    UNetConfig,
    clone_frozen,
)


def network_config(meta: dict, source: str) -> UNetConfig:
    """The UNet size recorded in a checkpoint's config."""
    config = meta.get("config", {})
    network = config.get("network") or config.get("teacher", {}).get("network")
    if not isinstance(network, dict):
        raise CheckpointError(f"{source}: its config has no network description")
    try:
        return UNetConfig(**network)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{source}: bad network description ({error})") from None


def _load(module: torch.nn.Module, tensors: dict, prefixes: tuple[str, ...], source: str) -> torch.nn.Module:
    from .checkpoints import load_module

    for prefix in prefixes:
        if any(k.startswith(prefix + ".") for k in tensors):
            load_module(module, tensors, prefix, source)
            return clone_frozen(module)
    raise CheckpointError(f"{source}: no {' or '.join(prefixes)} weights in this checkpoint")


def load_teacher(path: str | Path, device: str | torch.device = "cpu", ema: bool = True) -> Denoiser:
    """The teacher ``Denoiser`` of an ``ncvsd-train`` checkpoint (file or run folder), frozen."""
    source = str(resolve_checkpoint(path))
    tensors, meta = read_checkpoint(path)
    teacher = Denoiser(UNet(network_config(meta, source)))
    prefixes = ("ema.teacher", "teacher") if ema else ("teacher",)
    return _load(teacher, tensors, prefixes, source).to(device)


def foreign_network(description: dict, source: str) -> torch.nn.Module:
    """The conditional network of a generator distilled from a foreign teacher, rebuilt from the
    description its checkpoint records (random weights; the checkpoint's are loaded after)."""
    from .foreign_generator import ForeignConditionalDenoiser
    from .priors import PriorError, prior_from_description

    try:
        prior = prior_from_description(description)
    except (PriorError, KeyError, TypeError) as error:
        raise CheckpointError(f"{source}: cannot rebuild its foreign network ({error})") from None
    return ForeignConditionalDenoiser(prior, prior.img_channels or 3, uncertainty_on="cond")


def load_generator(path: str | Path, device: str | torch.device = "cpu", ema: bool = True) -> GenerativeDenoiser:
    """The ``GenerativeDenoiser`` of an ``ncvsd-distill`` checkpoint (file or run folder), frozen."""
    source = str(resolve_checkpoint(path))
    tensors, meta = read_checkpoint(path)
    if meta.get("config", {}).get("kind") == "teacher":
        raise CheckpointError(f"{source}: a teacher checkpoint; pass a distilled generator (ncvsd-distill output)")
    recipe = meta["config"].get("distill", {})
    gamma, condition = recipe.get("gamma", NOISE_INFLATION), recipe.get("condition", "encoder")
    if "foreign" in meta["config"]:
        generator = GenerativeDenoiser(foreign_network(meta["config"]["foreign"], source), gamma)
    else:
        if condition not in CONDITION_BACKBONES:
            raise CheckpointError(f"{source}: unknown generator condition {condition!r}")
        net = ConditionalDenoiser(CONDITION_BACKBONES[condition](network_config(meta, source)), uncertainty_on="cond")
        generator = GenerativeDenoiser(net, gamma)
    prefixes = ("ema.generator", "generator") if ema else ("generator",)
    return _load(generator, tensors, prefixes, source).to(device)


def weights_sha256(model: torch.nn.Module) -> str:
    """sha256 over a model's state dict (names and raw bytes, sorted by name)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()

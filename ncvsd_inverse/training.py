"""Training: the teacher (EDM2 denoising score matching, DESIGN 3.1) and the NCVSD distiller (3.4).

One code path for 1..N processes: under ``torchrun`` each rank draws its own shard of patches,
gradients are averaged by DDP (gloo on CPU, nccl on GPU), rank 0 logs and checkpoints. Every
random draw of step ``k`` on rank ``r`` comes from a generator seeded with ``(seed, k, r)``, so a
run resumed from a checkpoint continues bit for bit like an uninterrupted one.

The losses are small callables (:class:`TeacherLoss`, :class:`NCVSDLoss`); the loops take the
networks and the teacher as arguments, so tests can train tiny networks against analytic models.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
import yaml
from torch import nn
from tqdm import tqdm

from . import checkpoints
from .diagnostics import generator_diagnostic
from .edm import (
    NOISE_INFLATION,
    SIGMA_MAX,
    SIGMA_MIN,
    denoising_posterior,
    edm_loss_weight,
    edm_precond,
    karras_sigmas,
    lognormal_sigma,
    uncertainty_weighted_loss,
)
from .io import ImageReadError, list_images, read_image, write_image
from .networks import (
    ConditionalDenoiser,
    Denoiser,
    Discriminator,
    GenerativeDenoiser,
    UncertaintyHead,
    UNetConfig,
    clone_frozen,
)

Tensor = torch.Tensor
PRESET_DIR = Path(__file__).parent / "presets"
#: seed of the fixed validation batch (sample grids, the distillation's diagnostic)
VALIDATION_SEED = 12345


# ----------------------------------------------------------------------------------------------
# Configuration


@dataclasses.dataclass
class RecipeConfig:
    """What both trainers share: data, optimiser, learning rate, noise levels, EMA, logging.
    Learning rate: EDM2 inverse-sqrt decay after ``lr_ref_steps`` with a linear ramp-up over
    ``rampup_steps``; ``t ~ lognormal(p_mean, p_std)``."""

    batch: int = 32
    patch: int = 32
    lr: float = 1e-3
    lr_ref_steps: int = 1000
    rampup_steps: int = 100
    p_mean: float = -0.8
    p_std: float = 1.6
    ema_std: float = 0.05
    grad_clip: float = 0.0
    steps: int = 1000
    checkpoint_every: int = 250
    log_every: int = 50
    seed: int = 0


@dataclasses.dataclass
class TeacherConfig(RecipeConfig):
    """Teacher training recipe (DESIGN 3.1)."""

    network: UNetConfig = dataclasses.field(default_factory=UNetConfig)


@dataclasses.dataclass
class DistillConfig(RecipeConfig):
    """NCVSD recipe (DESIGN 3.4). ``lr`` is the fake score's; the generator and discriminator
    use ``lr * g_lr_scale`` / ``lr * d_lr_scale``. ``fake_steps``: fake-score updates per
    generator update. ``logvar_on_t``: the generator loss's log-variance is ``u(sigma) + v(t)``
    with ``v`` a training-only head (lr ``lr``) instead of ``u(sigma)`` alone.
    ``gan_scale = 0`` turns the GAN term off. ``condition``: how the generator sees ``(y, sigma)``,
    ``"encoder"`` (DESIGN 3.3's separate condition encoder) or ``"concat"`` (joined at the input
    layer, see :class:`~ncvsd_inverse.networks.InputConcatUNet`).
    ``val_every``: steps between runs of the diagnostic (DESIGN 3.6b); the run also logs then.
    ``mean_scale > 0`` adds the posterior-mean term (:func:`posterior_mean_bias`, DESIGN 3.4,
    not in the paper): the generator's problems come in pairs that share ``y``, and the
    pair's two samples estimate ``||E_z G(y, sigma, z) - D(y, sigma)||^2``."""

    g_lr_scale: float = 0.1
    d_lr_scale: float = 0.1
    gamma: float = NOISE_INFLATION
    sigma_min: float = SIGMA_MIN
    sigma_max: float = SIGMA_MAX
    sigma_levels: int = 1000
    sigma_rho: float = 7.0
    fake_steps: int = 1
    logvar_on_t: bool = False
    condition: str = "encoder"
    gan_scale: float = 0.0
    gan_warmup_steps: int = 0
    grad_clip: float = 1.0
    val_every: int = 250
    val_sigmas: tuple[float, ...] = (0.2, 0.5)
    val_images: int = 8
    val_patch: int = 64
    mean_scale: float = 0.0


def _from_dict(cls, data: dict, source: str):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{source}: unknown key '{unknown[0]}' for {cls.__name__}")
    data = dict(data)
    if "network" in data:
        data["network"] = _from_dict(UNetConfig, data["network"], source)
    if "val_sigmas" in data:
        data["val_sigmas"] = tuple(data["val_sigmas"])
    return cls(**data)


def available_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def preset_path(name_or_path: str | Path, relative_to: Path | None = None) -> Path:
    """The YAML file of a training preset: a packaged name (``cpu-small``) or a path
    (relative to ``relative_to``'s folder when given, as for a preset's ``base``)."""
    path = Path(name_or_path)
    if relative_to is not None and not path.is_absolute():
        path = relative_to.parent / path
    if path.is_file():
        return path
    packaged = PRESET_DIR / f"{name_or_path}.yaml"
    if packaged.is_file():
        return packaged
    raise ValueError(f"unknown training preset {str(name_or_path)!r}; "
                     f"available: {', '.join(available_presets())}")


def merge_settings(base: dict, overrides: dict) -> dict:
    """``base`` updated by ``overrides``, nested mappings merged key by key."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            value = merge_settings(merged[key], value)
        merged[key] = value
    return merged


def read_preset(name_or_path: str | Path, relative_to: Path | None = None, seen: tuple[Path, ...] = ()) -> dict:
    """A training preset as a plain mapping, its ``base`` chain resolved: a preset that says
    ``base: cpu-small`` holds only what differs from ``cpu-small``."""
    path = preset_path(name_or_path, relative_to).resolve()
    if path in seen:
        raise ValueError(f"{path}: 'base' loops back to itself")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a training preset must be a YAML mapping")
    unknown = sorted(set(data) - {"base", "teacher", "distill", "description"})
    if unknown:
        raise ValueError(f"{path}: unknown key '{unknown[0]}'")
    for section in ("teacher", "distill"):
        if not isinstance(data.get(section, {}), dict):
            raise ValueError(f"{path}: '{section}' must be a mapping")
    if "base" not in data:
        return data
    base = read_preset(data.pop("base"), path, (*seen, path))
    return merge_settings({k: v for k, v in base.items() if k != "description"}, data)


def load_preset(name_or_path: str | Path) -> tuple[TeacherConfig, DistillConfig]:
    """A training preset (``tiny``, ``cpu-small``, ``cpu-small-finetune``, ``cpu-small-mean4``,
    ``ffhq256-xs`` or a YAML path; see :func:`read_preset` for ``base``)."""
    data = read_preset(name_or_path)
    source = str(preset_path(name_or_path))
    return (_from_dict(TeacherConfig, data.get("teacher", {}), source),
            _from_dict(DistillConfig, data.get("distill", {}), source))


def to_plain(config) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(config)))


def network_description(module: nn.Module) -> dict:
    """``{"network": UNetConfig as a dict}`` when ``module`` is built on our UNet, else ``{}``."""
    for candidate in (module, getattr(module, "net", None)):
        cfg = getattr(getattr(candidate, "backbone", None), "cfg", None)
        if isinstance(cfg, UNetConfig):
            return {"network": to_plain(cfg)}
    return {}


# ----------------------------------------------------------------------------------------------
# Data, distributed set-up, schedules


def step_generator(seed: int, step: int, rank: int, device: torch.device | str = "cpu") -> torch.Generator:
    """The generator for every random draw of one step on one rank (makes resume exact)."""
    return torch.Generator(device=device).manual_seed(((seed * 1_000_003 + step) * 4099 + rank) % (2**63))


class PatchDataset:
    """All images of a folder in memory (uint8); random patches with flips and 90-degree turns.

    Unreadable images and images smaller than the patch are skipped and counted.
    Gray images are replicated to ``channels == 3`` (and colour ones averaged for ``channels == 1``).
    """

    def __init__(self, folder: str | Path, patch: int, channels: int = 3, files: list[str] | None = None):
        paths = list_images(folder)
        if files is not None:
            wanted = set(files)
            paths = [p for p in paths if p.name in wanted]
        self.patch, self.images, self.skipped, self.names = patch, [], [], []
        for path in paths:
            try:
                image = read_image(path)
            except ImageReadError as error:
                self.skipped.append(str(error))
                continue
            if min(image.shape[-2:]) < patch:
                self.skipped.append(f"{path}: smaller than the {patch}x{patch} patch")
                continue
            if image.shape[1] != channels:
                image = image.expand(-1, 3, -1, -1) if channels == 3 else image.mean(1, keepdim=True)
            self.images.append(((image[0] + 1) * 127.5).round().to(torch.uint8))
            self.names.append(path.name)
        if not self.images:
            raise ImageReadError(f"{folder}: no usable images (found {len(paths)} image files, "
                                 f"{len(self.skipped)} skipped)")

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, size: int, generator: torch.Generator) -> Tensor:
        """``(size, C, patch, patch)`` float32 in [-1, 1]."""
        out = []
        picks = torch.randint(len(self.images), (size,), generator=generator).tolist()
        for index in picks:
            image = self.images[index]
            top = int(torch.randint(image.shape[1] - self.patch + 1, (1,), generator=generator))
            left = int(torch.randint(image.shape[2] - self.patch + 1, (1,), generator=generator))
            crop = image[:, top:top + self.patch, left:left + self.patch]
            turns, flip = torch.randint(4, (2,), generator=generator).tolist()
            crop = torch.rot90(crop, turns, dims=(1, 2))
            out.append(crop.flip(2) if flip % 2 else crop)
        return torch.stack(out).float() / 127.5 - 1


@dataclasses.dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str | None = None) -> Distributed:
    """Join the ``torchrun`` process group if there is one; pick the device (cuda if present)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Distributed(rank, world, device)


def teardown_distributed() -> None:
    """Leave the process group cleanly: all ranks meet, then the group is destroyed (a rank
    that exits while its peer still holds the connection can abort the peer under gloo)."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def learning_rate(step: int, lr: float, ref_steps: int, rampup_steps: int) -> float:
    """EDM2: ``lr / sqrt(max(step / ref_steps, 1))``, ramped up linearly over ``rampup_steps``."""
    rate = lr / math.sqrt(max(step / max(ref_steps, 1), 1.0))
    if rampup_steps > 0:
        rate *= min(step / rampup_steps, 1.0)
    return rate


def power_ema_exponent(std: float) -> float:
    """EDM2: the power-function EMA exponent ``gamma`` with relative width ``std``."""
    roots = np.roots([1, 7, 16 - std**-2, 12 - std**-2])
    return float(roots[np.isreal(roots)].real.max())


def update_ema(ema: nn.Module, net: nn.Module, step: int, std: float) -> None:
    """Power-function EMA (EDM2): ``beta = (1 - 1/(step+1))^(gamma+1)``; ``std = 0``: copy."""
    beta = (1 - 1 / (step + 1)) ** (power_ema_exponent(std) + 1) if std > 0 else 0.0
    with torch.no_grad():
        for p_ema, p_net in zip(ema.parameters(), net.parameters()):
            p_ema.lerp_(p_net.detach(), 1 - beta)


def _unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


# ----------------------------------------------------------------------------------------------
# Losses


class TeacherLoss:
    """DESIGN 3.1: ``lambda(t)/exp(u(t)) ||D(x + t eps, t) - x||^2 + u(t)``, ``ln t ~ N(P_mean, P_std^2)``."""

    def __init__(self, p_mean: float = -0.8, p_std: float = 1.6):
        self.p_mean, self.p_std = p_mean, p_std

    def __call__(self, denoiser: nn.Module, x: Tensor, generator: torch.Generator) -> Tensor:
        t = lognormal_sigma(x.shape[0], self.p_mean, self.p_std, generator, x.device)
        noisy = x + t.reshape(-1, 1, 1, 1) * torch.randn(x.shape, generator=generator, device=x.device)
        denoised, logvar = denoiser(noisy, t, return_logvar=True)
        return uncertainty_weighted_loss((denoised - x) ** 2, t, logvar)


def posterior_mean_bias(first: Tensor, second: Tensor, mmse: Tensor) -> Tensor:
    """Unbiased estimate of ``||E_z G - D||^2`` per problem, averaged over pixels, ``(N,)``.

    ``first``, ``second``: two independent samples ``G(y, sigma, z1)``, ``G(y, sigma, z2)`` of the
    same problems ``(N, C, H, W)``; ``mmse``: the teacher's ``D(y, sigma)``. By Tweedie's formula
    ``D(y, sigma) = E[x | y]``, so an exact posterior sampler has ``E_z G = D``. The product of the
    two deviations has expectation ``||E G - D||^2`` whatever the samples' spread, so its gradient
    moves the samples' mean and, unlike the square of one deviation, does not reward shrinking their
    variance (the spread can still move through the weights the two share; see the model card).
    """
    return ((first - mmse) * (second - mmse)).flatten(1).mean(1)


class NCVSDLoss:
    """DESIGN 3.4: the three NCVSD losses for one batch of clean images.

    sigma ~ U(Karras grid of ``sigma_levels`` levels, rho ``sigma_rho``); ``t`` lognormal.
    """

    def __init__(self, cfg: DistillConfig):
        self.cfg = cfg
        self.grid = karras_sigmas(cfg.sigma_levels, cfg.sigma_max, cfg.sigma_min, cfg.sigma_rho)

    def draw_problem(self, x: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """``(y, sigma)``: ``sigma`` from the grid, ``y = x + sigma n``."""
        if self.grid.device != x.device:  # once: no host-to-device copy in every step
            self.grid = self.grid.to(x.device)
        pick = torch.randint(len(self.grid), (x.shape[0],), generator=generator, device=generator.device)
        sigma = self.grid[pick.to(x.device)].reshape(-1, 1, 1, 1)
        return x + sigma * torch.randn(x.shape, generator=generator, device=x.device), sigma

    def draw_noisy(self, x: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        t = lognormal_sigma(x.shape[0], self.cfg.p_mean, self.cfg.p_std, generator, x.device).reshape(-1, 1, 1, 1)
        return x + t * torch.randn(x.shape, generator=generator, device=x.device), t

    def fake_score_loss(self, fake: nn.Module, xg: Tensor, y: Tensor, sigma: Tensor,
                        generator: torch.Generator) -> Tensor:
        """DSM of the fake score on generator samples ``xg`` (no gradient into the generator)."""
        x_t, t = self.draw_noisy(xg, generator)
        denoised, logvar = fake(x_t, t, y, sigma, return_logvar=True)
        return uncertainty_weighted_loss((denoised - xg) ** 2, t, logvar)

    def discriminator_loss(self, disc: nn.Module, x: Tensor, xg: Tensor, y: Tensor, sigma: Tensor,
                           generator: torch.Generator) -> Tensor:
        """Non-saturating BCE: real ``x + t eps`` against fake ``xg + t eps``."""
        real_t, t = self.draw_noisy(x, generator)
        fake_t = xg + t * torch.randn(xg.shape, generator=generator, device=xg.device)
        # one call for both halves: EDM2's forced weight normalisation updates the weights in place
        logits = disc(torch.cat([real_t, fake_t]), torch.cat([t, t]), torch.cat([y, y]), torch.cat([sigma, sigma]))
        real_logit, fake_logit = logits.chunk(2)
        return (F.binary_cross_entropy_with_logits(real_logit, torch.ones_like(real_logit), reduction="none")
                + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit), reduction="none"))

    def generator_loss(self, generator_net: nn.Module, teacher: Callable, fake: nn.Module, y: Tensor,
                       sigma: Tensor, generator: torch.Generator, disc: nn.Module | None = None,
                       gan_scale: float = 0.0, logvar_t: nn.Module | None = None,
                       mean_scale: float = 0.0) -> tuple[Tensor, Tensor]:
        """VSD (+ GAN, + posterior-mean) loss of the generator; returns ``(per-sample loss, xg)``.

        ``real = D_teacher(y_eff, sigma_eff)`` (DESIGN 3.2), ``fake = f(x_t, t | y, sigma)``;
        ``L = lambda(t)/exp(u) ||xg - sg(xg + real - fake)||^2 + u`` (DESIGN 3.4), where
        ``u = u(sigma)`` from the generator, plus ``logvar_t(c_noise(t))`` when that head is given.
        ``mean_scale > 0``: the batch's two halves must be the same problems (``y``, ``sigma``);
        each pair adds ``mean_scale * lambda(sigma) * posterior_mean_bias`` to both of its samples.
        """
        z = torch.randn(y.shape, generator=generator, device=y.device)
        xg, logvar = generator_net(y, sigma, z=z, return_logvar=True)
        x_t, t = self.draw_noisy(xg.detach(), generator)
        x_t = x_t + (xg - xg.detach())  # the same noisy sample, but differentiable in xg (for the GAN)
        with torch.no_grad():
            y_eff, sigma_eff = denoising_posterior(y, sigma, x_t.detach(), t)
            real = teacher(y_eff, sigma_eff.flatten())
            fake_denoised = fake(x_t.detach(), t, y, sigma)
            target = xg.detach() + real - fake_denoised
        if logvar_t is not None:
            logvar = logvar + logvar_t(edm_precond(t).c_noise.flatten())
        loss = uncertainty_weighted_loss((xg - target) ** 2, t, logvar)
        if mean_scale > 0:
            y_half, sigma_half = y.chunk(2)[0], sigma.chunk(2)[0]
            with torch.no_grad():
                mmse = teacher(y_half, sigma_half.flatten())
            bias = mean_scale * edm_loss_weight(sigma_half).flatten() * posterior_mean_bias(*xg.chunk(2), mmse)
            loss = loss + bias.repeat(2)
        if disc is not None and gan_scale > 0:
            logit = disc(x_t, t, y, sigma)
            loss = loss + gan_scale * F.binary_cross_entropy_with_logits(
                logit, torch.ones_like(logit), reduction="none")
        return loss, xg.detach()


# ----------------------------------------------------------------------------------------------
# The loop shared by both trainers


class Run:
    """Networks, optimisers and EMA copies of one training run, with checkpoint save/resume.

    ``nets``: trainable modules by name (wrapped in DDP when ``world > 1``); ``emas``: EMA copies
    by name of the network they follow; ``lrs``: base learning rate per network.
    """

    def __init__(self, kind: str, nets: dict[str, nn.Module], lrs: dict[str, float], emas: dict[str, nn.Module],
                 config: dict, out_dir: Path, env: Distributed):
        self.kind, self.config, self.out_dir, self.env = kind, config, Path(out_dir), env
        self.nets = {}
        for name, net in nets.items():
            net.to(env.device).train()
            self.nets[name] = (nn.parallel.DistributedDataParallel(net) if env.world > 1 else net)
        self.emas = {name: ema.to(env.device) for name, ema in emas.items()}
        self.lrs = lrs
        self.optimizers = {name: torch.optim.Adam(net.parameters(), lr=lrs[name], betas=(0.9, 0.99), eps=1e-8)
                           for name, net in nets.items()}
        self.step = 0

    def module(self, name: str) -> nn.Module:
        return _unwrap(self.nets[name])

    def tensors(self) -> dict[str, Tensor]:
        out = {}
        for name in self.nets:
            out.update({f"{name}.{k}": v for k, v in self.module(name).state_dict().items()})
            out.update(checkpoints.optimizer_tensors(self.optimizers[name], f"opt.{name}"))
        for name, ema in self.emas.items():
            out.update({f"ema.{name}.{k}": v for k, v in ema.state_dict().items()})
        return out

    def rank_divergence(self) -> float:
        """Largest weight difference between this rank and rank 0 over all ranks (0 when in sync)."""
        if self.env.world == 1:
            return 0.0
        flat = torch.cat([p.detach().flatten().float() for name in self.nets
                          for p in self.module(name).parameters()])
        reference = flat.clone()
        dist.broadcast(reference, src=0)
        diff = (flat - reference).abs().max().reshape(1)
        dist.all_reduce(diff, op=dist.ReduceOp.MAX)
        return float(diff)

    def save(self, stats: dict | None = None) -> Path | None:
        """Checkpoint (rank 0 writes; every rank must call it: it checks the ranks are in sync)."""
        divergence = self.rank_divergence()
        if not self.env.is_main:
            return None
        config = {"kind": self.kind, "world_size": self.env.world, **self.config}
        stats = {**(stats or {}), "rank_weight_divergence": divergence}
        return checkpoints.save_checkpoint(self.out_dir, self.step, self.tensors(), config, stats)

    def load(self, source: str | Path) -> Path:
        """Load weights, optimiser states, EMA copies and step from a checkpoint file or run folder;
        returns the checkpoint file it read."""
        path = checkpoints.resolve_checkpoint(source)
        tensors, meta = checkpoints.read_checkpoint(path)
        source = str(path)
        if meta["config"].get("kind") != self.kind:
            raise checkpoints.CheckpointError(f"{source}: a {meta['config'].get('kind')} checkpoint, not {self.kind}")
        for name in self.nets:
            checkpoints.load_module(self.module(name), tensors, name, source)
            checkpoints.load_optimizer_tensors(self.optimizers[name], tensors, f"opt.{name}")
        for name, ema in self.emas.items():
            checkpoints.load_module(ema, tensors, f"ema.{name}", source)
        self.step = int(meta["step"])
        return path

    def start(self, resume: bool, init_from: str | Path | None = None) -> str | None:
        """Where training starts: ``init_from`` (another run's checkpoint, to go on with another
        recipe: the schedules follow its step), else with ``resume`` ``out_dir/latest`` when it
        exists, else step 0. Returns a line for the log, or None for a fresh start."""
        if init_from is not None:
            self.config = {**self.config, "init_from": str(self.load(init_from))}
            return f"started {self.out_dir} from {init_from} at step {self.step}"
        if resume and (self.out_dir / "latest.safetensors").exists():
            self.load(self.out_dir)
            return f"resumed {self.out_dir} at step {self.step}"
        return None

    def optimize(self, names: str | tuple[str, ...], loss: Tensor, ref_steps: int, rampup_steps: int,
                 grad_clip: float = 0.0) -> None:
        """One Adam step of each network in ``names`` on the mean of ``loss`` (one backward pass),
        each with its scheduled learning rate; ``grad_clip`` applies per network."""
        names = (names,) if isinstance(names, str) else names
        for name in names:
            self.optimizers[name].zero_grad(set_to_none=True)
        loss.mean().backward()
        for name in names:
            optimizer = self.optimizers[name]
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(self.step, self.lrs[name], ref_steps, rampup_steps)
            params = list(self.module(name).parameters())
            if grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
            else:  # EDM2: guard against NaN/Inf gradients
                for p in params:
                    if p.grad is not None:
                        torch.nan_to_num_(p.grad, nan=0, posinf=1e5, neginf=-1e5)
            optimizer.step()


def _reduce_mean(value: Tensor, env: Distributed) -> float:
    value = value.detach().float().mean().reshape(1)
    if env.world > 1:
        dist.all_reduce(value)
        value /= env.world
    return float(value)


class StopRequest:
    """Ctrl-C / SIGTERM during training: finish the current step, checkpoint, then stop.

    A second Ctrl-C aborts at once (the last periodic checkpoint is then the resume point).
    """

    def __init__(self):
        self.requested = False
        self._previous = {}

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        tqdm.write("stop requested: finishing this step and writing a checkpoint (Ctrl-C again to abort)")

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def any_rank(self, env: Distributed) -> bool:
        flag = torch.tensor([float(self.requested)])
        if env.world > 1:
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())


def _log_start(run: Run, resume: bool, init_from: str | Path | None, quiet: bool) -> None:
    message = run.start(resume, init_from)
    if message and run.env.is_main and not quiet:
        tqdm.write(message)


def train_loop(run: Run, steps: int, step_fn: Callable[[Run, torch.Generator], dict[str, Tensor]],
               images_per_step: int, checkpoint_every: int, log_every: int, seed: int,
               on_log: Callable[[Run, dict], dict] | None = None, quiet: bool = False) -> dict:
    """Run ``step_fn`` until ``run.step == steps``: JSONL stats, checkpoints, progress bar.

    ``step_fn(run, generator)`` does one training step and returns losses. ``on_log`` may add
    validation numbers to a log record. Ctrl-C or SIGTERM checkpoints after the current step and
    raises ``KeyboardInterrupt``.
    """
    stats_path = run.out_dir / "stats.jsonl"
    bar = tqdm(total=steps, initial=run.step, disable=quiet or not run.env.is_main, unit="step",
               dynamic_ncols=True)
    record, sums, count, started = {}, {}, 0, time.time()
    with StopRequest() as stop:
        try:
            while run.step < steps:
                losses = step_fn(run, step_generator(seed, run.step, run.env.rank, run.env.device))
                run.step += 1
                for key, value in losses.items():
                    sums[key] = sums.get(key, 0.0) + _reduce_mean(value, run.env)
                count += 1
                bar.update(1)
                if run.step % log_every == 0 or run.step == steps:
                    elapsed = time.time() - started
                    record = {"step": run.step, **{k: v / count for k, v in sums.items()},
                              "images_per_s": images_per_step * count / max(elapsed, 1e-9),
                              "s_per_step": elapsed / count}
                    if on_log is not None:
                        record.update(on_log(run, record))
                    if run.env.is_main:
                        with stats_path.open("a") as handle:
                            handle.write(json.dumps(record) + "\n")
                        bar.set_postfix({k: f"{v:.3g}" for k, v in record.items()
                                         if k in ("loss", "loss_g", "images_per_s")})
                    sums, count, started = {}, 0, time.time()
                if run.step % checkpoint_every == 0 or run.step == steps:
                    run.save(record)
                if stop.any_rank(run.env):
                    path = run.save(record)
                    if run.env.is_main:
                        tqdm.write(f"stopped at step {run.step}; checkpoint {path}; continue with --resume")
                    raise KeyboardInterrupt
        finally:
            bar.close()
    return record


# ----------------------------------------------------------------------------------------------
# Teacher training


def train_teacher(teacher: nn.Module, data: PatchDataset, cfg: TeacherConfig, out_dir: str | Path,
                  env: Distributed | None = None, resume: bool = False, quiet: bool = False,
                  extra_config: dict | None = None, init_from: str | Path | None = None) -> Run:
    """Train ``teacher`` (a :class:`Denoiser` or any module with ``(x, sigma, return_logvar)``);
    ``resume`` / ``init_from``: where it starts (:meth:`Run.start`)."""
    env = env or Distributed()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ema = clone_frozen(teacher)
    config = {"teacher": to_plain(cfg), **network_description(teacher), **(extra_config or {})}
    run = Run("teacher", {"teacher": teacher}, {"teacher": cfg.lr}, {"teacher": ema}, config, out_dir, env)
    _log_start(run, resume, init_from, quiet)
    loss_fn = TeacherLoss(cfg.p_mean, cfg.p_std)
    per_rank = max(cfg.batch // env.world, 1)

    def step(run: Run, gen: torch.Generator) -> dict[str, Tensor]:
        x = data.batch(per_rank, _cpu_generator(gen)).to(env.device)
        loss = loss_fn(run.nets["teacher"], x, gen)
        run.optimize("teacher", loss, cfg.lr_ref_steps, cfg.rampup_steps, cfg.grad_clip)
        update_ema(run.emas["teacher"], run.module("teacher"), run.step, cfg.ema_std)
        return {"loss": loss}

    def log(run: Run, record: dict) -> dict:
        if env.is_main:
            save_denoising_grid(run.module("teacher"), data, out_dir / "samples.png", env.device)
        return {}

    train_loop(run, cfg.steps, step, per_rank * env.world, cfg.checkpoint_every, cfg.log_every, cfg.seed,
               on_log=log, quiet=quiet)
    return run


def _cpu_generator(gen: torch.Generator) -> torch.Generator:
    """Patch indices are drawn on the CPU; derive a CPU generator from a device one."""
    if gen.device.type == "cpu":
        return gen
    return torch.Generator().manual_seed(int(gen.initial_seed()))


def save_denoising_grid(denoiser: nn.Module, data: PatchDataset, path: Path, device, sigmas=(0.1, 0.3, 1.0)) -> None:
    """A PNG grid: rows = clean, then (noisy, denoised) per sigma, 8 fixed validation patches."""
    from torchvision.utils import make_grid

    x = data.batch(8, torch.Generator().manual_seed(VALIDATION_SEED)).to(device)
    rows = [x]
    was_training = denoiser.training
    denoiser.eval()
    with torch.no_grad():
        for sigma in sigmas:
            noisy = x + sigma * torch.randn(x.shape, generator=torch.Generator().manual_seed(1)).to(device)
            rows += [noisy.clamp(-1, 1), denoiser(noisy, sigma).clamp(-1, 1)]
    denoiser.train(was_training)
    grid = make_grid(torch.cat(rows).cpu(), nrow=8, padding=2, pad_value=1.0)
    write_image(grid[None], path)


# ----------------------------------------------------------------------------------------------
# NCVSD distillation


def build_distillation_nets(teacher: Denoiser, cfg: DistillConfig):
    """``(generator, fake_score, discriminator or None)``, all initialised from the teacher's UNet."""
    generator_net = GenerativeDenoiser(ConditionalDenoiser.init_from(teacher, "cond", cfg.condition), cfg.gamma)
    fake = ConditionalDenoiser.init_from(teacher, uncertainty_on="main")
    disc = Discriminator.init_from(teacher) if cfg.gan_scale > 0 else None
    return generator_net, fake, disc


def distill(teacher: Callable, generator_net: nn.Module, fake: nn.Module, data: PatchDataset,
            cfg: DistillConfig, out_dir: str | Path, disc: nn.Module | None = None,
            val_images: Tensor | None = None, env: Distributed | None = None, resume: bool = False,
            quiet: bool = False, extra_config: dict | None = None, init_from: str | Path | None = None) -> Run:
    """NCVSD (DESIGN 3.4): per step ``fake_steps`` fake-score updates, a discriminator update
    (when the GAN term is on), one generator update and the generator's EMA.

    ``teacher``: frozen ``D(x, sigma)``; ``generator_net``: ``G(y, sigma, z, return_logvar)``;
    ``fake``: ``f(x_t, t, y, sigma, return_logvar)``; ``disc``: ``d(x_t, t, y, sigma)`` or None.
    ``val_images``: fixed clean batch for the diagnostic (default: ``cfg.val_images`` fixed
    training patches of ``cfg.patch`` pixels). ``resume`` / ``init_from``: where it starts
    (:meth:`Run.start`).
    """
    env = env or Distributed()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    nets = {"generator": generator_net, "fake": fake}
    lrs = {"generator": cfg.lr * cfg.g_lr_scale, "fake": cfg.lr}
    if disc is not None:
        nets["disc"], lrs["disc"] = disc, cfg.lr * cfg.d_lr_scale
    if cfg.logvar_on_t:  # training-only: not part of the shipped generator
        nets["logvar_t"], lrs["logvar_t"] = UncertaintyHead(), cfg.lr
    config = {"distill": to_plain(cfg), **network_description(generator_net), **(extra_config or {})}
    run = Run("distill", nets, lrs, {"generator": clone_frozen(generator_net)}, config, out_dir, env)
    _log_start(run, resume, init_from, quiet)
    losses = NCVSDLoss(cfg)
    per_rank = max(cfg.batch // env.world, 1)
    if val_images is None:
        val_images = data.batch(cfg.val_images, torch.Generator().manual_seed(VALIDATION_SEED))
    val_images = val_images.to(env.device)
    best = {"gap": math.inf}
    best_path = out_dir / "best.json"
    if best_path.exists():
        best["gap"] = json.loads(best_path.read_text()).get("val_gap", math.inf)

    def problem(gen, pairs: bool = False):
        x = data.batch(max(per_rank // 2, 1) if pairs else per_rank, _cpu_generator(gen)).to(env.device)
        y, sigma = losses.draw_problem(x, gen)
        return (x.repeat(2, 1, 1, 1), y.repeat(2, 1, 1, 1), sigma.repeat(2, 1, 1, 1)) if pairs else (x, y, sigma)

    def step(run: Run, gen: torch.Generator) -> dict[str, Tensor]:
        out = {}
        for _ in range(cfg.fake_steps):
            x, y, sigma = problem(gen)
            with torch.no_grad():
                xg = run.module("generator")(y, sigma, generator=gen)
            loss_f = losses.fake_score_loss(run.nets["fake"], xg, y, sigma, gen)
            run.optimize("fake", loss_f, cfg.lr_ref_steps, cfg.rampup_steps, cfg.grad_clip)
        out["loss_f"] = loss_f
        gan_on = disc is not None and cfg.gan_scale > 0 and run.step >= cfg.gan_warmup_steps
        if gan_on:
            loss_d = losses.discriminator_loss(run.nets["disc"], x, xg, y, sigma, gen)
            run.optimize("disc", loss_d, cfg.lr_ref_steps, cfg.rampup_steps, cfg.grad_clip)
            out["loss_d"] = loss_d
        x, y, sigma = problem(gen, pairs=cfg.mean_scale > 0)
        loss_g, _ = losses.generator_loss(run.nets["generator"], teacher, run.module("fake"), y, sigma, gen,
                                          disc=run.module("disc") if gan_on else None,
                                          gan_scale=cfg.gan_scale if gan_on else 0.0,
                                          logvar_t=run.nets["logvar_t"] if cfg.logvar_on_t else None,
                                          mean_scale=cfg.mean_scale)
        trained = ("generator", "logvar_t") if cfg.logvar_on_t else "generator"
        run.optimize(trained, loss_g, cfg.lr_ref_steps, cfg.rampup_steps, cfg.grad_clip)
        update_ema(run.emas["generator"], run.module("generator"), run.step, cfg.ema_std)
        out["loss_g"] = loss_g
        return out

    def log(run: Run, record: dict) -> dict:
        if run.step % cfg.val_every and run.step != cfg.steps:
            return {}
        diag = generator_diagnostic(run.emas["generator"], teacher, val_images, cfg.val_sigmas, seed=cfg.seed)
        if diag["val_gap"] < best["gap"]:  # identical on every rank: same EMA weights, same batch
            best["gap"] = diag["val_gap"]
            path = run.save({**record, **diag})
            if env.is_main:
                checkpoints.link_latest(path, out_dir / "best.safetensors")
                best_path.write_text(json.dumps({"step": run.step, **diag}, indent=2))
        return diag

    images_per_step = per_rank * env.world * (cfg.fake_steps + 1)
    # the diagnostic runs inside a logging step: log at every multiple of val_every too
    log_every = math.gcd(cfg.log_every, cfg.val_every)
    train_loop(run, cfg.steps, step, images_per_step, cfg.checkpoint_every, log_every, cfg.seed,
               on_log=log, quiet=quiet)
    return run

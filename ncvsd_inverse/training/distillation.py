"""NCVSD distillation of a teacher into a generative denoiser (DESIGN 3.4)."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .. import checkpoints
from ..diagnostics import generator_diagnostic
from ..foreign_generator import ForeignConditionalDenoiser
from ..networks import (
    ConditionalDenoiser,
    Discriminator,
    GenerativeDenoiser,
    UncertaintyHead,
    clone_frozen,
)
from ..priors import Prior
from .config import VALIDATION_SEED, DistillConfig, network_description, to_plain
from .data import PatchDataset, cpu_rng
from .loop import Distributed, Run, log_start, train_loop, update_ema
from .losses import NCVSDLoss

Tensor = torch.Tensor


def build_distillation_nets(teacher: nn.Module, cfg: DistillConfig):
    """``(generator, fake_score, discriminator or None)``, all initialised from the teacher: our
    :class:`Denoiser`'s UNet, or a foreign prior's own network (:func:`build_foreign_nets`)."""
    if isinstance(teacher, Prior):
        return build_foreign_nets(teacher, cfg)
    generator_net = GenerativeDenoiser(ConditionalDenoiser.init_from(teacher, "cond", cfg.condition), cfg.gamma)
    fake = ConditionalDenoiser.init_from(teacher, uncertainty_on="main")
    disc = Discriminator.init_from(teacher) if cfg.gan_scale > 0 else None
    return generator_net, fake, disc


def build_foreign_nets(teacher: Prior, cfg: DistillConfig):
    """``(generator, fake_score, None)`` on copies of a foreign prior's network, the condition
    joined at its first convolution (:mod:`~ncvsd_inverse.foreign_generator`); no GAN term, whose
    discriminator needs an encoder known only for this project's UNet (a warning says so when the
    recipe has one)."""
    if cfg.gan_scale > 0:
        warnings.warn(f"gan_scale {cfg.gan_scale} is ignored: the GAN discriminator needs the teacher's encoder, "
                      "known only for this project's UNet; a foreign teacher is distilled without it", stacklevel=2)
    if teacher.description is None:
        raise ValueError(f"{teacher.source}: a distilled generator must rebuild its network from a config; "
                         "distill a diffusers: or deepinv: spec, not a Python object")
    channels = teacher.img_channels or 3
    generator_net = GenerativeDenoiser(ForeignConditionalDenoiser(teacher, channels, "cond"), cfg.gamma)
    return generator_net, ForeignConditionalDenoiser(teacher, channels, "main"), None


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
    run = Run("distill", nets, lrs, {"generator": clone_frozen(generator_net)}, config, out_dir, env,
              cfg.keep_checkpoints, cfg.compile)
    log_start(run, resume, init_from, quiet)
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
        x = data.batch(max(per_rank // 2, 1) if pairs else per_rank, cpu_rng(gen)).to(env.device)
        y, sigma = losses.draw_problem(x, gen)
        return (x.repeat(2, 1, 1, 1), y.repeat(2, 1, 1, 1), sigma.repeat(2, 1, 1, 1)) if pairs else (x, y, sigma)

    def step(run: Run, gen: torch.Generator) -> dict[str, Tensor]:
        out = {}
        for _ in range(cfg.fake_steps):
            x, y, sigma = problem(gen)
            with torch.no_grad():
                xg = run.module("generator")(y, sigma, rng=gen)
            loss_f = losses.fake_score_loss(run.forwards["fake"], xg, y, sigma, gen)
            run.optimize("fake", loss_f, cfg)
        out["loss_f"] = loss_f
        gan_on = disc is not None and cfg.gan_scale > 0 and run.step >= cfg.gan_warmup_steps
        if gan_on:
            loss_d = losses.discriminator_loss(run.nets["disc"], x, xg, y, sigma, gen)
            run.optimize("disc", loss_d, cfg)
            out["loss_d"] = loss_d
        x, y, sigma = problem(gen, pairs=cfg.mean_scale > 0)
        loss_g, _ = losses.generator_loss(run.forwards["generator"], teacher, run.module("fake"), y, sigma, gen,
                                          disc=run.module("disc") if gan_on else None,
                                          gan_scale=cfg.gan_scale if gan_on else 0.0,
                                          logvar_t=run.nets["logvar_t"] if cfg.logvar_on_t else None)
        trained = ("generator", "logvar_t") if cfg.logvar_on_t else "generator"
        run.optimize(trained, loss_g, cfg)
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
               on_log=log, quiet=quiet, precision=cfg.precision)
    return run

"""Training the teacher: EDM2 denoising score matching (DESIGN 3.1)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..io import write_image
from ..networks import clone_frozen
from .config import VALIDATION_SEED, TeacherConfig, network_description, to_plain
from .data import PatchDataset, cpu_rng
from .loop import Distributed, Run, log_start, train_loop, update_ema
from .losses import TeacherLoss

Tensor = torch.Tensor


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
    run = Run("teacher", {"teacher": teacher}, {"teacher": cfg.lr}, {"teacher": ema}, config, out_dir, env,
              cfg.keep_checkpoints, cfg.compile)
    log_start(run, resume, init_from, quiet)
    loss_fn = TeacherLoss(cfg.p_mean, cfg.p_std)
    per_rank = max(cfg.batch // env.world, 1)

    def step(run: Run, gen: torch.Generator) -> dict[str, Tensor]:
        x = data.batch(per_rank, cpu_rng(gen)).to(env.device)
        loss = loss_fn(run.forwards["teacher"], x, gen)
        run.optimize("teacher", loss, cfg)
        update_ema(run.emas["teacher"], run.module("teacher"), run.step, cfg.ema_std)
        return {"loss": loss}

    grid_drawn = {"step": run.step}

    def log(run: Run, record: dict) -> dict:
        # samples.png once per checkpoint interval and at the end: at every log it cost a few percent of the time
        due = run.step - grid_drawn["step"] >= cfg.checkpoint_every or run.step == cfg.steps
        if env.is_main and due:
            save_denoising_grid(run.module("teacher"), data, out_dir / "samples.png", env.device)
            grid_drawn["step"] = run.step
        return {}

    train_loop(run, cfg.steps, step, per_rank * env.world, cfg.checkpoint_every, cfg.log_every, cfg.seed,
               on_log=log, quiet=quiet, precision=cfg.precision)
    return run


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

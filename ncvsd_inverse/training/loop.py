"""The training loop shared by both trainers: distributed set-up, learning rate, EMA, the
resumable ``Run`` state, stop requests and ``train_loop``."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from .. import checkpoints, machine
from ..machine import describe_machine
from ..networks import compile_for_training
from .config import RecipeConfig
from .data import step_generator

Tensor = torch.Tensor


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


def learning_rate(step: int, lr: float, recipe: RecipeConfig) -> float:
    """The learning rate of step ``step`` (0-based) of a run of ``recipe.steps``, base rate ``lr``:
    EDM2's ``lr / sqrt(max(step / lr_ref_steps, 1))``, ramped up linearly over ``rampup_steps``,
    and times ``(steps - step) / cooldown_steps`` over the last ``cooldown_steps`` (a linear decay
    to zero at the end of the run, as in warmup-stable-decay schedules; Hagele et al. 2024,
    arXiv 2405.18392). Resuming with more ``steps`` moves the decay to the new end."""
    rate = lr / math.sqrt(max(step / max(recipe.lr_ref_steps, 1), 1.0))
    if recipe.rampup_steps > 0:
        rate *= min(step / recipe.rampup_steps, 1.0)
    if recipe.cooldown_steps > 0:
        rate *= min(max(recipe.steps - step, 0) / recipe.cooldown_steps, 1.0)
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


class Run:
    """Networks, optimisers and EMA copies of one training run, with checkpoint save/resume.

    ``nets``: trainable modules by name (wrapped in DDP when ``world > 1``); ``emas``: EMA copies
    by name of the network they follow; ``lrs``: base learning rate per network;
    ``keep_checkpoints``: how many of the newest checkpoints each save leaves (0: all).
    ``forwards``: what the trainers call for a network's training-mode forward pass with
    gradients: the net itself, or with ``compile`` its compiled form (:func:`compile_for_training`).
    """

    def __init__(self, kind: str, nets: dict[str, nn.Module], lrs: dict[str, float], emas: dict[str, nn.Module],
                 config: dict, out_dir: Path, env: Distributed, keep_checkpoints: int = 0, compile: bool = False):
        self.kind, self.config, self.out_dir, self.env = kind, config, Path(out_dir), env
        self.keep_checkpoints = keep_checkpoints
        self.saved: tuple[int, Path | None] | None = None  # (step, file) of the last save
        self.nets = {}
        for name, net in nets.items():
            net.to(env.device).train()
            self.nets[name] = (nn.parallel.DistributedDataParallel(net) if env.world > 1 else net)
        self.compiled = compile
        self.forwards = {name: compile_for_training(net) if compile else net for name, net in self.nets.items()}
        self.emas = {name: ema.to(env.device) for name, ema in emas.items()}
        self.lrs = lrs
        self.optimizers = {name: torch.optim.Adam(net.parameters(), lr=lrs[name], betas=(0.9, 0.99), eps=1e-8)
                           for name, net in nets.items()}
        self.step = 0
        self.nonfinite_skipped = 0  # optimiser steps skipped for a NaN/Inf gradient (reported in stats)

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
        """Checkpoint (rank 0 writes; every rank must call it: it checks the ranks are in sync),
        then delete the checkpoints beyond the newest ``keep_checkpoints`` (none that a link holds).
        A second call at the same step writes nothing and returns the first's file (a distillation
        step that is both a new best and a checkpoint step, or a stop right after a checkpoint)."""
        if self.saved is not None and self.saved[0] == self.step:
            return self.saved[1]
        divergence = self.rank_divergence()
        path = None
        if self.env.is_main:
            config = {"kind": self.kind, "world_size": self.env.world, **self.config}
            stats = {**(stats or {}), "rank_weight_divergence": divergence}
            path = checkpoints.save_checkpoint(self.out_dir, self.step, self.tensors(), config, stats)
            if self.keep_checkpoints > 0:
                checkpoints.prune_checkpoints(self.out_dir, self.keep_checkpoints)
        self.saved = (self.step, path)
        return path

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

    def optimize(self, names: str | tuple[str, ...], loss: Tensor, recipe: RecipeConfig) -> None:
        """One Adam step of each network in ``names`` on the mean of ``loss`` (one backward pass),
        each with its scheduled learning rate (:func:`learning_rate` of ``recipe``);
        ``recipe.grad_clip`` applies per network.

        Non-finite guard, whatever ``grad_clip``: if any gradient holds a NaN or Inf, no network
        steps and :attr:`nonfinite_skipped` counts it (DDP has averaged the gradients, so every
        rank decides the same). A NaN never reaches the weights or Adam's moments.
        """
        names = (names,) if isinstance(names, str) else names
        for name in names:
            self.optimizers[name].zero_grad(set_to_none=True)
        with torch.autocast(self.env.device.type, enabled=False):  # the forward's autocast stops here
            loss.mean().backward()
        grads = [p.grad for name in names for p in self.module(name).parameters() if p.grad is not None]
        if grads and not bool(torch.stack([g.isfinite().all() for g in grads]).all()):
            for name in names:
                self.optimizers[name].zero_grad(set_to_none=True)
            self.nonfinite_skipped += 1
            return
        for name in names:
            optimizer = self.optimizers[name]
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(self.step, self.lrs[name], recipe)
            if recipe.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.module(name).parameters(), recipe.grad_clip)
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


def log_start(run: Run, resume: bool, init_from: str | Path | None, quiet: bool) -> None:
    message = run.start(resume, init_from)
    if message and run.env.is_main and not quiet:
        tqdm.write(message)


def record_session(run: Run, event: str, precision: str | None = None) -> None:
    """Append one line to ``out_dir/sessions.jsonl`` (main process) when a (re)start of the run
    begins (``event`` "start") or ends ("end": finished, stopped or failed): the step, the UTC
    time, and at a start the machine (:func:`~ncvsd_inverse.machine.describe_machine`), the
    number of processes, the resolved ``precision`` and whether the forwards are compiled. A run
    resumed on several machines says so: which machine trained which steps, for its model card."""
    if not run.env.is_main:
        return
    line = {"event": event, "step": run.step, "utc": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if event == "start":
        line.update(machine=describe_machine(run.env.device), processes=run.env.world, precision=precision,
                    compile=run.compiled)
    with (run.out_dir / "sessions.jsonl").open("a") as handle:
        handle.write(json.dumps(line) + "\n")


def train_loop(run: Run, steps: int, step_fn: Callable[[Run, torch.Generator], dict[str, Tensor]],
               images_per_step: int, checkpoint_every: int, log_every: int, seed: int,
               on_log: Callable[[Run, dict], dict] | None = None, quiet: bool = False,
               precision: str = "float32") -> dict:
    """Run ``step_fn`` until ``run.step == steps``: JSONL stats, checkpoints, progress bar.

    ``step_fn(run, rng)`` does one training step and returns losses; it runs under bfloat16
    autocast when ``precision`` resolves to bfloat16 (:func:`~ncvsd_inverse.machine.resolve_precision`;
    :meth:`Run.optimize` runs the backward pass and the optimiser outside it). ``on_log`` may add
    validation numbers to a log record (float32). Ctrl-C or SIGTERM checkpoints after the current
    step and raises ``KeyboardInterrupt``. A record's ``s_per_step`` and ``images_per_s`` time the
    steps alone (not validation, checkpoints or logging); ``sessions.jsonl`` holds the wall times.
    """
    device_type = run.env.device.type
    resolved = machine.resolve_precision(precision, device_type)
    autocast = resolved == "bfloat16"
    if autocast and not machine.native_bfloat16(device_type):
        machine.warn_emulated_bfloat16(device_type)
    stats_path = run.out_dir / "stats.jsonl"
    bar = tqdm(total=steps, initial=run.step, disable=quiet or not run.env.is_main, unit="step",
               dynamic_ncols=True)
    record, sums, count, step_seconds = {}, {}, 0, 0.0
    record_session(run, "start", resolved)
    with StopRequest() as stop:
        try:
            while run.step < steps:
                started = time.perf_counter()
                with torch.autocast(device_type, dtype=torch.bfloat16, enabled=autocast):
                    losses = step_fn(run, step_generator(seed, run.step, run.env.rank, run.env.device))
                run.step += 1
                for key, value in losses.items():
                    sums[key] = sums.get(key, 0.0) + _reduce_mean(value, run.env)
                step_seconds += time.perf_counter() - started
                count += 1
                bar.update(1)
                if run.step % log_every == 0 or run.step == steps:
                    record = {"step": run.step, **{k: v / count for k, v in sums.items()},
                              "images_per_s": images_per_step * count / max(step_seconds, 1e-9),
                              "s_per_step": step_seconds / count, "nonfinite_skipped": run.nonfinite_skipped}
                    if on_log is not None:
                        record.update(on_log(run, record))
                    if run.env.is_main:
                        with stats_path.open("a") as handle:
                            handle.write(json.dumps(record) + "\n")
                        bar.set_postfix({k: f"{v:.3g}" for k, v in record.items()
                                         if k in ("loss", "loss_g", "images_per_s")})
                    sums, count, step_seconds = {}, 0, 0.0
                if run.step % checkpoint_every == 0 or run.step == steps:
                    run.save(record)
                if stop.any_rank(run.env):
                    path = run.save(record)
                    if run.env.is_main:
                        tqdm.write(f"stopped at step {run.step}; checkpoint {path}; continue with --resume")
                    raise KeyboardInterrupt
        finally:
            bar.close()
            record_session(run, "end")
    return record


# ----------------------------------------------------------------------------------------------

"""Checkpoints: ``safetensors`` weights + a readable JSON config beside them; no pickle.

A checkpoint ``DIR/checkpoint-0001000.safetensors`` holds every tensor of a run (networks,
EMA copies, optimiser moments) under prefixes (``teacher.``, ``ema.``, ``opt.teacher.`` ...);
``DIR/checkpoint-0001000.json`` holds the config, the step and the latest stats. The same
config is embedded in the safetensors metadata so that one file is self-describing.
``DIR/latest.safetensors`` / ``DIR/latest.json`` are links to the newest pair.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from ncvsd_inverse.files import atomic_write, atomic_write_text

Tensor = torch.Tensor


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt or does not match its config (one-line message)."""


def git_revision() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def optimizer_tensors(optimizer: torch.optim.Optimizer, prefix: str) -> dict[str, Tensor]:
    """Flatten an optimiser's per-parameter state into named tensors."""
    tensors = {}
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            tensors[f"{prefix}.{index}.{key}"] = torch.as_tensor(value).detach().cpu().clone()
    return tensors


def load_optimizer_tensors(optimizer: torch.optim.Optimizer, tensors: dict[str, Tensor], prefix: str) -> None:
    """Inverse of :func:`optimizer_tensors` (hyper-parameters come from the current optimiser)."""
    state_dict = optimizer.state_dict()
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            index, key = name[len(prefix) + 1:].split(".", 1)
            state.setdefault(int(index), {})[key] = value
    state_dict["state"] = state
    optimizer.load_state_dict(state_dict)


def link_latest(target: Path, link: Path) -> None:
    """Point ``link`` at ``target`` (a file in the same folder), replacing it atomically."""
    temp = link.with_name(f".{link.name}.tmp")
    temp.unlink(missing_ok=True)
    temp.symlink_to(target.name)
    os.replace(temp, link)


def save_checkpoint(out_dir: str | Path, step: int, tensors: dict[str, Tensor], config: dict,
                    stats: dict | None = None) -> Path:
    """Write ``checkpoint-<step>.safetensors`` + ``.json`` atomically and point ``latest`` at them."""
    out_dir = Path(out_dir)
    stem = out_dir / f"checkpoint-{step:07d}"
    meta = {"step": step, "config": config, "stats": stats or {}, "git": git_revision()}
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    atomic_write(stem.with_suffix(".safetensors"),
                 lambda temp: save_file(tensors, temp, metadata={"ncvsd": json.dumps(meta)}))
    atomic_write_text(stem.with_suffix(".json"), json.dumps(meta, indent=2))
    link_latest(stem.with_suffix(".safetensors"), out_dir / "latest.safetensors")
    link_latest(stem.with_suffix(".json"), out_dir / "latest.json")
    return stem.with_suffix(".safetensors")


def prune_checkpoints(out_dir: str | Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` (``keep`` >= 1) ``checkpoint-<step>`` files of a run
    folder, each ``.safetensors`` with its ``.json``; never one that a link in the folder
    (``latest``, ``best``) points at. Returns the weights files deleted, oldest first."""
    out_dir = Path(out_dir)
    by_step = sorted(out_dir.glob("checkpoint-*.safetensors"), key=lambda p: int(p.stem.split("-")[-1]))
    linked = {link.resolve() for link in out_dir.glob("*.safetensors") if link.is_symlink()}
    deleted = []
    for weights in by_step[:-keep]:
        if weights.resolve() not in linked:
            weights.unlink()
            weights.with_suffix(".json").unlink(missing_ok=True)
            deleted.append(weights)
    return deleted


def resolve_checkpoint(path: str | Path) -> Path:
    """A ``.safetensors`` file, or a run folder (its ``latest.safetensors``)."""
    path = Path(path)
    if path.is_dir():
        path = path / "latest.safetensors"
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint")
    return path.resolve()


def read_checkpoint(path: str | Path) -> tuple[dict[str, Tensor], dict]:
    """``(tensors, meta)`` of a checkpoint file or run folder; never unpickles."""
    path = resolve_checkpoint(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({error})") from None
    if "ncvsd" not in metadata:
        raise CheckpointError(f"{path}: safetensors file without an ncvsd-inverse config")
    return tensors, json.loads(metadata["ncvsd"])


def load_module(module: torch.nn.Module, tensors: dict[str, Tensor], prefix: str, source: str) -> None:
    """Load ``prefix.*`` tensors into ``module`` strictly; a mismatch is one clear error."""
    state = {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        which = f"missing {prefix}.{missing[0]}" if missing else f"unexpected {prefix}.{unexpected[0]}"
        raise CheckpointError(f"{source}: tensors do not match the config ({which})")
    for key, value in expected.items():
        if tuple(value.shape) != tuple(state[key].shape):
            raise CheckpointError(f"{source}: tensors do not match the config ({prefix}.{key} has shape "
                                  f"{tuple(state[key].shape)}, the config needs {tuple(value.shape)})")
    module.load_state_dict(state)

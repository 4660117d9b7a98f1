"""Start a fine-tune on a lent GPU from a run's checkpoint without carrying the whole checkpoint.

A distillation checkpoint (57 MB with its optimiser moments) does not fit beside the training
data in what travels to the device machine (64 MiB). The shipped generator file already holds
the generator's EMA weights, so only the fake score has to travel:

    python lab/levers/device_init.py split runs/ft-lowlr/checkpoint-0004200.safetensors \
        .devcarry/fake-4200.safetensors
    # on the device machine:
    python lab/levers/device_init.py join .devcarry/fake-4200.safetensors \\
        ncvsd_inverse/default_model/generator.safetensors /tmp/init.safetensors
    ncvsd-distill ... --init-from /tmp/init.safetensors

A teacher goes on from the shipped model file alone (``teacher``: raw weights from its EMA):

    python lab/levers/device_init.py teacher ncvsd_inverse/default_model/teacher.safetensors /tmp/t.safetensors
    ncvsd-train --preset lab/levers/gpu-teacher-4level.yaml --init-from /tmp/t.safetensors ...

A run that goes on in a later session on the CPU can be committed without its optimiser
moments (less than half the size; ``--resume`` from it restarts Adam's moments from zero):

    python lab/levers/device_init.py slim runs/ncvsd-4level lab/runs/ncvsd-4level

The joined checkpoint starts the generator's raw weights from its EMA weights and the optimisers
from zero moments (no ``opt.*`` tensors): a fine-tune from it is not the bit-for-bit continuation
that ``--resume`` gives, so compare it against a control run started the same way.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ncvsd_inverse.checkpoints import read_checkpoint, save_checkpoint  # noqa: E402
from ncvsd_inverse.cli.export import write_model_file  # noqa: E402


def split(checkpoint: Path, out: Path) -> None:
    """``out``: the checkpoint's ``fake.*`` tensors and its metadata."""
    tensors, meta = read_checkpoint(checkpoint)
    fake = {k: v for k, v in tensors.items() if k.startswith("fake.")}
    if meta["config"].get("kind") != "distill" or not fake:
        raise SystemExit(f"{checkpoint}: not a distillation checkpoint")
    _write(out, fake, meta["config"], meta)


def raw_from_ema(exported: dict, network: str) -> dict:
    """An exported model file's ``ema.<network>.*`` tensors, and the same values as the raw
    weights ``<network>.*`` (a run then starts its raw weights from the EMA)."""
    prefix = f"ema.{network}."
    tensors = dict(exported)
    for name, value in exported.items():
        tensors[network + "." + name[len(prefix):]] = value.clone()
    return tensors


def join(fake_file: Path, generator_file: Path, out: Path) -> None:
    """``out``: a distillation checkpoint with the generator (raw and EMA) from ``generator_file``
    (an exported model file) and the fake score from ``fake_file``; no optimiser state."""
    fake, meta = read_checkpoint(fake_file)
    exported, generator_meta = read_checkpoint(generator_file)
    if generator_meta["step"] != meta["step"]:
        raise SystemExit(f"{generator_file} is step {generator_meta['step']}, {fake_file} step {meta['step']}")
    tensors = {**fake, **raw_from_ema(exported, "generator")}
    config = {**meta["config"], "joined_from": [str(fake_file), str(generator_file)]}
    _write(out, tensors, config, meta)


def teacher(model_file: Path, out: Path) -> None:
    """``out``: a teacher checkpoint from an exported teacher (the shipped one travels as 21 MB,
    its run's checkpoint with Adam's moments as 84): raw weights and EMA both its EMA weights, no
    optimiser state, at its step; ``ncvsd-train --init-from`` goes on from there."""
    exported, meta = read_checkpoint(model_file)
    if meta["config"].get("kind") != "teacher":
        raise SystemExit(f"{model_file}: not an exported teacher")
    _write(out, raw_from_ema(exported, "teacher"), {**meta["config"], "joined_from": [str(model_file)]}, meta)


def slim(checkpoint: Path, out_dir: Path) -> None:
    """``out_dir/latest.safetensors`` (+ ``.json``), plain files: the checkpoint (file or run folder)
    without its optimiser moments (``opt.*``), at the same step; a run folder to ``--resume``."""
    tensors, meta = read_checkpoint(checkpoint)
    kept = {k: v for k, v in tensors.items() if not k.startswith("opt.")}
    config = {**meta["config"], "slimmed_from": str(checkpoint)}
    out_dir.mkdir(parents=True, exist_ok=True)
    written = save_checkpoint(out_dir, meta["step"], kept, config, meta.get("stats"))
    for suffix in (".safetensors", ".json"):
        os.replace(written.with_suffix(suffix), out_dir / f"latest{suffix}")


def _write(out: Path, tensors: dict, config: dict, meta: dict) -> None:
    """``out`` (+ ``.json``) at ``meta``'s step, written like an exported model file."""
    if out.suffix != ".safetensors":
        raise SystemExit(f"{out}: the output must be a .safetensors file")
    write_model_file(out.parent, out.stem, tensors, config, meta["step"], meta.get("stats"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("split")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("out", type=Path)
    p = sub.add_parser("join")
    p.add_argument("fake_file", type=Path)
    p.add_argument("generator_file", type=Path)
    p.add_argument("out", type=Path)
    p = sub.add_parser("slim")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("out_dir", type=Path)
    p = sub.add_parser("teacher")
    p.add_argument("model_file", type=Path)
    p.add_argument("out", type=Path)
    args = parser.parse_args()
    if args.action == "split":
        split(args.checkpoint, args.out)
    elif args.action == "join":
        join(args.fake_file, args.generator_file, args.out)
    elif args.action == "teacher":
        teacher(args.model_file, args.out)
    else:
        slim(args.checkpoint, args.out_dir)


if __name__ == "__main__":
    main()

"""Average the EMA networks of several checkpoints of one run (a longer EMA after the fact).

Usage: ``python lab/levers/average_checkpoints.py runs/ncvsd3/checkpoint-0000600.safetensors
runs/ncvsd3/checkpoint-0000800.safetensors runs/ncvsd3/checkpoint-0001000.safetensors --out runs/avg``
writes ``runs/avg/generator.safetensors``: the ``ema.generator.*`` tensors averaged with equal weights,
the config of the last checkpoint plus ``averaged_from``. ``load_model`` and ``tune_solver.py --model``
read it like any exported generator. ``--role teacher`` does the same for an ``ncvsd-train`` run's
``ema.teacher.*`` tensors and writes ``teacher.safetensors``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ncvsd_inverse.checkpoints import read_checkpoint  # noqa: E402
from ncvsd_inverse.cli.export import write_model_file  # noqa: E402


def average_ema(sources: list[Path], out_dir: Path, role: str = "generator") -> Path:
    """Write ``out_dir/<role>.safetensors``: the mean of the sources' ``ema.<role>.*`` tensors."""
    prefix = f"ema.{role}."
    total, meta = None, None
    for source in sources:
        tensors, meta = read_checkpoint(source)
        ema = {k: v.double() for k, v in tensors.items() if k.startswith(prefix)}
        if not ema:
            raise SystemExit(f"{source}: no {prefix}* weights")
        if total is not None and ema.keys() != total.keys():
            raise SystemExit(f"{source}: not the same network as {sources[0]}")
        total = ema if total is None else {k: total[k] + ema[k] for k in total}
    averaged = {k: (v / len(sources)).float() for k, v in total.items()}
    config = {**meta["config"], "averaged_from": [str(s) for s in sources], "step": meta["step"]}
    return write_model_file(out_dir, role, averaged, config, meta["step"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", type=Path, nargs="+", help="checkpoints of one ncvsd-distill or ncvsd-train run")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--role", choices=["generator", "teacher"], default="generator")
    args = parser.parse_args()
    print(average_ema(args.sources, args.out, args.role))


if __name__ == "__main__":
    main()

"""Average the EMA generators of several checkpoints of one distillation run (a longer EMA after the fact).

Usage: ``python lab/levers/average_checkpoints.py runs/ncvsd3/checkpoint-0000600.safetensors
runs/ncvsd3/checkpoint-0000800.safetensors runs/ncvsd3/checkpoint-0001000.safetensors --out runs/avg``
writes ``runs/avg/generator.safetensors``: the ``ema.generator.*`` tensors averaged with equal weights,
the config of the last checkpoint plus ``averaged_from``. ``load_model`` and ``tune_solver.py --model``
read it like any exported generator.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ncvsd_inverse.checkpoints import read_checkpoint  # noqa: E402
from ncvsd_inverse.cli.export import write_model_file  # noqa: E402

PREFIX = "ema.generator."


def average_generators(sources: list[Path], out_dir: Path) -> Path:
    """Write ``out_dir/generator.safetensors``: the mean of the sources' ``ema.generator.*`` tensors."""
    total, meta = None, None
    for source in sources:
        tensors, meta = read_checkpoint(source)
        ema = {k: v.double() for k, v in tensors.items() if k.startswith(PREFIX)}
        if not ema:
            raise SystemExit(f"{source}: no {PREFIX}* weights")
        if total is not None and ema.keys() != total.keys():
            raise SystemExit(f"{source}: not the same network as {sources[0]}")
        total = ema if total is None else {k: total[k] + ema[k] for k in total}
    averaged = {k: (v / len(sources)).float() for k, v in total.items()}
    config = {**meta["config"], "averaged_from": [str(s) for s in sources], "step": meta["step"]}
    return write_model_file(out_dir, "generator", averaged, config, meta["step"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", type=Path, nargs="+", help="ncvsd-distill checkpoints of one run")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    print(average_generators(args.sources, args.out))


if __name__ == "__main__":
    main()

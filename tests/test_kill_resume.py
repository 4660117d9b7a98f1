"""Nothing lost: training killed with SIGKILL at random moments, three times, and resumed each
time ends with exactly the weights (and optimiser state) of an uninterrupted run, and never
leaves an unreadable ``latest`` checkpoint."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ncvsd_inverse.checkpoints import read_checkpoint

ROOT = Path(__file__).resolve().parents[1]
PRESET = """base: tiny
teacher: {steps: 240, checkpoint_every: 8, log_every: 8}
distill: {steps: 48, checkpoint_every: 4, log_every: 4, val_every: 24}
"""


def _command(stage: str, out: Path, data_dir: Path, preset: Path, teacher: Path | None) -> list[str]:
    command = [sys.executable, "-m", "ncvsd_inverse.cli.train", stage, "--preset", str(preset), "--data",
               str(data_dir), "--out", str(out), "--quiet", "--device", "cpu"]
    if teacher is not None:
        command += ["--teacher", str(teacher)]
    if (out / "latest.safetensors").exists():
        command.append("--resume")
    return command


def _latest_step(out: Path) -> int:
    try:
        return json.loads((out / "latest.json").read_text())["step"]
    except (OSError, ValueError):
        return 0


def _train(stage, out, data_dir, preset, teacher=None, kill_after=None, rng=None):
    """Run one training process to the end, or SIGKILL it a little after its checkpoint reaches
    ``kill_after`` steps (a random 0-0.3 s later, to land anywhere in a step or a write)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(_command(stage, out, data_dir, preset, teacher), env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if kill_after is None:
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-2000:]
        return
    deadline = time.time() + 300
    while process.poll() is None and _latest_step(out) < kill_after and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(rng.uniform(0.0, 0.3))
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    if (out / "latest.safetensors").exists():  # whatever the moment, `latest` stays readable
        read_checkpoint(out)


@pytest.mark.parametrize("stage", ["teacher", "distill"])
def test_sigkill_three_times_then_resume_equals_an_uninterrupted_run(tmp_path, data_dir, tiny_models, stage):
    preset = tmp_path / "preset.yaml"
    preset.write_text(PRESET)
    teacher = tiny_models[0] if stage == "distill" else None
    total = 240 if stage == "teacher" else 48
    _train(stage, tmp_path / "straight", data_dir, preset, teacher)
    rng = random.Random(stage)
    killed = tmp_path / "killed"
    for kill_after in sorted(rng.sample(range(1, total - 4), 3)):
        _train(stage, killed, data_dir, preset, teacher, kill_after=kill_after, rng=rng)
    _train(stage, killed, data_dir, preset, teacher)
    straight, _ = read_checkpoint(tmp_path / "straight")
    resumed, meta = read_checkpoint(killed)
    assert meta["step"] == total and straight.keys() == resumed.keys()
    different = [name for name in straight if not torch.equal(straight[name], resumed[name])]
    assert not different, different[:5]

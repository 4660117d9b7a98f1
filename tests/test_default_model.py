"""The shipped default model loads offline and runs (the README's main job, in miniature)."""

import json
from pathlib import Path

import torch

from ncvsd_inverse import load_model, solve
from ncvsd_inverse.networks import Denoiser, GenerativeDenoiser

MODEL_DIR = Path(__file__).resolve().parents[1] / "ncvsd_inverse" / "default_model"


def test_default_model_loads_and_solves():
    generator, teacher = load_model(), load_model(kind="teacher")
    assert isinstance(generator, GenerativeDenoiser) and isinstance(teacher, Denoiser)
    for name in ("generator", "teacher"):
        assert json.loads((MODEL_DIR / f"{name}.json").read_text())["config"]["network"]["model_channels"] == 32
    y = torch.zeros(1, 3, 8, 8)
    result = solve(y, "sr4x", steps=2, device="cpu")
    assert result.mean.shape == (1, 3, 32, 32) and torch.isfinite(result.mean).all()
    # the teacher actually denoises: on a smooth image its error is far below the noise
    x = torch.linspace(-0.5, 0.5, 32).reshape(1, 1, 1, 32).expand(1, 3, 32, 32)
    noisy = x + 0.2 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert ((teacher(noisy, 0.2) - x) ** 2).mean() < 0.25 * ((noisy - x) ** 2).mean()

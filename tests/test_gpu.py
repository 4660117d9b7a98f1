"""CUDA paths (skipped without a GPU): distillation with device generators, bfloat16 solving under CUDA autocast."""

import dataclasses

import pytest
import torch

from ncvsd_inverse import solve, training
from ncvsd_inverse.networks import build_teacher

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")


def test_distillation_steps_on_cuda_with_gan_and_logvar_t(tmp_path, data_dir):
    teacher_cfg, cfg = training.load_preset("tiny")
    cfg = dataclasses.replace(cfg, steps=3, checkpoint_every=100, val_every=3, gan_scale=0.1, gan_warmup_steps=1,
                              logvar_on_t=True)
    env = training.Distributed(device=torch.device("cuda"))
    torch.manual_seed(0)
    teacher = build_teacher(teacher_cfg.network).to("cuda").eval().requires_grad_(False)
    generator_net, fake, disc = training.build_distillation_nets(teacher, cfg)
    data = training.PatchDataset(data_dir, cfg.patch)
    run = training.distill(teacher, generator_net, fake, data, cfg, tmp_path, disc=disc, env=env, quiet=True)
    assert run.step == 3
    assert all(t.isfinite().all() for t in run.tensors().values())
    assert (tmp_path / "best.json").exists()  # the diagnostic ran on the GPU


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_shipped_model_solves_sr4x_on_cuda(precision):
    ramp = torch.linspace(-0.8, 0.8, 16)
    low = torch.stack([ramp[None, :] * ramp[:, None], ramp[None, :].expand(16, 16), ramp[:, None].expand(16, 16)])[None]

    def misfit(device, precision):
        result = solve(low, task="sr4x", steps=10, device=device, precision=precision)
        assert result.mean.shape == (1, 3, 64, 64) and result.mean.isfinite().all()
        return float((torch.nn.functional.avg_pool2d(result.mean.cpu(), 4) - low).abs().mean())

    # the same chain up to the noise draws: it fits the measurement as well as on the CPU
    assert misfit("cuda", precision) < 1.5 * misfit("cpu", "float32") + 0.02


def test_metrics_accept_a_cuda_estimate_and_a_cpu_reference():
    from ncvsd_inverse import metrics
    clean = torch.rand(2, 3, 16, 16) * 2 - 1
    noisy = clean + 0.1 * torch.randn(clean.shape)
    assert torch.allclose(metrics.psnr(noisy.cuda(), clean).cpu(), metrics.psnr(noisy, clean), atol=1e-4)
    assert torch.allclose(metrics.ssim(noisy.cuda(), clean).cpu(), metrics.ssim(noisy, clean), atol=1e-4)


def test_smoke_suite_on_cuda_matches_its_methods_and_tiles(tmp_path):
    """Every benchmark method runs on a GPU (models, physics and problems on the device, scores
    on the CPU), and a tiled solve there equals the untiled one."""
    from pathlib import Path

    from ncvsd_inverse.bench import load_suite, run_suite

    smoke = Path(__file__).resolve().parents[1] / "benchmarks" / "suites" / "smoke.yaml"
    records = run_suite(load_suite(smoke), tmp_path / "out", device="cuda", progress=False)
    assert records and all(r["psnr"] > 0 for r in records)
    y = torch.rand(1, 3, 96, 96, device="cuda") * 2 - 1
    untiled = solve(y, "sr4x", steps=2, device="cuda", tile=None)
    tiled = solve(y, "sr4x", steps=2, device="cuda", tile=256)
    assert (tiled.mean - untiled.mean).abs().max() < 1e-3

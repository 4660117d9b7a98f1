"""Trainers: closed-form targets, bitwise resume, torchrun with 2 ranks, checkpoints, CLI errors."""

import dataclasses
import json
import math
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from analytic import GaussianPrior, MixturePrior, MLPBackbone, TeacherInitialisedBackbone
from click.testing import CliRunner
from torch import nn

from ncvsd_inverse import training
from ncvsd_inverse.checkpoints import CheckpointError, prune_checkpoints, read_checkpoint, save_checkpoint
from ncvsd_inverse.cli.train import cpp_compiler, distill_main, train_main
from ncvsd_inverse.edm import edm_loss_weight
from ncvsd_inverse.models import load_generator, load_teacher
from ncvsd_inverse.networks import ConditionalDenoiser, Denoiser, GenerativeDenoiser, MPConv, build_teacher
from ncvsd_inverse.training import check_ranges

ROOT = Path(__file__).resolve().parents[1]


def small_distill_config(**changes):
    base = dict(batch=256, lr=3e-3, g_lr_scale=0.3, lr_ref_steps=10**6, rampup_steps=0, sigma_min=0.2,
                sigma_max=1.0, sigma_levels=3, sigma_rho=1.0, steps=800, checkpoint_every=10**6,
                log_every=10**6, val_every=10**6, ema_std=0.0, grad_clip=0.0, val_sigmas=(0.5,),
                val_images=4, fake_steps=3)
    return training.DistillConfig(**{**base, **changes})


def test_teacher_loss_learns_the_exact_gaussian_denoiser(tmp_path):
    torch.manual_seed(0)
    prior = GaussianPrior((1, 2, 2))
    teacher = Denoiser(MLPBackbone(prior.shape))
    cfg = training.TeacherConfig(batch=256, lr=3e-3, lr_ref_steps=10**6, rampup_steps=0, steps=600,
                                 checkpoint_every=10**6, log_every=10**6, ema_std=0.0)
    gen = torch.Generator().manual_seed(1)
    x = prior.sample(4000, gen)

    def excess_mse(net, sigma):
        noisy = x + sigma * torch.randn(x.shape, generator=gen)
        with torch.no_grad():
            return float(((net(noisy, sigma) - prior.denoise(noisy, sigma)) ** 2).mean()
                         / ((x - prior.denoise(noisy, sigma)) ** 2).mean())

    before = [excess_mse(teacher.eval(), s) for s in (0.1, 0.5, 1.0)]
    run = training.train_teacher(teacher, prior, cfg, tmp_path, quiet=True)
    after = [excess_mse(run.module("teacher").eval(), s) for s in (0.1, 0.5, 1.0)]
    # excess error over the MMSE, relative to the MMSE: a few percent after training
    assert max(after) < 0.1 and all(a < 0.2 * b for a, b in zip(after, before)), (before, after)


def posterior_errors(generator_net, prior, sigmas=(0.2, 0.6, 1.0)):
    """Per (sigma, y): max |mean error| in posterior stds, relative Frobenius covariance error."""
    errors = []
    gen = torch.Generator().manual_seed(7)
    for sigma in sigmas:
        x0 = prior.sample(2, gen)
        for i in range(2):
            y = x0[i:i + 1] + sigma * torch.randn(1, *prior.shape, generator=gen)
            mean, cov = prior.posterior(y, sigma)
            with torch.no_grad():
                draws = generator_net(y.expand(4000, -1, -1, -1), sigma).reshape(4000, -1).double()
            mean_err = ((draws.mean(0) - mean[0]) / cov.diagonal().sqrt()).abs().max()
            cov_err = torch.linalg.norm(torch.cov(draws.T) - cov) / torch.linalg.norm(cov)
            errors.append((float(mean_err), float(cov_err)))
    return errors


def test_ncvsd_distills_the_gaussian_posterior(tmp_path):
    """Exact Gaussian teacher, GAN off: G(y, sigma) samples match p(x | y) in mean and covariance."""
    torch.manual_seed(0)
    prior = GaussianPrior((1, 2, 2))
    generator_net = GenerativeDenoiser(ConditionalDenoiser(TeacherInitialisedBackbone(prior, prior.shape),
                                                           uncertainty_on="cond"))
    fake = ConditionalDenoiser(TeacherInitialisedBackbone(prior, prior.shape))
    before = posterior_errors(generator_net, prior)
    run = training.distill(prior, generator_net, fake, prior, small_distill_config(), tmp_path, quiet=True)
    after = posterior_errors(run.emas["generator"], prior)
    # tolerance: mean within 0.45 posterior std per pixel, covariance within 35 % (Frobenius)
    assert all(m < 0.45 and c < 0.35 for m, c in after), after
    assert sum(c for _, c in after) < 0.4 * sum(c for _, c in before), (before, after)


def test_posterior_mean_bias_estimates_the_squared_bias_whatever_the_spread():
    """Two independent samples ``D + b + s z``: the estimate averages to ``mean(b^2)`` for any
    spread ``s``; minimising it removes ``b`` and leaves ``s`` alone, where the square of one
    deviation would also shrink ``s`` to 0."""
    gen = torch.Generator().manual_seed(0)
    mmse = torch.randn(1, 3, 4, 4, generator=gen)
    b = 0.3 * torch.randn(1, 3, 4, 4, generator=gen)
    for spread in (0.1, 2.0):
        draws = [mmse + b + spread * torch.randn(20000, 3, 4, 4, generator=gen) for _ in range(2)]
        estimate = float(training.posterior_mean_bias(*draws, mmse).mean())
        assert abs(estimate - float((b ** 2).mean())) < 0.03 * (1 + spread ** 2) / 2, (spread, estimate)

    def fit(one_sample_square: bool):
        offset = nn.Parameter(torch.full((1, 3, 4, 4), 0.5))
        log_spread = nn.Parameter(torch.zeros(()))
        optimizer = torch.optim.Adam([offset, log_spread], lr=0.02)
        for _ in range(400):
            first, second = (mmse + offset + log_spread.exp() * torch.randn(64, 3, 4, 4, generator=gen)
                             for _ in range(2))
            loss = ((first - mmse) ** 2).flatten(1).mean(1) if one_sample_square else \
                training.posterior_mean_bias(first, second, mmse)
            optimizer.zero_grad()
            loss.mean().backward()
            optimizer.step()
        return float(offset.detach().abs().max()), float(log_spread.detach().exp())

    offset, spread = fit(one_sample_square=False)
    assert offset < 0.1 and 0.7 < spread < 1.4, (offset, spread)
    assert fit(one_sample_square=True)[1] < 0.3


def test_distillation_with_the_mean_term_pairs_its_problems(tmp_path, data_dir, monkeypatch):
    """``mean_scale > 0``: the generator step sees each (y, sigma) twice, and the term enters the loss."""
    from ncvsd_inverse.networks import build_teacher

    teacher_cfg, cfg = _tiny()
    torch.manual_seed(0)
    teacher = build_teacher(teacher_cfg.network).eval().requires_grad_(False)
    seen = {}
    original = training.NCVSDLoss.generator_loss

    def spy(self, generator_net, teacher, fake, y, sigma, generator, **kwargs):
        seen.update(y=y.clone(), sigma=sigma.clone(), mean_scale=self.cfg.mean_scale)
        return original(self, generator_net, teacher, fake, y, sigma, generator, **kwargs)

    monkeypatch.setattr(training.NCVSDLoss, "generator_loss", spy)
    for scale in (0.0, 5.0):
        run_cfg = dataclasses.replace(cfg, steps=1, checkpoint_every=100, val_every=100, mean_scale=scale)
        g, f, _ = training.build_distillation_nets(teacher, run_cfg)
        training.distill(teacher, g, f, training.PatchDataset(data_dir, cfg.patch), run_cfg, tmp_path / str(scale),
                         quiet=True)
        first, second = seen["y"].chunk(2)
        assert seen["mean_scale"] == scale and seen["y"].shape[0] == cfg.batch
        assert torch.equal(first, second) == (scale > 0)
        if scale > 0:
            assert torch.equal(*seen["sigma"].chunk(2))

    # the term adds mean_scale * lambda(sigma) * posterior_mean_bias to each pair's samples
    g, f, _ = training.build_distillation_nets(teacher, cfg)
    y, sigma = seen["y"], seen["sigma"]
    plain, xg = original(training.NCVSDLoss(cfg), g, teacher, f, y, sigma, torch.Generator().manual_seed(3))
    with_term, _ = original(training.NCVSDLoss(dataclasses.replace(cfg, mean_scale=2.0)), g, teacher, f, y, sigma,
                            torch.Generator().manual_seed(3))
    half = y.shape[0] // 2
    with torch.no_grad():
        expected = 2.0 * edm_loss_weight(sigma[:half]).flatten() * training.posterior_mean_bias(
            xg[:half], xg[half:], teacher(y[:half], sigma[:half].flatten()))
    assert torch.allclose((with_term - plain).detach(), expected.repeat(2), rtol=1e-4, atol=1e-6)


class ConstantLogvar(nn.Module):
    """A stand-in for the t head: ``v(c_noise) = c``; records the noise levels it was given."""

    def __init__(self, value: float):
        super().__init__()
        self.value = nn.Parameter(torch.tensor(value))
        self.seen = None

    def forward(self, c_noise):
        self.seen = c_noise.detach()
        return self.value.expand(c_noise.shape[0]).reshape(-1, 1, 1, 1)


def test_generator_loss_log_variance_adds_the_t_head():
    """``logvar_on_t``: the VSD loss uses ``u(sigma) + v(t)``: with ``v = c`` the weighted error is
    scaled by ``exp(-c)`` and ``c`` is added; the head gets one level per sample and a gradient."""
    prior = GaussianPrior((1, 2, 2))
    generator_net = GenerativeDenoiser(ConditionalDenoiser(TeacherInitialisedBackbone(prior, prior.shape),
                                                           uncertainty_on="cond"))
    fake = ConditionalDenoiser(TeacherInitialisedBackbone(prior, prior.shape))
    losses = training.NCVSDLoss(small_distill_config())
    x = prior.sample(8, torch.Generator().manual_seed(0))
    y, sigma = losses.draw_problem(x, torch.Generator().manual_seed(1))
    with torch.no_grad():
        u = generator_net(y, sigma, z=torch.zeros_like(y), return_logvar=True)[1].flatten()
        plain, _ = losses.generator_loss(generator_net, prior, fake, y, sigma, torch.Generator().manual_seed(2))
    head = ConstantLogvar(0.7)
    with_t, _ = losses.generator_loss(generator_net, prior, fake, y, sigma, torch.Generator().manual_seed(2),
                                      logvar_t=head)
    expected = (plain.flatten() - u) * math.exp(-0.7) + u + 0.7
    assert torch.allclose(with_t.flatten(), expected, rtol=1e-5, atol=1e-6)
    assert head.seen.shape == (8,) and head.seen.unique().numel() == 8
    with_t.mean().backward()
    assert head.value.grad is not None and head.value.grad != 0


def test_ncvsd_generator_is_bimodal_with_posterior_weights(tmp_path):
    """Two-component mixture: samples split between the modes with the analytic posterior weights.
    A deterministic denoiser puts every sample at the posterior mean, between the modes."""
    torch.manual_seed(0)
    prior = MixturePrior(d=2)
    generator_net = GenerativeDenoiser(ConditionalDenoiser(TeacherInitialisedBackbone(prior, prior.shape),
                                                           uncertainty_on="cond"))
    fake = ConditionalDenoiser(TeacherInitialisedBackbone(prior, prior.shape))
    cfg = small_distill_config(sigma_max=0.6, sigma_levels=1, steps=2500)
    run = training.distill(prior, generator_net, fake, prior, cfg, tmp_path, quiet=True)
    for y0 in (0.0, 0.2):
        y = torch.full((1, *prior.shape), y0)
        weight = float(prior.responsibilities(y, 0.6)[0, 0])
        with torch.no_grad():
            draws = run.emas["generator"](y.expand(4000, -1, -1, -1), 0.6).reshape(4000, -1)
            mmse = prior(y, torch.tensor([0.6])).reshape(-1)
        in_first = float((draws.sum(1) > 0).float().mean())
        between = float((draws.mean(1).abs() < 0.4).float().mean())
        assert abs(in_first - weight) < 0.1, (y0, in_first, weight)
        assert between < 0.3, between
        assert abs(float(mmse.mean())) < 0.4  # a deterministic denoiser would put every sample "between"


def _tiny(**changes):
    teacher_cfg, distill_cfg = training.load_preset("tiny")
    return dataclasses.replace(teacher_cfg, **changes), distill_cfg


def _state(run):
    return {k: v.clone() for k, v in run.tensors().items()}


def _teacher_runs(tmp_path, data_dir, precision="float32"):
    """A tiny teacher trained 6 steps straight in ``a`` and 3 steps in ``b`` (checkpoint every 3):
    ``(cfg, data, fresh, straight)``, ``fresh()`` a newly initialised teacher."""
    cfg, _ = _tiny(steps=6, checkpoint_every=3, precision=precision)
    data = training.PatchDataset(data_dir, cfg.patch)

    def fresh():
        torch.manual_seed(cfg.seed)
        from ncvsd_inverse.networks import build_teacher
        return build_teacher(cfg.network)

    straight = training.train_teacher(fresh(), data, cfg, tmp_path / "a", quiet=True)
    training.train_teacher(fresh(), data, dataclasses.replace(cfg, steps=3), tmp_path / "b", quiet=True)
    return cfg, data, fresh, straight


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_teacher_resume_is_bitwise(tmp_path, data_dir, precision):
    cfg, data, fresh, straight = _teacher_runs(tmp_path, data_dir, precision)
    resumed = training.train_teacher(fresh(), data, cfg, tmp_path / "b", resume=True, quiet=True)
    a, b = _state(straight), _state(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((tmp_path / "b" / "latest.json").read_text())["step"] == 6
    # each (re)start says where it trained which steps
    sessions = [json.loads(line) for line in (tmp_path / "b" / "sessions.jsonl").read_text().splitlines()]
    assert [(line["event"], line["step"]) for line in sessions] == [("start", 0), ("end", 3), ("start", 3), ("end", 6)]
    for start in sessions[::2]:
        assert start["precision"] == precision and start["compile"] is False and start["processes"] == 1
        assert start["machine"]["device"] == "cpu" and start["machine"]["cpu"]


def test_bfloat16_training_runs_the_forward_in_bfloat16_and_keeps_float32_weights(tmp_path, data_dir):
    """``precision: bfloat16``: the convolutions of the training step compute in bfloat16
    (autocast; the sample grid, in eval mode, stays float32), the weights, gradients and Adam
    state stay float32, and the recipe records it."""
    cfg, _ = _tiny(steps=2, precision="bfloat16")
    torch.manual_seed(cfg.seed)
    from ncvsd_inverse.networks import build_teacher
    teacher = build_teacher(cfg.network)
    dtypes = set()

    def record(module, inputs, output):
        if module.training:
            dtypes.add(output.dtype)

    for module in teacher.modules():
        if isinstance(module, MPConv) and module.weight.ndim == 4:
            module.register_forward_hook(record)
    run = training.train_teacher(teacher, training.PatchDataset(data_dir, cfg.patch), cfg, tmp_path, quiet=True)
    assert dtypes == {torch.bfloat16}
    assert all(v.dtype == torch.float32 for k, v in run.tensors().items() if v.is_floating_point()), \
        {k: v.dtype for k, v in run.tensors().items() if v.dtype != torch.float32}
    assert json.loads((tmp_path / "latest.json").read_text())["config"]["teacher"]["precision"] == "bfloat16"
    dtypes.clear()
    training.train_teacher(teacher, training.PatchDataset(data_dir, cfg.patch),
                           dataclasses.replace(cfg, precision="float32", steps=3), tmp_path, resume=True, quiet=True)
    assert dtypes == {torch.float32}
    with pytest.raises(ValueError, match="precision must be one of"):
        check_ranges(dataclasses.replace(cfg, precision="float16"), "recipe")


@pytest.mark.skipif(cpp_compiler() is None, reason="torch.compile on a CPU needs a C++ compiler")
def test_a_compiled_teacher_trains_like_the_eager_one(tmp_path, data_dir):
    """``compile``: the compiled step keeps EDM2's forced weight normalisation (under torch.compile
    MPConv's in-place write is lost, so :func:`compile_for_training` projects eagerly), so the
    weights, Adam state and losses match the eager run's. The weights start off the unit sphere
    (x3): without the projection the compiled run would keep them there."""
    cfg, _ = _tiny(steps=3, log_every=1)
    data = training.PatchDataset(data_dir, cfg.patch)

    def run(compile_: bool, out: Path):
        torch.manual_seed(cfg.seed)
        teacher = build_teacher(cfg.network)
        with torch.no_grad():
            for module in teacher.modules():
                if isinstance(module, MPConv):
                    module.weight.mul_(3)
        return training.train_teacher(teacher, data, dataclasses.replace(cfg, compile=compile_), out, quiet=True)

    eager, compiled = run(False, tmp_path / "eager"), run(True, tmp_path / "compiled")
    a, b = _state(eager), _state(compiled)
    assert a.keys() == b.keys()
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-4
    conv = next(m for m in compiled.module("teacher").modules() if isinstance(m, MPConv) and m.weight.ndim == 4)
    rms = conv.weight.detach().flatten(1).pow(2).mean(1).sqrt()  # projected, then one Adam step of lr 0.01
    assert torch.allclose(rms, torch.ones_like(rms), atol=0.01)
    losses = [[r["loss"] for r in map(json.loads, (out / "stats.jsonl").read_text().splitlines())]
              for out in (tmp_path / "eager", tmp_path / "compiled")]
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)
    assert json.loads((tmp_path / "compiled" / "latest.json").read_text())["config"]["teacher"]["compile"] is True
    # the command line's --compile reaches the recipe (and is recorded); --resume goes on without it
    base = ["--preset", "tiny", "--data", str(data_dir), "--quiet", "--out", str(tmp_path / "cli")]
    result = CliRunner().invoke(train_main, base + ["--steps", "1", "--compile"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "cli" / "latest.json").read_text())["config"]["teacher"]["compile"] is True
    assert CliRunner().invoke(train_main, base + ["--steps", "2", "--resume"]).exit_code == 0
    assert json.loads((tmp_path / "cli" / "latest.json").read_text())["config"]["teacher"]["compile"] is False


def test_the_teacher_sample_grid_is_drawn_once_per_checkpoint_interval_and_at_the_end(tmp_path, data_dir,
                                                                                       monkeypatch):
    cfg, _ = _tiny(steps=7, checkpoint_every=3, log_every=1)
    drawn = []
    monkeypatch.setattr(training.teacher, "save_denoising_grid", lambda net, data, path, device: drawn.append(path))
    run = training.train_teacher(build_teacher(cfg.network), training.PatchDataset(data_dir, cfg.patch), cfg,
                                 tmp_path, quiet=True)
    assert run.step == 7 and drawn == [tmp_path / "samples.png"] * 3  # steps 3, 6 and 7, not all 7 logs
    steps = [r["step"] for r in map(json.loads, (tmp_path / "stats.jsonl").read_text().splitlines())]
    assert steps == list(range(1, 8))


def test_the_logged_step_rate_times_the_steps_alone(tmp_path, data_dir, monkeypatch):
    """On a clock that ticks 1 s per reading, where a checkpoint save takes 100 s, every record's
    ``s_per_step`` is 1 s: the saves are not in it (before, a save landed in the next log interval's
    rate)."""
    import types

    clock = {"now": 0.0}

    def tick():
        clock["now"] += 1.0
        return clock["now"]

    monkeypatch.setattr(training.loop, "time", types.SimpleNamespace(time=tick, perf_counter=tick))
    save = training.Run.save

    def slow_save(run, stats=None):
        clock["now"] += 100.0
        return save(run, stats)

    monkeypatch.setattr(training.Run, "save", slow_save)
    cfg, _ = _tiny(steps=4, checkpoint_every=1, log_every=1)
    training.train_teacher(build_teacher(cfg.network), training.PatchDataset(data_dir, cfg.patch), cfg,
                           tmp_path, quiet=True)
    records = [json.loads(line) for line in (tmp_path / "stats.jsonl").read_text().splitlines()]
    assert [(r["step"], r["s_per_step"], r["images_per_s"]) for r in records] == [
        (step, 1.0, cfg.batch) for step in (1, 2, 3, 4)]


def test_a_run_started_from_another_runs_checkpoint_continues_it(tmp_path, data_dir):
    cfg, data, fresh, straight = _teacher_runs(tmp_path, data_dir)
    source = tmp_path / "b" / "checkpoint-0000003.safetensors"
    # the same recipe from the checkpoint: bitwise the uninterrupted run; the source run is left alone
    same = training.train_teacher(fresh(), data, cfg, tmp_path / "c", quiet=True, init_from=source)
    a, c = _state(straight), _state(same)
    assert all(torch.equal(a[k], c[k]) for k in a)
    assert json.loads((tmp_path / "b" / "latest.json").read_text())["step"] == 3
    assert json.loads((tmp_path / "c" / "latest.json").read_text())["config"]["init_from"] == str(source.resolve())
    assert [r["step"] for r in map(json.loads, (tmp_path / "c" / "stats.jsonl").read_text().splitlines())][0] > 3
    # another recipe from the checkpoint: a different continuation
    other = training.train_teacher(fresh(), data, dataclasses.replace(cfg, lr=cfg.lr / 3), tmp_path / "d",
                                   quiet=True, init_from=source)
    assert any(not torch.equal(a[k], v) for k, v in _state(other).items())
    _, distill_cfg = _tiny()
    teacher = fresh().eval().requires_grad_(False)
    g, f, _ = training.build_distillation_nets(teacher, distill_cfg)
    with pytest.raises(CheckpointError, match="a teacher checkpoint, not distill"):
        training.distill(teacher, g, f, data, distill_cfg, tmp_path / "e", quiet=True, init_from=source)


def test_distill_resume_after_interrupt_is_bitwise(tmp_path, data_dir, monkeypatch):
    teacher_cfg, cfg = _tiny()
    cfg = dataclasses.replace(cfg, steps=5, checkpoint_every=100, val_every=100, gan_scale=0.1, gan_warmup_steps=2,
                              logvar_on_t=True)
    data = training.PatchDataset(data_dir, cfg.patch)
    from ncvsd_inverse.networks import build_teacher
    torch.manual_seed(0)
    teacher = build_teacher(teacher_cfg.network).eval().requires_grad_(False)

    def run(out, resume=False):
        torch.manual_seed(1)
        g, f, d = training.build_distillation_nets(teacher, cfg)
        return training.distill(teacher, g, f, data, cfg, out, disc=d, resume=resume, quiet=True)

    straight = run(tmp_path / "a")
    # Ctrl-C in the middle of step 3: the step is finished, checkpointed, then the run stops
    from ncvsd_inverse.training import distillation as distill_module

    real_update = distill_module.update_ema
    calls = {"n": 0}

    def interrupting(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGINT)
        real_update(*args, **kwargs)

    monkeypatch.setattr(distill_module, "update_ema", interrupting)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b")
    monkeypatch.setattr(distill_module, "update_ema", real_update)
    assert json.loads((tmp_path / "b" / "latest.json").read_text())["step"] == 3
    resumed = run(tmp_path / "b", resume=True)
    a, b = _state(straight), _state(resumed)
    assert any(k.startswith("logvar_t.") for k in a)  # the training-only head is checkpointed too
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert isinstance(load_generator(tmp_path / "b"), GenerativeDenoiser)


@pytest.mark.skipif(cpp_compiler() is None, reason="torch.compile on a CPU needs a C++ compiler")
def test_a_compiled_distillation_trains_like_the_eager_one(tmp_path, data_dir):
    """``compile`` in distillation: the generator's and the fake score's training-mode calls are
    compiled, with the weights projected as in eager mode (they start off the unit sphere, x3)."""
    teacher_cfg, cfg = _tiny()
    cfg = dataclasses.replace(cfg, steps=3, checkpoint_every=100, val_every=100, mean_scale=1.0)
    data = training.PatchDataset(data_dir, cfg.patch)
    torch.manual_seed(0)
    teacher = build_teacher(teacher_cfg.network).eval().requires_grad_(False)

    def run(compile_: bool, out: Path):
        torch.manual_seed(1)
        g, f, _ = training.build_distillation_nets(teacher, cfg)
        with torch.no_grad():
            for module in [*g.modules(), *f.modules()]:
                if isinstance(module, MPConv):
                    module.weight.mul_(3)
        return training.distill(teacher, g, f, data, dataclasses.replace(cfg, compile=compile_), out, quiet=True)

    a, b = _state(run(False, tmp_path / "eager")), _state(run(True, tmp_path / "compiled"))
    assert a.keys() == b.keys()
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-4


def test_a_step_that_is_both_a_new_best_and_a_checkpoint_step_writes_one_checkpoint(tmp_path, data_dir,
                                                                                    monkeypatch):
    teacher_cfg, cfg = _tiny()
    cfg = dataclasses.replace(cfg, steps=4, checkpoint_every=2, val_every=2)
    torch.manual_seed(0)
    teacher = build_teacher(teacher_cfg.network).eval().requires_grad_(False)
    g, f, _ = training.build_distillation_nets(teacher, cfg)
    from ncvsd_inverse import checkpoints

    written, real_save = [], checkpoints.save_checkpoint
    monkeypatch.setattr(checkpoints, "save_checkpoint", lambda out, step, *a: written.append(step) or
                        real_save(out, step, *a))
    training.distill(teacher, g, f, training.PatchDataset(data_dir, cfg.patch), cfg, tmp_path, quiet=True)
    assert written == [2, 4]  # step 2 is the first best; step 4 a checkpoint step, new best or not
    best = json.loads((tmp_path / "best.json").read_text())["step"]
    assert (tmp_path / "best.safetensors").resolve().name == f"checkpoint-{best:07d}.safetensors"


def test_concatenation_generator_trains_and_loads_back(tmp_path, data_dir):
    from ncvsd_inverse.networks import InputConcatUNet, build_teacher

    teacher_cfg, cfg = _tiny()
    cfg = dataclasses.replace(cfg, steps=2, checkpoint_every=2, val_every=100, condition="concat")
    torch.manual_seed(0)
    teacher = build_teacher(teacher_cfg.network).eval().requires_grad_(False)
    g, f, _ = training.build_distillation_nets(teacher, cfg)
    run = training.distill(teacher, g, f, training.PatchDataset(data_dir, cfg.patch), cfg, tmp_path, quiet=True)
    assert float(run.module("generator").net.backbone.cond_gain.detach()) != 0.0  # the condition's gain was trained
    loaded = load_generator(tmp_path)
    assert isinstance(loaded.net.backbone, InputConcatUNet)
    y, z = torch.randn(1, 3, 16, 16), torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(y, 0.3, z=z), run.emas["generator"].eval()(y, 0.3, z=z))


def test_torchrun_two_ranks_stay_in_sync(tmp_path, data_dir):
    import socket

    with socket.socket() as sock:  # a free port: a fixed one can still be held by an earlier run
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
           "-m", "ncvsd_inverse.cli.train", "teacher", "--preset", "tiny", "--data", str(data_dir),
           "--out", str(tmp_path / "ddp"), "--steps", "4", "--quiet", "--device", "cpu"]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    meta = json.loads((tmp_path / "ddp" / "latest.json").read_text())
    assert meta["step"] == 4 and meta["config"]["world_size"] == 2
    assert meta["stats"]["rank_weight_divergence"] == 0.0
    assert isinstance(load_teacher(tmp_path / "ddp"), Denoiser)


def test_checkpoints_load_without_pickle_and_reject_mismatches(tmp_path, data_dir):
    cfg, _ = _tiny(steps=2, checkpoint_every=2)
    from ncvsd_inverse.networks import build_teacher
    training.train_teacher(build_teacher(cfg.network), training.PatchDataset(data_dir, cfg.patch), cfg,
                           tmp_path / "run", quiet=True)
    teacher = load_teacher(tmp_path / "run")
    assert teacher(torch.zeros(1, 3, 9, 9), 1.0).shape == (1, 3, 9, 9)
    tensors, meta = read_checkpoint(tmp_path / "run")
    meta["config"]["network"]["model_channels"] = 16  # config no longer matches the tensors
    (tmp_path / "bad").mkdir()
    save_checkpoint(tmp_path / "bad", 1, tensors, meta["config"])
    with pytest.raises(CheckpointError, match="do not match the config"):
        load_teacher(tmp_path / "bad")
    (tmp_path / "corrupt.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_teacher(tmp_path / "corrupt.safetensors")
    torch.save({"x": torch.zeros(1)}, tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_teacher(tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match="teacher checkpoint"):
        load_generator(tmp_path / "run")


def test_cli_errors_are_one_line_exit_2(tmp_path, data_dir, monkeypatch):
    runner = CliRunner()
    (tmp_path / "empty").mkdir()
    result = runner.invoke(train_main, ["--preset", "tiny", "--data", str(tmp_path / "empty"),
                                        "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "no usable images" in result.output
    result = runner.invoke(train_main, ["--preset", "tiny", "--data", str(data_dir), "--out", str(tmp_path / "o"),
                                        "--steps", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "note: 3 image(s) for a batch of 4 patches" in result.output  # tests/data has 3 images
    result = runner.invoke(train_main, ["--preset", "tiny", "--data", str(data_dir), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "--resume" in result.output
    result = runner.invoke(train_main, ["--preset", "nope", "--data", str(data_dir), "--out", str(tmp_path / "p")])
    assert result.exit_code == 2 and "unknown training preset" in result.output
    result = runner.invoke(distill_main, ["--teacher", str(tmp_path / "missing"), "--preset", "tiny",
                                          "--data", str(data_dir), "--out", str(tmp_path / "d")])
    assert result.exit_code == 2 and "no such checkpoint" in result.output
    result = runner.invoke(distill_main, ["--teacher", str(tmp_path / "o"), "--preset", "tiny", "--data", str(data_dir),
                                          "--out", str(tmp_path / "d"), "--steps", "2", "--quiet"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "d" / "latest.safetensors").exists() and (tmp_path / "d" / "stats.jsonl").exists()
    result = runner.invoke(distill_main, ["--teacher", str(tmp_path / "o"), "--preset", "tiny", "--data", str(data_dir),
                                          "--out", str(tmp_path / "d2"), "--init-from", str(tmp_path / "d"),
                                          "--resume"])
    assert result.exit_code == 2 and "leave out --resume" in result.output
    result = runner.invoke(distill_main, ["--teacher", str(tmp_path / "o"), "--preset", "tiny", "--data", str(data_dir),
                                          "--out", str(tmp_path / "d2"), "--init-from", str(tmp_path / "d"),
                                          "--steps", "3"])
    assert result.exit_code == 0 and "from" in result.output and "at step 2" in result.output, result.output
    assert json.loads((tmp_path / "d2" / "latest.json").read_text())["step"] == 3
    # --compile without a C++ compiler: one line before any work, not inductor's traceback mid-run
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    result = runner.invoke(train_main, ["--preset", "tiny", "--data", str(data_dir), "--out", str(tmp_path / "q"),
                                        "--compile", "--device", "cpu"])
    assert result.exit_code == 2 and "needs a C++ compiler" in result.output and not (tmp_path / "q").exists()


def test_cooldown_steps_from_the_command_line_finish_a_branch(tmp_path, data_dir):
    runner = CliRunner()
    base = ["--preset", "tiny", "--data", str(data_dir), "--quiet"]
    assert runner.invoke(train_main, base + ["--out", str(tmp_path / "a"), "--steps", "2"]).exit_code == 0
    result = runner.invoke(train_main, base + ["--out", str(tmp_path / "b"), "--init-from", str(tmp_path / "a"),
                                               "--steps", "4", "--cooldown-steps", "2"])
    assert result.exit_code == 0, result.output
    recipe = json.loads((tmp_path / "b" / "latest.json").read_text())["config"]["teacher"]
    assert (recipe["steps"], recipe["cooldown_steps"]) == (4, 2)
    result = runner.invoke(train_main, base + ["--out", str(tmp_path / "c"), "--cooldown-steps", "-1"])
    assert result.exit_code == 2 and "--cooldown-steps" in result.output


def test_pruning_keeps_the_newest_checkpoints_and_those_a_link_points_at(tmp_path):
    """By step number (not by name: step 10,000,000 has eight digits), never ``best``'s target."""
    for step in (1, 2, 3, 9_999_999, 10_000_000):
        save_checkpoint(tmp_path, step, {"w": torch.zeros(1)}, {"kind": "teacher"})
    (tmp_path / "best.safetensors").symlink_to("checkpoint-0000002.safetensors")
    deleted = prune_checkpoints(tmp_path, 2)
    assert [p.name for p in deleted] == ["checkpoint-0000001.safetensors", "checkpoint-0000003.safetensors"]
    left = sorted(p.name for p in tmp_path.glob("checkpoint-*"))
    assert left == [f"checkpoint-{n}.{ext}" for n in ("0000002", "10000000", "9999999") for ext in ("json",
                                                                                                "safetensors")]
    assert read_checkpoint(tmp_path)[1]["step"] == 10_000_000 and read_checkpoint(tmp_path / "best.safetensors")


def test_keep_checkpoints_from_the_command_line_and_a_resume_after_it(tmp_path, data_dir):
    runner = CliRunner()
    base = ["--preset", "tiny", "--data", str(data_dir), "--out", str(tmp_path / "t"), "--quiet"]
    assert runner.invoke(train_main, base + ["--steps", "10", "--keep-checkpoints", "1"]).exit_code == 0
    assert sorted(p.name for p in (tmp_path / "t").glob("checkpoint-*.safetensors")) == [
        "checkpoint-0000010.safetensors"]
    result = runner.invoke(train_main, base + ["--steps", "15", "--resume"])  # the preset's 0: keep all again
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "t").glob("checkpoint-*.safetensors"))) == 2
    result = runner.invoke(train_main, base + ["--steps", "-3", "--resume"])
    assert result.exit_code == 2 and "steps must be between 0" in result.output


def test_diagnostic_runs_every_val_every_steps_whatever_log_every(tmp_path, data_dir):
    # the diagnostic runs inside a logging step; val_every 2 with log_every 3 must still validate at 2 and 4
    from ncvsd_inverse.networks import build_teacher

    teacher_cfg, cfg = _tiny()
    cfg = dataclasses.replace(cfg, steps=5, checkpoint_every=100, log_every=3, val_every=2)
    torch.manual_seed(0)
    teacher = build_teacher(teacher_cfg.network).eval().requires_grad_(False)
    g, f, _ = training.build_distillation_nets(teacher, cfg)
    training.distill(teacher, g, f, training.PatchDataset(data_dir, cfg.patch), cfg, tmp_path, quiet=True)
    records = [json.loads(line) for line in (tmp_path / "stats.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "val_gap" in r] == [2, 4, 5]  # 5: the last step


def test_presets_inherit_from_a_base(tmp_path):
    """``base:`` names a packaged preset or a file beside; only the differences are written."""
    base_teacher, base_distill = training.load_preset("cpu-small")
    child = tmp_path / "child.yaml"
    child.write_text("base: cpu-small\nteacher:\n  network: {model_channels: 48}\ndistill:\n  mean_scale: 2.0\n")
    grandchild = tmp_path / "grandchild.yaml"
    grandchild.write_text("base: child.yaml\ndistill:\n  steps: 7\n")
    teacher, distill = training.load_preset(grandchild)
    assert teacher.network.model_channels == 48
    assert teacher.network.channel_mult == base_teacher.network.channel_mult  # nested mapping merged
    assert distill.mean_scale == 2.0 and distill.steps == 7 and distill.lr == base_distill.lr
    loop = tmp_path / "loop.yaml"
    loop.write_text("base: loop.yaml\n")
    with pytest.raises(ValueError, match="loops back"):
        training.load_preset(loop)
    bad = tmp_path / "bad.yaml"
    bad.write_text("base: no-such-preset\n")
    with pytest.raises(ValueError, match="unknown training preset 'no-such-preset'"):
        training.load_preset(bad)


def test_the_shipped_recipe_is_packaged():
    """The presets that made the shipped generator are packaged, each a small diff of its base."""
    _, finetune = training.load_preset("cpu-small-finetune")
    _, mean4 = training.load_preset("cpu-small-mean4")
    _, small = training.load_preset("cpu-small")
    assert finetune.g_lr_scale < small.g_lr_scale and finetune.ema_std > small.ema_std
    assert mean4.mean_scale == 4.0 and mean4.g_lr_scale == finetune.g_lr_scale


def test_the_4level_recipe_is_packaged_as_four_stages():
    """cpu-4level's teacher doubles cpu-small's receptive field on 64x64 patches; its three
    fine-tunes each end where the next begins and keep the generator's and discriminator's
    learning rates where the fake score's is halved."""
    small_teacher, small = training.load_preset("cpu-small")
    teacher, stage1 = training.load_preset("cpu-4level")
    stages = [stage1] + [training.load_preset(name)[1]
                         for name in ("cpu-4level-mean4", "cpu-4level-fakelr", "cpu-4level-mean16")]
    assert tuple(teacher.network.channel_mult) == (1, 2, 3, 4) and teacher.patch == 64
    assert teacher.batch * teacher.patch**2 == 2 * small_teacher.batch * small_teacher.patch**2
    assert [s.steps for s in stages] == [1200, 1400, 1600, 2200]
    assert [s.mean_scale for s in stages] == [0.0, 4.0, 4.0, 16.0]
    fakelr = stages[2]
    assert fakelr.lr == small.lr / 2 and fakelr.ema_std == 0.1
    assert fakelr.lr * fakelr.d_lr_scale == pytest.approx(small.lr * small.d_lr_scale)
    assert fakelr.lr * fakelr.g_lr_scale == pytest.approx(small.lr * small.g_lr_scale / 3, rel=1e-3)


@pytest.mark.parametrize("grad_clip", [0.0, 1.0])
def test_a_nonfinite_gradient_skips_the_step_whatever_the_clipping(tmp_path, grad_clip):
    """The guard is unconditional: a NaN loss leaves weights and Adam's moments untouched and is
    counted; the next finite step trains as usual."""
    net = nn.Linear(3, 2)
    run = training.Run("teacher", {"teacher": net}, {"teacher": 0.1}, {}, {}, tmp_path,
                       training.Distributed(0, 1, torch.device("cpu")))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(4, 3)
    recipe = training.TeacherConfig(lr_ref_steps=10, rampup_steps=0, grad_clip=grad_clip)
    run.optimize("teacher", net(x).sum() * float("nan"), recipe)
    assert run.nonfinite_skipped == 1 and not run.optimizers["teacher"].state
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    run.optimize("teacher", (net(x) ** 2).sum(), recipe)
    assert run.nonfinite_skipped == 1 and not torch.equal(before["weight"], net.weight)


def test_the_cooldown_decays_the_learning_rate_linearly_to_zero_at_the_run_end():
    """Before the last ``cooldown_steps`` the schedule is EDM2's; over them it falls linearly to
    1/cooldown of it at the last step; more steps on resume move the decay to the new end."""
    learning_rate = training.learning_rate
    recipe = training.TeacherConfig(lr=0.01, lr_ref_steps=100, rampup_steps=10, steps=1000, cooldown_steps=200)
    plain = dataclasses.replace(recipe, cooldown_steps=0)
    assert learning_rate(5, 0.01, recipe) == learning_rate(5, 0.01, plain) == pytest.approx(0.005)  # ramp-up
    assert learning_rate(800, 0.01, recipe) == learning_rate(800, 0.01, plain) == pytest.approx(0.01 / 8**0.5)
    assert learning_rate(900, 0.01, recipe) == pytest.approx(learning_rate(900, 0.01, plain) / 2)
    assert learning_rate(999, 0.01, recipe) == pytest.approx(learning_rate(999, 0.01, plain) / 200)
    longer = dataclasses.replace(recipe, steps=2000)
    assert learning_rate(999, 0.01, longer) == learning_rate(999, 0.01, plain)
    with pytest.raises(ValueError, match="cooldown_steps"):
        check_ranges(dataclasses.replace(recipe, cooldown_steps=-1), "recipe")

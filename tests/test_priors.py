"""``load_prior``: foreign diffusion models and denoisers as ``D(x, sigma)`` in our units, checked
against the libraries' own arithmetic (diffusers' scheduler, deepinv's denoisers), an analytic
Gaussian model off the scheduler's grid, and the places that take a prior (solve, the CLI, the
benchmark)."""

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from ncvsd_inverse import load_prior, solve
from ncvsd_inverse.priors import (
    PriorError,
    VPDenoiser,
    vp_sigmas,
    vp_timestep,
)

diffusers = pytest.importorskip("diffusers")  # the [diffusers] extra; CI installs it

DATA = Path(__file__).parent / "data"


def tiny_unet(channels: int = 3) -> "diffusers.UNet2DModel":
    torch.manual_seed(0)
    return diffusers.UNet2DModel(sample_size=16, in_channels=channels, out_channels=channels, layers_per_block=1,
                                 block_out_channels=(8, 16), norm_num_groups=4,
                                 down_block_types=("DownBlock2D", "DownBlock2D"),
                                 up_block_types=("UpBlock2D", "UpBlock2D"))


def save_pipeline(folder: Path, prediction_type: str = "epsilon", scheduler: str = "DDPMScheduler",
                  channels: int = 3) -> Path:
    """A pipeline folder as ``save_pretrained`` writes it: ``unet/`` and ``scheduler/``."""
    tiny_unet(channels).save_pretrained(folder / "unet")
    if scheduler == "ScoreSdeVeScheduler":
        diffusers.ScoreSdeVeScheduler().save_pretrained(folder / "scheduler")
    else:
        getattr(diffusers, scheduler)(num_train_timesteps=1000, beta_schedule="linear",
                                      prediction_type=prediction_type,
                                      clip_sample=False).save_pretrained(folder / "scheduler")
    return folder


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_a_diffusers_model_gives_the_schedulers_own_clean_estimate_at_its_timesteps(tmp_path, prediction_type):
    folder = save_pipeline(tmp_path / "pipe", prediction_type)
    prior = load_prior(f"diffusers:{folder}")
    unet = diffusers.UNet2DModel.from_pretrained(folder / "unet")
    scheduler = diffusers.DDPMScheduler.from_pretrained(folder / "scheduler")
    generator = torch.Generator().manual_seed(1)
    for t in (0, 7, 250, 999):
        x_t = torch.randn(2, 3, 16, 16, generator=generator)
        with torch.no_grad():
            output = unet(x_t, t).sample
        reference = scheduler.step(output, t, x_t, generator=generator).pred_original_sample
        abar = scheduler.alphas_cumprod[t]
        sigma = float(((1 - abar) / abar).sqrt())
        with torch.no_grad():
            ours = prior(x_t / abar.sqrt(), sigma)
        assert torch.allclose(ours, reference, atol=2e-4, rtol=1e-4), (t, (ours - reference).abs().max())
    assert len(prior.sha256) == 64 and prior.img_channels == 3 and not any(p.requires_grad for p in prior.parameters())


def test_the_vp_conversion_gives_the_exact_mmse_denoiser_of_gaussian_data_off_the_grid():
    """An epsilon model that is exact for data ``x0 ~ N(mu, s0^2)`` at every continuous timestep
    (levels interpolated as :func:`vp_timestep` does) must become the exact MMSE denoiser
    ``mu + s0^2 / (s0^2 + sigma^2) (x - mu)`` at levels between the scheduler's grid points."""
    scheduler = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")
    grid = vp_sigmas(scheduler.alphas_cumprod)
    mu, s0 = 0.2, 0.4

    class GaussianEpsilon(torch.nn.Module):
        def forward(self, x_t, t):
            low = t.floor().long().clamp(max=len(grid) - 2)
            fraction = (t - low).double()
            sigma_t = (grid.log()[low] * (1 - fraction) + grid.log()[low + 1] * fraction).exp()
            abar = (1 / (1 + sigma_t**2)).float().reshape(-1, 1, 1, 1)
            return (1 - abar).sqrt() * (x_t - abar.sqrt() * mu) / (abar * s0**2 + 1 - abar)

    prior = VPDenoiser(GaussianEpsilon(), scheduler.alphas_cumprod, "epsilon").finish("analytic", 3, "cpu")
    x = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    sigma = torch.tensor([0.0137, 0.5003, 7.77])  # none of them on the grid
    assert all(float((grid - s).abs().min()) > 1e-4 for s in sigma)
    exact = mu + (s0**2 / (s0**2 + sigma**2)).reshape(-1, 1, 1, 1) * (x - mu)
    assert torch.allclose(prior(x, sigma), exact, atol=1e-5)


def test_vp_timesteps_interpolate_log_sigma_and_clamp_outside_the_grid():
    grid = vp_sigmas(diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear").alphas_cumprod)
    assert 0.0099 < float(grid[0]) < 0.0101 and 150 < float(grid[-1]) < 160
    t = vp_timestep(torch.cat([grid[[0, 10, 999]].float(), torch.tensor([1e-4, 1e4])]), grid)
    assert torch.allclose(t, torch.tensor([0.0, 10.0, 999.0, 0.0, 999.0]), atol=1e-3)
    middle = vp_timestep((grid[10] * grid[11]).sqrt().float()[None], grid)
    assert abs(float(middle) - 10.5) < 1e-3


def test_a_variance_exploding_model_is_a_tweedie_denoiser_in_unit_range(tmp_path):
    folder = save_pipeline(tmp_path / "ve", scheduler="ScoreSdeVeScheduler")
    prior = load_prior(f"diffusers:{folder}")
    unet = diffusers.UNet2DModel.from_pretrained(folder / "unet")
    x, sigma = torch.randn(2, 3, 16, 16), torch.tensor([0.4, 3.0])
    with torch.no_grad():
        score = unet((x + 1) / 2, sigma / 2).sample
    expected = 2 * ((x + 1) / 2 + (sigma / 2).reshape(-1, 1, 1, 1) ** 2 * score) - 1
    assert torch.allclose(prior(x, sigma), expected, atol=1e-5)


@pytest.mark.parametrize("name", ["drunet", "diffunet-ffhq"])
def test_a_deepinv_denoiser_is_seen_at_half_the_level_in_unit_range(name):
    prior = load_prior(f"deepinv:{name}:random")
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    sigma = torch.tensor([0.3])
    with torch.no_grad():
        expected = 2 * prior.denoiser((x + 1) / 2, sigma / 2) - 1
        assert torch.allclose(prior(x, sigma), expected, atol=1e-5)


def test_a_deepinv_denoiser_instance_and_a_callable_are_priors():
    import deepinv

    denoiser = deepinv.models.MedianFilter()
    prior = load_prior(denoiser)
    x = torch.rand(1, 3, 8, 8) * 2 - 1
    assert torch.allclose(prior(x, 0.2), 2 * denoiser((x + 1) / 2, 0.1) - 1)

    def shrink(x, sigma):
        return x / (1 + sigma.reshape(-1, 1, 1, 1) ** 2)

    wrapped = load_prior(shrink)
    assert torch.allclose(wrapped(x, 1.0), x / 2) and len(wrapped.sha256) == 64


def test_the_shipped_teacher_is_a_prior_with_the_digest_results_name_it_by():
    teacher = load_prior(None)
    assert teacher.sha256.startswith("792f93cfb7dff082") and teacher.img_channels == 3


def test_bad_priors_are_one_line(tmp_path, monkeypatch):
    def refused(spec, match):
        with pytest.raises(PriorError, match=match) as error:
            load_prior(spec)
        assert "\n" not in str(error.value)

    refused("diffusers:google/ddpm-celebahq-256", "no such folder.*snapshot_download.*diffusers:PATH")
    (tmp_path / "empty").mkdir()
    refused(f"diffusers:{tmp_path / 'empty'}", "no UNet here")
    folder = save_pipeline(tmp_path / "pipe")
    (folder / "scheduler" / "scheduler_config.json").unlink()
    refused(f"diffusers:{folder}", "no scheduler config")
    diffusers.EulerDiscreteScheduler().save_pretrained(folder / "scheduler")
    refused(f"diffusers:{folder}", "unsupported scheduler EulerDiscreteScheduler")
    config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(
        {**config, "_class_name": "DDPMScheduler", "prediction_type": "flow"}))
    refused(f"diffusers:{folder}", "unsupported prediction_type 'flow'")
    other = save_pipeline(tmp_path / "other")
    config = json.loads((other / "unet" / "config.json").read_text())
    (other / "unet" / "config.json").write_text(json.dumps({**config, "block_out_channels": [8, 32]}))
    refused(f"diffusers:{other}", "do not fit the model")
    refused("deepinv:scunet9:w.pth", "unknown model")
    refused("deepinv:drunet", "say where its weights are: deepinv:drunet:/path/to/weights.pth")
    refused(f"deepinv:drunet:{tmp_path / 'missing.pth'}", "no such weights file")
    (tmp_path / "weights.pkl").write_bytes(b"x")
    refused(f"deepinv:drunet:{tmp_path / 'weights.pkl'}", "must be .safetensors, or .pt")
    refused(f"{tmp_path / 'nothing'}", "a prior is an ncvsd-train checkpoint")
    refused(3, "unknown prior 3")

    import deepinv

    def offline(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(deepinv.models, "DRUNet", offline)
    refused("deepinv:drunet:download", r"download failed.*pass deepinv:drunet:/path/to/drunet_deepinv_color")


def test_a_deepinv_pt_file_is_read_without_pickle(tmp_path):
    import deepinv

    weights = deepinv.models.DRUNet(pretrained=None).state_dict()
    torch.save(weights, tmp_path / "drunet.pth")
    prior = load_prior(f"deepinv:drunet:{tmp_path / 'drunet.pth'}")
    assert torch.equal(prior.denoiser.state_dict()["m_head.weight"], weights["m_head.weight"])
    torch.save({"weights": weights, "code": Path("x")}, tmp_path / "evil.pth")  # a pickled object
    with pytest.raises(PriorError, match="cannot read its weights"):
        load_prior(f"deepinv:drunet:{tmp_path / 'evil.pth'}")


def test_solve_the_cli_and_the_benchmark_take_a_foreign_prior(tmp_path):
    folder = save_pipeline(tmp_path / "pipe")
    y = torch.rand(1, 3, 8, 8) * 2 - 1
    result = solve(y, "sr2x", prior="teacher", teacher=f"diffusers:{folder}", steps=3, seed=0, precision="float32")
    assert result.mean.shape == (1, 3, 16, 16) and torch.isfinite(result.mean).all()
    with pytest.raises(ValueError, match="teacher= is the prior of prior='teacher'"):
        solve(y, "sr2x", teacher=f"diffusers:{folder}")

    from ncvsd_inverse.cli.bench import main as bench
    from ncvsd_inverse.cli.solve import main as solve_cli

    image = tmp_path / "low.png"
    from ncvsd_inverse.io import write_image

    write_image(y, image)
    done = CliRunner().invoke(solve_cli, ["--task", "sr2x", str(image), "--prior", "teacher", "--teacher",
                                          f"diffusers:{folder}", "--steps", "2", "-o", str(tmp_path / "x.png"),
                                          "--quiet"])
    assert done.exit_code == 0 and (tmp_path / "x.png").exists(), done.output
    refused = CliRunner().invoke(solve_cli, ["--task", "sr2x", str(image), "--teacher", f"diffusers:{folder}"])
    assert refused.exit_code == 2 and "--prior teacher" in refused.output
    out = tmp_path / "bench"
    report = CliRunner().invoke(bench, ["smoke", "--out", str(out), "--teacher", f"diffusers:{folder}", "--tasks",
                                        "sr4x", "--methods", "pnp_teacher,ddrm", "--quiet"])
    assert report.exit_code == 0, report.output
    digest = load_prior(f"diffusers:{folder}").sha256
    assert f"teacher `{digest[:16]}`" in (out / "results.md").read_text()


def test_a_model_whose_channels_do_not_fit_the_task_is_one_line(tmp_path):
    folder = save_pipeline(tmp_path / "two", channels=2)
    with pytest.raises(ValueError, match="the model takes 2-channel images; these have 3 channels"):
        solve(torch.zeros(1, 3, 8, 8), "sr2x", prior="teacher", teacher=f"diffusers:{folder}", steps=2)


def test_a_generator_distilled_from_a_diffusers_teacher_starts_as_the_teacher_and_solves(tmp_path):
    import dataclasses

    import yaml

    from ncvsd_inverse import training
    from ncvsd_inverse.cli.solve import main as solve_cli
    from ncvsd_inverse.cli.train import distill_main

    folder = save_pipeline(tmp_path / "pipe")
    teacher = load_prior(f"diffusers:{folder}")
    cfg = dataclasses.replace(training.load_preset("tiny")[1], gan_scale=0.0)
    generator, fake, disc = training.build_distillation_nets(teacher, cfg)
    assert disc is None
    y = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    z = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    sigma = torch.tensor([0.3, 2.0])
    sigma_hat = ((1 + cfg.gamma) * sigma).reshape(-1, 1, 1, 1)
    y_hat = y + (sigma_hat**2 - sigma.reshape(-1, 1, 1, 1) ** 2).sqrt() * z
    with torch.no_grad():  # the paper's initialisation: G(y, sigma) = D(y_hat, sigma_hat) at step 0
        assert torch.allclose(generator(y, sigma, z=z), teacher(y_hat, sigma_hat.flatten()), atol=1e-5)
        assert torch.allclose(fake(y, 0.7, y, sigma), teacher(y, 0.7), atol=1e-5)
    with pytest.warns(UserWarning, match="gan_scale 0.1 is ignored: the GAN discriminator needs the teacher's"):
        assert training.build_distillation_nets(teacher, dataclasses.replace(cfg, gan_scale=0.1))[2] is None

    preset = tmp_path / "foreign.yaml"
    preset.write_text(yaml.safe_dump({"base": "tiny", "distill": {"gan_scale": 0.0, "steps": 2,
                                                                  "checkpoint_every": 2, "val_every": 2}}))
    run = tmp_path / "run"
    done = CliRunner().invoke(distill_main, ["--teacher", f"diffusers:{folder}", "--preset", str(preset), "--data",
                                             str(DATA), "--out", str(run), "--quiet", "--device", "cpu"])
    assert done.exit_code == 0, done.output
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    losses = [value for record in stats for key, value in record.items() if key.startswith("loss")]
    assert losses and all(torch.isfinite(torch.tensor(losses)))
    config = json.loads(next(run.glob("checkpoint-*.json")).read_text())
    assert config["config"]["foreign"]["kind"] == "diffusers"
    image = tmp_path / "low.png"
    from ncvsd_inverse.io import write_image

    write_image(torch.rand(1, 3, 12, 12) * 2 - 1, image)  # not a multiple of the UNet's 2: padded
    solved = CliRunner().invoke(solve_cli, ["--task", "sr2x", str(image), "--model", str(run), "--steps", "2",
                                            "-o", str(tmp_path / "x.png"), "--quiet"])
    assert solved.exit_code == 0 and (tmp_path / "x.png").exists(), solved.output

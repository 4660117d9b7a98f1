"""The inverse suite writes per-image results as it goes, resumes after an interruption and
refuses to mix results of other settings."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import inverse_suite  # noqa: E402

DATA = Path(__file__).parent / "data"


def run_suite(monkeypatch, out: Path, *extra: str) -> None:
    argv = ["inverse_suite.py", "--data", str(DATA), "--crop", "64", "--methods", "classical",
            "--tasks", "sr4x", "random_inpainting", "--out", str(out), *extra]
    monkeypatch.setattr(sys, "argv", argv)
    inverse_suite.main()


def test_suite_resumes_and_refuses_other_settings(tmp_path, monkeypatch):
    out = tmp_path / "suite"
    real_run_image = inverse_suite.run_image
    calls, interrupt_after = [], [3]

    def counted_run_image(task, *args, **kwargs):  # records each image solved; Ctrl-C after a few
        if len(calls) == interrupt_after[0]:
            raise KeyboardInterrupt
        calls.append(task.name)
        return real_run_image(task, *args, **kwargs)

    monkeypatch.setattr(inverse_suite, "run_image", counted_run_image)
    with pytest.raises(KeyboardInterrupt):
        run_suite(monkeypatch, out)
    lines = out.with_suffix(".partial.jsonl").read_text().splitlines()
    assert len(lines) == 1 + 3  # the configuration, then the three finished images

    calls.clear()
    interrupt_after[0] = None
    run_suite(monkeypatch, out)
    assert calls == ["random_inpainting"] * 3  # only the images not yet done
    report = json.loads(out.with_suffix(".json").read_text())
    assert len(report["per_image"]) == 6 and set(report["results"]) == {"sr4x", "random_inpainting"}
    assert report["results"]["sr4x"]["bicubic"]["psnr"] > 15
    assert out.with_suffix(".png").exists() and out.with_suffix(".md").exists()

    with pytest.raises(SystemExit, match="holds results of other settings"):
        run_suite(monkeypatch, out, "--seed", "1")


def test_average_checkpoints_gives_the_mean_generator(tmp_path):
    import torch

    sys.path.insert(0, str(ROOT / "benchmarks" / "levers"))
    from average_checkpoints import average_generators

    from ncvsd_inverse.checkpoints import save_checkpoint
    from ncvsd_inverse.models import load_generator
    from ncvsd_inverse.networks import ConditionalDenoiser, GenerativeDenoiser, UNetConfig, build_teacher

    network = UNetConfig(img_channels=3, model_channels=8, channel_mult=(1, 2), num_blocks=1)
    config = {"network": {"img_channels": 3, "model_channels": 8, "channel_mult": [1, 2], "num_blocks": 1,
                          "attn_levels": []}, "distill": {"gamma": 0.414}}
    states = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        generator = GenerativeDenoiser(ConditionalDenoiser.init_from(build_teacher(network), "cond"))
        states.append({f"ema.generator.{k}": v for k, v in generator.state_dict().items()})
        (tmp_path / "run").mkdir(exist_ok=True)
        save_checkpoint(tmp_path / "run", seed, states[-1], config)
    sources = [tmp_path / "run" / f"checkpoint-{s:07d}.safetensors" for s in (1, 2)]
    averaged = load_generator(average_generators(sources, tmp_path / "avg"))
    for name, value in averaged.state_dict().items():
        expected = (states[0][f"ema.generator.{name}"] + states[1][f"ema.generator.{name}"]) / 2
        assert torch.allclose(value, expected, atol=1e-6), name
    with pytest.raises(SystemExit, match="no ema.generator"):
        (tmp_path / "teacher").mkdir()
        save_checkpoint(tmp_path / "teacher", 1, {"ema.teacher.w": torch.zeros(1)}, config)
        average_generators([tmp_path / "teacher" / "checkpoint-0000001.safetensors"], tmp_path / "avg2")


def test_diagnose_measures_the_teachers_own_sampler(tiny_models, tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "benchmarks" / "levers"))
    import diagnose

    teacher_dir, _ = tiny_models
    out = tmp_path / "diag.json"
    argv = ["diagnose.py", "--teacher-sampler", "4", "--teacher", str(teacher_dir), "--data", str(DATA),
            "--list", str(tmp_path / "names.txt"), "--images", "2", "--patch", "16", "--sigmas", "0.5",
            "--json", str(out)]
    (tmp_path / "names.txt").write_text("\n".join(p.name for p in sorted(DATA.glob("*.png"))) + "\n")
    monkeypatch.setattr(sys, "argv", argv)
    diagnose.main()
    report = json.loads(out.read_text())
    assert report["model"] == "teacher sampler, 4 steps" and report["patch"] == 16
    # samples differ from the MMSE estimate: one sample is worse than the mean of 8
    assert report["val_one_0.5"] < report["val_mean8_0.5"]
    monkeypatch.setattr(sys, "argv", ["diagnose.py", "--teacher-sampler", "4", "--model", "x"])
    with pytest.raises(SystemExit):
        diagnose.main()


def test_suite_config_tells_model_versions_apart(tiny_models):
    import torch

    from ncvsd_inverse import load_model

    _, generator_dir = tiny_models
    first, second = load_model(generator_dir, "generator", "cpu"), load_model(generator_dir, "generator", "cpu")
    assert inverse_suite.weights_sha256(first) == inverse_suite.weights_sha256(second)
    with torch.no_grad():
        next(second.parameters()).view(-1)[0] += 1e-3
    assert inverse_suite.weights_sha256(first) != inverse_suite.weights_sha256(second)
    assert inverse_suite.weights_sha256(None) is None


def test_device_init_joins_an_export_and_a_fake_score_into_a_startable_checkpoint(tiny_models, tmp_path):
    """split + join: the joined checkpoint holds the exported generator (raw and EMA) and the run's
    fake score, no optimiser state, and ``Run.load`` starts from it at the run's step."""
    import dataclasses

    import torch

    sys.path.insert(0, str(ROOT / "benchmarks" / "levers"))
    import device_init

    from ncvsd_inverse import training
    from ncvsd_inverse.checkpoints import read_checkpoint
    from ncvsd_inverse.cli.export import export_model
    from ncvsd_inverse.models import load_teacher

    _, generator_dir = tiny_models
    source, source_meta = read_checkpoint(generator_dir)
    exported = export_model(generator_dir, "generator", tmp_path / "export")
    device_init.split(generator_dir / "latest.safetensors", tmp_path / "fake.safetensors")
    device_init.join(tmp_path / "fake.safetensors", exported, tmp_path / "init.safetensors")
    joined, meta = read_checkpoint(tmp_path / "init.safetensors")
    assert meta["step"] == source_meta["step"] and not any(k.startswith("opt.") for k in joined)
    for name, value in source.items():
        if name.startswith(("fake.", "ema.generator.")):
            assert torch.equal(joined[name], value), name
        if name.startswith("ema.generator."):
            assert torch.equal(joined["generator." + name[len("ema.generator."):]], value), name

    _, cfg = training.load_preset("tiny")
    teacher = load_teacher(tiny_models[0])
    g, f, _ = training.build_distillation_nets(teacher, cfg)
    run = training.distill(teacher, g, f, training.PatchDataset(DATA, cfg.patch),
                           dataclasses.replace(cfg, steps=source_meta["step"] + 1, val_every=100), tmp_path / "ft",
                           quiet=True, init_from=tmp_path / "init.safetensors")
    assert run.step == source_meta["step"] + 1
    with pytest.raises(SystemExit, match="not a distillation checkpoint"):
        device_init.split(tiny_models[0] / "latest.safetensors", tmp_path / "x.safetensors")

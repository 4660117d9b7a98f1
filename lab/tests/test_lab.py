"""Tests of the lab's scripts (not part of CI): ``python -m pytest lab/tests``."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "lab" / "levers"))
sys.path.insert(0, str(ROOT / "tests"))
DATA = ROOT / "tests" / "data"
pytest_plugins = ["conftest"]


def test_average_checkpoints_gives_the_mean_generator_and_refuses_another_role(tmp_path):
    import torch

    from average_checkpoints import average_ema

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
    averaged = load_generator(average_ema(sources, tmp_path / "avg"))
    for name, value in averaged.state_dict().items():
        expected = (states[0][f"ema.generator.{name}"] + states[1][f"ema.generator.{name}"]) / 2
        assert torch.allclose(value, expected, atol=1e-6), name
    with pytest.raises(SystemExit, match="no ema.generator"):
        (tmp_path / "teacher").mkdir()
        save_checkpoint(tmp_path / "teacher", 1, {"ema.teacher.w": torch.zeros(1)}, config)
        average_ema([tmp_path / "teacher" / "checkpoint-0000001.safetensors"], tmp_path / "avg2")


def test_device_init_joins_an_export_and_a_fake_score_into_a_startable_checkpoint(tiny_models, tmp_path):
    """split + join: the joined checkpoint holds the exported generator (raw and EMA) and the run's
    fake score, no optimiser state, and ``Run.load`` starts from it at the run's step."""
    import dataclasses

    import torch

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


def test_device_init_slim_drops_only_the_optimiser_and_resumes(tiny_models, tmp_path):
    """slim: every tensor but ``opt.*`` kept bit for bit, the step kept, and ``--resume`` from a
    folder holding only the slimmed checkpoint goes on from that step."""
    import dataclasses

    import torch

    import device_init

    from ncvsd_inverse import training
    from ncvsd_inverse.checkpoints import read_checkpoint
    from ncvsd_inverse.models import load_teacher

    _, generator_dir = tiny_models
    source, source_meta = read_checkpoint(generator_dir)
    assert any(k.startswith("opt.") for k in source)
    device_init.slim(generator_dir, tmp_path / "run")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["latest.json", "latest.safetensors"]
    assert not (tmp_path / "run" / "latest.safetensors").is_symlink()
    slimmed, meta = read_checkpoint(tmp_path / "run")
    assert meta["step"] == source_meta["step"]
    assert set(slimmed) == {k for k in source if not k.startswith("opt.")}
    assert all(torch.equal(slimmed[k], source[k]) for k in slimmed)

    _, cfg = training.load_preset("tiny")
    teacher = load_teacher(tiny_models[0])
    g, f, _ = training.build_distillation_nets(teacher, cfg)
    run = training.distill(teacher, g, f, training.PatchDataset(DATA, cfg.patch),
                           dataclasses.replace(cfg, steps=source_meta["step"] + 1, val_every=100),
                           tmp_path / "run", quiet=True, resume=True)
    assert run.step == source_meta["step"] + 1


def test_compare_quick_averages_only_the_images_both_runs_finished(tmp_path, capsys, monkeypatch):
    import json

    sys.path.insert(0, str(ROOT / "lab" / "results" / "ncvsd_4level"))
    import compare_quick

    def cells(out, rows):
        (out / "cells").mkdir(parents=True)
        lines = [json.dumps({"key": image, "task": "sr4x", "label": "ncvsd 20", "image": image,
                             "one": {"psnr": psnr, "lpips": 0.3}, "mean": {"psnr": psnr + 1, "lpips": 0.2}})
                 for image, psnr in rows]
        (out / "cells" / "rank0.jsonl").write_text("\n".join(lines) + "\n")

    cells(tmp_path / "new", [("a.png", 24.0), ("b.png", 26.0)])
    cells(tmp_path / "old", [("a.png", 23.0), ("b.png", 20.0), ("c.png", 30.0)])
    # a rerun replaces b's first cell; a kill cut the last line
    with (tmp_path / "new" / "cells" / "rank0.jsonl").open("a") as handle:
        handle.write(json.dumps({"key": "b-rerun", "task": "sr4x", "label": "ncvsd 20", "image": "b.png",
                                 "one": {"psnr": 22.0, "lpips": 0.3}, "mean": {"psnr": 23.0, "lpips": 0.2}}) + "\n")
        handle.write('{"key": "cut by a kill", "task": "sr4x", ')
    monkeypatch.setattr(sys, "argv", ["compare_quick.py", str(tmp_path / "new"), str(tmp_path / "old")])
    compare_quick.main()
    row = capsys.readouterr().out.splitlines()[-1]
    assert row.startswith("| sr4x | ncvsd 20 | 2 | 23.00 / 21.50 (+1.50) | 0.300 / 0.300 (+0.000) "
                          "| 24.00 / 22.50 (+1.50)")


def test_device_tree_slim_keeps_large_files_home_and_restore_gives_the_index_back(tmp_path):
    import subprocess

    from device_tree import restore, slim, travel_bytes, travelling_files

    def git(*args):
        return subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True, text=True).stdout

    git("init", "-q")
    (tmp_path / "big").mkdir()
    for name, size in (("big/run.safetensors", 300_000), ("big/keep.safetensors", 300_000), ("code.py", 100),
                       ("big/ncvsd 20 [a].png", 300_000)):
        (tmp_path / name).write_bytes(b"x" * size)
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    (tmp_path / "notes.txt").write_text("untracked, not ignored: travels")
    index_before = git("ls-files", "-s")
    dropped = slim(tmp_path, ["big/keep.safetensors"], 256 * 1024)
    assert dropped == ["big/ncvsd 20 [a].png", "big/run.safetensors"]
    assert sorted(travelling_files(tmp_path)) == ["big/keep.safetensors", "code.py", "notes.txt"]
    assert travel_bytes(tmp_path) == 300_000 + 100 + len("untracked, not ignored: travels")
    assert (tmp_path / "big/run.safetensors").stat().st_size == 300_000  # still on disk
    with pytest.raises(SystemExit, match="already slimmed"):
        slim(tmp_path, [], 1)
    assert restore(tmp_path) == dropped
    assert git("ls-files", "-s") == index_before and git("status", "--porcelain") == "?? notes.txt\n"
    git("add", "code.py")
    (tmp_path / "code.py").write_text("changed")
    git("add", "code.py")
    with pytest.raises(SystemExit, match="staged changes"):
        slim(tmp_path, [], 1)


def test_device_init_teacher_goes_on_from_an_exported_teacher(tiny_models, tmp_path):
    import dataclasses

    import torch
    from device_init import teacher

    from ncvsd_inverse import training
    from ncvsd_inverse.checkpoints import read_checkpoint
    from ncvsd_inverse.cli.export import export_model
    from ncvsd_inverse.networks import build_teacher

    teacher_dir, _ = tiny_models
    exported = export_model(teacher_dir, "teacher", tmp_path / "export")
    teacher(exported, tmp_path / "init.safetensors")
    tensors, meta = read_checkpoint(tmp_path / "init.safetensors")
    ema = {k[len("ema.teacher."):]: v for k, v in tensors.items() if k.startswith("ema.")}
    assert ema and all(torch.equal(tensors["teacher." + k], v) for k, v in ema.items()) and meta["step"] == 4
    cfg, _ = training.load_preset("tiny")
    run = training.train_teacher(build_teacher(cfg.network), training.PatchDataset(DATA, cfg.patch),
                                 dataclasses.replace(cfg, steps=5), tmp_path / "run", quiet=True,
                                 init_from=tmp_path / "init.safetensors")
    assert run.step == 5


def test_device_out_sends_a_large_file_in_parts_that_join_to_it(tmp_path):
    import hashlib
    import subprocess

    data = bytes(range(256)) * (17 * 4096)  # 17 MiB: two parts
    (tmp_path / "model.safetensors").write_bytes(data)
    subprocess.run(["bash", "-c", f"source {ROOT}/lab/levers/device_out.sh && "
                    f"send_in_parts {tmp_path}/model.safetensors {tmp_path}/out"], check=True)
    parts = sorted(tmp_path.glob("out.part-*"))
    assert [p.name for p in parts] == ["out.part-00", "out.part-01"]
    assert all(p.stat().st_size < 16 * 2**20 for p in parts)
    assert b"".join(p.read_bytes() for p in parts) == data
    assert (tmp_path / "out.sha256").read_text().strip() == hashlib.sha256(data).hexdigest()


def test_reship_compare_reads_the_committed_reports_as_the_readme_does(tmp_path, capsys, monkeypatch):
    """The shipped model's report beside cpu-small's (both committed): the README's cells and the
    goal checks the issue asks for; a reship folder with nothing yet says what is missing."""
    import reship_compare

    results = ROOT / "benchmarks" / "results"
    monkeypatch.setattr(sys, "argv", ["reship_compare.py", str(results),
                                      "--old-report", str(results / "cbsd68-report-cpu-small"),
                                      "--old-diagnostic", str(results / "generator_diagnostic_val.json")])
    reship_compare.main()
    out = capsys.readouterr().out
    assert "| sr4x | 23.24 / 0.345 · 23.47 / 0.365 | 23.99 / 0.368 · 23.99 / 0.389 |" in out
    assert "sigma 0.2: mmse_psnr 30.03 (30.03), mean_gap 0.60 (0.60), one_gap 2.45 (2.45)" in out
    assert "meets goal 2" in out and "MISSES" not in out
    assert "the mean of 4 beats the old model in both on 3 of 5 tasks" in out
    assert "sr4x mean of 4 is +0.72 dB over bicubic" in out
    assert "one sample below the teacher prior in LPIPS on 4 of 5 tasks" in out
    monkeypatch.setattr(sys, "argv", ["reship_compare.py", str(tmp_path)])
    reship_compare.main()
    out = capsys.readouterr().out
    assert "generator_diagnostic_val.json is missing" in out and "results.json is missing" in out


def test_the_distillation_chain_goes_on_from_the_newest_stage_begun(tmp_path):
    """Stages before the newest one with a checkpoint are done (reship_keep.sh keeps only that
    one's): the chain resumes it and starts the stages after it, each from the one before."""
    import os
    import subprocess

    log = tmp_path / "calls.txt"
    fake = tmp_path / "fake_distill.sh"
    fake.write_text('echo "$@" >> ' + str(log) + '\n'
                    'out=""; steps=""; while [ $# -gt 0 ]; do case $1 in --out) out=$2; shift;; '
                    '--steps) steps=$2; shift;; esac; shift; done\n'
                    'mkdir -p "$out" && touch "$out/latest.safetensors" '
                    '&& touch "$(printf "%s/checkpoint-%07d.safetensors" "$out" "$steps")"\n')
    runs = tmp_path / "runs"
    (runs / "ncvsd-4level-mean4").mkdir(parents=True)
    (runs / "ncvsd-4level-mean4" / "latest.safetensors").touch()   # stage 2 begun; stage 1 not kept
    env = {**os.environ, "RUNS": str(runs), "DISTILL": f"bash {fake}", "TEACHER": "t.safetensors"}
    subprocess.run(["bash", str(ROOT / "lab" / "levers" / "distill_4level_chain.sh")], cwd=ROOT, env=env,
                   check=True, capture_output=True)
    calls = log.read_text().splitlines()
    assert len(calls) == 3
    assert f"--out {runs}/ncvsd-4level-mean4 --resume --steps 1400" in calls[0]
    assert f"--init-from {runs}/ncvsd-4level-mean4/checkpoint-0001400.safetensors --steps 1600" in calls[1]
    assert "--preset cpu-4level-mean16" in calls[2] and "--steps 2200" in calls[2]
    assert not (runs / "ncvsd-4level-s1").exists()

"""The benchmark scripts in benchmarks/ (the suites themselves are tested in test_bench.py)."""

import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
DATA = Path(__file__).parent / "data"


def test_denoising_quality_measures_the_teachers_own_sampler(tiny_models, tmp_path, monkeypatch):
    import denoising_quality

    teacher_dir, _ = tiny_models
    out = tmp_path / "diag.json"
    (tmp_path / "names.txt").write_text("\n".join(p.name for p in sorted(DATA.glob("*.png"))) + "\n")
    argv = ["denoising_quality.py", "--teacher-sampler", "4", "--teacher", str(teacher_dir), "--data", str(DATA),
            "--list", str(tmp_path / "names.txt"), "--limit", "2", "--crop", "32", "--levels", "0.5",
            "--json", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    denoising_quality.main()
    report = json.loads(out.read_text())
    assert report["generator"] == "teacher sampler, 4 steps" and report["crop"] == 32
    row = report["rows"][0]
    # samples differ from the MMSE estimate: one sample is worse than the mean of 8
    assert row["one_psnr"] < row["mean_psnr"]
    assert row["one_gap"] == pytest.approx(row["mmse_psnr"] - row["one_psnr"])
    monkeypatch.setattr(sys, "argv", ["denoising_quality.py", "--teacher-sampler", "4", "--generator", "x",
                                      "--data", str(DATA)])
    with pytest.raises(SystemExit):
        denoising_quality.main()


def test_solver_speed_reports_time_per_megapixel_at_each_size(tiny_models, tmp_path, monkeypatch):
    import solver_speed

    assert solver_speed.parse_size("768x512") == (512, 768) and solver_speed.parse_size("64") == (64, 64)
    image = torch.rand(1, 3, 20, 30)
    big = solver_speed.clean_of_size(image, 50, 70)
    assert big.shape[-2:] == (50, 70)
    out = tmp_path / "speed.json"
    retained = []
    monkeypatch.setattr(solver_speed, "retain_freed_memory", lambda: retained.append(True) or True)
    argv = ["solver_speed.py", "--model", str(tiny_models[1]), "--tasks", "sr4x", "--sizes", "32", "48x32",
            "--steps", "2", "3", "--precision", "float32", "--tile", "0", "--json", str(out), "--allocator"]
    monkeypatch.setattr(sys, "argv", argv + ["retain", "system"])
    with pytest.raises(SystemExit):  # retain cannot be undone: system must come first
        solver_speed.main()
    monkeypatch.setattr(sys, "argv", argv + ["system", "retain"])
    solver_speed.main()
    report = json.loads(out.read_text())
    assert [(r["allocator"], r["height"], r["width"], r["nfe"]) for r in report["results"]] == [
        (allocator, 32, width, nfe) for allocator in ("system", "retain") for width in (32, 48) for nfe in (2, 3)]
    assert retained == [True]
    for row in report["results"]:
        assert row["peak_rss_mb"] > 100  # torch and the model alone take more than that
        assert row["precision"] == "float32" and row["seconds_per_megapixel"] == pytest.approx(
            row["seconds_per_image"] / (row["height"] * row["width"] / 1e6))
        assert row["seconds_per_step"] == pytest.approx(row["seconds_per_image"] / row["nfe"])
    assert "native_bfloat16" in report["machine"]
    from ncvsd_inverse import load_model
    from ncvsd_inverse.models import weights_sha256
    assert report["generator_sha256"] == weights_sha256(load_model(tiny_models[1]))  # the model it timed


def test_tune_solver_sweeps_operator_and_restart_settings(tiny_models, tmp_path, monkeypatch):
    import tune_solver

    from ncvsd_inverse.operators.phase_retrieval import PhaseRetrieval

    langevin_used = []
    original = PhaseRetrieval.langevin_likelihood_step

    def spy(self, *args, **kwargs):
        langevin_used.append(self.langevin_steps)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PhaseRetrieval, "langevin_likelihood_step", spy)
    out = tmp_path / "tune.json"
    (tmp_path / "names.txt").write_text("# a comment line\n" + sorted(DATA.glob("*.png"))[0].name + "\n")
    argv = ["tune_solver.py", "--model", str(tiny_models[1]), "--task", "phase_retrieval", "--data", str(DATA),
            "--list", str(tmp_path / "names.txt"), "--first", "1", "--crop", "32", "--runs", "1",
            "--steps", "2", "--langevin-steps", "1", "3", "--restarts", "2", "--json", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    tune_solver.main()
    report = json.loads(out.read_text())
    assert sorted(r["langevin_steps"] for r in report["rows"]) == [1, 3]
    assert sorted(set(langevin_used)) == [1, 3]  # the override reached the operator
    assert all(r["restarts"] == 2 and r["steps"] == 2 for r in report["rows"])
    assert set(report["classical"]) == {"psnr", "lpips"} and 0 < report["classical"]["lpips"] < 1
    assert all(0 <= r["lpips_one"] <= 1 and r["psnr_mean"] == r["psnr_one"] for r in report["rows"])

    # a linear task: its classical estimate (bicubic) is the reference line
    monkeypatch.setattr(sys, "argv", ["tune_solver.py", "--model", str(tiny_models[1]), "--task", "sr4x",
                                      "--data", str(DATA), "--list", str(tmp_path / "names.txt"), "--first", "1",
                                      "--crop", "32", "--runs", "1", "--steps", "2", "--json", str(out)])
    tune_solver.main()
    report = json.loads(out.read_text())
    assert report["task"] == "sr4x" and len(report["rows"]) == 1 and report["rows"][0]["langevin_steps"] is None
    assert set(report["classical"]) == {"psnr", "lpips"}


def test_train_throughput_times_the_steps_after_the_warm_up(tmp_path, monkeypatch):
    """One run per trainer: the steps after the 2 warm-up steps, from the run's own timing."""
    import train_throughput

    out = tmp_path / "throughput.json"
    monkeypatch.setattr(sys, "argv", ["train_throughput.py", "--presets", "tiny", "--steps", "3",
                                      "--device", "cpu", "--json", str(out)])
    train_throughput.main()
    report = json.loads(out.read_text())
    (row,) = report["results"]
    assert row["preset"] == "tiny" and row["precision"] == "float32" and row["compile"] is False
    for trainer in ("teacher", "distill"):
        assert 0 < row[f"{trainer}_s_per_step"] < 10
    assert row["teacher_images_per_s"] == pytest.approx(row["teacher_batch"] / row["teacher_s_per_step"])


def test_validation_crops_are_measured_with_their_index_as_seed_and_scored_per_crop(tmp_path):
    from ncvsd_inverse import metrics
    from ncvsd_inverse.bench.validation import measured_crops, scored
    from ncvsd_inverse.sampling import PosteriorResult
    from ncvsd_inverse.tasks import load_task

    names = [path.name for path in sorted(DATA.glob("*.png"))[:2]]
    (tmp_path / "names.txt").write_text("\n".join(names) + "\n")
    task = load_task("random_inpainting")
    measured = measured_crops(task, DATA, tmp_path / "names.txt", 2, 32)
    assert [name for name, _, _ in measured] == names
    for index, (_, clean, y) in enumerate(measured):
        again = task.build_operator(clean.shape).measure(clean, task.sigma_y, torch.Generator().manual_seed(index))
        assert torch.equal(y, again)
    assert not torch.equal(measured[0][2], measured[1][2])

    def solve_crop(index, y):  # two "runs": the truth shifted by 0.1, and the truth
        clean = measured[index][1]
        samples = torch.stack([clean + 0.1, clean])
        return PosteriorResult(samples=samples, mean=samples.mean(0), std=samples.std(0), measurement=y, nfe=1,
                               network_calls=1, seconds=float(index + 1), network_seconds=0.0, sigmas=torch.ones(2))

    row = scored(solve_crop, measured)
    one = [metrics.image_scores(clean + 0.1, clean) for _, clean, _ in measured]
    mean = [metrics.image_scores(clean + 0.05, clean) for _, clean, _ in measured]
    for key in ("psnr", "lpips"):
        assert row[f"{key}_one"] == pytest.approx(sum(s[key] for s in one) / 2, rel=1e-5)
        assert row[f"{key}_mean"] == pytest.approx(sum(s[key] for s in mean) / 2, rel=1e-5)
    assert row["seconds"] == 1.5 and row["psnr_mean"] > row["psnr_one"] + 5

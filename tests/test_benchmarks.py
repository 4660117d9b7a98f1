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


def test_a_result_line_cut_by_a_kill_is_redone(tmp_path, monkeypatch):
    """A run killed while appending a result leaves a truncated last line: the resume drops it and
    redoes that image; the rest is kept."""
    out = tmp_path / "suite"
    run_suite(monkeypatch, out)
    partial = out.with_suffix(".partial.jsonl")
    lines = partial.read_text().splitlines()
    partial.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][: len(lines[-1]) // 2])
    calls = []
    real_run_image = inverse_suite.run_image

    def counted(task, *args, **kwargs):
        calls.append(task.name)
        return real_run_image(task, *args, **kwargs)

    monkeypatch.setattr(inverse_suite, "run_image", counted)
    run_suite(monkeypatch, out)
    assert calls == ["random_inpainting"]

    def without_timings(text_lines):
        entries = [json.loads(line) for line in text_lines]
        for entry in entries[1:]:
            for scores in entry["scores"].values():
                scores.pop("seconds")
        return entries

    assert without_timings(partial.read_text().splitlines()) == without_timings(lines)
    partial.write_text("not json\n" + "\n".join(lines) + "\n")
    with pytest.raises(SystemExit, match="line 1 is corrupt"):
        run_suite(monkeypatch, out)

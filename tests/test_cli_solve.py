"""``ncvsd-solve`` round trips with a tiny model, and one clear error (exit 2, no output) per bad input."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from ncvsd_inverse import solve
from ncvsd_inverse.cli.solve import main
from ncvsd_inverse.io import read_image, write_image


@pytest.fixture
def small_images(tmp_path, data_dir):
    clean = read_image(data_dir / "108005.png")[..., 100:164, 80:128]  # 64 x 48
    write_image(clean, tmp_path / "clean.png")
    write_image(clean[..., ::4, ::4], tmp_path / "low.png")  # 16 x 12
    write_image(clean[:, :1], tmp_path / "gray.png")
    return tmp_path


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_sr4x_round_trip_gray_and_runs(small_images, tiny_models):
    _, generator = tiny_models
    result = invoke("--task", "sr4x", small_images / "low.png", "--model", generator, "--steps", 3, "--quiet")
    assert result.exit_code == 0, result.output
    assert Image.open(small_images / "low_sr4x.png").size == (48, 64)  # 4x the 12 x 16 input

    out = small_images / "gray_out.png"
    result = invoke("--task", "random_inpainting", small_images / "gray.png", "-o", out, "--model", generator,
                    "--steps", 2, "--runs", 3, "--save-std", small_images / "std.png",
                    "--save-samples", small_images / "samples", "--quiet")
    assert result.exit_code == 0, result.output
    assert Image.open(out).mode == "L"  # gray in, gray out
    assert Image.open(small_images / "std.png").mode == "RGB"
    assert len(list((small_images / "samples").glob("*.png"))) == 3


def test_simulate_report_scores_real_lpips(small_images, tiny_models, lpips_weights_dir):
    report = small_images / "report_lpips.json"
    result = invoke("--task", "random_inpainting", small_images / "clean.png", "--simulate", "--report", report,
                    "--model", tiny_models[1], "--steps", 2, "--runs", 2)
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    for which in ("mean", "sample"):
        assert 0 < data[which]["lpips"] < 1
    assert "lpips_note" not in data and f"LPIPS {data['mean']['lpips']:.4f}" in result.output


def test_simulate_report(small_images, tiny_models):
    teacher, generator = tiny_models
    report = small_images / "report.json"
    result = invoke("--task", "box_inpainting", small_images / "clean.png", "--simulate", "--report", report,
                    "--model", generator, "--steps", 2, "--runs", 2)
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    assert data["nfe"] == 2 and data["runs"] == 2 and data["seconds"] > 0
    assert set(data["mean"]) == {"psnr", "ssim", "lpips"} and 0 < data["mean"]["psnr"] < 60
    assert "PSNR" in result.output and "LPIPS" in result.output
    odd = small_images / "odd.png"
    write_image(read_image(small_images / "clean.png")[..., :63, :46], odd)  # not a multiple of 4
    result = invoke("--task", "sr4x", odd, "--simulate", "--model", generator, "--steps", 2, "--quiet",
                    "--report", report)
    assert result.exit_code == 0, result.output
    assert Image.open(small_images / "odd_sr4x.png").size == (44, 60)  # cropped to 4 x (15 x 11)
    result = invoke("--task", "sr4x", small_images / "clean.png", "--simulate", "--model", teacher,
                    "--prior", "teacher", "--steps", 2, "--quiet", "-o", small_images / "ablation.png")
    assert result.exit_code == 0, result.output


def test_same_seed_same_output_other_seed_differs(small_images, tiny_models):
    _, generator = tiny_models
    y = read_image(small_images / "low.png")
    a = solve(y, "sr4x", model=generator, steps=2, seed=5).mean
    b = solve(y, "sr4x", model=generator, steps=2, seed=5).mean
    c = solve(y, "sr4x", model=generator, steps=2, seed=6).mean
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_phase_retrieval_keeps_lowest_misfit(small_images, tiny_models):
    _, generator = tiny_models
    clean = read_image(small_images / "clean.png")[..., :16, :16]
    from ncvsd_inverse.tasks import load_task

    task = load_task("phase_retrieval")
    y = task.build_operator(clean.shape).measure(clean, 0.05, torch.Generator().manual_seed(0))
    result = solve(y, task, model=generator, steps=2, runs=3)
    assert result.mean.shape == clean.shape and result.misfit.shape == (3, 1)
    from ncvsd_inverse.operators.phase_retrieval import twin_is_closer

    assert not twin_is_closer(result.samples, result.samples[:1]).any()  # the runs in one orientation


def test_phase_retrieval_simulate_is_scored_modulo_the_twin(small_images, tiny_models):
    _, generator = tiny_models
    clean = small_images / "small.png"
    write_image(read_image(small_images / "clean.png")[..., :16, :16], clean)
    report = small_images / "phase.json"
    result = invoke("--task", "phase_retrieval", clean, "--simulate", "--model", generator, "--steps", 2,
                    "--report", report)
    assert result.exit_code == 0, result.output
    assert json.loads(report.read_text())["scored_modulo_twin"] is True
    assert "modulo the 180-degree rotation" in result.output


def test_bad_inputs_exit_2_and_write_nothing(small_images, tiny_models, tmp_path):
    _, generator = tiny_models
    out = tmp_path / "never.png"
    (tmp_path / "corrupt.safetensors").write_bytes(b"junk" * 10)
    Image.fromarray(np.zeros((5, 7), np.uint8)).save(tmp_path / "mask_wrong.png")
    np.save(tmp_path / "big_kernel.npy", np.ones((99, 99), np.float32))
    np.save(tmp_path / "rgb_kernel.npy", np.ones((3, 9, 9), np.float32))
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tmp_path / "dot.png")
    (tmp_path / "text.png").write_text("hello")
    cases = [
        (("--task", "sr4x", tmp_path / "missing.png"), "no such file"),
        (("--task", "sr4x", tmp_path / "text.png"), "not an image file"),
        (("--task", "sr5x", small_images / "low.png"), "unknown task 'sr5x'"),
        (("--task", "box_inpainting", small_images / "clean.png", "--mask", tmp_path / "mask_wrong.png"),
         "mask is 5x7 but the image is 64x48"),
        (("--task", "gaussian_deblur", small_images / "clean.png", "--kernel", tmp_path / "big_kernel.npy"),
         "larger than the 64x48 image"),
        (("--task", "gaussian_deblur", small_images / "clean.png", "--kernel", tmp_path / "rgb_kernel.npy"),
         "must be a 2-D array"),
        (("--task", "sr2x", tmp_path / "dot.png"), "too small"),
        (("--task", "sr4x", small_images / "low.png", "-o", tmp_path / "no" / "dir" / "x.png"),
         "cannot write the output"),
        (("--task", "sr4x", small_images / "low.png", "--model", tmp_path / "absent"), "no such checkpoint"),
        (("--task", "sr4x", small_images / "low.png", "--model", tmp_path / "corrupt.safetensors"), "not a readable"),
        (("--task", "sr4x", small_images / "low.png", "--device", "tpu:9"), "unknown device"),
    ]
    if not torch.cuda.is_available():
        cases.append((("--task", "sr4x", small_images / "low.png", "--device", "cuda"), "no CUDA GPU"))
    for args, message in cases:
        extra = () if "--model" in args else ("--model", generator)
        extra += () if "-o" in args else ("-o", out)
        result = invoke(*args, *extra, "--steps", 1, "--quiet")
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output and "Traceback" not in result.output, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert not out.exists()


def test_list_tasks_and_no_default_model_message(small_images, monkeypatch):
    import ncvsd_inverse.cli.solve as cli_solve

    retained = []
    monkeypatch.setattr(cli_solve, "retain_freed_memory", lambda: retained.append(True))
    result = invoke("--list-tasks")
    assert result.exit_code == 0 and "sr4x" in result.output and "phase_retrieval" in result.output
    assert retained == [True]  # the CLI keeps freed memory for reuse (ncvsd_inverse.allocator)
    import ncvsd_inverse.api as api

    monkeypatch.setattr(api, "DEFAULT_MODEL_DIR", small_images / "nothing_here")
    result = invoke("--task", "sr4x", small_images / "low.png", "--quiet")
    assert result.exit_code == 2 and "pass a model" in result.output


def test_exported_models_become_the_default(small_images, tiny_models, tmp_path, monkeypatch):
    import ncvsd_inverse.api as api
    from ncvsd_inverse.cli.export import export_model

    teacher, generator = tiny_models
    export_model(teacher, "teacher", tmp_path / "default")
    export_model(generator, "generator", tmp_path / "default")
    assert sorted(p.name for p in (tmp_path / "default").iterdir()) == [
        "generator.json", "generator.safetensors", "teacher.json", "teacher.safetensors"]
    monkeypatch.setattr(api, "DEFAULT_MODEL_DIR", tmp_path / "default")
    result = invoke("--task", "sr4x", small_images / "low.png", "--steps", 2, "--quiet", "-o", tmp_path / "d.png")
    assert result.exit_code == 0, result.output
    result = invoke("--task", "sr4x", small_images / "low.png", "--steps", 2, "--quiet", "--prior", "teacher",
                    "-o", tmp_path / "t.png")
    assert result.exit_code == 0, result.output

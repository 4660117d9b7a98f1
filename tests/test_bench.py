"""``ncvsd-bench``: the smoke suite end to end, counted NFE, one measurement for all methods,
resume, sharding under torchrun, bad suite files, and the peers' building blocks (the deepinv
denoiser adapter, the SR SVD as a deepinv physics, DAPS on a Gaussian toy)."""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from ncvsd_inverse.bench import DeepinvDenoiser, load_suite, report_suite, run_suite
from ncvsd_inverse.bench import methods as bench_methods
from ncvsd_inverse.bench.runner import read_cells
from ncvsd_inverse.bench.suite import SuiteError
from ncvsd_inverse.cli.bench import main
from ncvsd_inverse.daps import annealing_levels, daps_sample, ode_denoise
from ncvsd_inverse.operators import Blur, Inpainting, PhaseRetrieval, SuperResolution, gaussian_kernel, to_deepinv_svd
from ncvsd_inverse.problem import with_sampler_settings
from ncvsd_inverse.tasks import task_from_dict

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
SMOKE = ROOT / "benchmarks" / "suites" / "smoke.yaml"


def write_suite(folder: Path, text: str) -> Path:
    path = folder / "suite.yaml"
    path.write_text(text.replace("DATA", str(DATA)))
    return path


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """The smoke suite, run once through the CLI, with every measurement each method saw."""
    out = tmp_path_factory.mktemp("smoke") / "out"
    seen = []
    import ncvsd_inverse.bench.runner as runner

    real = runner.timed_run

    def recording(method, problem, *args, **kwargs):
        seen.append((problem.task.name, method.name, problem.measurement.clone()))
        return real(method, problem, *args, **kwargs)

    runner.timed_run = recording
    try:
        result = CliRunner().invoke(main, [str(SMOKE), "--out", str(out), "--quiet"])
    finally:
        runner.timed_run = real
    assert result.exit_code == 0, result.output
    return out, seen, result.output


def test_smoke_suite_writes_every_output_with_counted_nfe(smoke_run):
    out, _, output = smoke_run
    records = json.loads((out / "results.json").read_text())
    for name in ("results.md", "run.json", "quality_vs_nfe.png", "grid-sr4x.png", "grid-box_inpainting.png",
                 "grid-gaussian_deblur.png", "grid-phase_retrieval.png"):
        assert (out / name).stat().st_size > 0, name
    assert "| sr4x | ncvsd 3 | 3 |" in output
    fields = {"suite", "task", "method", "nfe", "images", "psnr", "ssim", "lpips", "psnr_mean", "ssim_mean",
              "lpips_mean", "calibration", "seconds_per_image", "peak_mem_mb", "settings"}
    expected_nfe = {"ncvsd 3": 3, "ncvsd 2": 2, "pnp_teacher 2": 2, "dps 4": 3, "diffpir 3": 3, "ddrm 3": 3,
                    "daps 3x1": 3, "hio": 0, "bicubic": 0, "biharmonic": 0, "wiener": 0, "tv": 0}
    by_task = {}
    for record in records:
        assert set(record) == fields and record["images"] == 2 and record["suite"] == "smoke"
        restarts = 4 if record["task"] == "phase_retrieval" and record["method"].startswith(("ncvsd", "pnp")) else 1
        assert record["nfe"] == restarts * expected_nfe[record["method"]], record  # counted by the hooks
        assert 0 < record["psnr"] < 60 and 0 <= record["lpips"] < 1  # LPIPS is real everywhere
        sampling = record["nfe"] > 0
        assert (record["calibration"] is not None) == sampling and (record["psnr_mean"] is not None) == sampling
        if sampling:
            assert 0 <= record["calibration"] <= 1
        by_task.setdefault(record["task"], set()).add(record["method"])
    assert by_task["gaussian_deblur"] >= {"wiener", "tv", "ddrm 3", "daps 3x1"} and "bicubic" in by_task["sr4x"]
    assert by_task["phase_retrieval"] == {"ncvsd 3", "ncvsd 2", "pnp_teacher 2", "dps 4", "daps 3x1", "hio"}


def test_every_method_gets_the_same_measurement_bit_for_bit(smoke_run):
    _, seen, _ = smoke_run
    first = {}
    for task, method, measurement in seen:
        key = (task, tuple(measurement.shape), float(measurement.flatten()[0]))
        first.setdefault(key, measurement)
        assert torch.equal(first[key], measurement), (task, method)
    methods_per_measurement = {}
    for task, method, measurement in seen:
        methods_per_measurement.setdefault((task, float(measurement.flatten()[0])), set()).add(method)
    assert len(methods_per_measurement) == 8  # 4 tasks x 2 images
    assert all(len(m) >= 5 for m in methods_per_measurement.values())


def test_resume_skips_finished_cells_and_reruns_changed_ones(tmp_path, monkeypatch):
    import ncvsd_inverse.bench.runner as runner

    suite_text = """
name: resume
data: {folder: DATA, crop: 32, first: 2}
tasks: [sr4x]
runs: 2
methods:
  ncvsd: {steps: [STEPS]}
  classical: {}
"""
    calls = []
    real = runner.timed_run

    def counted(method, problem, variant, *args):
        calls.append(method.label(variant))
        return real(method, problem, variant, *args)

    monkeypatch.setattr(runner, "timed_run", counted)
    out = tmp_path / "out"
    run_suite(load_suite(write_suite(tmp_path, suite_text.replace("STEPS", "2"))), out, progress=False)
    assert sorted(calls) == ["bicubic", "bicubic", "ncvsd 2", "ncvsd 2"]
    with pytest.raises(SuiteError, match="pass --resume"):
        run_suite(load_suite(write_suite(tmp_path, suite_text.replace("STEPS", "2"))), out, progress=False)
    calls.clear()
    records = run_suite(load_suite(write_suite(tmp_path, suite_text.replace("STEPS", "3"))), out, resume=True,
                        progress=False)
    assert sorted(calls) == ["ncvsd 3", "ncvsd 3"]  # the classical cells were kept
    assert [r["method"] for r in records] == ["ncvsd 3", "bicubic"]
    # a line cut by a kill is dropped and its cell redone
    cells_file = out / "cells" / "rank0.jsonl"
    lines = cells_file.read_text().splitlines()
    cells_file.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:40])
    assert len(read_cells(out / "cells")) == len(lines) - 1
    calls.clear()
    run_suite(load_suite(write_suite(tmp_path, suite_text.replace("STEPS", "3"))), out, resume=True, progress=False)
    assert len(calls) == 1
    # the task preset's sampler settings reach only PnP-GD: changing them reruns its cells, not the peers'
    original = runner.load_task
    monkeypatch.setattr(runner, "load_task", lambda name: with_sampler_settings(original(name), rho=3.0))
    calls.clear()
    run_suite(load_suite(write_suite(tmp_path, suite_text.replace("STEPS", "3"))), out, resume=True, progress=False)
    assert sorted(calls) == ["ncvsd 3", "ncvsd 3"]
    # a schedule for another step count reruns only that count's cells, and they run it
    monkeypatch.setattr(runner, "load_task", original)
    suite_two = load_suite(write_suite(tmp_path, suite_text.replace("STEPS", "2, 3")))
    before = {r["method"]: r for r in run_suite(suite_two, out, resume=True, progress=False)}
    scheduled = {3: {"rho": 3.0, "sigma_max": 2.0}}
    monkeypatch.setattr(runner, "load_task",
                        lambda name: task_from_dict({**original(name).to_dict(), "schedules": scheduled}))
    calls.clear()
    after = {r["method"]: r for r in run_suite(suite_two, out, resume=True, progress=False)}
    assert sorted(calls) == ["ncvsd 3", "ncvsd 3"]
    assert after["ncvsd 2"]["psnr"] == before["ncvsd 2"]["psnr"]
    assert after["ncvsd 3"]["psnr"] != before["ncvsd 3"]["psnr"]
    # the problem itself (here its noise) reaches every method
    monkeypatch.setattr(runner, "load_task", lambda name: task_from_dict({**original(name).to_dict(), "sigma_y": 0.1}))
    calls.clear()
    run_suite(load_suite(write_suite(tmp_path, suite_text.replace("STEPS", "3"))), out, resume=True, progress=False)
    assert sorted(calls) == ["bicubic", "bicubic", "ncvsd 3", "ncvsd 3"]
    # another network precision reruns the network's cells and keeps the classical ones (float32 always)
    calls.clear()
    run_suite(load_suite(write_suite(tmp_path, suite_text.replace("STEPS", "3")), precision="bfloat16"), out,
              resume=True, progress=False)
    assert sorted(calls) == ["ncvsd 3", "ncvsd 3"]
    # auto is keyed as what it resolves to: bfloat16 with native bf16 (the run just made: nothing
    # reruns), float32 without (kept from before; only the first image reruns, to redraw its picture)
    from ncvsd_inverse import machine
    for native, resolved, reruns in ((True, "bfloat16", []), (False, "float32", ["ncvsd 3"])):
        monkeypatch.setattr(machine, "native_bfloat16", lambda device_type="cpu", n=native: n)
        calls.clear()
        run_suite(load_suite(write_suite(tmp_path, suite_text.replace("STEPS", "3")), precision="auto"), out,
                  resume=True, progress=False)
        assert calls == reruns
        assert json.loads((out / "run.json").read_text())["suite_settings"]["precision"] == resolved


def test_a_per_task_setting_reruns_only_the_cells_of_its_task_and_its_picture_follows(tmp_path, monkeypatch):
    import ncvsd_inverse.bench.runner as runner

    suite_text = """
name: per-task
data: {folder: DATA, crop: 32, first: 1}
tasks: [sr4x, gaussian_deblur]
runs: 1
methods:
  diffpir: {steps: 2, lambda_: {gaussian_deblur: LAMBDA}}
"""
    calls = []
    real = runner.timed_run

    def counted(method, problem, variant, *args):
        calls.append((problem.task.name, variant["lambda_"]))
        return real(method, problem, variant, *args)

    monkeypatch.setattr(runner, "timed_run", counted)
    out = tmp_path / "out"
    run_suite(load_suite(write_suite(tmp_path, suite_text.replace("LAMBDA", "25"))), out, progress=False)
    assert calls == [("sr4x", 7.0), ("gaussian_deblur", 25.0)]
    picture = out / "images" / "gaussian_deblur" / "diffpir 2.png"
    drawn_by_25 = picture.read_bytes()
    calls.clear()
    run_suite(load_suite(write_suite(tmp_path, suite_text.replace("LAMBDA", "30"))), out, resume=True,
              progress=False)
    assert calls == [("gaussian_deblur", 30.0)]  # the SR cell's key holds only SR's lambda
    # reverted: the lambda-25 cell is finished, but the picture is lambda 30's, so only image 0 reruns
    drawn_by_30 = picture.read_bytes()
    calls.clear()
    run_suite(load_suite(write_suite(tmp_path, suite_text.replace("LAMBDA", "25"))), out, resume=True,
              progress=False)
    assert calls == [("gaussian_deblur", 25.0)]
    assert picture.read_bytes() == drawn_by_25 != drawn_by_30
    calls.clear()
    run_suite(load_suite(write_suite(tmp_path, suite_text.replace("LAMBDA", "25"))), out, resume=True,
              progress=False)
    assert calls == []
    # a task the mapping does not name gets the method's fallback
    diffpir = bench_methods.METHODS["diffpir"]
    assert diffpir.for_task({"steps": 5, "lambda_": {"sr4x": 3.0}}, "my_task") == {"steps": 5, "lambda_": 7.0}


def test_report_only_reports_the_finished_cells_and_runs_none(tmp_path, monkeypatch):
    """A subset run (--methods) leaves the other cells missing; --report-only then writes the
    whole suite's report of what is finished, says how much is missing, and runs nothing."""
    import ncvsd_inverse.bench.runner as runner

    text = """
name: interim
data: {folder: DATA, crop: 32, first: 2}
tasks: [sr4x, denoise]
runs: 2
methods:
  ncvsd: {steps: [2]}
  classical: {}
"""
    suite_file = write_suite(tmp_path, text)
    out = tmp_path / "out"
    with pytest.raises(SuiteError, match="no finished cells"):
        report_suite(load_suite(suite_file), out)
    run_suite(load_suite(suite_file, methods=["classical"], tasks=["sr4x"]), out, progress=False)
    monkeypatch.setattr(runner, "timed_run", lambda *args: pytest.fail("--report-only ran a cell"))
    records = report_suite(load_suite(suite_file), out)
    assert [r["method"] for r in records] == ["bicubic"]
    report = (out / "results.md").read_text()
    assert "Interim report: 4 cells of the suite are not finished yet" in report  # denoise has no cell yet
    assert json.loads((out / "run.json").read_text())["missing_cells"] == 4
    assert (out / "grid-sr4x.png").exists() and not (out / "grid-denoise.png").exists()
    result = CliRunner().invoke(main, [str(suite_file), "--out", str(out), "--report-only"])
    assert result.exit_code == 0 and "Interim report" in result.output


def test_a_report_names_the_machine_each_cell_ran_on(tmp_path):
    """Each cell records its machine; a suite resumed on another machine says which ran how many
    (each cell's seconds are its own machine's), and run.json counts them."""
    from ncvsd_inverse.machine import machine_summary

    text = """
name: machines
data: {folder: DATA, crop: 32, first: 2}
tasks: [sr4x]
methods:
  classical: {}
"""
    suite_file = write_suite(tmp_path, text)
    out = tmp_path / "out"
    run_suite(load_suite(suite_file), out, progress=False)
    here = machine_summary()
    assert f"Machine: {here}." in (out / "results.md").read_text()
    cells_file = out / "cells" / "rank0.jsonl"
    cells = [json.loads(line) for line in cells_file.read_text().splitlines()]
    assert len(cells) == 2 and all(cell["machine"] == here for cell in cells)
    cells[1]["machine"] = "Another CPU, 2 threads, no GPU, torch 2.14.1"
    del cells[0]["machine"]  # a cell from before machines were recorded
    cells_file.write_text("".join(json.dumps(cell) + "\n" for cell in cells))
    report_suite(load_suite(suite_file), out)
    assert ("Machines (each cell's seconds are its own machine's): not recorded (1 cells); "
            "Another CPU, 2 threads, no GPU, torch 2.14.1 (1 cells).") in (out / "results.md").read_text()
    assert json.loads((out / "run.json").read_text())["cell_machines"] == {
        "not recorded": 1, "Another CPU, 2 threads, no GPU, torch 2.14.1": 1}


def test_a_method_limited_to_the_first_images_keeps_its_cells(tmp_path):
    text = """
name: limited
data: {folder: DATA, crop: 32, first: 2}
tasks: [sr4x]
methods:
  ncvsd: {steps: [2]LIMIT}
  classical: {}
"""
    out = tmp_path / "out"
    full = run_suite(load_suite(write_suite(tmp_path, text.replace("LIMIT", ""))), out, progress=False)
    keys = set(read_cells(out / "cells"))
    limited = run_suite(load_suite(write_suite(tmp_path, text.replace("LIMIT", ", images: 1"))), out, resume=True,
                        progress=False)
    assert set(read_cells(out / "cells")) == keys  # nothing reran: the limit is not part of a cell's key
    assert {r["method"]: r["images"] for r in full} == {"ncvsd 2": 2, "bicubic": 2}
    assert {r["method"]: r["images"] for r in limited} == {"ncvsd 2": 1, "bicubic": 2}
    report = (out / "results.md").read_text()
    assert "| sr4x | ncvsd 2 | 2 | 1 |" in report and "| sr4x | bicubic | 0 | 2 |" in report
    bicubic = next(r for r in limited if r["method"] == "bicubic")
    assert f"| bicubic | {bicubic['psnr']:.2f} / {bicubic['lpips']:.3f} |" in report  # the summary table
    common = report.split("## Every method on the first 1 images")[1]
    assert "| sr4x | bicubic | 0 | 1 |" in common  # the like-for-like table


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun not on PATH")
def test_two_processes_give_the_results_of_one(tmp_path):
    suite = write_suite(tmp_path, """
name: shard
data: {folder: DATA, crop: 32, first: 3}
tasks: [random_inpainting]
runs: 2
methods:
  ncvsd: {steps: [2]}
  classical: {}
""")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "ncvsd_inverse.cli.bench", str(suite), "--out", str(tmp_path / "one"),
                    "--quiet"], check=True, env=env, capture_output=True)
    subprocess.run(["torchrun", "--nproc-per-node", "2", "-m", "ncvsd_inverse.cli.bench", str(suite), "--out",
                    str(tmp_path / "two"), "--quiet"], check=True, env=env, capture_output=True)
    assert sorted(p.name for p in (tmp_path / "two" / "cells").iterdir()) == ["rank0.jsonl", "rank1.jsonl"]

    def quality(folder):
        return [{k: v for k, v in r.items() if k not in ("seconds_per_image", "peak_mem_mb")}
                for r in json.loads((folder / "results.json").read_text())]

    assert quality(tmp_path / "one") == quality(tmp_path / "two")


@pytest.mark.parametrize("text, message", [
    ("name: x\ndata: {folder: DATA}\ntasks: [sr4x]\nmethods: {dps2: {}}", "methods.dps2: unknown method"),
    ("name: x\ndata: {folder: DATA}\ntasks: [sr4x]\nmethods: {ncvsd: {stepz: 3}}",
     "methods.ncvsd: unknown key 'stepz'"),
    ("name: x\ndata: {folder: DATA}\ntasks: [sr4x]\nmethods: {ncvsd: {steps: [0]}}", "methods.ncvsd.steps: must be"),
    ("name: x\ndata: {folder: DATA}\ntasks: [sr4x]\nmethods: {daps: {lr: {sr4x: -1}}}", "methods.daps.lr: must map"),
    ("name: x\ndata: {folder: /nonexistent}\ntasks: [sr4x]\nmethods: {classical: {}}", "data.folder: no such folder"),
    ("name: x\ndata: {folder: DATA, crop: 2}\ntasks: [sr4x]\nmethods: {classical: {}}", "data.crop: must be"),
    ("name: x\ndata: {folder: DATA}\ntasks: [sr5x]\nmethods: {classical: {}}", "tasks[0]: unknown task"),
    ("name: x\ndata: {folder: DATA}\ntasks: [sr4x]\nruns: 0\nmethods: {classical: {}}", "runs: must be"),
    ("name: x\ndata: {folder: DATA}\ntasks: [sr4x]\nmethods: {dps: {images: 0}}", "methods.dps.images: must be"),
    ("name: x\ndata: {folder: DATA}\ntasks: [sr4x]\nmethods: {classical: {}}\nextra: 1", "unknown key 'extra'"),
    ("[1, 2]", "must be a YAML mapping"),
    ("name: x\ndata: {folder: DATA}\ntasks: [sr4x]\nmethods: {classical: {}}\nprecision: half", "precision: must be"),
])
def test_a_bad_suite_fails_at_once_naming_the_entry(tmp_path, text, message):
    path = write_suite(tmp_path, text)
    result = CliRunner().invoke(main, [str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_deepinv_adapter_reproduces_the_teacher():
    from ncvsd_inverse import load_model

    teacher = load_model(None, "teacher")
    x01 = torch.rand(2, 3, 16, 16)
    sigma = torch.tensor([0.05, 0.3])
    with torch.no_grad():
        ours = teacher(2 * x01 - 1, 2 * sigma)
        assert torch.allclose(DeepinvDenoiser(teacher)(x01, sigma), (ours + 1) / 2, atol=1e-6)
        assert torch.allclose(DeepinvDenoiser(teacher)(x01, 0.3)[1], (ours[1] + 1) / 2, atol=1e-6)
        centered = DeepinvDenoiser(teacher, sigma_scale=0.5, centered=True)(x01 - 0.5, sigma)
        assert torch.allclose(centered, teacher(2 * x01 - 1, sigma) / 2, atol=1e-6)


def test_sr_svd_physics_matches_our_operator():
    operator = SuperResolution(4)
    x = torch.randn(2, 3, 32, 24)
    physics = to_deepinv_svd(operator, x.shape, 0.1)
    y = operator.forward(x)
    assert torch.allclose(physics.A(x), y, atol=1e-5)
    assert torch.allclose(physics.A_adjoint(y), operator.adjoint(y), atol=1e-5)
    assert torch.allclose(physics.A_dagger(y), operator.pseudo_inverse(y), atol=1e-4)
    assert physics.noise_model.sigma == pytest.approx(0.05)
    v = torch.randn_like(x)  # V is orthogonal
    assert torch.allclose(physics.V(physics.V_adjoint(v)), v, atol=1e-4)
    with pytest.raises(TypeError, match="no SVD"):
        to_deepinv_svd(PhaseRetrieval(), x.shape)


def test_ddrm_noise_scale_is_what_deepinv_injects():
    shape = (1, 3, 32, 32)
    assert bench_methods.ddrm_noise_scale(to_deepinv_svd(SuperResolution(4), shape), shape) == pytest.approx(
        2**-0.5, rel=0.02)
    assert bench_methods.ddrm_noise_scale(to_deepinv_svd(Blur(gaussian_kernel(9, 2.0)), shape), shape) == pytest.approx(
        1.0, rel=0.03)


def test_daps_samples_the_posterior_of_a_gaussian_toy():
    """Prior N(0, s^2), exact denoiser, two pixels observed with DAPS's likelihood std
    ``tau / sqrt(2)`` (the authors' code's Langevin on ``||A x0 - y||^2 / tau^2``). With a step
    size held (lr_min_ratio 1) and the annealing down to 0.01, the observed pixels follow the
    exact posterior; the unobserved ones keep the prior's mean, with the variance DAPS's Gaussian
    approximation ``p(x0 | x_t) ~ N(x0_hat, sigma_t^2)`` inflates (about +20 %: it adds
    sigma_t^2 where the true conditional variance is smaller)."""
    s, tau = 0.5, 0.1 * math.sqrt(2)
    mask = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    y1 = torch.tensor([[[[0.3, 0.0], [-0.4, 0.0]]]])
    y = y1.repeat(4000, 1, 1, 1)

    def denoiser(x, sigma):
        return s**2 / (s**2 + sigma.view(-1, 1, 1, 1) ** 2) * x

    out = daps_sample(denoiser, Inpainting(mask), y, annealing_steps=100, ode_steps=5, lr=1e-4, tau=tau,
                      lr_min_ratio=1.0, sigma_min=0.01, rng=torch.Generator().manual_seed(1))
    mean, var = out.mean(0).flatten(), out.var(0).flatten()
    noise_var = tau**2 / 2
    exact_mean = (y1 * s**2 / (s**2 + noise_var)).flatten()[[0, 2]]
    exact_var = s**2 * noise_var / (s**2 + noise_var)
    assert torch.allclose(mean[[0, 2]], exact_mean, atol=0.01)
    assert torch.allclose(var[[0, 2]], torch.full((2,), exact_var), rtol=0.15)
    assert mean[[1, 3]].abs().max() < 0.03 and torch.all((var[[1, 3]] > s**2) & (var[[1, 3]] < 1.35 * s**2))


def test_daps_grids_are_the_authors_truncated_poly7_grids():
    """200 annealing levels: the first 200 points of the 201-point poly-7 grid from 100 to 0.1,
    then 0; the ODE from sigma makes ode_steps calls on the first points of an (ode_steps + 1)-point
    grid to 0.01 and returns the last call's denoised image."""
    levels = annealing_levels(200)
    grid = [(100 ** (1 / 7) + i / 200 * (0.1 ** (1 / 7) - 100 ** (1 / 7))) ** 7 for i in range(201)]
    assert len(levels) == 201 and levels[-1] == 0.0
    assert levels[:-1] == pytest.approx(grid[:200], rel=1e-5) and levels[-2] > 0.1
    calls = []

    def denoiser(x, sigma):
        calls.append(float(sigma[0]))
        return 0.5 * x

    x = torch.ones(1, 1, 2, 2)
    out = ode_denoise(denoiser, x, 10.0, 5)
    ode_grid = [(10 ** (1 / 7) + i / 5 * (0.01 ** (1 / 7) - 10 ** (1 / 7))) ** 7 for i in range(6)]
    assert calls == pytest.approx(ode_grid[:5], rel=1e-5)
    expected = 1.0  # Euler on dx/dsigma = (x - 0.5 x) / sigma over the grid, then the jump to D
    for current, following in zip(ode_grid[:4], ode_grid[1:5]):
        expected *= 1 + 0.5 * (following - current) / current
    assert torch.allclose(out, torch.full_like(x, 0.5 * expected))
    assert ode_denoise(denoiser, x, 10.0, 1).equal(0.5 * x)


def test_dps_step_factor_is_the_ddpm_beta():
    """On deepinv's VP schedule with 1000 DDPM steps, the factor that multiplies the guidance in
    one step is the discrete beta_t = beta(t) / 1000 (beta linear from 0.1 to 20), so the
    paper's zeta becomes the weight 2 zeta / beta_t."""
    from deepinv.sampling import VariancePreservingDiffusion

    timesteps = torch.linspace(1, 0, 1001, dtype=torch.float64)
    levels, inverse_factor = bench_methods.dps_step_weights(VariancePreservingDiffusion(), timesteps)
    beta = (0.1 + timesteps[:-1] * (20 - 0.1)) / 1000
    middle = slice(10, 990)
    assert torch.allclose(1 / inverse_factor[middle], beta[middle], rtol=0.05)
    assert torch.all(levels[:-1] > levels[1:])  # decreasing noise levels, one per step


def test_every_packaged_suite_is_valid():
    names = sorted(p.stem for p in (ROOT / "benchmarks" / "suites").glob("*.yaml"))
    assert {"smoke", "cbsd68-quick", "cbsd68", "cbsd68-report", "ffhq-paper"} <= set(names)
    for name in names:
        suite = load_suite(name, data=DATA, teacher="teacher-path", generator="generator-path")
        assert suite.tasks and suite.methods and suite.teacher == "teacher-path", name


def test_a_name_list_skips_comments_and_blank_lines(tmp_path):
    names = sorted(p.name for p in DATA.iterdir() if p.suffix == ".png")[:2]
    (tmp_path / "split.txt").write_text(f"# a validation split\n{names[1]}\n\n{names[0]}\n")
    suite = load_suite(write_suite(tmp_path, f"""
name: listed
data: {{folder: DATA, list: {tmp_path / 'split.txt'}, crop: 16}}
tasks: [sr4x]
methods: {{classical: {{}}}}
"""))
    assert suite.names == (names[1], names[0])


def test_phase_retrieval_runs_are_scored_modulo_the_twin_without_choosing_by_the_truth():
    """The runs are put in the first run's orientation (no ground truth), then turned together if
    that is the truth's twin; a run that landed on the other orientation than the first is turned
    to it before the mean is taken."""
    from ncvsd_inverse.operators.phase_retrieval import modulo_twin, twin

    torch.manual_seed(0)
    truth = torch.rand(1, 3, 8, 8) * 2 - 1
    first, other = twin(truth), truth + 0.01 * torch.randn_like(truth)
    scored = modulo_twin(PhaseRetrieval().align_runs(torch.stack([first, other])), truth)
    assert torch.equal(scored[0], truth)  # the first run landed on the twin: turned for the score
    assert torch.equal(scored[1], twin(twin(other)))  # turned to the first's orientation, then back
    untouched = modulo_twin(PhaseRetrieval().align_runs(torch.stack([truth, twin(other)])), truth)
    assert torch.equal(untouched[1], other)

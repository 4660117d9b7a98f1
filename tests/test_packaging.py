"""The package as a user installs it: its own namespace (a user's ``tasks.py`` cannot shadow it),
``--version`` on every command, suites that find and check their data, one run per output folder,
one-line errors for YAML nested too deeply to parse, and the wheel in a fresh environment."""

import os
import shutil
import signal
import subprocess
import sys
import time
from importlib.metadata import distribution
from pathlib import Path

import pytest
from click.testing import CliRunner

from ncvsd_inverse.bench.suite import SuiteError, load_suite
from ncvsd_inverse.datasets import DataSetError, locate_set, verify_files
from ncvsd_inverse.files import FolderInUseError, hold_folder

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"


def shadowing_folder(root: Path) -> Path:
    """A user's project folder with its own ``tasks.py``, ``operators.py`` and ``tasks/`` package."""
    folder = root / "project"
    (folder / "tasks").mkdir(parents=True)
    (folder / "tasks.py").write_text("raise ImportError('the user tasks.py was imported')\n")
    (folder / "operators.py").write_text("raise ImportError('the user operators.py was imported')\n")
    (folder / "tasks" / "__init__.py").write_text("raise ImportError('the user tasks package was imported')\n")
    return folder


def test_a_users_tasks_and_operators_modules_do_not_shadow_the_package(tmp_path):
    folder = shadowing_folder(tmp_path)
    code = ("from ncvsd_inverse import solve; import ncvsd_inverse.tasks as t, ncvsd_inverse.operators as o; "
            "print(t.load_task('sr4x').name, o.Inpainting.__name__)")
    done = subprocess.run([sys.executable, "-c", code], cwd=folder, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.split() == ["sr4x", "Inpainting"], done.stderr


def console_scripts() -> list[str]:
    return sorted(e.name for e in distribution("ncvsd-inverse").entry_points if e.group == "console_scripts")


def test_every_command_answers_version_with_the_shipped_models_digests():
    from ncvsd_inverse import __version__

    scripts = console_scripts()
    assert len(scripts) >= 7, scripts
    running = {name: subprocess.Popen([shutil.which(name) or name, "--version"], text=True, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE) for name in scripts}
    for name, process in running.items():
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, (name, err)
        assert out.startswith(f"ncvsd-inverse {__version__} (shipped model: generator ") and "teacher " in out, out


def test_a_named_set_is_found_under_ncvsd_data_or_data_and_refused_when_missing(tmp_path, monkeypatch):
    monkeypatch.delenv("NCVSD_DATA", raising=False)
    with pytest.raises(DataSetError, match=r"not found.*published at github.com/cszn/FFDNet.*sha256sum -c") as error:
        locate_set("cbsd68")
    assert "\n" not in str(error.value)
    (tmp_path / "cbsd68").mkdir()
    monkeypatch.setenv("NCVSD_DATA", str(tmp_path))
    assert locate_set("cbsd68") == tmp_path / "cbsd68"
    assert locate_set("cbsd68", DATA) == DATA  # --data wins
    assert locate_set("smoke").parent.name == "data"  # shipped in the package
    with pytest.raises(DataSetError, match="unknown data set 'kodak'"):
        locate_set("kodak")


def test_images_are_checked_against_the_published_manifest(tmp_path):
    names = ["101087.png", "108005.png"]
    verify_files("cbsd68", DATA, names)  # the test images are exact CBSD68 files
    for name in names:
        shutil.copy(DATA / name, tmp_path / name)
    (tmp_path / names[1]).write_bytes((tmp_path / names[1]).read_bytes() + b"\0")
    with pytest.raises(DataSetError, match="108005.png differs from the published file"):
        verify_files("cbsd68", tmp_path, names)
    with pytest.raises(DataSetError, match="is not one of its files"):
        verify_files("set5", DATA, names[:1])


def test_a_suite_run_on_altered_images_stops_before_any_cell(tmp_path):
    from ncvsd_inverse.cli.bench import main

    folder = tmp_path / "cbsd68"
    folder.mkdir()
    for name in ("101087.png", "108005.png"):
        shutil.copy(DATA / name, folder / name)
    (folder / "108005.png").write_bytes((folder / "108005.png").read_bytes()[:-1] + b"\1")
    result = CliRunner().invoke(main, ["cbsd68-quick", "--data", str(folder), "--first", "2", "--crop", "32",
                                       "--tasks", "sr4x", "--methods", "classical", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "differs from the published file" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not list((tmp_path / "out").glob("cells/*.jsonl"))


def test_every_packaged_suite_names_a_set_or_needs_data(monkeypatch):
    monkeypatch.delenv("NCVSD_DATA", raising=False)
    assert load_suite("smoke").data_set == "smoke"
    with pytest.raises(SuiteError, match="data.set: data set 'cbsd68' not found"):
        load_suite("cbsd68-quick")
    with pytest.raises(SuiteError, match="names no image folder: pass --data"):
        load_suite("ffhq-paper")


def test_a_second_process_on_a_held_folder_is_refused_naming_the_holder_and_a_killed_holder_frees_it(tmp_path):
    code = ("import sys, time; from ncvsd_inverse.files import hold_folder\n"
            "with hold_folder(sys.argv[1]):\n    print('held', flush=True); time.sleep(600)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderInUseError, match=f"in use by process {holder.pid} "):
            with hold_folder(tmp_path):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with hold_folder(tmp_path):  # no stale lock after a kill
        pass


def test_two_bench_runs_on_one_folder_the_second_refuses_in_one_line(tmp_path):
    """The issue's case: two ``ncvsd-bench --resume`` on one --out. The first holds the folder;
    the second stops at once, naming it, instead of computing every cell again."""
    out = tmp_path / "out"
    command = [sys.executable, "-m", "ncvsd_inverse.cli.bench", "smoke", "--out", str(out), "--resume", "--quiet",
               "--tasks", "sr4x", "--methods", "dps"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 240
        while not (out / ".lock-rank0").exists() or not (out / ".lock-rank0").read_text().strip():
            assert first.poll() is None and time.time() < deadline, first.communicate()
            time.sleep(0.2)
        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert second.returncode == 2, second.stderr
        assert f"in use by process {first.pid} " in second.stderr and len(second.stderr.strip().splitlines()) == 1
    finally:
        first.wait(timeout=600)
    assert first.returncode == 0


@pytest.mark.parametrize("entry", ["task", "suite", "training preset"])
def test_yaml_nested_too_deeply_is_one_line_and_exit_2(tmp_path, entry):
    deep = tmp_path / "deep.yaml"
    deep.write_text("[" * 2000 + "]" * 2000 + "\n")
    if entry == "task":
        from ncvsd_inverse.cli.solve import main
        args = ["--task", str(deep), str(DATA / "101087.png"), "-o", str(tmp_path / "x.png")]
    elif entry == "suite":
        from ncvsd_inverse.cli.bench import main
        args = [str(deep), "--out", str(tmp_path / "out")]
    else:
        from ncvsd_inverse.cli.train import train_main as main
        args = ["--preset", str(deep), "--data", str(DATA), "--out", str(tmp_path / "run"), "--quiet"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "nested too deeply" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


@pytest.mark.skipif(not os.environ.get("NCVSD_TEST_WHEEL", "1") == "1", reason="NCVSD_TEST_WHEEL=0")
def test_the_wheel_works_in_a_fresh_environment_without_the_repository(tmp_path):
    """Build the wheel, install it into a new virtual environment (dependencies from the same
    package index pip uses here), and from a folder with a user's ``tasks.py`` run
    ``ncvsd-solve --version``, the README's main command on the packaged example and
    ``ncvsd-bench smoke``."""
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)], check=True,
                   capture_output=True, timeout=600)
    wheel = next(dist.glob("ncvsd_inverse-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    install = subprocess.run([*pip, str(wheel)], capture_output=True, text=True, timeout=1200)
    assert install.returncode == 0, install.stderr[-2000:]
    project = shadowing_folder(tmp_path)
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": ""}
    env.pop("NCVSD_DATA", None)

    def run(*command: str) -> str:
        done = subprocess.run(list(command), cwd=project, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
        return done.stdout

    assert run("ncvsd-solve", "--version").startswith("ncvsd-inverse ")
    example = run("python", "-c", "import ncvsd_inverse.datasets as d; print(d.PACKAGE_DATA / 'examples' / "
                                  "'tiger_sr4x.png')").strip()
    assert str(ROOT) not in example  # the installed copy, not the repository's
    run("ncvsd-solve", "--task", "sr4x", example, "-o", "tiger_x4.png")
    assert (project / "tiger_x4.png").stat().st_size > 10_000
    report = run("ncvsd-bench", "smoke", "--out", "bench", "--quiet")
    assert "the published set `smoke` (every file sha256-checked" in report


def test_a_training_run_folder_in_use_is_refused_in_one_line(tmp_path):
    from ncvsd_inverse.cli.train import train_main

    run = tmp_path / "run"
    code = ("import sys, time; from ncvsd_inverse.files import hold_folder\n"
            "with hold_folder(sys.argv[1], '.lock-rank0'):\n    print('held', flush=True); time.sleep(600)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        result = CliRunner().invoke(train_main, ["--preset", "tiny", "--data", str(DATA), "--out", str(run),
                                                 "--steps", "1", "--quiet", "--device", "cpu"])
        assert result.exit_code == 2 and f"in use by process {holder.pid} " in result.output, result.output
        assert not (run / "latest.safetensors").exists()
    finally:
        holder.kill()
        holder.wait()


def test_no_tracked_file_over_20_mb_outside_the_shipped_model():
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    paths = [ROOT / name for name in listed.stdout.decode().split("\0") if name]
    large = [str(p.relative_to(ROOT)) for p in paths if p.is_file() and p.stat().st_size > 20 * 2**20
             and not str(p.relative_to(ROOT)).startswith("ncvsd_inverse/default_model/")]
    assert not large, f"tracked files over 20 MB: {large}"


def test_machine_facts_import_nothing_of_the_sampler():
    code = "import sys, ncvsd_inverse.machine; sys.exit('ncvsd_inverse.sampling' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=300).returncode == 0


def test_the_packaged_example_images_are_found_by_name_and_a_wrong_name_lists_them():
    from ncvsd_inverse.datasets import example_image
    from ncvsd_inverse.io import read_image

    assert read_image(example_image("tiger_sr4x.png")).shape == (1, 3, 64, 64)
    with pytest.raises(FileNotFoundError, match="tiger.png"):
        example_image("lion.png")

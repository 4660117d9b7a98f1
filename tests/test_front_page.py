"""The front page and the house: a README read in five minutes whose two commands are what CI
runs, product files a reader can hold in their head, and a repository that clones small."""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT_FOLDERS = ("ncvsd_inverse", "operators", "tasks")


def readme_commands() -> list[str]:
    """The README's shell lines that end with `# main job` and `# tests (= .ci/run)`."""
    lines = (ROOT / "README.md").read_text().splitlines()
    return [line.split("  #")[0].strip() for line in lines if re.search(r"#\s*(main job|tests \(= \.ci/run\))", line)]


def test_readme_is_a_front_page_of_at_most_150_lines():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 150


def test_readme_test_command_is_exactly_what_ci_runs():
    main, tests = readme_commands()
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.startswith("pip install")]
    assert ci == [tests]
    assert "mkdocs build --strict" in tests and " -q " not in tests.split("mkdocs")[1].split("&&")[0]
    example = main.split("--task sr4x ")[1].split()[0]
    assert (ROOT / example).is_file(), example


def test_readme_links_point_at_files_that_exist():
    text = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), target


def test_no_product_file_over_450_lines():
    long = [f"{p.relative_to(ROOT)} ({n})" for folder in PRODUCT_FOLDERS for p in (ROOT / folder).rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 450]
    assert not long, long


def test_tracked_tree_outside_the_shipped_model_is_under_60_mb():
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    names = [name for name in listed.stdout.decode().split("\0") if name]
    size = sum((ROOT / n).stat().st_size for n in names
               if (ROOT / n).is_file() and not n.startswith("ncvsd_inverse/default_model/"))
    assert size < 60 * 2**20, f"{size / 2**20:.1f} MiB tracked outside the shipped model"


def test_the_api_reference_renders_roles_as_code_and_parameters_as_a_list():
    import importlib.util

    spec = importlib.util.spec_from_file_location("docstrings", ROOT / "docs" / "docstrings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = ("Solve it (see :func:`~ncvsd_inverse.api.solve`, :mod:`ncvsd_inverse.tiling`).\n\n"
            "x: the image\n  in [-1, 1].\nmask / kernel: the preset's.\nNote: not a parameter.")
    assert module.markdown_docstring(text, {"x", "mask", "kernel"}).splitlines() == [
        "Solve it (see `solve`, `ncvsd_inverse.tiling`).", "",
        "- `x`: the image", "  in [-1, 1].", "- `mask` / `kernel`: the preset's.", "Note: not a parameter."]

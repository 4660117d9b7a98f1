"""The runnable examples in examples/ (the manual shows each with its output picture): each runs
end to end at its smoke size and writes its picture."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("make_figures", ROOT / "docs" / "make_figures.py")
make_figures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_figures)
EXAMPLES = make_figures.PICTURES      # script -> the picture it writes (the manual shows each)


def test_every_example_is_tested_and_shown_in_the_manual():
    assert sorted(p.name for p in (ROOT / "examples").glob("*.py")) == sorted(EXAMPLES)
    manual = (ROOT / "docs" / "examples.md").read_text()
    for script in EXAMPLES:
        assert f"examples/{script}" in manual and f"images/examples/{Path(script).stem}.png" in manual
        assert (ROOT / "docs" / "images" / "examples" / f"{Path(script).stem}.png").is_file()


@pytest.mark.parametrize("script", sorted(EXAMPLES))
def test_example_runs_at_smoke_size(script, tmp_path):
    env = {**os.environ, "NCVSD_EXAMPLES_SMOKE": "1"}
    done = subprocess.run([sys.executable, str(ROOT / "examples" / script), "--out", str(tmp_path)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    picture = tmp_path / EXAMPLES[script]
    assert picture.is_file() and picture.stat().st_size > 1000
    assert "wrote" in done.stdout

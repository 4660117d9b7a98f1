"""Every command-line tool also runs as ``python -m MODULE`` (on a machine where the package is
only on ``PYTHONPATH``, e.g. a lent GPU), and says so with its usage instead of exiting silently."""

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_each_console_script_module_runs_with_python_m():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    modules = sorted({target.split(":")[0] for target in scripts.values()})
    assert len(modules) >= 6, modules
    running = {module: subprocess.Popen([sys.executable, "-m", module, "--help"], cwd=ROOT, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE) for module in modules}
    for module, process in running.items():
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0 and "Usage:" in out, (module, out, err)

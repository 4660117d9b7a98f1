"""Every command-line tool also runs as ``python -m MODULE`` (on a machine where the package is
only on ``PYTHONPATH``, e.g. a lent GPU), and says so with its usage instead of exiting silently."""

import subprocess
import sys
from importlib.metadata import distribution
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_each_console_script_module_runs_with_python_m():
    scripts = [e for e in distribution("ncvsd-inverse").entry_points if e.group == "console_scripts"]
    modules = sorted({script.value.split(":")[0] for script in scripts})
    assert len(modules) >= 6, modules
    running = {module: subprocess.Popen([sys.executable, "-m", module, "--help"], cwd=ROOT, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE) for module in modules}
    for module, process in running.items():
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0 and "Usage:" in out, (module, out, err)

"""The memory check: its estimate against a measured network call, its growth with the image,
and the one-line refusal of a problem that does not fit."""

import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner

from ncvsd_inverse import load_model, solve
from ncvsd_inverse.cli.solve import main
from ncvsd_inverse.io import write_image
from ncvsd_inverse.memory import InsufficientMemoryError, NetworkSize, network_bytes, solve_memory_bytes
from ncvsd_inverse.networks import UNetConfig
from ncvsd_inverse.sampling import native_bfloat16

#: run as ``python -c PEAK_OF_ONE_CALL KIND system|retain float32|bfloat16 SIDE``: prints the bytes
#: one call of the shipped KIND network on a SIDE x SIDE image adds to the peak RSS
#: (also run by ``lab/levers/memory/calibrate.py`` at more sizes)
PEAK_OF_ONE_CALL = """
import sys, torch
from pathlib import Path
from ncvsd_inverse import load_model
from ncvsd_inverse.allocator import retain_freed_memory
torch.set_num_threads(1)
if sys.argv[2] == "retain":
    retain_freed_memory()
model = load_model(None, sys.argv[1])
side = int(sys.argv[4])
x = torch.randn(1, 3, side, side)

def kib(field):
    line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith(field))
    return int(line.split()[1])

before = kib("VmRSS:")
Path("/proc/self/clear_refs").write_text("5")  # resets the peak (VmHWM) to the current RSS
with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=sys.argv[3] == "bfloat16"):
    model(x, torch.tensor([0.5]))
print((kib("VmHWM:") - before) * 1024)
"""


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
@pytest.mark.parametrize("allocator", ["system", "retain"])
@pytest.mark.parametrize("kind", ["generator", "teacher"])
def test_network_estimate_covers_a_measured_call_without_gross_excess(kind, allocator, precision):
    """Peak RSS growth of one call of a shipped model at 192x192, in a fresh process (the peak is
    reset after loading the model, so only the call counts), with the system's malloc settings
    (library use) and with freed memory retained (the command-line tools), in float32 and, where
    it is native, in bfloat16 autocast (whose estimate is half)."""
    if precision == "bfloat16" and not native_bfloat16("cpu"):
        pytest.skip("bfloat16 is emulated on this CPU: the solver never picks it (precision auto)")
    probe = [sys.executable, "-c", PEAK_OF_ONE_CALL, kind, allocator, precision, "192"]
    measured = int(subprocess.run(probe, check=True, capture_output=True, text=True).stdout.split()[-1])
    model = load_model(None, kind)
    network = NetworkSize.of(model, precision)
    assert network.encoders == (2 if kind == "generator" else 1)  # the condition encoder is the generator's
    estimate = network_bytes(network, 192, 192)
    assert measured <= estimate <= 3 * measured, (measured, estimate)


def test_estimate_grows_linearly_with_pixels_and_chains_quadratically_with_attention():
    network = NetworkSize(UNetConfig())
    sizes = [solve_memory_bytes((1, 3, n, n), 1, network, 1) for n in (512, 1024, 2048)]
    assert (sizes[2] - sizes[1]) / (sizes[1] - sizes[0]) == pytest.approx(4.0)  # affine in the pixel count
    assert solve_memory_bytes((1, 3, 256, 256), 4) > 3.9 * solve_memory_bytes((1, 3, 256, 256), 1) - 10 * 2**20
    attention = NetworkSize(UNetConfig(attn_levels=(2,)))
    extra_small = network_bytes(attention, 64, 64) - network_bytes(network, 64, 64)
    extra_large = network_bytes(attention, 128, 128) - network_bytes(network, 128, 128)
    assert extra_large == pytest.approx(16 * extra_small, rel=1e-6)


def test_a_problem_too_large_for_the_memory_is_refused_in_one_line(tiny_models, tmp_path, monkeypatch):
    _, generator = tiny_models
    network = NetworkSize.of(load_model(generator))
    monkeypatch.setenv("NCVSD_MEMORY_LIMIT_GB", "0.02")
    with pytest.raises(InsufficientMemoryError, match=r"128x128 solve with 4 chain\(s\) needs about .* GiB"):
        solve(torch.zeros(1, 3, 32, 32), "sr4x", model=generator, runs=4, steps=1)
    limit = 0.9 * solve_memory_bytes((1, 3, 256, 256), 1, network, 1)
    monkeypatch.setenv("NCVSD_MEMORY_LIMIT_GB", str(limit / 2**30))
    write_image(torch.zeros(1, 3, 64, 64), tmp_path / "low.png")
    result = CliRunner().invoke(main, ["--task", "sr4x", str(tmp_path / "low.png"), "--model", str(generator),
                                       "-o", str(tmp_path / "out.png"), "--quiet", "--precision", "float32"])
    assert result.exit_code == 2 and "(the largest that fits is about " in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "out.png").exists()
    side = int(result.output.split("fits is about ")[1].split("x")[0])
    fits, one_more = (solve_memory_bytes((1, 3, s, s), 1, network, 1) for s in (side, side + 8))
    assert fits <= limit < one_more
    # bfloat16 activations take half the memory: the estimate (which picks tiles and refuses) knows it
    bf16, f32 = (network_bytes(NetworkSize(UNetConfig(), precision=p), 1024, 1024) for p in ("bfloat16", "float32"))
    assert bf16 < 0.55 * f32
    monkeypatch.setenv("NCVSD_MEMORY_LIMIT_GB", "64")
    assert solve(torch.zeros(1, 3, 8, 8), "sr4x", model=generator, steps=1).mean.shape == (1, 3, 32, 32)

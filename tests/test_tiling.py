"""Tiled network evaluation: equal to the untiled call when the margin covers the receptive field,
seams hidden by the blend, memory bounded by the tile, and the options that reach it."""

import pytest
import torch
from click.testing import CliRunner

from ncvsd_inverse import load_model, solve
from ncvsd_inverse.api import AUTO_MEMORY_SHARE, choose_tile
from ncvsd_inverse.cli.solve import main
from ncvsd_inverse.io import write_image
from ncvsd_inverse.memory import NetworkSize, solve_memory_bytes
from ncvsd_inverse.networks import UNetConfig
from ncvsd_inverse.sampling import DenoiserPrior, GenerativePrior
from ncvsd_inverse.tiling import balanced_tile, blend_weights, receptive_radius, tile_starts


def test_tiles_cover_the_axis_aligned_and_weights_never_vanish():
    for length, tile, overlap, multiple in [(300, 64, 20, 4), (64, 64, 10, 4), (1000, 256, 120, 8), (50, 100, 8, 2)]:
        starts = tile_starts(length, tile, overlap, multiple)
        size = min(tile, length)
        assert starts[0] == 0 and starts[-1] + size == length
        if length % multiple == 0 and tile % multiple == 0:
            assert all(s % multiple == 0 for s in starts)
        assert all(b - a <= size - overlap or b == starts[-1] for a, b in zip(starts, starts[1:]))
        total = torch.zeros(length, dtype=torch.float64)
        for start in starts:
            total[start:start + size] += blend_weights(start, size, length, margin=(overlap - 8) // 2, ramp=8)
        assert bool((total > 0.1).all())


@pytest.mark.parametrize("kind", ["generator", "teacher"])
def test_tiled_equals_untiled_when_the_margin_covers_the_receptive_field(tiny_models, kind):
    model = load_model(tiny_models[1] if kind == "generator" else tiny_models[0], kind)
    radius = receptive_radius(model)
    prior_class = GenerativePrior if kind == "generator" else DenoiserPrior
    u, sigma = torch.randn(2, 3, 90, 130) * 0.5, torch.tensor([0.3, 1.0])
    # float32: in bfloat16 a last-bit difference of a float32 intermediate (vectorised body
    # against scalar tail of an elementwise kernel) can flip a bf16 rounding, so "equal" there
    # means equal to bf16's precision, not to float rounding
    full = prior_class(model, 3, precision="float32")(u, sigma, torch.Generator().manual_seed(0))
    tile = 2 * radius + 48
    exact = prior_class(model, 3, precision="float32", tile=tile, tile_margin=radius)(
        u, sigma, torch.Generator().manual_seed(0))
    assert (exact - full).abs().max() < 1e-5
    short = prior_class(model, 3, precision="float32", tile=tile, tile_margin=2)(
        u, sigma, torch.Generator().manual_seed(0))
    assert (short - full).abs().max() > 10 * (exact - full).abs().max()  # the margin is what makes it exact


def test_solve_tiles_on_request_and_when_memory_is_short(tiny_models, monkeypatch, tmp_path):
    _, generator = tiny_models
    y = torch.rand(1, 3, 24, 30) * 2 - 1
    untiled = solve(y, "sr4x", model=generator, steps=3, tile=None)
    model = load_model(generator)
    tile = 2 * receptive_radius(model) + 40
    tiled = solve(y, "sr4x", model=generator, steps=3, tile=tile)
    assert (tiled.mean - untiled.mean).abs().max() < 1e-3
    network = NetworkSize.of(model)
    big = torch.rand(1, 3, 80, 80) * 2 - 1  # a 320x320 output
    needed_untiled = solve_memory_bytes((1, 3, 320, 320), 1, network, 1)
    needed_tiled = solve_memory_bytes((1, 3, 320, 320), 1, network, 1, tile=256)
    assert needed_tiled < needed_untiled
    monkeypatch.setenv("NCVSD_MEMORY_LIMIT_GB", str((needed_tiled + needed_untiled) / 2 / 2**30))
    with pytest.raises(ValueError, match="needs about"):
        solve(big, "sr4x", model=generator, steps=1, tile=None, precision="float32")
    assert solve(big, "sr4x", model=generator, steps=1, precision="float32").mean.shape == (1, 3, 320, 320)  # tiles
    monkeypatch.delenv("NCVSD_MEMORY_LIMIT_GB")
    write_image(y, tmp_path / "low.png")
    for value, message in (("7", "at least 16 pixels"), ("big", "is not auto, 0 or a number")):
        result = CliRunner().invoke(main, ["--task", "sr4x", str(tmp_path / "low.png"), "--model", str(generator),
                                           "--tile", value, "--steps", "1", "-o", str(tmp_path / "o.png")])
        assert result.exit_code == 2 and message in result.output, result.output
    result = CliRunner().invoke(main, ["--task", "sr4x", str(tmp_path / "low.png"), "--model", str(generator),
                                       "--tile", "64", "--steps", "1", "-o", str(tmp_path / "o.png"), "--quiet"])
    assert result.exit_code == 0, result.output


def test_memory_estimate_with_tiles_grows_only_with_the_state():
    network = NetworkSize(UNetConfig())
    small, large = (solve_memory_bytes((1, 3, n, n), 1, network, 1, tile=512) for n in (2048, 4096))
    untiled = solve_memory_bytes((1, 3, 4096, 4096), 1, network, 1)
    assert large < untiled / 3 and large / small < 4.1


@pytest.mark.parametrize("length, tile, overlap, multiple",
                         [(1024, 512, 124, 8), (2048, 1024, 124, 8), (3000, 1024, 124, 8), (600, 512, 124, 8),
                          (300, 64, 20, 4), (97, 40, 10, 1), (512, 512, 124, 8), (300, 512, 124, 8)])
def test_balanced_tiles_are_no_more_and_no_larger_and_still_overlap(length, tile, overlap, multiple):
    balanced = balanced_tile(length, tile, overlap, multiple)
    starts = tile_starts(length, balanced, overlap, multiple)
    assert balanced <= tile and (balanced % multiple == 0 or balanced == length)
    assert len(starts) == len(tile_starts(length, tile, overlap, multiple))
    assert starts[0] == 0 and starts[-1] + balanced == length
    assert all(b - a <= balanced - overlap for a, b in zip(starts, starts[1:]))  # neighbours share the overlap
    if len(starts) > 1:
        assert len(tile_starts(length, balanced - multiple, overlap, multiple)) > len(starts)  # the smallest
    if (length, tile) == (1024, 512):
        assert balanced == 432  # 3 x 432 pixels per row instead of 3 x 512


def test_auto_tiles_only_when_the_untiled_solve_does_not_fit(monkeypatch):
    network = NetworkSize(UNetConfig())
    shape = (1, 3, 1024, 1024)
    untiled = solve_memory_bytes(shape, 1, network, None)
    per_tile = {t: solve_memory_bytes(shape, 1, network, None, t) for t in (512, 384, 256)}
    assert untiled > per_tile[512] > per_tile[384] > per_tile[256]
    monkeypatch.setenv("NCVSD_MEMORY_LIMIT_GB", str(1.01 * untiled / AUTO_MEMORY_SHARE / 2**30))
    assert choose_tile("auto", shape, 1, network, None, "cpu") is None
    monkeypatch.setenv("NCVSD_MEMORY_LIMIT_GB", str(1.01 * per_tile[384] / AUTO_MEMORY_SHARE / 2**30))
    assert choose_tile("auto", shape, 1, network, None, "cpu") == 384  # the largest that fits
    monkeypatch.setenv("NCVSD_MEMORY_LIMIT_GB", str(0.5 * per_tile[256] / 2**30))
    assert choose_tile("auto", shape, 1, network, None, "cpu") == 256  # the solve's check then refuses it
    assert choose_tile(640, shape, 1, network, None, "cpu") == 640  # a size asked for is kept

"""Fuzzing by attack: generated bad input must end in a correct result or our own named error.

Targets: image reading, task presets, the operators' likelihood steps, checkpoint loading and
the ``ncvsd-solve`` / ``ncvsd-degrade`` command lines. A traceback (any other exception), a hang
or a partial output file fails the test. ``NCVSD_FUZZ_LONG=1`` tries many thousands of cases
instead of a few hundred; the counts per target are printed at the end of the run.
"""

import io
import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from ncvsd_inverse.checkpoints import CheckpointError
from ncvsd_inverse.io import ImageReadError, read_image
from ncvsd_inverse.operators import Blur, Inpainting, SuperResolution, gaussian_kernel, random_mask
from ncvsd_inverse.tasks import TaskError, task_from_dict

LONG = bool(os.environ.get("NCVSD_FUZZ_LONG"))
COUNTS: dict[str, int] = {}


def fuzz(examples: int):
    """Hypothesis settings for one target: ``examples`` cases (x20 in the long mode)."""
    return settings(max_examples=examples * (20 if LONG else 1), deadline=None, derandomize=not LONG,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def count(target: str) -> None:
    COUNTS[target] = COUNTS.get(target, 0) + 1


# --- image files ---------------------------------------------------------------------------------

def _encoded(array: np.ndarray, mode: str | None, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format=fmt)
    return buffer.getvalue()


@st.composite
def image_files(draw) -> tuple[str, bytes]:
    """Valid, truncated, bit-flipped and random files of every kind the reader meets."""
    kind = draw(st.sampled_from(["random", "png", "jpeg", "tiff", "bmp", "png16", "palette", "cmyk", "rgba", "la"]))
    if kind == "random":
        return draw(st.sampled_from([".png", ".jpg", ".tif", ".bmp"])), draw(st.binary(max_size=300))
    height, width = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if kind == "png16":
        data, suffix = _encoded(rng.integers(0, 65536, (height, width), dtype=np.uint16), None, "PNG"), ".png"
    elif kind == "palette":
        image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).convert("P")
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        data, suffix = buffer.getvalue(), ".png"
    elif kind == "cmyk":
        data, suffix = _encoded(rng.integers(0, 256, (height, width, 4), dtype=np.uint8), "CMYK", "JPEG"), ".jpg"
    elif kind in ("rgba", "la"):
        channels = 4 if kind == "rgba" else 2
        data = _encoded(rng.integers(0, 256, (height, width, channels), dtype=np.uint8), kind.upper(), "PNG")
        suffix = ".png"
    else:
        fmt = {"png": "PNG", "jpeg": "JPEG", "tiff": "TIFF", "bmp": "BMP"}[kind]
        data = _encoded(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB", fmt)
        suffix = {"png": ".png", "jpeg": ".jpg", "tiff": ".tif", "bmp": ".bmp"}[kind]
    damage = draw(st.sampled_from(["none", "truncate", "flip"]))
    if damage == "truncate":
        data = data[:draw(st.integers(0, max(len(data) - 1, 0)))]
    elif damage == "flip" and data:
        position = draw(st.integers(0, len(data) - 1))
        data = data[:position] + bytes([data[position] ^ (1 << draw(st.integers(0, 7)))]) + data[position + 1:]
    return suffix, data


@fuzz(150)
@given(case=image_files())
def test_read_image_returns_an_image_or_its_own_error(tmp_path_factory, case):
    count("read_image")
    suffix, data = case
    path = tmp_path_factory.mktemp("img") / f"file{suffix}"
    path.write_bytes(data)
    try:
        image = read_image(path)
    except ImageReadError as error:
        assert str(error).startswith(str(path)) and "\n" not in str(error)
        return
    except UserWarning:  # alpha dropped: a warning, not an error
        return
    assert image.ndim == 4 and image.shape[0] == 1 and image.shape[1] in (1, 3)
    assert bool(torch.isfinite(image).all()) and image.min() >= -1 and image.max() <= 1


def test_extreme_image_shapes(tmp_path):
    count("read_image")
    Image.fromarray(np.zeros((1, 100000), np.uint8)).save(tmp_path / "wide.png")
    assert read_image(tmp_path / "wide.png").shape == (1, 1, 1, 100000)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageReadError):
        read_image(tmp_path / "empty.png")
    # a PNG header that claims a zero-size image
    chunk = struct.pack(">IIBBBBB", 0, 0, 8, 2, 0, 0, 0)
    (tmp_path / "zero.png").write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + chunk + b"\0" * 4)
    with pytest.raises(ImageReadError):
        read_image(tmp_path / "zero.png")


# --- task presets ----------------------------------------------------------------------------------

yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**30, 10**30) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=12)
preset_keys = st.sampled_from(["name", "description", "sigma_y", "operator", "sampler", "type", "factor", "steps",
                               "mask", "kernel", "likelihood_scale", "sigma_max", "init", "restarts", "other"])


@st.composite
def presets(draw) -> dict:
    """Mostly-plausible presets with random values, wrong types and deep nesting mixed in."""
    preset = {"name": "fuzz", "sigma_y": draw(st.floats(-1, 3) | yaml_values),
              "operator": {"type": draw(st.sampled_from(["super_resolution", "inpainting", "blur", "denoising",
                                                         "phase_retrieval", "warp"])),
                           **draw(st.dictionaries(preset_keys, yaml_values, max_size=3))},
              "sampler": draw(st.dictionaries(preset_keys, yaml_values | st.integers(0, 100), max_size=4))}
    return draw(st.sampled_from([preset, {**preset, **draw(st.dictionaries(preset_keys, yaml_values, max_size=2))}]))


@fuzz(200)
@given(preset=presets())
@example(preset={"name": "fuzz", "sigma_y": 0.0, "operator": {"type": [], "name": None}, "sampler": {}})  # found
@example(preset={"name": "fuzz", "sigma_y": 0.1, "operator": {"type": "inpainting", 3: 1, "b": 2}})
def test_load_task_accepts_or_names_the_key(preset):
    count("load_task")
    text = yaml.safe_dump(preset)
    try:
        task = task_from_dict(yaml.safe_load(text), "fuzz.yaml")
    except TaskError as error:
        assert str(error).startswith("fuzz.yaml") and "\n" not in str(error)
        return
    operator = task.build_operator((1, 3, 32, 32))
    assert operator.forward(torch.zeros(1, 3, 32, 32)).ndim == 4


def test_yaml_that_builds_python_objects_is_refused(tmp_path):
    count("load_task")
    from ncvsd_inverse.tasks import load_task

    path = tmp_path / "evil.yaml"
    path.write_text("name: !!python/object/apply:os.system ['touch pwned']\nsigma_y: 0.05\n")
    with pytest.raises(TaskError, match="not valid YAML"):
        load_task(path)
    assert not Path("pwned").exists()


# --- operators -------------------------------------------------------------------------------------

scales = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -0.1, 1e-12, 1e6])


@fuzz(150)
@given(which=st.sampled_from(["inpainting", "sr", "blur"]), height=st.integers(4, 20), width=st.integers(4, 20),
       s=scales, r=scales, seed=st.integers(0, 1000))
def test_likelihood_steps_sample_or_refuse_bad_scales(which, height, width, s, r, seed):
    count("operators")
    gen = torch.Generator().manual_seed(seed)
    if which == "inpainting":
        op = Inpainting(random_mask(height, width, 0.5, seed))
    elif which == "sr":
        op = SuperResolution(2, image_size=(height - height % 2, width - width % 2))
        height, width = height - height % 2, width - width % 2
    else:
        op = Blur(gaussian_kernel(3, 1.0))
    x = torch.rand(1, 3, height, width, generator=gen) * 2 - 1
    y = op.forward(x)
    valid = all(np.isfinite(v) and v > 0 for v in (s, r))
    if not valid:
        with pytest.raises(ValueError, match="must be finite and > 0"):
            op.likelihood_step(x, y, s, r, rng=gen)
        return
    assume(max(s, r) < 1e5 and min(s, r) > 1e-8)
    u = op.likelihood_step(x, y, s, r, rng=gen)
    assert u.shape == x.shape and bool(torch.isfinite(u).all())
    probe = torch.randn(y.shape, generator=gen)
    assert torch.allclose((op.forward(x) * probe).sum(), (x * op.adjoint(probe)).sum(), rtol=1e-3, atol=1e-3)


# --- checkpoints -----------------------------------------------------------------------------------

@fuzz(100)
@given(data=st.binary(max_size=400), cut=st.integers(0, 4000))
def test_checkpoint_loading_refuses_junk(tmp_path_factory, tiny_models, data, cut):
    count("checkpoints")
    from ncvsd_inverse.models import load_generator

    folder = tmp_path_factory.mktemp("ckpt")
    real = (tiny_models[1] / "latest.safetensors").read_bytes()
    for content in (data, real[:cut], data + real[len(data):]):
        path = folder / "model.safetensors"
        path.write_bytes(content)
        try:
            load_generator(path)
        except CheckpointError as error:
            assert "\n" not in str(error)


def test_checkpoint_whose_tensors_do_not_match_its_config(tmp_path, tiny_models):
    count("checkpoints")
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from ncvsd_inverse.models import load_generator

    source = tiny_models[1] / "latest.safetensors"
    with safe_open(str(source), framework="pt") as handle:
        metadata = handle.metadata()
    tensors = load_file(str(source))
    name = next(k for k in tensors if k.startswith("ema.generator.") and tensors[k].ndim == 4)
    tensors[name] = torch.zeros(1, 1, 1, 1)
    save_file(tensors, tmp_path / "bad.safetensors", metadata=metadata)
    with pytest.raises(CheckpointError, match="do not match the config"):
        load_generator(tmp_path / "bad.safetensors")
    config = json.loads(metadata["ncvsd"])
    config["config"]["network"] = {"model_channels": "wide"}
    save_file(load_file(str(source)), tmp_path / "bad2.safetensors", metadata={"ncvsd": json.dumps(config)})
    with pytest.raises(CheckpointError):
        load_generator(tmp_path / "bad2.safetensors")


# --- command lines ---------------------------------------------------------------------------------

@fuzz(40)
@given(case=image_files(), task=st.sampled_from(["sr4x", "box_inpainting", "gaussian_deblur", "denoise"]),
       steps=st.integers(-2, 2), runs=st.integers(-1, 2), out_folder=st.sampled_from(["here", "missing"]))
def test_cli_solve_and_degrade_end_in_a_result_or_one_line(tmp_path_factory, tiny_models, case, task, steps, runs,
                                                          out_folder):
    count("cli")
    from ncvsd_inverse.cli.degrade import main as degrade
    from ncvsd_inverse.cli.solve import main as solve

    folder = tmp_path_factory.mktemp("cli")
    suffix, data = case
    image = folder / f"in{suffix}"
    image.write_bytes(data)
    out = folder / ("missing" if out_folder == "missing" else ".") / "out.png"
    runner = CliRunner()
    result = runner.invoke(solve, ["--task", task, str(image), "--model", str(tiny_models[1]), "--steps", str(steps),
                                   "--runs", str(runs), "-o", str(out), "--quiet"])
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        lines = result.output.strip().splitlines()
        # our errors are one line; click's usage errors (e.g. --steps 0) end in its one "Error:" line
        assert len(lines) == 1 or (lines[0].startswith("Usage:") and lines[-1].startswith("Error:")), lines
        assert not out.exists()
    else:
        assert out.exists()
    leftovers = [p for p in folder.rglob(".*") if p.is_file()]
    assert not leftovers, leftovers  # no temporary files
    result = runner.invoke(degrade, [str(image), "--task", task, "--out-dir", str(folder / "degraded")])
    assert result.exit_code in (0, 2) and len(result.output.strip().splitlines()) >= 1
    if result.exit_code == 2:
        assert result.output.startswith("error: ") and len(result.output.strip().splitlines()) == 1


training_keys = st.sampled_from(["batch", "patch", "lr", "steps", "p_std", "ema_std", "grad_clip", "seed",
                                  "checkpoint_every", "network", "rampup_steps", "other"])
training_values = (st.integers(-5, 64) | st.floats(-1, 2) | st.sampled_from([10**40, float("nan"), "x", True, None])
                   | yaml_values)


@fuzz(25)
@given(section=st.sampled_from(["teacher", "distill"]),
       overrides=st.dictionaries(training_keys, training_values, max_size=3))
def test_cli_train_ends_in_a_run_or_one_line(tmp_path_factory, data_dir, section, overrides):
    """``ncvsd-train`` with a preset of random settings on top of ``tiny``: one training step, or
    our one-line error naming the setting; never a traceback or a half-made run folder."""
    count("cli-train")
    from ncvsd_inverse.cli.train import train_main

    folder = tmp_path_factory.mktemp("train")
    preset = folder / "fuzz.yaml"
    try:
        preset.write_text(yaml.safe_dump({"base": "tiny", section: overrides}))
    except (ValueError, yaml.YAMLError):
        return
    result = CliRunner().invoke(train_main, ["--preset", str(preset), "--data", str(data_dir), "--out",
                                             str(folder / "run"), "--steps", "1", "--quiet", "--device", "cpu"])
    assert result.exit_code in (0, 2), (overrides, result.output)
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        assert result.output.startswith("error: ") and len(result.output.strip().splitlines()) == 1, result.output
    else:
        assert (folder / "run" / "latest.safetensors").exists() or any((folder / "run").glob("*.safetensors"))


@pytest.fixture(scope="module", autouse=True)
def _report_counts():
    yield
    line = ", ".join(f"{target} {n}" for target, n in sorted(COUNTS.items()))
    print(f"\nfuzz cases ({'long' if LONG else 'CI'} mode): {line}")
    report = os.environ.get("NCVSD_FUZZ_REPORT")
    if report:
        Path(report).write_text(json.dumps({"mode": "long" if LONG else "ci", "counts": COUNTS}, indent=2))

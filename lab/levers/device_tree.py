"""Fit what travels to a lent GPU into the device tool's 64 MiB.

The device tool copies the checkout's tracked files and its untracked files that git does not
ignore (plus the paths named in ``carry``). Since the 4-level model shipped, the tracked tree is
about 280 MB: the lab's resumable runs (170 MB), the shipped model (50 MB), the committed reports.
A device call from it is refused before any machine starts. ``slim`` takes the large files a GPU
job does not need out of git's index and ignores them (``.git/info/exclude``), so they stay on
disk but do not travel; ``restore`` puts them back in the index exactly as they were:

    python lab/levers/device_tree.py size                       # what would travel now
    python lab/levers/device_tree.py slim --min-kb 16 --keep ncvsd_inverse/default_model/teacher.safetensors
    # ... device run, e.g. carry [".devcarry"] with the training data copied there ...
    python lab/levers/device_tree.py restore

Measured on the tree of 2026-12-03: slimmed as above, 22.1 MiB travels (the teacher is 20.8), which
leaves room for cbsd432 (30.5 MiB) in ``.devcarry``. A distillation needs the generator too (26.5
MiB): teacher, generator and all of cbsd432 do not fit together, so carry a subset of the images.

While slimmed, ``git status`` shows the files as deleted from the index: restore before
committing (``slim`` refuses to start over staged changes, so restoring loses nothing).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

#: where the list of the files taken out of the index is kept between ``slim`` and ``restore``
SLIM_LIST = "device-slim.txt"
#: the lines of ``.git/info/exclude`` that ``slim`` adds are between these markers
BEGIN, END = "# device_tree.py slim: begin", "# device_tree.py slim: end"
#: the device tool's limit on the working tree that travels
TRAVEL_LIMIT = 64 * 2**20


def git(root: Path, *args: str, stdin: str | None = None) -> str:
    """``git args`` in ``root``, its paths literal (file names with spaces or ``[``)."""
    return subprocess.run(["git", "-C", str(root), "--literal-pathspecs", *args], check=True, capture_output=True,
                          text=True, input=stdin).stdout


def ignore_pattern(name: str) -> str:
    """The ``.gitignore`` line that matches exactly the tracked file ``name``."""
    escaped = "".join("\\" + c if c in "*?[\\" else c for c in name)
    return "/" + (escaped[:-1] + "\\ " if escaped.endswith(" ") else escaped)


def git_dir(root: Path) -> Path:
    return (root / git(root, "rev-parse", "--git-dir").strip()).resolve()


def travelling_files(root: Path) -> list[str]:
    """The files a device call sends: tracked, and untracked that git does not ignore."""
    listed = git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    return [name for name in dict.fromkeys(listed) if name and (root / name).is_file()]


def travel_bytes(root: Path) -> int:
    return sum((root / name).stat().st_size for name in travelling_files(root))


def slim(root: Path, keep: list[str], min_bytes: int) -> list[str]:
    """Take every tracked file of at least ``min_bytes`` out of the index, except those under a
    ``keep`` path, and ignore them; returns their paths."""
    list_path = git_dir(root) / SLIM_LIST
    if list_path.exists():
        raise SystemExit(f"already slimmed ({list_path} exists): run restore first")
    if git(root, "diff", "--cached", "--name-only").strip():
        raise SystemExit("the index has staged changes: commit or unstage them first")
    tracked = [name for name in git(root, "ls-files", "-z").split("\0") if name]
    keep = [k.rstrip("/") for k in keep]
    dropped = [name for name in tracked if (root / name).is_file() and (root / name).stat().st_size >= min_bytes
               and not any(name == k or name.startswith(k + "/") for k in keep)]
    if not dropped:
        return []
    list_path.write_text("\n".join(dropped) + "\n")
    git(root, "rm", "--cached", "-q", "--pathspec-from-file=-", stdin="\n".join(dropped) + "\n")
    exclude = git_dir(root) / "info" / "exclude"
    exclude.parent.mkdir(exist_ok=True)
    lines = exclude.read_text().splitlines() if exclude.exists() else []
    exclude.write_text("\n".join([*lines, BEGIN, *map(ignore_pattern, dropped), END]) + "\n")
    return dropped


def restore(root: Path) -> list[str]:
    """Undo :func:`slim`: the files back in the index as in HEAD, the ignore lines removed."""
    list_path = git_dir(root) / SLIM_LIST
    if not list_path.exists():
        return []
    dropped = list_path.read_text().splitlines()
    git(root, "reset", "-q", "--pathspec-from-file=-", stdin="\n".join(dropped) + "\n")
    exclude = git_dir(root) / "info" / "exclude"
    lines = exclude.read_text().splitlines()
    if BEGIN in lines and END in lines:
        lines = lines[:lines.index(BEGIN)] + lines[lines.index(END) + 1:]
        exclude.write_text("".join(line + "\n" for line in lines))
    list_path.unlink()
    return dropped


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["size", "slim", "restore"])
    parser.add_argument("--keep", nargs="*", default=[], help="tracked paths (files or folders) that must travel")
    parser.add_argument("--min-kb", type=int, default=256, help="slim takes out tracked files of at least this size")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[2])
    args = parser.parse_args(argv)
    if args.command == "slim":
        dropped = slim(args.root, args.keep, args.min_kb * 1024)
        print(f"took {len(dropped)} files out of the index (list in .git/{SLIM_LIST})")
    elif args.command == "restore":
        print(f"put {len(restore(args.root))} files back in the index")
    size = travel_bytes(args.root)
    verdict = "fits" if size <= TRAVEL_LIMIT else "does NOT fit"
    print(f"travels: {size / 2**20:.1f} MiB, which {verdict} in the device tool's 64 MiB (carry comes on top)")


if __name__ == "__main__":
    sys.exit(main())

"""Files read and written safely: atomic writes, YAML that cannot crash a command, and one
process per output folder.

:func:`atomic_write` writes to a temporary file in the target's folder, flushes it to disk and
renames it into place. The result gets the mode a plain ``open(path, "w")`` would give it
(``0o666`` minus the umask), not the ``0o600`` of a temporary file. :func:`read_yaml` turns
every way a YAML file can fail into one line. :func:`hold_folder` takes an OS file lock on an
output folder for the life of the process.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import yaml


def current_umask() -> int:
    """The process's umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Create ``path`` atomically: ``write(temp_path)`` fills a temporary file in the same
    folder, which is fsynced, given the umask's file mode and renamed onto ``path``.

    On any failure (including KeyboardInterrupt) the temporary file is removed and ``path`` is
    left as it was. Raises ``OSError`` with a one-line message when the folder is missing.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise OSError(f"{path}: cannot write, folder {folder} does not exist")
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp" + path.suffix, dir=folder)
    os.close(handle)
    temp = Path(temp_name)
    try:
        write(temp)
        with open(temp, "rb+") as stream:
            os.fsync(stream.fileno())
        os.chmod(temp, 0o666 & ~current_umask())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """:func:`atomic_write` of a bytes object."""
    return atomic_write(path, lambda temp: temp.write_bytes(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    """:func:`atomic_write` of a string (UTF-8)."""
    return atomic_write(path, lambda temp: temp.write_text(text, encoding="utf-8"))


def sha256_of(data: bytes | Path) -> str:
    """Hex sha256 of bytes or of a file (read in chunks)."""
    digest = hashlib.sha256()
    if isinstance(data, Path):
        with open(data, "rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
    else:
        digest.update(data)
    return digest.hexdigest()


def read_yaml(path: str | Path, error: type[Exception] = ValueError) -> object:
    """The YAML document in ``path`` (safe loader: plain data only).

    Raises ``error`` with a one-line message naming the file for every way the file can fail:
    unreadable, invalid YAML, tags that would build Python objects, and nesting so deep that the
    parser runs out of stack (a ``RecursionError`` inside PyYAML).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as failure:
        raise error(f"{path}: cannot read ({type(failure).__name__}: {failure})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as failure:
        first_line = str(failure).strip().splitlines()[0] if str(failure).strip() else type(failure).__name__
        raise error(f"{path}: not valid YAML ({first_line})") from None
    except RecursionError:
        raise error(f"{path}: not valid YAML (nested too deeply to parse)") from None


class FolderInUseError(OSError):
    """Another live process holds the folder (the message names it)."""


@contextlib.contextmanager
def hold_folder(folder: str | Path, name: str = ".lock") -> Iterator[Path]:
    """Hold an exclusive OS lock (``flock``) on ``folder/name`` while the block runs.

    A second process that asks for the same lock gets :class:`FolderInUseError` at once, naming
    the process id and command line that hold it. The lock is the kernel's: it goes with its
    process, so a killed run never leaves a stale lock behind (the file itself stays, harmless).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock_path = folder / name
    stream = open(lock_path, "a+")
    try:
        try:
            fcntl.flock(stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            stream.seek(0)
            holder = stream.read().strip() or "another process"
            raise FolderInUseError(f"{folder} is in use by {holder}; wait for it to finish or choose another "
                                   "folder") from None
        stream.seek(0)
        stream.truncate()
        stream.write(f"process {os.getpid()} ({' '.join(sys.argv)[:200]})\n")
        stream.flush()
        yield lock_path
    finally:
        stream.close()

"""Writing files so that a failure never leaves a partial one behind.

:func:`atomic_write` writes to a temporary file in the target's folder, flushes it to disk and
renames it into place. The result gets the mode a plain ``open(path, "w")`` would give it
(``0o666`` minus the umask), not the ``0o600`` of a temporary file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


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

"""What every command shares: one-line user errors with exit code 2, and ``--version``."""

from __future__ import annotations

import contextlib
import os
import sys

import click
import torch

from ncvsd_inverse.io import ImageReadError
from ncvsd_inverse.operators import ImageTooSmallError
from ncvsd_inverse.sampling import NonFiniteError
from ncvsd_inverse.tasks import TaskError

#: Errors caused by the user's input: reported as one line, exit code 2 (no traceback).
USER_ERRORS = (ImageReadError, ImageTooSmallError, TaskError, OSError, ValueError, NonFiniteError)


@contextlib.contextmanager
def user_errors():
    """Turn user errors into ``error: <message>`` on stderr and exit code 2.

    Set ``NCVSD_DEBUG=1`` to see the traceback instead.
    """
    try:
        yield
    except USER_ERRORS as error:
        if os.environ.get("NCVSD_DEBUG"):
            raise
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        click.echo(f"error: {message}", err=True)
        sys.exit(2)


def version_text() -> str:
    """The package version, the shipped model's digests (sha256 of the weights, as results name
    them) and the torch build: what a bug report needs."""
    from ncvsd_inverse import __version__
    from ncvsd_inverse.api import load_model
    from ncvsd_inverse.models import weights_sha256

    digests = ", ".join(f"{kind} {weights_sha256(load_model(None, kind))[:16]}" for kind in ("generator", "teacher"))
    return f"ncvsd-inverse {__version__} (shipped model: {digests}; torch {torch.__version__})"


def version_option(command):
    """``--version`` for a click command: print :func:`version_text` and exit."""
    def show(context: click.Context, _parameter, value: bool) -> None:
        if value and not context.resilient_parsing:
            click.echo(version_text())
            context.exit()

    return click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=show,
                        help="Show the version and the shipped model's digests, then exit.")(command)

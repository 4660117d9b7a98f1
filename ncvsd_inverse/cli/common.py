"""What every command shares: one-line user errors with exit code 2."""

from __future__ import annotations

import contextlib
import os
import sys

import click

from ncvsd_inverse.io import ImageReadError
from ncvsd_inverse.sampling import NonFiniteError
from operators import ImageTooSmallError
from tasks import TaskError

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

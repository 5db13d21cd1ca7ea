"""User-facing errors: one line naming the field or file and what to change.

Every entry point catches :class:`ScalingLabError`, prints its message as a single line on
stderr and exits with status 2, and shows each warning as one ``warning: ...`` line; both with credentials
redacted. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
import sys
import warnings
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from scaling_lab.redact import scrub_text

P = ParamSpec("P")
R = TypeVar("R")

EXIT_USER_ERROR = 2
"""Exit status of bad input: the command stopped before doing anything (one ``error:`` line)."""
EXIT_POINTS_FAILED = 1
"""Exit status of a command whose grid points ran and some failed (sl-train; one ``error:`` line counts them)."""


class ScalingLabError(Exception):
    """Bad input that the user can fix. The message names the field or file and the fix."""


class ConfigError(ScalingLabError):
    """A configuration value is invalid (names the dotted field)."""


class DataError(ScalingLabError):
    """A data source, tokenizer or token cache cannot be used (names the source or file)."""


class TableError(ScalingLabError):
    """A results table or record is malformed (names the file and column or field)."""


class CheckpointError(ScalingLabError):
    """A run's checkpoint cannot be trusted or read (names the file; deleting it restarts the point)."""


class FitError(ScalingLabError):
    """A fit cannot be made from the given points (names the approach and the reason)."""


class ReportedError(ScalingLabError):
    """Bad input that a child process has already reported as its one ``error:`` line: the parent exits with status 2
    without a second line."""


def user_line(message: object, secrets: frozenset[str] | None = None) -> str:
    """A message as the one line a user sees: whitespace runs folded, credentials redacted (a message may quote a
    config value or an override, e.g. ``logger.api_key=...``). ``secrets``: the secret values to redact, default
    those the process knows of (:func:`scaling_lab.redact.known_secrets`)."""
    return scrub_text(" ".join(str(message).split()), secrets)


def print_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
                  line: str | None = None) -> None:  # fmt: skip
    """Show a warning as one line ``warning: ...`` on stderr (a ``warnings.showwarning`` replacement).

    Python's default format adds the library file and line that warned and, on a second line, that line's source
    code: noise to a user, and a second line before the one-line ``error:`` (a store whose records are all bad).
    """
    print(f"warning: {user_line(message)}", file=sys.stderr if file is None else file)


def exit_on_user_error(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorate an entry point: a ScalingLabError becomes one stderr line and exit status 2; warnings one line each."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with warnings.catch_warnings():  # restores the default format on the way out
            warnings.showwarning = print_warning
            try:
                return fn(*args, **kwargs)
            except ScalingLabError as error:
                if not isinstance(error, ReportedError):
                    print(f"error: {user_line(error)}", file=sys.stderr)
                sys.exit(EXIT_USER_ERROR)

    return wrapper

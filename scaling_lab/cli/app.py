"""The wrapper of every console entry point: bad input ends in one ``error:`` line and exit 2; a bug keeps its
traceback.

Bad input reaches a command in three forms:

* a :class:`~scaling_lab.errors.ScalingLabError` from our own checks (:func:`~scaling_lab.errors.exit_on_user_error`);
* Hydra's, OmegaConf's and PyYAML's errors while the config is composed (an unknown key, an override the grammar
  rejects, a missing config group option, a YAML syntax error) or while its interpolations are resolved. Hydra's
  ``main`` prints those itself in 3 to 100 lines and exits 1 (``run_and_report`` in hydra/_internal/utils.py); with
  ``HYDRA_FULL_ERROR=1`` it raises them instead, which :func:`hydra_app` sets so that it can print one line
  (:func:`~scaling_lab.cli.hydra_errors.hydra_error_message`). A user who sets ``HYDRA_FULL_ERROR=1`` gets the
  traceback, as Hydra documents;
* a command line that argparse rejects (``--bogus``): one line instead of the usage text.

An exception raised by a command's own code once its config is composed and resolved is a bug, whatever its type,
and keeps its traceback.

Under ``-m`` (Hydra multirun) a user error ends its grid point, not the sweep: the point prints one ``failed:`` line
and the sweep goes on (one bad grid point never sinks the sweep); ``sl-train`` then sums the sweep up.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from omegaconf import DictConfig, OmegaConf

from scaling_lab.cli import CONFIGS_DIR
from scaling_lab.cli.hydra_errors import HYDRA_ERRORS, hydra_error_message
from scaling_lab.cli.schemas import register_schema
from scaling_lab.errors import EXIT_USER_ERROR, ConfigError, ScalingLabError, exit_on_user_error, user_line

FULL_ERROR = "HYDRA_FULL_ERROR"
"""Hydra's switch: raise composition errors instead of printing them (hydra/_internal/utils.py, run_and_report)."""


def one_line_errors(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``parser`` with its errors (an unknown flag, a bad choice) raised as a ConfigError, one line, instead of
    argparse's usage text."""

    def error(message: str) -> NoReturn:
        raise ConfigError(f"{message}: see {parser.prog} --help")

    parser.error = error  # type: ignore[method-assign]
    return parser


def hydra_arguments() -> argparse.Namespace:
    """Hydra's own command line (overrides, ``-m``, ``--cfg`` ...) parsed from ``sys.argv`` as ``hydra.main`` parses
    it, with errors in one line."""
    from hydra._internal.utils import get_args_parser  # the parser hydra.main uses

    parser = get_args_parser()
    parser.prog = Path(sys.argv[0]).name
    return one_line_errors(parser).parse_args(sys.argv[1:])


def multirun() -> bool:
    """Whether this Hydra job is one grid point of a sweep (``-m``)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def resolved(cfg: DictConfig) -> dict[str, Any]:
    """The config as plain data with every interpolation resolved and every required value set; else ConfigError."""
    try:
        values = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except HYDRA_ERRORS as error:
        raise ConfigError(hydra_error_message(error)) from error
    assert isinstance(values, dict)
    return values


@contextmanager
def _hydra_raises() -> Iterator[bool]:
    """Make Hydra raise its errors instead of printing them; yields whether the user asked for the traceback."""
    before = os.environ.get(FULL_ERROR)
    os.environ[FULL_ERROR] = "1"
    try:
        yield before == "1"
    finally:
        if before is None:
            os.environ.pop(FULL_ERROR, None)
        else:
            os.environ[FULL_ERROR] = before


def hydra_app(config_name: str) -> Callable[[Callable[[DictConfig], Any]], Callable[[], None]]:
    """Decorate a Hydra task ``fn(cfg)`` (the config ``configs/<config_name>.yaml``) into a console entry point
    ``main()`` that reads ``sys.argv`` as ``hydra.main`` does, with the error handling of this module. The command's
    dataclass defaults are registered now (:func:`~scaling_lab.cli.schemas.register_schema`): importing a command
    is enough to compose its config."""
    import hydra

    register_schema(config_name)

    def decorate(task: Callable[[DictConfig], Any]) -> Callable[[], None]:
        started = False  # the task ran: Hydra's and OmegaConf's errors from here on are bugs (traceback)

        @functools.wraps(task)
        def task_function(cfg: DictConfig) -> Any:
            nonlocal started
            started = True

            def checked_task() -> Any:
                resolved(cfg)  # an interpolation that does not resolve is bad input, not a bug in the task
                return task(cfg)

            def grid_point() -> Any:
                try:
                    return checked_task()
                except ScalingLabError as error:  # one bad grid point never sinks the sweep
                    from hydra.core.hydra_config import HydraConfig

                    # one write, newline included: the jobs of a parallel launcher share stderr, and print's
                    # separate write of the newline let two jobs' lines run together on one line
                    sys.stderr.write(f"failed: grid point #{HydraConfig.get().job.num}: {user_line(error)}\n")
                    sys.stderr.flush()
                    return None

            return exit_on_user_error(grid_point if multirun() else checked_task)()

        hydra_main = hydra.main(version_base="1.3", config_path=CONFIGS_DIR, config_name=config_name)(task_function)

        @functools.wraps(task)
        def main() -> None:
            nonlocal started
            started = False
            exit_on_user_error(hydra_arguments)()  # one line for a flag argparse rejects, before Hydra parses it
            with _hydra_raises() as traceback_asked:
                try:
                    hydra_main()
                except HYDRA_ERRORS as error:
                    if started or traceback_asked:
                        raise
                    print(f"error: {user_line(hydra_error_message(error))}", file=sys.stderr)
                    sys.exit(EXIT_USER_ERROR)

        return main

    return decorate


def absent_paths(paths: Iterable[Path]) -> set[Path]:
    """Those of ``paths`` and of their parent folders that do not exist yet (absolute): what a command that writes
    ``paths`` would create, to remove after a failed start with :func:`remove_created`."""
    absent: set[Path] = set()
    for path in paths:
        for candidate in (Path(path).absolute(), *Path(path).absolute().parents):
            if candidate.exists():
                break
            absent.add(candidate)
    return absent


def remove_created(absent: set[Path], *, owned: Iterable[Path] = ()) -> None:
    """Remove what a failed start created and nothing else: of the folders in ``absent`` (:func:`absent_paths`,
    taken before the start), those in ``owned`` (the command's own output folders) with their contents, every
    other one only when it is empty (another command may be writing into a shared parent)."""
    owned = {Path(path).absolute() for path in owned}
    for path in sorted(absent & owned, key=lambda p: len(p.parts), reverse=True):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    for path in sorted(absent, key=lambda p: len(p.parts), reverse=True):  # deepest first: children before parents
        with contextlib.suppress(OSError):  # not empty, not a folder, or already gone
            path.rmdir()

"""wandb or a null logger, always closed, and never handed a credential.

``open_tracker`` returns a :class:`Tracker` used as a context manager: on leaving the block the wandb run is
finished (with a non-zero exit code when an exception escapes), so no run is left open. wandb mirrors the
results store; it is never the source of truth, and a wandb failure never sinks a training run: if
``wandb.init`` fails, a warning is printed once and the null tracker takes over.

Mode: ``logger.mode`` when set; else ``WANDB_MODE`` from the environment; else "online" when credentials exist
(``WANDB_API_KEY`` or a netrc entry for the wandb host) and "offline" otherwise, with one line saying how to
``wandb sync`` the run later.

Credentials: this module is the only door to wandb (training runs and the sl-fit run both open their run here),
and everything passing it is redacted by :mod:`scaling_lab.redact`: the run's name, group, tags and config,
the command line wandb records, and every metric, summary value, table cell and media name logged. The secret
values redacted are those of the process (credential-named environment variables and command-line arguments) and
those under credential-named keys of the run's config, wherever they reappear (a tag, the sweep name, a table).
wandb's console capture is off: it would hand wandb every line printed during the run, which no redaction here
could see first (what the run prints still reaches the terminal).
"""

from __future__ import annotations

import contextlib
import netrc
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Optional
from urllib.parse import urlparse

from scaling_lab.errors import ConfigError, user_line
from scaling_lab.redact import config_secrets, known_secrets, scrub_argv, scrub_secrets, scrub_text

BACKENDS = ("wandb", "none")
MODES = ("online", "offline", "disabled")
JOB_TYPES = ("train", "fit")
WANDB_DEFAULT_HOST = "https://api.wandb.ai"
"""Where wandb logs in unless WANDB_BASE_URL says otherwise (wandb's documented default)."""


@dataclass(kw_only=True)
class LoggerConfig:
    """Where a run's metrics are mirrored (Hydra group ``logger``: ``wandb.yaml``, ``none.yaml``).

    Not frozen: OmegaConf makes frozen dataclasses read-only and Hydra could not override them.
    """

    backend: str = "none"
    """"wandb" (mirror to Weights & Biases) or "none" (log nothing; the results store still gets everything)."""
    project: str = "scaling_lab"
    """wandb project."""
    entity: Optional[str] = None  # noqa: UP045 (OmegaConf 2.3 reads typing.Optional)
    """wandb entity (user or team); null → your default entity."""
    mode: Optional[str] = None  # noqa: UP045
    """"online", "offline" or "disabled"; null → WANDB_MODE, else online with credentials, else offline."""
    dir: str = "."
    """Directory under which wandb writes its ``wandb/`` folder (the trainer passes the run's output dir)."""
    tags: list[str] = field(default_factory=list)
    """Extra wandb tags, added to those the caller gives."""

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"logger.backend={self.backend!r} is unknown: choose one of {', '.join(BACKENDS)}")
        if self.mode is not None and self.mode not in MODES:
            raise ConfigError(f"logger.mode={self.mode!r} is unknown: choose one of {', '.join(MODES)} or null")
        if self.backend == "wandb" and not self.project:
            raise ConfigError("logger.project is empty: name the wandb project, e.g. logger.project=scaling_lab")
        if not self.dir:
            raise ConfigError("logger.dir is empty: give the directory wandb writes under")


def quantity_tags(**quantities: float) -> list[str]:
    """wandb tags such as ``N=1.49e4`` for filtering a sweep's runs by exact tag: 3 significant figures, the
    exponent without "+" or leading zeros (``quantity_tags(C=1e11)`` → ``["C=1.00e11"]``).

    Fixed precision (trailing zeros kept) gives every run of one budget the same string; wandb tags are short strings
    (at most 64 characters). They carry no credential, so :func:`open_tracker`'s redaction keeps them.
    """
    tags = []
    for name, value in quantities.items():
        mantissa, exponent = f"{value:.2e}".split("e")
        tags.append(f"{name}={mantissa}e{int(exponent)}")
    return tags


class Tracker:
    """The null tracker: every method accepts its arguments and does nothing. Base of :class:`WandbTracker`."""

    run_dir: Path | None = None
    """The tracker's run directory on disk (wandb's ``.../run-<id>`` folder); None for the null tracker."""

    def log(self, metrics: dict[str, Any], step: int) -> None:
        """Log scalar metrics at a training step (the optimizer step; wandb's x-axis)."""

    def summary(self, values: dict[str, Any]) -> None:
        """Set run-level summary values (final loss, N, D, C, ...)."""

    def log_figure(self, name: str, figure: Any) -> None:
        """Log an image: a matplotlib figure or the path of an image file (the fit run's plots)."""

    def log_table(self, name: str, table: Any) -> None:
        """Log a pandas DataFrame as a table (the fit run's points and estimates)."""

    def close(self, exit_code: int = 0) -> None:
        """Finish the run; idempotent."""

    def __enter__(self) -> Tracker:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close(exit_code=0 if exc_type is None else 1)


class WandbTracker(Tracker):
    """A live wandb run (online or offline); every value logged is redacted first (``secrets``: the secret values
    to redact besides credential keys and shapes, see :func:`open_tracker`)."""

    def __init__(self, run: Any, secrets: frozenset[str]) -> None:
        self._run = run
        self._secrets = secrets
        self._closed = False
        self.run_dir = Path(run.dir).parent if getattr(run, "dir", None) else None

    def log(self, metrics: dict[str, Any], step: int) -> None:
        self._run.log(scrub_secrets(dict(metrics), self._secrets), step=step)

    def summary(self, values: dict[str, Any]) -> None:
        self._run.summary.update(scrub_secrets(dict(values), self._secrets))

    def log_figure(self, name: str, figure: Any) -> None:
        import wandb

        self._run.log({scrub_text(name, self._secrets): wandb.Image(figure)})

    def log_table(self, name: str, table: Any) -> None:
        import pandas as pd
        import wandb

        # row by row through the config redaction: a credential-named column loses its values, a cell holding a
        # secret value is redacted (the column names too)
        rows = scrub_secrets(table.to_dict(orient="records"), self._secrets)
        redacted = pd.DataFrame.from_records(rows, columns=list(table.columns))
        redacted.columns = [scrub_text(str(column), self._secrets) for column in table.columns]
        self._run.log({scrub_text(name, self._secrets): wandb.Table(dataframe=redacted)})

    def close(self, exit_code: int = 0) -> None:
        if self._closed:
            return
        self._closed = True
        self._run.finish(exit_code=exit_code)


def has_wandb_credentials(environ: dict[str, str] | None = None) -> bool:
    """True when WANDB_API_KEY is set or the netrc file has an entry for the wandb host (WANDB_BASE_URL)."""
    environ = dict(os.environ) if environ is None else environ
    if environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(environ.get("WANDB_BASE_URL", WANDB_DEFAULT_HOST)).hostname or ""
    netrc_path = environ.get("NETRC") or str(Path.home() / ".netrc")
    try:
        return netrc.netrc(netrc_path).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def resolve_mode(config: LoggerConfig, environ: dict[str, str] | None = None) -> str:
    """The wandb mode: config, else WANDB_MODE, else online with credentials, else offline."""
    environ = dict(os.environ) if environ is None else environ
    if config.mode is not None:
        return config.mode
    from_env = environ.get("WANDB_MODE")
    if from_env:
        if from_env == "dryrun":  # wandb's older name for offline
            return "offline"
        if from_env not in MODES:
            raise ConfigError(f"WANDB_MODE={from_env!r} is unknown: set it to one of {', '.join(MODES)}")
        return from_env
    return "online" if has_wandb_credentials(environ) else "offline"


@contextlib.contextmanager
def _redacted_argv(secrets: frozenset[str]) -> Iterator[None]:
    """Hide credentials in sys.argv while wandb.init reads it (wandb records the command line in the run)."""
    original = sys.argv
    sys.argv = original[:1] + scrub_argv(original[1:], secrets)
    try:
        yield
    finally:
        sys.argv = original


def open_tracker(
    config: LoggerConfig,
    *,
    name: str,
    group: str,
    job_type: str,
    run_config: dict[str, Any],
    tags: list[str] | tuple[str, ...] = (),
) -> Tracker:
    """Open a tracker for one run; use it as ``with open_tracker(...) as tracker:``.

    ``name`` is the run (its run_id), ``group`` the sweep or experiment, ``job_type`` "train" or "fit",
    ``run_config`` the resolved config. All of them, and all the tracker logs, are redacted (module docstring): the
    secret values are the process's and those under credential-named keys of ``run_config``. Returns the null
    tracker for
    ``backend="none"`` or mode "disabled", and when wandb fails to start (one warning line on stderr).
    """
    if job_type not in JOB_TYPES:
        raise ConfigError(f"job_type={job_type!r} is unknown: choose one of {', '.join(JOB_TYPES)}")
    if config.backend == "none":
        return Tracker()
    mode = resolve_mode(config)
    if mode == "disabled":
        return Tracker()
    secrets = known_secrets() | config_secrets(run_config)
    try:
        import wandb

        Path(config.dir).mkdir(parents=True, exist_ok=True)
        with _redacted_argv(secrets):
            run = wandb.init(
                project=config.project,
                entity=config.entity,
                name=scrub_text(name, secrets),
                group=scrub_text(group, secrets),
                job_type=job_type,
                tags=sorted({scrub_text(tag, secrets) for tag in (*config.tags, *tags)}),
                config=scrub_secrets(run_config, secrets),
                dir=config.dir,
                mode=mode,
                reinit="create_new",  # several runs in one process (sweeps, tests) must not share one run
                settings=wandb.Settings(console="off"),  # see the module docstring
            )
    except Exception as error:  # a tracker must never sink a run: any wandb failure → null tracker
        reason = user_line(error, secrets) or type(error).__name__
        print(f"warning: wandb did not start ({reason}); logging to the results store only", file=sys.stderr)
        return Tracker()
    tracker = WandbTracker(run, secrets)
    if mode == "offline":
        print(f"wandb: offline run in {tracker.run_dir}; upload it with: wandb sync {tracker.run_dir}")
    return tracker

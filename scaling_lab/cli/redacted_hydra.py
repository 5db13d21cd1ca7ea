"""Hydra's own files without credentials: a job's ``.hydra/`` dumps and a sweep's ``multirun.yaml``.

Hydra writes the composed config of every job (``.hydra/config.yaml``; ``hydra.yaml``, which holds the command-line
overrides; ``overrides.yaml``) before any task code runs, and the sweep's config (``multirun.yaml``) before the
first job starts. A credential given as an override (``logger.tags=[hf_...]``, a password in a URL) would be stored
there verbatim, beside records that are redacted. configs/hydra/default.yaml therefore

* turns Hydra's own dumps off (``output_subdir: null``) and has :class:`RedactedHydraFiles` write the same three
  files, redacted, when the job starts: a job's folder never holds the credential, not even for a moment;
* has the same callback rewrite the sweep's ``multirun.yaml`` redacted when each job starts and when the sweep
  ends. Hydra's sweeper writes that file just before launching, with no callback in between, so it holds the
  credential until the first job starts (milliseconds with the basic and joblib launchers; with SLURM, until the
  first array task runs, and submitit's own pickles under ``.submitit/`` carry the config to the nodes anyway:
  pass secrets as ``${oc.env:NAME}``, which no dump resolves);
* filters Hydra's and the job's log lines (the launcher logs each job's overrides) through
  :class:`~scaling_lab.redact.RedactingFilter`.

What counts as a credential is defined once, in :mod:`scaling_lab.redact` (records and wandb use it too).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from scaling_lab.atomic import write_text_atomically
from scaling_lab.redact import config_secrets, known_secrets, scrub_argv, scrub_secrets


def redacted_config(config: dict[str, Any], secrets: frozenset[str] | None = None) -> dict[str, Any]:
    """A plain config (Hydra's, with or without its ``hydra`` node) with every credential redacted.

    ``hydra.overrides`` lists are command-line overrides, redacted as arguments (``key=<redacted>`` keeps the key
    visible; a secret-named key loses its value even when the value does not look like a credential). The secret
    values redacted are ``secrets`` (default: the process's) and those under credential-named keys of the config
    (a sweep file's ``grid.api_key`` is redacted in an override that repeats it too).
    """
    secrets = (known_secrets() if secrets is None else secrets) | config_secrets(config)
    hydra = config.get("hydra")
    if isinstance(hydra, dict) and isinstance(hydra.get("overrides"), dict):
        overrides = {name: scrub_argv([str(item) for item in items or []], secrets)
                     for name, items in hydra["overrides"].items()}  # fmt: skip
        config = {**config, "hydra": {**hydra, "overrides": overrides}}
    return scrub_secrets(config, secrets)


def _yaml(config: DictConfig | dict[str, Any] | list[Any], secrets: frozenset[str] | None = None) -> str:
    """YAML as Hydra writes it (``OmegaConf.save``: interpolations kept unresolved), credentials redacted."""
    plain = OmegaConf.to_container(config, resolve=False, enum_to_str=True) if OmegaConf.is_config(config) else config
    redacted = (redacted_config(plain, secrets) if isinstance(plain, dict)
                else scrub_argv([str(item) for item in plain], secrets))  # fmt: skip
    return OmegaConf.to_yaml(OmegaConf.create(redacted))


def redact_yaml_file(path: Path) -> bool:
    """Rewrite a Hydra YAML dump with its credentials redacted (atomically); True when it changed."""
    if not path.is_file():
        return False
    text = path.read_text(encoding="utf-8")
    redacted = _yaml(OmegaConf.load(path))
    if redacted == text:
        return False
    write_text_atomically(path, redacted)
    return True


class RedactedHydraFiles(Callback):
    """Hydra callback (``hydra.callbacks`` in configs/hydra/default.yaml): redacted ``.hydra/`` dumps and
    ``multirun.yaml``. See the module docstring for why and when."""

    def __init__(self, subdir: str = ".hydra") -> None:
        self.subdir = subdir
        """Folder of the job's dumps inside its output directory (Hydra's own ``output_subdir`` default)."""

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        # Hydra's run_job dumps HydraConfig's masked copy (the `hydra` node only) as hydra.yaml and the config
        # without it as config.yaml (hydra/core/utils.py, run_job); with output_subdir set Hydra has already
        # written them unredacted, and these replace them.
        folder = Path(config.hydra.runtime.output_dir) / (config.hydra.output_subdir or self.subdir)
        task = OmegaConf.to_container(config, resolve=False, enum_to_str=True)
        assert isinstance(task, dict)
        secrets = known_secrets() | config_secrets(task)  # one set for the three files: each redacts what all know
        hydra = task.pop("hydra")
        for name, part in (("config.yaml", task), ("hydra.yaml", {"hydra": hydra}),
                           ("overrides.yaml", hydra["overrides"]["task"])):  # fmt: skip
            write_text_atomically(folder / name, _yaml(part, secrets))
        if config.hydra.mode == RunMode.MULTIRUN:
            redact_yaml_file(Path(config.hydra.sweep.dir) / "multirun.yaml")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        redact_yaml_file(Path(config.hydra.sweep.dir) / "multirun.yaml")

"""Hydra's, OmegaConf's and YAML's own errors as the one line a user sees.

Composing a config fails with Hydra's messages (an unknown key, an override the grammar rejects, a config group
option that does not exist), OmegaConf's (a value of the wrong type, an interpolation that does not resolve, a
required value left at ``???``) and PyYAML's (a syntax error in a config or sweep file). Their text is meant for a
terminal: several lines, a list of options one per line, OmegaConf's ``full_key:``/``object_type=`` trailer and
Hydra's config search path. :func:`hydra_error_message` keeps what names the key, option or file and what to do.
"""

from __future__ import annotations

import yaml
from hydra.errors import HydraException
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from scaling_lab.typed import RENAMED_SETTINGS

HYDRA_ERRORS: tuple[type[Exception], ...] = (HydraException, OmegaConfBaseException, yaml.YAMLError)
"""What composing or resolving a config raises for a bad override, config file or interpolation."""


OMEGACONF_TRAILER = ("full_key:", "object_type=", "reference_type=")
"""Lines OmegaConf appends to its messages; the key is named once by :func:`_omegaconf_message` instead."""


def _lines(text: str) -> str:
    """Hydra's and OmegaConf's multi-line text as one line: the config search path and OmegaConf's trailer dropped,
    a tab-indented list (the options of a config group) joined by commas."""
    text = text.split("Config search path:")[0]
    parts: list[str] = []
    for line in text.splitlines():
        if not line.strip() or line.strip().startswith(OMEGACONF_TRAILER):
            continue
        if line.startswith("\t") and parts:  # "Available options in 'model':" then one option per line
            parts[-1] += (" " if parts[-1].endswith(":") else ", ") + line.strip()
        else:
            parts.append(line.strip())
    return " ".join(parts)


def _omegaconf_message(error: OmegaConfBaseException) -> str:
    key = getattr(error, "full_key", None)
    if isinstance(error, MissingMandatoryValue) and key:
        return f"{key} is required: add {key}=... to the command"
    message = _lines(str(error))
    return f"{message} (at {key})" if key and f"'{key}'" not in message else message


def _yaml_message(error: yaml.YAMLError) -> str:
    if not isinstance(error, yaml.MarkedYAMLError) or error.problem_mark is None:
        return f"YAML syntax error: {_lines(str(error))}"
    mark = error.problem_mark
    where = f"{mark.name}, line {mark.line + 1}, column {mark.column + 1}"
    context = ""
    if error.context and error.context_mark is not None:
        context = f" ({error.context} at line {error.context_mark.line + 1})"
    return f"{where}: {error.problem}{context}: fix the file's YAML syntax"


def hydra_error_message(error: BaseException) -> str:
    """One line for one of :data:`HYDRA_ERRORS` (any other exception: its text on one line)."""
    if isinstance(error, yaml.YAMLError):
        return _yaml_message(error)
    if isinstance(error, OmegaConfBaseException):
        return _omegaconf_message(error)
    message = _lines(str(error))
    for old, new in RENAMED_SETTINGS.items():  # Hydra would suggest +old=..., which the typed config then refuses
        if f"Could not override '{old}'" in message:
            return f"Could not override '{old}': it was renamed: use {new}"
    override = getattr(error, "override", None)  # an OverrideParseException names the override it rejected
    if override and override not in message:
        message = f"override {override}: {message}"
    cause = error.__cause__
    # "Error merging override seed=abc" says what and its cause why; "Could not override 'foo'" says both
    if isinstance(cause, HYDRA_ERRORS) and f"'{getattr(cause, 'full_key', None)}'" not in message:
        message = f"{message}: {hydra_error_message(cause)}"
    return message

"""Keep credentials out of records, logs, Hydra's files and wandb: redact credential keys and secret values.

What counts as a secret value:

* the value of a **credential-named environment variable** (``WANDB_API_KEY``, ``HF_TOKEN``, ...), of a
  **credential-named command-line argument** (``+grid.hf_token=...``, ``--password ...``) and of a **credential-named
  key of the config being redacted** (``grid.api_key: ...``): wherever that value appears afterwards (a tag, a run
  name, a path, an error message), it is redacted too. Values shorter than 8 characters are not matched this way
  (a ``"1"`` or ``"true"`` is no credential, and redacting every word containing it would blank out whole lines);
* a **credential shape**: the documented token prefixes of Hugging Face, OpenAI, GitHub, Slack, AWS and wandb
  (``hf_...``, ``sk-...``, ``ghp_...``), or a password inside a URL (``scheme://user:password@host``).

A string containing a secret value is replaced as a whole by ``<redacted>`` (a config value, a tag, a word of a log
line); a key naming a credential loses its value (except None and booleans: ``use_auth: true`` reveals nothing).

**Credential names.** A name (a config key or an environment variable) is split into lower-case words at ``_``,
``-``, ``.``, ``/`` and camelCase boundaries. Its *last* word says what the value is (``hf_token_path`` is a path,
``secret_name`` a name, ``AWS_ACCESS_KEY_ID`` an identifier) and the name is a credential when that word is

* a credential noun: ``password``, ``passwd``, ``passphrase``, ``pwd``, ``secret(s)``, ``credential(s)``, ``apikey``,
  ``auth``, ``authorization``, or a word ending in ``password``, ``passwd``, ``passphrase``, ``secret`` or ``apikey``
  (``PGPASSWORD``);
* ``token`` or ``key``, unless the word before it gives it another meaning: ``per`` (a rate: ``experts_per_token``),
  a tokenizer's vocabulary token (``bos_token``, ``pad_token``) or a lookup key (``cache_key``, ``sort_key``).

So ``api_key``, ``WANDB_API_KEY``, ``wandbApiKey``, ``hf_token``, ``HF_TOKEN``, ``access_token``, ``auth_token``,
``use_auth_token``, ``password``, ``db-password``, ``client_secret``, ``AWS_SECRET_ACCESS_KEY`` and ``DB_PWD`` are
credentials, and ``experts_per_token``, ``tokens``, ``n_tokens``, ``batch_tokens``, ``curve_eval_tokens``,
``tokenizer``, ``sort_keys``, ``key_dim``, ``num_key_value_heads``, ``token_budget`` and ``monkey`` are not
(plurals such as ``tokens`` and ``keys`` are counts and lists). The environment's ``PWD`` and ``OLDPWD`` hold the
working directory, not a password.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "<redacted>"

# Last words that always name a credential, and word endings that do (PGPASSWORD, MYSECRET, wandbapikey).
CREDENTIAL_NOUNS = frozenset({"password", "passwd", "passphrase", "pwd", "secret", "secrets", "credential",
                              "credentials", "apikey", "auth", "authorization"})  # fmt: skip
CREDENTIAL_ENDINGS = ("password", "passwd", "passphrase", "secret", "apikey")
# "token" and "key" name a credential unless the word before them means something else: a rate ("per"), a
# vocabulary entry of a tokenizer (Hugging Face's special tokens: bos_token, pad_token, ...) or a lookup key.
NOT_CREDENTIAL_QUALIFIERS = {
    "token": frozenset({"per", "bos", "eos", "pad", "unk", "sep", "cls", "mask", "special", "additional", "start",
                        "end", "eot", "eod", "image"}),
    "key": frozenset({"cache", "sort", "primary", "foreign", "hash", "lookup", "dict", "group", "partition",
                      "index", "column", "field", "text", "label", "input", "output", "target", "metric", "monitor",
                      "image", "join", "sample", "data", "query"}),
}  # fmt: skip

# Well-known credential shapes (documented token prefixes of Hugging Face, OpenAI, GitHub, Slack, AWS, wandb)
# and a password inside a URL (scheme://user:password@host).
_SECRET_VALUE = re.compile(
    r"(\bhf_[A-Za-z0-9]{20,}|\bsk-[A-Za-z0-9_-]{20,}|\bgh[pousr]_[A-Za-z0-9]{20,}|\bgithub_pat_\w{20,}"
    r"|\bxox[baprs]-[A-Za-z0-9-]{10,}|\bAKIA[0-9A-Z]{16}\b|\bwandb_v1_\w{20,}|\blocal-[0-9a-f]{40}\b"
    r"|[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@)"
)
# Known values shorter than this are not treated as secrets (a "1" or "true" is no credential).
_MIN_SECRET_LENGTH = 8


def _words(name: str) -> list[str]:
    """Split a name into lower-case words: "wandbApiKey" → ["wandb", "api", "key"]; "HFToken" → ["hf", "token"]."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", spaced)
    return [word.lower() for word in re.split(r"[\s_.\-/]+", spaced) if word]


@functools.lru_cache(maxsize=4096)  # names repeat (every record's config, every environment read)
def is_secret_name(name: str) -> bool:
    """True when a key or environment variable name names a credential (the rule is in the module docstring)."""
    words = _words(name)
    if not words:
        return False
    last, before = words[-1], words[-2] if len(words) > 1 else ""
    if last in CREDENTIAL_NOUNS or last.endswith(CREDENTIAL_ENDINGS):
        return True
    return last in NOT_CREDENTIAL_QUALIFIERS and before not in NOT_CREDENTIAL_QUALIFIERS[last]


# Environment variables whose names look like credentials but hold none: POSIX shells set PWD and OLDPWD to the
# working directory ("pwd" = print working directory, not password). Taken as secrets they redacted every path
# under the working directory in records (data files, results folders) and changed config hashes with the cwd.
NOT_SECRET_ENVIRONMENT = frozenset({"PWD", "OLDPWD"})


def _long_enough(values: Iterable[Any]) -> frozenset[str]:
    return frozenset(value for value in values if isinstance(value, str) and len(value) >= _MIN_SECRET_LENGTH)


def environment_secrets(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """Values of credential-named environment variables (WANDB_API_KEY, HF_TOKEN, ...)."""
    environ = os.environ if environ is None else environ
    return _long_enough(value for name, value in environ.items()
                        if is_secret_name(name) and name not in NOT_SECRET_ENVIRONMENT)  # fmt: skip


def argument_secrets(argv: list[str]) -> frozenset[str]:
    """Values of credential-named arguments: ``key=value`` (Hydra overrides, ``--flag=value``) and ``--flag value``."""
    values = []
    for index, argument in enumerate(argv):
        key, equals, value = argument.partition("=")
        flag_before = argv[index - 1] if index else ""
        if equals and is_secret_name(key.lstrip("+~-")):
            values.append(value.strip("'\""))
        elif flag_before.startswith("-") and "=" not in flag_before and is_secret_name(flag_before.lstrip("-")):
            values.append(argument)
    return _long_enough(values)


def config_secrets(config: Any) -> frozenset[str]:
    """Values under credential-named keys of a plain config (dicts, lists, scalars), at any depth."""
    values: list[Any] = []

    def collect(node: Any, under_credential: bool) -> None:
        if isinstance(node, Mapping):
            for key, item in node.items():
                collect(item, under_credential or is_secret_name(str(key)))
        elif isinstance(node, list | tuple):
            for item in node:
                collect(item, under_credential)
        elif under_credential:
            values.append(node)

    collect(config, False)
    return _long_enough(values)


def known_secrets() -> frozenset[str]:
    """The secret values this process knows of: its credential-named environment variables and command-line
    arguments (``sys.argv``). Read at each call, so a redaction always sees the current environment."""
    return environment_secrets() | argument_secrets(sys.argv[1:])


def looks_secret(value: str, known: frozenset[str] = frozenset()) -> bool:
    """True when a string value carries a credential: a known secret, a credential prefix or a URL password."""
    return any(secret in value for secret in known) or _SECRET_VALUE.search(value) is not None


def scrub_secrets(config: Any, known: frozenset[str] | None = None) -> Any:
    """A copy of a plain config (dicts, lists, scalars) with every credential key and secret value redacted.

    Secret values are ``known`` (default :func:`known_secrets`) and the config's own (:func:`config_secrets`).
    """
    return _scrub(config, (known_secrets() if known is None else known) | config_secrets(config))


def _redacts(key: str, item: Any) -> bool:
    """A secret-named key loses its value, except None and booleans (`use_auth: true` reveals nothing)."""
    return is_secret_name(key) and item is not None and not isinstance(item, bool)


def _scrub(value: Any, secrets: frozenset[str]) -> Any:
    if isinstance(value, Mapping):
        return {key: REDACTED if _redacts(str(key), item) else _scrub(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item, secrets) for item in value]
    if isinstance(value, str) and looks_secret(value, secrets):
        return REDACTED
    return value


def scrub_argv(argv: list[str], known: frozenset[str] | None = None) -> list[str]:
    """Command-line arguments with credentials redacted: the value of ``key=value`` (Hydra overrides, ``--flag=``)
    and of ``--flag value`` when the key names a credential, and any argument holding a secret value (``known``,
    default :func:`known_secrets`, and those of the arguments' own credential-named keys)."""
    secrets = (known_secrets() if known is None else known) | argument_secrets(argv)
    scrubbed: list[str] = []
    for index, argument in enumerate(argv):
        key, equals, _ = argument.partition("=")
        flag_before = argv[index - 1] if index else ""
        if equals and is_secret_name(key.lstrip("+~-")):
            scrubbed.append(f"{key}={REDACTED}")
        elif flag_before.startswith("-") and "=" not in flag_before and is_secret_name(flag_before.lstrip("-")):
            scrubbed.append(REDACTED)
        elif looks_secret(argument, secrets):
            scrubbed.append(f"{key}={REDACTED}" if equals and not looks_secret(key, secrets) else REDACTED)
        else:
            scrubbed.append(argument)
    return scrubbed


def scrub_text(text: str, known: frozenset[str] | None = None) -> str:
    """Free text (a log line, an error message, a traceback) with credentials redacted: its whitespace-separated
    words go through :func:`scrub_argv` (``key=value`` overrides, ``--flag value`` pairs, secret-looking words);
    spacing is kept."""
    parts = re.split(r"(\s+)", text)  # words at even positions, the whitespace between them at odd ones
    parts[0::2] = scrub_argv(parts[0::2], known)
    return "".join(parts)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts credentials in each message (:func:`scrub_text`); it never drops a record.

    Attached to Hydra's log handlers in configs/hydra/default.yaml: Hydra's launchers log every job's overrides
    ("#0 : model=n1k logger.tags=[...]") and a credential given as an override would otherwise be printed and
    written to the job log.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = scrub_text(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True

"""Keep credentials out of records, logs and wandb: redact secret-looking keys and values in a config.

A value is redacted when its key names a credential (a word such as ``key``, ``token``, ``secret`` or
``password``), when it carries a well-known credential prefix (``hf_``, ``sk-``, ``ghp_``, ...), when it embeds
a password in a URL, or when it contains the value of a secret-named environment variable (``WANDB_API_KEY``,
``HF_TOKEN``, ...). Keys are split into words, so ``n_tokens`` or ``tokenizer`` are kept: only the exact words count.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import Any

REDACTED = "<redacted>"

# Words that make a key (or an environment variable) name a credential. Matched as whole words of the name,
# split on "_", "-", "." and camelCase, so `n_tokens`, `tokenizer` or `sort_keys` stay visible.
SECRET_WORDS = frozenset(
    {"key", "apikey", "token", "secret", "password", "passwd", "pwd", "credential", "credentials", "auth"}
)

# Well-known credential shapes (documented token prefixes of Hugging Face, OpenAI, GitHub, Slack, AWS, wandb)
# and a password inside a URL (scheme://user:password@host).
_SECRET_VALUE = re.compile(
    r"(\bhf_[A-Za-z0-9]{20,}|\bsk-[A-Za-z0-9_-]{20,}|\bgh[pousr]_[A-Za-z0-9]{20,}|\bgithub_pat_\w{20,}"
    r"|\bxox[baprs]-[A-Za-z0-9-]{10,}|\bAKIA[0-9A-Z]{16}\b|\bwandb_v1_\w{20,}|\blocal-[0-9a-f]{40}\b"
    r"|[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@)"
)
# Environment values shorter than this are not treated as secrets (a "1" or "true" is no credential).
_MIN_SECRET_LENGTH = 8


def _words(name: str) -> list[str]:
    """Split a key into lower-case words: "wandbApiKey" → ["wandb", "api", "key"]; "n_tokens" → ["n", "tokens"]."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [word.lower() for word in re.split(r"[\s_.\-/]+", spaced) if word]


# Tokenizer special-token keys (bos_token, pad_token, ... in Hugging Face tokenizer configs) name a vocabulary
# entry, not a credential.
SPECIAL_TOKEN_WORDS = frozenset({"bos", "eos", "pad", "unk", "sep", "cls", "mask", "special", "additional"})


def is_secret_name(name: str) -> bool:
    """True when a key or environment variable name contains a credential word (see SECRET_WORDS)."""
    words = _words(name)
    if words and words[-1] == "token" and len(words) > 1 and words[-2] in SPECIAL_TOKEN_WORDS:
        return False
    return any(word in SECRET_WORDS for word in words)


# Environment variables whose names contain a credential word but hold none: POSIX shells set PWD and OLDPWD to the
# working directory ("pwd" = print working directory, not password). Taken as secrets they redacted every path
# under the working directory in records (data files, results folders) and changed config hashes with the cwd.
NOT_SECRET_ENVIRONMENT = frozenset({"PWD", "OLDPWD"})


def environment_secrets(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """Values of secret-named environment variables (WANDB_API_KEY, HF_TOKEN, ...), to be redacted wherever seen."""
    environ = os.environ if environ is None else environ
    return frozenset(
        value
        for name, value in environ.items()
        if is_secret_name(name) and name not in NOT_SECRET_ENVIRONMENT and len(value) >= _MIN_SECRET_LENGTH
    )


def looks_secret(value: str, known_secrets: frozenset[str] = frozenset()) -> bool:
    """True when a string value carries a credential: a known secret, a credential prefix or a URL password."""
    return any(secret in value for secret in known_secrets) or _SECRET_VALUE.search(value) is not None


def scrub_secrets(config: Any, known_secrets: frozenset[str] | None = None) -> Any:
    """A copy of a plain config (dicts, lists, scalars) with every credential-looking key or value redacted.

    ``known_secrets`` defaults to :func:`environment_secrets` of the current process.
    """
    secrets = environment_secrets() if known_secrets is None else known_secrets
    return _scrub(config, secrets)


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


def scrub_argv(argv: list[str], known_secrets: frozenset[str] | None = None) -> list[str]:
    """Command-line arguments with credentials redacted: the value of ``key=value`` (Hydra overrides, ``--flag=``)
    and of ``--flag value`` when the key names a credential, and any argument that looks secret."""
    secrets = environment_secrets() if known_secrets is None else known_secrets
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


def scrub_text(text: str, known_secrets: frozenset[str] | None = None) -> str:
    """Free text (a log line) with credentials redacted: its whitespace-separated words go through
    :func:`scrub_argv` (``key=value`` overrides, ``--flag value`` pairs, secret-looking words); spacing is kept."""
    parts = re.split(r"(\s+)", text)  # words at even positions, the whitespace between them at odd ones
    parts[0::2] = scrub_argv(parts[0::2], known_secrets)
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

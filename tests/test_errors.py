"""Every entry point: a user error is one `error:` line and exit 2; a warning is one `warning:` line."""

import warnings

import pytest

from scaling_lab.errors import EXIT_USER_ERROR, ConfigError, exit_on_user_error


def test_a_warning_then_an_error_are_two_lines_on_stderr(capsys) -> None:
    @exit_on_user_error
    def entry_point() -> None:
        warnings.warn("skipped 2 files:\n a.json\n b.json", UserWarning, stacklevel=1)
        raise ConfigError("model.width=0\nmust be > 0")

    with pytest.raises(SystemExit) as exit_:
        entry_point()
    assert exit_.value.code == EXIT_USER_ERROR
    assert capsys.readouterr().err.splitlines() == [
        "warning: skipped 2 files: a.json b.json",
        "error: model.width=0 must be > 0",
    ]
    assert warnings.showwarning.__module__ == "warnings"  # the default format is back after the entry point


def test_a_credential_quoted_by_an_error_or_a_warning_is_redacted(capsys) -> None:
    token = "hf_" + "A1b2C3d4E5f6G7h8I9j0K1l2"  # a fake Hugging Face token shape, assembled so no scanner flags it

    @exit_on_user_error
    def entry_point() -> None:
        warnings.warn(f"ignoring logger.api_key=abc123 and {token}", UserWarning, stacklevel=1)
        raise ConfigError(f"data.sources.0.name={token} is unknown")

    with pytest.raises(SystemExit):
        entry_point()
    err = capsys.readouterr().err
    assert token not in err and "abc123" not in err
    assert err.splitlines() == [
        "warning: ignoring logger.api_key=<redacted> and <redacted>",
        "error: data.sources.0.name=<redacted> is unknown",
    ]

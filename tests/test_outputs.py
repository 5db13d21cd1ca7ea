"""Output paths are checked before any work: what cannot be written is a one-line ConfigError naming the field, and
the check itself creates nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scaling_lab.errors import ConfigError
from scaling_lab.outputs import check_output_file, check_output_folder


def _tree(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def test_writable_and_creatable_paths_pass_and_nothing_is_created(tmp_path: Path) -> None:
    (tmp_path / "existing").mkdir()
    before = _tree(tmp_path)
    check_output_folder(tmp_path / "existing", "paths.results_dir")
    check_output_folder(tmp_path / "new" / "deeper", "paths.results_dir")
    check_output_file(tmp_path / "existing" / "plan.csv", "--out")
    check_output_file(tmp_path / "new" / "fit" / "table.parquet", "out")
    assert _tree(tmp_path) == before


@pytest.mark.parametrize(
    ("where", "check", "message"),
    [
        ("file", check_output_folder, r"^out=.*/file is a file, not a folder"),
        ("file/sub", check_output_folder, r"^out=.*/file/sub: .*/file is a file, so no folder can be created inside"),
        ("file/sub/t.csv", check_output_file, r"^out=.*/t\.csv: .*/file is a file, so no folder can be created"),
        ("folder", check_output_file, r"^out=.*/folder is a folder, not a file: name a file"),
        ("dangling", check_output_folder, r"^out=.*/dangling is a file, not a folder"),
        ("x" * 300, check_output_folder, r"^out=.*: the name x+\.\.\. is longer than the \d+ bytes"),
    ],
)
def test_a_path_that_cannot_be_written_names_the_field_and_the_culprit(tmp_path: Path, where, check, message) -> None:
    (tmp_path / "file").write_text("text")
    (tmp_path / "folder").mkdir()
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    before = _tree(tmp_path)
    with pytest.raises(ConfigError, match=message) as error:
        check(tmp_path / where, "out")
    assert "\n" not in str(error.value)
    assert _tree(tmp_path) == before


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs procfs")
def test_a_place_where_even_root_cannot_create_anything_is_refused() -> None:
    # permission bits cannot tell (root passes os.access), so the check probes by creating a folder
    with pytest.raises(ConfigError, match=r"^paths\.cache_dir=/proc/x/y: nothing can be written in /proc \("):
        check_output_folder("/proc/x/y", "paths.cache_dir")
    with pytest.raises(ConfigError, match=r"^--out=/proc/plan\.csv: nothing can be written in /proc"):
        check_output_file("/proc/plan.csv", "--out")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in a read-only folder")
def test_a_folder_without_write_permission_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        with pytest.raises(ConfigError, match=r"nothing can be written in .*locked \(Permission denied\)"):
            check_output_folder(locked / "results", "paths.results_dir")
    finally:
        locked.chmod(0o700)

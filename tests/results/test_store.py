"""The results store on real files: layout, atomic writes, refusals, skipped files, tables and curves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from scaling_lab.errors import TableError
from scaling_lab.results import (
    CURVE_COLUMNS,
    TABLE_COLUMNS,
    CurvePoint,
    SkippedRecordsWarning,
    load_curves,
    load_records,
    load_table,
    paths_named,
    read_record,
    record_path,
    run_dir,
    write_record,
)


def test_layout_and_round_trip(tmp_path, make_record):
    record = make_record()
    path = write_record(record, tmp_path)
    assert path == tmp_path / "tiny" / "w64_d1e4" / "run.json" == record_path(tmp_path, "tiny", "w64_d1e4")
    assert run_dir(tmp_path, "tiny", "w64_d1e4") == path.parent
    assert read_record(path) == record
    assert [p.name for p in path.parent.iterdir()] == ["run.json"]  # no temporary file left behind


def test_run_dir_refuses_path_like_names(tmp_path):
    with pytest.raises(TableError, match=r"field run_id='\.\./x'"):
        run_dir(tmp_path, "tiny", "../x")


def test_finished_record_is_not_overwritten_unless_asked(tmp_path, make_record):
    path = write_record(make_record(), tmp_path)
    before = path.read_text()
    with pytest.raises(TableError, match="holds a finished record; delete it or pass overwrite=True"):
        write_record(make_record(seed=1), tmp_path)
    assert path.read_text() == before
    write_record(make_record(seed=1), tmp_path, overwrite=True)
    assert read_record(path).seed == 1


def test_running_and_failed_records_are_replaced(tmp_path, make_record):
    running = make_record(status="running", finished_at=None, points=[], n_tokens=0)
    path = write_record(running, tmp_path)
    failed = make_record(status="failed", reason="CUDA out of memory", points=[], n_tokens=512)
    write_record(failed, tmp_path)
    assert read_record(path).status == "failed"
    write_record(make_record(), tmp_path)  # a relaunched point finishes over its failed record
    assert read_record(path).status == "finished"


def test_bad_files_are_skipped_with_one_warning_listing_them(tmp_path, make_record):
    write_record(make_record(), tmp_path)
    truncated = tmp_path / "tiny" / "cut" / "run.json"
    truncated.parent.mkdir(parents=True)
    truncated.write_text(json.dumps(make_record(run_id="cut").to_dict())[:200])
    unknown = tmp_path / "tiny" / "odd" / "run.json"
    unknown.parent.mkdir(parents=True)
    unknown.write_text(json.dumps({**make_record(run_id="odd").to_dict(), "colour": "red"}))
    with pytest.warns(SkippedRecordsWarning) as caught:
        records = load_records(tmp_path)
    assert [r.run_id for r in records] == ["w64_d1e4"]
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "skipped 2 run record(s)" in message
    assert f"{truncated}: not valid JSON" in message and f"{unknown}: unknown field colour" in message


def test_missing_root_is_an_error(tmp_path):
    with pytest.raises(TableError, match="no such results directory"):
        load_records(tmp_path / "nowhere")


def test_read_record_names_the_file(tmp_path):
    path = tmp_path / "run.json"
    path.write_text("{")
    with pytest.raises(TableError, match=f"^{path}: not valid JSON"):
        read_record(path)


def test_load_table_one_row_per_point_with_its_columns(tmp_path, make_record, make_wsd_record):
    write_record(make_record(), tmp_path)
    write_record(make_wsd_record(), tmp_path)
    write_record(make_record(run_id="other", sweep="second", data_mix="web"), tmp_path / "elsewhere")
    write_record(make_record(run_id="dead", status="diverged", reason="nan", diverged_at_step=3), tmp_path)

    table = load_table([tmp_path, tmp_path / "elsewhere"])
    assert tuple(table.columns) == TABLE_COLUMNS
    # 1 cosine point + 3 WSD cooldowns + the other sweep's point; a file under two named roots counts once.
    assert sorted(table.run_id) == ["other", "w64_d1e4", "w64_wsd", "w64_wsd", "w64_wsd"]
    wsd = table[table.run_id == "w64_wsd"]
    assert list(wsd.n_tokens) == [4096, 8192, 16_384] and list(wsd.loss) == [3.4, 3.2, 3.05]
    assert set(wsd.schedule) == {"wsd"} and wsd.batch_size.isna().all() and set(wsd.learning_rate) == {1e-3}
    cosine = table[table.run_id == "w64_d1e4"].iloc[0]
    assert (cosine.learning_rate, cosine.batch_size, cosine.schedule) == (3e-3, 8192, "cosine")
    assert cosine.group == "bytes" and cosine.n_params_nonembed == 100_000 and bool(cosine.tied_embeddings)
    assert cosine.flops_6nd == 6.0 * 120_000 * 10_240
    assert set(table[table.run_id == "other"].group) == {"web"}
    assert table.n_tokens.dtype == "int64" and table.loss.dtype == "float64"

    diverged = load_table(tmp_path, statuses=("diverged",))
    assert list(diverged.run_id) == ["dead"] and list(diverged.status) == ["diverged"]


def test_load_table_of_nothing_has_the_columns(tmp_path):
    table = load_table(tmp_path)
    assert table.empty and tuple(table.columns) == TABLE_COLUMNS
    table.to_parquet(tmp_path / "t.parquet")  # the collector writes it: dtypes must survive Parquet


def test_load_table_rejects_unknown_status(tmp_path):
    with pytest.raises(TableError, match=r"statuses=\['done'\] are not run statuses"):
        load_table(tmp_path, statuses=("done",))


def test_load_curves_one_row_per_evaluation(tmp_path, make_record):
    record = make_record()
    write_record(record, tmp_path)
    curves = load_curves(tmp_path)
    assert tuple(curves.columns) == CURVE_COLUMNS
    assert list(curves.n_tokens) == [c.n_tokens for c in record.curve]
    assert list(curves.loss) == [c.loss for c in record.curve]
    assert set(curves.n_params_total) == {120_000} and set(curves.group) == {"bytes"}
    pd.testing.assert_frame_equal(curves, load_curves(tmp_path / "tiny" / "w64_d1e4" / "run.json"))


_READER = textwrap.dedent(
    """
    import json, sys, pathlib
    path, ready, stop = (pathlib.Path(arg) for arg in sys.argv[1:4])
    reads = partial = 0
    ready.touch()
    while not stop.exists():
        try:
            text = path.read_text()
        except FileNotFoundError:
            continue
        reads += 1
        try:
            json.loads(text)
        except ValueError:
            partial += 1
            stop.with_suffix(".caught").touch()
        if reads == READS_ENOUGH:
            stop.with_suffix(".read").touch()
    print(json.dumps({"reads": reads, "partial": partial}))
    """
)
READS_ENOUGH = 200  # reads made while the writer writes, before the atomic writer's race ends
MAX_WRITES = 100_000  # a bound, far above what either race needs: a race that never ends fails instead


def _race(tmp_path: Path, write, until: str) -> dict[str, int]:
    """Run a reader process looping over the record while ``write(i)`` rewrites it, until the reader says
    ``until``: "read" (it has read the record READS_ENOUGH times) or "caught" (it has read a partial record).

    Both ends are events the reader reports, not a length of time, so a loaded machine runs the same race."""
    path, ready, stop = tmp_path / "tiny" / "w64_d1e4" / "run.json", tmp_path / "ready", tmp_path / "stop"
    write(0)
    reader = subprocess.Popen([sys.executable, "-c", f"READS_ENOUGH = {READS_ENOUGH}\n{_READER}", str(path),
                               str(ready), str(stop)], stdout=subprocess.PIPE)  # fmt: skip
    while not ready.exists() and reader.poll() is None:  # the reader loops before the writer starts
        time.sleep(0.01)
    index, done = 1, stop.with_suffix(f".{until}")
    while not done.exists() and index < MAX_WRITES and reader.poll() is None:
        write(index)
        index += 1
    stop.touch()
    out, _ = reader.communicate(timeout=300)
    return {**json.loads(out), "writes": index}


def test_a_reader_in_another_process_never_sees_a_partial_record(tmp_path, make_record):
    curves = [
        [CurvePoint(n_tokens=t, flops_6nd=t, flops_exact=t, loss=3.0) for t in range(1, length)]
        for length in (4000, 40)
    ]  # alternating a large and a small record: a non-atomic writer would be caught mid-write

    records = [make_record(status="running", finished_at=None, points=[], n_tokens=0, curve=curve) for curve in curves]
    counts = _race(tmp_path, lambda index: write_record(records[index % 2], tmp_path), until="read")
    assert counts["reads"] >= READS_ENOUGH and counts["writes"] > 2 and counts["partial"] == 0


def test_the_race_detects_a_plain_write(tmp_path, make_record):
    # The same reader catches a non-atomic writer (truncate, then write): the test above can fail.
    path = tmp_path / "tiny" / "w64_d1e4" / "run.json"
    path.parent.mkdir(parents=True)
    texts = [
        json.dumps(
            make_record(
                curve=[{"n_tokens": t, "flops_6nd": 1, "flops_exact": 1, "loss": 3.0} for t in range(1, length)]
            ).to_dict()
            if length
            else {}
        )
        for length in (4000, 40)
    ]
    counts = _race(tmp_path, lambda index: path.write_text(texts[index % 2]), until="caught")
    assert counts["partial"] > 0


def test_a_folder_removed_while_the_store_is_walked_is_passed_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process removes a folder between the listing of its parent and the descent into it (a finished
    point's checkpoint folder, a write probe): the walk goes on and finds every record that is still there."""
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "run.json").write_text("{}")
    (tmp_path / "probe").mkdir()
    real_scandir = os.scandir

    class ScandirThenRemoveProbe:  # the listing is taken, then the folder goes, as with a concurrent writer
        def __init__(self, path) -> None:
            with real_scandir(path) as listing:
                self.entries = iter(list(listing))
            if Path(path) == tmp_path and (tmp_path / "probe").exists():
                (tmp_path / "probe").rmdir()

        def __iter__(self):
            return self

        def __next__(self):
            return next(self.entries)

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            pass

    monkeypatch.setattr(os, "scandir", ScandirThenRemoveProbe)
    assert paths_named(tmp_path, "run.json") == [kept / "run.json"]
    with pytest.raises(FileNotFoundError):  # what the walk did before: Path.rglob stops on the vanished folder
        (tmp_path / "probe").mkdir() or list(tmp_path.rglob("run.json"))

"""32 processes write records into one store at once: nothing lost, nothing corrupt, no partial read.

Every writer updates its own run several times (running, running, ..., finished) and also overwrites one run
that all of them share; a reader process loops over the shared record and the whole store meanwhile and stops
on the first file it cannot read or validate (a partial or torn JSON would be one).
"""

from __future__ import annotations

import multiprocessing
import time
import warnings
from pathlib import Path
from types import ModuleType

from scaling_lab.results import RunRecord, SkippedRecordsWarning, load_records, read_record, record_path, write_record

WRITERS = 32
UPDATES = 6  # writes of each writer's own run: UPDATES - 1 running, then finished
SHARED = "shared_run"


def _running(records: ModuleType, run_id: str, wall_time_s: float) -> RunRecord:
    fields = records.record_fields(run_id=run_id, status="running", finished_at=None, wall_time_s=wall_time_s)
    return RunRecord(**fields)


def _writer(records: ModuleType, root: Path, index: int, start: multiprocessing.synchronize.Barrier,
            writing: multiprocessing.synchronize.Event,
            read_thrice: multiprocessing.synchronize.Event) -> None:  # fmt: skip
    start.wait()
    own = f"writer{index:02d}"
    for update in range(UPDATES - 1):
        write_record(_running(records, own, float(update)), root)
        write_record(_running(records, SHARED, float(index)), root)
        if update == 0:  # the rest waits until the reader has read the store three times since the writes began
            writing.set()
            assert read_thrice.wait(300), "the reader never read the store three times"
    write_record(RunRecord(**records.record_fields(run_id=own, wall_time_s=float(UPDATES))), root)


def _reader(root: Path, ready: multiprocessing.synchronize.Event, stop: multiprocessing.synchronize.Event,
            reads: multiprocessing.sharedctypes.Synchronized, writing: multiprocessing.synchronize.Event,
            read_thrice: multiprocessing.synchronize.Event, errors: multiprocessing.Queue) -> None:  # fmt: skip
    shared = record_path(root, "tiny", SHARED)
    ready.set()
    try:
        while not stop.is_set():
            if shared.exists():
                read_record(shared)  # raises TableError on a partial or invalid file
            with warnings.catch_warnings():
                warnings.simplefilter("error", SkippedRecordsWarning)
                load_records(root)
            if writing.is_set():  # only reads that began after a write count
                reads.value += 1
            if reads.value >= 3:
                read_thrice.set()
    except Exception as error:  # reported to the test, which fails on it
        errors.put(f"{type(error).__name__}: {error}")


def test_32_concurrent_writers_lose_nothing_and_a_reader_never_sees_a_partial_record(
    tmp_path: Path, records: ModuleType
) -> None:
    root = tmp_path / "results"
    context = multiprocessing.get_context("fork")  # workers inherit the imported modules: fast start
    ready, stop, errors = context.Event(), context.Event(), context.Queue()
    writing, read_thrice = context.Event(), context.Event()
    reads = context.Value("i", 0)
    write_record(_running(records, SHARED, 0.0), root)
    reader = context.Process(target=_reader, args=(root, ready, stop, reads, writing, read_thrice, errors))
    reader.start()
    assert ready.wait(300)
    start = context.Barrier(WRITERS)
    writers = [context.Process(target=_writer, args=(records, root, i, start, writing, read_thrice))
               for i in range(WRITERS)]  # fmt: skip
    began = time.perf_counter()
    for process in writers:
        process.start()
    for process in writers:
        process.join(300)
    elapsed = time.perf_counter() - began
    stop.set()
    reader.join(30)

    assert [p.exitcode for p in writers] == [0] * WRITERS
    assert reader.exitcode == 0 and errors.empty(), errors.get() if not errors.empty() else ""
    assert reads.value >= 3, f"the reader read the store only {reads.value} times in {elapsed:.1f}s"
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkippedRecordsWarning)
        stored = {record.run_id: record for record in load_records(root)}
    assert len(stored) == WRITERS + 1
    for index in range(WRITERS):
        own = stored[f"writer{index:02d}"]
        assert (own.status, own.wall_time_s) == ("finished", float(UPDATES))
    assert stored[SHARED].status == "running" and 0 <= stored[SHARED].wall_time_s < WRITERS
    assert not list(root.rglob("*.tmp")), "a temporary file was left behind"

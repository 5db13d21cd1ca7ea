"""Run records and the results store on disk. Never imports torch: the fitter reads the store anywhere."""

from scaling_lab.redact import scrub_secrets
from scaling_lab.results.provenance import config_hash, git_commit, library_versions, utc_now
from scaling_lab.results.record import SCHEMA_VERSION, STATUSES, CurvePoint, RunPoint, RunRecord, RunStatus
from scaling_lab.results.store import (
    CURVE_COLUMNS,
    RECORD_FILENAME,
    TABLE_COLUMNS,
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

__all__ = [
    "CURVE_COLUMNS",
    "RECORD_FILENAME",
    "SCHEMA_VERSION",
    "STATUSES",
    "TABLE_COLUMNS",
    "CurvePoint",
    "RunPoint",
    "RunRecord",
    "RunStatus",
    "SkippedRecordsWarning",
    "config_hash",
    "git_commit",
    "library_versions",
    "load_curves",
    "load_records",
    "load_table",
    "paths_named",
    "read_record",
    "record_path",
    "run_dir",
    "scrub_secrets",
    "utc_now",
    "write_record",
]

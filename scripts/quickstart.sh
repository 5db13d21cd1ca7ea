#!/usr/bin/env bash
# README's main command: install, build the embedded corpus, run the CPU quickstart sweep (7 isoFLOP slices from
# 7 WSD runs, two jobs side by side with one thread each), and fit it. Results: results/quickstart/; fit: fits/quickstart/.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q "torch==2.13.0"          # the CPU wheel; a plain `torch` would pull a CUDA build
python -m pip install -q -e ".[dev]"
python -m scaling_lab.data.corpus build            # once: Django 5.1.4 docs + code from one pinned PyPI file
sl-plan experiment=quickstart --no-probe           # the dry run: what will train
sl-train -m experiment=quickstart launcher=local   # a relaunch skips finished points and resumes killed ones
# slices are equal in exact FLOPs; profiles over 1.1 decades of N are asymmetric, so approach 2 fits cubics
sl-fit input=results/quickstart out=fits/quickstart bootstrap=200 fit.table.store_flops=exact fit.approach2.curve=cubic
echo "fit: fits/quickstart/report.txt, fits/quickstart/fit.json; figures: fits/quickstart/*.png (and .svg)"

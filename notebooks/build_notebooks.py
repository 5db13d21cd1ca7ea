"""Write the example notebooks (01–05) from the cell sources below, without outputs (outputs never go into git).

    python notebooks/build_notebooks.py        # rewrites notebooks/0*.ipynb

Edit a notebook here (or in Jupyter, then clear its outputs): tests/notebooks/test_notebooks.py executes every
committed notebook and fails on any stored output. Each notebook has one cell tagged ``parameters`` (bootstrap
counts, paths); the test runs them with small counts by inserting an override cell after it.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = """\
from pathlib import Path

EXAMPLES = Path("../data/examples")  # stored results (data/examples/README.md): run from notebooks/
OUT = Path("../outputs/notebooks")   # figures and fit files written here (git-ignored)
BOOTSTRAP = 200                      # bootstrap resamples behind every interval
N_JOBS = 1                           # bootstrap worker processes (-1: all cores)"""

NOTEBOOKS: dict[str, list[tuple[str, str]]] = {
    "01_quickstart_fit.ipynb": [
        ("md", """\
# 01 · Quickstart: fit scaling laws to stored results

The table `data/examples/tiny_isoflop.parquet` was collected (`sl-collect`) from a real CPU sweep: 3 sizes × 3
FLOP budgets, byte-level, trained by `sl-train` (`scripts/make_example_results.py`). Its loss curves sit beside it
in `tiny_isoflop_curves.parquet`. This notebook reads both with the fitter's own loader and runs every approach
(Chinchilla approaches 1, 2, 3 and Kaplan) with bootstrap intervals — exactly what `sl-fit` does:

```bash
sl-fit input=data/examples/tiny_isoflop.parquet out=fits/tiny bootstrap=200
```"""),
        ("params", SETUP),
        ("code", """\
from scaling_lab.fitting.bootstrap import BootstrapConfig
from scaling_lab.fitting.run import FitConfig, fit_input, report_text, write_outputs
from scaling_lab.fitting.table import TableConfig, load_input

# N = all parameters: at this scale embeddings dominate N (Pearce & Song 2024); C = exact FLOPs (Chinchilla App. F)
table_config = TableConfig(store_n_params="total", store_flops="exact")
data = load_input(EXAMPLES / "tiny_isoflop.parquet", table_config)
print(f"{len(data.points)} final points, {0 if data.curves is None else len(data.curves)} curve points")
data.points.sort_values(["flops", "n_params"])"""),
        ("md", "Every approach, bootstrapped; the report states the objective, the starts and the intervals."),
        ("code", """\
config = FitConfig(bootstrap=BootstrapConfig(n_resamples=BOOTSTRAP, seed=0, n_jobs=N_JOBS))
outcome = fit_input(data, config)
print(report_text(outcome))"""),
        ("md", """\
The same files `sl-fit` writes: `fit.json` (stable schema, read by the planner: `load_law(path)`) and
`report.txt`."""),
        ("code", """\
fit_path, report_path = write_outputs(outcome, OUT / "01_tiny_isoflop")
print(fit_path, report_path, sep="\\n")"""),
        ("md", """\
**Reading it.** With 15 points on 3 budgets the intervals are wide: this is a demonstration of the workflow,
not a measurement of an exponent. `sl-plan experiment=quickstart` and the larger sweeps are where numbers
come from."""),
    ],
    "02_chinchilla_figures.ipynb": [
        ("md", """\
# 02 · Chinchilla-style figures

The figures of Hoffmann et al. 2022 drawn by `scaling_lab.plotting.figures` from the example sweep: isoFLOP
profiles (Fig. 3), N_opt and D_opt against compute (Fig. A3), L(N, D) contours with the efficient frontier
(Fig. 4), approach 3's residuals, and the loss-against-compute envelope (Fig. 2). `sl-fit` writes the same files."""),
        ("params", SETUP),
        ("code", """\
%matplotlib inline
from scaling_lab.fitting.bootstrap import BootstrapConfig
from scaling_lab.fitting.run import FitConfig, fit_input
from scaling_lab.fitting.table import TableConfig, load_input
from scaling_lab.plotting import figures

data = load_input(EXAMPLES / "tiny_isoflop.parquet", TableConfig(store_n_params="total", store_flops="exact"))
outcome = fit_input(data, FitConfig(bootstrap=BootstrapConfig(n_resamples=BOOTSTRAP, seed=0, n_jobs=N_JOBS)))
results = outcome.results
sorted(results)"""),
        ("code", """\
drawn = {"isoflop": figures.isoflop_figure(data.points, results)}
drawn["isoflop"]"""),
        ("code", """\
drawn["frontier"] = figures.frontier_figure(data.points, results)
drawn["frontier"]"""),
        ("code", """\
r3 = results["approach3"]  # its frontier along the table's own FLOP accounting (exact FLOPs here), as fitted
drawn["contours"] = figures.contour_figure(data.points, r3.law, r3.flops_per_token)
drawn["contours"]"""),
        ("code", """\
drawn["residuals"] = figures.residuals_figure(data.points, results["approach3"].law)
drawn["residuals"]"""),
        ("code", """\
drawn["envelope"] = figures.envelope_figure(data.curves, data.points, results)
drawn["envelope"]"""),
        ("md", "Saved as PNG and SVG, the files `sl-fit` writes (`figures.all_figures` draws and saves all at once):"),
        ("code", """\
written = {name: figures.save(figure, OUT / "02_figures", name) for name, figure in drawn.items()}
{name: [p.name for p in paths] for name, paths in written.items()}"""),
    ],
    "03_data_mix_comparison.ipynb": [
        ("md", """\
# 03 · Comparing data mixes on one yardstick

Four mixes of the embedded corpus — prose only, code only, 50/50 and 80/20 prose/code — trained with the quickstart's
isoFLOP recipe (`configs/experiment/mix_study.yaml`), plus a 20/80 mix the data-mixing law predicts before it was
trained. Every run was scored on the same eval suite: the held-out end of each domain (`prose`, `code`) and their
union (`all`), so a mix cannot look better because its own eval text is easier. The collected table and the mixtures
are stored in `data/mix_study/` (README there: provenance); `scripts/mix_study.py` writes the full report.

1. One approach-3 fit per mix on a chosen eval set (`TARGET`), side by side with bootstrap intervals, and the
   differences that lie outside them (`scaling_lab.planning.compare`).
2. The data-mixing law of Ye et al. 2024 (`scaling_lab.planning.mixing`) fitted on the four trained mixes' best loss
   at the top isoFLOP slice, predicting the 20/80 mix."""),
        ("params", SETUP + """
STUDY = Path("../data/mix_study")   # the stored mix study (table.csv, mixtures.json)
TARGET = "all"                      # the eval set compared: all (the union), prose or code
HELD_OUT = "mix_prose20_code80"     # the mix the mixing law predicts"""),
        ("code", """\
%matplotlib inline
import json

from scaling_lab.fitting.bootstrap import BootstrapConfig
from scaling_lab.planning import compare_fits, comparison_figure, fit_groups
from scaling_lab.planning.mixing import best_loss_per_slice, fit_mixing_law, mix_fit_tables

mixtures = json.loads((STUDY / "mixtures.json").read_text())
groups = sorted(mixtures)
table = mix_fit_tables(STUDY / "table.csv", groups, target=TARGET)
table.groupby("group").agg(points=("loss", "size"), min_flops=("flops", "min"), max_flops=("flops", "max"))"""),
        ("code", """\
fits = fit_groups(table, bootstrap_config=BootstrapConfig(n_resamples=BOOTSTRAP, seed=0, n_jobs=N_JOBS))
comparison = compare_fits(fits, target=table.attrs["loss_column"])
print(comparison.report())"""),
        ("code", """\
flops_range = (table["flops"].min(), 10 * table["flops"].max())
comparison_figure(fits, flops_range=flops_range, table=table)"""),
        ("md", """\
The mixing law, one per domain, on the trained mixes' lowest loss at the top slice; the mix left out is predicted
and compared with its measured loss."""),
        ("code", """\
trained = [g for g in groups if g != HELD_OUT]
for domain in ("prose", "code"):
    best = best_loss_per_slice(mix_fit_tables(STUDY / "table.csv", groups, target=domain))
    top = best[best["slice"] == best["slice"].max()].set_index("group")["loss"]
    law = fit_mixing_law([mixtures[g] for g in trained], [top[g] for g in trained], target=domain)
    predicted, measured = law.predict(mixtures[HELD_OUT]), top[HELD_OUT]
    print(law.report())
    print(f"  {HELD_OUT}: predicted {predicted:.4f}, measured {measured:.4f} ({predicted / measured - 1:+.2%})")"""),
        ("md", """\
**Caveat.** A difference is called out only when the 95% intervals do not overlap (a conservative test); it says
nothing about differences in the training setup other than the data, which the sweeps must hold fixed. A
two-domain mixing law has three parameters: four mixes leave one degree of freedom, so the mix left out is the
real test of it."""),
    ],
    "04_budget_planning.ipynb": [
        ("md", """\
# 04 · Planning a budget

Questions a planner answers from a law (`scaling_lab.planning`, the library behind `sl-budget`):

1. A 7B model trained at 20 tokens per parameter — how far is it from compute-optimal under the Chinchilla
   approach-3 law (Hoffmann et al. 2022) and under the Besiroglu et al. 2024 refit of the same data?
2. What would each law train with the same compute?
3. An inference-aware allocation (Sardana et al. 2023): the same loss, served many tokens, for the fewest
   lifetime FLOPs.
4. Planning from your own fit (a fit.json written by `sl-fit`), with bootstrap intervals."""),
        ("params", SETUP + """
N_MODEL = 7e9              # the model we are asked about (parameters)
TOKENS_PER_PARAM = 20      # its training tokens per parameter
INFERENCE_TOKENS = 2e12    # lifetime tokens it will serve (input and output)"""),
        ("code", """\
import pandas as pd

from scaling_lab.planning import BudgetQuery, inference_aware_plan, load_law, plan_budget, reference_models_table

laws = {name: load_law(name) for name in ("chinchilla", "besiroglu2024")}
model = {f"{N_MODEL / 1e9:g}B at {TOKENS_PER_PARAM} tok/param": (N_MODEL, TOKENS_PER_PARAM * N_MODEL)}
pd.concat({name: reference_models_table(loaded.law, model) for name, loaded in laws.items()})"""),
        ("md", "The compute-optimal model for the same training FLOPs (C = 6 N D), per law:"),
        ("code", """\
from scaling_lab.budget import flops_6nd  # C = 6 N D (Kaplan et al. 2020, §2.1)

flops = flops_6nd(N_MODEL, TOKENS_PER_PARAM * N_MODEL)
for loaded in laws.values():
    print(plan_budget(loaded, BudgetQuery(flops=flops)).report(), end="\\n\\n")"""),
        ("md", """\
And the other way round: the compute-optimal budget whose optimum *is* a 7B model (its D is the law's answer to
"how many tokens for 7B?")."""),
        ("code", """\
for loaded in laws.values():
    print(plan_budget(loaded, BudgetQuery(n_params=N_MODEL)).report(), end="\\n\\n")"""),
        ("md", "Inference-aware: the loss of the compute-optimal model at that budget, serving `INFERENCE_TOKENS`."),
        ("code", """\
plan = inference_aware_plan(laws["besiroglu2024"].law, inference_tokens=INFERENCE_TOKENS, flops=flops)
print(plan.report())"""),
        ("md", """\
**From your own fit.** A fit.json from `sl-fit` (here: the example sweep, bootstrapped) plans with intervals.
The example sweep is tiny (N in thousands, on *total* parameters), so plan only near its own range: the query
below is 10× its largest budget."""),
        ("code", """\
from scaling_lab.fitting.bootstrap import BootstrapConfig
from scaling_lab.fitting.run import FitConfig, fit_input, write_outputs
from scaling_lab.fitting.table import TableConfig, load_input

data = load_input(EXAMPLES / "tiny_isoflop.parquet", TableConfig(store_n_params="total", store_flops="exact"))
config = FitConfig(approaches=("approach3",), bootstrap=BootstrapConfig(n_resamples=BOOTSTRAP, seed=0, n_jobs=N_JOBS))
fit_path, _ = write_outputs(fit_input(data, config), OUT / "04_tiny_fit")
own = load_law(fit_path)
print(plan_budget(own, BudgetQuery(flops=10 * data.points["flops"].max())).report())"""),
    ],
    "05_reference_study.ipynb": [
        ("md", """\
# 05 · The reference CPU study: fit two decades, check the prediction at 10×

`data/reference_cpu/` holds the collected results of `configs/experiment/reference_cpu.yaml` (9 two-layer
widths, 5e10–5e12 exact FLOPs, model seeds 0 and 1), the fit `sl-fit` made of them, and the verification slice
`sl-verify` trained at 10× the top budget (`data/reference_cpu/README.md`: commands, commit, machine, wall times).
This notebook refits the table with every approach, predicts the 10× budget from that fit and compares the
predictions with the trained slice: what `sl-fit` and `sl-verify` did, from the stored files."""),
        ("params", SETUP.replace('EXAMPLES = Path("../data/examples")', 'STUDY = Path("../data/reference_cpu")').replace(
            "stored results (data/examples/README.md)", "the stored study (data/reference_cpu/README.md)")),
        ("code", """\
import json

import pandas as pd

from scaling_lab.fitting.approach2 import Approach2Config
from scaling_lab.fitting.bootstrap import BootstrapConfig
from scaling_lab.fitting.run import FitConfig, fit_input, report_text
from scaling_lab.fitting.table import TableConfig, load_input

# N = all parameters, C = exact FLOPs (as the study's sl-fit command); two seeds per point, fitted as their mean
data = load_input(STUDY / "table.csv", TableConfig(store_n_params="total", store_flops="exact"))
config = FitConfig(approach2=Approach2Config(curve="cubic"),
                   bootstrap=BootstrapConfig(n_resamples=BOOTSTRAP, seed=0, n_jobs=N_JOBS))
outcome = fit_input(data, config)
print(report_text(outcome))"""),
        ("md", """\
The stored verification: what each approach predicted at 10× the largest fitted budget, what the slice measured,
and the verdicts (relative error of the predicted best loss; whether the measured N_opt lies inside each
approach's interval)."""),
        ("code", """\
from scaling_lab.fitting.verify import compare, measure, predict

fit = json.loads((STUDY / "fit.json").read_text())
verify = json.loads((STUDY / "verify.json").read_text())
predictions, _ = predict(fit, verify["target_flops"], source="fit.json")
runs = pd.DataFrame(verify["runs"])
measured = measure(runs, verify["measured"]["curve"] or "parabola")
verdicts = compare(predictions, measured)
print(f"target C = {verify['target_flops']:.3g}; measured N_opt = {measured.n_opt:.3g}, best loss = {measured.best_loss:.4f}")
pd.DataFrame({name: {"N_opt": p.n_opt.value, "N_opt interval": p.n_opt.interval, "loss": p.loss.value,
                     **verdicts[name]} for name, p in predictions.items()}).T"""),
        ("code", """\
%matplotlib inline
from scaling_lab.fitting.verify import approach3_profile
from scaling_lab.plotting.verify import verify_figure

import numpy as np

sizes = np.geomspace(runs["n_params"].min() / 1.5, runs["n_params"].max() * 1.5, 200)
profile = (sizes, *approach3_profile(fit, verify["target_flops"], sizes, source="fit.json"))
verify_figure(predictions, measured, runs, flops=verify["target_flops"], profile=profile)"""),
    ],
}


def build(name: str, cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    """One notebook, no outputs; the ``params`` cell is tagged ``parameters`` (papermill's convention)."""
    notebook = new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.metadata["language_info"] = {"name": "python"}
    for kind, source in cells:
        if kind == "md":
            notebook.cells.append(new_markdown_cell(source))
        else:
            cell = new_code_cell(source)
            if kind == "params":
                cell.metadata["tags"] = ["parameters"]
            notebook.cells.append(cell)
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"{Path(name).stem[:2]}-{index:02d}"  # stable ids: rebuilding leaves git diffs clean
    return notebook


def main() -> None:
    for name, cells in NOTEBOOKS.items():
        nbformat.write(build(name, cells), HERE / name)
        print(HERE / name)


if __name__ == "__main__":
    main()

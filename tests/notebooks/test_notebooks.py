"""The example notebooks: stored without outputs, identical to what notebooks/build_notebooks.py writes, and each
one executed end to end (nbclient, a real python3 kernel) on the stored example results with small bootstrap
counts; the example data is what scripts/make_example_results.py writes."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
EXAMPLES = REPO / "data" / "examples"
NOTEBOOK_PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
TEST_BOOTSTRAP = 4  # resamples per interval in the test runs (the notebooks default to 200): enough for percentiles
CELL_TIMEOUT_S = 120


def _module(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def kernel_name() -> str:
    """The python3 kernel spec, installed for this user when missing (ipykernel's own installer)."""
    from jupyter_client.kernelspec import KernelSpecManager

    if "python3" not in KernelSpecManager().find_kernel_specs():
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--user"], check=True, capture_output=True)
    return "python3"


def test_every_notebook_is_committed():
    assert [p.name for p in NOTEBOOK_PATHS] == sorted(_module(NOTEBOOKS / "build_notebooks.py").NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=lambda p: p.stem)
def test_notebook_has_no_outputs(path: Path):
    notebook = nbformat.read(path, as_version=4)
    dirty = [index for index, cell in enumerate(notebook.cells)
             if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)]
    assert not dirty, f"{path.name}: cells {dirty} hold outputs; run `python notebooks/build_notebooks.py`"


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=lambda p: p.stem)
def test_notebook_matches_its_builder(path: Path):
    built = _module(NOTEBOOKS / "build_notebooks.py")
    expected = built.build(path.name, built.NOTEBOOKS[path.name])
    assert nbformat.writes(nbformat.read(path, as_version=4)) == nbformat.writes(expected)


def _with_overrides(path: Path, out_dir: Path) -> nbformat.NotebookNode:
    """The notebook with one cell after its ``parameters`` cell: small bootstrap, outputs into out_dir."""
    notebook = nbformat.read(path, as_version=4)
    tagged = [i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: exactly one cell must be tagged 'parameters'"
    override = new_code_cell(f"OUT = Path({str(out_dir)!r})\nBOOTSTRAP = {TEST_BOOTSTRAP}\nN_JOBS = 1")
    notebook.cells.insert(tagged[0] + 1, override)
    return notebook


def _text(notebook: nbformat.NotebookNode) -> str:
    """Every stream and text/plain output of the executed notebook."""
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", "") or output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def _images(notebook: nbformat.NotebookNode) -> int:
    return sum("image/png" in output.get("data", {}) for cell in notebook.cells for output in cell.get("outputs", []))


EXPECTED = {
    # notebook stem: (strings its outputs must contain, files it must write under OUT, PNG outputs at least)
    "01_quickstart_fit": (["[[Approach 3", "[[Approach 2", "[[Approach 1", "[[Kaplan"],
                          ["01_tiny_isoflop/fit.json", "01_tiny_isoflop/report.txt"], 0),
    "02_chinchilla_figures": ([], ["02_figures/isoflop.png", "02_figures/envelope.svg", "02_figures/contours.png"], 5),
    "03_data_mix_comparison": (["embedded_prose", "every mix fitted on the same eval text: loss", "predicted"], [], 1),
    "04_budget_planning": (["law: chinchilla", "law: besiroglu2024", "inference-aware", "over-training factor"],
                           ["04_tiny_fit/fit.json"], 0),
    "05_reference_study": (["[[Agreement", "target C = 5e+13", "measured N_opt"], [], 1),
}


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=lambda p: p.stem)
def test_notebook_executes(path: Path, tmp_path: Path, kernel_name: str, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the kernel inherits this process's environment
    notebook = _with_overrides(path, tmp_path)
    NotebookClient(notebook, kernel_name=kernel_name, timeout=CELL_TIMEOUT_S,
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    strings, files, images = EXPECTED[path.stem]
    text = _text(notebook)
    for string in strings:
        assert string in text, f"{path.name}: no output contains {string!r}"
    for name in files:
        assert (tmp_path / name).is_file(), f"{path.name}: did not write {name}"
    assert _images(notebook) >= images


def test_synthetic_two_mix_table_is_reproducible():
    """The committed synthetic table is exactly what the script draws (seeded), not hand-edited."""
    script = _module(REPO / "scripts" / "make_example_results.py")
    stored = pd.read_parquet(EXAMPLES / "synthetic_two_mix.parquet")
    pd.testing.assert_frame_equal(stored, script.two_mix_table())


def test_example_sweep_table_is_a_collected_store():
    """The committed sweep table came from sl-collect: run records of a 5 sizes × 3 budgets sweep, with curves."""
    points = pd.read_parquet(EXAMPLES / "tiny_isoflop.parquet")
    curves = pd.read_parquet(EXAMPLES / "tiny_isoflop_curves.parquet")
    assert set(points["status"]) == {"finished"}
    assert points["sweep"].unique().tolist() == ["tiny_isoflop"]
    assert points["n_params_total"].nunique() == 5 and len(points) == 15
    assert set(curves["run_id"]) == set(points["run_id"])
    assert (curves.groupby("run_id").size() > 3).all()

"""Dashboards built offline: the specification's panels, metric keys, group filters and log axes; the wire format
wandb_workspaces would send (built here, never sent); and the keys it plots against what real runs log."""

from __future__ import annotations

import importlib.util
import json
import socket
from pathlib import Path

import pytest

from scaling_lab.dashboards import (
    FIT_FIGURES,
    FIT_TABLES,
    FLOPS,
    MAX_RUNS_SHOWN,
    TOKENS,
    DashboardConfig,
    build_dashboard,
    default_domains,
    specification,
)
from scaling_lab.errors import ConfigError

TESTS = Path(__file__).parent


def _load(relative: str):
    """A helper module of another test file, loaded by path rather than copied."""
    spec = importlib.util.spec_from_file_location("dashboards_" + relative.replace("/", "_")[:-3], TESTS / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test: a specification is built offline."""

    def refuse(self, *args, **kwargs):
        raise AssertionError(f"network access during an offline build: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


def config(**overrides) -> DashboardConfig:
    values = {"entity": "my-team", "project": "scaling_lab", "sweeps": ("mix_a", "mix_b"), "out": "spec.json"}
    return DashboardConfig(**{**values, **overrides})


def panels_of(spec: dict) -> dict[str, list[dict]]:
    """Section heading -> the section's panels, for a workspace's or a report's specification."""
    if spec["type"] == "Workspace":
        return {section["name"]: section["panels"] for section in spec["sections"]}
    headings = [block["text"] for block in spec["blocks"] if block["type"] == "H2"]
    grids = [block for block in spec["blocks"] if block["type"] == "PanelGrid"]
    return {heading: grid["panels"] for heading, grid in zip(headings, grids, strict=True)}


def charts(spec: dict) -> set[tuple]:
    """Every line plot as (x, y, log x, log y)."""
    return {(p["x"], tuple(p["y"]), p["log_x"], p["log_y"]) for panels in panels_of(spec).values() for p in panels
            if p["type"] == "LinePlot"}  # fmt: skip


EXPECTED_CHARTS = {
    (TOKENS, ("eval/loss",), True, True),  # loss vs tokens, one line per run
    (TOKENS, ("train/loss",), True, True),
    (FLOPS, ("eval/loss",), True, True),  # loss vs FLOPs across sizes (and the union's per-set panel)
    (FLOPS, ("eval/bpb",), True, True),
    (FLOPS, ("eval/prose/loss",), True, True),
    (FLOPS, ("eval/prose/bpb",), True, True),
    (FLOPS, ("eval/code/loss",), True, True),
    (FLOPS, ("eval/code/bpb",), True, True),
}


@pytest.mark.parametrize("kind", ["workspace", "report"])
def test_the_specification_holds_the_scaling_panels_with_log_axes(kind, no_network):
    spec = specification(build_dashboard(config(kind=kind)))
    assert spec["type"] == kind.capitalize() and (spec["entity"], spec["project"]) == ("my-team", "scaling_lab")
    assert charts(spec) == EXPECTED_CHARTS
    sections = panels_of(spec)
    assert list(sections) == ["Loss vs tokens, per size", "Loss vs FLOPs across sizes",
                              "Loss and bits per byte, per eval set", "The fit"]  # fmt: skip
    (scatter,) = [p for p in sections["Loss vs FLOPs across sizes"] if p["type"] == "ScatterPlot"]
    assert (scatter["x"], scatter["y"], scatter["log_x"], scatter["log_y"]) == (
        {"type": "SummaryMetric", "name": "n_params_total"},
        {"type": "SummaryMetric", "name": "loss"},
        True,
        True,
    )
    fit = {p["type"]: p for p in sections["The fit"]}
    assert fit["MediaBrowser"]["media_keys"] == list(FIT_FIGURES)
    tables = [p["table_name"] for p in sections["The fit"] if p["type"] == "WeavePanelSummaryTable"]
    assert tables == list(FIT_TABLES)
    lines = [p for panels in sections.values() for p in panels if p["type"] == "LinePlot"]
    assert {p["max_runs_to_show"] for p in lines} == {MAX_RUNS_SHOWN}  # wandb draws 10 runs unless told
    json.dumps(spec)  # plain data


def test_the_default_domains_are_the_embedded_corpus_domains_and_others_can_be_named(no_network):
    assert default_domains() == ("prose", "code")
    spec = specification(build_dashboard(config(domains=("web",))))
    keys = {y for _, ys, _, _ in charts(spec) for y in ys}
    assert {"eval/web/loss", "eval/web/bpb", "eval/loss", "eval/bpb"} <= keys
    assert not {key for key in keys if "prose" in key or "code" in key}


def test_a_workspace_selects_the_sweeps_groups(no_network):
    workspace = build_dashboard(config(kind="workspace"))
    spec = specification(workspace)
    assert spec["name"] == "scaling_lab: mix_a vs mix_b" and spec["settings"]["max_runs"] == MAX_RUNS_SHOWN
    # the wire format wandb_workspaces would send (built offline): the filter parsed back, as a save parses it
    (runset,) = workspace._spec["spec"]["section"]["runSets"]
    leaves = [(leaf["key"]["name"], leaf["op"], leaf["value"], leaf.get("connector", "OR"))
              for leaf in runset["filters"]["filters"]]  # fmt: skip
    assert leaves == [("group", "=", "mix_a", "OR"), ("group", "=", "mix_b", "OR")]


def test_a_report_has_one_run_set_per_sweep_filtered_by_group_and_job_type(no_network):
    from wandb_workspaces import expr

    report = build_dashboard(config(kind="report", sweeps=("mix_a", "mix_b", "web.v2+dedup")))
    spec = specification(report)
    assert spec["title"] == "scaling_lab: mix_a vs mix_b vs web.v2+dedup"
    grids = [block for block in report.blocks if type(block).__name__ == "PanelGrid"]
    for grid, job_type in zip(grids, ["train", "train", "train", "fit"], strict=True):
        assert [runset.name for runset in grid.runsets] == ["mix_a", "mix_b", "web.v2+dedup"]
        for runset in grid.runsets:
            wire = expr.filters_tree_to_v2(expr.expr_to_filters(runset.filters))  # as Runset._to_model on save
            leaves = [(leaf["key"]["name"], leaf["op"], leaf["value"], leaf.get("connector", "AND"))
                      for leaf in wire["filters"]]  # fmt: skip
            assert leaves == [("group", "=", runset.name, "AND"), ("jobType", "=", job_type, "AND")]
        for panel in grid.panels:  # every panel converts to wandb's wire format offline
            panel._to_model()


def test_one_config_gives_one_specification(no_network):
    first, second = (json.dumps(specification(build_dashboard(config(kind="report")))) for _ in range(2))
    assert first == second  # random panel and run-set ids stay out


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        ({"sweeps": ()}, "sweeps is empty"),
        ({"sweeps": ("a", "a")}, "repeats"),
        ({"sweeps": ("lr=3e-3",)}, "sweeps has 'lr=3e-3'"),
        ({"sweeps": (2024,)}, "sweeps has 2024"),
        ({"domains": ("all",)}, "domains has 'all'"),
        ({"domains": ("web/x",)}, "domains has 'web/x'"),
        ({"kind": "dashboard"}, "kind='dashboard'"),
        ({"entity": None}, "entity=None"),
        ({"project": " "}, "project=' '"),
        ({"save": "yes"}, "save='yes'"),
        ({"out": None}, "out=FILE"),
        ({"kind": "report", "title": "x" * 129}, "128 characters"),
        ({"title": "hf_PLANTEDsecretVALUEforTHEtest123"}, "title=<redacted> holds a credential"),
    ],
)
def test_bad_settings_name_the_field(overrides, names):
    with pytest.raises(ConfigError) as raised:
        config(**overrides)
    assert names in str(raised.value)


def test_a_value_wandb_workspaces_refuses_is_one_config_error(no_network):
    with pytest.raises(ConfigError, match="wandb_workspaces refuses the workspace"):
        build_dashboard(config(title="loss \N{CHART WITH DOWNWARDS TREND}"))  # wandb names take no emoji


# ---- the keys plotted are the keys real runs log -----------------------------------------------------------------

tracking_tests = _load("test_tracking.py")
offline_wandb = tracking_tests.offline_wandb  # real wandb, offline, under tmp_path


def test_a_training_run_logs_every_key_the_train_panels_plot_in_the_same_rows(tmp_path, offline_wandb):
    from scaling_lab.sweep.sweep import run_point

    run_config = tracking_tests._tiny_train_config(tmp_path, sweep="dash")
    outcome = run_point(run_config)
    assert outcome.record is not None and outcome.record.status == "finished"
    (run_dir,) = (tmp_path / "results" / "dash" / run_config.run_id() / "wandb").glob("offline-run-*")
    history = [tracking_tests.items(h.item) for h in tracking_tests.records_of(run_dir, "history")]
    summary = {}  # each summary record updates some keys
    for update in tracking_tests.records_of(run_dir, "summary"):
        summary.update(tracking_tests.items(update.update))
    spec = specification(build_dashboard(config(domains=())))  # a local text file: the union only
    eval_rows = [row for row in history if "eval/loss" in row]
    assert eval_rows
    problems = []
    for x, (y,), _, _ in sorted(charts(spec)):
        rows = [row for row in history if y in row]
        if not rows:
            problems.append(f"no history row holds {y}")
        elif not all(x in row for row in rows):  # wandb draws y against x only from rows holding both
            problems.append(f"a row with {y} lacks its x axis {x}")
    assert not problems, problems
    assert {"n_params_total", "loss"} <= set(summary)  # the final loss vs N scatter


def test_a_fit_run_logs_the_figures_and_tables_the_fit_panels_show(tmp_path, offline_wandb):
    from hydra import compose, initialize_config_dir

    from scaling_lab.cli.fit import CONFIGS_DIR, run
    from scaling_lab.fitting.laws import CHINCHILLA_APPROACH3
    from scaling_lab.fitting.synthetic import isoflop_table

    fitting = _load("fitting/conftest.py")
    table = isoflop_table(CHINCHILLA_APPROACH3, budgets=fitting.BUDGETS[:4], noise=0.0, seed=0)
    root = fitting.write_store(tmp_path / "results", table, sweep="dash")
    overrides = [f"input={root / 'dash'}", f"out={tmp_path / 'fit'}", "logger=wandb", "approaches=[approach3]",
                 "fit.extrapolation.holdout_budgets=0"]  # fmt: skip
    with initialize_config_dir(version_base="1.3", config_dir=CONFIGS_DIR):
        run(compose(config_name="sl_fit", overrides=overrides))
    (run_dir,) = (tmp_path / "fit" / "wandb").glob("offline-run-*")
    tracking_tests.records_of(run_dir, "run")  # waits until wandb has written the whole run
    media = run_dir / "files" / "media"
    assert {path.name.split("_")[0] for path in (media / "images").glob("*.png")} == set(FIT_FIGURES)
    assert {path.name.split("_")[0] for path in (media / "table").glob("*.table.json")} == set(FIT_TABLES)


def test_building_a_dashboard_imports_neither_torch_nor_hydra():
    import subprocess
    import sys

    code = (
        "import sys; from scaling_lab.dashboards import DashboardConfig, build_dashboard, specification; "
        "config = DashboardConfig(entity='e', project='p', sweeps=('s',), out='x', kind='report'); "
        "specification(build_dashboard(config)); "
        "print(sorted(m for m in ('torch', 'transformers', 'hydra', 'omegaconf') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"

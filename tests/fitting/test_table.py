import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from scaling_lab.errors import ConfigError, TableError
from scaling_lab.fitting.table import TableConfig, load_input

from .conftest import write_store


def _write(tmp_path, frame, name="t.csv"):
    path = tmp_path / name
    if name.endswith(".csv"):
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    return path


def test_csv_and_parquet_read_the_same_with_6nd_default(tmp_path, chinchilla_table):
    table = chinchilla_table().drop(columns=["flops"])
    from_csv = load_input(_write(tmp_path, table), TableConfig()).points
    from_parquet = load_input(_write(tmp_path, table, "t.parquet"), TableConfig()).points
    pd.testing.assert_frame_equal(from_csv, from_parquet)
    np.testing.assert_allclose(from_csv["flops"], 6 * table["n_params"] * table["n_tokens"])
    assert from_csv.attrs == {"n_params_column": "n_params", "flops_column": "6ND", "loss_column": "loss"}


def test_configurable_column_names(tmp_path, chinchilla_table):
    table = chinchilla_table().rename(columns={"n_params": "N", "loss": "val_loss"})
    points = load_input(_write(tmp_path, table), TableConfig(n_params_column="N", loss_column="val_loss")).points
    assert list(points.columns[:3]) == ["n_params", "n_tokens", "loss"] and points.attrs["n_params_column"] == "N"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: t.head(0), "table is empty"),
        (lambda t: t.drop(columns=["loss"]), "column 'loss'"),
        (lambda t: t.assign(n_params=-t["n_params"]), "column n_params must be finite and positive"),
        (lambda t: t.assign(n_tokens=0.0), "column n_tokens must be finite and positive"),
        (lambda t: t.assign(loss=np.where(t.index == 4, np.nan, t["loss"])), "column loss has a missing"),
        (lambda t: t.assign(loss=np.where(t.index == 2, np.inf, t["loss"])), "column loss must be finite"),
        (lambda t: t.assign(loss="x"), "non-numeric"),
    ],
)
def test_bad_tables_fail_with_one_line_naming_file_and_column(tmp_path, chinchilla_table, mutate, message):
    path = _write(tmp_path, mutate(chinchilla_table()))
    with pytest.raises(TableError, match=message) as info:
        load_input(path, TableConfig())
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(TableError, match="does not exist"):
        load_input(tmp_path / "nope.csv", TableConfig())
    (tmp_path / "t.xlsx").write_text("x")
    with pytest.raises(TableError, match="unknown suffix"):
        load_input(tmp_path / "t.xlsx", TableConfig())


def test_groups_must_be_chosen_and_filters_apply(tmp_path, chinchilla_table):
    table = pd.concat([chinchilla_table().assign(group="prose"), chinchilla_table().assign(group="code")])
    path = _write(tmp_path, table)
    with pytest.raises(ConfigError, match=r"table\.group=<name>"):
        load_input(path, TableConfig())
    points = load_input(path, TableConfig(group="code", flops_max=2e20)).points
    assert set(points["group"]) == {"code"} and points["flops"].max() <= 2e20 and len(points) == 9 * 4
    with pytest.raises(ConfigError, match=r"table\.group=.web."):
        load_input(path, TableConfig(group="web"))
    with pytest.raises(TableError, match="no rows left"):
        load_input(path, TableConfig(group="code", loss_max=0.1))


def test_rows_sharing_a_run_id_are_curves(tmp_path, chinchilla_table):
    table = chinchilla_table()
    table.loc[:8, "run_id"] = "long_run"  # nine rows of one run at several D
    data = load_input(_write(tmp_path, table), TableConfig())
    assert data.curves is not None and set(data.curves["run_id"]) == {"long_run"} and len(data.curves) == 9


def test_store_input_maps_n_and_c_by_config(tmp_path, chinchilla_table):
    root = write_store(tmp_path / "results", chinchilla_table().head(12))
    total = load_input(root, TableConfig())
    assert total.kind == "store" and total.sweeps == ("syn",) and len(total.points) == 12
    suite = {"loss_column": "loss", "eval_suite_hash": None}  # records without an eval suite
    assert total.points.attrs == {"n_params_column": "n_params_total", "flops_column": "flops_6nd", **suite}
    assert total.curves is not None and len(total.curves) == 36
    nonembed = load_input(root, TableConfig(store_n_params="nonembed", store_flops="exact"))
    assert nonembed.points.attrs == {"n_params_column": "n_params_nonembed", "flops_column": "flops_exact", **suite}
    ratio = nonembed.points["flops"].to_numpy() / total.points["flops"].to_numpy()
    np.testing.assert_allclose(ratio, 7 / 6)


def test_collected_table_with_store_columns_is_read(tmp_path, chinchilla_table):
    from scaling_lab.results.store import load_curves, load_table

    root = write_store(tmp_path / "results", chinchilla_table().head(12))
    load_table(root).to_parquet(tmp_path / "t.parquet")
    load_curves(root).to_parquet(tmp_path / "t_curves.parquet")
    data = load_input(tmp_path / "t.parquet", TableConfig(store_n_params="nonembed"))
    assert data.points.attrs["n_params_column"] == "n_params_nonembed" and data.curves is not None


def test_fitting_and_plotting_never_import_torch():
    code = (
        "import sys, scaling_lab.fitting.run, scaling_lab.fitting.table, scaling_lab.plotting.figures; "
        "import scaling_lab.fitting.approach1, scaling_lab.fitting.kaplan, scaling_lab.fitting.synthetic; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_store_fits_the_chosen_eval_set_and_metric(tmp_path, chinchilla_table):
    from tests.fitting.conftest import SET_FACTORS

    table = chinchilla_table().head(12)
    root = write_store(tmp_path / "results", table, suite="s1")
    union = load_input(root, TableConfig())
    code_bpb = load_input(root, TableConfig(target="code", metric="bpb"))
    np.testing.assert_allclose(code_bpb.points["loss"], 1.5 * SET_FACTORS["code"] * union.points["loss"])
    assert code_bpb.points.attrs["loss_column"] == "bpb_code" and code_bpb.points.attrs["eval_suite_hash"] == "s1"
    np.testing.assert_allclose(load_input(root, TableConfig(metric="bpb")).points["loss"], 1.5 * union.points["loss"])
    with pytest.raises(
        TableError, match=r"no column loss_web for table.target=web .* the eval sets are all, code, prose"
    ):
        load_input(root, TableConfig(target="web"))
    with pytest.raises(ConfigError, match=r"table.metric='bits' is unknown"):
        TableConfig(metric="bits")


def test_runs_of_different_eval_suites_are_never_pooled(tmp_path, chinchilla_table):
    table = chinchilla_table().head(12)
    root = tmp_path / "results"
    write_store(root, table.head(6), sweep="a", suite="s1")
    write_store(root, table.tail(6), sweep="b", suite="s2")
    with pytest.raises(
        TableError, match=r"scored on 2 different eval suites \(s1, s2; .*collect their sweeps separately"
    ):
        load_input(root, TableConfig())
    write_store(tmp_path / "old", table.head(6), sweep="a")  # records written before eval suites
    write_store(tmp_path / "old", table.tail(6), sweep="b", suite="s1")
    with pytest.raises(TableError, match=r"2 different eval suites \(none, s1"):
        load_input(tmp_path / "old", TableConfig())


def test_a_plain_table_names_its_loss_column_instead_of_a_target(tmp_path, chinchilla_table):
    path = _write(tmp_path, chinchilla_table())
    with pytest.raises(ConfigError, match=r"table.target=code table.metric=loss apply to results stores"):
        load_input(path, TableConfig(target="code"))

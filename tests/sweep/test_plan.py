"""sl-plan over every sweep file, and bad sweeps that must fail before anything trains."""

import subprocess
import sys
from pathlib import Path

import pytest

from scaling_lab.cli import CONFIGS_DIR
from scaling_lab.sweep.plan import expand_grid, plan_sweep
from scaling_lab.train.plan import make_plan

SWEEP_FILES = sorted(p.stem for p in (Path(CONFIGS_DIR) / "experiment").glob("*.yaml"))


@pytest.fixture
def small_corpus(tmp_path):
    """A real local text corpus (this repository's own Python source) for data=local_files."""
    text = "\n".join(p.read_text() for p in sorted(Path(__file__).parents[2].glob("scaling_lab/**/*.py")))
    path = tmp_path / "corpus.txt"
    path.write_text(text * 4)
    return [
        "data=local_files",
        f"data.sources.0.paths=[{path}]",
        "data.eval_tokens=8192",
        f"paths.cache_dir={tmp_path / 'cache'}",
    ]


def test_there_are_sweep_files():
    assert {"nd_grid", "isoflop", "tpp_ladder", "wsd", "quickstart"} <= set(SWEEP_FILES)


@pytest.mark.parametrize("sweep", SWEEP_FILES)
def test_plan_every_sweep_file(sweep, small_corpus):
    table = plan_sweep([f"experiment={sweep}", *small_corpus], probe=False)
    assert len(table) >= 3
    assert (table.n_tokens > 0).all() and (table.steps > 0).all()
    assert (table.flops_exact > 0).all() and (table.n_params_total >= table.n_params_nonembed).all()
    assert table.run_id.is_unique


def test_isoflop_points_share_their_budget_and_sizes_grow_with_it(small_corpus):
    table = plan_sweep(["experiment=isoflop", *small_corpus], probe=False)
    for _, slice_ in table.groupby(table.overrides.str.extract(r"budget.value=(\S+)")[0]):
        assert slice_.flops_exact.max() / slice_.flops_exact.min() < 1.05  # D derived from C and FLOPs/token
    budgets = table.overrides.str.extract(r"budget.value=(\S+)")[0].astype(float)
    sizes = table.n_params_nonembed
    assert sizes[budgets == budgets.max()].median() > sizes[budgets == budgets.min()].median()


def test_multirun_overrides_on_the_command_line_make_a_grid(small_corpus):
    points = expand_grid(["model=n1k,n3k", "budget.value=1e5,2e5", *small_corpus])
    assert len(points) == 4
    assert {(p.config.model.preset, p.config.budget.value) for p in points} == {
        ("n1k", 1e5),
        ("n1k", 2e5),
        ("n3k", 1e5),
        ("n3k", 2e5),
    }


def test_seeds_are_grid_points_of_their_own(small_corpus):
    table = plan_sweep(["model=n1k", "budget.value=1e5", "seed=0,1", "data.seed=0,1", *small_corpus], probe=False)
    assert sorted(zip(table.seed, table.data_seed, strict=True)) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert table.run_id.is_unique and not table["flags"].str.contains("same run").any()


def test_probe_measures_a_positive_step_time(small_corpus):
    table = plan_sweep(["model=n1k", "budget.value=1e5", *small_corpus], probe=True)
    assert (table.est_seconds > 0).all()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model=n999k"], "model=n999k"),
        (["budget.value=-1e6"], "budget.value=-1000000.0 must be a positive number"),
        (["budget.value=10"], "budget"),  # D smaller than one batch
        (["experiment=no_such_sweep"], "no_such_sweep"),
    ],
)
def test_bad_sweep_fails_in_one_line_before_training(overrides, message, small_corpus, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "scaling_lab.cli.plan", "--no-probe", *overrides, *small_corpus],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr[-2000:]


def test_wsd_isoflop_puts_every_width_on_every_cosine_slice_for_under_half_the_flops(small_corpus):
    cosine = plan_sweep(["experiment=isoflop_cosine", *small_corpus], probe=False)
    wsd = plan_sweep(["experiment=isoflop_wsd", *small_corpus], probe=False)
    assert (cosine.flops_spent == cosine.flops_exact).all()  # one point per cosine run, nothing branched
    assert wsd.flops_spent.sum() / cosine.flops_spent.sum() < 0.5
    budgets = sorted(cosine.overrides.str.extract(r"budget.value=(\S+)")[0].astype(float).unique())
    with pytest.warns(UserWarning, match="inside the 40-step warmup: that point is skipped"):
        plans = [make_plan(point.config, vocab_size=256)
                 for point in expand_grid(["experiment=isoflop_wsd", *small_corpus])]  # fmt: skip
    for plan in plans:
        point_flops = [plan.flops_per_token_exact * steps * plan.tokens_per_step for steps in plan.point_steps]
        # each cooldown lands on its slice to within one optimizer step of tokens; the widest model's smallest
        # budget (39 steps) is shorter than its warmup (N tokens = 40 steps), so that one point is skipped
        step_flops = plan.flops_per_token_exact * plan.tokens_per_step
        assert point_flops == pytest.approx(budgets[-len(point_flops) :], abs=step_flops)
    assert sorted(len(plan.point_steps) for plan in plans) == [6] + [7] * (len(plans) - 1)

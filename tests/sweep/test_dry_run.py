"""sl-plan over every sweep file, and bad sweeps that must fail before anything trains."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from scaling_lab.cli import CONFIGS_DIR
from scaling_lab.cli.compose import expand_grid, register_configs, register_resolvers, sweep_jobs
from scaling_lab.sweep.dry_run import PresentGpu, dry_run_table, format_dry_run, gpu_target, planned_gpu
from scaling_lab.train.plan import make_plan

H100 = "NVIDIA H100 80GB HBM3"
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
        "data.eval_bytes=8192",
        f"paths.cache_dir={tmp_path / 'cache'}",
    ]


def test_there_are_sweep_files():
    assert {"nd_grid", "isoflop", "tpp_ladder", "wsd", "quickstart"} <= set(SWEEP_FILES)


@pytest.mark.parametrize("sweep", SWEEP_FILES)
def test_plan_every_sweep_file(sweep, small_corpus):
    table = dry_run_table(expand_grid([f"experiment={sweep}", *small_corpus]), probe=False)
    assert len(table) >= 3
    assert (table.n_tokens > 0).all() and (table.steps > 0).all()
    assert (table.flops_exact > 0).all() and (table.n_params_total >= table.n_params_nonembed).all()
    assert table.run_id.is_unique


def test_isoflop_points_share_their_budget_and_sizes_grow_with_it(small_corpus):
    table = dry_run_table(expand_grid(["experiment=isoflop", *small_corpus]), probe=False)
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
    table = dry_run_table(
        expand_grid(["model=n1k", "budget.value=1e5", "seed=0,1", "data.seed=0,1", *small_corpus]), probe=False
    )
    assert sorted(zip(table.seed, table.data_seed, strict=True)) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert table.run_id.is_unique and not table["flags"].str.contains("same run").any()


def test_probe_measures_a_positive_step_time(small_corpus):
    table = dry_run_table(expand_grid(["model=n1k", "budget.value=1e5", *small_corpus]), probe=True)
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
    cosine = dry_run_table(expand_grid(["experiment=isoflop_cosine", *small_corpus]), probe=False)
    wsd = dry_run_table(expand_grid(["experiment=isoflop_wsd", *small_corpus]), probe=False)
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


# Each case: the sweep overrides (the forms configs/experiment/*.yaml use: comma lists, range(a,b[,step]), a key given
# twice, a fixed override among sweeps) and the jobs Hydra's basic sweeper launches for them, in its order.
EXPANSIONS = [
    (["model=n3k,n7k", "budget.value=2.5e5,5e5"],  # numbers are passed on as Hydra parses them
     [["model=n3k", "budget.value=250000.0"], ["model=n3k", "budget.value=500000.0"],
      ["model=n7k", "budget.value=250000.0"], ["model=n7k", "budget.value=500000.0"]]),
    (["grid.point=range(0,3)", "seed=0"], [["grid.point=0", "seed=0"], ["grid.point=1", "seed=0"],
                                            ["grid.point=2", "seed=0"]]),
    (["grid.rank=range(-2,3,2)"], [["grid.rank=-2"], ["grid.rank=0"], ["grid.rank=2"]]),
    (["seed=0,1", "model=n1k", "seed=5,6,7"], [["seed=5", "model=n1k"], ["seed=6", "model=n1k"],
                                               ["seed=7", "model=n1k"]]),
    (["grid.point=range(0,0)", "seed=0,1"], []),
]  # fmt: skip


@pytest.mark.parametrize(("lines", "jobs"), EXPANSIONS)
def test_sweep_jobs_expand_as_hydras_basic_sweeper(lines, jobs):
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    overrides = OverridesParser.create().parse_overrides(lines)
    assert sweep_jobs(overrides) == jobs == BasicSweeper.split_arguments(overrides, None)[0]


@pytest.mark.parametrize("sweep", SWEEP_FILES)
def test_every_sweep_file_expands_as_hydras_basic_sweeper(sweep):
    """The sweep files' own ``hydra.sweeper.params`` plus command-line sweeps, against the sweeper Hydra would run."""
    from hydra import compose, initialize_config_dir
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    register_configs()
    register_resolvers()
    with initialize_config_dir(config_dir=CONFIGS_DIR, version_base="1.3"):
        params = compose("sl_train", overrides=[f"experiment={sweep}"], return_hydra_config=True).hydra.sweeper.params
    lines = [f"{key}={value}" for key, value in OmegaConf.to_container(params).items()] + ["data.seed=0,1"]
    overrides = OverridesParser.create().parse_overrides(lines)
    jobs = sweep_jobs(overrides)
    assert len(jobs) > 2 and jobs == BasicSweeper.split_arguments(overrides, None)[0]


def test_an_interval_sweep_is_one_error_line():
    done = subprocess.run([sys.executable, "-m", "scaling_lab.cli.plan", "--no-probe", "model=n1k",
                           "optim.lr=interval(1e-3,1e-2)"], capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "optim.lr=interval(1e-3,1e-2)" in done.stderr and "range(start,stop,step)" in done.stderr


def test_a_gpu_plan_measured_by_the_probe_takes_its_mfu_and_gpu_hours_from_the_step_times(small_corpus):
    # No GPU here: the probe measures on the CPU and the plan takes that as the H100's measurement (measured_on), so
    # the arithmetic from step times to MFU and GPU-hours is the one a GPU machine runs.
    h100 = gpu_target(H100, measured_on="cpu")
    table = dry_run_table(expand_grid(["model=n1k,n3k", "budget.value=1e5", *small_corpus]), probe=False, gpu=h100)
    assert len(table) == 2 and (table.step_seconds > 0).all()  # a measured target probes whatever probe says
    # GPU-hours = steps × measured seconds per step + the evals (= est_seconds); the evals cost less than training
    train_seconds = table.steps * table.step_seconds
    eval_seconds = table.gpu_hours * 3600 - train_seconds
    assert (table.gpu_hours * 3600).to_numpy() == pytest.approx(table.est_seconds.to_numpy(), rel=1e-12)
    assert (eval_seconds > 0).all() and (eval_seconds < train_seconds).all()
    # MFU = exact FLOPs of one step / (measured seconds per step × the H100's 989 TFLOP/s)
    flops_per_step = table.flops_exact / table.n_tokens * table.batch_tokens
    assert table.mfu.to_numpy() == pytest.approx((flops_per_step / (table.step_seconds * 989e12)).to_numpy())
    text = format_dry_run(table)
    header = text.splitlines()[0]
    assert f"GPU plan for {H100}: dense bf16 peak 989 TFLOP/s, 80 GB; MFU measured by probe on cpu" in header
    assert "assumed" not in header and "Nothing here was measured" not in header
    assert f"GPU-hours on {H100} at {table.mfu.min():.1%}–{table.mfu.max():.1%} MFU (measured)" in text


def test_a_gpu_plan_for_another_gpu_than_this_machines_says_its_mfu_is_assumed(small_corpus):
    present = PresentGpu(device="cuda:0", name="NVIDIA H200", memory_bytes=150 * 10**9)
    target = planned_gpu(present, device_name=H100, mfu=None)
    table = dry_run_table(expand_grid(["model=n1k", "budget.value=1e5", *small_corpus]), probe=False, gpu=target)
    header = format_dry_run(table).splitlines()[0]
    assert "MFU assumed 30% (default, from Chowdhery et al. 2022" in header and "est_seconds" not in table
    assert "this machine's NVIDIA H200 is not the device planned for: nothing measured" in header
    assert table.gpu_hours.to_numpy() == pytest.approx(table.flops_spent.to_numpy() / (989e12 * 0.3) / 3600)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_probe_on_a_device_this_machine_lacks_fails_in_one_line(small_corpus, tmp_path):
    plan = [sys.executable, "-m", "scaling_lab.cli.plan", "device=cuda", "model=n1k", "budget.value=1e5", *small_corpus]
    done = subprocess.run(plan, capture_output=True, text=True, cwd=tmp_path, check=False)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: device=cuda is not available")
    assert "--no-probe, or --device-name" in lines[0] and done.stdout == ""
    assert not (tmp_path / "cache").exists()  # nothing tokenized before the device was checked
    # The way out it names: a plan without the probe, which never touches the device
    done = subprocess.run([*plan, "--no-probe"], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert done.returncode == 0 and "est_seconds" not in done.stdout, done.stderr[-2000:]

"""sl-plan for a named GPU: the GPU study files plan offline (no GPU, no network, no tokenizing the hub data), and
the GPU-hours, memory and batch arithmetic hold against numbers worked out by hand."""

import os
import re
import subprocess
import sys

import pandas as pd
import pytest

from scaling_lab.errors import ConfigError
from scaling_lab.model.hardware import DEFAULT_MFU, device_memory_bytes, gpu_hours
from scaling_lab.sweep.dry_run import PresentGpu, planned_gpu, why_mfu_assumed

H100 = "NVIDIA H100 80GB HBM3"
# Each GPU study: (sweep file, context, micro-batch, slices, sizes per slice)
GPU_STUDIES = [("gpu_day", 1024, 16, (1e16, 3.16e16, 1e17, 3.16e17, 1e18), 5),
               ("gpu_box", 2048, 4, (1e18, 3.16e18, 1e19, 3.16e19, 1e20), 5)]  # fmt: skip


def sl_plan(*args: str, cwd) -> subprocess.CompletedProcess:
    # An unreachable hub: any download the plan tried would end it with an error instead of passing silently.
    env = {**os.environ, "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0"}
    return subprocess.run([sys.executable, "-m", "scaling_lab.cli.plan", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, check=False)  # fmt: skip


@pytest.mark.parametrize(("sweep", "context", "micro", "budgets", "sizes"), GPU_STUDIES)
def test_gpu_study_plans_offline_with_memory_packing_and_gpu_hours(sweep, context, micro, budgets, sizes, tmp_path):
    cache = tmp_path / "cache"
    done = sl_plan(f"experiment={sweep}", f"paths.cache_dir={cache}", "--device-name", H100, "--gpus", "8",
                   "--out", str(tmp_path / "plan.csv"), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    table = pd.read_csv(tmp_path / "plan.csv")
    assert len(table) == len(budgets) * sizes and table.run_id.is_unique
    # The plan states its assumptions: the device's peak, the MFU and where it comes from, and that nothing was measured
    header = done.stdout.splitlines()[0]
    assert f"GPU plan for {H100}: dense bf16 peak 989 TFLOP/s, 80 GB; MFU assumed 30%" in header
    assert "Chowdhery et al. 2022 (PaLM), Table 3" in header and "Nothing here was measured on a GPU" in header
    assert "epochs not checked for hub data" in done.stdout and table.max_epochs.isna().all()
    assert not (cache / "tokenizers").exists() and not (cache / "hf_datasets").exists()  # nothing downloaded or trained
    # Every slice sits on its budget in exact FLOPs (within one optimizer step) with sizes that grow with it
    slices = table.overrides.str.extract(r"budget.value=(\S+)")[0].astype(float)
    assert sorted(slices.unique()) == pytest.approx(budgets)
    step_flops = table.flops_exact / table.steps
    assert ((table.flops_exact - slices).abs() <= step_flops).all()
    medians = table.groupby(slices).n_params_nonembed.median()
    assert medians.is_monotonic_increasing and medians.iloc[-1] / medians.iloc[0] == pytest.approx(10, rel=0.2)
    # The vocabulary comes from the BPE's configured size (two untied 32,768 × width matrices), not from tokenizing
    widths = table["shape"].str.extract(r"xd(\d+)x")[0].astype(int)
    assert (table.n_params_total - table.n_params_nonembed == 2 * 32768 * widths).all()
    # The batch rule rounds to whole micro-batches of the study's context; every run fits the GPU
    assert (table.micro_batch == micro).all() and (table.batch_tokens % (micro * context) == 0).all()
    assert (table.memory_gb < 80 * 0.9).all() and table["flags"].isna().all()  # no flag: empty cells
    # GPU-hours = exact FLOPs spent / (989e12 × 0.3) / 3600, per point and in the totals line
    assert table.gpu_hours.to_numpy() == pytest.approx(table.flops_spent.to_numpy() / (989e12 * DEFAULT_MFU) / 3600)
    total = table.gpu_hours.sum()
    assert f"{total:.3g} GPU-hours on {H100} at 30% MFU; on 8 GPUs at least" in done.stdout


def test_gpu_hours_worked_by_hand():
    # 1e18 FLOPs at 30 % of an H100's 989 TFLOP/s: 1e18 / 2.967e14 FLOP/s = 3370.4 s = 0.93622 h
    assert gpu_hours(1e18, peak_flops_per_second=989e12, mfu=0.3) == pytest.approx(0.93622, abs=1e-5)
    # 7.2e20 FLOPs on an A100 (312 TFLOP/s) at 40 %: 7.2e20 / 1.248e14 = 5.769e6 s = 1602.6 h
    assert gpu_hours(7.2e20, peak_flops_per_second=312e12, mfu=0.4) == pytest.approx(1602.56, abs=0.01)
    with pytest.raises(ValueError, match="mfu"):
        gpu_hours(1e18, peak_flops_per_second=989e12, mfu=0)


@pytest.mark.parametrize(
    ("name", "gigabytes"),
    [(H100, 80), ("NVIDIA H100 PCIe", 80), ("NVIDIA H100 NVL", 94), ("NVIDIA H200", 141), ("NVIDIA GH200 480GB", 96),
     ("NVIDIA A100-SXM4-40GB", 40), ("NVIDIA A100-PCIE-40GB", 40), ("NVIDIA A100-SXM4-80GB", 80),
     ("NVIDIA L40S", 48), ("NVIDIA L4", 24), ("AMD Instinct MI300X", 192), ("NVIDIA GeForce RTX 3090", None)],
)  # fmt: skip
def test_each_device_name_gets_its_datasheet_memory(name, gigabytes):
    assert device_memory_bytes(name) == (None if gigabytes is None else gigabytes * 10**9)


def test_a_smaller_gpu_and_a_measured_mfu_change_the_estimate(tmp_path):
    done = sl_plan("experiment=gpu_day", "--device-name", "NVIDIA A100-SXM4-40GB", "--mfu", "0.2", "--out",
                   str(tmp_path / "plan.csv"), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "312 TFLOP/s, 40 GB; MFU assumed 20% (given with --mfu)" in done.stdout
    table = pd.read_csv(tmp_path / "plan.csv")
    assert table.gpu_hours.to_numpy() == pytest.approx(table.flops_spent.to_numpy() / (312e12 * 0.2) / 3600)
    assert (table.memory_gb < 40 * 0.9).all()


def test_runs_of_several_processes_plan_one_gpu_each(tmp_path):
    """gpu_box's 1e20 slice with processes=8: each run takes 8 GPUs, its memory is one process's (sharded by FSDP2
    from fsdp_min_params, replicated by DDP below), the GPU-hours are the one-process plan's and the wall-clock of
    the longest run is an eighth of its GPU-hours."""
    plans = {}
    for name, extra in (
        ("one", ()),
        ("ddp", ("processes=8", "fsdp_min_params=1000000000000")),
        ("fsdp", ("processes=8", "fsdp_min_params=0")),
    ):
        done = sl_plan("experiment=gpu_box", "budget.value=1e20", *extra, "--device-name", H100, "--out",
                       str(tmp_path / f"{name}.csv"), cwd=tmp_path)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        plans[name] = (pd.read_csv(tmp_path / f"{name}.csv"), done.stdout)
    one, ddp, fsdp = (plans[name][0] for name in ("one", "ddp", "fsdp"))
    assert (one.processes == 1).all() and (ddp.processes == 8).all() and (ddp.runs_per_gpu == 1).all()
    assert ddp.gpu_hours.to_numpy() == pytest.approx(one.gpu_hours.to_numpy())
    # DDP adds its gradient buckets (4 bytes per parameter); FSDP2 splits the 16 bytes of fp32 state over 8
    added = (ddp.memory_gb - one.memory_gb).to_numpy() * 1e9
    assert added == pytest.approx(4 * one.n_params_total.to_numpy(), rel=1e-6)
    assert (fsdp.memory_gb < one.memory_gb).all()
    longest = one.gpu_hours.max()
    assert f"the longest run: {longest:.3g} h" in plans["one"][1]
    assert f"the longest run: {longest / 8:.3g} h" in plans["ddp"][1]


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--device-name", "RTX 3090"], "--device-name='RTX 3090' is not a device with a known datasheet"),
     (["--device-name", "RTX 3090", "--peak-tflops", "71"], "give --memory-gb"),
     (["--device-name", H100, "--mfu", "1.5"], "--mfu=1.5 must lie in (0, 1]"),
     (["--mfu", "0.4"], "give --device-name too")],
)  # fmt: skip
def test_bad_gpu_options_fail_in_one_line(args, message, tmp_path):
    done = sl_plan("experiment=gpu_day", *args, cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], done.stderr[-2000:]
    assert list(tmp_path.iterdir()) == []


def test_the_batch_rule_rounds_to_whole_micro_batches():
    from scaling_lab.train.rules import default_batch_tokens

    # DeepSeek LLM 2024 eq. 1 at C = 1e16: 0.292 · 1e16^0.3271 = 49,990 tokens = 48.8 sequences of 1024 or 3.05
    # micro-batches of 16 sequences: 49 sequences alone, 3 × 16 = 48 sequences with the micro-batch
    assert default_batch_tokens(1e16, sequence_length=1024) == 49 * 1024
    assert default_batch_tokens(1e16, sequence_length=1024, micro_batch_sequences=16) == 48 * 1024


@pytest.mark.parametrize("sweep", [study[0] for study in GPU_STUDIES])
def test_gpu_study_data_is_pinned_to_one_commit(sweep):
    # The hub dataset is updated in place: an unpinned revision would read a different text on another day under the
    # same settings. The pin is part of the data fingerprint, so another commit makes other runs.
    from scaling_lab.cli.compose import expand_grid

    point = expand_grid([f"experiment={sweep}"])[0]
    (source,) = point.config.data.sources
    assert re.fullmatch(r"[0-9a-f]{40}", source.revision), source.revision
    other = expand_grid([f"experiment={sweep}", "data.sources.0.revision=" + "0" * 40])[0]
    assert other.config.run_id() != point.config.run_id()


H200 = PresentGpu(device="cuda:0", name="NVIDIA H200", memory_bytes=150 * 10**9)  # this machine's GPU, as torch says
RTX = PresentGpu(device="cuda:1", name="NVIDIA GeForce RTX 4090", memory_bytes=25_757_220_864)  # no datasheet here


@pytest.mark.parametrize(
    ("present", "device_name", "mfu_given", "probe", "why"),
    [(None, None, False, True, ""), (None, H100, True, True, ""),  # offline: the header says nothing was measured
     ("NVIDIA H200", None, False, True, None), ("NVIDIA H200", " nvidia h200", False, True, None),  # measured
     ("NVIDIA H200", H100, False, True, "this machine's NVIDIA H200 is not the device planned for: nothing measured"),
     ("NVIDIA H200", None, True, True, "--mfu overrides the probe on this machine's NVIDIA H200"),
     ("NVIDIA H200", "NVIDIA H200", False, False, "--no-probe: nothing measured on this machine's NVIDIA H200")],
)  # fmt: skip
def test_a_plan_measures_its_mfu_only_on_the_gpu_it_plans_for(present, device_name, mfu_given, probe, why):
    assert why_mfu_assumed(present, device_name, mfu_given=mfu_given, probe=probe) == why


def test_the_planned_gpu_is_this_machines_measured_or_the_named_one_assumed():
    measured = planned_gpu(H200, device_name=None, mfu=None)
    assert (measured.name, measured.measured_on, measured.peak_flops) == ("NVIDIA H200", "cuda:0", 989e12)
    assert measured.memory_bytes == 141 * 10**9  # the datasheet's, as for a plan made offline
    assert measured.mfu_source == "measured by probe on cuda:0"
    assumed = planned_gpu(H200, device_name="NVIDIA A100-SXM4-40GB", mfu=None, gpus=8)
    assert (assumed.measured_on, assumed.peak_flops, assumed.memory_bytes, assumed.gpus) == (None, 312e12, 40e9, 8)
    assert assumed.why_assumed == "this machine's NVIDIA H200 is not the device planned for: nothing measured"
    overridden = planned_gpu(H200, device_name=None, mfu=0.4)
    assert (overridden.measured_on, overridden.mfu) == (None, 0.4)
    assert overridden.mfu_source == "given with --mfu"
    assert overridden.why_assumed == "--mfu overrides the probe on this machine's NVIDIA H200"
    # A GPU without a known datasheet: no GPU plan unless its peak is given; its memory is its own
    assert planned_gpu(RTX, device_name=None, mfu=None) is None
    rtx = planned_gpu(RTX, device_name=RTX.name, mfu=None, peak_tflops=165)
    assert (rtx.measured_on, rtx.peak_flops, rtx.memory_bytes) == ("cuda:1", 165e12, RTX.memory_bytes)
    assert planned_gpu(None, device_name=None, mfu=None) is None  # no GPU here, none named: no GPU plan
    with pytest.raises(ConfigError, match="this machine has none: give --device-name too"):
        planned_gpu(None, device_name=None, mfu=None, gpus=8)

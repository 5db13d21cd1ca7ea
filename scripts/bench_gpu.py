"""GPU throughput by model size (tokens/s, MFU), and what packing several small runs on one GPU gains.

Every run is the library's own training (``scaling_lab.train.loop.train``: the transformers model, bf16 autocast,
fused AdamW and, with --compile, torch.compile, exactly as sl-train runs it) on the embedded corpus, one run per
process, each for a fixed number of steps. Throughput counts only steps after --warmup (compilation excluded), timed
when each step's loss reaches the host.

1. Sizes: one run at a time per preset: N, tokens/s, achieved FLOP/s (Chinchilla App. F count), MFU against the
   device's datasheet peak (scaling_lab/model/hardware.py), micro-batch, peak memory against the estimate.
2. Packing: k processes of one small preset at once on one device (k = 1, 2, 4, 8), started together; aggregate
   tokens/s over the window in which all k were past warm-up, and its ratio to k = 1 (target: ≥ 4× for
   models of ≤ 10M parameters). Start MPS first (nvidia-cuda-mps-control -d) to let their kernels overlap.
3. Check: every packed run's final eval loss equals the solo run's (same seed, same data, same maths). On CUDA a
   second solo run gives the run-to-run noise floor of non-deterministic kernels.

    python scripts/bench_gpu.py                                   # CUDA: n1m n10m n85m n300m; n1m packed ×1,2,4,8
    python scripts/bench_gpu.py --device cpu --sizes n1k n12k --pack-size n1k --pack 1 2 --steps 30 --warmup 5
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import queue
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from scaling_lab.config.schema import run_config_from_dict
from scaling_lab.data import default_cache_dir, prepare_data
from scaling_lab.errors import ScalingLabError, exit_on_user_error
from scaling_lab.model import PRESETS, n_params_total
from scaling_lab.model.hardware import PROCESS_OVERHEAD_BYTES, mfu, micro_batch_that_fits, training_memory_bytes
from scaling_lab.tracking import Tracker
from scaling_lab.train.loop import train
from scaling_lab.train.placement import mps_active
from scaling_lab.train.plan import make_plan
from scaling_lab.train.run import device_name

VOCAB = 256  # the embedded corpus is byte-level (configs/data/embedded.yaml)


class StepClock(Tracker):
    """A tracker that keeps the wall-clock time of every training step's log (the loop logs after each step, once
    the step's loss is on the host, so the time includes the device's work)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def log(self, metrics: dict[str, Any], step: int) -> None:
        if "train/loss" in metrics:
            self.times.append(time.time())  # wall clock: comparable between the processes of one host


def run_values(args: argparse.Namespace, preset: str, micro: int) -> dict[str, Any]:
    """The RunConfig of one benchmark run: ``args.steps`` steps, one eval at the end, no checkpoints, no logger."""
    batch_tokens = args.batch_sequences * args.sequence_length
    budget = args.steps * batch_tokens
    return {
        "model": {"preset": preset},
        "data": {
            "name": "embedded",
            "sources": [
                {"name": "prose", "kind": "embedded", "domain": "prose", "weight": 0.5},
                {"name": "code", "kind": "embedded", "domain": "code", "weight": 0.5},
            ],
            "sequence_length": args.sequence_length,
            "eval_bytes": args.eval_bytes,
        },
        "optim": {"batch_tokens": batch_tokens, "micro_batch_sequences": micro},
        "budget": {"kind": "tokens", "value": budget},
        "logger": {"backend": "none"},
        "debug": {"progress": False},
        "paths": {"results_dir": tempfile.gettempdir(), "cache_dir": str(args.cache_dir)},
        "eval_every_tokens": budget,
        "checkpoint_every_tokens": 0,
        "device": args.device,
        "threads": args.threads,
        "compile": args.compile,
    }


def worker(values: dict[str, Any], start: Any, results: Any) -> None:
    """One run in its own process: set up, wait for the others at ``start``, train, report."""
    config = run_config_from_dict(values)
    torch.set_num_threads(config.threads)
    data = prepare_data(config.data, config.paths.resolved_cache_dir())
    plan = make_plan(config, vocab_size=data.vocab_size)
    device = torch.device(config.device)
    clock = StepClock()
    start.wait(timeout=600)
    with tempfile.TemporaryDirectory() as run_dir:
        progress = train(config, plan, data, run_dir=Path(run_dir), tracker=clock, device=device)
    results.put({
        "times": clock.times, "tokens_per_step": plan.tokens_per_step, "loss": progress.points[-1]["loss"],
        "n_params": plan.n_params_total, "flops_per_token": plan.flops_per_token_exact, "device": device_name(device),
        "peak_memory": torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None,
    })  # fmt: skip


def run_together(values: dict[str, Any], k: int) -> list[dict[str, Any]]:
    """k copies of one run, each in a fresh process, released together once all are set up."""
    context = mp.get_context("spawn")  # CUDA cannot be used in forked children
    start, results = context.Barrier(k), context.Queue()
    processes = [context.Process(target=worker, args=(values, start, results)) for _ in range(k)]
    for process in processes:
        process.start()
    reports = []
    for _ in range(k):
        while True:
            try:
                reports.append(results.get(timeout=5))
                break
            except queue.Empty:  # make sure nobody died while we wait
                if any(p.exitcode not in (None, 0) for p in processes):
                    raise SystemExit(f"a benchmark run failed (exit codes {[p.exitcode for p in processes]})") from None
    for process in processes:
        process.join()
    return reports


def aggregate_tokens_per_second(reports: list[dict[str, Any]], warmup: int) -> float:
    """Tokens/s of all runs together over the window in which every one of them was past warm-up and still
    training: from the last run's end of warm-up to the first run's last step."""
    begin = max(r["times"][warmup - 1] for r in reports)
    end = min(r["times"][-1] for r in reports)
    steps = sum(sum(begin < t <= end for t in r["times"]) for r in reports)
    if end <= begin or steps < 2 * len(reports):
        raise ScalingLabError(f"the {len(reports)} runs barely overlapped after warm-up: raise --steps")
    return steps * reports[0]["tokens_per_step"] / (end - begin)


def micro_batch(args: argparse.Namespace, preset: str, share: int) -> int:
    """Sequences per forward pass: on CUDA the largest that fits this run's 1/share of the device memory."""
    if args.device == "cpu":
        return args.batch_sequences
    shape = PRESETS[preset]
    memory = torch.cuda.get_device_properties(0).total_memory // share
    return micro_batch_that_fits(shape, vocab_size=VOCAB, n_params=n_params_total(shape, VOCAB, tied=False),
                                 sequence_length=args.sequence_length, batch_sequences=args.batch_sequences,
                                 device_memory_bytes=memory)  # fmt: skip


def gigabytes(value: float | None) -> str:
    return "—" if value is None else f"{value / 1e9:.2f}"


def sizes_table(args: argparse.Namespace) -> None:
    print(f"{'preset':7} {'N':>13} {'tok/s':>10} {'FLOP/s':>10} {'MFU':>6} {'micro':>5} {'peak GB':>8} {'est GB':>7}")
    for preset in args.sizes:
        micro = micro_batch(args, preset, 1)
        (report,) = run_together(run_values(args, preset, micro), 1)
        tokens_per_second = aggregate_tokens_per_second([report], args.warmup)
        flops = tokens_per_second * report["flops_per_token"]
        utilisation = mfu(flops, report["device"])
        shape = PRESETS[preset]
        estimate = None  # allocator peak vs the packing rule's estimate (without the per-process CUDA context)
        if args.device != "cpu":
            tokens = micro * args.sequence_length
            estimate = training_memory_bytes(shape, vocab_size=VOCAB, n_params=report["n_params"],
                                             micro_batch_tokens=tokens) - PROCESS_OVERHEAD_BYTES  # fmt: skip
        print(f"{preset:7} {report['n_params']:>13,} {tokens_per_second:>10.4g} {flops:>10.4g} "
              f"{'—' if utilisation is None else f'{utilisation:.1%}':>6} {micro:>5} "
              f"{gigabytes(report['peak_memory']):>8} {gigabytes(estimate):>7}")  # fmt: skip


def packing_table(args: argparse.Namespace) -> bool:
    """Print the packing speed-ups and the loss check; True when every packed run matched the solo run."""
    micro = micro_batch(args, args.pack_size, max(args.pack))
    values = run_values(args, args.pack_size, micro)
    print(f"\npacking {args.pack_size} ({n_params_total(PRESETS[args.pack_size], VOCAB, tied=False):,} parameters, "
          f"micro-batch {micro}), k runs at once on one device:")  # fmt: skip
    print(f"{'k':>3} {'aggregate tok/s':>16} {'per run tok/s':>14} {'speed-up':>9} {'max |Δ loss| vs solo':>21}")
    solo_loss, solo_rate, worst = None, None, 0.0
    for k in args.pack:
        reports = run_together(values, k)
        rate = aggregate_tokens_per_second(reports, args.warmup)
        if solo_loss is None:
            solo_loss, solo_rate = reports[0]["loss"], rate if k == 1 else None
        difference = max(abs(r["loss"] - solo_loss) for r in reports)
        worst = max(worst, difference)
        speedup = f"{rate / solo_rate:.2f}×" if solo_rate else "—"
        print(f"{k:>3} {rate:>16.4g} {rate / k:>14.4g} {speedup:>9} {difference:>21.3g}")
    noise, floor = 0.0, "CPU kernels are deterministic"
    if args.device != "cpu":  # CUDA kernels may be non-deterministic: how far do two solo runs differ?
        noise = abs(run_together(values, 1)[0]["loss"] - solo_loss)
        floor = f"solo vs solo |Δ| = {noise:.3g}"
    matched = worst <= noise
    print(f"check: packed final losses equal the solo run's: {'yes' if matched else 'NO'} "
          f"(max |Δ| = {worst:.3g}; {floor}; solo loss {solo_loss:.6f})")  # fmt: skip
    return matched


@exit_on_user_error
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--sizes", nargs="*", default=None, help="presets (default cuda: n1m n10m n85m n300m)")
    parser.add_argument("--pack-size", default=None, help="preset to pack (default cuda: n1m; cpu: n1k)")
    parser.add_argument("--pack", nargs="+", type=int, default=[1, 2, 4, 8], help="runs at once (first must be 1)")
    parser.add_argument("--steps", type=int, default=None, help="steps per run (default cuda 60, cpu 30)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed first steps (default cuda 10, cpu 5)")
    parser.add_argument("--sequence-length", type=int, default=None, help="default cuda 1024, cpu 64")
    parser.add_argument("--batch-sequences", type=int, default=None, help="default cuda 32, cpu 8")
    parser.add_argument("--eval-tokens", type=int, default=None, help="final eval set (default 64 sequences)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per run (process)")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None, help="default: on CUDA")
    parser.add_argument("--cache-dir", type=Path, default=None, help="data cache (default: the machine's)")
    args = parser.parse_args()
    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        raise ScalingLabError("--device cuda: no CUDA device here; run with --device cpu and small --sizes")
    if args.pack[0] != 1:
        raise ScalingLabError(f"--pack {args.pack}: the first k must be 1 (the one-at-a-time reference)")
    args.sizes = args.sizes if args.sizes is not None else (["n1m", "n10m", "n85m", "n300m"] if cuda else ["n1k"])
    args.pack_size = args.pack_size or ("n1m" if cuda else "n1k")
    for preset in [*args.sizes, args.pack_size]:
        if preset not in PRESETS:
            raise ScalingLabError(f"preset {preset!r} is unknown: choose among {', '.join(PRESETS)}")
    args.steps = args.steps or (60 if cuda else 30)
    args.warmup = args.warmup or (10 if cuda else 5)
    if not 1 <= args.warmup < args.steps - 2:
        raise ScalingLabError(f"--warmup {args.warmup} must be ≥ 1 and leave at least 3 timed steps of --steps")
    args.sequence_length = args.sequence_length or (1024 if cuda else 64)
    args.batch_sequences = args.batch_sequences or (32 if cuda else 8)
    args.eval_bytes = args.eval_bytes or 64 * args.sequence_length
    args.compile = cuda if args.compile is None else args.compile
    args.cache_dir = args.cache_dir or default_cache_dir()
    # build the token cache once here, so the runs only read it
    prepare_data(run_config_from_dict(run_values(args, args.pack_size, 1)).data, args.cache_dir)

    name = torch.cuda.get_device_name(0) if cuda else device_name(torch.device("cpu"))
    print(
        f"device {name}; MPS {'on' if cuda and mps_active() else 'off'}; torch {torch.__version__}; "
        f"compile {'on' if args.compile else 'off'}; {args.steps} steps ({args.warmup} untimed) of "
        f"{args.batch_sequences} × {args.sequence_length} tokens; {args.threads} CPU thread(s) per run\n"
    )
    if args.sizes:
        sizes_table(args)
    if not packing_table(args):
        sys.exit(1)


if __name__ == "__main__":
    main()

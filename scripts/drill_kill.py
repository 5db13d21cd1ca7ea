"""Kill drill: a tiny sweep killed with SIGKILL on observed progress, then relaunched to completion.

Runs the sweep once uninterrupted (the reference) and, beside it, the same sweep into a second results root, and
kills the whole launch (its process group) with SIGKILL as soon as it has made a random number (1 to 3) of steps of
progress (a record or a checkpoint written), several times; a last relaunch finishes. Every grid point must be
recorded exactly once, finished, with the reference's final loss. Kills follow progress, not the clock, so a faster
or a loaded machine sees the same drill: each launch is killed mid-sweep, never after the sweep has finished.

    python scripts/drill_kill.py                       # 4 points, 4 kills
    python scripts/drill_kill.py --kills 8 --budgets 8e3,1.6e4,3.2e4,6.4e4 --seed 1 --out /tmp/drill
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scaling_lab.results import load_records, paths_named

TEXT = "A small text for the kill drill, repeated so that the tiny model has something to learn. " * 300


def sweep_command(root: Path, work: Path, budgets: str, checkpoint_tokens: int, cache: str = "cache") -> list[str]:
    """``sl-train -m`` over n1k × budgets on a tiny local text, frequent checkpoints, one thread, no wandb."""
    return [sys.executable, "-m", "scaling_lab.cli.train", "-m", "model=n1k", f"budget.value={budgets}",
            "data=local_files", f"data.sources.0.paths=[{work / 'text.txt'}]", "data.sequence_length=16",
            "data.eval_bytes=512", "optim.batch_tokens=128", f"checkpoint_every_tokens={checkpoint_tokens}",
            "logger=none", "threads=1", "device=cpu", "debug.progress=false", "sweep=drill",
            f"paths.results_dir={root}", f"paths.cache_dir={work / cache}"]  # fmt: skip


def launch(command: list[str], log: Path) -> subprocess.Popen:
    """Start the sweep in its own process group (so that SIGKILL reaches every job), output to ``log``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with log.open("a") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def finals(root: Path) -> dict[int, list[tuple[str, str, float | None]]]:
    """Planned tokens -> the (run_id, status, final loss) of every record of that grid point under ``root``."""
    points: dict[int, list[tuple[str, str, float | None]]] = {}
    for record in load_records(root) if root.exists() else []:
        points.setdefault(record.n_tokens_planned, []).append((record.run_id, record.status, record.final_loss))
    return points


def progress_files(root: Path) -> set[tuple[str, int]]:
    """(path, mtime in ns) of every record and checkpoint under ``root``: a new pair is a step of progress."""
    found = set()
    for path in paths_named(root, "run.json", "checkpoint.pt"):
        with contextlib.suppress(FileNotFoundError):  # a checkpoint removed as its point finished
            found.add((str(path), path.stat().st_mtime_ns))
    return found


def wait_for_progress(root: Path, process: subprocess.Popen, steps: int, timeout: float = 600) -> None:
    """Block until the launch has written ``steps`` new records or checkpoints, or has exited."""
    seen, made, deadline = progress_files(root), 0, time.monotonic() + timeout
    while process.poll() is None and made < steps and time.monotonic() < deadline:
        now = progress_files(root)
        made += len(now - seen)
        seen = now
        time.sleep(0.01)  # a poll interval, not a synchronisation: the kill waits for the files above


def drill(*, kills: int, budgets: str, checkpoint_tokens: int, seed: int, out: Path, max_steps: int) -> dict:
    """Run the drill in ``out``; the figures (kills, points, duplicates, lost, largest loss difference)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "text.txt").write_text(TEXT)
    log = out / "drill.log"
    started = time.perf_counter()  # the reference runs beside the drill (its own root and log): saves its time
    reference_command = sweep_command(out / "reference", out, budgets, checkpoint_tokens, "reference_cache")
    reference = launch(reference_command, out / "reference.log")
    rng, root, kill_steps, interrupted = random.Random(seed), out / "drilled", [], []
    for _ in range(kills):
        process = launch(sweep_command(root, out, budgets, checkpoint_tokens), log)
        steps = rng.randint(1, max_steps)
        wait_for_progress(root, process, steps)
        if process.poll() is None:  # else it finished first: nothing left to kill, and "kills" says so
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            kill_steps.append(steps)
            running = [run for runs in finals(root).values() for run in runs if run[1] == "running"]
            interrupted.append(len(running))  # points killed mid-training (their record still says running)
    final = launch(sweep_command(root, out, budgets, checkpoint_tokens), log)
    final.wait()
    if reference.wait() != 0:
        raise SystemExit(f"the reference sweep failed: see {out / 'reference.log'}")
    drill_seconds = time.perf_counter() - started
    expected, got = finals(out / "reference"), finals(root)
    differences = [abs(got[tokens][0][2] - loss) for tokens, [(_, _, loss)] in expected.items()
                   if tokens in got and got[tokens][0][2] is not None and loss is not None]  # fmt: skip
    return {
        "kills": len(kill_steps),
        "kill_after_progress_steps": kill_steps,
        "interrupted_points_per_kill": interrupted,
        "points": len(expected),
        "recorded": sum(len(runs) for runs in got.values()),
        "duplicates": sum(len(runs) - 1 for runs in got.values()),
        "lost": len(set(expected) - set(got)),
        # a point's status must match the uninterrupted run's (finished, or diverged at the same step there too)
        "status_differences": sum(runs[0][1] != got[t][0][1] for t, runs in expected.items() if t in got),
        "not_finished": sum(status != "finished" for runs in got.values() for _, status, _ in runs),
        "checkpoints_left": len(paths_named(root, "checkpoint.pt")),
        "largest_loss_difference": max(differences) if differences else None,
        "drill_seconds": round(drill_seconds, 1),
        "final_exit_status": final.returncode,
        "log": str(log),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=4, help="SIGKILLs before the final relaunch")
    parser.add_argument("--budgets", default="8e3,1.2e4,1.6e4,2e4", help="token budgets of the n1k grid points")
    parser.add_argument("--checkpoint-tokens", type=int, default=1024, help="checkpoint_every_tokens")
    parser.add_argument(
        "--max-steps",
        type=int,
        default=3,
        help="each kill comes after 1 to this many records or checkpoints written by the launch",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill points")
    parser.add_argument("--out", type=Path, help="working folder (default: a new temporary folder)")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="drill_kill_"))
    figures = drill(kills=args.kills, budgets=args.budgets, checkpoint_tokens=args.checkpoint_tokens,
                    seed=args.seed, out=out, max_steps=args.max_steps)  # fmt: skip
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()

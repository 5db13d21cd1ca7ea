"""Count the scaling_lab modules and lines that one tiny `sl-train` point passes through (a reading-cost measure).

    python scripts/trace_run.py                      # the default point below
    python scripts/trace_run.py model=n3k threads=1  # other overrides replace the defaults
    python scripts/trace_run.py --leaf               # only scaling_lab.train.run.run (no Hydra, lock or record)

Runs the real `sl-train` entry point in this process under `sys.settrace` (standard library only) with results and
Hydra's folder in a temporary directory (with ``--leaf``: the point's config is composed, its data prepared and its
plan made untraced, then only the leaf ``train.run.run`` is traced), and prints five numbers:

* modules imported: scaling_lab modules with any executed line (module bodies included);
* modules called: those with at least one executed line inside a function (what a reader follows);
* lines executed: distinct executed (file, line) pairs in scaling_lab, module bodies included;
* lines in functions: distinct executed lines inside functions only;
* source lines to read: the total length of the modules called (what a reader opens).

Counts are of distinct lines, not of executions, so they do not depend on the number of training steps.
"""

from __future__ import annotations

import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

DEFAULT_OVERRIDES = ["model=n1k", "budget.value=2e4", "logger=none", "threads=1", "debug.progress=false"]


def main(overrides: list[str], *, leaf: bool) -> None:
    import scaling_lab

    package = str(Path(scaling_lab.__file__).parent) + "/"
    lines: set[tuple[str, int]] = set()
    in_functions: set[tuple[str, int]] = set()

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            where = (frame.f_code.co_filename, frame.f_lineno)
            lines.add(where)
            if frame.f_code.co_name != "<module>":
                in_functions.add(where)
        return local

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        return local if frame.f_code.co_filename.startswith(package) else None

    with tempfile.TemporaryDirectory() as folder:
        given = {arg.split("=", 1)[0] for arg in overrides}
        defaults = [arg for arg in DEFAULT_OVERRIDES if arg.split("=", 1)[0] not in given]
        arguments = [*defaults, *overrides, f"paths.results_dir={folder}/results"]
        sys.argv = ["sl-train", *arguments, f"hydra.run.dir={folder}/hydra"]
        start = _leaf(arguments, Path(folder)) if leaf else None
        threading.settrace(tracer)
        sys.settrace(tracer)
        try:
            if start is not None:
                start()
            else:
                from scaling_lab.cli.train import cli

                cli()
        finally:
            sys.settrace(None)
            threading.settrace(None)  # type: ignore[arg-type]

    def modules(pairs: set[tuple[str, int]]) -> set[str]:
        return {file for file, _ in pairs}

    print(f"package: {package}")
    print(f"modules imported: {len(modules(lines))}")
    print(f"modules called: {len(modules(in_functions))}")
    print(f"lines executed: {len(lines)}")
    print(f"lines in functions: {len(in_functions)}")
    called = sorted(modules(in_functions))
    print(f"source lines to read: {sum(len(Path(file).read_text().splitlines()) for file in called)}")
    for file in called:
        count = sum(1 for name, _ in in_functions if name == file)
        print(f"  {count:5d}  {file.removeprefix(package)}")


def _leaf(overrides: list[str], folder: Path) -> Callable[[], Any]:
    """The leaf call of one point, ready to run: its config composed, its data prepared and its plan made."""
    import torch

    from scaling_lab.cli.compose import expand_grid
    from scaling_lab.data import prepare_data
    from scaling_lab.tracking import Tracker
    from scaling_lab.train.plan import make_plan
    from scaling_lab.train.run import run

    (point,) = expand_grid(overrides)
    config = point.config
    torch.set_num_threads(config.threads or 1)
    data = prepare_data(config.data, config.paths.resolved_cache_dir())
    plan = make_plan(config, vocab_size=data.vocab_size)
    device = torch.device("cpu" if config.device == "auto" else config.device)
    return lambda: print(run(config, plan, data, device=device, tracker=Tracker(), run_dir=folder).final_loss)


if __name__ == "__main__":
    main([arg for arg in sys.argv[1:] if arg != "--leaf"], leaf="--leaf" in sys.argv[1:])

"""Count the scaling_lab modules and lines that one tiny `sl-train` point passes through (a reading-cost measure).

    python scripts/trace_run.py                      # the default point below
    python scripts/trace_run.py model=n3k threads=1  # other overrides replace the defaults

Runs the real `sl-train` entry point in this process under `sys.settrace` (standard library only) with results and
Hydra's folder in a temporary directory, and prints five numbers:

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
from pathlib import Path
from types import FrameType
from typing import Any

DEFAULT_OVERRIDES = ["model=n1k", "budget.value=2e4", "logger=none", "threads=1", "debug.progress=false"]


def main(overrides: list[str]) -> None:
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
        sys.argv = ["sl-train", *defaults, *overrides, f"paths.results_dir={folder}/results",
                    f"hydra.run.dir={folder}/hydra"]  # fmt: skip
        threading.settrace(tracer)
        sys.settrace(tracer)
        try:
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


if __name__ == "__main__":
    main(sys.argv[1:])

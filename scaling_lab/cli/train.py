"""sl-train: train one grid point (or, with ``-m``, a sweep of them) and write its run record.

    sl-train model=n7k budget.value=1e6
    sl-train -m model=n3k,n7k budget.value=5e5,1e6 sweep=demo

The only module of the trainer that sees a DictConfig: ``cli`` builds the :class:`~scaling_lab.sweep.sweep.Sweep` of
the grid points, checks that each can start, launches Hydra (``-m``: its multirun, on the launcher the config names),
and asks the sweep which points failed; each Hydra job converts its config to a typed RunConfig and calls
:func:`scaling_lab.sweep.sweep.run_point`.

Exit status: 0 when every grid point ends finished or diverged (or is being trained by another launch); 1 when a
point failed (its training raised, it was interrupted, or under ``-m`` its start was refused: data that cannot
be prepared), with one ``error:`` line that counts them and says where their records are; 2 for bad input that stops
the command before any point runs (a bad override or sweep file, an empty grid) or, without ``-m``, before its one
point trains. A start refused for bad input leaves nothing behind: Hydra's output folder and the run folders it
created are removed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf

from scaling_lab.cli.app import absent_paths, hydra_app, hydra_arguments, remove_created
from scaling_lab.cli.compose import jobs_at_once_from_hydra, register_configs, register_resolvers
from scaling_lab.config.schema import run_config_from_dict
from scaling_lab.errors import EXIT_POINTS_FAILED, EXIT_USER_ERROR, exit_on_user_error, user_line

if TYPE_CHECKING:
    from scaling_lab.sweep.sweep import Sweep

register_configs()
register_resolvers()  # ${sl.isoflop_n:...} in sweep files (configs/experiment/isoflop.yaml)

LISTED_FAILURES = 5
"""Failed points named in the summary line; the rest are counted."""


@hydra_app("sl_train")
def main(cfg: DictConfig) -> None:
    """Hydra task: one run (one grid point)."""
    from scaling_lab.sweep.sweep import run_point  # torch and transformers load only after the config is valid

    config = run_config_from_dict(OmegaConf.to_container(cfg, resolve=True))
    run_point(config, jobs_at_once=jobs_at_once_from_hydra())


def _remove_refused_start(absent: set[Path], output_dir: Path, sweep: Sweep, *, logs: bool) -> None:
    """Remove what refused starts created: run folders that hold nothing but their free lock, Hydra's output folder
    when ``logs`` (and this command created it), and the parents that this command created and are now empty.

    A folder that holds a run record is never removed (with ``hydra.job.chdir=true`` the results of a relative
    ``paths.results_dir`` land inside Hydra's folder, where :meth:`Sweep.failures` does not look)."""
    from scaling_lab.results import RECORD_FILENAME, paths_named

    sweep.release_unused_locks(absent)
    logs = logs and not paths_named(output_dir, RECORD_FILENAME)
    remove_created(absent if logs else absent - {output_dir.absolute()}, owned=[output_dir] if logs else [])


def _refusals_in_job_logs(output_dir: Path) -> list[str]:
    """The ``failed:`` lines of grid points refused at their start in SLURM jobs: a job runs on another host, so its
    line went to its log (``<sweep dir>/.submitit/<job>/*_log.err``), not to this terminal; each once (the tasks of
    one job refuse alike)."""
    lines: list[str] = []
    for log in sorted((output_dir / ".submitit").glob("*/*_log.err")):
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("failed: grid point #") and line not in lines:
                lines.append(line)
    return lines


def _summary(failures: list[tuple[Path, str]], total: int, output_dir: Path) -> str:
    listed = "; ".join(f"{where} ({what})" for where, what in failures[:LISTED_FAILURES])
    more = f"; and {len(failures) - LISTED_FAILURES} more" if len(failures) > LISTED_FAILURES else ""
    logs = f"; Hydra's logs: {output_dir}" if output_dir.exists() else "; nothing was left behind"
    return (
        f"{len(failures)} of {total} grid points failed: {listed}{more}. A record's reason says why; a start"
        f" refused printed a 'failed:' line above. A relaunch retries them (failed records with retry_failed=true)"
        f"{logs}"
    )


def _quoted(value: str) -> str:
    """A Hydra override value that stays one string (spaces, commas, brackets and quotes in a path)."""
    return "'" + value.replace("'", "\\'") + "'"


def cli() -> None:
    """Console entry (``sl-train``): compose and validate every grid point first, and check that each can start
    (writable folders, device, memory, checkpoint), so that a bad override, sweep file, sweep name, path or size or an
    empty grid ends with one line and exit 2 *before* Hydra creates output folders or any point trains; then run
    Hydra, and sum up failed points (exit 1) or remove what a refused start created."""
    from scaling_lab.cli.compose import expand_grid, hydra_output_dir
    from scaling_lab.sweep.sweep import REFUSED, Sweep
    from scaling_lab.train.distributed import ranks_from_environment

    args = exit_on_user_error(hydra_arguments)()
    if args.help or args.hydra_help or args.cfg or args.info or args.shell_completion or args.experimental_rerun:
        main()
        return
    config_name = args.config_name or "sl_train"
    sweep = Sweep(tuple(exit_on_user_error(expand_grid)(args.overrides, config_name=config_name)))
    exit_on_user_error(sweep.check_can_start)()  # writable folders, device, memory, checkpoint: before Hydra runs
    output_dir = hydra_output_dir(args.overrides, multirun=args.multirun, config_name=config_name)
    # Hydra resolves ${now:...} in its output folder again when it starts: pin the folder named here, so that what
    # a refused start created is known exactly.
    key = f"hydra.{'sweep' if args.multirun else 'run'}.dir"
    argv = sys.argv
    sys.argv = [arg for arg in argv if not arg.startswith(f"{key}=")] + [f"{key}={_quoted(str(output_dir))}"]
    absent = absent_paths([output_dir, *sweep.run_folders()])
    try:
        main()
    except SystemExit as stop:
        if stop.code == EXIT_USER_ERROR:  # bad input found once the point started: leave nothing behind
            _remove_refused_start(absent, output_dir, sweep, logs=True)
        raise
    finally:
        sys.argv = argv
    failures = sweep.failures()
    if not failures or not ranks_from_environment().main:  # one run of several processes: rank 0 reports
        return
    # Hydra's output folder goes too when no point got past its start; otherwise it holds the sweep's logs.
    refused_everywhere = all(what.startswith(REFUSED) for _, what in failures) and len(failures) == len(sweep.points)
    for line in _refusals_in_job_logs(output_dir):  # before the logs go with the folder of a sweep refused everywhere
        print(line, file=sys.stderr)
    _remove_refused_start(absent, output_dir, sweep, logs=refused_everywhere)
    print(f"error: {user_line(_summary(failures, len(sweep.points), output_dir))}", file=sys.stderr)
    sys.exit(EXIT_POINTS_FAILED)


if __name__ == "__main__":
    cli()

"""wandb dashboards for one sweep or several side by side, built rather than described: a saved workspace or report
(``wandb_workspaces``) with the panels a scaling-law reader wants, from the keys our runs log.

What the runs log (:mod:`scaling_lab.tracking` is the door; the keys come from ``train/loop.py``, ``train/run.py``
and ``cli/fit.py``): every grid point is a ``job_type=train`` run in the wandb group named after its sweep, logging
``eval/loss`` and ``eval/bpb`` (the eval suite's union), ``eval/<set>/loss`` and ``eval/<set>/bpb`` (each held-out
set) against ``tokens`` and ``flops_exact``, with the final ``loss`` and ``n_params_total`` in its summary; ``sl-fit
... logger=wandb`` adds a ``job_type=fit`` run to the same group with the figures :data:`FIT_FIGURES` as images and
the tables :data:`FIT_TABLES`.

The dashboard (:func:`build_dashboard`) has four sections:

1. loss against tokens, one line per run (a size at a budget), log-log;
2. loss against exact FLOPs across sizes, log-log, whose lower envelope Chinchilla approach 1 fits (Hoffmann et al.
   2022), and the final loss against N (an isoFLOP profile where runs share a budget);
3. loss and bits per byte of the union and of each eval set against exact FLOPs (bits per byte compare across
   tokenizers);
4. the fit run's figures and tables.

A report holds one run set per sweep, so several sweeps (data mixes) share every chart; a workspace selects every
run of the sweeps' groups. :func:`specification` is the dashboard as plain data (what ``sl-dashboard out=FILE``
writes, offline); :func:`save_dashboard` saves it to wandb (online, with credentials).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaling_lab.atomic import write_text_atomically
from scaling_lab.data.config import UNION  # the eval suite's union: its metrics are eval/loss and eval/bpb
from scaling_lab.errors import ConfigError
from scaling_lab.outputs import check_output_file
from scaling_lab.redact import known_secrets, looks_secret
from scaling_lab.tracking import has_wandb_credentials

KINDS = ("workspace", "report")
TOKENS, FLOPS = "tokens", "flops_exact"
"""The x axes: tokens seen and the exact FLOPs spent (attention and output head included, Chinchilla App. F)."""
FIT_FIGURES = ("isoflop", "frontier", "envelope", "contours", "residuals")
"""The images a fit run logs (scaling_lab.plotting.figures.all_figures; contours and residuals need approach 3)."""
FIT_TABLES = ("fit", "points")
"""The tables a fit run logs: one row per approach, and the points it fitted."""
MAX_RUNS_SHOWN = 100
"""Runs drawn per chart: wandb draws the first 10 by default, and one sweep has more (18 in the reference CPU study:
9 sizes × 2 seeds; 90 for an isoFLOP sweep of 5 budgets)."""
REPORT_TITLE_MAX = 128
"""wandb_workspaces refuses a longer report title."""
# A sweep name as sl-train accepts it, without "=": wandb_workspaces (0.4) rewrites every "=" of a filter expression
# to "==", values included, so a group named "lr=3e-3" could not be selected.
SWEEP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


def eval_key(eval_set: str, metric: str) -> str:
    """The logged key of ``metric`` ("loss" or "bpb") on one eval set: ``eval/loss`` for the union."""
    return f"eval/{metric}" if eval_set == UNION else f"eval/{eval_set}/{metric}"


def default_domains() -> tuple[str, ...]:
    """The default eval suite's sets: the embedded corpus's domains."""
    from scaling_lab.data.corpus import DOMAINS

    return tuple(DOMAINS)


@dataclass(frozen=True, kw_only=True)
class DashboardConfig:
    """``configs/sl_dashboard.yaml``: which runs, which panels, where the dashboard goes."""

    entity: str
    """wandb entity (user or team) the runs were logged to."""
    project: str
    """wandb project the runs were logged to (``logger.project``)."""
    sweeps: tuple[str, ...] | str
    """The sweeps (wandb groups) to show; several are compared on every chart. One name alone is one sweep."""
    domains: tuple[str, ...] | str | None = None
    """The eval sets with panels of their own, besides the union; None: the embedded corpus's domains."""
    kind: str = "workspace"
    """"workspace" (a saved view of the project) or "report" (a page with one run set per sweep)."""
    title: str | None = None
    """The workspace's name or the report's title; None: ``scaling_lab: <sweep> vs <sweep>``."""
    out: str | None = None
    """Write the specification as JSON to this file (offline)."""
    save: bool = False
    """Save the dashboard to wandb (online; needs WANDB_API_KEY or ``wandb login``)."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"kind={self.kind!r} is unknown: choose one of {', '.join(KINDS)}")
        if not isinstance(self.save, bool):
            raise ConfigError(f"save={self.save!r} must be true or false")
        if self.out is None and not self.save:
            raise ConfigError("nothing to do: give out=FILE to write the specification, save=true to save the"
                              " dashboard to wandb, or both")  # fmt: skip
        for field in ("entity", "project", "title", "out"):
            value = getattr(self, field)
            if (value is not None or field in ("entity", "project")) and not (isinstance(value, str) and value.strip()):
                raise ConfigError(f"{field}={value!r} must be a non-empty name (quote one that reads as a number:"
                                  f" {field}=\"'2024'\")")  # fmt: skip
        object.__setattr__(self, "sweeps", _names("sweeps", self.sweeps))
        object.__setattr__(
            self, "domains", _names("domains", default_domains() if self.domains is None else self.domains)
        )
        named = {"entity": self.entity, "project": self.project, "title": self.title, "out": self.out,
                 **{f"sweeps[{i}]": name for i, name in enumerate(self.sweeps)},
                 **{f"domains[{i}]": name for i, name in enumerate(self.domains)}}  # fmt: skip
        for field, value in named.items():
            if value is not None and looks_secret(value, known_secrets()):
                raise ConfigError(f"{field}=<redacted> holds a credential (a token's shape, or the value of a"
                                  " credential-named environment variable or argument): a dashboard shows it to"
                                  " every reader, so give a plain name")  # fmt: skip
        if not self.sweeps:
            raise ConfigError("sweeps is empty: name the sweeps (wandb groups) to show, e.g. sweeps=[quickstart]")
        for name in self.sweeps:
            if not SWEEP_NAME.fullmatch(name):
                raise ConfigError(f"sweeps has {name!r}: a sweep name is letters, digits and _ . + - (no '='), as"
                                  " given to sl-train sweep=")  # fmt: skip
        for name in self.domains:
            if not name or "/" in name or name == UNION:
                raise ConfigError(f"domains has {name!r}: name the eval sets (e.g. domains=[prose,code]); the union"
                                  f" ({UNION}) always has its panels")  # fmt: skip
        if self.kind == "report" and len(self.name) > REPORT_TITLE_MAX:
            raise ConfigError(f"title={self.name!r} is longer than the {REPORT_TITLE_MAX} characters a wandb report"
                              " title may have: give a shorter title=")  # fmt: skip

    @property
    def name(self) -> str:
        """The workspace's name or the report's title."""
        return self.title if self.title is not None else f"scaling_lab: {' vs '.join(self.sweeps)}"


def _names(field: str, values: Any) -> tuple[str, ...]:
    """A list of names (one name alone counts as a list of one); ConfigError for a non-text item or a repeat."""
    names = (values,) if isinstance(values, str) else tuple(values or ())
    for name in names:
        if not isinstance(name, str):
            raise ConfigError(f"{field} has {name!r}: give names (quote one that reads as a number: '2024')")
    if len(set(names)) < len(names):
        raise ConfigError(f"{field}={list(names)} repeats a name: give each once")
    return names


@dataclass(frozen=True)
class Section:
    """One section of the dashboard: a heading, what it shows, the job type of its runs and its panels."""

    heading: str
    text: str
    job_type: str
    panels: list[Any]


def sections(domains: tuple[str, ...]) -> list[Section]:
    """The dashboard's sections (module docstring), with per-set panels for ``domains``."""
    import wandb_workspaces.reports.v2 as wr

    def line(y: str, x: str, title: str, y_label: str) -> Any:
        x_label = "tokens seen (D)" if x == TOKENS else "exact FLOPs (C)"
        return wr.LinePlot(title=title, x=x, y=[y], log_x=True, log_y=True, title_x=x_label, title_y=y_label,
                           max_runs_to_show=MAX_RUNS_SHOWN)  # fmt: skip

    nats, bits = "eval loss (nats/token)", "bits per byte"
    per_set = [
        line(eval_key(name, metric), FLOPS, f"{name}: {label} vs FLOPs", label)
        for name in (UNION, *domains)
        for metric, label in (("loss", nats), ("bpb", bits))
    ]
    final_vs_n = wr.ScatterPlot(title="final eval loss vs N", x=wr.SummaryMetric("n_params_total"),
                                y=wr.SummaryMetric("loss"), log_x=True, log_y=True)  # fmt: skip
    return [
        Section(
            "Loss vs tokens, per size",
            "One line per run (a model size at a budget) on the fixed held-out eval suite. The training loss is there"
            " to watch a run live: fits use the eval loss.",
            "train",
            [
                line(eval_key(UNION, "loss"), TOKENS, "eval loss vs tokens", nats),
                line("train/loss", TOKENS, "train loss vs tokens", "train loss (nats/token)"),
            ],
        ),
        Section(
            "Loss vs FLOPs across sizes",
            "Every run's eval loss against the exact FLOPs spent: the lower envelope is what Chinchilla approach 1"
            " fits (Hoffmann et al. 2022). Runs that end at one budget form an isoFLOP profile: final loss against N.",
            "train",
            [line(eval_key(UNION, "loss"), FLOPS, "eval loss vs FLOPs", nats), final_vs_n],
        ),
        Section(
            "Loss and bits per byte, per eval set",
            f"The union of the eval suite ({UNION}) and each set, in nats per token and in bits per byte (comparable"
            " across tokenizers).",
            "train",
            per_set,
        ),
        Section(
            "The fit",
            "The sl-fit run of each sweep (job type fit): its figures, the fitted parameters per approach and the"
            " points it fitted.",
            "fit",
            [
                wr.MediaBrowser(
                    title="fit figures",
                    media_keys=list(FIT_FIGURES),
                    num_columns=len(FIT_FIGURES),
                    layout=wr.Layout(x=0, y=0, w=24, h=10),
                ),
                *(
                    wr.WeavePanelSummaryTable(table_name=table, layout=wr.Layout(x=0, y=0, w=12, h=10))
                    for table in FIT_TABLES
                ),
            ],
        ),
    ]


def build_dashboard(config: DashboardConfig) -> Any:
    """The ``wandb_workspaces`` Workspace or Report of ``config`` (nothing is sent to wandb)."""
    import pydantic

    try:
        return _workspace(config) if config.kind == "workspace" else _report(config)
    except pydantic.ValidationError as error:  # a value wandb_workspaces refuses (an emoji in a name, ...)
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise ConfigError(f"wandb_workspaces refuses the {config.kind} {config.name!r}: {problem['msg']} ({where})"
                          ": change the entity, project, sweeps or title") from error  # fmt: skip


def _workspace(config: DashboardConfig) -> Any:
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.workspaces as ws
    from wandb_workspaces import expr

    return ws.Workspace(
        entity=config.entity,
        project=config.project,
        name=config.name,
        sections=[
            ws.Section(
                name=section.heading, is_open=True, panels=[wr.MarkdownPanel(markdown=section.text), *section.panels]
            )
            for section in sections(config.domains)  # type: ignore[arg-type]
        ],
        settings=ws.WorkspaceSettings(max_runs=MAX_RUNS_SHOWN),
        runset_settings=ws.RunsetSettings(filters=expr.Or(*(expr.Metric("Group") == sweep for sweep in config.sweeps))),
    )


def _report(config: DashboardConfig) -> Any:
    import wandb_workspaces.reports.v2 as wr
    from wandb_workspaces import expr

    def runsets(job_type: str) -> list[Any]:
        return [wr.Runset(entity=config.entity, project=config.project, name=sweep,
                          filters=expr.And(expr.Metric("Group") == sweep, expr.Metric("JobType") == job_type))
                for sweep in config.sweeps]  # fmt: skip

    blocks: list[Any] = []
    for section in sections(config.domains):  # type: ignore[arg-type]
        blocks += [wr.H2(section.heading), wr.P(section.text),
                   wr.PanelGrid(runsets=runsets(section.job_type), panels=section.panels)]  # fmt: skip
    return wr.Report(
        entity=config.entity,
        project=config.project,
        title=config.name,
        description=f"Sweeps {', '.join(config.sweeps)} of {config.entity}/{config.project}, built by sl-dashboard.",
        blocks=blocks,
        width="fluid",
    )


def specification(dashboard: Any) -> dict[str, Any]:
    """The dashboard as plain data: each wandb_workspaces object as ``{"type": its class, its set public fields}``.

    Private fields (random panel ids, state stashed by a save) are left out, so one config gives one specification.
    """

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
            return {
                "type": type(value).__name__,
                **{name: item for name, item in fields.items() if not name.startswith("_") and item is not None},
            }
        if isinstance(value, list | tuple):
            return [plain(item) for item in value]
        if isinstance(value, dict):
            return {str(key): plain(item) for key, item in value.items()}
        return value

    return plain(dashboard)


def check_credentials() -> None:
    """ConfigError unless wandb credentials exist (WANDB_API_KEY, or a netrc entry from ``wandb login``)."""
    if not has_wandb_credentials():
        raise ConfigError("save=true needs wandb credentials: set WANDB_API_KEY (or run `wandb login`), or write the"
                          " specification offline with out=FILE and save=false")  # fmt: skip


def save_dashboard(dashboard: Any, kind: str) -> str:
    """Save the dashboard to wandb; returns its URL. Needs wandb credentials (:func:`check_credentials`)."""
    check_credentials()
    try:
        dashboard.save()
        return str(dashboard.url)
    except Exception as error:  # wandb's own errors: a wrong entity or project, a refused key, no network
        reason = f"{type(error).__name__}: {str(error).rstrip('.')}"
        raise ConfigError(f"wandb did not save the {kind} to {dashboard.entity}/{dashboard.project} ({reason}): check"
                          " entity, project, WANDB_API_KEY and the network, or write it offline with out=FILE"
                          ) from error  # fmt: skip


def run_dashboard(config: DashboardConfig) -> list[str]:
    """What ``sl-dashboard`` does: check where it writes, build the dashboard, save it and/or write its
    specification; returns the lines to print. Nothing is written when a check fails."""
    import json

    if config.out is not None:
        check_output_file(config.out, "out")
    if config.save:
        check_credentials()
    dashboard = build_dashboard(config)
    lines = []
    if config.save:
        lines.append(f"saved {config.kind} {config.name!r}: {save_dashboard(dashboard, config.kind)}")
    if config.out is not None:
        write_text_atomically(Path(config.out), json.dumps(specification(dashboard), indent=2) + "\n")
        lines.append(f"wrote the {config.kind} specification to {config.out}")
    return lines

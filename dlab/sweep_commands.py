"""``dlab sweep run|resume|report``: run a sweep spec in this process (the sweep's driver), on
Ray Tune, tracked in MLflow; ``dlab submit`` sends a spec to the service instead."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from sweeps.driver import EXIT_BAD_INPUT, exit_code
from sweeps.errors import field_messages
from sweeps.report import SweepReport


def _overrides(pairs: list[str]) -> dict:
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--set expects key=value, got {pair!r}")
        params[key] = yaml.safe_load(value)
    return params


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def report_table(report: SweepReport) -> Table:
    """The grouped results: one row per searched setting, mean ± std over seeds."""
    metric = report.metric
    table = Table(title=f"{report.sweep_id}: {metric} ({report.trials_finished}/{report.trials} "
                        "trials finished; mean ± std over seeds)")
    for column in [*report.group_by, "mean", "std", "seeds"]:
        table.add_column(column, justify="right")
    for row in report.rows:
        table.add_row(*[str(row[g]) for g in report.group_by], _number(row.get(f"{metric}_mean")),
                      _number(row.get(f"{metric}_std")), str(row.get("count", 0)))
    return table


def print_report(console: Console, report: SweepReport) -> None:
    console.print(report_table(report))
    console.print(f"table: {report.table_csv}")
    for figure in report.figures:
        console.print(f"figure: {figure}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="sweep_command", required=True)
    run = commands.add_parser("run", help="run a sweep spec (YAML or JSON) in this process")
    run.add_argument("spec", type=Path, help="the spec file")
    run.add_argument("--sweep-id", help="id for the sweep (default: <name>-<random>)")
    run.add_argument("--benchmark", help="override the spec's benchmark (e.g. permuted_mnist)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a fixed parameter of the trainable (repeatable)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(handler=run_command)
    resume = commands.add_parser("resume", help="resume an interrupted sweep from its directory")
    resume.add_argument("path", type=Path, help="the sweep's directory (printed when it stopped)")
    resume.set_defaults(handler=resume_command)
    report = commands.add_parser("report", help="rebuild and print a sweep's report from MLflow")
    report.add_argument("sweep_id")
    report.set_defaults(handler=report_command)


def _print_outcome(console: Console, outcome) -> int:
    if outcome.report is not None:
        print_report(console, outcome.report)
    console.print(f"sweep {outcome.sweep_id}: {outcome.status} ({outcome.trials_total} trials, "
                  f"{outcome.trials_errored} failed); state in {outcome.experiment_dir}")
    if outcome.status == "interrupted":
        console.print(f"resume with: dlab sweep resume {outcome.experiment_dir}")
    return exit_code(outcome)


def run_command(args: argparse.Namespace) -> int:
    from dlab.progress import TrialProgress
    from sweeps.plan import SweepPlan
    from sweeps.runner import run_sweep
    from sweeps.spec import load_spec, read_spec_data

    console = Console()
    try:
        overrides = {"benchmark": args.benchmark} if args.benchmark else {}
        if args.overrides:
            raw = read_spec_data(args.spec)
            overrides["params"] = {**raw.get("params", {}), **_overrides(args.overrides)}
        spec = load_spec(args.spec, overrides)
    except ValidationError as err:
        console.print(f"[red]invalid sweep spec {args.spec}:[/red]")
        for line in field_messages(err):
            console.print(f"  {line}")
        return EXIT_BAD_INPUT
    except (OSError, ValueError, yaml.YAMLError) as err:
        console.print(f"[red]error:[/red] {err}")
        return EXIT_BAD_INPUT
    plan = SweepPlan.resolve(spec, args.sweep_id)
    progress = TrialProgress(plan.metric, disable=args.quiet or not sys.stderr.isatty())
    return _guarded(console, lambda: _print_outcome(console, run_sweep(plan, callbacks=[progress])))


def _guarded(console: Console, action: Callable[[], int]) -> int:
    """Run ``action``; a :class:`SweepError` becomes a red message and exit code 2."""
    from sweeps.runner import SweepError

    try:
        return action()
    except SweepError as err:
        console.print(f"[red]error:[/red] {err}")
        return EXIT_BAD_INPUT


def resume_command(args: argparse.Namespace) -> int:
    from sweeps.runner import resume_sweep

    console = Console()
    return _guarded(console, lambda: _print_outcome(console, resume_sweep(args.path)))


def report_command(args: argparse.Namespace) -> int:
    from sweeps.runner import report_sweep

    console = Console()

    def show() -> int:
        print_report(console, report_sweep(args.sweep_id))
        return 0

    return _guarded(console, show)

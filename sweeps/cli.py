"""``dlab sweep run|resume|report``: run declarative sweeps on Ray Tune, tracked in MLflow."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from sweeps.report import SweepReport

EXIT_BAD_INPUT, EXIT_INTERRUPTED = 2, 130


def _overrides(pairs: list[str]) -> dict:
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--set expects key=value, got {pair!r}")
        params[key] = yaml.safe_load(value)
    return params


def report_table(report: SweepReport) -> Table:
    metric = report.metric
    table = Table(title=f"{report.sweep_id}: {metric} ({report.trials_finished}/{report.trials} "
                        "trials finished; mean ± std over seeds)")
    for column in [*report.group_by, "mean", "std", "seeds"]:
        table.add_column(column, justify="right")
    for row in report.rows:
        std = row.get(f"{metric}_std")
        table.add_row(*[str(row[g]) for g in report.group_by], f"{row[f'{metric}_mean']:.4f}",
                      "-" if std is None else f"{std:.4f}", str(row["count"]))
    return table


def print_report(console: Console, report: SweepReport) -> None:
    console.print(report_table(report))
    console.print(f"table: {report.table_csv}")
    for figure in report.figures:
        console.print(f"figure: {figure}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="sweep_command", required=True)
    run = commands.add_parser("run", help="run a sweep spec (YAML or JSON)")
    run.add_argument("spec", type=Path, nargs="?", help="spec file (or give --spec-json)")
    run.add_argument("--spec-json", help="the spec inline, as JSON (how the service submits drivers)")
    run.add_argument("--sweep-id", help="id for the sweep (default: <name>-<random>)")
    run.add_argument("--benchmark", help="override the spec's benchmark (e.g. permuted_mnist)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a fixed parameter of the trainable (repeatable)")
    run.add_argument("--quiet", action="store_true")
    run.set_defaults(handler=run_command)
    resume = commands.add_parser("resume", help="resume an interrupted sweep from its directory")
    resume.add_argument("path", type=Path)
    resume.set_defaults(handler=resume_command)
    report = commands.add_parser("report", help="rebuild and print a sweep's report")
    report.add_argument("sweep_id")
    report.set_defaults(handler=report_command)


def _print_outcome(console: Console, outcome) -> int:
    if outcome.report is not None:
        print_report(console, outcome.report)
    console.print(f"sweep {outcome.sweep_id}: {outcome.status} ({outcome.trials_total} trials, "
                  f"{outcome.trials_errored} failed); state in {outcome.experiment_dir}")
    if outcome.status == "interrupted":
        console.print(f"resume with: dlab sweep resume {outcome.experiment_dir}")
        return EXIT_INTERRUPTED
    return 0 if outcome.status == "succeeded" else 1


def run_command(args: argparse.Namespace) -> int:
    from sweeps.runner import run_sweep
    from sweeps.spec import SweepSpec, load_spec

    console = Console()
    source = args.spec or "--spec-json"
    try:
        overrides = {"benchmark": args.benchmark} if args.benchmark else {}
        if (args.spec is None) == (args.spec_json is None):
            raise ValueError("give a spec file or --spec-json, not both or neither")
        if args.spec_json is not None:
            spec = SweepSpec.model_validate({**json.loads(args.spec_json), **overrides})
        else:
            spec = load_spec(args.spec, overrides)
        if args.overrides:
            spec = spec.model_validate({**spec.model_dump(),
                                        "params": {**spec.params, **_overrides(args.overrides)}})
    except ValidationError as err:
        console.print(f"[red]invalid sweep spec {source}:[/red]")
        for item in err.errors():
            where = ".".join(str(p) for p in item["loc"]) or "spec"
            console.print(f"  {where}: {item['msg']}")
        return EXIT_BAD_INPUT
    except (OSError, ValueError, yaml.YAMLError) as err:
        console.print(f"[red]error:[/red] {err}")
        return EXIT_BAD_INPUT
    show_progress = not args.quiet and sys.stderr.isatty()
    return _guarded(console, lambda: _print_outcome(
        console, run_sweep(spec, show_progress=show_progress, sweep_id=args.sweep_id)))


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


def main(argv: list[str] | None = None) -> int:
    """``dlab sweep ...`` as a function (used by ``dlab demo``)."""
    parser = argparse.ArgumentParser(prog="dlab sweep", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    return args.handler(args)

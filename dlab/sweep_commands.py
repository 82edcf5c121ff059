"""``dlab sweep run|resume|report``: run a sweep spec in this process (the sweep's driver), on
Ray Tune, tracked in MLflow; ``dlab submit`` sends a spec to the service instead."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from dlab.console import make_console
from sweeps.driver import EXIT_BAD_INPUT, exit_code
from sweeps.errors import field_messages
from sweeps.report import SweepReport

if TYPE_CHECKING:
    from sweeps.search_report import SearchSummary


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


def print_efficiency(console: Console, report: SweepReport) -> None:
    """How busy the sweep kept its cores, where its report knows."""
    found = report.efficiency
    if found is not None:
        console.print(f"efficiency: {found.efficiency:.3f} ({found.trial_time_s / 3600:.2f} trial-hours "
                      f"over {found.wall_s / 3600:.2f} h x {found.cores:g} cores)")


def print_report(console: Console, report: SweepReport) -> None:
    console.print(report_table(report))
    print_efficiency(console, report)
    console.print(f"table: {report.path(report.table_csv)}")
    for figure in report.figures:
        console.print(f"figure: {report.path(figure)}  (and .svg)")
    if report.best is not None:
        console.print(f"best trial: {report.best.run_name} ({report.metric} {report.best.value:.4f})")
    if report.search is not None:
        print_search(console, report.search)


def print_search(console: Console, search: SearchSummary) -> None:
    """The search as a whole: trials run in full and stopped early (at which step), importances
    and, with several objectives, the Pareto front."""
    stopped = ", ".join(f"{count} at step {step}" for step, count in search.stopped_at.items())
    console.print(f"search: {search.trials_complete} trials ran their full budget, "
                  f"{search.trials_stopped} were stopped early" + (f" ({stopped})" if stopped else ""))
    for objective, found in search.importances.items():
        ranked = ", ".join(f"{name} {value:.2f}" for name, value in found.items())
        console.print(f"importance for {objective}: {ranked}")
    for trial in search.pareto_front:
        values = ", ".join(f"{name} {value:.4f}" for name, value in trial.values.items())
        console.print(f"pareto front: trial {trial.index} {trial.run_name} ({values})")


EXAMPLES = """examples:
  dlab sweep run sweeps/examples/demo.yaml                 4 short trials on the bundled digits
  dlab sweep run sweeps/examples/segments.yaml --set epochs=3 --set num_tasks=5
  dlab sweep run sweeps/examples/density.yaml --benchmark permuted_mnist --set data_dir=/data/mnist
  dlab sweep resume .dlab/ray_results/<sweep-id>           after Ctrl-C or a crash
  dlab sweep report <sweep-id>                             table, figures (PNG + SVG), subnetworks

State lives in $DLAB_HOME (default .dlab/): MLflow store, Ray results, reports/<sweep-id>/.
`dlab report <sweep-id>` is the service's counterpart (a sweep submitted with `dlab submit`).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="sweep_command", required=True)
    run = commands.add_parser("run", help="run a sweep spec (YAML or JSON) in this process",
                              epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("spec", type=Path,
                     help="sweep spec file, YAML or JSON (examples in sweeps/examples/)")
    run.add_argument("--sweep-id", help="id for the sweep (default: <spec name>-<8 random hex digits>)")
    run.add_argument("--benchmark", help="override the spec's benchmark, e.g. permuted_mnist "
                                         "(default: the spec's)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a fixed parameter of the trainable, value parsed as YAML "
                          "(repeatable; default: none)")
    run.add_argument("--quiet", action="store_true", help="no progress bar (default: off)")
    run.set_defaults(handler=run_command)
    resume = commands.add_parser("resume", help="resume an interrupted sweep from its directory")
    resume.add_argument("path", type=Path,
                        help="the sweep's directory, $DLAB_HOME/ray_results/<sweep-id> "
                             "(printed when it stopped)")
    resume.set_defaults(handler=resume_command)
    report = commands.add_parser(
        "report", help="rebuild and print a sweep's report from the local MLflow store",
        description="Rebuild a sweep's report (results table, figures as PNG and SVG, subnetwork "
                    "overlap) from the MLflow store of a sweep run here with `dlab sweep run`, into "
                    "$DLAB_HOME/reports/<sweep-id>/. For a sweep submitted to a service use `dlab report`.")
    report.add_argument("sweep_id", help="the sweep's id (printed by `dlab sweep run`)")
    report.set_defaults(handler=report_command)
    paper = commands.add_parser(
        "paper-figure", help="the paper's two curves side by side (segments sweep | density sweep)",
        description="Accuracy vs number of segments beside accuracy vs kWTA density, from the reports "
                    "of two finished sweeps (e.g. sweeps/examples/segments.yaml and density.yaml), "
                    "each with the paper's published MNIST curve where the sweep ran 10 tasks of a "
                    "full-size benchmark, as PNG and SVG.")
    paper.add_argument("segments_sweep", help="id of a sweep that varies num_segments, or the directory "
                                              "of its report (dlab report --out)")
    paper.add_argument("density_sweep", help="id of a sweep that varies kw_percent_on, or the directory "
                                             "of its report")
    paper.add_argument("--out", type=Path,
                       help="output path without suffix (default: $DLAB_HOME/reports/paper_figure)")
    paper.set_defaults(handler=paper_figure_command)


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

    console = make_console()
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

    console = make_console()
    return _guarded(console, lambda: _print_outcome(console, resume_sweep(args.path)))


def report_command(args: argparse.Namespace) -> int:
    from sweeps.runner import report_sweep

    console = make_console()

    def show() -> int:
        print_report(console, report_sweep(args.sweep_id))
        return 0

    return _guarded(console, show)


def _report_directory(reports: Path, sweep: str) -> Path:
    """A report's directory from a sweep id (under ``reports``) or from its own path."""
    given = Path(sweep)
    return given if (given / "report.json").is_file() else reports / sweep


def paper_figure_command(args: argparse.Namespace) -> int:
    from sweeps.report import paper_figure
    from sweeps.settings import Settings

    console = make_console()
    reports = Settings().reports
    out = args.out or reports / "paper_figure"
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        paths = paper_figure(_report_directory(reports, args.segments_sweep),
                             _report_directory(reports, args.density_sweep), out)
    except (OSError, ValueError) as err:
        console.print(f"[red]error:[/red] {err}")
        return EXIT_BAD_INPUT
    for path in paths:
        console.print(f"figure: {path}")
    return 0

"""Command line for one multi-task SAC run: ``dlab run mt10 [flags]`` (MT10 by default; ``--env``
picks MT50 or a single task such as reach-v3)."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.table import Table

from workers.cli_args import add_trial_arguments, config_from_args, write_json
from workers.rl.config import MTSACConfig

ALIASES = {"total_steps": ["--steps"], "num_segments": ["--segments"], "kw_percent_on": ["--kw"]}


def success_table(report, tasks: list[str]) -> Table:
    table = Table(title=f"success rate per task at {report.env_steps} env steps")
    for name in ("task", "success"):
        table.add_column(name, justify="right")
    for name in tasks:
        table.add_row(name, f"{report.task_success[name]:.2f}")
    table.add_row("mean", f"{report.success_rate:.3f}", style="bold")
    return table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_trial_arguments(parser, MTSACConfig, ALIASES)


def run(args: argparse.Namespace) -> int:
    """Validate, train, print per-task success; exit code 2 on bad input."""
    from workers.metaworld_mt import train

    console = Console()
    config = config_from_args(MTSACConfig, args, console)
    if config is None:
        return 2

    def on_eval(report, _trainer) -> None:
        if not args.quiet:
            console.print(f"{report.env_steps} steps: success {report.success_rate:.3f}, return "
                          f"{report.mean_return:.1f}, {report.grad_steps} updates, "
                          f"{report.env_steps_per_s:.0f} env steps/s")

    try:
        reports = train(config, on_eval, show_progress=not args.quiet and sys.stderr.isatty())
    except RuntimeError as err:
        console.print(f"[red]error:[/red] {err}")
        return 2
    console.print(success_table(reports[-1], list(reports[-1].task_success)))
    write_json(args.json, [r.metrics() for r in reports], console)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dlab run mt10", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))

"""``dlab run mt10``: one multi-task SAC run in this process (MT10 by default; ``--env`` picks
MT50 or a single task such as reach-v3), with its per-task success table. ``--preset paper``
fills every flag not given from Numenta's MT10 settings; the resolved config is printed (and
heads the ``--json`` file); ``--dry-run`` prints it and stops."""

from __future__ import annotations

import argparse
import json
import sys

from rich.table import Table

from dlab.config_flags import add_trial_arguments, config_from_args, write_json
from dlab.console import make_console
from dlab.progress import StepProgress
from workers.metaworld import EvalReport, MTSACConfig, train_mtsac

ALIASES = {"total_steps": ["--steps"], "num_segments": ["--segments"], "kw_percent_on": ["--kw"]}


def success_table(report: EvalReport) -> Table:
    table = Table(title=f"success rate per task at {report.env_steps} env steps")
    for name in ("task", "success"):
        table.add_column(name, justify="right")
    for name, success in report.task_success.items():
        table.add_row(name, f"{success:.2f}")
    table.add_row("mean", f"{report.success_rate:.3f}", style="bold")
    return table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_trial_arguments(parser, MTSACConfig, ALIASES)
    parser.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")


def run(args: argparse.Namespace) -> int:
    """Validate, train, print per-task success; exit code 2 on bad input."""
    console = make_console()
    config = config_from_args(MTSACConfig, args, console)
    if config is None:
        return 2
    resolved = config.model_dump(mode="json")
    if args.dry_run:
        print(json.dumps(resolved, indent=2))
        return 0
    if not args.quiet:
        console.print_json(data=resolved)

    def on_eval(metrics: dict, _checkpoint) -> None:
        if not args.quiet:
            console.print(f"{metrics['env_steps']} steps: success {metrics['success_rate']:.3f}, return "
                          f"{metrics['mean_return']:.1f}, {metrics['grad_steps']} updates, "
                          f"{metrics['env_steps_per_s']:.0f} env steps/s")

    try:
        with StepProgress(f"{config.env} {config.model}",
                          enabled=not args.quiet and sys.stderr.isatty()) as progress:
            reports = train_mtsac(config, on_eval, progress=progress)
    except RuntimeError as err:
        console.print(f"[red]error:[/red] {err}")
        return 2
    console.print(success_table(reports[-1]))
    write_json(args.json, {"config": resolved, "reports": [r.metrics() for r in reports]}, console)
    return 0

"""``dlab run continual``: one continual-learning trial in this process, with its accuracy table."""

from __future__ import annotations

import argparse
import sys

from rich.table import Table

from dlab.config_flags import add_trial_arguments, config_from_args, write_json
from dlab.console import make_console
from dlab.progress import StepProgress
from workers.continual import ContinualConfig, ContinualResults, DatasetNotFoundError, train_continual


def _cell(value: float | None, missing: str = "") -> str:
    """A table cell: the value to 3 places, ``missing`` where it was not evaluated."""
    return missing if value is None else f"{value:.3f}"


def accuracy_table(results: ContinualResults) -> Table:
    """Rows: after training task i; columns: accuracy on each task j, mean, task inference."""
    num_tasks = len(results.accuracy_matrix)
    table = Table(title=f"Accuracy after each task ({results.config['model']}, "
                        f"{results.config['dataset']}, {num_tasks} tasks)")
    table.add_column("after task", justify="right")
    for j in range(num_tasks):
        table.add_column(f"T{j}", justify="right")
    table.add_column("mean", justify="right", style="bold")
    table.add_column("task inf.", justify="right")
    for report in results.reports:
        cells = [_cell(a) for a in report.accuracies] + [""] * (num_tasks - report.tasks_seen)
        table.add_row(str(report.task), *cells, _cell(report.mean_accuracy),
                      _cell(report.task_inference_accuracy, "-"))
    return table


def summary_line(results: ContinualResults) -> str:
    return (f"final mean accuracy {results.final_mean_accuracy:.4f} | backward transfer "
            f"{results.backward_transfer:+.4f} | forgetting {results.forgetting:.4f} | "
            f"wall time {results.wall_time_s:.1f}s on {results.device}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_trial_arguments(parser, ContinualConfig)


def run(args: argparse.Namespace) -> int:
    """Validate, train, print the table; exit code 2 on bad input."""
    console = make_console()
    config = config_from_args(ContinualConfig, args, console)
    if config is None:
        return 2

    def on_task(metrics: dict, _checkpoint) -> None:
        if not args.quiet:
            task = metrics["task"]
            score = (f"mean accuracy {metrics['mean_accuracy']:.4f}" if "mean_accuracy" in metrics
                     else f"accuracy {metrics[f'accuracy_task_{task}']:.4f} (this task only)")
            console.print(f"task {task}: {score} ({metrics['task_time_s']:.1f}s)")

    try:
        with StepProgress("training", enabled=not args.quiet and sys.stderr.isatty()) as progress:
            results = train_continual(config, on_task, progress=progress)
    except (DatasetNotFoundError, RuntimeError) as err:
        console.print(f"[red]error:[/red] {err}")
        return 2
    console.print(accuracy_table(results))
    console.print(summary_line(results))
    write_json(args.json, results.model_dump(), console)
    return 0

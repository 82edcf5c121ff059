"""``dlab``: run single trials, sweeps and the service from one command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import sweeps
from sweeps import cli as sweep_cli
from workers import continual_cli

DEMO_SPEC = Path(sweeps.__file__).resolve().parent / "examples" / "demo.yaml"


DEMO_TRIAL = ["--dataset", "digits", "--num-tasks", "5", "--hidden-sizes", "256", "256",
              "--kw-percent-on", "0.1", "--epochs", "8", "--batch-size", "32", "--quiet"]


def run_demo(_args: argparse.Namespace) -> int:
    """The embedded default: one dendritic trial (its per-task accuracy table), then a small
    paper-style sweep on a local Ray with MLflow on local SQLite."""
    code = continual_cli.main(DEMO_TRIAL)
    if code == 0:
        code = sweep_cli.main(["run", str(DEMO_SPEC)])
    if code == 0:
        from sweeps.settings import Settings

        settings = Settings()
        print(f"\nMLflow UI on this store: .venv/bin/mlflow ui --backend-store-uri "
              f"{settings.tracking_uri} --port 5000   (then open http://127.0.0.1:5000)")
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dlab", description="dendrite-lab: Active Dendrites experiments")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run one trial in this process")
    trainables = run.add_subparsers(dest="trainable", required=True)
    continual = trainables.add_parser(
        "continual", help="continual learning on permuted digits / MNIST",
        description=continual_cli.__doc__,
    )
    continual_cli.add_arguments(continual)
    continual.set_defaults(handler=continual_cli.run)

    sweep = commands.add_parser("sweep", help="run, resume and report Ray Tune sweeps")
    sweep_cli.add_arguments(sweep)

    demo = commands.add_parser(
        "demo", help="a small paper-style sweep on the embedded digits dataset (no download)"
    )
    demo.set_defaults(handler=run_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())

"""``dlab``: run single trials, sweeps and the service from one command."""

from __future__ import annotations

import argparse
import sys

from dlab import continual_command, mt10_command, service_commands, sweep_commands
from dlab.demo import run_demo


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dlab", description="dendrite-lab: Active Dendrites experiments")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run one trial in this process")
    trainables = run.add_subparsers(dest="trainable", required=True)
    continual = trainables.add_parser(
        "continual", help="continual learning on permuted digits / MNIST",
        description=continual_command.__doc__,
    )
    continual_command.add_arguments(continual)
    continual.set_defaults(handler=continual_command.run)
    mt10 = trainables.add_parser("mt10", help="multi-task SAC on Meta-World MT10 (or MT50 / one task)",
                                 description=mt10_command.__doc__)
    mt10_command.add_arguments(mt10)
    mt10.set_defaults(handler=mt10_command.run)

    sweep = commands.add_parser("sweep", help="run, resume and report Ray Tune sweeps in this process")
    sweep_commands.add_arguments(sweep)

    service_commands.add_commands(commands)

    demo = commands.add_parser(
        "demo", help="the embedded stack: submit a small paper-style sweep through the API"
    )
    demo.set_defaults(handler=run_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())

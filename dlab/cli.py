"""``dlab``: run single trials, sweeps and the service from one command."""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import PackageNotFoundError, version

from dlab import continual_command, mt10_command, service_commands, sweep_commands
from dlab.demo import run_demo

EXAMPLES = """examples:
  dlab demo                                          the embedded stack end to end (about a minute)
  dlab run continual --num-tasks 5 --hidden-sizes 512 512 --epochs 10 --batch-size 32
  dlab run continual --model mlp --num-tasks 5       the dense baseline
  dlab run mt10 --steps 200000 --segments 10 --kw 0.25
  dlab sweep run sweeps/examples/segments.yaml       a sweep in this process (local Ray, MLflow in .dlab/)
  dlab sweep report <sweep-id>                       rebuild its table and figures from that MLflow store
  dlab serve                                         the REST API on 127.0.0.1:8000
  dlab submit sweeps/examples/segments.yaml --watch  the same sweep through the service
  dlab report <sweep-id> --out reports/x/            its table, figures and files, fetched from the service

`dlab sweep ...` runs sweeps in this process; `dlab submit|list|status|watch|cancel|report` talk
to a service (DLAB_URL). `dlab <command> --help` lists each command's flags with units and defaults.
"""


def dlab_version() -> str:
    try:
        return version("dendrite-lab")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dlab", description="dendrite-lab: Active Dendrites experiments",
                                     epilog=f"{EXAMPLES}\n{service_commands.EXIT_CODES_HELP}",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {dlab_version()}")
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

    sweep = commands.add_parser("sweep", help="run, resume and report Ray Tune sweeps in this process",
                                description=sweep_commands.__doc__, epilog=sweep_commands.EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sweep_commands.add_arguments(sweep)

    service_commands.add_commands(commands)

    demo = commands.add_parser(
        "demo", help="the embedded stack: submit a small paper-style sweep through the API",
        description="Start a local Ray head, MLflow on SQLite and the API, submit "
                    "sweeps/examples/demo.yaml, follow it, print its report, stop everything "
                    "(state in $DLAB_HOME, default .dlab/).",
    )
    demo.set_defaults(handler=run_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())

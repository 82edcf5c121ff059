"""``dlab``: run single trials, sweeps and the service from one command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import sweeps
from service import cli as service_cli
from sweeps import cli as sweep_cli
from workers import continual_cli, mt_cli

DEMO_SPEC = Path(sweeps.__file__).resolve().parent / "examples" / "demo.yaml"


def run_demo(_args: argparse.Namespace) -> int:
    """The embedded default through the REST API: start the local stack (Ray head, MLflow on
    SQLite, the API), submit the demo sweep, follow it live, print the report, stop the stack."""
    from service.cli import console, print_report, watch_sweep
    from service.client import DlabClient
    from service.local_stack import LocalStack
    from sweeps.settings import Settings

    settings = Settings()
    console.print("starting the embedded stack (Ray head, MLflow on SQLite, API) ...")
    with LocalStack(settings.root) as stack:
        token = stack.api.token()
        console.print(f"API on {stack.api.url} (docs {stack.api.url}/docs); local token: {token}")
        with DlabClient(stack.api.url, token) as client:
            created = client.submit(DEMO_SPEC)
            console.print(f"submitted {DEMO_SPEC.name} as sweep {created['id']}")
            code = watch_sweep(client, created["id"])
            if code == 0:
                print_report(client, created["id"])
        console.print("stopping the embedded stack ...")
    console.print(f"\nMLflow UI on this store: .venv/bin/mlflow ui --backend-store-uri "
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
    mt10 = trainables.add_parser("mt10", help="multi-task SAC on Meta-World MT10 (or MT50 / one task)",
                                 description=mt_cli.__doc__)
    mt_cli.add_arguments(mt10)
    mt10.set_defaults(handler=mt_cli.run)

    sweep = commands.add_parser("sweep", help="run, resume and report Ray Tune sweeps")
    sweep_cli.add_arguments(sweep)

    service_cli.add_commands(commands)

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

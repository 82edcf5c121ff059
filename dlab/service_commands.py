"""``dlab serve`` and the client commands ``dlab submit|list|status|watch|cancel|report`` (they
talk to the service over HTTP)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dlab.console import make_console
from service.client import (
    ApiError,
    BadAnswer,
    ClientError,
    DlabClient,
    ServiceTimeout,
    ServiceUnreachable,
    TokenRefused,
)
from sweeps.status import SWEEP_STATUSES

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_API = 1, 2, 3
EXIT_UNREACHABLE, EXIT_TIMEOUT, EXIT_TOKEN, EXIT_BAD_ANSWER = 4, 5, 6, 7
EXIT_CODES_HELP = """exit codes of the client commands (submit, list, status, watch, cancel, report):
  0  done (watch / submit --watch: the sweep succeeded)
  1  the sweep failed or was cancelled (watch / submit --watch)
  2  the spec or request was refused (HTTP 409/413/415/422) or the spec file is unreadable
  3  any other error answer from the service (e.g. HTTP 404 no such sweep, 429, 503)
  4  the service cannot be reached at --url / DLAB_URL (default http://127.0.0.1:8000)
  5  the service did not answer within --timeout / DLAB_TIMEOUT_S seconds (default 60)
  6  the token was refused (HTTP 401/403): pass --token or set DLAB_API_TOKEN
  7  the answer is not the API's JSON (is --url a dendrite-lab service?)
each failure prints one line naming the URL it tried."""
console = make_console()
err_console = make_console(stderr=True)


def serve(args: argparse.Namespace) -> int:
    """Run the API with uvicorn (starting the embedded Ray head if no cluster is configured)."""
    from service.server import serve as serve_api
    from service.settings import ServiceSettings

    overrides = {k: v for k, v in {"host": args.host, "port": args.port}.items() if v is not None}
    settings = ServiceSettings(**overrides)
    if not settings.api_tokens:
        console.print(f"API token (local, in {settings.token_path}): {settings.tokens()[0]}")
    serve_api(settings)
    return 0


def _client(args: argparse.Namespace) -> DlabClient:
    return DlabClient(url=args.url, token=args.token, timeout_s=args.timeout)


def _print_errors(err: ApiError) -> int:
    if isinstance(err.detail, list):
        err_console.print(f"[red]rejected (HTTP {err.status_code} from {err.url}):[/red]")
        for item in err.detail:
            err_console.print(f"  {item.get('msg', item) if isinstance(item, dict) else item}")
    else:
        err_console.print(f"[red]error (HTTP {err.status_code} from {err.url}):[/red] {err.detail}")
    return EXIT_BAD_INPUT if err.status_code in (400, 409, 413, 415, 422) else EXIT_API


CLIENT_EXIT_CODES: tuple[tuple[type[ClientError], int], ...] = (
    (TokenRefused, EXIT_TOKEN), (ServiceUnreachable, EXIT_UNREACHABLE), (ServiceTimeout, EXIT_TIMEOUT),
    (BadAnswer, EXIT_BAD_ANSWER),
)


def _fail(err: ClientError) -> int:
    """One line on stderr, and the failure's exit code (see ``EXIT_CODES_HELP``)."""
    for kind, code in CLIENT_EXIT_CODES:
        if isinstance(err, kind):
            text = (f"{err}; pass --token or set DLAB_API_TOKEN" if isinstance(err, TokenRefused)
                    else str(err))
            err_console.print(f"[red]error:[/red] {text}", soft_wrap=True, highlight=False)
            return code
    if isinstance(err, ApiError):
        return _print_errors(err)
    err_console.print(f"[red]error:[/red] {err}", soft_wrap=True, highlight=False)
    return EXIT_API


def submit(args: argparse.Namespace) -> int:
    with _client(args) as client:
        if args.dry_run:
            print_dry_run(client.dry_run(args.spec))
            return 0
        created = client.submit(args.spec, idempotency_key=args.idempotency_key)
        console.print(f"submitted {created['id']} ({created['status']})")
        return watch_sweep(client, created["id"]) if args.watch else 0


def print_dry_run(result: dict) -> None:
    """The service's answer to a dry run: each trial's config and estimate, the sweep's cost
    against the budgets, and what early stopping would save (beside the bound, not in its place)."""
    table = Table(title=f"{result['name']} ({result['benchmark']}): {result['expected_trials']} trial(s)")
    for column in ("#", "config", "samples", "cost", "memory MiB"):
        table.add_column(column, justify="left" if column == "config" else "right")
    for index, trial in enumerate(result["trials"], start=1):
        config = ", ".join(f"{key}={value}" for key, value in trial["config"].items())
        table.add_row(str(index), config, str(trial["samples"]), f"{trial['cost']:.3g}",
                      f"{trial['memory_mb']:,.0f}")
    console.print(table)
    console.print(f"cost (parameter-sample passes): {result['total_cost']:.3g} of the sweep budget "
                  f"{result['sweep_budget']:.3g}; costliest trial {result['max_trial_cost']:.3g} of "
                  f"{result['trial_budget']:.3g}")
    stopping = result.get("early_stopping")
    if stopping:
        console.print(f"early stopping on {stopping['step_metric']} at {stopping['rungs']} of "
                      f"{stopping['full_budget']}: about {stopping['expected_cost']:.3g} if it stops "
                      f"trials as intended ({stopping['expected_saving']:.0%} less; the bound stays "
                      "the cost above)")
    console.print("dry run: nothing was submitted")


def list_sweeps(args: argparse.Namespace) -> int:
    with _client(args) as client:
        page = client.list(status=args.status, limit=args.limit)
    table = Table(title=f"{page['total']} sweeps")
    for column in ("id", "benchmark", "status", "trials", "created"):
        table.add_column(column)
    for item in page["items"]:
        table.add_row(item["id"], item["benchmark"], item["status"], str(item["expected_trials"]),
                      item["created_at"][:19])
    console.print(table)
    return 0


def time_left(seconds: float) -> str:
    """``2.4 hours`` from 90 minutes on, else ``7 minutes`` (at least 1), as the web page says it."""
    if seconds >= 5400:
        return f"{seconds / 3600:.1f} hours"
    minutes = max(1, math.floor(seconds / 60 + 0.5))  # halves up, as JavaScript's Math.round
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def show_status(args: argparse.Namespace) -> int:
    with _client(args) as client:
        detail = client.status(args.sweep_id)
    counts = ", ".join(f"{k} {v}" for k, v in detail["trials"].items())
    console.print(f"{detail['id']}: [bold]{detail['status']}[/bold] ({counts})")
    if (seconds := detail.get("estimated_time_left_s")) is not None:
        console.print(f"about {time_left(seconds)} left (estimated from its trials' pace)")
    if detail.get("best"):
        best = detail["best"]
        console.print(f"best {best['metric']} = {best['value']:.4f} (trial {best['trial_id']})")
    if detail.get("error"):
        console.print(f"[red]error:[/red] {detail['error']}")
    return 0


def watch_sweep(client: DlabClient, sweep_id: str) -> int:
    """A progress bar over the sweep's trials, fed by its event stream; exit 0 if it succeeded."""
    detail = client.status(sweep_id)
    total, metric = detail["expected_trials"], detail["metric"]
    final: dict = {}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task(f"{sweep_id} queued", total=total)
        for event, data in client.events(sweep_id):
            if event == "sweep_status":
                progress.update(bar, description=f"{sweep_id} {data['status']}")
            elif event == "trial_finished":
                progress.advance(bar)
                value = data.get("metrics", {}).get(metric)
                shown = f"{metric}={value:.4f}" if value is not None else ""
                progress.console.print(f"  trial {data['trial_id']} {data['status']} {shown}")
            elif event == "sweep_finished":
                final = data
    console.print(f"sweep {sweep_id}: [bold]{final.get('status', 'unknown')}[/bold]")
    if final.get("error"):
        console.print(f"[red]error:[/red] {final['error']}")
    return 0 if final.get("status") == "succeeded" else EXIT_FAILED


def watch(args: argparse.Namespace) -> int:
    with _client(args) as client:
        return watch_sweep(client, args.sweep_id)


def cancel(args: argparse.Namespace) -> int:
    with _client(args) as client:
        detail = client.cancel(args.sweep_id)
    console.print(f"{detail['id']}: {detail['status']} (finished trials stay in MLflow)")
    return 0


def print_report(client: DlabClient, sweep_id: str, figures_dir: Path | None = None,
                 out_dir: Path | None = None) -> dict:
    """The results table, and the figures (server paths, or saved under ``figures_dir``); with
    ``out_dir``, the whole report saved there as the service holds it."""
    from dlab.sweep_commands import print_efficiency, report_table
    from sweeps.report import SweepReport

    data = client.report(sweep_id)
    report = SweepReport.model_validate(data)
    console.print(report_table(report))
    print_efficiency(console, report)
    if out_dir is not None:
        save_report(client, report, out_dir)
    for server_path, url in zip(data["figures"], data["figure_urls"], strict=True):
        if figures_dir is not None:
            figures_dir.mkdir(parents=True, exist_ok=True)
            target = figures_dir / Path(server_path).name
            target.write_bytes(client.figure(url))
            console.print(f"figure: {target}")
        else:
            console.print(f"figure: {server_path}  ({client.url}{url})")
    return data


def save_report(client: DlabClient, report, out_dir: Path) -> None:
    """``report.json`` (readable by ``dlab sweep paper-figure``) and every file of the report
    (tables, summaries, figures as PNG and SVG), downloaded into ``out_dir``."""
    from sweeps.files import write_text_atomically

    out_dir.mkdir(parents=True, exist_ok=True)
    for name in report.files():
        (out_dir / name).write_bytes(client.report_file(report.sweep_id, name))
    write_text_atomically(out_dir / "report.json", report.model_dump_json(indent=2))
    console.print(f"report: {out_dir / 'report.json'} and {len(report.files())} files beside it")


def report(args: argparse.Namespace) -> int:
    with _client(args) as client:
        print_report(client, args.sweep_id, args.figures_dir, args.out)
    return 0


def _guard(handler):
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except ClientError as err:
            return _fail(err)
        except OSError as err:  # an unreadable spec file
            err_console.print(f"[red]error:[/red] {err}", soft_wrap=True, highlight=False)
            return EXIT_BAD_INPUT
    return run


SUBMIT_EXAMPLES = """examples:
  dlab submit sweeps/examples/demo.yaml --watch            submit, then a live progress bar
  dlab submit spec.yaml --idempotency-key run-42           a retry returns the same sweep
  dlab submit sweeps/examples/tpe_search.yaml --dry-run    its trials and cost; nothing starts
  DLAB_URL=http://gpu-head:8000 DLAB_API_TOKEN=... dlab submit sweeps/examples/mt10_paper.yaml
"""


SUBMIT_EPILOG = f"{SUBMIT_EXAMPLES}\n{EXIT_CODES_HELP}"


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register ``serve`` and the client commands on the ``dlab`` parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help="service URL (default: $DLAB_URL or http://127.0.0.1:8000)")
    common.add_argument("--token", help="bearer token (default: $DLAB_API_TOKEN or the local token)")
    common.add_argument("--timeout", type=float,
                        help="seconds to wait for an answer (default: $DLAB_TIMEOUT_S or 60)")

    client = {"parents": [common], "epilog": EXIT_CODES_HELP,
              "formatter_class": argparse.RawDescriptionHelpFormatter}
    serve_cmd = commands.add_parser("serve", help="run the REST API (uvicorn)")
    serve_cmd.add_argument("--host", help="address to listen on (default: $DLAB_HOST or 127.0.0.1)")
    serve_cmd.add_argument("--port", type=int, help="TCP port (default: $DLAB_PORT or 8000)")
    serve_cmd.set_defaults(handler=serve)

    submit_cmd = commands.add_parser("submit", **{**client, "epilog": SUBMIT_EPILOG},
                                     help="submit a sweep spec to the service")
    submit_cmd.add_argument("spec", type=Path,
                            help="sweep spec file, YAML or JSON (examples in sweeps/examples/)")
    submit_cmd.add_argument("--idempotency-key",
                            help="retrying with the same key returns the same sweep (default: none)")
    submit_cmd.add_argument("--watch", action="store_true",
                            help="then follow it until it ends (default: off)")
    submit_cmd.add_argument("--dry-run", action="store_true",
                            help="only check the spec: print its trials and cost against the "
                                 "service's budgets, start nothing (default: off)")
    submit_cmd.set_defaults(handler=_guard(submit))

    list_cmd = commands.add_parser("list", **client, help="list sweeps")
    list_cmd.add_argument("--status", choices=SWEEP_STATUSES, help="only sweeps in this state")
    list_cmd.add_argument("--limit", type=int, default=50, help="most sweeps to list (default: 50)")
    list_cmd.set_defaults(handler=_guard(list_sweeps))

    for name, handler, text in (("status", show_status, "a sweep's status"),
                                ("watch", watch, "follow a sweep's progress live"),
                                ("cancel", cancel, "cancel a sweep")):
        command = commands.add_parser(name, **client, help=text)
        command.add_argument("sweep_id", help="the sweep's id (printed by `dlab submit`)")
        command.set_defaults(handler=_guard(handler))

    report_cmd = commands.add_parser(
        "report", **client, help="a sweep's results table and figures, from the service",
        description="The report of a sweep submitted to the service (`dlab submit`), fetched over "
                    "HTTP. For a sweep run here with `dlab sweep run` use `dlab sweep report`.")
    report_cmd.add_argument("sweep_id", help="the sweep's id (printed by `dlab submit`)")
    report_cmd.add_argument("--figures-dir", type=Path,
                            help="download the figures (PNG) into this directory "
                                 "(default: only print their URLs)")
    report_cmd.add_argument("--out", type=Path, metavar="DIR",
                            help="save the whole report into DIR: report.json, the results table "
                                 "(CSV, JSON), every trial (trials.csv), the subnetwork and search "
                                 "summaries, every figure as PNG and SVG")
    report_cmd.set_defaults(handler=_guard(report))

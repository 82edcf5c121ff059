"""A sweep driver's entry point: ``python -m sweeps.driver [--resume] [PLAN_FILE]``.

It reads the sweep plan (``{"sweep_id", "spec"}``) from ``PLAN_FILE`` or from the
``DLAB_SWEEP_PLAN`` environment variable (how the service hands a plan to a Ray job), validates
the spec once, runs the sweep, prints its outcome as one JSON line and exits with
0 (succeeded), 1 (failed), 2 (bad plan, unreachable Ray or MLflow) or 130 (interrupted; resumable).
Its last line on stderr names the cause of a failure in one line (the service shows it).

``--resume`` continues the sweep from Tune's state saved under ``DLAB_HOME`` (how the service
restarts a driver that died), or starts it if it never got as far as saving any.
"""

from __future__ import annotations

import logging
import sys

from pydantic import ValidationError

from sweeps.errors import field_messages
from sweeps.mlflow_retry import TrackingUnavailable, root_cause
from sweeps.plan import SweepPlan
from sweeps.runner import SweepError, SweepOutcome, run_or_resume_sweep, run_sweep
from sweeps.status import DRIVER_EXIT_CODES

EXIT_CODES = DRIVER_EXIT_CODES
EXIT_SUCCEEDED, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = (
    EXIT_CODES[s] for s in ("succeeded", "failed", "bad_input", "interrupted"))
log = logging.getLogger("dlab.driver")


def exit_code(outcome: SweepOutcome) -> int:
    return EXIT_CODES[outcome.status]


def main(argv: list[str] | None = None) -> int:
    """Run the plan named by the arguments or the environment; the exit code says how it ended."""
    args = list(sys.argv[1:] if argv is None else argv)
    resume = "--resume" in args
    args = [arg for arg in args if arg != "--resume"]
    try:
        plan = SweepPlan.from_environment(args[0] if args else None)
    except ValidationError as err:
        print("invalid sweep plan: " + "; ".join(field_messages(err)), file=sys.stderr)
        return EXIT_BAD_INPUT
    except (OSError, ValueError) as err:
        print(f"invalid sweep plan: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        outcome = run_or_resume_sweep(plan) if resume else run_sweep(plan)
    except SweepError as err:
        print(f"sweep {plan.sweep_id} not started: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except TrackingUnavailable as err:  # the MLflow store outlasted the retries
        print(f"sweep {plan.sweep_id} failed: {err}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as err:  # the traceback is above; the service shows this one line
        log.exception("sweep %s failed", plan.sweep_id)
        print(f"sweep {plan.sweep_id} failed: {root_cause(err)}", file=sys.stderr)
        return EXIT_FAILED
    print(outcome.model_dump_json(exclude={"report"}))
    if outcome.error:
        print(f"sweep {plan.sweep_id} {outcome.status}: {outcome.error}", file=sys.stderr)
    return exit_code(outcome)


if __name__ == "__main__":
    sys.exit(main())

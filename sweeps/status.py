"""The one status vocabulary of sweeps and trials, shared by the driver, the service and the CLI."""

from __future__ import annotations

from typing import Literal, get_args

SweepStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
"""A sweep as the service reports it."""
SWEEP_STATUSES: tuple[str, ...] = get_args(SweepStatus)
ACTIVE_SWEEP_STATUSES: tuple[str, ...] = ("queued", "running")

SweepOutcomeStatus = Literal["succeeded", "failed", "interrupted"]
"""How one run of a sweep driver ended (``interrupted``: resumable from Tune's saved state)."""

TrialStatus = Literal["pending", "running", "done", "failed", "cancelled"]
TRIAL_STATUSES: tuple[str, ...] = get_args(TrialStatus)
TERMINAL_TRIAL_STATUSES: tuple[str, ...] = ("done", "failed", "cancelled")

TRIAL_STATUS_OF_RUN: dict[str, TrialStatus] = {
    "RUNNING": "running", "SCHEDULED": "pending", "FINISHED": "done", "FAILED": "failed",
    "KILLED": "cancelled",
}
"""A trial's status from its MLflow run's status."""

DRIVER_EXIT_CODES: dict[SweepOutcomeStatus | str, int] = {
    "succeeded": 0, "failed": 1, "bad_input": 2, "interrupted": 130,
}
"""Exit codes of ``python -m sweeps.driver``: 1 (every trial failed) and 2 (a bad plan,
unreachable Ray or MLflow) would fail the same way again; any other death is worth a restart."""

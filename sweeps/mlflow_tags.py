"""Every MLflow tag name dendrite-lab writes or searches by, in one place."""

from __future__ import annotations

PARENT_RUN = "mlflow.parentRunId"
RUN_NAME = "mlflow.runName"
NOTE = "mlflow.note.content"

SWEEP_ID = "dlab.sweep_id"
TRIAL_ID = "dlab.trial_id"
KIND = "dlab.kind"  # "sweep" (the parent run) or "trial"
STATUS = "dlab.status"  # how the sweep ended: sweeps.status.SweepOutcomeStatus or "cancelled"
SPEC_HASH = "dlab.spec_hash"
VERSION = "dlab.version"
GIT_SHA = "dlab.git_sha"
SEED = "dlab.seed"
ERROR = "dlab.error"
BEST_RUN_ID = "dlab.best_run_id"  # the parent run's best finished trial (its run id and name)
BEST_TRIAL = "dlab.best_trial"
TRIAL_INDEX = "dlab.trial_index"  # a trial's place in the order the search created its trials (0, 1, ...)
STOPPED_AT = "dlab.stopped_at"  # the step (tasks seen, env steps) at which early stopping ended a trial
PLACEMENT_PREFIX = "dlab."  # + node_id / node_ip / gpu_ids / device, where a trial ran

KIND_SWEEP, KIND_TRIAL = "sweep", "trial"

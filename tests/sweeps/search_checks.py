"""Checks shared by the tests of an interrupted optuna search (runner and service): the search
that resumed is the study that began, with no suggestion repeated or lost and every full-budget
trial's result told to it."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import optuna
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState
from ray.tune.search import Searcher

from sweeps import mlflow_tags as tags
from sweeps.plan import SweepPlan
from sweeps.runner import load_record
from sweeps.tracking import child_runs


def expected_suggestions(plan: SweepPlan) -> list[dict]:
    """What the plan's seeded searcher suggests, in order, to a sweep that is never interrupted
    (TPE's first 10 suggestions are its seeded random start-up draws, whatever the results)."""
    assert plan.spec.num_samples <= 10, "past TPE's start-up trials the order depends on the results"
    searcher = plan.searcher()
    return [searcher.suggest(f"fresh-{i}") for i in range(plan.spec.num_samples)]


def saved_study(experiment_dir: str | Path) -> optuna.Study:
    """The study in the searcher state Tune saved last in the experiment directory (one file per
    session, named by its start time; Tune copies them all at each save, so no mtime tells)."""
    newest = max(Path(experiment_dir).glob(Searcher.CKPT_FILE_TMPL.format("*")), key=lambda path: path.name)
    with newest.open("rb") as file:
        return pickle.load(file)["_ot_study"]


def _params(run, names: list[str]) -> dict:
    return {name: json.loads(run.data.params[name]) for name in names}


def assert_the_same_study_continued(experiment_dir: str | Path, tracking_uri: str) -> None:
    """Every suggestion of the seeded search ran exactly once, in its order; the saved study holds
    exactly those trials, each ended, and each full-budget trial with the value MLflow holds."""
    record = load_record(experiment_dir)
    plan = SweepPlan.from_json(record.plan)
    client = MlflowClient(tracking_uri)
    runs = child_runs(client, record.experiment_id, record.parent_run_id)
    lost = [run for run in runs if run.info.status == "KILLED" and "lost with its driver" in
            run.data.tags.get(tags.ERROR, "")]  # a trial its killed driver started before Tune saved it
    lost_ids = {run.info.run_id for run in lost}
    runs = [run for run in runs if run.info.run_id not in lost_ids]
    assert all(run.info.status == "FINISHED" for run in runs), [r.info.status for r in runs]
    indexed = sorted(runs, key=lambda run: int(run.data.tags[tags.TRIAL_INDEX]))
    ran = [_params(run, plan.searched) for run in indexed]
    assert [int(run.data.tags[tags.TRIAL_INDEX]) for run in indexed] == list(range(len(runs)))
    assert ran == expected_suggestions(plan)  # none repeated, none lost, none out of order
    by_index = {run.data.tags[tags.TRIAL_INDEX]: run for run in indexed}
    for run in lost:  # its trial ran again, with the same suggestion, at the same place
        again = by_index[run.data.tags[tags.TRIAL_INDEX]]
        assert run.data.tags[tags.RUN_NAME] == again.data.tags[tags.RUN_NAME]
    study = saved_study(experiment_dir)
    assert [trial.params for trial in study.trials] == ran, (
        [(t.number, t.state, t.params) for t in study.trials], ran)
    assert {trial.state for trial in study.trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    for run, trial in zip(indexed, study.trials, strict=True):
        stopped = tags.STOPPED_AT in run.data.tags
        assert trial.state == (TrialState.PRUNED if stopped else TrialState.COMPLETE), run.data.tags
        if not stopped:
            assert trial.value == run.data.metrics[plan.metric]

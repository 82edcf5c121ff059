"""A model-based search (search_alg: optuna) with early stopping on a real local Ray and a real
MLflow store: interrupted and resumed, it continues the same study; its report pictures it."""

import io

import pytest
import yaml
from mlflow.tracking import MlflowClient
from ray.tune import ExperimentAnalysis
from rich.console import Console

from dlab.sweep_commands import print_search
from sweeps import mlflow_tags as tags
from sweeps.runner import resume_sweep
from sweeps.settings import Settings
from tests.sweeps.interrupted import finished_trial_runs, interrupt_cli_sweep
from tests.sweeps.search_checks import assert_the_same_study_continued

pytestmark = pytest.mark.integration

SEARCH = {
    "name": "tpe", "benchmark": "permuted_digits",
    "params": {"num_tasks": 4, "hidden_sizes": [16, 16], "epochs": 2, "batch_size": 32},
    "search_space": {"kw_percent_on": {"type": "loguniform", "low": 0.05, "high": 0.5},
                     "num_segments": {"type": "randint", "low": 1, "high": 6}},
    "search_alg": "optuna", "search_seed": 7, "num_samples": 6, "scheduler": "asha",
    "max_concurrent_trials": 1,
}


def test_an_interrupted_seeded_search_resumes_the_same_study(tmp_path, local_ray):
    spec_path = tmp_path / "search.yaml"
    spec_path.write_text(yaml.safe_dump(SEARCH))
    settings = Settings(home=tmp_path)
    returncode, output = interrupt_cli_sweep(spec_path, tmp_path)
    assert returncode == 130, output
    assert 2 <= len(finished_trial_runs(settings.tracking_uri)) < SEARCH["num_samples"]

    experiment_dir = next((tmp_path / "ray_results").iterdir())
    outcome = resume_sweep(experiment_dir, settings)
    assert outcome.status == "succeeded", outcome
    trials = ExperimentAnalysis(str(experiment_dir)).trials
    assert len(trials) == SEARCH["num_samples"] and {t.status for t in trials} == {"TERMINATED"}
    assert_the_same_study_continued(experiment_dir, settings.tracking_uri)

    search = outcome.report.search
    runs = finished_trial_runs(settings.tracking_uri)
    stopped = [int(r.data.tags[tags.STOPPED_AT]) for r in runs if tags.STOPPED_AT in r.data.tags]
    assert stopped, "ASHA stopped no trial: the test no longer exercises early stopping"
    assert search.trials_stopped == len(stopped) and search.trials_complete == len(runs) - len(stopped)
    assert search.stopped_at == {str(s): stopped.count(s) for s in sorted(set(stopped))}
    assert set(stopped) <= {1, 3}  # ASHA's rungs: grace 1 task, x3
    console = Console(file=io.StringIO(), width=200)
    print_search(console, search)
    printed = console.file.getvalue()
    assert f"{search.trials_stopped} were stopped early (" in printed
    assert all(f"{count} at step {step}" in printed for step, count in search.stopped_at.items())
    assert outcome.report.best.run_id not in {r.info.run_id for r in runs if tags.STOPPED_AT in r.data.tags}
    for name in ("search_parallel_coordinates", "search_history", "search_importances", "search_slices"):
        assert f"{name}.png" in outcome.report.figures
    # no per-setting curves: each trial of a search has its own values
    assert not [f for f in outcome.report.figures if f.startswith("mean_accuracy_vs_")]
    client = MlflowClient(settings.tracking_uri)
    parent = client.get_run(outcome.parent_run_id)
    logged = {a.path for a in client.list_artifacts(outcome.parent_run_id, "report")}
    assert {"report/search.json", "report/search_parallel_coordinates.png",
            "report/search_history.png", "report/search_importances.png"} <= logged
    assert parent.data.metrics["search.trials_stopped"] == len(stopped)
    best_curve = client.get_metric_history(outcome.parent_run_id, "mean_accuracy_best_so_far")
    assert [m.value for m in sorted(best_curve, key=lambda m: m.step)] == [p.best for p in search.history]

"""A trial's memory: the estimate (against a measured trial), the checks that refuse what cannot
fit, and the reservation that keeps the trials a node runs at once within its memory (real
local Ray)."""

from __future__ import annotations

import pytest
import ray
from ray.tune import ExperimentAnalysis

from sweeps.checks import memory_problems
from sweeps.cost import estimate, trial_memory_mb
from sweeps.plan import SweepPlan
from sweeps.runner import SweepError, run_sweep
from sweeps.settings import Settings
from sweeps.spec import SweepSpec
from tests.workers.test_memory import measured_peak_mb
from workers.continual import ContinualConfig

TINY_PARAMS = {"num_tasks": 3, "hidden_sizes": [16, 16], "epochs": 1, "batch_size": 128,
               "kw_percent_on": 0.25}


def _spec(**changes) -> SweepSpec:
    return SweepSpec.model_validate({
        "name": "memory", "benchmark": "permuted_digits", "params": TINY_PARAMS,
        "search_space": {"seed": {"type": "grid", "values": [0, 1]}}, **changes})


def test_the_estimate_bounds_a_measured_trial_from_above_without_doubling_it():
    """2 x 2048 units, 20 segments over a 784-d context (~35M parameters): the measured peak
    resident set of the run (in a fresh process) is at most the estimate, and the estimate at
    most 1.6x it."""
    values = dict(dataset="mnist5k", num_tasks=1, epochs=1, hidden_sizes=[2048, 2048], num_segments=20)
    measured = measured_peak_mb(**values)
    estimated = trial_memory_mb("continual", ContinualConfig(**values))
    assert measured <= estimated <= 1.6 * measured, (measured, estimated)


def test_the_issue_example_carries_its_segment_weights_with_adam_state():
    """2 x 2048 units, 100 segments, 784-d prototypes: 321M segment weights, 16 bytes each with
    gradient and Adam's moments (4.9 GiB) before anything else."""
    config = ContinualConfig(dataset="fashion_mnist", num_tasks=100, hidden_sizes=[2048, 2048])
    segments = 2 * 2048 * 100 * 784
    assert 16 * segments / 2**20 < trial_memory_mb("continual", config) < 16 * segments / 2**20 + 2000


def test_a_reservation_below_the_estimate_or_above_every_node_is_refused_naming_the_field():
    spec = _spec()
    needed = estimate(spec).max_trial_memory_mb
    node = {"CPU": 2.0, "memory": 4 * 2**30}
    assert memory_problems(spec, [node], needed) == []
    low = memory_problems(_spec(resources={"memory_mb": needed / 2}), [node], needed)
    assert [loc for loc, _ in low] == [("resources", "memory_mb")] and "below" in low[0][1]
    high = memory_problems(_spec(resources={"memory_mb": 8192}), [node], needed)
    assert [loc for loc, _ in high] == [("resources", "memory_mb")] and "4096 MiB" in high[0][1]
    assert memory_problems(_spec(resources={"memory_mb": 8192}), [{"CPU": 2.0}], needed) == []
    big = _spec(params={**TINY_PARAMS, "hidden_sizes": [16384] * 3, "num_segments": 100})
    assert memory_problems(big, [node], estimate(big).max_trial_memory_mb)  # the estimate alone


def test_reserved_memory_keeps_the_trials_a_node_runs_at_once_within_it(tmp_path, local_ray):
    """Two 1-CPU trials on 2 CPUs, each reserving 60% of the node's memory: they run one after
    the other (the second in the first's reused worker process); a reservation over the node's
    memory is refused before any trial starts."""
    node_mb = ray.cluster_resources()["memory"] / 2**20
    spec = _spec(resources={"cpu": 1, "memory_mb": round(0.6 * node_mb)})
    outcome = run_sweep(SweepPlan.resolve(spec), Settings(home=tmp_path / "fits"))
    assert outcome.status == "succeeded" and outcome.trials_total == 2
    pids = {trial.last_result["pid"] for trial in ExperimentAnalysis(outcome.experiment_dir).trials}
    assert len(pids) == 1, pids
    with pytest.raises(SweepError, match=r"resources\.memory_mb"):
        run_sweep(SweepPlan.resolve(_spec(resources={"memory_mb": round(2 * node_mb)})),
                  Settings(home=tmp_path / "too-big"))

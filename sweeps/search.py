"""The model-based searcher of ``search_alg: optuna``: Ray Tune's ``OptunaSearch`` (TPE, seeded,
one or several objectives), told which trials an early-stopping scheduler cut short.

``OptunaSearch`` tells Optuna every trial that ends with a result as COMPLETE, its value the last
one reported. A trial ASHA stopped after one task would then enter the study with its one-task
accuracy, higher than any full run's (continual learning forgets), and steer TPE towards it. This
searcher tells such a trial as PRUNED (Optuna keeps its intermediate values; TPE ranks pruned
trials by how far they got, from the value it stopped with), so only full-budget trials count
as finished results.

Its state (the study, the sampler's random state, which Tune trial is which Optuna trial) is
pickled by ``OptunaSearch.save`` into the experiment directory with Tune's own state, and
``Tuner.restore`` loads it back: a resumed sweep continues the same study.
"""

from __future__ import annotations

from typing import Any

import optuna
from ray.tune.result import TRAINING_ITERATION
from ray.tune.search.optuna import OptunaSearch

from sweeps.trainable import stopped_early


class EarlyStoppedOptunaSearch(OptunaSearch):
    """``OptunaSearch`` telling a trial stopped before its full budget as pruned rather than
    complete."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no line per trial in the driver's log
        super().__init__(*args, **kwargs)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if isinstance(self.metric, str) and self.metric not in result:
            return  # a report off the workload's evaluation schedule (eval_tasks): no value to tell
        super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if not error and stopped_early(result):
            ot_trial = self._ot_trials[trial_id]
            if isinstance(self.metric, str) and self.metric in result:
                # Tune hands the result that got a trial stopped to on_trial_complete only: kept as
                # the pruned trial's value at the step it reached
                ot_trial.report(result[self.metric], result[TRAINING_ITERATION])
            result = None  # OptunaSearch tells a trial ended without a value and an error as PRUNED
        super().on_trial_complete(trial_id, result=result, error=error)

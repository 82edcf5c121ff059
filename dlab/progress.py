"""Progress bars: over a sweep's trials (a Tune callback; picklable for restores) and over one
run's training steps."""

from __future__ import annotations

from typing import Any

from ray import tune
from tqdm.auto import tqdm


class TrialProgress(tune.Callback):
    """Counts finished trials and shows the latest metric of the last reporting trial."""

    def __init__(self, metric: str, disable: bool = False) -> None:
        self.metric = metric
        self.disable = disable
        self._bar: tqdm | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_bar": None}

    def _progress(self, trials) -> tqdm:
        if self._bar is None:
            self._bar = tqdm(total=len(trials), unit="trial", desc="sweep", disable=self.disable)
        self._bar.total = max(self._bar.total or 0, len(trials))
        return self._bar

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        if self.metric in result:
            self._progress(trials).set_postfix({self.metric: f"{result[self.metric]:.4f}"})

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._progress(trials).update(1)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._progress(trials).update(1)

    def on_experiment_end(self, trials, **info) -> None:
        if self._bar is not None:
            self._bar.close()


class StepProgress:
    """A tqdm bar over a run's training steps, fed by a workload's ``progress(done, total)``
    calls (:mod:`workers.workload`); a context manager that closes the bar."""

    def __init__(self, description: str, enabled: bool = True) -> None:
        self.description = description
        self.enabled = enabled
        self._bar: tqdm | None = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self._bar is None:
            self._bar = tqdm(total=total, unit="step", desc=self.description)
        self._bar.update(done)

    def __enter__(self) -> StepProgress:
        return self

    def __exit__(self, *_exc) -> None:
        if self._bar is not None:
            self._bar.close()

"""An interrupted sweep, as the tests make one: ``dlab sweep run`` in its own process, sent
SIGINT (Ctrl-C) once enough trials have finished."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from mlflow.tracking import MlflowClient

from sweeps.settings import Settings
from tests.waiting import wait_for


def finished_trial_runs(tracking_uri: str) -> list:
    """Every FINISHED trial run in the store."""
    client = MlflowClient(tracking_uri)
    return client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        filter_string="tags.`dlab.kind` = 'trial' and attributes.status = 'FINISHED'",
    )


def interrupt_cli_sweep(spec_path: Path, home: Path, finished: int = 2,
                        until: Callable[[], bool] | None = None) -> tuple[int, str]:
    """Run the spec with ``dlab sweep run`` under ``DLAB_HOME=home``, Ctrl-C it once ``finished``
    trials have finished (or, given ``until``, once that holds); its exit code and output (a
    driver that dies first fails the wait)."""
    env = {**os.environ, "DLAB_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    tracking_uri = Settings(home=home).tracking_uri
    # the store's tables made here, once: the driver and this test's polls would otherwise both
    # create them at the same moment (MLflow's migration then fails: duplicate column name)
    MlflowClient(tracking_uri).search_experiments(max_results=1)
    driver = subprocess.Popen([sys.executable, "-m", "dlab.cli", "sweep", "run", str(spec_path), "--quiet"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        def enough_finished():
            assert driver.poll() is None, driver.communicate()[0]
            return until() if until else len(finished_trial_runs(tracking_uri)) >= finished

        wait_for(enough_finished, 900, "the moment to interrupt" if until else f"{finished} finished trials")
        driver.send_signal(signal.SIGINT)
        output, _ = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
    return driver.returncode, output

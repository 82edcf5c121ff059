"""A sweep's results for the API: the report (table and figures) rebuilt from MLflow, cached on
disk once the sweep has ended."""

from __future__ import annotations

import threading
from pathlib import Path

from mlflow.tracking import MlflowClient

from service.db import SweepRow
from service.errors import SweepConflict, SweepNotFound
from service.settings import ServiceSettings
from sweeps.plan import SweepPlan
from sweeps.report import SweepReport, build_report
from sweeps.spec import SweepSpec


class Reports:
    """Builds reports one at a time (matplotlib's pyplot is not thread-safe)."""

    def __init__(self, settings: ServiceSettings, mlflow: MlflowClient) -> None:
        self.settings = settings
        self.mlflow = mlflow
        self._lock = threading.Lock()

    def report(self, row: SweepRow) -> SweepReport:
        """The results table (mean/std over seeds) and figures, rebuilt from MLflow."""
        if row.parent_run_id is None:
            raise SweepConflict(f"sweep {row.id} has no results yet (status {row.status})")
        out_dir = self.settings.reports / row.id
        cached = out_dir / "report.json"
        if not row.active and cached.exists():
            return SweepReport.model_validate_json(cached.read_text())
        # the stored spec was validated at submission: rebuild it without validating again
        plan = SweepPlan(sweep_id=row.id, spec=SweepSpec.model_construct(**row.spec))
        with self._lock:
            report = build_report(self.mlflow, row.experiment_id, row.parent_run_id, plan, out_dir,
                                  log_to_mlflow=False)
        if not row.active:
            cached.write_text(report.model_dump_json(indent=2))
        return report

    def figure(self, row: SweepRow, name: str) -> Path:
        """A report figure by its file stem, e.g. ``mean_accuracy_vs_num_segments``."""
        report = self.report(row)
        figures = {Path(f).stem: report.path(f, self.settings.reports / row.id) for f in report.figures}
        if name not in figures:
            raise SweepNotFound(f"sweep {row.id} has no figure {name!r}; it has {sorted(figures)}")
        return figures[name]

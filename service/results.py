"""A sweep's results for the API: the report (table and figures) rebuilt from MLflow, cached on
disk once the sweep has ended (and built again where an older service cached it)."""

from __future__ import annotations

import logging
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from mlflow.tracking import MlflowClient

from service.db import SweepRow
from service.errors import SweepConflict, SweepNotFound
from service.settings import ServiceSettings
from sweeps.files import write_text_atomically
from sweeps.plan import SweepPlan
from sweeps.report import REPORT_FORMAT, SweepReport, build_report
from sweeps.spec import SweepSpec

log = logging.getLogger("dlab.service")


class Reports:
    """Builds reports one at a time (matplotlib's pyplot is not thread-safe)."""

    def __init__(self, settings: ServiceSettings, mlflow: MlflowClient,
                 nodes: Callable[[], list[dict[str, float]] | None] = lambda: None) -> None:
        self.settings = settings
        self.mlflow = mlflow
        self.nodes = nodes
        """The Ray nodes' resources as last read: the cluster's CPUs for a sweep whose drivers
        did not log them (its efficiency)."""
        self._lock = threading.Lock()

    def _cluster_cpus(self) -> float | None:
        nodes = self.nodes()
        return sum(node.get("CPU", 0.0) for node in nodes) if nodes else None

    def report(self, row: SweepRow) -> SweepReport:
        """The results table (mean/std over seeds) and figures, rebuilt from MLflow."""
        if row.parent_run_id is None:
            raise SweepConflict(f"sweep {row.id} has no results yet (status {row.status})")
        out_dir = self.settings.reports / row.id
        cached = out_dir / "report.json"
        if not row.active and cached.is_file() and not cached.is_symlink():
            report = SweepReport.model_validate_json(cached.read_text())
            # (else cached by an older service: built again, if it can be)
            return report if report.format_version == REPORT_FORMAT else self._rebuild(row, report, out_dir)
        report = self._build(row, out_dir)
        if not row.active:
            write_text_atomically(cached, report.model_dump_json(indent=2))
        return report

    def _build(self, row: SweepRow, directory: Path) -> SweepReport:
        """The sweep's report built from MLflow into ``directory`` (one build at a time)."""
        plan = SweepPlan(sweep_id=row.id, spec=SweepSpec.stored(row.spec))
        with self._lock:
            return build_report(self.mlflow, row.experiment_id, row.parent_run_id, plan, directory,
                                log_to_mlflow=False, cores=self._cluster_cpus())

    def _rebuild(self, row: SweepRow, older: SweepReport, out_dir: Path) -> SweepReport:
        """An ended sweep's report, cached by an older service, built again beside it and put in
        its place file by file; where that fails (or MLflow no longer has its trials) the older
        report and its files are kept as they were."""
        building = Path(tempfile.mkdtemp(prefix=f".{row.id}-", dir=self.settings.reports))
        try:
            report = self._build(row, building)
            if older.trials and not report.trials:
                log.warning("sweep %s: MLflow has no trials of it now; its cached report is kept", row.id)
                return older
            for path in building.iterdir():
                os.replace(path, out_dir / path.name)
            write_text_atomically(out_dir / "report.json", report.model_dump_json(indent=2))
            return report
        except Exception:
            log.warning("sweep %s: its report could not be built again; the cached one is kept",
                        row.id, exc_info=True)
            return older
        finally:
            shutil.rmtree(building, ignore_errors=True)

    def figure(self, row: SweepRow, name: str) -> bytes:
        """A report figure's PNG bytes by its file stem, e.g. ``mean_accuracy_vs_num_segments``."""
        report = self.report(row)
        stems = {Path(f).stem: f for f in report.figures}
        if name not in stems:
            raise SweepNotFound(f"sweep {row.id} has no figure {name!r}; it has {sorted(stems)}")
        return self._read(row, report, stems[name])

    def file(self, row: SweepRow, name: str) -> bytes:
        """One of the report's files by name (``results.csv``, ``trials.csv``, a figure's PNG or
        SVG, ...: :meth:`SweepReport.files`)."""
        report = self.report(row)
        files = report.files()
        if name not in files:
            raise SweepNotFound(f"sweep {row.id}'s report has no file {name!r}; it has {files}")
        return self._read(row, report, name)

    def _read(self, row: SweepRow, report: SweepReport, name: str) -> bytes:
        """A report file's bytes: only a regular file inside the sweep's report directory (no
        symlink, nothing outside), read whole in one open (report files are replaced atomically,
        so the bytes are one complete version, and the answer's length is that of the bytes
        sent)."""
        directory = (self.settings.reports / row.id).resolve()
        content = read_report_file(directory, report.path(name, directory))
        if content is None:
            raise SweepNotFound(f"sweep {row.id} has no report file {name!r} on this service")
        return content


def read_report_file(directory: Path, path: Path) -> bytes | None:
    """The bytes of ``path`` if it is a regular file (not a symlink) whose real path lies inside
    ``directory``; None otherwise."""
    try:
        real = path.resolve(strict=True)
        if not real.is_relative_to(directory) or real != path.absolute():
            return None  # a symlink on the way, or outside the report directory
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            return None
        return file.read()

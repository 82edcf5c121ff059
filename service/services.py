"""The service's components, built once at start-up and shared by the routes (see
:mod:`service.deps`)."""

from __future__ import annotations

from dataclasses import dataclass

from mlflow.tracking import MlflowClient
from sqlalchemy.orm import sessionmaker

from service.drivers import SweepDrivers
from service.reconciler import Reconciler
from service.records import SweepRecords
from service.results import Reports
from service.settings import ServiceSettings
from service.submission import Submissions


@dataclass(frozen=True)
class Services:
    """Records, submissions, reconciliation with Ray and MLflow, and reports."""

    settings: ServiceSettings
    sessions: sessionmaker
    drivers: SweepDrivers
    mlflow: MlflowClient
    records: SweepRecords
    submissions: Submissions
    reconciler: Reconciler
    reports: Reports

    @classmethod
    def build(cls, settings: ServiceSettings, sessions: sessionmaker) -> Services:
        drivers = SweepDrivers(settings)
        mlflow = MlflowClient(settings.tracking_uri)
        records = SweepRecords(settings, sessions)
        submissions = Submissions(settings, sessions, drivers, lambda: reconciler.nodes,
                                  on_change=records.changed)
        reconciler = Reconciler(settings, sessions, drivers, mlflow, on_change=records.changed,
                                start_held=submissions.start_held)
        return cls(settings=settings, sessions=sessions, drivers=drivers, mlflow=mlflow, records=records,
                   submissions=submissions, reconciler=reconciler,
                   reports=Reports(settings, mlflow, lambda: reconciler.nodes))

"""Sweep records in a SQL database through SQLAlchemy (SQLite file by default, any URL by setting)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Engine,
    Integer,
    String,
    Text,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from sweeps.status import ACTIVE_SWEEP_STATUSES


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class SweepRow(Base):
    """One submitted sweep: its spec, where its driver and MLflow runs are, and its status."""

    __tablename__ = "sweeps"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    benchmark: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(16), index=True, default="queued")
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    spec_hash: Mapped[str] = mapped_column(String(32))
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True, nullable=True)
    expected_trials: Mapped[int] = mapped_column(Integer)
    metric: Mapped[str] = mapped_column(String(120))
    mode: Mapped[str] = mapped_column(String(3))
    experiment_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    parent_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    driver_submitted: Mapped[bool] = mapped_column(Boolean, default=False)
    driver_job_id: Mapped[str | None] = mapped_column(String(120), nullable=True)
    """The Ray job of the current driver (None: the first, whose job id is the sweep id)."""
    driver_restarts: Mapped[int] = mapped_column(Integer, default=0)
    cluster_resumes: Mapped[int] = mapped_column(Integer, default=0)
    """Of ``driver_restarts``, those made because a new Ray cluster no longer knew the driver
    (the machine or the head stopped): bounded apart from driver deaths."""
    held: Mapped[bool] = mapped_column(Boolean, default=False)
    """Waiting in the service's queue for a running slot (``DLAB_MAX_RUNNING_SWEEPS``): its
    driver starts when one frees, in submission order."""
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    """Set by a cancel; the submission checks it before and after starting the driver, so a
    cancel wins whatever moment it arrives."""
    trials: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    """The trials as last read from MLflow by the reconciler (what the API serves)."""
    settled: Mapped[bool] = mapped_column(Boolean, default=False)
    """True once an ended sweep's trials and MLflow runs were all closed."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_SWEEP_STATUSES

    @property
    def job_id(self) -> str:
        """The Ray job id of the sweep's current driver."""
        return self.driver_job_id or self.id

    def end(self, status: str, error: str | None = None, at: datetime | None = None) -> None:
        """End the sweep as ``status`` (failed or cancelled), at ``at`` (default now), with the
        error a failed one reports (already free of paths and addresses); it no longer waits
        for a running slot."""
        self.status, self.finished_at, self.held = status, at or utcnow(), False
        if error is not None:
            self.error = error


class Heartbeat(Base):
    """A single row rewritten by the readiness probe, to prove the database takes writes."""

    __tablename__ = "heartbeat"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL mode and a busy timeout for concurrent readers."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection, _record) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()
    else:
        engine = create_engine(url, pool_pre_ping=True)
    Base.metadata.create_all(engine)
    _add_missing_columns(engine)
    return engine


def _add_missing_columns(engine: Engine) -> None:
    """Columns added since a database was created (``ALTER TABLE ... ADD COLUMN``, nullable or
    with their default), so an existing ``service.db`` keeps working."""
    existing = {column["name"] for column in inspect(engine).get_columns(SweepRow.__tablename__)}
    with engine.begin() as connection:
        for column in SweepRow.__table__.columns:
            if column.name in existing:
                continue
            kind = column.type.compile(engine.dialect)
            default = {Integer: " DEFAULT 0", Boolean: " DEFAULT FALSE"}.get(type(column.type), "")
            table = SweepRow.__tablename__
            connection.execute(text(f"ALTER TABLE {table} ADD COLUMN {column.name} {kind}{default}"))


def make_sessionmaker(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)

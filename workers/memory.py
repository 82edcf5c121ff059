"""A trial's peak memory, measured in the process that trains it.

On Linux the kernel keeps a process's peak resident set (``VmHWM`` in ``/proc/self/status``)
and resets it on ``echo 5 > /proc/self/clear_refs``, so a worker process that runs one trial
after another (Ray Tune's ``reuse_actors``) measures each trial apart. Elsewhere the peak is
``getrusage``'s ``ru_maxrss``, the process's peak since it started. On CUDA the peak of
torch's allocated device memory is reported too. Subprocesses (e.g. an async vector env's
workers) are not counted.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import resource
import sys
from pathlib import Path

import torch

from workers.workload import Checkpoint, Metrics, ReportFn

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def release_freed_memory() -> None:
    """Collect garbage and hand the C heap's free pages back to the system (glibc's
    ``malloc_trim``), so a worker that ran a trial before starts the next one near a fresh
    process's footprint instead of on top of the last trial's freed memory."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def reset_peak_memory() -> None:
    """Start a new peak: the resident set's (Linux) and torch's CUDA allocator's, after handing
    back what earlier runs in this process freed."""
    release_freed_memory()
    with contextlib.suppress(OSError):  # not Linux, or not allowed: the peak since start stays
        CLEAR_REFS.write_text("5")
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.reset_peak_memory_stats()


def peak_rss_mb() -> float:
    """The process's peak resident set since the last reset, MiB."""
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, else kB


def peak_memory_metrics() -> dict[str, float]:
    """``peak_memory_mb`` (resident set) and, on CUDA, ``peak_gpu_memory_mb`` (allocated)."""
    metrics = {"peak_memory_mb": peak_rss_mb()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        metrics["peak_gpu_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return metrics


def reporting_peak_memory(report: ReportFn | None) -> ReportFn | None:
    """``report`` with the run's peak memory so far added to every report's metrics; the peak
    is counted from this call (the start of a run)."""
    reset_peak_memory()
    if report is None:
        return None

    def with_peak_memory(metrics: Metrics, checkpoint: Checkpoint) -> None:
        report({**metrics, **peak_memory_metrics()}, checkpoint)

    return with_peak_memory

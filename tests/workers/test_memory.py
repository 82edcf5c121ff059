"""A trial's peak memory (``peak_memory_mb``), measured per run in the process that trains it."""

from __future__ import annotations

from pathlib import Path

import torch

from workers.continual import ContinualConfig, train_continual
from workers.memory import peak_rss_mb

TINY = dict(dataset="digits", num_tasks=2, hidden_sizes=[16, 16], epochs=1, batch_size=64)


def _current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_each_run_reports_its_own_peak_not_the_process_peak_before_it():
    """A run in a process that earlier held 1000 MiB more (a reused Ray worker after a big
    trial) reports its own peak: at least what it holds, far below the earlier peak."""
    big = torch.ones(1000 * 2**18)  # 1000 MiB of float32, touched
    earlier_peak = peak_rss_mb()
    del big
    reports = []
    train_continual(ContinualConfig(**TINY), lambda metrics, _checkpoint: reports.append(metrics))
    peaks = [r["peak_memory_mb"] for r in reports]
    assert all(isinstance(p, float) for p in peaks) and peaks == sorted(peaks)  # a running peak
    assert _current_rss_mb() - 50 <= peaks[-1] < earlier_peak - 600, (peaks, earlier_peak)


def test_the_peak_counts_what_the_run_allocates():
    """A run whose network holds ~300 MiB of weights, gradients and Adam state peaks above a
    tiny run by at least that much."""
    small, large = [], []
    train_continual(ContinualConfig(**TINY), lambda metrics, _c: small.append(metrics))
    train_continual(ContinualConfig(**{**TINY, "hidden_sizes": [2048, 2048], "num_segments": 4,
                                       "num_tasks": 1}),
                    lambda metrics, _c: large.append(metrics))
    params = 64 * 2048 + 2048 * 2048 + 2048 * 10 + 2 * 2048 * 4 * 64  # ~4.4M
    assert large[-1]["peak_memory_mb"] - small[-1]["peak_memory_mb"] > 0.8 * params * 16 / 2**20

"""A trial's peak memory (``peak_memory_mb``), measured per run in the process that trains it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from workers.continual import ContinualConfig, train_continual
from workers.memory import peak_rss_mb, release_freed_memory

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


def measured_peak_mb(**config) -> float:
    """The last reported ``peak_memory_mb`` of a continual run in a fresh Python process (in
    this one, memory freed by earlier tests stays resident and hides what a run adds)."""
    code = ("import json, sys; from workers.continual import ContinualConfig, train_continual; "
            "reports = []; train_continual(ContinualConfig(**json.loads(sys.argv[1])), "
            "lambda m, _c: reports.append(m)); print(reports[-1]['peak_memory_mb'])")
    done = subprocess.run([sys.executable, "-c", code, json.dumps(config)], capture_output=True,
                          text=True, timeout=600, check=True)
    return float(done.stdout.split()[-1])


def test_the_peak_counts_what_the_run_allocates():
    """A run whose network holds ~80 MiB of weights, gradients and Adam state peaks above a
    tiny run by at least most of that."""
    small = measured_peak_mb(**TINY)
    large = measured_peak_mb(**{**TINY, "hidden_sizes": [2048, 2048], "num_segments": 4, "num_tasks": 1})
    params = 64 * 2048 + 2048 * 2048 + 2048 * 10 + 2 * 2048 * 4 * 64  # ~5.4M
    assert large - small > 0.8 * params * 16 / 2**20, (small, large)


def test_a_reused_worker_hands_back_the_memory_its_last_trial_freed():
    """Freed heap memory held between live blocks (a trial's many mid-sized buffers, freed when
    it ends) stays resident until ``release_freed_memory`` hands it back."""
    blocks = [np.ones(16_000, dtype=np.float32) for _ in range(6_000)]  # 64 KB each: the heap
    keep = blocks[::50]  # live blocks pin the heap: freeing the rest cannot shrink it from the top
    del blocks
    before = _current_rss_mb()
    release_freed_memory()
    after = _current_rss_mb()
    assert before - after > 200, (before, after)
    assert len(keep) == 120

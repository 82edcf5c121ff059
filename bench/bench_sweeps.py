"""Orchestration overhead: the same short continual trials run by the sweep runner (local Ray
Tune + MLflow tracking + per-task checkpoints) vs a plain loop calling the trainable, side by side.

    .venv/bin/python bench/bench_sweeps.py [--trials 4] [--tasks 3] [--hidden 64]

Ray start-up and the creation of a fresh MLflow store (its SQLite schema) are one-off costs of a
machine, not of a sweep: both are timed separately; the ratio compares the sweep (Ray up, store
created) with the loop.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import ray
import torch

from sweeps.plan import SweepPlan
from sweeps.runner import check_mlflow, connect_ray, run_sweep
from sweeps.settings import Settings
from sweeps.spec import SweepSpec
from workers.continual import ContinualConfig, train_continual


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--tasks", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    params = {"num_tasks": args.tasks, "hidden_sizes": [args.hidden] * 2, "epochs": args.epochs,
              "batch_size": 64, "kw_percent_on": 0.1}
    seeds = list(range(args.trials))
    spec = SweepSpec.model_validate({
        "name": "bench", "benchmark": "permuted_digits", "params": params,
        "search_space": {"seed": {"type": "grid", "values": seeds}},
        "resources": {"cpu": 1},
    })
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home))
        start = time.perf_counter()
        connect_ray(settings)
        ray_start = time.perf_counter() - start
        start = time.perf_counter()
        check_mlflow(settings)  # creates the tracking store's tables on first use
        store_s = time.perf_counter() - start

        start = time.perf_counter()
        torch.set_num_threads(1)  # one thread per trial, as Ray gives each 1-CPU trial
        for seed in seeds:  # the plain loop, one trial after another
            train_continual(ContinualConfig(dataset="digits", **params, seed=seed))
        loop_s = time.perf_counter() - start
        torch.set_num_threads(2)

        start = time.perf_counter()
        outcome = run_sweep(SweepPlan.resolve(spec), settings)
        sweep_s = time.perf_counter() - start
        ray.shutdown()
    assert outcome.status == "succeeded", outcome
    print(f"{args.trials} trials x {args.tasks} tasks (hidden {args.hidden}, {args.epochs} epochs)")
    print(f"  ray start-up              {ray_start:7.2f} s")
    print(f"  mlflow store creation     {store_s:7.2f} s")
    print(f"  plain loop (sequential)   {loop_s:7.2f} s")
    print(f"  sweep runner (Ray Tune)   {sweep_s:7.2f} s  (trials run concurrently on the machine's cores)")
    print(f"  ratio sweep / loop        {sweep_s / loop_s:7.2f}x")
    print(f"  overhead per trial        {(sweep_s - loop_s) / args.trials:+7.2f} s")


if __name__ == "__main__":
    main()

"""Orchestration overhead: the same short continual trials run by the sweep runner (local Ray
Tune + MLflow tracking + per-task checkpoints) vs a plain loop calling the trainable, side by side.

    .venv/bin/python bench/bench_sweeps.py [--trials 4] [--tasks 3] [--hidden 64]
    .venv/bin/python bench/bench_sweeps.py --trials 4 8   # also the cost of each further trial

Ray start-up and the creation of a fresh MLflow store (its SQLite schema) are one-off costs of a
machine, not of a sweep: both are timed separately; the ratio compares the sweep (Ray up, store
created) with the loop. So is the loop's first trial in this process (its imports and dataset
load; each of the sweep's fresh trial workers pays them too, as orchestration cost): the loops
timed below run warm. The overhead per trial, (sweep - loop) / trials, holds a sweep's fixed
costs (Tune's start, the trial workers' first imports, the report) shared by its trials; with
two or more trial counts, each measured in the same run, the overhead of each further trial is
also printed: the growth of (sweep - loop) from the smallest count to the largest, per trial.
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
    parser.add_argument("--trials", type=int, nargs="+", default=[4])
    parser.add_argument("--tasks", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    params = {"num_tasks": args.tasks, "hidden_sizes": [args.hidden] * 2, "epochs": args.epochs,
              "batch_size": 64, "kw_percent_on": 0.1}
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home))
        start = time.perf_counter()
        connect_ray(settings)
        ray_start = time.perf_counter() - start
        start = time.perf_counter()
        check_mlflow(settings)  # creates the tracking store's tables on first use
        store_s = time.perf_counter() - start
        start = time.perf_counter()
        torch.set_num_threads(1)
        train_continual(ContinualConfig(dataset="digits", **params, seed=0))
        first_trial_s = time.perf_counter() - start
        timings = {trials: sweep_and_loop(trials, params, settings) for trials in args.trials}
        ray.shutdown()
    print(f"{args.tasks} tasks a trial (hidden {args.hidden}, {args.epochs} epochs)")
    print(f"  ray start-up              {ray_start:7.2f} s")
    print(f"  mlflow store creation     {store_s:7.2f} s")
    print(f"  loop's first trial        {first_trial_s:7.2f} s  (imports, dataset; not in the loops below)")
    for trials, (loop_s, sweep_s) in timings.items():
        print(f"{trials} trials")
        print(f"  plain loop (sequential)   {loop_s:7.2f} s")
        print(f"  sweep runner (Ray Tune)   {sweep_s:7.2f} s  (trials concurrent on the machine's cores)")
        print(f"  ratio sweep / loop        {sweep_s / loop_s:7.2f}x")
        print(f"  overhead per trial        {(sweep_s - loop_s) / trials:+7.2f} s")
    if len(timings) > 1:
        few, many = min(timings), max(timings)
        extra = {trials: sweep_s - loop_s for trials, (loop_s, sweep_s) in timings.items()}
        further = (extra[many] - extra[few]) / (many - few)
        fixed = extra[few] - further * few
        print(f"overhead of each further trial ({few} -> {many} trials): {further:+.2f} s; "
              f"fixed per sweep: {fixed:+.2f} s")


def sweep_and_loop(trials: int, params: dict, settings: Settings) -> tuple[float, float]:
    """Seconds for ``trials`` seeds of ``params`` in a plain loop, then through the sweep runner."""
    seeds = list(range(trials))
    spec = SweepSpec.model_validate({
        "name": f"bench-{trials}", "benchmark": "permuted_digits", "params": params,
        "search_space": {"seed": {"type": "grid", "values": seeds}},
        "resources": {"cpu": 1},
    })
    start = time.perf_counter()
    torch.set_num_threads(1)  # one thread per trial, as Ray gives each 1-CPU trial
    for seed in seeds:  # the plain loop, one trial after another
        train_continual(ContinualConfig(dataset="digits", **params, seed=seed))
    loop_s = time.perf_counter() - start
    torch.set_num_threads(2)

    start = time.perf_counter()
    outcome = run_sweep(SweepPlan.resolve(spec), settings)
    sweep_s = time.perf_counter() - start
    assert outcome.status == "succeeded", outcome
    return loop_s, sweep_s


if __name__ == "__main__":
    main()

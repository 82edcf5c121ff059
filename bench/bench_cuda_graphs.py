"""Whole runs with the training step replayed as CUDA graphs vs launched op by op (a GPU bench).

    python bench/bench_cuda_graphs.py [--num-tasks 3] [--pairs 2] [--variant active_dendrites]

Trains the ``paper`` preset (full-size permuted Fashion-MNIST by default) with ``cuda_graphs``
off and on, alternately in one process (``--pairs`` of each), and prints each run's wall time
(training and evaluation of every task, as the trainer counts it) and final mean accuracy.
"""

from __future__ import annotations

import argparse
import statistics

from workers.continual import ContinualConfig, train_continual


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--num-tasks", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--variant", default="active_dendrites")
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.pairs):
        for graphs in (False, True):
            config = ContinualConfig(preset="paper", variant=args.variant, dataset=args.dataset,
                                     num_tasks=args.num_tasks, device=args.device, seed=0,
                                     cuda_graphs=graphs)
            results = train_continual(config)
            times[graphs].append(results.wall_time_s)
            print(f"cuda_graphs={graphs!s:<5} {args.variant}, {args.num_tasks} tasks: "
                  f"{results.wall_time_s:6.1f} s, final mean accuracy "
                  f"{results.final_mean_accuracy:.4f}", flush=True)
    eager, graphed = (statistics.median(times[g]) for g in (False, True))
    print(f"median wall time: eager {eager:.1f} s, graphs {graphed:.1f} s "
          f"({eager / graphed:.2f}x faster)")


if __name__ == "__main__":
    main()

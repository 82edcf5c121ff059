"""Online-prototype clustering cost: the Hotelling T^2 test as the textbook writes it (both
covariances and a pseudo-inverse for every cluster a batch is tested against, the form before
the cached, Cholesky-certified one) vs ``OnlinePrototypes.assign``, side by side on the same
batches in one run, and whether every batch lands in the same cluster.

    .venv/bin/python bench/bench_clustering.py [--tasks 5] [--epochs 1] [--data fashion_mnist]

Each batch is first placed by the textbook test (the first cluster it keeps, on the clusters'
current exemplars; nothing is changed), then by ``assign``, which updates the clusters; both
are timed. A batch is tested against every cluster before the one it joins, so the cost per
task grows with the clusters founded so far: the ratio is printed per task. One thread.
"""

from __future__ import annotations

import argparse
import time

import torch
from scipy.special import fdtr

from dendrites.clustering import OnlinePrototypes
from workers.continual.datasets import load_dataset
from workers.continual.tasks import PermutedTaskStream


def textbook_same_mean(a: torch.Tensor, b: torch.Tensor, alpha: float) -> bool:
    """Two-sample Hotelling T^2 at level ``alpha``: pooled unbiased covariance, ``pinv``."""
    a, b = a.double(), b.double()
    n1, n2, p = len(a), len(b), a.shape[1]
    n = n1 + n2
    if n - p - 1 <= 0 or n1 < 2 or n2 < 2:
        return False
    diff = a.mean(0) - b.mean(0)
    pooled = ((n1 - 1) * torch.cov(a.T) + (n2 - 1) * torch.cov(b.T)) / (n - 2)
    t2 = (n1 * n2 / n) * float(diff @ torch.linalg.pinv(pooled) @ diff)
    return float(fdtr(p, n - p - 1, (n - p - 1) / (p * (n - 2)) * t2)) < 1.0 - alpha


def textbook_cluster(clusters: OnlinePrototypes, batch: torch.Tensor) -> int:
    """The first cluster whose exemplars the textbook test keeps, or the index a new one gets."""
    pixels = batch[:, clusters.pixels].float()
    for index, exemplars in enumerate(clusters.exemplars):
        if textbook_same_mean(exemplars, pixels, clusters.alpha):
            return index
    return len(clusters)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--tasks", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--data", default="fashion_mnist", help="digits, mnist5k, mnist or fashion_mnist")
    args = parser.parse_args()
    torch.set_num_threads(1)
    stream = PermutedTaskStream(load_dataset(args.data), args.tasks)
    clusters = OnlinePrototypes(stream.dataset.input_dim, seed=0)
    order = torch.Generator().manual_seed(0)
    print(f"{args.data}, {args.tasks} tasks x {args.epochs} epochs, batches of {args.batch_size}, one thread")
    print("task  clusters  batches  textbook s  assign s  ratio  same clusters")
    total_textbook = total_assign = 0.0
    for task in range(args.tasks):
        x, _ = stream.train_split(task)
        textbook_s = assign_s = 0.0
        batches = same = 0
        for _ in range(args.epochs):
            shuffled = x[torch.randperm(len(x), generator=order)]
            for start in range(0, len(x) - args.batch_size + 1, args.batch_size):
                batch = shuffled[start:start + args.batch_size]
                began = time.perf_counter()
                expected = textbook_cluster(clusters, batch)
                textbook_s += time.perf_counter() - began
                began = time.perf_counter()
                got = clusters.assign(batch, task)
                assign_s += time.perf_counter() - began
                batches += 1
                same += got == expected
        total_textbook += textbook_s
        total_assign += assign_s
        print(f"{task:4d}  {len(clusters):8d}  {batches:7d}  {textbook_s:10.1f}  {assign_s:8.1f}  "
              f"{textbook_s / assign_s:5.1f}  {same}/{batches}")
    print(f"all   {len(clusters):8d}           {total_textbook:10.1f}  {total_assign:8.1f}  "
          f"{total_textbook / total_assign:5.1f}")


if __name__ == "__main__":
    main()

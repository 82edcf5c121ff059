"""Training-step cost of the dendritic network vs an equal-width dense MLP, and of the context
dedup path vs the naive per-sample path. Measured side by side (interleaved rounds) in one run.

    .venv/bin/python bench/bench_dendrites.py [--batch-size 256] [--rounds 7] [--device cpu]

Paper sizes: 784 -> 2048 -> 2048 -> 10, 10 segments, 784-d context, kWTA 5%, weight sparsity
50%, Adam. Goal: dendritic (dedup on) <= 1.3x the dense MLP's step time.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from dendrites import MLP, DendriticMLP, IndexedContext, dendritic_adam


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def make_train_step(model: torch.nn.Module, x, y, context) -> Callable[[], None]:
    """One optimiser step (forward, backward, fused Adam, sparsity re-zeroing)."""
    optimizer = dendritic_adam(model, lr=5e-4)

    def step() -> None:
        loss = F.cross_entropy(model(x, context), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def make_eval_step(model: torch.nn.Module, x, context) -> Callable[[], None]:
    """One no-grad forward pass."""

    def step() -> None:
        with torch.no_grad():
            model(x, context)

    return step


def time_interleaved(cases: dict[str, Callable[[], None]], device, rounds: int, steps: int):
    """Median seconds per step of each case, measured in alternating rounds."""
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():  # warm-up
        fn()
        fn()
    for _ in range(rounds):
        for name, fn in cases.items():
            _sync(device)
            start = time.perf_counter()
            for _ in range(steps):
                fn()
            _sync(device)
            samples[name].append((time.perf_counter() - start) / steps)
    return {name: statistics.median(v) for name, v in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=3, help="steps per timed round")
    parser.add_argument("--segments", type=int, default=10)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    b, dim, classes = args.batch_size, 784, 10
    x = torch.randn(b, dim, device=device)
    y = torch.randint(0, classes, (b,), device=device)
    prototypes = torch.randn(args.segments, dim, device=device)
    shared = IndexedContext.shared(prototypes[0])
    inferred = torch.randint(0, args.segments, (b,), device=device)

    def dendritic(dedup: bool, sparse_updates: bool = False) -> DendriticMLP:
        return DendriticMLP(dim, classes, (2048, 2048), num_segments=args.segments, context_dim=dim,
                            kw_percent_on=0.05, weight_sparsity=0.5, context_dedup=dedup,
                            sparse_segment_updates=sparse_updates).to(device)

    dense = MLP(dim, classes, (2048, 2048)).to(device)
    train_cases = {
        "dense MLP": make_train_step(dense, x, y, None),
        "dendritic, dedup": make_train_step(dendritic(True), x, y, shared),
        "dendritic, naive": make_train_step(dendritic(False), x, y, prototypes[0].expand(b, -1)),
        "dendritic, sparse": make_train_step(dendritic(True, True), x, y, shared),
    }
    train = time_interleaved(train_cases, device, args.rounds, args.steps)
    eval_model = dendritic(True)
    eval_naive = dendritic(False)
    eval_naive.load_state_dict(eval_model.state_dict())
    eval_cases = {
        "dense MLP": make_eval_step(dense, x, None),
        "dendritic, dedup": make_eval_step(eval_model, x, IndexedContext(prototypes, inferred)),
        "dendritic, naive": make_eval_step(eval_naive, x, prototypes[inferred]),
    }
    evaluation = time_interleaved(eval_cases, device, args.rounds, args.steps)

    print(f"device={device} threads={torch.get_num_threads()} batch={b} segments={args.segments}")
    for title, timings in (("training step (shared context)", train),
                           (f"inference ({args.segments} inferred contexts)", evaluation)):
        print(f"\n{title}")
        for name, seconds in timings.items():
            print(f"  {name:<18} {seconds * 1e3:9.2f} ms")
        print(f"  ratio dendritic(dedup) / dense  = {timings['dendritic, dedup'] / timings['dense MLP']:.2f}x"
              "  (goal <= 1.3x)")
        print(f"  ratio naive / dedup             = "
              f"{timings['dendritic, naive'] / timings['dendritic, dedup']:.2f}x")
        if "dendritic, sparse" in timings:
            print(f"  ratio dendritic(dedup + sparse segment updates) / dense = "
                  f"{timings['dendritic, sparse'] / timings['dense MLP']:.2f}x  (goal <= 1.3x)")


if __name__ == "__main__":
    main()

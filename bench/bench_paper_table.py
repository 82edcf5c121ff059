"""The reproduction table (docs/reproduction.md): every row of the Active Dendrites permuted-MNIST
table run with the ``paper`` preset on full-size permuted Fashion-MNIST (10 tasks by default), beside the
paper's numbers (on MNIST: not the same data).

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_paper_table.py            # run what is missing
    .venv/bin/python bench/bench_paper_table.py --table                      # print the table only
    python bench/bench_paper_table.py --device cuda --parallel 13            # all runs on one GPU
    python bench/bench_paper_table.py --device cuda --only dendritic:0 --precision bf16 --out X

Each run is ``train_continual(ContinualConfig(preset="paper", ...))`` in a fresh subprocess (one
thread each, ``--threads`` for more; ``--parallel N`` runs N at once, e.g. sharing one GPU), so
a run picks up the code as it is when it starts. Runs go in priority order (Active Dendrites and
the dense MLP seed 0, one seed of every other row, then more seeds) and each finished run is
appended to ``--out`` at once, so an interrupted bench keeps what it measured; rerunning skips
the runs already there.
Per-task progress goes to ``<out>.progress/<row>_seed<N>.jsonl`` and the run's state after each
task to ``bench/out/paper_table.checkpoints/`` (git-ignored, deleted when the run ends): a run
stopped mid-way (machine stopped, session ended) resumes from its last finished task, on the
same device, and its wall time counts only the time spent training. The printed wall time is
that of ``--parallel 1``-equivalent work only when the runs did not share the machine: the
table names the device and how many runs shared it. The printed table also replaces what lies
between the ``<!-- paper-table:start -->`` and ``<!-- paper-table:end -->`` markers of ``--page``
(docs/reproduction.md for the default ``--out``).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# label, the config's ``variant`` (workers/continual/presets.py VARIANTS), and the paper's final
# mean accuracy on permuted MNIST at 10 tasks (htmpapers figures.ipynb, see
# /work/notes/ref_continual.md Q8; SI, XdG and SI+XdG there are hard-coded curves, not runs of
# Numenta's code).
ROWS: dict[str, tuple[str, str, float]] = {
    "dendrites": ("Active Dendrites (prototype context)", "active_dendrites", 0.9455),
    "mlp": ("Dense MLP (3-layer)", "mlp", 0.8203),
    "sparse_mlp": ("kWTA + sparse weights, no dendrites", "sparse_only", 0.9133),
    "dendrites_relu": ("Dendrites, ReLU instead of kWTA", "dendrites_relu", 0.8285),
    "online": ("Dendrites, online prototypes (no task boundaries)", "online_prototypes", 0.9432),
    "xdg": ("XdG (task id given; not Numenta code)", "xdg", 0.972),
    "dendrites_si": ("Active Dendrites + SI", "dendrites_si", 0.9723),
    "si": ("SI alone (dense MLP)", "si", 0.971),
    "xdg_si": ("SI + XdG (not Numenta code)", "xdg_si", 0.9795),
}
PRIORITY = [("dendrites", 0), ("mlp", 0), ("sparse_mlp", 0), ("dendrites_relu", 0), ("online", 0),
            ("xdg", 0), ("dendrites_si", 0), ("si", 0), ("xdg_si", 0), ("dendrites", 1),
            ("mlp", 1), ("dendrites", 2), ("mlp", 2)]
DEFAULT_OUT = Path(__file__).parent / "results" / "paper_table.json"
CHECKPOINTS = Path(__file__).parent / "out" / "paper_table.checkpoints"
DOCS_PAGE = Path(__file__).parent.parent / "docs" / "reproduction.md"
MARKERS = ("<!-- paper-table:start -->", "<!-- paper-table:end -->")


def progress_dir(out: Path) -> Path:
    """Where the per-task progress lines of the runs recorded in ``out`` go."""
    return out.with_name(out.stem + ".progress")


def run_one(row: str, seed: int, dataset: str, num_tasks: int, device: str = "cpu",
            precision: str = "fp32", out: Path = DEFAULT_OUT, threads: int = 1) -> dict[str, Any]:
    """One run in this process; the summary the table needs."""
    import torch

    from workers.continual import ContinualConfig, train_continual

    torch.set_num_threads(threads)
    config = ContinualConfig(preset="paper", dataset=dataset, num_tasks=num_tasks, seed=seed,
                             device=device, precision=precision, variant=ROWS[row][1])
    progress = progress_dir(out) / f"{row}_seed{seed}.jsonl"
    progress.parent.mkdir(parents=True, exist_ok=True)
    saved = CHECKPOINTS / f"{out.stem}_{row}_seed{seed}.pt"
    saved.parent.mkdir(parents=True, exist_ok=True)
    state = torch.load(saved, weights_only=False) if saved.exists() else None
    if state is not None and state["config"] != config.model_dump():
        state = None  # another device, precision or code version: start again
    if state is None:
        progress.write_text("")

    def log_task(metrics: dict[str, Any], checkpoint) -> None:  # per-task lines while it runs
        with progress.open("a") as f:
            f.write(json.dumps({k: metrics[k] for k in ("task", "mean_accuracy", "forgetting",
                                                         "wall_time_s")}) + "\n")
        partial = saved.with_suffix(".tmp")
        torch.save(checkpoint(), partial)
        partial.replace(saved)

    results = train_continual(config, log_task, resume_state=state)
    saved.unlink(missing_ok=True)
    return {"row": row, "seed": seed, "final_mean_accuracy": results.final_mean_accuracy,
            "forgetting": results.forgetting, "backward_transfer": results.backward_transfer,
            "task_inference_accuracy": results.task_inference_accuracy,
            "wall_time_s": results.wall_time_s, "device": device_name(results.device),
            "precision": precision, "accuracy_matrix": results.accuracy_matrix,
            "config": results.config}


def device_name(device: str) -> str:
    """``cpu (N cores)`` or the GPU's name."""
    import os

    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"cpu ({os.cpu_count()} cores)"


def _mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def table(runs: list[dict[str, Any]], num_tasks: int, progress: Path, dataset: str = "fashion_mnist") -> str:
    """The Markdown table: one line per row, measured means beside the paper's MNIST number."""
    lines = [f"| Row | seeds | final mean acc. ({dataset}, {num_tasks} tasks) | forgetting | "
             "task inference | wall time / run | paper, MNIST 10 tasks |",
             "|---|---|---|---|---|---|---|"]
    partial = []
    for row, (label, _, paper) in ROWS.items():
        done = [r for r in runs if r["row"] == row]
        unfinished = False
        for path in sorted(progress.glob(f"{row}_seed*.jsonl")):
            seed = int(path.stem.rsplit("seed", 1)[1])
            entries = [json.loads(line) for line in path.read_text().splitlines() if line]
            if entries and not any(r["seed"] == seed for r in done):
                last, unfinished = entries[-1], True
                partial.append(f"- {label}, seed {seed}: unfinished; after task {last['task']} of "
                               f"{num_tasks}: mean accuracy {last['mean_accuracy']:.3f}, "
                               f"forgetting {last['forgetting']:.3f}, "
                               f"{last['wall_time_s'] / 60:.1f} min")
        inference = [r["task_inference_accuracy"] for r in done
                     if r["task_inference_accuracy"] is not None]
        wall = "-"
        if done:
            devices = sorted({r.get("device", "cpu") + (
                f", {r['shared_with']} runs sharing it" if r.get("shared_with", 1) > 1 else "")
                for r in done})
            wall = (f"{statistics.mean(r['wall_time_s'] for r in done) / 60:.1f} min "
                    f"({'; '.join(devices)})")
        lines.append(
            f"| {label} | {len(done) or ('unfinished' if unfinished else 'not run')} | "
            f"{_mean_std([r['final_mean_accuracy'] for r in done])} | "
            f"{_mean_std([r['forgetting'] for r in done])} | {_mean_std(inference)} | {wall} | "
            f"{paper:.3f} |")
    return "\n".join(lines + (["", *partial] if partial else []))


def write_table(page: Path, text: str) -> None:
    """Put ``text`` between the paper-table markers of ``page``, replacing what was there."""
    start, end = MARKERS
    before, found, rest = page.read_text().partition(start)
    if not found or end not in rest:
        raise SystemExit(f"{page}: no {start} ... {end} markers to put the table between")
    page.write_text(f"{before}{start}\n{text}\n{end}{rest.partition(end)[2]}")


def _run_subprocess(row: str, seed: int, args: argparse.Namespace) -> dict[str, Any] | None:
    """``--one ROW SEED`` in a fresh interpreter; its summary, or None (stderr printed)."""
    proc = subprocess.run(
        [sys.executable, __file__, "--one", row, str(seed), "--dataset", args.dataset,
         "--num-tasks", str(args.num_tasks), "--device", args.device, "--precision",
         args.precision, "--out", str(args.out), "--threads", str(args.threads)],
        capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"  {row} seed {seed} failed:\n{proc.stderr[-2000:]}", flush=True)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--num-tasks", type=int, default=10)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--table", action="store_true", help="print the table from --out only")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                        help="bf16: autocast on CUDA (the config's precision field)")
    parser.add_argument("--parallel", type=int, default=1, help="runs at once")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--only", default="", metavar="ROW:SEED,...",
                        help="these runs instead of the priority list")
    parser.add_argument("--page", type=Path, default=None,
                        help="page whose paper-table markers get the table (default: "
                             "docs/reproduction.md when --out is the default, else none)")
    parser.add_argument("--one", nargs=2, metavar=("ROW", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one[0], int(args.one[1]), args.dataset, args.num_tasks,
                                 args.device, args.precision, args.out, args.threads)))
        return
    runs = json.loads(args.out.read_text())["runs"] if args.out.exists() else []
    if not args.table:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        wanted = ([(r, int(n)) for r, n in (item.split(":") for item in args.only.split(","))]
                  if args.only else PRIORITY)
        todo = [(row, seed) for row, seed in wanted
                if not any(r["row"] == row and r["seed"] == seed for r in runs)]
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(max(args.parallel, 1)) as pool:
            futures = {pool.submit(_run_subprocess, row, seed, args): (row, seed)
                       for row, seed in todo}
            print(f"running {len(todo)} runs, {args.parallel} at a time ...", flush=True)
            for future in concurrent.futures.as_completed(futures):
                result = future.result()
                if result is None:
                    continue
                result["shared_with"] = min(args.parallel, len(todo))
                runs.append(result)
                args.out.write_text(json.dumps({"dataset": args.dataset,
                                                "num_tasks": args.num_tasks, "runs": runs},
                                               indent=1))
                print(f"  {result['row']} seed {result['seed']}: "
                      f"{result['final_mean_accuracy']:.4f} in {result['wall_time_s']:.0f}s",
                      flush=True)
        print(f"all {len(todo)} runs: {time.perf_counter() - started:.1f}s wall", flush=True)
    text = table(runs, args.num_tasks, progress_dir(args.out), args.dataset)
    print(text)
    page = args.page or (DOCS_PAGE if args.out == DEFAULT_OUT else None)
    if page:
        write_table(page, text)


if __name__ == "__main__":
    main()

"""MT10 learning on CPU, dendritic vs MLP: the paper preset shrunk to CPU size (2 x 400 hidden,
batch 256, 400K env steps, 500 gradient steps per epoch of 5,000 env steps (twice the paper's
update-to-data ratio, to learn within the CPU budget), 2 stochastic eval episodes per task every
40K steps), one JSON line per evaluation under ``bench/results/mt10_cpu/``, then one figure of mean
and per-task success for both arms, beside Numenta's own curves (:data:`REFERENCE_SUCCESS`).

    OMP_NUM_THREADS=1 .venv/bin/python bench/mt10_cpu_curves.py run --model dendritic --seed 0
    OMP_NUM_THREADS=1 .venv/bin/python bench/mt10_cpu_curves.py run --model mlp --seed 0
    .venv/bin/python bench/mt10_cpu_curves.py plot     # -> docs/mt10_cpu_curves.png

    # on a GPU: the paper preset unchanged (2 x 2800, batch 2560, mixed precision), for as long
    # as the run is allowed; each evaluation line carries updates and wall time so far
    python bench/mt10_cpu_curves.py run --model dendritic --paper-size --device cuda --out DIR

Everything not overridden below is ``preset="paper"`` (fixed goals, epochs of 500 steps x 10
tasks then updates, stochastic evaluation, success at any step, no random warm-up).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from workers.metaworld import MTSACConfig, train_mtsac

OUT = Path("bench/results/mt10_cpu")
FIGURE = Path("docs/mt10_cpu_curves.png")
REFERENCE_STEPS_M = [0.2, 0.4, 1, 2, 5, 10]
REFERENCE_SUCCESS = {"dendritic": [0.01, 0.05, 0.17, 0.33, 0.68, 0.81],
                     "mlp": [0.14, 0.24, 0.39, 0.59, 0.72, 0.76]}
"""Numenta's MT10 mean success at 2 x 2800 (mean over their 10 exported runs per arm, as quoted
in issue 25; the exported data are not in this repository), at REFERENCE_STEPS_M million env
steps: their dendritic arm passes the MLP only after about 8M steps."""
CPU_OVERRIDES = {"hidden_sizes": [400, 400], "batch_size": 256, "total_steps": 400_000,
                 "updates_per_step": 0.1, "eval_every": 40_000, "eval_episodes": 2,
                 "buffer_size": 400_000, "device": "cpu"}


def run(model: str, seed: int, out: Path = OUT, paper_size: bool = False,
        device: str = "cpu") -> None:
    """Train one arm, appending each evaluation's metrics to ``out/<model>_s<seed>.jsonl``
    (CPU-size overrides unless ``paper_size``)."""
    if device == "cpu":
        torch.set_num_threads(1)
    overrides = {"device": device} if paper_size else {**CPU_OVERRIDES, "device": device}
    config = MTSACConfig(preset="paper", model=model, seed=seed, **overrides)
    out.mkdir(parents=True, exist_ok=True)
    log = out / f"{model}_s{seed}.jsonl"
    log.write_text(json.dumps({"config": config.model_dump(mode="json")}) + "\n")

    def on_eval(metrics: dict, _checkpoint) -> None:
        with log.open("a") as handle:
            handle.write(json.dumps(metrics) + "\n")

    train_mtsac(config, on_eval)


def plot() -> None:
    """Mean success (left) and per-task success (right, one panel per arm) from the logs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = {}
    for log in sorted(OUT.glob("*.jsonl")):
        lines = [json.loads(line) for line in log.read_text().splitlines()[1:]]
        if lines:
            runs[log.stem] = lines
    fig, axes = plt.subplots(1, 4, figsize=(22, 4.8))
    for name, rows in runs.items():
        steps = [r["env_steps"] / 1e3 for r in rows]
        axes[0].plot(steps, [r["success_rate"] for r in rows], marker="o", ms=3,
                     label=f"{name} (to {rows[-1]['env_steps'] // 1000}K steps, "
                           f"last-10 mean {rows[-1]['success_rate_last10']:.2f})")
    axes[0].set(title="MT10 mean success (2 stochastic episodes per task per eval)",
                xlabel="env steps (K, all 10 tasks)", ylabel="success rate", ylim=(-0.02, 1.02))
    axes[0].legend(fontsize=8)
    for model, success in REFERENCE_SUCCESS.items():
        axes[3].plot(REFERENCE_STEPS_M, success, marker="s", label=f"Numenta {model} (10 runs)")
    axes[3].axvline(CPU_OVERRIDES["total_steps"] / 1e6, color="grey", ls=":",
                    label="the CPU runs' 400K steps")
    axes[3].set(title="Numenta's MT10 (2 x 2800), mean of 10 runs per arm", xscale="log",
                xlabel="env steps (M, log)", ylabel="success rate", ylim=(-0.02, 1.02))
    axes[3].legend(fontsize=8)
    for axis, model in zip(axes[1:3], ("dendritic", "mlp"), strict=True):
        rows = next((r for n, r in runs.items() if n.startswith(model)), None)
        if rows is None:
            continue
        steps = [r["env_steps"] / 1e3 for r in rows]
        for task in [k for k in rows[0] if k.startswith("success_") and k.endswith("-v3")]:
            axis.plot(steps, [r[task] for r in rows], marker="o", ms=3, label=task.removeprefix("success_"))
        axis.set(title=f"{model}: per-task success", xlabel="env steps (K)", ylim=(-0.02, 1.02))
        axis.legend(fontsize=6, ncol=2)
    fig.suptitle("MT10 on CPU (first three panels): paper preset at 2 x 400 hidden, batch 256, 0.1 "
                 "updates per env step, one seed per arm; right: Numenta's runs at full size")
    fig.tight_layout()
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURE, dpi=110)
    print(f"wrote {FIGURE}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("run")
    one.add_argument("--model", choices=["dendritic", "mlp"], required=True)
    one.add_argument("--seed", type=int, default=0)
    one.add_argument("--out", type=Path, default=OUT, help="folder of the evaluation logs")
    one.add_argument("--paper-size", action="store_true", help="the paper preset unshrunk")
    one.add_argument("--device", default="cpu")
    sub.add_parser("plot")
    args = parser.parse_args()
    if args.command == "run":
        run(args.model, args.seed, args.out, args.paper_size, args.device)
    else:
        plot()


if __name__ == "__main__":
    main()

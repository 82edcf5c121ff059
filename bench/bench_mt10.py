"""Meta-World throughput, side by side in one run: MT10 env-steps/s (sync vector env of the 10
tasks vs one single-task env stepped alone), and SAC gradient updates/s for the dendritic vs the
MLP networks at the same widths.

    .venv/bin/python bench/bench_mt10.py [--steps 3000] [--hidden 400] [--updates 200]
    .venv/bin/python bench/bench_mt10.py --paper-updates 3   # paper preset (2 x 2800, batch 2560)
    .venv/bin/python bench/bench_mt10.py --sac-ratio 5 [--threads 1 --clock cpu] [--paper]
        # SAC update dendritic / MLP only, interleaved rounds (median), same batches for both
    .venv/bin/python bench/bench_mt10.py --sac-ratio 1 --profile 25 --threads 1
        # then torch.profiler's top ops of 10 updates per arm

``--paper-updates N`` times N SAC updates of the ``paper`` preset per arm on this machine's
device and counts one update's FLOPs (``torch.utils.flop_counter``), the inputs of the README's
GPU-hours estimate for ``sweeps/examples/mt10_paper.yaml``.

Target: >= 2,000 env-steps/s for MT10 stepping on 2 cores (random actions, no learning).
"""

from __future__ import annotations

import argparse
import functools
import itertools
import statistics
import time
from collections.abc import Iterator

import gymnasium as gym
import metaworld  # noqa: F401  (registers Meta-World/*)
import torch
from bench_dendrites import profile_table  # (beside this script, on its path)

from workers.metaworld import MTSACConfig, make_envs
from workers.metaworld.replay import MultiTaskReplay
from workers.metaworld.sac import MultiTaskSAC


def env_steps_per_s(envs, steps: int) -> float:
    envs.reset(seed=0)
    num = getattr(envs, "num_envs", 1)
    start = time.perf_counter()
    for _ in range(steps // num):
        result = envs.step(envs.action_space.sample())
        if num == 1 and (result[2] or result[3]):
            envs.reset()
    return (steps // num) * num / (time.perf_counter() - start)


def paper_update_cost(model: str, updates: int) -> tuple[float, float]:
    """Seconds per update and FLOPs per update for the ``paper`` preset's ``model`` arm."""
    from torch.utils.flop_counter import FlopCounterMode

    config = MTSACConfig(preset="paper", model=model)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    agent = MultiTaskSAC(config, 39, 4, 10, device)
    replay = MultiTaskReplay(10_000, 39, 4)
    replay.add(torch.randn(10_000, 39).numpy(), torch.rand(10_000, 4).numpy() * 2 - 1,
               torch.randn(10_000).numpy(), torch.randn(10_000, 39).numpy(),
               torch.zeros(10_000).numpy(), torch.randint(0, 10, (10_000,)).numpy())
    counter = FlopCounterMode(display=False)
    with counter:
        agent.update(replay.sample(config.batch_size, device))  # also the warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(updates):
        agent.update(replay.sample(config.batch_size, device))
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / updates, float(counter.get_total_flops())


def updates_per_s(config: MTSACConfig, updates: int) -> float:
    agent = MultiTaskSAC(config, 39, 4, 10, torch.device("cpu"))
    replay = MultiTaskReplay(10_000, 39, 4)
    replay.add(torch.randn(10_000, 39).numpy(), torch.rand(10_000, 4).numpy() * 2 - 1,
               torch.randn(10_000).numpy(), torch.randn(10_000, 39).numpy(),
               torch.zeros(10_000).numpy(), torch.randint(0, 10, (10_000,)).numpy())
    for _ in range(5):
        agent.update(replay.sample(config.batch_size, agent.device))
    start = time.perf_counter()
    for _ in range(updates):
        agent.update(replay.sample(config.batch_size, agent.device))
    return updates / (time.perf_counter() - start)


def _update_from(agent: MultiTaskSAC, batches: Iterator) -> None:
    agent.update(next(batches))


def sac_update_ratio(configs: dict[str, MTSACConfig], rounds: int, updates: int,
                     clock=time.perf_counter, profile_rows: int = 0) -> dict[str, float]:
    """Median seconds per ``MultiTaskSAC.update`` of each config, measured in interleaved rounds
    of ``updates`` updates on the same replayed batches (random transitions, 10 tasks); with
    ``profile_rows``, then torch.profiler's top ops of 10 updates per config printed."""
    replay = MultiTaskReplay(20_000, 39, 4)
    replay.add(torch.randn(20_000, 39).numpy(), torch.rand(20_000, 4).numpy() * 2 - 1,
               torch.randn(20_000).numpy(), torch.randn(20_000, 39).numpy(),
               torch.zeros(20_000).numpy(), torch.randint(0, 10, (20_000,)).numpy())
    agents = {name: MultiTaskSAC(config, 39, 4, 10, torch.device("cpu")) for name, config in configs.items()}
    batch_size = next(iter(configs.values())).batch_size
    batches = [replay.sample(batch_size, torch.device("cpu")) for _ in range(4)]
    for agent in agents.values():  # warm-up
        for batch in batches[:2]:
            agent.update(batch)
    samples: dict[str, list[float]] = {name: [] for name in agents}
    for _ in range(rounds):
        for name, agent in agents.items():
            start = clock()
            for i in range(updates):
                agent.update(batches[i % len(batches)])
            samples[name].append((clock() - start) / updates)
    for name, agent in agents.items() if profile_rows else ():
        print(f"\n== SAC update, {name}: top {profile_rows} ops by self CPU time over 10 updates")
        step = functools.partial(_update_from, agent, itertools.cycle(batches))
        print(profile_table(step, 10, profile_rows))
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--hidden", type=int, default=400)
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--paper-updates", type=int, default=0,
                        help="time this many paper-preset updates per arm, then stop")
    parser.add_argument("--sac-ratio", type=int, default=0, metavar="ROUNDS",
                        help="only the SAC update ratio dendritic / MLP, in this many interleaved rounds")
    parser.add_argument("--paper", action="store_true", help="--sac-ratio with the paper preset")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="cpu: this process's CPU time (with --threads 1: robust on a shared machine)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="with --sac-ratio: also print torch.profiler's top N ops per arm")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch threads {torch.get_num_threads()}")
    if args.sac_ratio:
        shape = {"preset": "paper"} if args.paper else {
            "hidden_sizes": [args.hidden, args.hidden], "batch_size": args.batch_size}
        configs = {model: MTSACConfig(**shape, model=model, device="cpu") for model in ("dendritic", "mlp")}
        clock = time.process_time if args.clock == "cpu" else time.perf_counter
        per_round = 1 if args.paper else max(1, args.updates // 20)
        seconds = sac_update_ratio(configs, args.sac_ratio, per_round, clock, args.profile)
        config = configs["dendritic"]
        print(f"SAC update ({args.clock} clock), 2x{config.hidden_sizes[0]}, batch {config.batch_size}: "
              f"dendritic {seconds['dendritic'] * 1e3:.1f} ms, MLP {seconds['mlp'] * 1e3:.1f} ms; "
              f"dendritic / MLP = {seconds['dendritic'] / seconds['mlp']:.2f}x")
        return
    if args.paper_updates:
        for model in ("dendritic", "mlp"):
            seconds, flops = paper_update_cost(model, args.paper_updates)
            print(f"paper preset {model}: {seconds:.2f} s/update ({1 / seconds:.3f} updates/s), "
                  f"{flops / 1e9:.0f} GFLOP/update, {flops / seconds / 1e9:.1f} GFLOP/s achieved")
        return
    mt10, _ = make_envs(MTSACConfig(env="MT10"), seed=0)
    mt10_async, _ = make_envs(MTSACConfig(env="MT10", vector="async"), seed=0)
    single = gym.make("Meta-World/MT1", env_name="reach-v3", seed=0)
    rows = [("MT10 sync vector (10 tasks)", env_steps_per_s(mt10, args.steps)),
            ("MT10 async vector (10 procs)", env_steps_per_s(mt10_async, args.steps)),
            ("single env (reach-v3)", env_steps_per_s(single, args.steps))]
    for env in (mt10, mt10_async, single):
        env.close()
    for name, rate in rows:
        print(f"{name:<32} {rate:8.0f} env-steps/s")
    print(f"MT10 sync / single env: {rows[0][1] / rows[2][1]:.2f}x")
    hidden = [args.hidden, args.hidden]
    rates = {model: updates_per_s(MTSACConfig(model=model, hidden_sizes=hidden, batch_size=args.batch_size),
                                  args.updates) for model in ("dendritic", "mlp")}
    dendritic, mlp = rates["dendritic"], rates["mlp"]
    print(f"SAC updates/s (2x{args.hidden}, batch {args.batch_size}): dendritic {dendritic:.1f}, "
          f"MLP {mlp:.1f}; MLP/dendritic = {mlp / dendritic:.2f}x")


if __name__ == "__main__":
    main()

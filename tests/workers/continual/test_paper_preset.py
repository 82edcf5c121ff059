"""The ``paper`` preset follows Numenta's permuted-MNIST protocol (/work/notes/ref_continual.md),
and the trainer does what the resolved config says."""

import pytest
import torch

from dendrites import DendriteSegments
from workers.continual import ContinualConfig, ContinualTrainer
from workers.continual.datasets import load_dataset
from workers.continual.tasks import PermutedTaskStream
from workers.continual.trainer import build_consolidation

SMALL = dict(preset="paper", dataset="digits", hidden_sizes=[48, 48], kw_percent_on=0.25,
             epochs=1, batch_size=64)


def test_paper_preset_resolves_the_reference_protocol():
    config = ContinualConfig(preset="paper", num_tasks=10)
    assert config.reset_optimizer is True
    assert config.init == "modified" and config.context_percent_on == 0.1
    assert config.sparse_head is True and config.weight_sparsity == 0.5
    assert config.drop_last is True and config.permutation_seed == 42
    assert (config.batch_size, config.eval_batch_size) == (256, 512)
    assert (config.epochs, config.lr) == (3, 5e-4)
    assert config.num_segments == 10 and config.kw_percent_on == 0.05
    assert (ContinualConfig(preset="paper", num_tasks=100).epochs,
            ContinualConfig(preset="paper", num_tasks=100).lr) == (3, 1e-4)


def test_paper_preset_rows():
    si = ContinualConfig(preset="paper", consolidation="si")
    assert si.reset_optimizer is False and si.consolidate_segments is False
    assert (si.epochs, si.consolidation_strength, si.si_damping) == (20, 0.1, 0.1)
    assert si.consolidation_start_task == 2 and si.hidden_sizes == [2000, 2000]
    mlp = ContinualConfig(preset="paper", model="mlp")
    assert (mlp.epochs, mlp.lr, mlp.kw_percent_on, mlp.weight_sparsity) == (5, 3e-6, None, 0.0)
    assert mlp.layer_input_densities == [1.0, 0.5, 0.5]
    relu = ContinualConfig(preset="paper", kw_percent_on=None)
    assert relu.kw_percent_on is None and (relu.epochs, relu.lr) == (5, 5e-6)
    assert ContinualConfig(preset="paper", model="sparse_mlp").lr == 1e-4
    assert ContinualConfig(preset="paper", context="online_prototype").cluster_pixels == 256
    assert ContinualConfig(preset="paper", model="xdg").context == "onehot"


def test_explicit_values_override_the_preset():
    config = ContinualConfig(preset="paper", lr=1e-2, reset_optimizer=False, epochs=7)
    assert (config.lr, config.reset_optimizer, config.epochs) == (1e-2, False, 7)


def test_project_preset_is_the_field_defaults():
    assert ContinualConfig(preset="project").model_dump(exclude={"preset"}) == \
        ContinualConfig().model_dump(exclude={"preset"})


def test_task_zero_is_unpermuted_and_permutations_ignore_the_model_seed():
    dataset = load_dataset("digits")
    stream = PermutedTaskStream(dataset, 4, seed=42)
    assert torch.equal(stream.permutations[0], torch.arange(dataset.input_dim))
    assert torch.equal(stream.train_split(0)[0], dataset.train_x)
    assert all(not torch.equal(p, stream.permutations[0]) for p in stream.permutations[1:])
    # task k's permutation does not depend on the number of tasks
    longer = PermutedTaskStream(dataset, 6, seed=42)
    assert all(torch.equal(p, q) for p, q in zip(stream.permutations, longer.permutations[:4],
                                                 strict=True))
    a = ContinualTrainer(ContinualConfig(**SMALL, num_tasks=3, seed=0))
    b = ContinualTrainer(ContinualConfig(**SMALL, num_tasks=3, seed=5))
    assert all(torch.equal(p, q) for p, q in zip(a.stream.permutations, b.stream.permutations,
                                                 strict=True))


def _adam_steps(trainer: ContinualTrainer, param: torch.Tensor) -> int:
    for optimizer in trainer.optimizer.optimizers:
        if param in optimizer.state:
            return int(optimizer.state[param]["step"])
    raise AssertionError("parameter not in any optimiser")


@pytest.mark.parametrize("reset", [True, False])
def test_optimizer_is_new_at_each_task_under_the_paper_preset(reset):
    values = dict(SMALL, num_tasks=2) if reset else dict(SMALL, num_tasks=2, consolidation="si")
    trainer = ContinualTrainer(ContinualConfig(**values))
    assert trainer.config.reset_optimizer is reset
    trainer.step()
    trainer.step()
    steps = _adam_steps(trainer, trainer.model.head.weight)
    assert steps == trainer.steps_per_task() * (1 if reset else 2)


def test_drop_last_drops_the_partial_batch():
    trainer = ContinualTrainer(ContinualConfig(**SMALL, num_tasks=1))
    x, y = trainer.stream.train_split(0)
    sizes = [len(xb) for xb, _ in trainer._batches(x, y)]
    assert sizes == [64] * (len(x) // 64)
    assert trainer.steps_per_task() == len(x) // 64


def test_paper_network_has_the_sparse_head_and_modified_init():
    trainer = ContinualTrainer(ContinualConfig(**SMALL, num_tasks=2))
    head = trainer.model.head.weight
    assert torch.all((head == 0).sum(dim=1) == 24)
    second = trainer.model.layers[1].linear.weight
    assert second.abs().max() > 1 / (0.5 * 48) ** 0.5  # above the bound without kWTA density


def test_si_under_the_paper_preset_covers_everything_but_segments():
    trainer = ContinualTrainer(ContinualConfig(**SMALL, num_tasks=2, consolidation="si"))
    si = build_consolidation(trainer.config, trainer.model)
    segment_ids = {id(m.weight) for m in trainer.model.modules() if isinstance(m, DendriteSegments)}
    assert not segment_ids & {id(p) for p in si.params.values()}
    covered = set(si.params)
    assert {"head.weight", "head.bias", "layers.0.linear.weight", "layers.0.linear.bias",
            "layers.1.linear.weight", "layers.1.linear.bias"} <= covered


def test_si_penalty_starts_at_the_configured_task(monkeypatch):
    trainer = ContinualTrainer(ContinualConfig(**SMALL, num_tasks=3, consolidation="si"))
    calls = []
    penalty = trainer.consolidation.penalty
    monkeypatch.setattr(trainer.consolidation, "penalty",
                        lambda: calls.append(trainer.next_task) or penalty())
    for _ in range(3):
        trainer.step()
    assert set(calls) == {2}  # reference: no SI penalty while training task index 1


def test_test_time_context_is_the_nearest_prototype_not_the_task_id():
    trainer = ContinualTrainer(ContinualConfig(**SMALL, num_tasks=2))
    trainer.step()
    trainer.step()
    # serve task 0's test images as "task 1": a faithful evaluation infers prototype 0 for them
    original = trainer.stream.test_split
    trainer.stream.test_split = lambda task: original(0)
    _, inference = trainer.evaluate(range(2))
    assert inference[0] > 0.8 and inference[1] < 0.2  # right for task 0, wrong for "task 1"


@pytest.mark.parametrize("num_tasks", [2, 5, 10, 25, 50, 100])
def test_paper_table_specs_cover_every_row(num_tasks):
    from sweeps.plan import SweepPlan
    from sweeps.spec import load_spec
    from workers.continual.presets import VARIANTS

    spec = load_spec(f"sweeps/examples/paper_table_{num_tasks}.yaml")
    space = SweepPlan.resolve(spec).param_space()
    assert space["preset"] == "paper" and space["dataset"] == "fashion_mnist"
    variants = spec.search_space["variant"].values
    assert sorted(variants) == sorted(VARIANTS)
    for variant in variants:
        config = ContinualConfig(**{**spec.params, "dataset": "fashion_mnist", "variant": variant})
        assert config.num_tasks == num_tasks and config.drop_last
        assert config.reset_optimizer is (config.consolidation != "si")


def test_cli_preset_writes_the_resolved_config(tmp_path):
    import json

    from dlab.cli import main as dlab_main

    out = tmp_path / "paper.json"
    assert dlab_main(["run", "continual", "--preset", "paper", "--num-tasks", "2", "--hidden-sizes",
                      "32", "32", "--epochs", "1", "--json", str(out), "--quiet"]) == 0
    config = json.loads(out.read_text())["config"]
    assert config["preset"] == "paper" and config["reset_optimizer"] is True
    assert (config["init"], config["context_percent_on"]) == ("modified", 0.1)
    assert (config["sparse_head"], config["weight_sparsity"]) == (True, 0.5)
    assert (config["drop_last"], config["permutation_seed"], config["lr"]) == (True, 42, 5e-4)


def test_permutations_are_the_references_seed_42_draws():
    """Reference: ``torch.manual_seed(42)``, then one ``torch.randperm`` per task 1, 2, ..."""
    stream = PermutedTaskStream(load_dataset("digits"), 4, seed=42)
    with torch.random.fork_rng():
        torch.manual_seed(42)
        expected = [torch.randperm(64) for _ in range(3)]
    assert all(torch.equal(p, q) for p, q in zip(stream.permutations[1:], expected, strict=True))

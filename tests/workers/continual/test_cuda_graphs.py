"""Training steps replayed as CUDA graphs (``cuda_graphs``) train exactly like eager steps.

The graph tests need a CUDA device and are skipped without one (CI has none); run them on a GPU
machine with ``pytest tests/workers/continual/test_cuda_graphs.py``. The eligibility tests run
everywhere.
"""

import pytest
import torch

from workers.continual import ContinualConfig, ContinualTrainer
from workers.continual import trainer as trainer_module
from workers.continual.datasets import Dataset
from workers.continual.trainer import cuda_graphs_apply
from workers.cuda_graphs import GraphedStep

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture
def graphed_steps(monkeypatch) -> list[GraphedStep]:
    """Every GraphedStep the trainer makes from here on, in order."""
    steps: list[GraphedStep] = []

    class RecordedStep(GraphedStep):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            steps.append(self)

    monkeypatch.setattr(trainer_module, "GraphedStep", RecordedStep)
    return steps


def _dataset() -> Dataset:
    """Ten Gaussian classes in 64 dimensions: 600 training samples (9 full batches of 64 and one
    of 24 per epoch), 200 test samples."""
    generator = torch.Generator().manual_seed(0)
    centres = torch.randn(10, 64, generator=generator) * 2

    def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, 10, (n,), generator=generator)
        return centres[y] + torch.randn(n, 64, generator=generator), y

    (train_x, train_y), (test_x, test_y) = split(600), split(200)
    return Dataset("gaussian", train_x, train_y, test_x, test_y, 10)


def _config(**overrides) -> ContinualConfig:
    return ContinualConfig(**{"model": "dendritic", "num_tasks": 3, "hidden_sizes": [128, 128],
                              "epochs": 2, "batch_size": 64, "lr": 1e-3, "device": "cuda",
                              **overrides})


def _train(config: ContinualConfig, dataset: Dataset) -> ContinualTrainer:
    trainer = ContinualTrainer(config, dataset)
    while not trainer.finished:
        trainer.step()
    return trainer


@pytest.mark.parametrize("overrides", [
    {},
    {"model": "mlp"},
    {"context": "onehot"},
    {"precision": "bf16"},
    {"reset_optimizer": True, "context_dedup": False},
    {"batch_size": 192},  # 3 full batches and a partial one: the graph waits for a full one
])
@cuda
def test_graphed_training_follows_eager_training(overrides, graphed_steps):
    """Every full batch after the warm-up is replayed from a graph, the partial batch runs
    eagerly, and the weights and accuracies end where eager training ends them."""
    dataset = _dataset()
    graphed = _train(_config(**overrides), dataset)
    assert graphed.graphs and len(graphed_steps) == 3
    assert all(step.captured for step in graphed_steps)
    full = graphed.config.batch_size
    assert all(step._inputs[0].shape[0] == full for step in graphed_steps)  # (replayed: the full batches)
    eager = _train(_config(**overrides, cuda_graphs=False), dataset)
    assert not eager.graphs
    if overrides.get("precision") == "bf16":
        # bf16 rounding magnifies the GPU's run-to-run noise (the atomic adds of the kWTA
        # backward): two eager bf16 runs on an H200 ended 0.4-1.4% apart in mean absolute weight
        # and up to 0.025 apart in accuracy, graphed vs eager 0.1-0.4%. So: the same up to that.
        for (name, ours), theirs in zip(graphed.model.state_dict().items(),
                                        eager.model.state_dict().values(), strict=True):
            if ours.is_floating_point():
                assert (ours - theirs).abs().mean() <= 0.03 * theirs.abs().mean(), name
        accuracy_tol, loss_rel = 0.05, 1e-3
    else:  # the same kernels in the same order: the same numbers
        for (name, ours), theirs in zip(graphed.model.state_dict().items(),
                                        eager.model.state_dict().values(), strict=True):
            torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5, msg=name)
        accuracy_tol, loss_rel = 0.0, 1e-4
    for ours, theirs in zip(graphed.accuracy_matrix, eager.accuracy_matrix, strict=True):
        assert ours == pytest.approx(theirs, abs=accuracy_tol)
    assert [r.train_loss for r in graphed.reports] == pytest.approx(
        [r.train_loss for r in eager.reports], rel=loss_rel)


@cuda
def test_graphed_run_resumes_from_a_checkpoint():
    """A checkpoint of a graphed run (capturable Adam state) resumes to the same end."""
    dataset = _dataset()
    whole = _train(_config(), dataset)
    first = ContinualTrainer(_config(), dataset)
    first.step()
    state = first.state_dict()
    resumed = ContinualTrainer(_config(), dataset)
    resumed.load_state_dict(state)
    while not resumed.finished:
        resumed.step()
    assert resumed.accuracy_matrix == whole.accuracy_matrix


@cuda
def test_cpu_checkpoint_resumes_on_the_gpu_with_graphs(graphed_steps):
    """A checkpoint written on CPU (row-sparse segment optimiser, step counts on the host)
    resumes on CUDA: its state regrouped for the dense, capturable optimiser, and the next
    tasks' steps still captured."""
    dataset = _dataset()
    on_cpu = ContinualTrainer(_config(device="cpu"), dataset)
    on_cpu.step()
    on_gpu = ContinualTrainer(_config(), dataset)
    on_gpu.load_state_dict(on_cpu.state_dict())
    while not on_gpu.finished:
        on_gpu.step()
    assert len(graphed_steps) == 2
    assert all(step.captured and not step.failed for step in graphed_steps)
    assert on_gpu.accuracy_matrix[0] == on_cpu.accuracy_matrix[0]
    assert on_gpu.accuracy_matrix[-1][-1] > 0.5  # (ten classes: it learned the last task)


def test_graphs_apply_only_to_steps_without_per_batch_host_work():
    assert cuda_graphs_apply(_config())
    assert cuda_graphs_apply(_config(model="mlp"))
    assert not cuda_graphs_apply(_config(cuda_graphs=False))
    assert not cuda_graphs_apply(_config(consolidation="si"))
    assert not cuda_graphs_apply(_config(context="online_prototype"))
    assert not cuda_graphs_apply(_config(sparse_segment_updates=True))
    assert not cuda_graphs_apply(_config(model="xdg"))


def test_cpu_runs_are_not_graphed():
    trainer = ContinualTrainer(_config(device="cpu", num_tasks=1, epochs=1), _dataset())
    assert not trainer.graphs

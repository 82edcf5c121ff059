import gzip
import itertools
import json

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from dendrites.optim import LIVE_ROWS
from dlab.cli import main as dlab_main
from workers.continual import ContinualConfig, ContinualTrainer, train_continual
from workers.continual.datasets import DatasetNotFoundError, load_dataset
from workers.continual.metrics import backward_transfer, forgetting
from workers.continual.tasks import PermutedTaskStream

TINY = dict(dataset="digits", num_tasks=3, hidden_sizes=[32, 32], epochs=1, batch_size=64,
            kw_percent_on=0.25)


@pytest.mark.parametrize(
    ("override", "field"),
    [
        (dict(dataset="cifar"), "dataset"),
        (dict(num_segments=0), "num_segments"),
        (dict(num_segments=-3), "num_segments"),
        (dict(kw_percent_on=0.0), "kw_percent_on"),
        (dict(kw_percent_on=1.2), "kw_percent_on"),
        (dict(weight_sparsity=1.0), "weight_sparsity"),
        (dict(weight_sparsity=-0.1), "weight_sparsity"),
        (dict(num_tasks=0), "num_tasks"),
        (dict(hidden_sizes=[]), "hidden_sizes"),
        (dict(hidden_sizes=[16, 0]), "hidden_sizes"),
        (dict(model="transformer"), "model"),
        (dict(device="tpu"), "device"),
        (dict(segmnets=3), "segmnets"),
    ],
)
def test_invalid_config_is_rejected_with_the_field_named(override, field):
    with pytest.raises(ValidationError) as info:
        ContinualConfig(**{**TINY, **override})
    assert field in str(info.value)


def test_segments_default_to_number_of_tasks():
    assert ContinualConfig(num_tasks=7).num_segments == 7


def test_metrics_on_a_hand_computed_matrix():
    matrix = [[0.9], [0.8, 0.95], [0.6, 0.9, 0.97]]
    assert backward_transfer(matrix) == pytest.approx(((0.6 - 0.9) + (0.9 - 0.95)) / 2)
    assert forgetting(matrix) == pytest.approx(((0.9 - 0.6) + (0.95 - 0.9)) / 2)
    assert backward_transfer([[0.5]]) == 0.0


def test_forgetting_uses_the_best_earlier_accuracy_not_the_one_just_after_training():
    # task 0 improves after task 1 (0.5 -> 0.9) before dropping to 0.6: it forgot 0.3, not -0.1
    matrix = [[0.5], [0.9, 0.8], [0.6, 0.7, 0.9]]
    assert forgetting(matrix) == pytest.approx(((0.9 - 0.6) + (0.8 - 0.7)) / 2)


def test_forgetting_over_a_schedule_skips_the_rows_not_evaluated():
    # row 2 evaluated task 2 only (None: not evaluated); the last row is full
    matrix = [[0.5], [0.9, 0.8], [None, None, 0.7], [0.6, 0.7, 0.6, 0.9]]
    assert forgetting(matrix) == pytest.approx(((0.9 - 0.6) + (0.8 - 0.7) + (0.7 - 0.6)) / 3)
    assert backward_transfer(matrix) == pytest.approx(((0.6 - 0.5) + (0.7 - 0.8) + (0.6 - 0.7)) / 3)


def test_permutations_are_seeded_and_distinct():
    dataset = load_dataset("digits")
    a, b = PermutedTaskStream(dataset, 3, seed=4), PermutedTaskStream(dataset, 3, seed=4)
    assert all(torch.equal(p, q) for p, q in zip(a.permutations, b.permutations, strict=True))
    assert not torch.equal(a.permutations[0], a.permutations[1])
    x0, y0 = a.train_split(1)
    assert torch.equal(x0, dataset.train_x[:, a.permutations[1]])
    assert torch.equal(y0, dataset.train_y)


def train(values: dict, report=None, resume_state=None):
    return train_continual(ContinualConfig(**values), report, resume_state)


def test_train_reports_after_every_task():
    reports = []
    results = train(TINY, lambda metrics, _checkpoint: reports.append(metrics))
    assert [r["task"] for r in reports] == [0, 1, 2]
    assert reports[-1]["accuracy_matrix"] == results.accuracy_matrix
    assert [len(row) for row in results.accuracy_matrix] == [1, 2, 3]
    assert results.final_mean_accuracy == pytest.approx(np.mean(results.accuracy_matrix[-1]))
    assert results.task_inference_accuracy is not None and results.task_inference_accuracy > 0.9


def test_mlp_and_oracle_context_runs_have_no_task_inference():
    assert train({**TINY, "model": "mlp"}).task_inference_accuracy is None
    assert train({**TINY, "context": "onehot"}).task_inference_accuracy is None


@pytest.mark.parametrize("consolidation", ["si", "ewc"])
def test_consolidation_restrains_drift_from_the_previous_task(consolidation):
    """Trained with a strong penalty, the importance-weighted drift of the covered weights during
    the second task is far smaller than without one (task 0 is trained identically in both)."""
    drifts = []
    for strength in (0.0, 1e3):
        trainer = ContinualTrainer(ContinualConfig(**{**TINY, "num_tasks": 2, "epochs": 2},
                                                   consolidation=consolidation,
                                                   consolidation_strength=strength))
        trainer.step()
        importance = {n: t.clone() for n, t in trainer.consolidation.importance.items()}
        before = {n: p.detach().clone() for n, p in trainer.consolidation.params.items()}
        assert sum(t.sum().item() for t in importance.values()) > 0
        trainer.step()
        drifts.append(sum((importance[n] * (p - before[n]).pow(2)).sum().item()
                          for n, p in trainer.consolidation.params.items()))
    assert drifts[1] < 0.2 * drifts[0]


def test_resume_from_checkpoint_matches_uninterrupted_run():
    full = train(TINY)
    saved = {}

    def stop_after_first_task(metrics, checkpoint):
        if metrics["task"] == 0:
            saved["state"] = checkpoint()
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(TINY, stop_after_first_task)
    resumed = train(TINY, resume_state=saved["state"])
    assert resumed.accuracy_matrix == full.accuracy_matrix


PAPER_SMALL = dict(preset="paper", variant="active_dendrites", dataset="digits", num_tasks=3,
                   epochs=2, hidden_sizes=[256, 256], lr=1e-3)
"""The paper preset at a size that trains in seconds: kWTA, the CPU's row-sparse segment Adam
(rows that rest and rows that stay live) and the layers' sparse products all on its path."""


def test_a_resumed_run_is_the_uninterrupted_run_bit_for_bit(tmp_path):
    """A trial killed after a task and resumed in a fresh trainer from its checkpoint (written to
    disk and read back, as Tune does) ends with the same weights, to the bit, as the run that
    was never stopped. What decides only the rounding of later steps (which segment rows the
    optimiser still steps, which product each layer computes) must come back too: without it the
    runs drift apart at the last bit and, over ten tasks, by up to a point of accuracy."""
    def final_weights(stop_after: int | None) -> dict[str, torch.Tensor]:
        trainer = ContinualTrainer(ContinualConfig(**PAPER_SMALL))
        for task in range(PAPER_SMALL["num_tasks"]):
            trainer.step()
            state = trainer.state_dict()  # a trial checkpoints after every task
            if task == stop_after:
                torch.save(state, tmp_path / "checkpoint.pt")
                trainer = ContinualTrainer(ContinualConfig(**PAPER_SMALL))
                trainer.load_state_dict(torch.load(tmp_path / "checkpoint.pt", weights_only=False))
        return trainer.model.state_dict()

    uninterrupted, resumed = final_weights(None), final_weights(0)
    differing = [name for name, weight in uninterrupted.items() if not torch.equal(weight, resumed[name])]
    assert differing == []


def test_checkpoint_from_other_config_is_refused():
    trainer = ContinualTrainer(ContinualConfig(**TINY))
    other = ContinualTrainer(ContinualConfig(**{**TINY, "seed": 1}))
    with pytest.raises(ValueError, match="different configuration"):
        other.load_state_dict(trainer.state_dict())


def test_checkpoint_resumes_across_speed_only_fields():
    """``cuda_graphs`` and ``device`` change where and how fast, not the run: a checkpoint
    resumes with them changed, and one saved before ``cuda_graphs`` existed resumes too."""
    state = ContinualTrainer(ContinualConfig(**TINY)).state_dict()
    ContinualTrainer(ContinualConfig(**TINY, cuda_graphs=False)).load_state_dict(state)
    on_gpu = {**state, "config": {**state["config"], "device": "cuda:0"}}
    ContinualTrainer(ContinualConfig(**TINY, device="cpu")).load_state_dict(on_gpu)
    older = {**state, "config": {k: v for k, v in state["config"].items() if k != "cuda_graphs"}}
    ContinualTrainer(ContinualConfig(**TINY)).load_state_dict(older)


def test_a_checkpoint_from_before_the_compute_path_was_kept_still_resumes():
    """Checkpoints written before they kept the layers' compute path and the optimiser's live
    rows (a sweep resumed across that change) load, and the run goes on."""
    trainer = ContinualTrainer(ContinualConfig(**PAPER_SMALL))
    trainer.step()
    state = trainer.state_dict()
    assert state["compute_path"] and any(LIVE_ROWS in saved for saved in state["optimizer"]["optimizers"])
    older = {k: v for k, v in state.items() if k != "compute_path"}
    older["optimizer"] = {"optimizers": [{k: v for k, v in saved.items() if k != LIVE_ROWS}
                                         for saved in state["optimizer"]["optimizers"]]}
    resumed = ContinualTrainer(ContinualConfig(**PAPER_SMALL))
    resumed.load_state_dict(older)
    assert resumed.step().task == 1


def _write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _write_idx_dataset(directory, train: int, seed: int) -> None:
    """The four gzipped IDX files of an MNIST-format dataset: ``train`` random 28x28 training
    images labelled ``i % 10``, and 10 test images labelled 0..9."""
    rng = np.random.default_rng(seed)
    _write_idx(directory / "train-images-idx3-ubyte.gz", rng.integers(0, 255, (train, 28, 28)))
    _write_idx(directory / "train-labels-idx1-ubyte.gz", np.arange(train) % 10)
    _write_idx(directory / "t10k-images-idx3-ubyte.gz", rng.integers(0, 255, (10, 28, 28)))
    _write_idx(directory / "t10k-labels-idx1-ubyte.gz", np.arange(10))


def test_mnist_idx_loader_reads_local_files(tmp_path):
    _write_idx_dataset(tmp_path, train=30, seed=0)
    dataset = load_dataset("mnist", tmp_path)
    assert dataset.train_x.shape == (30, 784)
    assert dataset.test_y.tolist() == list(range(10))
    assert dataset.num_classes == 10
    assert abs(dataset.train_x.mean().item()) < 1e-5


def test_mnist_npz_loader(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "mnist.npz", x_train=rng.integers(0, 255, (20, 28, 28)),
             y_train=np.arange(20) % 10, x_test=rng.integers(0, 255, (5, 28, 28)),
             y_test=np.arange(5))
    assert load_dataset("mnist", tmp_path).input_dim == 784


def test_dataset_is_loaded_once_per_process_and_training_leaves_it_unchanged(tmp_path):
    """A reused sweep worker trains trial after trial on the cached dataset: the cache must hand
    back the same data and no trial may change it (the next trial would train on altered data)."""
    dataset = load_dataset("digits")
    assert load_dataset("digits") is dataset
    tensors = (dataset.train_x, dataset.train_y, dataset.test_x, dataset.test_y)
    before = [t.clone() for t in tensors]
    first = train_continual(ContinualConfig(**TINY, seed=3))
    assert all(torch.equal(a, b) for a, b in zip(before, tensors, strict=True))
    assert train_continual(ContinualConfig(**TINY, seed=3)).accuracy_matrix == first.accuracy_matrix
    with pytest.raises(DatasetNotFoundError):  # a failed load is not cached
        load_dataset("mnist", tmp_path)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "mnist.npz", x_train=rng.integers(0, 255, (20, 28, 28)),
             y_train=np.arange(20) % 10, x_test=rng.integers(0, 255, (5, 28, 28)), y_test=np.arange(5))
    assert load_dataset("mnist", tmp_path).input_dim == 784


def test_missing_mnist_names_the_path(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=str(tmp_path)):
        load_dataset("mnist", tmp_path)


def test_embedded_mnist5k_is_real_digits():
    dataset = load_dataset("mnist5k")
    assert dataset.input_dim == 784
    assert len(dataset.train_y) + len(dataset.test_y) == 5000


def test_cli_runs_and_writes_json(tmp_path, capsys):
    out = tmp_path / "results.json"
    code = dlab_main(["run", "continual", "--num-tasks", "2", "--hidden-sizes", "16", "16",
                      "--epochs", "1", "--kw-percent-on", "0.25", "--json", str(out), "--quiet"])
    assert code == 0
    assert "Accuracy after each task" in capsys.readouterr().out
    results = json.loads(out.read_text())
    assert len(results["accuracy_matrix"]) == 2


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--num-segments", "-1"], "num_segments"),
        (["--kw-percent-on", "1.5"], "kw_percent_on"),
        (["--dataset", "mnist", "--data-dir", "/nonexistent/mnist"], "/nonexistent/mnist"),
    ],
)
def test_cli_bad_input_exits_nonzero_with_message(flags, message, capsys):
    assert dlab_main(["run", "continual", "--quiet", *flags]) == 2
    assert message in capsys.readouterr().out


def test_cli_unknown_dataset_is_an_argparse_error_or_validation_error(capsys):
    assert dlab_main(["run", "continual", "--quiet", "--dataset", "cifar"]) == 2
    assert "unknown dataset" in capsys.readouterr().out


def test_demo_sweep_spec_is_valid_and_small():
    from dlab.demo import DEMO_SPEC
    from sweeps.spec import load_spec

    spec = load_spec(DEMO_SPEC)
    assert spec.benchmark == "permuted_digits" and spec.expected_trials == 4


def test_fashion_mnist_reads_idx_files_from_data_dir(tmp_path):
    _write_idx_dataset(tmp_path, train=20, seed=1)
    dataset = load_dataset("fashion_mnist", tmp_path)
    assert dataset.name == "fashion_mnist" and dataset.train_x.shape == (20, 784)


def test_missing_fashion_mnist_says_how_to_install(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="dataset-fashion-mnist") as info:
        load_dataset("fashion_mnist", tmp_path)
    assert str(tmp_path) in str(info.value)


def test_ewc_gets_per_sample_losses_from_the_trainer():
    trainer = ContinualTrainer(ContinualConfig(**TINY, consolidation="ewc"))
    x, y = trainer.stream.train_split(0)
    trainer.prototypes.add_task(x)
    losses = next(iter(trainer._fisher_batches(x, y, trainer._training_context(0))))()
    assert losses.shape == (TINY["batch_size"],)  # one loss per sample: the empirical Fisher


def _run_counting_evaluations(config: dict) -> tuple[ContinualTrainer, list[int]]:
    """Train ``config`` to the end; the number of test splits each task's evaluation read."""
    trainer = ContinualTrainer(ContinualConfig(**config))
    reads = []
    original = trainer.stream.test_split
    trainer.stream.test_split = lambda task: reads.append(task) or original(task)
    counts = []
    while not trainer.finished:
        before = len(reads)
        trainer.step()
        counts.append(len(reads) - before)
    return trainer, counts


def test_evaluation_schedule_evaluates_all_seen_tasks_only_where_asked_with_the_final_metric_unchanged():
    """``eval_tasks=[1]`` over 5 tasks: every seen task after task 1 and after the last one, only
    the task just trained after the others (the reference's ``tasks_to_validate``); the same
    training, so the same final accuracies, backward transfer and diagonal as evaluating all."""
    every, every_counts = _run_counting_evaluations({**TINY, "num_tasks": 5})
    scheduled, counts = _run_counting_evaluations({**TINY, "num_tasks": 5, "eval_tasks": [1]})
    assert every_counts == [1, 2, 3, 4, 5] and counts == [1, 2, 1, 1, 5]
    reports = scheduled.reports
    assert [r.mean_accuracy is not None for r in reports] == [False, True, False, False, True]
    assert reports[2].accuracies[:2] == [None, None] and reports[2].accuracies[2] is not None
    assert reports[2].metrics().keys() >= {"accuracy_task_2", "train_loss", "task_inference_accuracy"}
    assert not reports[2].metrics().keys() & {"mean_accuracy", "accuracy_task_0", "forgetting"}
    full, sparse = every.results(), scheduled.results()
    assert sparse.accuracy_matrix[-1] == full.accuracy_matrix[-1]
    assert sparse.final_mean_accuracy == full.final_mean_accuracy
    assert sparse.backward_transfer == full.backward_transfer
    assert [sparse.accuracy_matrix[i][i] for i in range(5)] == [full.accuracy_matrix[i][i] for i in range(5)]
    # forgetting: the best earlier accuracy over the rows that were evaluated
    kept = [row if i in (1, 4) else [None] * i + row[i:] for i, row in enumerate(full.accuracy_matrix)]
    assert sparse.forgetting == pytest.approx(forgetting(kept))


def test_evaluation_schedule_past_the_stream_and_bad_indices():
    assert ContinualConfig(**TINY, eval_tasks=[24, 99]).evaluates_all_seen(2)  # the last task
    with pytest.raises(ValidationError, match="eval_tasks"):
        ContinualConfig(**TINY, eval_tasks=[-1])


def test_online_prototypes_report_clusters_and_task_inference_per_task():
    """Online prototypes: the clusters found so far and, per task seen, the fraction of its test
    images whose nearest cluster was founded while training that task."""
    trainer = ContinualTrainer(ContinualConfig(**TINY, context="online_prototype", cluster_pixels=16))
    reports = []
    while not trainer.finished:
        reports.append(trainer.step().metrics())
    clusters = trainer.clusters
    assert reports[-1]["num_clusters"] == len(clusters) >= 1
    assert all(a["num_clusters"] <= b["num_clusters"] for a, b in itertools.pairwise(reports))
    founded_in = torch.tensor(clusters.tasks)
    expected = [float((founded_in[clusters.infer_cluster(trainer.stream.test_split(t)[0])] == t)
                      .float().mean()) for t in range(3)]
    final = reports[-1]
    assert [final[f"task_inference_accuracy_task_{t}"] for t in range(3)] == pytest.approx(expected)
    assert final["task_inference_accuracy"] == pytest.approx(np.mean(expected))
    assert {f"task_inference_accuracy_task_{t}" for t in range(2)} <= reports[1].keys()


def test_a_prototype_context_on_the_online_prototypes_pixels():
    """``prototype_pixels``: the dendrites' context is the task prototype over the same random
    pixels the online clusters of the same seed use, and it still tells the tasks apart."""
    config = ContinualConfig(**TINY, prototype_pixels=16, seed=3)
    trainer = ContinualTrainer(config)
    online = ContinualTrainer(ContinualConfig(**TINY, context="online_prototype", cluster_pixels=16, seed=3))
    assert torch.equal(trainer.prototypes.pixels, online.clusters.pixels)
    assert len(trainer.prototypes.pixels) == 16
    while not trainer.finished:
        metrics = trainer.step().metrics()
    assert trainer.prototypes.vectors.shape == (3, 16)
    assert metrics["task_inference_accuracy"] > 0.9
    full = ContinualTrainer(ContinualConfig(**TINY, seed=3))
    assert full.prototypes.pixels is None

"""The continual-learning trainer: permuted-task streams with dendritic or MLP networks.

:func:`train_continual` trains the tasks one after another and, after each, evaluates every task
seen so far (with prototype context inferred from the test input when the model is dendritic),
reporting the task's metrics and a checkpoint thunk (the :mod:`workers.workload` protocol). The
same code runs from the CLI (``dlab run continual``) and inside a Ray Tune trial.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from statistics import fmean

import torch
import torch.nn.functional as F
from torch import nn

from dendrites import (
    EWC,
    Consolidation,
    IndexedContext,
    PrototypeContext,
    SynapticIntelligence,
    dendritic_adam,
)
from dendrites.clustering import OnlinePrototypes
from dendrites.config import build_network
from dendrites.context import random_pixels
from dendrites.layers import compute_path_state, load_compute_path_state
from dendrites.xdg import XdGMLP
from workers.continual.config import ContinualConfig
from workers.continual.datasets import Dataset, load_dataset
from workers.continual.metrics import (
    ContinualResults,
    TaskReport,
    backward_transfer,
    forgetting,
    mean_accuracy,
)
from workers.continual.subnetworks import subnetwork_metrics
from workers.continual.tasks import PermutedTaskStream
from workers.cuda_graphs import GraphedStep
from workers.memory import reporting_peak_memory
from workers.torch_runtime import resolve_device, seed_everything, to_device
from workers.workload import ProgressFn, ReportFn


def build_model(config: ContinualConfig, input_dim: int, num_classes: int) -> nn.Module:
    """The network a config asks for (context: the input-sized prototype, or the task one-hot)."""
    context_dim = config.context_dim(input_dim)
    options = dict(layer_input_densities=config.layer_input_densities)
    if config.model == "xdg":
        return XdGMLP(input_dim, num_classes, config.hidden_sizes, config.num_tasks,
                      keep=config.xdg_keep, seed=config.seed)
    return build_network(config, input_dim, num_classes, context_dim, network_options=options,
                         context_dedup=config.context_dedup,
                         sparse_segment_updates=config.sparse_segment_updates,
                         context_percent_on=config.context_percent_on)


def cuda_graphs_apply(config: ContinualConfig) -> bool:
    """Whether a run's training step can be replayed as a CUDA graph (on a CUDA device): asked
    for, and nothing in the step that changes shape or reads back to the host per batch (online
    clustering, the row-sparse segment optimisers, a consolidation's per-step bookkeeping)."""
    return (config.cuda_graphs and config.model in ("dendritic", "mlp")
            and config.context != "online_prototype" and config.consolidation == "none"
            and not config.sparse_segment_updates)


def build_consolidation(config: ContinualConfig, model: nn.Module) -> Consolidation | None:
    """The consolidation regulariser a config asks for, if any (without the dendritic segments
    unless ``consolidate_segments``)."""
    exclude = () if config.consolidate_segments else ("segments",)
    if config.consolidation == "si":
        strength = 0.1 if config.consolidation_strength is None else config.consolidation_strength
        return SynapticIntelligence(model, strength, config.si_damping, exclude=exclude)
    if config.consolidation == "ewc":
        strength = 100.0 if config.consolidation_strength is None else config.consolidation_strength
        return EWC(model, strength, exclude=exclude, max_samples=config.ewc_fisher_samples)
    return None


class ContinualTrainer:
    """Holds the state of one run so it can train task by task and be checkpointed between tasks."""

    def __init__(self, config: ContinualConfig, dataset: Dataset | None = None) -> None:
        self.config = config
        self.device = resolve_device(config.device)
        seed_everything(config.seed)
        dataset = dataset or load_dataset(config.dataset, config.data_dir, config.download)
        self.stream = PermutedTaskStream(dataset, config.num_tasks, config.permutation_seed)
        self.model = build_model(config, dataset.input_dim, dataset.num_classes).to(self.device)
        self.graphs = self.device.type == "cuda" and cuda_graphs_apply(config)
        self.optimizer = self._new_optimizer()
        self.consolidation = build_consolidation(config, self.model)
        pixels = config.prototype_pixels  # the online clusters' draw for this seed
        self.prototypes = PrototypeContext(None if pixels is None else random_pixels(
            dataset.input_dim, pixels, torch.Generator().manual_seed(config.seed)))
        self.clusters = OnlinePrototypes(dataset.input_dim, config.cluster_pixels,
                                         config.cluster_alpha, seed=config.seed)
        self.batch_generator = torch.Generator().manual_seed(config.seed)
        self.accuracy_matrix: list[list[float]] = []
        self.reports: list[TaskReport] = []
        self.next_task = 0
        self.elapsed_s = 0.0

    @property
    def uses_context(self) -> bool:
        return self.config.model in ("dendritic", "xdg")

    def _autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast for ``precision: bf16`` on CUDA; nothing otherwise. (No cast cache when
        steps are captured as CUDA graphs, as graph capture requires.)"""
        if self.config.precision == "bf16" and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=not self.graphs)
        return contextlib.nullcontext()

    def _new_optimizer(self):
        return dendritic_adam(self.model, lr=self.config.lr, capturable=self.graphs)

    def _model_context(self, context: IndexedContext | None, batch_size: int):
        if context is None or self.config.context_dedup:
            return context
        return context.to_dense(batch_size)

    def _training_context(self, task: int) -> IndexedContext | None:
        if not self.uses_context:
            return None
        if self.config.context == "prototype":
            return self.prototypes.training_context(task)
        if self.config.context == "online_prototype":
            return None  # chosen per batch by the clusters
        return IndexedContext.shared(torch.eye(self.config.num_tasks, device=self.device)[task])

    def _evaluation_context(self, x: torch.Tensor, task: int) -> IndexedContext | None:
        if not self.uses_context:
            return None
        if self.config.context == "prototype":
            return self.prototypes.inference_context(x)
        if self.config.context == "online_prototype":
            return self.clusters.inference_context(x)
        return self._training_context(task)

    def _batches(self, x: torch.Tensor, y: torch.Tensor) -> Iterator[tuple[torch.Tensor, ...]]:
        order = torch.randperm(len(x), generator=self.batch_generator).to(self.device)
        stop = len(x)
        if self.config.drop_last and len(x) >= self.config.batch_size:
            stop -= len(x) % self.config.batch_size  # the reference's drop_last=True
        for start in range(0, stop, self.config.batch_size):
            idx = order[start : start + self.config.batch_size]
            yield x[idx], y[idx]

    def train_task(self, task: int, progress: ProgressFn | None = None) -> float:
        """Train ``task`` for the configured epochs; return the last epoch's mean loss."""
        x, y = (t.to(self.device) for t in self.stream.train_split(task))
        if self.uses_context and self.config.context == "prototype":
            self.prototypes.add_task(x)
        penalised = self.consolidation is not None and task >= self.config.consolidation_start_task
        if self.config.reset_optimizer and task > 0:
            self.optimizer = self._new_optimizer()
        context = self._training_context(task)
        self.model.train()

        def eager_step(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
            return self._train_step(xb, yb, context, penalised)  # (context: the batch's, online)

        # one graph per task: the task's context is captured with it
        train_step = GraphedStep(eager_step) if self.graphs else eager_step
        epoch_loss = 0.0
        for _ in range(self.config.epochs):
            total, count = torch.zeros((), device=self.device), 0
            for xb, yb in self._batches(x, y):
                if self.config.context == "online_prototype" and self.uses_context:
                    context = self.clusters.training_context(xb, task)
                loss = train_step(xb, yb)
                total += loss.detach() * len(xb)  # no host sync per step (.item() once per epoch)
                count += len(xb)
                if progress is not None:
                    progress(1, self.steps_per_task() * self.config.num_tasks)
            epoch_loss = total.item() / count
        if isinstance(train_step, GraphedStep) and train_step.failed:
            self.graphs = False  # (it warned once; the next tasks train eagerly from the start)
        if self.consolidation is not None:
            self.consolidation.end_task(self._fisher_batches(x, y, context))
        return epoch_loss

    def _train_step(self, xb: torch.Tensor, yb: torch.Tensor, context: IndexedContext | None,
                    penalised: bool) -> torch.Tensor:
        """One optimiser step on a batch; returns its loss."""
        with self._autocast():
            logits = self.model(xb, self._model_context(context, len(xb)))
        loss = F.cross_entropy(logits.float(), yb)
        if penalised:
            loss = loss + self.consolidation.penalty()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.consolidation is not None:
            self.consolidation.before_step()
        self.optimizer.step()
        if self.consolidation is not None:
            self.consolidation.after_step()
        return loss

    def _fisher_batches(self, x: torch.Tensor, y: torch.Tensor, context: IndexedContext | None):
        for xb, yb in self._batches(x, y):
            if self.config.context == "online_prototype" and self.uses_context:
                context = self.clusters.inference_context(xb)
            yield lambda xb=xb, yb=yb, context=context: F.cross_entropy(
                self.model(xb, self._model_context(context, len(xb))), yb, reduction="none"
            )

    @torch.no_grad()
    def evaluate(self, tasks: Sequence[int]) -> tuple[list[float], list[float] | None]:
        """Test accuracy on each of ``tasks``, and per task the fraction of its test samples
        whose inferred context is their own task (None without inferred contexts)."""
        self.model.eval()
        accuracies, inference = [], []
        for task in tasks:
            x_all, y_all = self.stream.test_split(task)
            correct, inferred_right = 0, 0
            for start in range(0, len(x_all), self.config.eval_batch_size):
                x = x_all[start : start + self.config.eval_batch_size].to(self.device)
                y = y_all[start : start + self.config.eval_batch_size].to(self.device)
                context = self._evaluation_context(x, task)
                with self._autocast():
                    logits = self.model(x, self._model_context(context, len(x)))
                correct += (logits.argmax(dim=1) == y).sum().item()
                if context is not None and self.config.context == "prototype":
                    inferred_right += (context.index == task).sum().item()
                elif context is not None and self.config.context == "online_prototype":
                    founded_in = torch.tensor(self.clusters.tasks, device=context.index.device)
                    inferred_right += (founded_in[context.index] == task).sum().item()
            accuracies.append(correct / len(x_all))
            inference.append(inferred_right / len(x_all))
        uses_prototypes = self.uses_context and self.config.context != "onehot"
        return accuracies, (inference if uses_prototypes else None)

    def step(self, progress: ProgressFn | None = None) -> TaskReport:
        """Train the next task, evaluate every task seen (or, off the config's evaluation
        schedule, only this one), and record the report."""
        task = self.next_task
        started = time.perf_counter()
        loss = self.train_task(task, progress)
        full = self.config.evaluates_all_seen(task)
        evaluated = range(task + 1) if full else [task]
        accuracies, inference = self.evaluate(evaluated)
        row: list[float | None] = accuracies if full else [None] * task + accuracies
        self.accuracy_matrix.append(row)
        inferred = None if inference is None else (
            inference if full else [None] * task + inference)
        self.elapsed_s += time.perf_counter() - started
        report = TaskReport(
            task=task, tasks_seen=task + 1, accuracies=row,
            mean_accuracy=mean_accuracy(accuracies) if full else None,
            # (every task permutes the same test set: the mean over tasks is the pooled fraction)
            task_inference_accuracy=None if inference is None else fmean(inference),
            task_inference_accuracies=inferred,
            num_clusters=len(self.clusters) if self.config.context == "online_prototype" else None,
            train_loss=loss,
            backward_transfer=backward_transfer(self.accuracy_matrix) if full else None,
            forgetting=forgetting(self.accuracy_matrix) if full else None,
            task_time_s=time.perf_counter() - started, wall_time_s=self.elapsed_s,
        )
        self.reports.append(report)
        self.next_task += 1
        return report

    @property
    def finished(self) -> bool:
        return self.next_task >= self.config.num_tasks

    def results(self) -> ContinualResults:
        """The run's summary (valid once at least one task is trained)."""
        last = self.reports[-1]
        return ContinualResults(
            config=self.config.model_dump(), reports=self.reports,
            accuracy_matrix=self.accuracy_matrix, final_mean_accuracy=last.mean_accuracy,
            backward_transfer=last.backward_transfer, forgetting=last.forgetting,
            task_inference_accuracy=last.task_inference_accuracy, wall_time_s=self.elapsed_s,
            device=str(self.device),
        )

    def steps_per_task(self) -> int:
        samples = len(self.stream.dataset.train_y)
        batches = (max(samples // self.config.batch_size, 1) if self.config.drop_last
                   else -(-samples // self.config.batch_size))
        return batches * self.config.epochs

    def state_dict(self) -> dict:
        """Everything needed to resume between tasks."""
        return {
            "config": self.config.model_dump(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "consolidation": self.consolidation.state_dict() if self.consolidation else None,
            "prototypes": self.prototypes.state_dict(),
            "clusters": self.clusters.state_dict(),
            "compute_path": compute_path_state(self.model),
            "batch_generator": self.batch_generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "accuracy_matrix": self.accuracy_matrix,
            "reports": [r.model_dump() for r in self.reports],
            "next_task": self.next_task,
            "elapsed_s": self.elapsed_s,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a state saved by :meth:`state_dict` (the same config, up to the fields that
        only change speed; a state saved before such a field existed resumes too)."""
        saved = ContinualConfig.model_validate(state["config"])
        if saved.run_identity() != self.config.run_identity():
            raise ValueError("checkpoint was written by a run with a different configuration")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.consolidation is not None:
            self.consolidation.load_state_dict(to_device(state["consolidation"], self.device))
        self.prototypes.load_state_dict(to_device(state["prototypes"], self.device))
        clusters = state["clusters"]  # (its generator's state stays a CPU tensor)
        self.clusters.load_state_dict({**to_device(clusters, self.device),
                                       "generator": clusters["generator"]})
        load_compute_path_state(self.model, state.get("compute_path", {}))  # (absent: saved before)
        self.batch_generator.set_state(state["batch_generator"])
        torch.set_rng_state(state["torch_rng"])
        self.accuracy_matrix = state["accuracy_matrix"]
        self.reports = [TaskReport(**r) for r in state["reports"]]
        self.next_task = state["next_task"]
        self.elapsed_s = state["elapsed_s"]


def train_continual(config: ContinualConfig, report: ReportFn | None = None,
                    resume_state: dict | None = None, progress: ProgressFn | None = None, *,
                    dataset: Dataset | None = None) -> ContinualResults:
    """Run (or resume from ``resume_state``) a continual-learning trial; ``report(metrics,
    checkpoint)`` after each task, with the accuracy matrix so far as an artifact and the run's
    peak memory so far (:mod:`workers.memory`)."""
    report = reporting_peak_memory(report)
    trainer = ContinualTrainer(config, dataset)
    if resume_state is not None:
        trainer.load_state_dict(resume_state)
    while not trainer.finished:
        task_report = trainer.step(progress)
        if report is not None:
            metrics = {**task_report.metrics(),
                       "accuracy_matrix": [list(row) for row in trainer.accuracy_matrix]}
            if trainer.finished:  # the subnetwork analysis of the trained model (issue 12)
                metrics.update(subnetwork_metrics(trainer))
            report(metrics, trainer.state_dict)
    return trainer.results()

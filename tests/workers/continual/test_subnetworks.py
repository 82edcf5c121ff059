"""The subnetwork analysis at the end of a continual-learning run (the final report's artifact)."""

from __future__ import annotations

import pytest
import torch

from workers.continual import CONTINUAL, ContinualConfig, ContinualTrainer, train_continual
from workers.continual.subnetworks import subnetwork_metrics

TINY = {"num_tasks": 3, "hidden_sizes": [64, 64], "epochs": 2, "batch_size": 64, "kw_percent_on": 0.1}


def _reports(**changes) -> list[dict]:
    torch.set_num_threads(1)
    reports: list[dict] = []
    train_continual(ContinualConfig(**{**TINY, **changes}), lambda metrics, _: reports.append(metrics))
    return reports


@pytest.fixture(scope="module")
def dendritic() -> list[dict]:
    return _reports(model="dendritic")


def test_the_final_report_carries_the_analysis(dendritic) -> None:
    assert [("subnetworks" in r) for r in dendritic] == [False, False, True]
    analysis = dendritic[-1]["subnetworks"]
    assert analysis["tasks"] == ["task 0", "task 1", "task 2"]
    assert [layer["winners_per_input"] for layer in analysis["layers"]] == [6.0, 6.0]  # 10% of 64
    for layer in analysis["layers"]:
        assert [row[i] for i, row in enumerate(layer["overlap"])] == [1.0, 1.0, 1.0]
    assert dendritic[-1]["subnetwork_overlap"] == pytest.approx(analysis["mean_overlap"])
    assert {"subnetworks"} <= set(CONTINUAL.artifacts) and "subnetwork_overlap" in CONTINUAL.metric_names


def test_dendrites_and_kwta_give_each_task_its_own_units_unlike_a_dense_mlp(dendritic) -> None:
    dense = _reports(model="mlp")[-1]["subnetwork_overlap"]
    assert dendritic[-1]["subnetwork_overlap"] < 0.5 < dense


def test_each_task_is_analysed_with_the_context_the_model_infers_for_it() -> None:
    """Giving every task task 0's context (its prototype) must merge the subnetworks: the
    analysis's own overlap is clearly lower than that."""
    torch.set_num_threads(1)
    trainer = ContinualTrainer(ContinualConfig(**TINY))
    while not trainer.finished:
        trainer.step()
    own = subnetwork_metrics(trainer)["subnetwork_overlap"]
    task0_inputs = trainer.stream.test_split(0)[0]
    infer = trainer._evaluation_context
    trainer._evaluation_context = lambda x, task: infer(task0_inputs[: len(x)].to(trainer.device), 0)
    assert own + 0.1 < subnetwork_metrics(trainer)["subnetwork_overlap"]

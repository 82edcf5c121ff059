"""Online prototypes: Hotelling T^2 clustering of training batches without task boundaries."""

import torch

from dendrites.clustering import OnlinePrototypes, hotelling_same_mean


def test_hotelling_keeps_same_mean_and_rejects_shifted_mean():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(200, 10, generator=g), torch.randn(200, 10, generator=g)
    assert hotelling_same_mean(a, b, alpha=0.1)
    assert not hotelling_same_mean(a, b + 0.5, alpha=0.1)


def test_batches_of_distinct_tasks_found_distinct_clusters_without_labels():
    g = torch.Generator().manual_seed(1)
    centres = torch.randn(3, 40, generator=g) * 2
    clusters = OnlinePrototypes(40, num_pixels=16, alpha=0.1, memory=64, seed=0)
    assigned = {task: [] for task in range(3)}
    for task in range(3):
        for _ in range(6):
            batch = centres[task] + torch.randn(64, 40, generator=g)
            assigned[task].append(clusters.assign(batch, task))
    assert len(clusters) >= 3
    # the first batch of each task founds a cluster; most of its later batches join that cluster
    for task in range(3):
        first = assigned[task][0]
        assert clusters.tasks[first] == task
        assert sum(a == first for a in assigned[task]) >= 4
    test = centres[torch.tensor([0, 1, 2])] + torch.randn(3, 40, generator=g)
    founded_in = torch.tensor(clusters.tasks)[clusters.infer_cluster(test)]
    assert founded_in.tolist() == [0, 1, 2]
    assert clusters.vectors.shape[1] == 16

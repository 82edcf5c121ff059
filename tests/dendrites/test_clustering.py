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


def test_hotelling_decision_matches_the_f_test_p_value_for_small_samples():
    """Small samples, where the F distribution's degrees of freedom (p, n1 + n2 - p - 1) matter:
    the test keeps "same mean" exactly when the textbook p-value (numpy + scipy.stats) exceeds alpha."""
    import numpy as np
    from scipy.stats import f

    g = torch.Generator().manual_seed(3)
    for shift in (0.0, 0.4, 0.8):
        a, b = torch.randn(8, 5, generator=g), torch.randn(9, 5, generator=g) + shift
        x, y = a.double().numpy(), b.double().numpy()
        n1, n2, p = len(x), len(y), x.shape[1]
        diff = x.mean(0) - y.mean(0)
        pooled = ((n1 - 1) * np.cov(x.T) + (n2 - 1) * np.cov(y.T)) / (n1 + n2 - 2)
        t2 = n1 * n2 / (n1 + n2) * diff @ np.linalg.pinv(pooled) @ diff
        p_value = f.sf((n1 + n2 - p - 1) / (p * (n1 + n2 - 2)) * t2, p, n1 + n2 - p - 1)
        assert hotelling_same_mean(a, b, alpha=p_value * 0.9)
        assert not hotelling_same_mean(a, b, alpha=min(p_value * 1.1, 0.999))

"""Online prototypes: Hotelling T^2 clustering of training batches without task boundaries."""

import pytest
import torch

from dendrites.clustering import OnlinePrototypes, hotelling_same_mean, pinv_quadratic_form


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


def _pinv_form(matrix: torch.Tensor, vector: torch.Tensor) -> float:
    return float(vector @ torch.linalg.pinv(matrix) @ vector)


def test_the_quadratic_form_is_pinvs_on_full_rank_constant_pixel_and_near_singular_covariances():
    g = torch.Generator().manual_seed(4)
    rows = torch.randn(36, 12, generator=g, dtype=torch.float64)
    cases = {"full rank": rows}
    constant = rows.clone()
    constant[:, :3] = -0.8  # pixels blank in every image: null directions pinv ignores
    cases["constant pixels"] = constant
    for scale in (1e-9, 3e-9, 1e-8, 3e-8):  # two pixels equal up to `scale`
        near = rows.clone()
        near[:, 1] = near[:, 0] + scale * torch.randn(36, generator=g, dtype=torch.float64)
        cases[f"near-collinear pixels ({scale})"] = near
    # a covariance whose Cholesky factor exists although an eigenvalue is under pinv's cut-off:
    # a plain Cholesky solve would invert that eigenvalue (and blow up along its direction)
    covariances = {name: torch.cov(data.T) for name, data in cases.items()}
    cut_off = 12 * torch.finfo(torch.float64).eps

    def factorable_but_cut(covariance: torch.Tensor) -> bool:
        eigenvalues = torch.linalg.eigvalsh(covariance)
        return (int(torch.linalg.cholesky_ex(covariance).info) == 0
                and bool(eigenvalues[0] < cut_off * eigenvalues[-1]))

    assert any(map(factorable_but_cut, covariances.values())), "no case exercises the cut-off check"
    across = torch.zeros(12, dtype=torch.float64)
    across[0], across[1] = 1.0, -1.0  # along the near-collinear pair's null direction
    for name, covariance in covariances.items():
        for vector in (torch.randn(12, generator=g, dtype=torch.float64), across):
            expected = _pinv_form(covariance, vector)
            got = pinv_quadratic_form(covariance, vector)
            assert got == pytest.approx(expected, rel=1e-7, abs=1e-12), name


def test_each_batch_joins_the_first_cluster_the_textbook_test_keeps():
    """The clusters' cached exemplar moments never go stale: as a drifting stream joins and
    reshapes clusters, every assignment is the first cluster that the textbook test (pinv on
    the current exemplars) keeps, or a new one."""
    g = torch.Generator().manual_seed(5)
    clusters = OnlinePrototypes(8, num_pixels=8, alpha=0.1, memory=24, seed=0)
    founded = 0
    for step in range(60):
        batch = torch.randn(24, 8, generator=g) + 0.12 * step * torch.linspace(-1, 1, 8)
        pixels = batch[:, clusters.pixels]
        kept = [i for i, exemplars in enumerate(clusters.exemplars)
                if hotelling_same_mean(exemplars, pixels, alpha=0.1)]
        expected = kept[0] if kept else len(clusters)
        founded += not kept
        assert clusters.assign(batch, task=0) == expected, f"batch {step}"
    assert 1 < founded < 60  # clusters both joined and founded along the drift

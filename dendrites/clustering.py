"""Prototype contexts found online, without task boundaries (the paper's "prototype inferred while
training"), after Numenta's clustering mode of ``PrototypeContext`` (nupic.research HEAD,
``frameworks/dendrites/mixins/prototype_context.py`` with ``construct=True``; audited in
/work/notes/ref_continual.md, "Online prototype").

Everything works on a fixed random subset of ``num_pixels`` input dimensions (256 in the
reference), which is also the context the dendrites see. Each training batch is compared with
the stored clusters in creation order by a two-sample Hotelling T^2 test against the cluster's
exemplars; it joins the **first** cluster the test does not reject at level ``alpha`` (0.1), or
founds a new one. At test time a sample's context is its nearest prototype (Euclidean).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dendrites.context import IndexedContext, random_pixels


@dataclass(frozen=True)
class Moments:
    """What the test needs of a sample: its size, mean and unbiased covariance (float64)."""

    n: int
    mean: torch.Tensor
    cov: torch.Tensor

    @classmethod
    def of(cls, rows: torch.Tensor) -> Moments:
        rows = rows.double()
        width = rows.shape[1]
        cov = torch.cov(rows.T) if len(rows) > 1 else torch.zeros(width, width, dtype=rows.dtype)
        return cls(len(rows), rows.mean(0), cov)


def pinv_quadratic_form(matrix: torch.Tensor, vector: torch.Tensor) -> float:
    """``vector @ pinv(matrix) @ vector`` for a covariance ``matrix``, as ``torch.linalg.pinv``
    (default cut-off) defines it, 5-10x cheaper where that is provably the same number.

    Coordinates with no variance (a pixel constant in both samples) are null directions that
    pinv ignores, so they are dropped. On the rest a Cholesky factor ``L`` gives
    ``|L^-1 v|^2 = v' M^-1 v``, which is pinv's value when pinv keeps every eigenvalue, that is
    when the smallest exceeds pinv's cut-off (``max(m, n) * eps`` times the largest). The factor
    proves it: the smallest eigenvalue is at least ``1 / |L^-1|_F^2`` and the largest at most the
    trace. A matrix the bound cannot clear (near-collinear pixels) goes through pinv itself."""
    varied = matrix.diagonal() > 0
    reduced, part = matrix[varied][:, varied], vector[varied]
    factor, info = torch.linalg.cholesky_ex(reduced)
    if int(info) == 0 and len(part):
        identity = torch.eye(len(part), dtype=reduced.dtype, device=reduced.device)
        inverse = torch.linalg.solve_triangular(factor, identity, upper=False)
        cut_off = max(matrix.shape) * torch.finfo(matrix.dtype).eps
        if float(1.0 / inverse.square().sum()) > cut_off * float(reduced.diagonal().sum()):
            whitened = inverse @ part
            return float(whitened @ whitened)
    return float(vector @ torch.linalg.pinv(matrix) @ vector)


def _same_mean(a: Moments, b: Moments, alpha: float) -> bool:
    """The two-sample Hotelling T^2 test of :func:`hotelling_same_mean`, from the samples' moments."""
    n1, n2, p = a.n, b.n, a.mean.shape[0]
    n = n1 + n2
    if n - p - 1 <= 0 or n1 < 2 or n2 < 2:
        raise ValueError(f"Hotelling T^2 needs n1 + n2 > p + 1 (got {n1} + {n2}, p = {p})")
    pooled = ((n1 - 1) * a.cov + (n2 - 1) * b.cov) / (n - 2)
    t2 = (n1 * n2 / n) * pinv_quadratic_form(pooled, a.mean - b.mean)
    statistic = (n - p - 1) / (p * (n - 2)) * t2
    # imported here, not at module level: scipy costs a sweep worker ~1 s of start-up (scipy.stats
    # 1.5 s) and only the online-prototype context uses this test; fdtr is the F distribution's CDF
    from scipy.special import fdtr

    return float(fdtr(p, n - p - 1, statistic)) < 1.0 - alpha


def hotelling_same_mean(a: torch.Tensor, b: torch.Tensor, alpha: float) -> bool:
    """Whether a two-sample Hotelling T^2 test at level ``alpha`` keeps "same mean" for the rows
    of ``a`` and ``b`` (float64, pooled unbiased covariance, pseudo-inverse)."""
    return _same_mean(Moments.of(a), Moments.of(b), alpha)


def _same_mean_or_untestable(a: Moments, b: Moments, alpha: float) -> bool:
    """:func:`_same_mean`, False when the samples are too few for the test."""
    try:
        return _same_mean(a, b, alpha)
    except ValueError:
        return False


class OnlinePrototypes:
    """Clusters of training batches over a random pixel subset; their means are the contexts."""

    def __init__(self, input_dim: int, num_pixels: int = 256, alpha: float = 0.1,
                 memory: int = 256, seed: int = 0) -> None:
        self.generator = torch.Generator().manual_seed(seed)
        self.pixels = random_pixels(input_dim, num_pixels, self.generator)
        self.alpha, self.memory = alpha, memory
        self.prototypes: list[torch.Tensor] = []
        self.counts: list[int] = []
        self.exemplars: list[torch.Tensor] = []
        self.tasks: list[int] = []  # the task being trained when each cluster was founded
        self._moments: list[Moments | None] = []  # each cluster's exemplars', computed when needed

    def __len__(self) -> int:
        return len(self.prototypes)

    def _sample(self, rows: torch.Tensor, k: int) -> torch.Tensor:
        return rows[torch.randperm(len(rows), generator=self.generator)[:k].to(rows.device)]

    def assign(self, inputs: torch.Tensor, task: int = -1) -> int:
        """Put a training batch in the first cluster whose exemplars it matches (updating its
        prototype and exemplars), or found a new cluster; return the cluster's index."""
        batch = inputs[:, self.pixels.to(inputs.device)].float()
        if len(batch) < 2 and self.prototypes:  # no test possible: nearest prototype, unchanged
            return int(self.infer_cluster(inputs)[0])
        batch_moments = Moments.of(batch)
        for index, exemplars in enumerate(self.exemplars):
            if _same_mean_or_untestable(self._exemplar_moments(index), batch_moments, self.alpha):
                n_c, n_b = self.counts[index], len(batch)
                self.prototypes[index] = (n_c * self.prototypes[index] + n_b * batch.mean(0)) / (n_c + n_b)
                self.counts[index] = n_c + n_b
                keep_old = int(self.memory * n_c / (n_c + n_b))
                keep_new = int(self.memory * n_b / (n_c + n_b))
                self.exemplars[index] = torch.cat([self._sample(exemplars, keep_old),
                                                   self._sample(batch, keep_new)])
                self._moments[index] = None
                return index
        return self._found(batch, task)

    def _exemplar_moments(self, index: int) -> Moments:
        """Cluster ``index``'s exemplars' moments, computed again only after they change (a batch
        is tested against every cluster before the one it joins)."""
        if self._moments[index] is None:
            self._moments[index] = Moments.of(self.exemplars[index])
        return self._moments[index]

    def _found(self, batch: torch.Tensor, task: int) -> int:
        self.prototypes.append(batch.mean(0))
        self.counts.append(len(batch))
        self.exemplars.append(batch[: self.memory].clone())
        self.tasks.append(task)
        self._moments.append(None)
        return len(self.prototypes) - 1

    def training_context(self, inputs: torch.Tensor, task: int = -1) -> IndexedContext:
        """Assign the batch (see :meth:`assign`); its cluster's prototype, shared by the batch."""
        return IndexedContext.shared(self.prototypes[self.assign(inputs, task)])

    @property
    def vectors(self) -> torch.Tensor:
        return torch.stack(self.prototypes)

    def infer_cluster(self, inputs: torch.Tensor) -> torch.Tensor:
        """Index of the nearest prototype for every row of ``inputs``."""
        batch = inputs[:, self.pixels.to(inputs.device)].float()
        return torch.cdist(batch, self.vectors.to(batch.device)).argmin(dim=1)

    def inference_context(self, inputs: torch.Tensor) -> IndexedContext:
        """Each sample's nearest prototype, in indexed form."""
        return IndexedContext(self.vectors.to(inputs.device), self.infer_cluster(inputs))

    def state_dict(self) -> dict:
        return {"pixels": self.pixels, "prototypes": list(self.prototypes),
                "counts": list(self.counts), "exemplars": list(self.exemplars),
                "tasks": list(self.tasks), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.pixels = state["pixels"]
        self.prototypes, self.counts = list(state["prototypes"]), list(state["counts"])
        self.exemplars, self.tasks = list(state["exemplars"]), list(state["tasks"])
        self._moments = [None] * len(self.exemplars)
        self.generator.set_state(state["generator"])

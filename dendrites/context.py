"""Context vectors for dendritic segments: one-hot task ids, prototypes, and deduplication.

A batch's context is either a dense ``(batch, context_dim)`` tensor (one row per sample) or an
:class:`IndexedContext`: a few distinct context vectors plus, per sample, the index of its
vector. The indexed form lets dendritic layers compute segment activations once per distinct
context instead of once per sample (the whole batch shares one context during training).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class IndexedContext:
    """Distinct context ``vectors`` ``(U, C)`` and each sample's row ``index`` ``(B,)``.

    ``index=None`` means every sample uses ``vectors[0]`` (then ``U`` must be 1).
    """

    vectors: torch.Tensor
    index: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.vectors.dim() != 2:
            raise ValueError(f"context vectors must be 2-d (U, C), got {tuple(self.vectors.shape)}")
        if self.index is None and self.vectors.shape[0] != 1:
            raise ValueError("an IndexedContext without index must hold exactly one vector")

    @classmethod
    def shared(cls, vector: torch.Tensor) -> IndexedContext:
        """One context vector shared by every sample of the batch."""
        return cls(vector.reshape(1, -1))

    def to_dense(self, batch_size: int) -> torch.Tensor:
        """The per-sample ``(batch_size, C)`` context tensor."""
        if self.index is None:
            return self.vectors.expand(batch_size, -1)
        return self.vectors[self.index]


def dedup_context(context: torch.Tensor) -> IndexedContext:
    """Collapse a dense per-sample context into its distinct rows (exact, no tolerance)."""
    vectors, index = torch.unique(context, dim=0, return_inverse=True)
    if vectors.shape[0] == 1:
        return IndexedContext(vectors)
    return IndexedContext(vectors, index)


def one_hot_context(task_ids: torch.Tensor, num_tasks: int) -> IndexedContext:
    """One-hot task-id context in indexed form (the identity matrix, indexed by task id)."""
    eye = torch.eye(num_tasks, device=task_ids.device)
    return IndexedContext(eye, task_ids.long())


def random_pixels(input_dim: int, num_pixels: int, generator: torch.Generator) -> torch.Tensor:
    """A random subset of ``num_pixels`` input dimensions (sorted), ``generator``'s next draw:
    the online prototypes' pixels, and a prototype context's when it uses a subset (the same
    pixels for a generator seeded alike)."""
    return torch.randperm(input_dim, generator=generator)[:min(num_pixels, input_dim)].sort().values


class PrototypeContext:
    """Prototype context (Iyer et al. 2022, Sec. 4.2.2): each task's context is the mean of its
    training inputs; at test time a sample's context is its nearest prototype (Euclidean), so
    no task id is needed at inference.

    With ``pixels``, prototypes and the nearest-prototype search use only those input dimensions
    (the online prototypes' 256-pixel subset, to compare the two contexts on the same pixels).
    """

    def __init__(self, pixels: torch.Tensor | None = None) -> None:
        self._prototypes: list[torch.Tensor] = []
        self.pixels = pixels

    def _view(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs if self.pixels is None else inputs[:, self.pixels.to(inputs.device)]

    def __len__(self) -> int:
        return len(self._prototypes)

    @property
    def vectors(self) -> torch.Tensor:
        """All prototypes so far, ``(num_tasks_seen, C)``."""
        if not self._prototypes:
            raise RuntimeError("no prototypes yet: call add_task() first")
        return torch.stack(self._prototypes)

    def add_task(self, inputs: torch.Tensor) -> torch.Tensor:
        """Record the prototype of a new task from its training inputs ``(N, C)``; return it."""
        prototype = self._view(inputs).float().mean(dim=0)
        self._prototypes.append(prototype)
        return prototype

    def training_context(self, task: int) -> IndexedContext:
        """Context for a training batch of ``task`` (the task's prototype, shared by the batch)."""
        return IndexedContext.shared(self._prototypes[task])

    def infer_task(self, inputs: torch.Tensor) -> torch.Tensor:
        """Index of the nearest prototype for every sample of ``inputs`` ``(B, C)``."""
        vectors = self.vectors.to(inputs.device, inputs.dtype)
        return torch.cdist(self._view(inputs), vectors).argmin(dim=1)

    def inference_context(self, inputs: torch.Tensor) -> IndexedContext:
        """Context for test inputs: each sample's nearest prototype, in indexed form."""
        return IndexedContext(self.vectors.to(inputs.device, inputs.dtype), self.infer_task(inputs))

    def state_dict(self) -> dict[str, torch.Tensor | None]:
        return {"prototypes": torch.stack(self._prototypes) if self._prototypes else torch.empty(0),
                "pixels": self.pixels}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self._prototypes = list(state["prototypes"].unbind(0)) if state["prototypes"].numel() else []
        self.pixels = state.get("pixels", self.pixels)


def dense_context(context: torch.Tensor | IndexedContext, batch_size: int) -> torch.Tensor:
    """A per-sample context tensor from either context form."""
    if isinstance(context, IndexedContext):
        return context.to_dense(batch_size)
    return context



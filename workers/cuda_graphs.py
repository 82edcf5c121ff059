"""Training steps replayed as CUDA graphs.

On a GPU a training step of these networks is a few hundred small kernels whose launches cost
more than their arithmetic (``bench/bench_dendrites.py`` on an H200: the dendritic step 2.7 ms
launched op by op, 1.0 ms replayed as one graph). :class:`GraphedStep` captures a step once, for
the shapes of its first batch, and replays it; see PyTorch's "CUDA Graphs" notes (whole-network
capture) for the rules a captured step must follow: static shapes, no host synchronisation, a
``capturable`` optimiser.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch


class GraphedStep:
    """``step(*batch)`` (forward, backward and optimiser step of one batch, returning the loss)
    replayed as a CUDA graph.

    The first ``warmup`` calls run eagerly on a side stream (each a real training step; capture
    needs kernels and workspaces initialised first). The next call with a batch shaped like the
    first is captured into a graph over static copies of its batch, then replayed, and every
    later batch of those shapes is copied into those copies and replayed: the same kernels as
    the eager step, launched at once. A batch of other shapes (an epoch's last partial batch)
    runs eagerly. Should capture fail, the step warns and stays eager. The returned loss of a
    replay is the graph's own tensor: read it before the next call. Warm-up and capture run on
    the batch's own CUDA device (``cuda:1`` as well as ``cuda:0``).
    """

    def __init__(self, step: Callable[..., torch.Tensor], warmup: int = 3) -> None:
        if warmup < 1:
            raise ValueError("capture needs at least one eager warm-up step (optimiser state, "
                             "kernels and workspaces allocated outside the graph)")
        self._step = step
        self._warmup = warmup
        self._eager_calls = 0
        self._graph: torch.cuda.CUDAGraph | None = None
        self._shapes: list[tuple[torch.Size, torch.dtype]] | None = None  # the first batch's
        self._inputs: tuple[torch.Tensor, ...] = ()
        self._loss: torch.Tensor | None = None
        self._failed = False

    @property
    def captured(self) -> bool:
        """Whether a graph has been captured (and later batches of its shapes are replayed)."""
        return self._graph is not None

    @property
    def failed(self) -> bool:
        """Whether capture failed (every step since runs eagerly)."""
        return self._failed

    def __call__(self, *batch: torch.Tensor) -> torch.Tensor:
        shapes = [(tensor.shape, tensor.dtype) for tensor in batch]
        if self._shapes is None:
            self._shapes = shapes
        if self._graph is not None and shapes == self._shapes:
            for static, new in zip(self._inputs, batch, strict=True):
                static.copy_(new)
            self._graph.replay()
            return self._loss
        if self._graph is not None or self._failed:
            return self._step(*batch)
        if self._eager_calls < self._warmup or shapes != self._shapes:
            self._eager_calls += 1
            return self._on_side_stream(batch)
        return self._capture(batch)

    def _on_side_stream(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        with torch.cuda.device(batch[0].device):
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                loss = self._step(*batch)
            torch.cuda.current_stream().wait_stream(side)
        return loss

    def _capture(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        inputs = tuple(tensor.clone() for tensor in batch)
        graph = torch.cuda.CUDAGraph()
        try:
            # (records the kernels, on a capture stream of the batch's device; runs none of them)
            with torch.cuda.device(batch[0].device), \
                    torch.cuda.graph(graph, stream=torch.cuda.Stream(batch[0].device)):
                loss = self._step(*inputs)
        except RuntimeError as error:
            self._failed = True
            warnings.warn(f"CUDA graph capture of the training step failed, training on eagerly: "
                          f"{error}", RuntimeWarning, stacklevel=3)
            return self._step(*batch)
        self._graph, self._inputs, self._loss = graph, inputs, loss
        graph.replay()  # the captured batch's own step
        return loss

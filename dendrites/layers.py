"""Dendritic segments and the dendritic layer (a linear unit gated by its segments)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from dendrites.context import IndexedContext
from dendrites.gating import GatingMode, apply_dendrites, select_segment, winning_segment
from dendrites.init import InitScheme, dendrite_bound, init_linear_, uniform_
from dendrites.kwinners import gated_kwinners
from dendrites.sparse import SparseWeights


@dataclass(frozen=True)
class RowUpdate:
    """What an optimiser last did to a segment weight, published on it as ``weight.row_update``
    so :class:`DendriteSegments` can refresh cached activations for the changed rows only.

    ``count`` numbers the optimiser's steps on the weight. A step that rewrote only ``rows``
    (to ``weights``, packed) moved the weight's ``_version`` from ``version_before`` to
    ``version_after``; ``rows=None`` means any row may have changed.
    """

    count: int
    rows: torch.Tensor | None = None
    weights: torch.Tensor | None = None
    version_before: int = -1
    version_after: int = -1


@dataclass
class _ActivationCache:
    context: torch.Tensor  # (N, C), a copy
    activations: torch.Tensor  # (N, units * segments)
    count: int  # the RowUpdate.count the activations reflect
    version: int  # the weight's _version they reflect


class DendriteSegments(nn.Module):
    """``num_segments`` weight vectors over the context for each of ``num_units`` units.

    Segment weights are drawn uniformly in
    ``±1/sqrt(context_percent_on * density * context_dim)`` (:func:`dendrites.init.dendrite_bound`;
    ``context_percent_on`` 1 by default, 0.1 in Numenta's modified init), so with unit-scale
    context a segment's initial activation is of order one and the sigmoid gate starts near 0.5
    rather than saturated.

    With ``sparse_grad`` the gradient reaches the weights as a coalesced sparse tensor holding
    only the winning segments' rows (the others get zero gradient anyway): one
    ``(units, context_dim)`` block per distinct context, so no dense gradient over all segments
    is materialised. (With as many contexts as segments or more, a dense gradient is smaller and
    is used instead.) :func:`dendrites.optim.dendritic_adam` turns it on where row-sparse
    updates pay (CPU) and steps those rows with :class:`dendrites.optim.ExactRowAdam` (the same
    trajectory as dense Adam). ``sparse_updates`` implies it and selects the lazy
    :class:`dendrites.optim.RowSparseAdam` instead (segments that
    do not win are not moved by stale Adam momentum: not dense Adam).
    """

    def __init__(
        self,
        num_units: int,
        num_segments: int,
        context_dim: int,
        sparsity: float = 0.0,
        sparse_updates: bool = False,
        context_percent_on: float = 1.0,
    ) -> None:
        super().__init__()
        if num_segments < 1:
            raise ValueError(f"num_segments must be >= 1, got {num_segments}")
        if context_dim < 1:
            raise ValueError(f"context_dim must be >= 1, got {context_dim}")
        self.num_units, self.num_segments, self.context_dim = num_units, num_segments, context_dim
        # Stored flat, one row per (unit, segment), so sparse row gradients need no reshape.
        self.weight = nn.Parameter(torch.empty(num_units * num_segments, context_dim))
        uniform_(self.weight, dendrite_bound(context_dim, context_percent_on, 1.0 - sparsity))
        self.sparsity = SparseWeights(self.weight, sparsity) if sparsity > 0 else None
        self.sparse_updates = sparse_updates
        self.sparse_grad = sparse_updates
        self._cache: _ActivationCache | None = None

    @property
    def weights(self) -> torch.Tensor:
        """The segment weights as a ``(num_units, num_segments, context_dim)`` view."""
        return self.weight.view(self.num_units, self.num_segments, self.context_dim)

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        """Segment activations ``u_j . c``: ``(N, C)`` -> ``(N, num_units, num_segments)``."""
        return (context @ self.weight.T).reshape(-1, self.num_units, self.num_segments)

    def select(self, context: torch.Tensor, gating: GatingMode) -> torch.Tensor:
        """The gating segment's activation per unit, ``(N, C)`` -> ``(N, num_units)``."""
        if (self.sparse_grad and torch.is_grad_enabled() and self.weight.requires_grad
                and (self.sparse_updates or context.shape[0] < self.num_segments)):
            activations = self._training_activations(context)
            return _WinningSegments.apply(context, self.weight, activations, self.num_segments, gating)
        return select_segment(self(context), gating)

    @torch.no_grad()
    def _training_activations(self, context: torch.Tensor) -> torch.Tensor:
        """``context @ weight.T``, kept between training steps: with the same context, and only
        the rows an optimiser reported (:class:`RowUpdate`) changed since, only those rows are
        recomputed (the product over all segments reads every segment weight)."""
        weight, cache = self.weight, self._cache
        update: RowUpdate | None = getattr(weight, "row_update", None)
        count = update.count if update is not None else 0
        if cache is not None and cache.context.shape == context.shape and torch.equal(
                cache.context, context):
            if cache.count == count and cache.version == weight._version:
                return cache.activations
            if (update is not None and update.rows is not None and update.count == cache.count + 1
                    and update.version_before == cache.version
                    and update.version_after == weight._version):
                changed = context @ update.weights.T
                if changed.dtype == cache.activations.dtype:  # (not if autocast switched)
                    cache.activations.index_copy_(1, update.rows, changed)
                    cache.count, cache.version = count, weight._version
                    return cache.activations
        activations = context @ weight.T
        self._cache = _ActivationCache(context.clone(), activations, count, weight._version)
        return activations


class _WinningSegments(torch.autograd.Function):
    """The winning segment's activation per (context, unit), ``(N, C)`` -> ``(N, units)``, the
    same values as :func:`select_segment`, with the weight gradient returned as a coalesced
    sparse tensor of the winning rows only (``N * units`` rows, each ``d_grad * context``)."""

    @staticmethod
    def forward(ctx, context: torch.Tensor, weight: torch.Tensor, activations: torch.Tensor,
                num_segments: int, gating: GatingMode) -> torch.Tensor:
        # activations: context @ weight.T, (N, units * segments), computed by the caller
        units = weight.shape[0] // num_segments
        winner = winning_segment(activations.view(-1, units, num_segments), gating)
        rows = winner + torch.arange(units, device=winner.device) * num_segments  # (N, units)
        ctx.save_for_backward(context, weight, rows)
        return activations.gather(1, rows)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        context, weight, rows = ctx.saved_tensors
        grad_context = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_context = (grad.unsqueeze(-1) * weight[rows]).sum(1)
        if ctx.needs_input_grad[1]:
            # Only rows with a nonzero gradient (a unit no sample kept in its kWTA has none).
            which_context, unit = (grad != 0).nonzero(as_tuple=True)
            values = (grad[which_context, unit].unsqueeze(1) * context[which_context]).to(weight.dtype)
            # One context: one row per unit, ascending and distinct, so already coalesced.
            grad_weight = torch.sparse_coo_tensor(rows[which_context, unit].unsqueeze(0), values,
                                                  weight.shape, is_coalesced=rows.shape[0] == 1,
                                                  check_invariants=False)
            if rows.shape[0] > 1:
                grad_weight = grad_weight.coalesce()
        return grad_context, grad_weight, None, None, None


# Largest active fractions for which the reduced products pay (2 cores): gathering a weight's
# columns costs about a read of the whole weight, its rows far less.
ACTIVE_COLUMNS_FRACTION = 0.35  # forward: input columns nonzero somewhere in the batch
ACTIVE_ROWS_FRACTION = 0.6  # backward: output units with a gradient
DENSE_SKIP_CALLS = 8  # after a call that found nothing sparse, calls that skip the checks


@dataclass
class _ActivityProbe:
    """What a layer's last :func:`activity_linear` call found sparse (input columns, output-unit
    gradients), so layers whose activity is dense (e.g. kWTA at 25% over a batch) skip checks."""

    checked: bool = False  # a check ran and its findings below are not acted on yet
    sparse_input: bool = False
    sparse_grad: bool = False  # (set by the backward)
    skip: int = 0  # calls left that skip the checks
    backoff: int = DENSE_SKIP_CALLS  # the next skip; doubles while the checks keep finding none

    def use_checks(self) -> bool:
        """Whether this call should check for sparsity (else: a plain ``nn.Linear`` call)."""
        if self.skip > 0:
            self.skip -= 1
            return False
        if self.checked and not (self.sparse_input or self.sparse_grad):
            self.checked = False
            self.skip, self.backoff = self.backoff - 1, min(2 * self.backoff, 64 * DENSE_SKIP_CALLS)
            return False
        if self.checked:
            self.backoff = DENSE_SKIP_CALLS
        self.checked, self.sparse_input, self.sparse_grad = True, False, False
        return True


def _active(mask: torch.Tensor, fraction: float) -> torch.Tensor | None:
    """Indices where ``mask`` (1-d) is set, or ``None`` when more than ``fraction`` are."""
    if mask.sum() > fraction * mask.numel():
        return None
    return mask.nonzero().squeeze(1)


class _ActivityLinear(torch.autograd.Function):
    """``x @ weight.T + bias`` over the input columns that are nonzero somewhere in the batch
    (``active``; after a kWTA layer a small fraction), with a backward over the output units that
    have a gradient (after a kWTA layer, only units some sample kept). The same sums as the
    dense products less terms that are exactly zero."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                active: torch.Tensor | None, probe: _ActivityProbe) -> torch.Tensor:
        ctx.probe = probe
        ctx.save_for_backward(x, weight)
        if active is not None:
            x, weight = x.index_select(1, active), weight.index_select(1, active)
        return torch.addmm(bias, x, weight.T) if bias is not None else x @ weight.T

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        grad_x = grad_weight = grad_bias = None
        rows = _active(grad.any(0), ACTIVE_ROWS_FRACTION)  # output units with a gradient
        ctx.probe.sparse_grad = rows is not None
        grad_used = grad if rows is None else grad.index_select(1, rows)
        if ctx.needs_input_grad[0]:
            grad_x = grad_used @ (weight if rows is None else weight.index_select(0, rows))
        if ctx.needs_input_grad[1]:
            grad_weight = grad_used.T @ x  # the rows with a gradient
            if rows is not None:
                grad_weight = grad.new_zeros(weight.shape).index_copy_(0, rows, grad_weight)
        if ctx.needs_input_grad[2]:
            grad_bias = grad.sum(0)
        return grad_x, grad_weight, grad_bias, None, None


def activity_linear(x: torch.Tensor, linear: nn.Linear, probe: _ActivityProbe | None = None
                    ) -> torch.Tensor:
    """``linear(x)`` computed over the active inputs and units only (see :class:`_ActivityLinear`)
    for 2-d CPU input; other input goes through ``linear`` itself. ``probe`` records what was
    found sparse."""
    if (x.dim() != 2 or x.device.type != "cpu" or not torch.is_floating_point(x)
            or torch.is_autocast_enabled("cpu")):
        return linear(x)
    probe = probe if probe is not None else _ActivityProbe()
    with torch.no_grad():
        active = _active(x.any(0), ACTIVE_COLUMNS_FRACTION)
    probe.sparse_input = active is not None
    if active is None and not torch.is_grad_enabled():
        return linear(x)
    return _ActivityLinear.apply(x, linear.weight, linear.bias, active, probe)


def compute_path_state(model: nn.Module) -> dict[str, dict[str, Any]]:
    """What each dendritic layer of ``model`` has found sparse so far, by module name: it decides
    which product the layer's next calls compute (:func:`activity_linear` or the dense one), the
    same sums in another order, so no result but the rounding of later ones depends on it. A
    checkpoint keeps it so that a resumed run repeats the uninterrupted one to the last bit."""
    return {name: asdict(module._probe) for name, module in model.named_modules()
            if isinstance(module, DendriticLayer)}


def load_compute_path_state(model: nn.Module, state: dict[str, dict[str, Any]]) -> None:
    """Restore :func:`compute_path_state` (layers it does not name keep theirs)."""
    for name, module in model.named_modules():
        if isinstance(module, DendriticLayer) and name in state:
            module._probe = _ActivityProbe(**state[name])


class DendriticLayer(nn.Module):
    """A linear layer whose units are gated by their dendritic segments:
    ``y = (W x + b) * sigmoid(d)`` with ``d`` the selected segment activation (see :class:`GatingMode`).

    ``context`` may be a dense ``(B, C)`` tensor (segments evaluated per sample) or an
    :class:`IndexedContext` (segments evaluated once per distinct context; same result).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        num_segments: int,
        context_dim: int,
        gating: GatingMode | str = GatingMode.ABSOLUTE_MAX,
        weight_sparsity: float = 0.0,
        dendrite_sparsity: float = 0.0,
        sparse_segment_updates: bool = False,
        init: InitScheme = "project",
        input_density: float = 1.0,
        context_percent_on: float = 1.0,
    ) -> None:
        super().__init__()
        self.gating = GatingMode(gating)
        self.linear = nn.Linear(in_features, out_features)
        init_linear_(self.linear, init, 1.0 - weight_sparsity, input_density)
        self.weight_sparsity = (
            SparseWeights(self.linear.weight, weight_sparsity) if weight_sparsity > 0 else None
        )
        self.segments = DendriteSegments(
            out_features, num_segments, context_dim, dendrite_sparsity, sparse_segment_updates,
            context_percent_on,
        )
        self.activity_sparse = True  # see feedforward()
        self._probe = _ActivityProbe()

    def dendritic_activation(self, context: torch.Tensor | IndexedContext) -> torch.Tensor:
        """The selected segment activation ``d`` per unit: ``(B, units)``, or ``(1, units)`` when
        the whole batch shares one context (it then broadcasts)."""
        if isinstance(context, IndexedContext):
            d = self.segments.select(context.vectors, self.gating)
            return d if context.index is None else d[context.index]
        return self.segments.select(context, self.gating)

    def feedforward(self, x: torch.Tensor) -> torch.Tensor:
        """``W x + b``; on CPU over the active inputs and units only (:func:`activity_linear`).
        When the last call found neither sparse, the next calls (``DENSE_SKIP_CALLS``, doubling
        while that goes on) skip the checks."""
        if not (self.activity_sparse and self._probe.use_checks()):
            return self.linear(x)
        return activity_linear(x, self.linear, self._probe)

    def forward(self, x: torch.Tensor, context: torch.Tensor | IndexedContext) -> torch.Tensor:
        return apply_dendrites(self.feedforward(x), self.dendritic_activation(context), self.gating)

    def forward_kwinners(self, x: torch.Tensor, context: torch.Tensor | IndexedContext,
                         k: int) -> torch.Tensor:
        """``kwinners(self(x, context), k)``, gating and kWTA fused into one autograd node."""
        y = self.feedforward(x)
        if isinstance(context, IndexedContext):  # d per distinct context, picked inside
            d = self.segments.select(context.vectors, self.gating)
            return gated_kwinners(y, d, self.gating, k, context.index)
        return gated_kwinners(y, self.dendritic_activation(context), self.gating, k)

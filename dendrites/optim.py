"""Optimisers for dendritic networks: fused Adam for dense weights and, for segment weights whose
gradients hold only the winning rows, Adam that steps just the rows that move: exactly
(:class:`ExactRowAdam`, the default on CPU) or lazily (:class:`RowSparseAdam`). On a GPU the
segments get dense gradients and the fused dense Adam by default (:func:`row_sparse_pays`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from dendrites.layers import DendriteSegments, RowUpdate
from dendrites.sparse import attach_rezero_hook


def _fused_supported(params: list[nn.Parameter]) -> bool:
    return all(p.dtype in (torch.float32, torch.float16, torch.bfloat16, torch.float64)
               and p.device.type in ("cpu", "cuda") for p in params)


def _closure_loss(closure: Callable[[], torch.Tensor] | None) -> torch.Tensor | None:
    """The loss of an optimiser's ``closure`` (run with gradients on), as ``step`` returns it."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


class RowSparseAdam(torch.optim.Optimizer):
    """Lazy Adam for parameters whose gradients are sparse COO tensors of whole rows (what
    ``F.embedding(..., sparse=True)`` produces): the same update as ``torch.optim.SparseAdam``
    (moments and weights of rows without gradient are left untouched; bias correction uses the
    parameter's step count), computed by gathering and scattering the touched rows, which is
    several times faster than generic sparse-tensor arithmetic.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        loss = _closure_loss(closure)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                if not param.grad.is_sparse:
                    raise RuntimeError("RowSparseAdam needs sparse row gradients; use Adam for dense ones")
                grad = param.grad.coalesce()
                rows, values = grad.indices()[0], grad.values()
                state = self.state[param]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(param)
                    state["exp_avg_sq"] = torch.zeros_like(param)
                state["step"] += 1
                exp_avg = state["exp_avg"][rows].lerp_(values, 1 - beta1)
                exp_avg_sq = state["exp_avg_sq"][rows].mul_(beta2).addcmul_(values, values,
                                                                            value=1 - beta2)
                state["exp_avg"].index_copy_(0, rows, exp_avg)
                state["exp_avg_sq"].index_copy_(0, rows, exp_avg_sq)
                step = state["step"]
                step_size = group["lr"] * math.sqrt(1 - beta2**step) / (1 - beta1**step)
                update = exp_avg.div_(exp_avg_sq.sqrt_().add_(group["eps"])).mul_(-step_size)
                param.index_add_(0, rows, update)
        return loss


_NEVER = -(2**62)  # ``last_grad`` of a row that has never had a gradient


def resting_window(betas: tuple[float, float], tolerance: float) -> int | None:
    """Steps after its last gradient from which a row's further dense-Adam moves sum to at most
    ``tolerance * lr`` per weight, or ``None`` where no such bound holds (``beta1**2 >= beta2``).

    With zero gradient after step ``s``, dense Adam moves a weight at step ``s + j`` by
    ``lr * m_hat / (sqrt(v_hat) + eps)`` with ``m = beta1**j m_s``, ``v = beta2**j v_s``. Since
    ``|m_s| <= K sqrt(v_s)`` with ``K = (1 - beta1) / sqrt((1 - beta2)(1 - beta1**2 / beta2))``
    (Cauchy-Schwarz over the two moving averages), that move is at most
    ``lr * K q**j / (1 - beta1**j)`` with ``q = beta1 / sqrt(beta2)``, and the moves from ``j = W``
    on sum to at most ``lr * K q**W / ((1 - q)(1 - beta1**W))``.
    """
    beta1, beta2 = betas
    if beta1 == 0.0:
        return 1
    q = beta1 / math.sqrt(beta2)
    if q >= 1.0:
        return None
    k = (1 - beta1) / math.sqrt((1 - beta2) * (1 - beta1**2 / beta2))
    window = 1
    while k * q**window / ((1 - q) * (1 - beta1**window)) > tolerance:
        window += 1
    return window


LIVE_ROWS = "live_rows"
"""The key of an :class:`ExactRowAdam` state dict that lists each parameter's live rows."""


class _LiveRows:
    """The rows an :class:`ExactRowAdam` steps every step, packed: their weights (a copy of the
    parameter's rows), moments and a gradient buffer, ``rows[i]`` held in slot ``i``."""

    def __init__(self, param: torch.Tensor) -> None:
        self.rows = param.new_empty(0, dtype=torch.long)
        self.slot_of = torch.full((param.shape[0],), -1, dtype=torch.long, device=param.device)
        self.param, self.exp_avg, self.exp_avg_sq, self.grad = (
            param.new_zeros(0, *param.shape[1:]) for _ in range(4))
        self.version = -1  # the parameter's _version when ``param`` last matched it

    def __len__(self) -> int:
        return self.rows.numel()

    def add(self, rows: torch.Tensor, param: torch.Tensor, exp_avg: torch.Tensor,
            exp_avg_sq: torch.Tensor) -> None:
        """Append ``rows`` with their weights and (caught-up) moments."""
        start, end = len(self), len(self) + rows.numel()
        if end > self.param.shape[0]:
            capacity = max(end, self.param.shape[0] * 3 // 2, 64)
            for name in ("param", "exp_avg", "exp_avg_sq", "grad"):
                old = getattr(self, name)
                new = old.new_zeros(capacity, *old.shape[1:])
                new[:start] = old[:start]
                setattr(self, name, new)
        self.param[start:end] = param
        self.exp_avg[start:end] = exp_avg
        self.exp_avg_sq[start:end] = exp_avg_sq
        self.rows = torch.cat([self.rows, rows])
        self.slot_of[rows] = torch.arange(start, end, device=rows.device)

    def keep(self, slots: torch.Tensor) -> None:
        """Keep only ``slots`` (packed again, in their order)."""
        self.slot_of[self.rows] = -1
        self.rows = self.rows[slots]
        self.param, self.exp_avg, self.exp_avg_sq = (
            t.index_select(0, slots) for t in (self.param, self.exp_avg, self.exp_avg_sq))
        self.grad = self.grad.new_zeros(self.param.shape)
        self.slot_of[self.rows] = torch.arange(len(self), device=slots.device)


class ExactRowAdam(torch.optim.Optimizer):
    """Adam that follows dense ``torch.optim.Adam`` (no weight decay) while stepping only the rows
    that move, for parameters with sparse row gradients (the winning dendritic segments).

    Dense Adam also moves a row whose gradient is zero, through its momentum. Here such a row
    stays *live*, stepped every step with the dense arithmetic (zero gradient), for
    :func:`resting_window` steps after its last nonzero gradient (about 300 with the default
    betas); after that its remaining moves sum to at most ``tail_tolerance * lr`` per weight
    (``2**-40 * lr`` by default, far below float32 rounding of the weights) and it rests. A
    resting row's moments are decayed in closed form (``m * beta1**n``, ``v * beta2**n``) when it
    next gets a gradient or the state is read (``state_dict``, :meth:`catch_up`), so they are
    those of dense Adam; its weights need no catch-up, so evaluation, the model's ``state_dict``
    and checkpoints read current weights. Live rows are kept packed (weights, moments and
    gradient in contiguous buffers) so a step is one fused Adam kernel over them plus one
    scatter of their weights. Dense gradients (e.g. from a consolidation penalty) take a full
    dense step.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, tail_tolerance: float = 2.0**-40) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps,
                                  "window": resting_window(betas, tail_tolerance)})
        self._live: dict[torch.Tensor, _LiveRows] = {}
        self._dense_last: set[torch.Tensor] = set()  # params whose last step was dense
        self._loaded_live: dict[int, torch.Tensor] = {}
        self.register_state_dict_pre_hook(lambda optimizer: optimizer.catch_up())
        self.register_state_dict_post_hook(ExactRowAdam._with_live_rows)
        self.register_load_state_dict_pre_hook(ExactRowAdam._take_live_rows)
        self.register_load_state_dict_post_hook(lambda optimizer: optimizer._after_load())

    def _state(self, param: torch.Tensor) -> dict[str, torch.Tensor]:
        state = self.state[param]
        if not state:
            rows = param.shape[0]
            state["step"] = torch.zeros((), dtype=torch.float32, device=param.device)
            state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            state["last_grad"] = torch.full((rows,), _NEVER, dtype=torch.long, device=param.device)
            state["synced"] = torch.zeros(rows, dtype=torch.long, device=param.device)
        elif state["step"].device != param.device:  # (a loaded state keeps "step" on the CPU;
            state["step"] = state["step"].to(param.device)  # the fused CUDA kernel wants it here)
        return state

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        loss = _closure_loss(closure)
        for group in self.param_groups:
            dense = []
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self._state(param)
                state["step"] += 1
                if param.grad.is_sparse:
                    self._dense_last.discard(param)
                    self._sparse_step(param, state, group)
                else:
                    self._before_dense_step(param, state, group)
                    dense.append(param)
            if dense:  # one multi-tensor kernel for all of them
                states = [self.state[p] for p in dense]
                self._adam([p.detach() for p in dense], [p.grad for p in dense],
                           [st["exp_avg"] for st in states], [st["exp_avg_sq"] for st in states],
                           [st["step"] for st in states], group)
                for param, state in zip(dense, states, strict=True):
                    self._after_dense_step(param, state)
        return loss

    @staticmethod
    def _adam(params: list[torch.Tensor], grads: list[torch.Tensor], exp_avgs: list[torch.Tensor],
              exp_avg_sqs: list[torch.Tensor], steps: list[torch.Tensor], group: dict[str, Any]) -> None:
        beta1, beta2 = group["betas"]
        torch._fused_adam_(params, grads, exp_avgs, exp_avg_sqs, [], steps, amsgrad=False,
                           lr=group["lr"], beta1=beta1, beta2=beta2, weight_decay=0.0,
                           eps=group["eps"], maximize=False)

    def _sparse_step(self, param: torch.Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        step = int(state["step"].item())
        grad = param.grad
        rows, values = grad._indices()[0], grad._values()
        if not (grad.is_coalesced() or bool((rows[1:] > rows[:-1]).all())):
            grad = grad.coalesce()  # (autograd drops the flag; ascending rows are distinct)
            rows, values = grad.indices()[0], grad.values()
        live = self._live.get(param)
        if live is None:  # first sparse step, or after a dense step or a load: rows still moving
            live = self._live[param] = _LiveRows(param)
            rows_in_window = self._moving(state["last_grad"], step, group["window"]).nonzero()
            new = torch.cat([rows, rows_in_window.squeeze(1)]).unique()
        else:
            if param._version != live.version:  # weights changed outside (a load, re-zeroing)
                live.param[: len(live)] = param.index_select(0, live.rows)
            new = rows[live.slot_of[rows] < 0]
        if new.numel():
            exp_avg, exp_avg_sq = (state[k].index_select(0, new) for k in ("exp_avg", "exp_avg_sq"))
            self._decay_moments(exp_avg, exp_avg_sq, step - 1 - state["synced"][new], group["betas"])
            live.add(new, param.index_select(0, new), exp_avg, exp_avg_sq)
        slots, n = live.slot_of[rows], len(live)
        live.grad.index_copy_(0, slots, values)
        self._adam([live.param[:n]], [live.grad[:n]], [live.exp_avg[:n]], [live.exp_avg_sq[:n]],
                   [state["step"]], group)
        live.grad.index_fill_(0, slots, 0.0)
        version_before = param._version
        param.index_copy_(0, live.rows, live.param[:n])
        live.version = param._version
        param.row_update = RowUpdate(self._count(param) + 1, live.rows, live.param[:n],
                                     version_before, param._version)
        state["last_grad"][rows] = step
        self._retire(live, state, group, step)

    @staticmethod
    def _moving(last_grad: torch.Tensor, step: int, window: int | None) -> torch.Tensor:
        """Rows that dense Adam still moves at ``step`` (gradient within the window before it)."""
        if window is None:
            return last_grad != _NEVER
        return last_grad > step - 1 - window

    def _retire(self, live: _LiveRows, state: dict[str, Any], group: dict[str, Any], step: int) -> None:
        """Let rows past their window rest (moments back to the full state), once they are many."""
        if group["window"] is None:
            return
        resting = state["last_grad"][live.rows] <= step - group["window"]
        count = int(resting.sum())
        if count == 0 or count * 4 < len(live):
            return
        self._write_back(live, state, step, resting.nonzero().squeeze(1))
        live.keep((~resting).nonzero().squeeze(1))

    @staticmethod
    def _write_back(live: _LiveRows, state: dict[str, Any], step: int,
                    slots: torch.Tensor | None = None) -> None:
        """Copy live rows' moments (``slots``, default all), current as of ``step``, into the
        full state."""
        if slots is None:
            slots = torch.arange(len(live), device=live.rows.device)
        rows = live.rows[slots]
        state["exp_avg"].index_copy_(0, rows, live.exp_avg.index_select(0, slots))
        state["exp_avg_sq"].index_copy_(0, rows, live.exp_avg_sq.index_select(0, slots))
        state["synced"][rows] = step

    def _before_dense_step(self, param: torch.Tensor, state: dict[str, Any],
                           group: dict[str, Any]) -> None:
        """Bring every row's moments to the previous step, for a dense step of all rows."""
        step = int(state["step"].item())
        live = self._live.pop(param, None)
        if live is not None:
            self._write_back(live, state, step - 1)
        if param not in self._dense_last:  # (after a dense step every row is current)
            self._decay_moments(state["exp_avg"], state["exp_avg_sq"], step - 1 - state["synced"],
                                group["betas"])

    def _after_dense_step(self, param: torch.Tensor, state: dict[str, Any]) -> None:
        step = int(state["step"].item())
        param.row_update = RowUpdate(self._count(param) + 1)  # every row may have changed
        state["synced"].fill_(step)
        state["last_grad"].fill_(step)
        self._dense_last.add(param)

    @staticmethod
    def _count(param: torch.Tensor) -> int:
        update = getattr(param, "row_update", None)
        return update.count if update is not None else 0

    @staticmethod
    def _decay_moments(exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor, lag: torch.Tensor,
                       betas: tuple[float, float]) -> None:
        """Advance resting rows' moments by their ``lag`` zero-gradient steps, in closed form."""
        if not bool((lag > 0).any()):
            return
        shape = (-1,) + (1,) * (exp_avg.dim() - 1)
        lag = lag.to(torch.float64).view(shape)
        exp_avg.mul_(torch.pow(betas[0], lag).to(exp_avg.dtype))
        exp_avg_sq.mul_(torch.pow(betas[1], lag).to(exp_avg_sq.dtype))

    @torch.no_grad()
    def catch_up(self) -> None:
        """Bring the full moment state up to the current step: live rows' moments copied in,
        resting rows' decayed. Call before reading ``state`` directly (``state_dict`` does)."""
        for group in self.param_groups:
            for param in group["params"]:
                state = self.state.get(param)
                if not state:
                    continue
                step = int(state["step"].item())
                if param in self._live:
                    self._write_back(self._live[param], state, step)
                self._decay_moments(state["exp_avg"], state["exp_avg_sq"], step - state["synced"],
                                    group["betas"])
                state["synced"].fill_(step)

    def _params(self) -> list[torch.Tensor]:
        """The parameters in the order ``state_dict`` numbers them."""
        return [param for group in self.param_groups for param in group["params"]]

    @staticmethod
    def _with_live_rows(optimizer: ExactRowAdam, state_dict: dict[str, Any]) -> dict[str, Any]:
        """``state_dict`` with each parameter's live rows (:data:`LIVE_ROWS`, by its index): a
        row past its window stays live until enough have rested (:meth:`_retire`), and is
        stepped till then, so a loaded state must keep the same rows live to step as the run it
        was saved from did, to the last bit."""
        state_dict[LIVE_ROWS] = {index: optimizer._live[param].rows.clone()
                                 for index, param in enumerate(optimizer._params())
                                 if param in optimizer._live}
        return state_dict

    @staticmethod
    def _take_live_rows(optimizer: ExactRowAdam, state_dict: dict[str, Any]) -> None:
        optimizer._loaded_live = dict(state_dict.get(LIVE_ROWS, {}))

    def _after_load(self) -> None:
        self._live.clear()
        self._dense_last.clear()
        # Optimizer.load_state_dict casts every tensor to the parameter's dtype.
        for state in self.state.values():
            for key in ("last_grad", "synced"):
                if key in state:
                    state[key] = state[key].to(torch.long)
        # The saved live rows live again, their moments current as of the saved step (a state
        # saved without them: the rows still in their window, at the next step).
        params = self._params()
        for index, rows in self._loaded_live.items():
            param, state = params[index], self.state[params[index]]
            rows = rows.to(param.device, torch.long)
            live = self._live[param] = _LiveRows(param)
            live.add(rows, param.index_select(0, rows), state["exp_avg"].index_select(0, rows),
                     state["exp_avg_sq"].index_select(0, rows))
        self._loaded_live = {}


def row_sparse_pays(device: torch.device) -> bool:
    """Whether segment weights on ``device`` train faster from winning-row gradients
    (:class:`ExactRowAdam`) than from dense ones. On CPU they do (the dense Adam step over all
    segment weights is memory traffic; ``bench/bench_dendrites.py``). On a GPU that traffic takes
    microseconds, while the row bookkeeping needs host synchronisations (row counts, the step
    number): measured on an H200 at paper sizes, 3.6 ms per step with it vs 2.3 ms dense."""
    return device.type == "cpu"


class DendriticAdam:
    """Adam over a model's parameters: the dense ones with the fused kernel where supported, the
    segment weights from winning-row gradients only where that pays. With ``exact_segments``
    (default: where :func:`row_sparse_pays` for the segments' device, i.e. on CPU) the segments
    are switched to sparse gradients (``DendriteSegments.sparse_grad``) and stepped by
    :class:`ExactRowAdam`; otherwise they get dense gradients and the fused dense Adam. Both
    follow dense Adam over all parameters. Segments built with ``sparse_updates`` get the lazy
    :class:`RowSparseAdam` instead. ``capturable`` makes every step safe to capture in a CUDA
    graph (step counts on the device; dense segment updates only). Exposes the optimiser methods
    the trainers use.
    """

    def __init__(self, model: nn.Module, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, exact_segments: bool | None = None,
                 capturable: bool = False) -> None:
        segments = [m for m in model.modules()
                    if isinstance(m, DendriteSegments) and m.weight.requires_grad]
        if exact_segments is None:
            exact_segments = not capturable and all(row_sparse_pays(m.weight.device) for m in segments)
        dense, lazy, exact = _parameter_split(model, segments, exact_segments)
        if capturable and (lazy or exact):
            raise ValueError("a capturable (CUDA-graph) optimiser needs dense segment updates: "
                             "no sparse_segment_updates, exact_segments=False")
        for module in segments:
            module.sparse_grad = module.sparse_updates or exact_segments
        self.optimizers: list[torch.optim.Optimizer] = [
            torch.optim.Adam(dense, lr=lr, betas=betas, eps=eps, fused=_fused_supported(dense),
                             capturable=capturable)
        ]
        if lazy:
            self.optimizers.append(RowSparseAdam(lazy, lr=lr, betas=betas, eps=eps))
        if exact:
            self.optimizers.append(ExactRowAdam(exact, lr=lr, betas=betas, eps=eps))
        self._capturable = capturable
        # the parameters each optimiser would hold with the other segment update (a checkpoint
        # written on a device that used it loads here too)
        other_dense, _, other_exact = _parameter_split(model, segments, not exact_segments)
        self._other_split = [other_dense] + [params for params in (lazy, other_exact) if params]
        self._post_hooks: list[Callable[..., None]] = []

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return [group for opt in self.optimizers for group in opt.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for opt in self.optimizers:
            opt.step()
        for hook in self._post_hooks:
            hook(self, (), {})

    def register_step_post_hook(self, hook: Callable[..., None]) -> None:
        """Run ``hook(optimizer, args, kwargs)`` after every step (as torch optimisers do)."""
        self._post_hooks.append(hook)

    def state_dict(self) -> dict[str, Any]:
        return {"optimizers": [opt.state_dict() for opt in self.optimizers]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Load a :meth:`state_dict`, also one written with the other segment update (a
        checkpoint from a CPU run resumed on a GPU, or back): each parameter's Adam state is the
        same in both, only grouped differently."""
        saved = state["optimizers"]
        if len(saved) != len(self.optimizers):
            if len(saved) != len(self._other_split):
                raise ValueError("optimizer state was saved for another model or sparse-update "
                                 "setting (its parameter groups differ)")
            saved = self._regrouped(saved)
        for opt, opt_state in zip(self.optimizers, saved, strict=True):
            opt.load_state_dict(opt_state)
        adam = self.optimizers[0]
        for group in adam.param_groups:  # (torch copies the saved flags; keep the built ones)
            group["capturable"] = self._capturable
            for param in group["params"]:
                step = adam.state.get(param, {}).get("step")
                if torch.is_tensor(step) and (self._capturable or group["fused"]):
                    adam.state[param]["step"] = step.to(param.device, torch.float32)

    def _regrouped(self, saved: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``saved`` (written with the other segment update) as this optimiser's state dicts."""
        by_param: dict[int, dict[str, Any]] = {}
        for params, opt_state in zip(self._other_split, saved, strict=True):
            indices = [i for group in opt_state["param_groups"] for i in group["params"]]
            for param, index in zip(params, indices, strict=True):
                if index in opt_state["state"]:
                    by_param[id(param)] = opt_state["state"][index]
        regrouped = []
        for opt in self.optimizers:
            fresh = opt.state_dict()
            params = [p for group in opt.param_groups for p in group["params"]]
            indices = [i for group in fresh["param_groups"] for i in group["params"]]
            fresh["state"] = {index: _adam_state_for(opt, param, by_param[id(param)])
                              for param, index in zip(params, indices, strict=True)
                              if id(param) in by_param}
            regrouped.append(fresh)
        return regrouped


def _parameter_split(model: nn.Module, segments: list[DendriteSegments], exact_segments: bool
                     ) -> tuple[list[nn.Parameter], list[nn.Parameter], list[nn.Parameter]]:
    """The trainable parameters for the dense Adam, the lazy segment Adam and the exact one."""
    lazy = [m.weight for m in segments if m.sparse_updates]
    exact = [m.weight for m in segments if not m.sparse_updates and exact_segments]
    row_ids = {id(p) for p in lazy + exact}
    dense = [p for p in model.parameters() if id(p) not in row_ids and p.requires_grad]
    return dense, lazy, exact


def _adam_state_for(optimizer: torch.optim.Optimizer, param: torch.Tensor,
                    state: dict[str, Any]) -> dict[str, Any]:
    """One parameter's saved Adam state (step and both moments, current as of ``step``) in the
    form ``optimizer`` keeps: an :class:`ExactRowAdam` also records every row as last moved and
    synced at that step (as after a dense step)."""
    if isinstance(optimizer, RowSparseAdam):  # (the same in both layouts)
        return state
    step = state["step"]
    moments = {"exp_avg": state["exp_avg"], "exp_avg_sq": state["exp_avg_sq"]}
    if isinstance(optimizer, ExactRowAdam):
        count = int(step.item() if torch.is_tensor(step) else step)
        rows = torch.full((param.shape[0],), count, dtype=torch.long)
        return {"step": torch.tensor(float(count)), **moments, "last_grad": rows, "synced": rows.clone()}
    return {"step": step if torch.is_tensor(step) else torch.tensor(float(step)), **moments}


def dendritic_adam(model: nn.Module, lr: float, **kwargs: Any) -> DendriticAdam:
    """Adam for ``model`` that also handles sparse segment gradients and re-zeroes sparse weights."""
    optimizer = DendriticAdam(model, lr, **kwargs)
    attach_rezero_hook(optimizer, model)
    return optimizer

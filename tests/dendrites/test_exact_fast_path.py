"""The default fast training path on CPU (winner-only segment gradients stepped by ExactRowAdam)
trains like plain dense ``torch.optim.Adam`` over all parameters, and its state carries over to
the dense segment update a GPU uses (and back)."""

import copy

import pytest
import torch
import torch.nn.functional as F

from dendrites import DendriticMLP, GatingMode, IndexedContext, attach_rezero_hook, dendritic_adam, kwinners
from dendrites.gating import apply_dendrites
from dendrites.kwinners import gated_kwinners
from dendrites.layers import activity_linear
from dendrites.optim import ExactRowAdam, resting_window


def _model(dendrite_sparsity: float = 0.0) -> DendriticMLP:
    return DendriticMLP(12, 3, (32, 24), num_segments=4, context_dim=6, kw_percent_on=0.25,
                        weight_sparsity=0.5, dendrite_sparsity=dendrite_sparsity)


def _plain_forward(model: DendriticMLP, x: torch.Tensor, ctx: IndexedContext) -> torch.Tensor:
    """The model's function through the plain ops: nn.Linear, dense segment selection, gating,
    then kWTA (the reference the fast paths must match)."""
    for layer, activation in zip(model.layers, model.activations, strict=True):
        x = activation(apply_dendrites(layer.linear(x), layer.dendritic_activation(ctx), layer.gating))
    return model.head(x)


def _context(step: int, contexts: torch.Tensor) -> IndexedContext:
    """A new shared context every 7 steps; every 5th step a batch mixing three contexts."""
    if step % 5 == 0:
        return IndexedContext(contexts[:3], torch.randint(0, 3, (16,)))
    return IndexedContext.shared(contexts[(step // 7) % len(contexts)])


def _train_side_by_side(betas: tuple[float, float], steps: int, reload_at: int | None = None,
                        dendrite_sparsity: float = 0.0, switch_at: tuple[int, ...] = ()):
    """The fast model and its optimiser, and the plain reference, trained on the same batches;
    a checkpoint round trip at ``reload_at``, and at each of ``switch_at`` one into the other
    segment update (row-sparse <-> dense, as a CPU checkpoint resumed on a GPU does)."""
    torch.manual_seed(0)
    fast = _model(dendrite_sparsity)
    ref = copy.deepcopy(fast)
    fast_opt = dendritic_adam(fast, lr=1e-2, betas=betas)
    ref_opt = torch.optim.Adam(ref.parameters(), lr=1e-2, betas=betas)
    attach_rezero_hook(ref_opt, ref)
    contexts = torch.randn(5, 6)
    for step in range(steps):
        x, y, ctx = torch.randn(16, 12), torch.randint(0, 3, (16,)), _context(step, contexts)
        for forward, optimizer in ((fast, fast_opt), (lambda x, c: _plain_forward(ref, x, c), ref_opt)):
            loss = F.cross_entropy(forward(x, ctx), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if step == reload_at or step in switch_at:  # a checkpoint round trip mid-run
            state = fast_opt.state_dict()
            exact = isinstance(fast_opt.optimizers[-1], ExactRowAdam) != (step in switch_at)
            fast_opt = dendritic_adam(fast, lr=1e-2, betas=betas, exact_segments=exact)
            fast_opt.load_state_dict(state)
    return fast, fast_opt, ref, ref_opt


@pytest.mark.parametrize(
    ("betas", "steps", "dendrite_sparsity"),
    # the second rests and revives rows (window 26); the third re-zeroes segment weights
    [((0.9, 0.999), 50, 0.0), ((0.3, 0.9), 150, 0.0), ((0.3, 0.9), 60, 0.5)],
)
def test_default_fast_path_trains_like_dense_adam(betas, steps, dendrite_sparsity):
    fast, fast_opt, ref, ref_opt = _train_side_by_side(betas, steps, steps // 2, dendrite_sparsity)
    assert isinstance(fast_opt.optimizers[-1], ExactRowAdam)
    for p_fast, p_ref in zip(fast.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p_fast, p_ref, rtol=1e-4, atol=1e-5)
    # the moments too, once the resting rows are caught up (state_dict does it)
    exact = fast_opt.optimizers[-1]
    exact.state_dict()
    for layer_fast, layer_ref in zip(fast.layers, ref.layers, strict=True):
        ours, theirs = exact.state[layer_fast.segments.weight], ref_opt.state[layer_ref.segments.weight]
        torch.testing.assert_close(ours["exp_avg"], theirs["exp_avg"], rtol=1e-3, atol=1e-7)
        torch.testing.assert_close(ours["exp_avg_sq"], theirs["exp_avg_sq"], rtol=1e-3, atol=1e-9)


@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.3, 0.9)])
def test_state_carries_over_between_row_sparse_and_dense_segment_updates(betas):
    """Row-sparse state loaded into the dense update (a CPU checkpoint resumed on a GPU) and back
    again: the run goes on along the dense-Adam trajectory."""
    fast, fast_opt, ref, _ = _train_side_by_side(betas, 60, switch_at=(20, 40))
    assert isinstance(fast_opt.optimizers[-1], ExactRowAdam)  # (row-sparse, dense, row-sparse)
    for p_fast, p_ref in zip(fast.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p_fast, p_ref, rtol=1e-4, atol=1e-5)


def test_segments_get_winner_row_gradients_only_from_dendritic_adam():
    torch.manual_seed(0)
    model = _model()
    ref = copy.deepcopy(model)
    x, y = torch.randn(8, 12), torch.randint(0, 3, (8,))
    contexts = (IndexedContext.shared(torch.randn(6)), IndexedContext(torch.randn(3, 6), torch.arange(8) % 3))
    for ctx in contexts:
        dendritic_adam(model, lr=1e-3).zero_grad()
        ref.zero_grad()
        F.cross_entropy(model(x, ctx), y).backward()
        F.cross_entropy(_plain_forward(ref, x, ctx), y).backward()
        sparse, dense = model.layers[0].segments.weight.grad, ref.layers[0].segments.weight.grad
        assert sparse.is_sparse
        rows = sparse._indices()[0]
        assert torch.all(rows[1:] > rows[:-1])  # distinct rows: no coalescing needed
        assert sparse._nnz() <= ctx.vectors.shape[0] * 32
        torch.testing.assert_close(sparse.to_dense(), dense)
    dendritic_adam(model, lr=1e-3, exact_segments=False)
    assert not model.layers[0].segments.sparse_grad


def test_resting_window_bounds_the_remaining_moves():
    """Dense Adam in float64: after a row's last gradient, its moves from the window on sum to at
    most ``tolerance * lr``."""
    torch.manual_seed(0)
    betas, lr, tolerance = (0.9, 0.999), 1.0, 2.0**-40
    window = resting_window(betas, tolerance)
    assert window is not None and window < 400
    param = torch.zeros(64, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([param], lr=lr, betas=betas)
    for step in range(window + 3000):
        # worst-ish case: a few large same-sign gradients, then zeros
        param.grad = torch.randn(64, dtype=torch.float64).abs() * 10 if step < 5 else torch.zeros_like(param)
        if step == 4 + window:
            at_window = param.detach().clone()
        optimizer.step()
    assert (param.detach() - at_window).abs().max().item() <= tolerance * lr
    assert resting_window((0.99, 0.9), tolerance) is None  # beta1**2 >= beta2: no bound


def test_exact_row_adam_takes_dense_gradients():
    torch.manual_seed(0)
    ours = torch.nn.Parameter(torch.randn(6, 3))
    ref = torch.nn.Parameter(ours.detach().clone())
    opt_ours, opt_ref = ExactRowAdam([ours], lr=0.1), torch.optim.Adam([ref], lr=0.1)
    for step in range(8):
        grad = torch.randn(6, 3)
        if step % 2:  # a sparse step touching rows 1 and 4 only
            grad[[0, 2, 3, 5]] = 0
            ours.grad = grad.to_sparse(1)
        else:
            ours.grad = grad
        ref.grad = grad
        opt_ours.step()
        opt_ref.step()
    torch.testing.assert_close(ours, ref)


@pytest.mark.parametrize("mode", list(GatingMode))
@pytest.mark.parametrize(("d_rows", "indexed"), [(1, False), (9, False), (3, True)])
def test_fused_gating_and_kwinners_match_the_composition(mode, d_rows, indexed):
    torch.manual_seed(0)
    y = torch.randn(9, 40, requires_grad=True)
    d = torch.randn(d_rows, 40, requires_grad=True)
    index = torch.tensor([0, 2, 2, 1, 0, 0, 1, 2, 2]) if indexed else None
    fused = gated_kwinners(y, d, mode, 6, index)
    plain = kwinners(apply_dendrites(y, d if index is None else d[index], mode), 6)
    assert torch.equal(fused, plain)
    upstream = torch.randn(9, 40)
    grads_fused = torch.autograd.grad(fused, (y, d), upstream)
    grads_plain = torch.autograd.grad(plain, (y, d), upstream)
    for ours, theirs in zip(grads_fused, grads_plain, strict=True):
        torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("dendrite_sparsity", [0.0, 0.5])  # 0.5: re-zeroed after every step
def test_cached_segment_activations_follow_the_weights(dendrite_sparsity):
    """Between steps only the optimiser's rows are recomputed; the cache must match a fresh
    product after optimiser steps, a load and a re-zeroing."""
    torch.manual_seed(0)
    model = _model(dendrite_sparsity)
    optimizer = dendritic_adam(model, lr=1e-2)
    ctx = IndexedContext.shared(torch.randn(6))
    segments = model.layers[0].segments
    for step in range(12):
        if step == 6:  # weights changed outside the optimiser (a load bumps the version)
            model.load_state_dict(_model(dendrite_sparsity).state_dict())
        loss = F.cross_entropy(model(torch.randn(16, 12), ctx), torch.randint(0, 3, (16,)))
        optimizer.zero_grad()
        loss.backward()
        torch.testing.assert_close(segments._cache.activations, ctx.vectors @ segments.weight.detach().T)
        optimizer.step()


@pytest.mark.parametrize("input_density", [0.1, 1.0])
def test_activity_linear_matches_nn_linear(input_density):
    torch.manual_seed(0)
    linear = torch.nn.Linear(50, 30)
    x = (torch.randn(8, 50) * (torch.rand(1, 50) < input_density)).requires_grad_()
    upstream = torch.randn(8, 30) * (torch.rand(1, 30) < 0.2)  # gradient for a few units only
    ours = activity_linear(x, linear)
    torch.testing.assert_close(ours, linear(x))
    grads = torch.autograd.grad(ours, (x, linear.weight, linear.bias), upstream)
    expected = torch.autograd.grad(linear(x), (x, linear.weight, linear.bias), upstream)
    for g, e in zip(grads, expected, strict=True):
        torch.testing.assert_close(g, e)


def test_a_reloaded_exact_row_adam_steps_the_same_rows_to_the_last_bit():
    """A row past its resting window stays live, stepped with zero gradient, until enough rows
    rest to repack (``_retire``). A state saved then and loaded into a new optimiser keeps those
    rows live: both go on with the same weights to the last bit."""
    betas = (0.9, 0.999)  # (Adam's: a resting row's second moment still counts after the window)
    window = resting_window(betas, 2.0**-40)
    generator = torch.Generator().manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(64, 3, generator=generator))
    optimizer = ExactRowAdam([weight], lr=1e-2, betas=betas)

    def step(optimizer: ExactRowAdam, param: torch.nn.Parameter, rows: torch.Tensor, values: torch.Tensor):
        param.grad = torch.sparse_coo_tensor(rows.unsqueeze(0), values, param.shape).coalesce()
        optimizer.step()

    every, most = torch.arange(64), torch.arange(8, 64)  # rows 0-7 get no gradient for a while
    phases = [(every, window), (most, window + 50), (every, window)]
    batches = [(rows, torch.randn(len(rows), 3, generator=generator))
               for rows, steps in phases for _ in range(steps)]
    saved_at = 2 * window + 25  # rows 0-7 past their window, too few of them to rest yet, and
    # 25 more steps without a gradient to come: the live run decays their moments step by step
    for rows, values in batches[:saved_at]:
        step(optimizer, weight, rows, values)
    state = optimizer.state_dict()
    last_grad, live = optimizer.state[weight]["last_grad"], optimizer._live[weight].rows
    assert bool((last_grad[live] <= saved_at - window).any())  # a live row past its window
    other = torch.nn.Parameter(weight.detach().clone())
    reloaded = ExactRowAdam([other], lr=1e-2, betas=betas)
    reloaded.load_state_dict(copy.deepcopy(state))
    for rows, values in batches[saved_at:]:
        step(optimizer, weight, rows, values)
        step(reloaded, other, rows, values)
    assert torch.equal(weight, other)

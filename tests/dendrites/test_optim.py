import pytest
import torch
import torch.nn.functional as F

from dendrites import DendriticMLP, IndexedContext, dendritic_adam
from dendrites.optim import RowSparseAdam


def _sparse_row_grad(param, rows, values):
    return torch.sparse_coo_tensor(rows.unsqueeze(0), values, param.shape)


def test_row_sparse_adam_matches_torch_sparse_adam():
    torch.manual_seed(0)
    ours = torch.nn.Parameter(torch.randn(12, 5))
    ref = torch.nn.Parameter(ours.detach().clone())
    opt_ours, opt_ref = RowSparseAdam([ours], lr=0.01), torch.optim.SparseAdam([ref], lr=0.01)
    for step in range(6):
        rows = torch.tensor([step % 12, 3, 3, 7])  # duplicates must be summed
        values = torch.randn(4, 5)
        ours.grad = _sparse_row_grad(ours, rows, values)
        ref.grad = _sparse_row_grad(ref, rows, values)
        opt_ours.step()
        opt_ref.step()
    torch.testing.assert_close(ours, ref)
    untouched = [r for r in range(12) if r not in (0, 1, 2, 3, 4, 5, 7)]
    assert opt_ours.state[ours]["exp_avg"][untouched].abs().sum() == 0


def test_row_sparse_adam_refuses_dense_gradients():
    param = torch.nn.Parameter(torch.randn(3, 2))
    param.grad = torch.ones(3, 2)
    with pytest.raises(RuntimeError, match="sparse row gradients"):
        RowSparseAdam([param]).step()


def test_sparse_segment_updates_give_same_forward_and_only_move_winning_segments():
    torch.manual_seed(0)
    kwargs = dict(num_segments=4, context_dim=6, kw_percent_on=0.3, weight_sparsity=0.5)
    sparse = DendriticMLP(10, 3, (16,), sparse_segment_updates=True, **kwargs)
    dense = DendriticMLP(10, 3, (16,), **kwargs)
    dense.load_state_dict(sparse.state_dict())
    x, y = torch.randn(8, 10), torch.randint(0, 3, (8,))
    ctx = IndexedContext.shared(torch.randn(6))
    torch.testing.assert_close(sparse(x, ctx), dense(x, ctx))
    # gradients agree: the sparse one holds exactly the nonzero rows of the dense one
    F.cross_entropy(sparse(x, ctx), y).backward()
    F.cross_entropy(dense(x, ctx), y).backward()
    seg_sparse, seg_dense = sparse.layers[0].segments.weight, dense.layers[0].segments.weight
    assert seg_sparse.grad.is_sparse
    torch.testing.assert_close(seg_sparse.grad.to_dense(), seg_dense.grad)
    # an optimiser step moves one segment per unit (the winner), nothing else
    before = seg_sparse.detach().clone()
    optimizer = dendritic_adam(sparse, lr=0.01)
    optimizer.step()
    moved = (seg_sparse.detach() != before).any(dim=1).view(16, 4)
    assert torch.all(moved.sum(dim=1) <= 1)
    assert moved.any()


def test_dendritic_adam_state_roundtrip_and_rezero():
    torch.manual_seed(0)
    model = DendriticMLP(10, 3, (16,), num_segments=2, context_dim=4, kw_percent_on=0.5,
                         weight_sparsity=0.5, sparse_segment_updates=True)
    optimizer = dendritic_adam(model, lr=0.01)
    ctx = IndexedContext.shared(torch.randn(4))
    for _ in range(3):
        optimizer.zero_grad()
        F.cross_entropy(model(torch.randn(8, 10), ctx), torch.randint(0, 3, (8,))).backward()
        optimizer.step()
    mask = model.layers[0].weight_sparsity.mask
    assert torch.all(model.layers[0].linear.weight[~mask] == 0)
    clone = dendritic_adam(model, lr=0.01)
    clone.load_state_dict(optimizer.state_dict())
    assert len(clone.param_groups) == 2


def test_segments_train_row_sparse_on_cpu_and_dense_elsewhere():
    """The exact row-sparse segment step is the default where it pays (CPU); on other devices
    (a GPU; here the meta device stands in) segments get dense gradients and dense Adam."""
    from dendrites.optim import ExactRowAdam

    def build():
        return DendriticMLP(12, 3, (32, 32), num_segments=4, context_dim=6, kw_percent_on=0.25)

    on_cpu = build()
    kinds = {type(opt) for opt in dendritic_adam(on_cpu, lr=1e-3).optimizers}
    assert ExactRowAdam in kinds and all(layer.segments.sparse_grad for layer in on_cpu.layers)
    elsewhere = build().to("meta")
    kinds = {type(opt) for opt in dendritic_adam(elsewhere, lr=1e-3).optimizers}
    assert kinds == {torch.optim.Adam}
    assert not any(layer.segments.sparse_grad for layer in elsewhere.layers)

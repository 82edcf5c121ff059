import pytest
import torch
import torch.nn.functional as F

from dendrites import MLP, DendriticMLP, attach_rezero_hook, rezero_weights
from dendrites.sparse import SparseWeights, random_mask


def test_mask_has_fixed_fan_in_per_unit():
    mask = random_mask((50, 200), 0.5)
    assert torch.all(mask.sum(dim=1) == 100)


@pytest.mark.parametrize("sparsity", [-0.1, 1.0])
def test_invalid_sparsity_is_rejected(sparsity):
    with pytest.raises(ValueError, match="sparsity"):
        random_mask((4, 4), sparsity)


def test_masks_survive_adam_training_steps():
    torch.manual_seed(0)
    model = DendriticMLP(20, 3, (32, 32), num_segments=2, context_dim=5, kw_percent_on=0.25,
                         weight_sparsity=0.6, dendrite_sparsity=0.5)
    masks = [m.mask.clone() for m in model.modules() if isinstance(m, SparseWeights)]
    assert len(masks) == 4  # two feed-forward, two segment weights
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    attach_rezero_hook(optimizer, model)
    context = torch.randn(1, 5).expand(16, -1)
    for _ in range(20):
        loss = F.cross_entropy(model(torch.randn(16, 20), context), torch.randint(0, 3, (16,)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    sparse_modules = [m for m in model.modules() if isinstance(m, SparseWeights)]
    for module, mask in zip(sparse_modules, masks, strict=True):
        weight = module._weight[0]
        assert torch.equal(module.mask, mask)
        assert torch.all(weight[~mask] == 0)
        assert torch.count_nonzero(weight[mask]) > 0.9 * mask.sum()


def test_rezero_weights_restores_masks_after_manual_edit():
    model = MLP(10, 2, (16,), weight_sparsity=0.5)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(1.0)
    rezero_weights(model)
    assert (model.net[0].weight == 0).float().mean().item() == pytest.approx(0.5)

"""XdG: fixed random per-task masks over the hidden units (Masse et al. 2018; not Numenta code)."""

import torch

from dendrites import IndexedContext, one_hot_context
from dendrites.xdg import XdGMLP, task_masks


def test_masks_keep_the_fraction_and_differ_between_tasks():
    masks = task_masks(5, 100, 0.2, torch.Generator().manual_seed(0))
    assert torch.all(masks.sum(dim=1) == 20)
    assert not torch.equal(masks[0], masks[1])


def test_only_the_tasks_units_reach_the_head():
    torch.manual_seed(0)
    model = XdGMLP(10, 3, (50, 50), num_tasks=4, keep=0.2, seed=1)
    seen = []
    model.head.register_forward_pre_hook(lambda _m, inputs: seen.append(inputs[0]))
    x = torch.randn(8, 10)
    tasks = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    model(x, one_hot_context(tasks, 4))
    active = seen[0] != 0
    assert torch.all(active <= model.masks(1)[tasks].bool())
    # the same input under another task gives another output
    out0 = model(x[:1], IndexedContext.shared(torch.eye(4)[0]))
    out1 = model(x[:1], IndexedContext.shared(torch.eye(4)[1]))
    assert not torch.allclose(out0, out1)

import pytest
import torch

from dendrites import KWinners, kwinners
from dendrites.kwinners import num_winners


def test_exactly_k_winners_per_row_and_they_are_the_largest():
    torch.manual_seed(0)
    x = torch.randn(32, 100)
    out = KWinners(100, 0.05)(x)
    assert ((out != 0).sum(dim=1) == 5).all()
    top5 = x.topk(5, dim=1).values
    kept = out.masked_fill(out == 0, float("-inf")).topk(5, dim=1).values
    torch.testing.assert_close(kept.sort(dim=1).values, top5.sort(dim=1).values)


def test_exactly_k_winners_with_ties():
    out = kwinners(torch.ones(4, 10), 3)
    assert ((out != 0).sum(dim=1) == 3).all()


def test_gradient_flows_only_through_winners():
    x = torch.randn(8, 50, requires_grad=True)
    out = kwinners(x, 4)
    out.sum().backward()
    winners = out.detach() != 0
    assert torch.equal(x.grad != 0, winners)
    assert torch.all(x.grad[winners] == 1)


def test_same_winners_in_eval_mode():
    layer = KWinners(64, 0.25)
    x = torch.randn(5, 64)
    train_out = layer.train()(x)
    eval_out = layer.eval()(x)
    assert torch.equal(train_out, eval_out)
    assert ((eval_out != 0).sum(dim=1) == 16).all()


@pytest.mark.parametrize("percent_on", [0.0, -0.1, 1.5])
def test_percent_on_outside_unit_interval_is_rejected(percent_on):
    with pytest.raises(ValueError, match="percent_on"):
        KWinners(10, percent_on)


def test_at_least_one_winner():
    assert num_winners(10, 0.01) == 1
    assert num_winners(2048, 0.05) == 102

import torch
import torch.nn.functional as F

from dendrites import EWC, MLP, SynapticIntelligence


def _train(model, consolidation, x, y, steps=30):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y) + consolidation.penalty()
        optimizer.zero_grad()
        loss.backward()
        consolidation.before_step()
        optimizer.step()
        consolidation.after_step()


def test_si_penalty_is_zero_before_first_task_and_positive_after_drift():
    torch.manual_seed(0)
    model = MLP(8, 2, (16,))
    si = SynapticIntelligence(model, strength=1.0)
    x, y = torch.randn(64, 8), torch.randint(0, 2, (64,))
    assert si.penalty().item() == 0.0
    _train(model, si, x, y)
    si.end_task()
    assert all(torch.all(imp >= -1e-6) for imp in si.importance.values())
    assert sum(imp.sum() for imp in si.importance.values()) > 0
    assert si.penalty().item() == 0.0  # anchored at the current weights
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1)
    assert si.penalty().item() > 0


def test_si_limits_drift_on_second_task():
    torch.manual_seed(0)
    x1, y1 = torch.randn(128, 8), torch.randint(0, 2, (128,))
    x2, y2 = torch.randn(128, 8), torch.randint(0, 2, (128,))
    drifts = []
    for strength in (0.0, 10.0):
        torch.manual_seed(1)
        model = MLP(8, 2, (16,))
        si = SynapticIntelligence(model, strength=strength)
        _train(model, si, x1, y1)
        si.end_task()
        anchor = {n: t.clone() for n, t in si.anchor.items()}
        _train(model, si, x2, y2)
        drifts.append(sum((p - anchor[n]).pow(2).sum().item() for n, p in model.named_parameters()))
    assert drifts[1] < drifts[0]


def test_ewc_fisher_is_the_per_sample_empirical_fisher_and_state_roundtrips():
    torch.manual_seed(0)
    model = MLP(8, 2, (16,))
    ewc = EWC(model, strength=10.0)
    x, y = torch.randn(64, 8), torch.randint(0, 2, (64,))
    _train(model, ewc, x, y, steps=5)
    ewc.end_task([lambda: F.cross_entropy(model(x[:32]), y[:32], reduction="none"),
                  lambda: F.cross_entropy(model(x[32:]), y[32:], reduction="none")])
    # by hand: mean over the 64 samples of each sample's squared log-likelihood gradient
    expected = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for i in range(64):
        model.zero_grad()
        F.cross_entropy(model(x[i : i + 1]), y[i : i + 1]).backward()
        for n, p in model.named_parameters():
            expected[n] += p.grad.pow(2) / 64
    for n, fisher in ewc.importance.items():
        torch.testing.assert_close(fisher, expected[n], msg=n)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05)
    clone = EWC(model, strength=10.0)
    clone.load_state_dict(ewc.state_dict())
    assert ewc.penalty().item() > 0
    assert clone.penalty().item() == ewc.penalty().item()


def test_si_clamps_the_accumulated_path_integral_at_the_end_of_the_task():
    torch.manual_seed(0)
    model = MLP(4, 2, (3,))
    si = SynapticIntelligence(model, strength=1.0, damping=0.1)
    signs = {n: torch.randint(0, 2, p.shape).float() * 2 - 1 for n, p in si.params.items()}
    for n in si.params:
        si.path_integral[n].copy_(signs[n])
    si.end_task()
    for n, importance in si.importance.items():
        # positive omega -> 1 / (0 + xi); negative omega -> 0 (ReLU once, at the end of the task)
        torch.testing.assert_close(importance, (signs[n] > 0).float() / 0.1, msg=n)


def test_excluded_parameters_are_not_consolidated():
    model = MLP(4, 2, (3,))
    si = SynapticIntelligence(model, exclude=("net.2",))
    assert set(si.params) == {"net.0.weight", "net.0.bias"}

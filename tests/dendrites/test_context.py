import torch

from dendrites import DendriticMLP, IndexedContext, PrototypeContext, dedup_context, one_hot_context


def test_dedup_context_recovers_rows():
    vectors = torch.randn(4, 9)
    index = torch.tensor([3, 0, 0, 2, 3, 1, 1])
    deduped = dedup_context(vectors[index])
    assert deduped.vectors.shape[0] == 4
    torch.testing.assert_close(deduped.to_dense(len(index)), vectors[index])


def test_shared_context_dedups_to_one_vector():
    deduped = dedup_context(torch.ones(1, 5).expand(8, -1))
    assert deduped.index is None
    assert deduped.vectors.shape == (1, 5)


def test_one_hot_context():
    ctx = one_hot_context(torch.tensor([2, 0]), 3)
    torch.testing.assert_close(ctx.to_dense(2), torch.tensor([[0.0, 0, 1], [1, 0, 0]]))


def test_prototype_inference_picks_the_right_task_on_separable_data():
    torch.manual_seed(0)
    centres = torch.randn(5, 30) * 4
    prototypes = PrototypeContext()
    for centre in centres:
        prototypes.add_task(centre + torch.randn(200, 30))
    tasks = torch.randint(0, 5, (400,))
    test_inputs = centres[tasks] + torch.randn(400, 30)
    assert (prototypes.infer_task(test_inputs) == tasks).float().mean() > 0.99
    ctx = prototypes.inference_context(test_inputs)
    torch.testing.assert_close(ctx.vectors, prototypes.vectors)
    assert torch.equal(ctx.index, prototypes.infer_task(test_inputs))


def test_prototype_is_the_mean_of_training_inputs():
    prototypes = PrototypeContext()
    inputs = torch.randn(50, 4)
    torch.testing.assert_close(prototypes.add_task(inputs), inputs.mean(dim=0))
    torch.testing.assert_close(prototypes.training_context(0).to_dense(3), inputs.mean(0).expand(3, -1))


def _twin_models():
    torch.manual_seed(1)
    dedup = DendriticMLP(12, 4, (24, 24), num_segments=3, context_dim=6, kw_percent_on=0.3,
                         weight_sparsity=0.5, context_dedup=True)
    naive = DendriticMLP(12, 4, (24, 24), num_segments=3, context_dim=6, kw_percent_on=0.3,
                         weight_sparsity=0.5, context_dedup=False)
    naive.load_state_dict(dedup.state_dict())
    return dedup, naive


def test_dedup_path_equals_naive_path_outputs_and_gradients():
    dedup, naive = _twin_models()
    x = torch.randn(32, 12)
    vectors = torch.randn(3, 6)
    index = torch.randint(0, 3, (32,))
    target = torch.randint(0, 4, (32,))
    for context in (vectors[index], IndexedContext(vectors, index)):
        for model in (dedup, naive):
            model.zero_grad()
        out_dedup = dedup(x, context)
        out_naive = naive(x, context if isinstance(context, torch.Tensor) else vectors[index])
        torch.testing.assert_close(out_dedup, out_naive)
        torch.nn.functional.cross_entropy(out_dedup, target).backward()
        torch.nn.functional.cross_entropy(out_naive, target).backward()
        for (name, p_dedup), p_naive in zip(dedup.named_parameters(), naive.parameters(), strict=True):
            torch.testing.assert_close(p_dedup.grad, p_naive.grad, msg=name)


def test_shared_context_path_equals_naive_path():
    dedup, naive = _twin_models()
    x = torch.randn(16, 12)
    vector = torch.randn(6)
    torch.testing.assert_close(dedup(x, IndexedContext.shared(vector)), naive(x, vector.expand(16, -1)))


def test_a_prototype_context_on_a_pixel_subset_sees_only_those_pixels():
    """Prototypes over pixels {0, 2}: two tasks that differ only on pixels 1 and 3 share one
    prototype, and a test sample is placed by pixels 0 and 2 alone."""
    pixels = torch.tensor([0, 2])
    context = PrototypeContext(pixels)
    first = torch.tensor([[1.0, 9.0, 0.0, 9.0], [3.0, 9.0, 0.0, 9.0]])
    second = torch.tensor([[0.0, -9.0, 4.0, -9.0], [0.0, -9.0, 6.0, -9.0]])
    assert torch.equal(context.add_task(first), torch.tensor([2.0, 0.0]))
    assert torch.equal(context.add_task(second), torch.tensor([0.0, 5.0]))
    # near the second prototype on pixels 0 and 2, near the first task's inputs everywhere else
    sample = torch.tensor([[0.0, 9.0, 5.0, 9.0]])
    assert context.infer_task(sample).tolist() == [1]
    assert context.inference_context(sample).vectors.shape == (2, 2)
    restored = PrototypeContext()
    restored.load_state_dict(context.state_dict())
    assert restored.infer_task(sample).tolist() == [1]

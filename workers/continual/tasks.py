"""The permuted-task stream: task ``t`` applies a fixed, seeded pixel permutation to every image."""

from __future__ import annotations

import torch

from workers.continual.datasets import Dataset


class PermutedTaskStream:
    """Tasks built from one dataset by pixel permutations. Task 0 is the unpermuted dataset and
    tasks 1.. each draw one ``randperm`` in order from a generator seeded with ``seed``, so task
    ``k``'s permutation depends on neither the number of tasks nor the model's seed (Numenta's
    ``PermutedMNIST``: identity for task 0, ``torch.manual_seed(42)`` then one ``randperm`` per
    later task; nupic.research ``pytorch/datasets/permuted_mnist.py``)."""

    def __init__(self, dataset: Dataset, num_tasks: int, seed: int = 42) -> None:
        if num_tasks < 1:
            raise ValueError(f"num_tasks must be >= 1, got {num_tasks}")
        self.dataset = dataset
        self.num_tasks = num_tasks
        generator = torch.Generator().manual_seed(seed)
        self.permutations = [torch.arange(dataset.input_dim)] + [
            torch.randperm(dataset.input_dim, generator=generator) for _ in range(num_tasks - 1)
        ]

    def train_split(self, task: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The permuted training inputs and labels of ``task``."""
        return self.dataset.train_x[:, self.permutations[task]], self.dataset.train_y

    def test_split(self, task: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The permuted test inputs and labels of ``task``."""
        return self.dataset.test_x[:, self.permutations[task]], self.dataset.test_y

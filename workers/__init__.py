"""Trainables: continual learning (permuted digits / MNIST) and Meta-World multi-task RL.

Each exposes ``train(config, ...) -> results`` with a progress callback, runnable alone from the
CLI and inside Ray Tune.
"""

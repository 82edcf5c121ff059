"""Fixtures of the sweep tests."""

import pytest
import ray


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray with 2 CPUs for the module's sweeps (one already running is used)."""
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()

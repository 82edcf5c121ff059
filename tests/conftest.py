import os
import tempfile

import pytest

os.environ.setdefault("TQDM_DISABLE", "1")
# Nothing of the suite's lives in the home directory: matplotlib's config and font cache (default
# ~/.config/matplotlib, ~/.cache/matplotlib) go to a temporary directory, inherited by every
# process the tests start (the API, Ray heads, drivers, trials).
os.environ.setdefault("MPLCONFIGDIR", tempfile.mkdtemp(prefix="dlab-test-mpl-"))


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path_factory, monkeypatch):
    """Keep every test off the user's data cache (and so off the network)."""
    monkeypatch.setenv("DLAB_DATA_DIR", str(tmp_path_factory.mktemp("dlab-data")))


def pytest_collection_modifyitems(config, items):
    """Slow tests run only when a ``-m`` expression names them (``pytest -m slow``)."""
    if "slow" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="slow: run with `pytest -m slow`")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)

import os

import pytest

os.environ.setdefault("TQDM_DISABLE", "1")


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path_factory, monkeypatch):
    """Keep every test off the user's data cache (and so off the network)."""
    monkeypatch.setenv("DLAB_DATA_DIR", str(tmp_path_factory.mktemp("dlab-data")))

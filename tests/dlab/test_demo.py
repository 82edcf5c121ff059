"""`dlab demo` (what `make demo` runs) end to end on a fresh DLAB_HOME: the figure paths it
prints exist after it has stopped the stack (no URL of the API it stopped)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_the_demo_prints_figure_paths_that_exist_after_it_stops(tmp_path):
    home = tmp_path / "home"
    done = subprocess.run([sys.executable, "-m", "dlab.cli", "demo"], capture_output=True, text=True,
                          timeout=1200, env={**os.environ, "DLAB_HOME": str(home)}, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    figures = [Path(m) for m in re.findall(r"^figure: (\S+)$", done.stdout, re.MULTILINE)]
    assert figures, done.stdout
    for path in figures:
        assert path.is_file() and path.read_bytes().startswith(b"\x89PNG"), path
        assert path.is_relative_to(home)
    assert "/api/v1/sweeps/" not in done.stdout  # no figure URL on the API it has stopped
    assert "http://127.0.0.1:8000/" in done.stdout  # how to see the sweep on the web page

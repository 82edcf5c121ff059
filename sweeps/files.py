"""Report files written whole or not at all: each is written under a temporary name in its own
directory and renamed into place, so a reader (the API serving a figure, MLflow logging it, a
second report build) sees the previous complete file or the new complete one, never a torn one."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path


def replace_atomically(path: Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(temporary_path)``, then rename the result onto ``path`` (atomic on POSIX)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def write_text_atomically(path: Path, text: str) -> Path:
    """``path.write_text(text)``, atomically (see :func:`replace_atomically`)."""
    return replace_atomically(path, lambda temporary: temporary.write_text(text))

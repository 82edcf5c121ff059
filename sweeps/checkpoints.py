"""Trial checkpoints on Tune's storage: made consistent with Tune's saved experiment state before
a sweep is resumed, and removed once the sweep has ended.

Tune deletes a trial's older checkpoint as soon as it registers a newer one (``num_to_keep``),
but saves its experiment state only every few seconds. A driver killed in between (``kill -9``,
a lost node, a machine that stopped) leaves a saved state naming a checkpoint that is gone, and
Tune's restore of that trial fails every retry with "Could not recover from checkpoint as it does
not exist on storage anymore". The later checkpoint is still there: it takes the missing one's
name, so the trial resumes from it.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path, PurePosixPath

import pyarrow.fs

log = logging.getLogger(__name__)
CHECKPOINT_NAME = re.compile(r"checkpoint_(\d+)")


def checkpoint_index(path: str) -> int | None:
    """The number of a Tune checkpoint directory (``.../checkpoint_000004``: 4), else None."""
    match = CHECKPOINT_NAME.fullmatch(PurePosixPath(path).name)
    return int(match.group(1)) if match else None


def mend_deleted_checkpoints(trials: list) -> int:
    """For each unfinished trial (as Tune saved them) whose checkpoint is gone from storage, move
    the oldest later checkpoint of the trial to that checkpoint's path; returns how many moved.
    The oldest later one, not the newest: that is the one Tune registered (its metrics are
    recorded); a still later one may be one the dead driver never saw, and starting before it
    only repeats work (tracking skips the steps it already holds)."""
    mended = 0
    for trial in trials:
        checkpoint = trial.checkpoint
        if trial.status == "TERMINATED" or checkpoint is None:
            continue
        given = checkpoint_index(checkpoint.path)
        storage = checkpoint.filesystem
        if given is None or storage.get_file_info(checkpoint.path).type != pyarrow.fs.FileType.NotFound:
            continue
        siblings = storage.get_file_info(pyarrow.fs.FileSelector(str(PurePosixPath(checkpoint.path).parent)))
        later = sorted((index, info.path) for info in siblings
                       if (index := checkpoint_index(info.path)) is not None and index > given)
        if not later:
            continue  # nothing to resume from: Tune's restore fails the trial, as it would anyway
        storage.move(later[0][1], checkpoint.path)
        log.warning("trial %s: its saved checkpoint %s was deleted after a later one was made; "
                    "resuming from the later one (%s)", trial.trial_id, checkpoint.path, later[0][1])
        mended += 1
    return mended


def remove_checkpoints(experiment_dir: str | Path) -> int:
    """Delete every trial checkpoint of an ended sweep (Tune's experiment state, the trials'
    results and the sweep's record stay); returns the bytes freed. Nothing resumes from them
    once the sweep has ended, and a sweep of full-size trials holds gigabytes of them."""
    freed = 0
    for directory in Path(experiment_dir).glob("*/checkpoint_*"):
        if directory.is_dir() and checkpoint_index(str(directory)) is not None:
            freed += sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())
            shutil.rmtree(directory)
    return freed

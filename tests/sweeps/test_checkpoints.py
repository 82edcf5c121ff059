"""Before a resume, a trial whose saved checkpoint Tune had already deleted gets the oldest later
checkpoint in its place (real Tune checkpoints in trial directories on disk; the trials as
Tune's saved state lists them: status, id, latest checkpoint); once a sweep has ended, its
trials' checkpoints are removed and nothing else."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from ray import tune

from sweeps.checkpoints import checkpoint_index, mend_deleted_checkpoints, remove_checkpoints


def _trial(trial_dir: Path, saved: int, on_disk: list[int], status: str = "PAUSED") -> SimpleNamespace:
    """A trial whose saved state names ``checkpoint_<saved>``, with ``on_disk`` checkpoints
    present (each holding a file that says its number)."""
    for index in on_disk:
        path = trial_dir / f"checkpoint_{index:06d}"
        path.mkdir(parents=True)
        (path / "made_as").write_text(str(index))
    checkpoint = tune.Checkpoint.from_directory(str(trial_dir / f"checkpoint_{saved:06d}"))
    return SimpleNamespace(trial_id=trial_dir.name, status=status, checkpoint=checkpoint)


def _on_disk(trial_dir: Path) -> dict[int, str]:
    return {checkpoint_index(str(path)): (path / "made_as").read_text()
            for path in trial_dir.glob("checkpoint_*")}


def test_the_oldest_later_checkpoint_takes_the_deleted_ones_place(tmp_path):
    gone = _trial(tmp_path / "gone", saved=3, on_disk=[1, 5, 6])
    kept = _trial(tmp_path / "kept", saved=3, on_disk=[3, 4])  # saved one present: untouched
    done = _trial(tmp_path / "done", saved=3, on_disk=[5], status="TERMINATED")  # never restored
    alone = _trial(tmp_path / "alone", saved=3, on_disk=[2])  # nothing later: left to Tune
    assert mend_deleted_checkpoints([gone, kept, done, alone]) == 1
    assert _on_disk(tmp_path / "gone") == {1: "1", 3: "5", 6: "6"}
    assert _on_disk(tmp_path / "kept") == {3: "3", 4: "4"}
    assert _on_disk(tmp_path / "done") == {5: "5"}
    assert _on_disk(tmp_path / "alone") == {2: "2"}


def test_an_ended_sweeps_checkpoints_are_removed_and_nothing_else(tmp_path):
    _trial(tmp_path / "run_trial_a", saved=3, on_disk=[2, 3])
    _trial(tmp_path / "run_trial_b", saved=0, on_disk=[0])
    kept = [tmp_path / "experiment_state-1.json", tmp_path / "dlab_sweep.json",
            tmp_path / "run_trial_a" / "result.json", tmp_path / "run_trial_b" / "checkpoint_notes",
            tmp_path / "checkpoint_000001"]  # a file, not a trial's checkpoint directory
    for path in kept:
        path.write_text("{}")
    assert remove_checkpoints(tmp_path) == 3  # the three one-byte "made_as" files
    assert not list(tmp_path.glob("*/checkpoint_0*"))
    assert all(path.is_file() for path in kept)

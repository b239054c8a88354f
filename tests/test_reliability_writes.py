"""Reliability: read-only or full output folders are one line naming the path, before any work, nothing half-written.

Each test matches a row of docs/reliability.md. A read-only folder is made with chmod 0o555, or, where
chmod does not stop writes (running as root), with a read-only bind mount in a private mount namespace
(`unshare -m`); a full disk is a 4 KiB tmpfs in such a namespace. Where neither is allowed the test is
skipped with the reason; the in-process tests simulate ENOSPC / EACCES and always run.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_record, write_fitrec

from hr_lstm.errors import HRLSTMError
from hr_lstm.models.checkpoint import save_checkpoint
from hr_lstm.paths import check_writable, write_bytes_atomic, write_text_atomic

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "hr_lstm.cli"]
TINY = ["--epochs", "1", "--hidden_size", "8", "--num_layers", "1", "--device", "cpu"]
RO_MOUNT = 'd="$1"; shift; mount --bind "$d" "$d" && mount -o remount,ro,bind "$d" "$d" && exec "$@"'
# runs the command on the tmpfs, then prints what it left there (the tmpfs goes with the namespace)
TMPFS = 'd="$1"; shift; mount -t tmpfs -o size=4k hr-lstm-full "$d" || exit 99; "$@"; rc=$?; echo "LEFT:$(ls -A "$d")"; exit $rc'


def _namespace_works(script: str, folder: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", str(folder), "true"], capture_output=True)
    return probe.returncode == 0


def _can_write(folder: Path) -> bool:
    try:
        (folder / ".probe").write_bytes(b"")
    except OSError:
        return False
    (folder / ".probe").unlink()
    return True


@pytest.fixture
def read_only(tmp_path):
    """(folder, command prefix): the folder is read-only for commands run with the prefix."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if not _can_write(folder):
            yield folder, []
            return
        folder.chmod(0o755)  # root: chmod does not stop writes; a read-only bind mount does
        if not _namespace_works(RO_MOUNT, folder):
            pytest.skip("running as root (chmod 0o555 does not stop writes) and no unshare -m / mount here")
        yield folder, ["unshare", "-m", "sh", "-c", RO_MOUNT, "sh", str(folder)]
    finally:
        folder.chmod(0o755)


@pytest.fixture
def full_disk(tmp_path):
    """(folder, command prefix): a 4 KiB tmpfs mounted on the folder for commands run with the prefix."""
    folder = tmp_path / "full"
    folder.mkdir()
    if not _namespace_works(TMPFS, folder):
        pytest.skip("mounting a tmpfs needs unshare -m and mount rights (root), not available here")
    return folder, ["unshare", "-m", "sh", "-c", TMPFS, "sh", str(folder)]


def _cli(prefix, *args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, *CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def _refused(done: subprocess.CompletedProcess, folder: Path, hint: str = "the folder is not writable") -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(folder) in lines[0] and hint in lines[0], done.stderr
    assert "Traceback" not in done.stderr and "Wrote" not in done.stdout


def _nothing_in(folder: Path) -> None:
    assert [p.name for p in folder.iterdir()] == []


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, sim_data) -> Path:
    out = tmp_path_factory.mktemp("trained")
    done = _cli([], "train", "--data", sim_data, "--out", out, *TINY)
    assert done.returncode == 0, done.stdout + done.stderr
    return out / "lstm_embeddings_best.pt"


@pytest.fixture
def workout_file(tmp_path) -> Path:
    return write_fitrec(tmp_path / "workout.json", [make_record(workout_id=1, user_id=99)])


# --- read-only output folders: refused before any work ---------------------------------------------------------


def test_train_into_a_read_only_folder_stops_before_the_first_epoch(read_only, sim_data):
    folder, prefix = read_only
    done = _cli(prefix, "train", "--data", sim_data, "--out", folder, *TINY)
    _refused(done, folder)
    assert "Epoch" not in done.stdout and "epoch" not in done.stdout.lower()
    _nothing_in(folder)


def test_evaluate_into_a_read_only_folder_is_refused(read_only, checkpoint):
    folder, prefix = read_only
    done = _cli(prefix, "evaluate", "--checkpoint", checkpoint, "--out", folder / "eval.json", "--device", "cpu")
    _refused(done, folder)
    _nothing_in(folder)


def test_predict_into_a_read_only_folder_is_refused_and_leaves_no_empty_files(read_only, checkpoint, workout_file):
    folder, prefix = read_only
    done = _cli(prefix, "predict", "--checkpoint", checkpoint, workout_file, "--out", folder, "--device", "cpu")
    _refused(done, folder)
    assert "Predicted" not in done.stdout
    _nothing_in(folder)


def test_synth_into_a_read_only_folder_is_refused(read_only):
    folder, prefix = read_only
    done = _cli(prefix, "synth", "--users", 2, "--out", folder / "sim.json.gz")
    _refused(done, folder)
    assert "simulated" not in done.stdout
    _nothing_in(folder)


def test_baselines_into_a_read_only_folder_is_refused(read_only, sim_data):
    folder, prefix = read_only
    done = _cli(prefix, "baselines", "--data", sim_data, "--out", folder, "--baselines", "global_mean")
    _refused(done, folder)
    _nothing_in(folder)


# --- a full disk: one line, nothing half-written ---------------------------------------------------------------


def test_train_onto_a_full_disk_is_one_line_and_leaves_no_partial_file(full_disk, sim_data):
    folder, prefix = full_disk
    done = _cli(prefix, "train", "--data", sim_data, "--out", folder, *TINY)
    _refused(done, folder, hint="the disk is full")
    assert "iostream" not in done.stderr
    assert done.stdout.splitlines()[-1] == "LEFT:.lock"  # the (empty) lock file only: no temp, no partial file


def test_predict_onto_a_full_disk_is_one_line(full_disk, checkpoint, workout_file):
    folder, prefix = full_disk
    done = _cli(prefix, "predict", "--checkpoint", checkpoint, workout_file, "--out", folder, "--device", "cpu")
    _refused(done, folder, hint="the disk is full")
    assert done.stdout.splitlines()[-1] == "LEFT:"  # no 0-byte or half-written CSV / PNG


# --- the helper itself (always runs: ENOSPC / EACCES simulated) -----------------------------------------------


def _no_room(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize(
    "write",
    [
        lambda p: write_text_atomic(p, "{}\n" * 1000),
        lambda p: write_bytes_atomic(p, b"x" * 10_000),
        lambda p: save_checkpoint(p, {}),
    ],
    ids=["text", "bytes", "checkpoint"],
)
def test_a_full_disk_is_one_line_naming_the_file_and_leaves_nothing(tmp_path, monkeypatch, write):
    target = tmp_path / "out" / "file.json"
    monkeypatch.setattr(os, "fsync", _no_room)
    with pytest.raises(HRLSTMError) as info:
        write(target)
    message = str(info.value)
    assert message.startswith(f"{target}: cannot write (") and "the disk is full" in message
    assert "\n" not in message
    assert [p.name for p in target.parent.iterdir()] == []  # no temp file, no partial file


def test_a_full_disk_keeps_the_previous_file(tmp_path, monkeypatch):
    target = write_text_atomic(tmp_path / "metrics.json", "old")
    monkeypatch.setattr(os, "fsync", _no_room)
    with pytest.raises(HRLSTMError, match="the disk is full"):
        write_text_atomic(target, "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_atomic_write_round_trips(tmp_path):
    assert write_text_atomic(tmp_path / "a" / "b.json", "héllo").read_text(encoding="utf-8") == "héllo"
    assert write_bytes_atomic(tmp_path / "c.bin", b"\x00\x01").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "c.bin"]


@pytest.mark.parametrize("code", [errno.EACCES, errno.EROFS])
def test_check_writable_names_the_folder(tmp_path, monkeypatch, code):
    import tempfile

    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(HRLSTMError) as info:
        check_writable(tmp_path / "new")
    assert str(info.value).startswith(f"{tmp_path / 'new'}: cannot write (")
    assert str(info.value).endswith("the folder is not writable; choose another output folder")


def test_check_writable_creates_nothing(tmp_path):
    assert check_writable(tmp_path / "x" / "y") == tmp_path / "x" / "y"
    assert check_writable(tmp_path) == tmp_path
    assert list(tmp_path.iterdir()) == []


def test_check_writable_under_a_file_names_the_folder(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(HRLSTMError, match=r"file/out: cannot write \(Not a directory\)"):
        check_writable(tmp_path / "file" / "out")

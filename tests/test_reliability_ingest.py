"""A killed `hr-lstm ingest` leaves no processes and, after its next run, no files behind.

Each test starts `python -m hr_lstm.cli ingest BIG --workers 2` as a real process, waits until its
workers run and its `.tmp-*` folder exists (pausing it with SIGSTOP while it looks), and kills it
(SIGTERM, or SIGKILL).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import make_record, write_fitrec

from hr_lstm.data.cache import HOST_TAG, STALE_TMP_S, TMP_PREFIX, load_workouts

try:  # optional (not a dependency of the project): /proc is read instead
    import psutil
except ImportError:
    psutil = None

pytestmark = pytest.mark.skipif(
    psutil is None and not Path("/proc/self/stat").exists(), reason="needs psutil or /proc to see child processes"
)
WAIT_S = 10.0  # the most any step may take; each one polls and goes on at once when done


def _processes() -> dict[int, tuple[int, bool]]:
    """pid -> (parent pid, running); a zombie is not running."""
    if psutil is not None:
        found = {}
        for p in psutil.process_iter(["ppid", "status"]):
            found[p.pid] = (p.info["ppid"], p.info["status"] != psutil.STATUS_ZOMBIE)
        return found
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # gone meanwhile
            continue
        state, ppid = text[text.rindex(")") + 2 :].split()[:2]
        found[int(stat.parent.name)] = (int(ppid), state not in ("Z", "X"))
    return found


def _descendants(pid: int) -> set[int]:
    table, found, frontier = _processes(), set(), {pid}
    while frontier:
        frontier = {child for child, (parent, _) in table.items() if parent in frontier} - found
        found |= frontier
    return found


def _running(pids: set[int]) -> set[int]:
    table = _processes()
    return {pid for pid in pids if pid in table and table[pid][1]}


def _stopped(pid: int) -> bool:
    if psutil is not None:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_STOPPED
        except psutil.NoSuchProcess:
            return False
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rindex(")") + 2] == "T"


def _until(condition, what: str):
    deadline = time.monotonic() + WAIT_S
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT_S:.0f} s: {what}")
        time.sleep(0.01)
    return result


def _big_file(path: Path, n: int = 2400) -> Path:
    """About 26 kB a record: ~60 MB, about a second of parsing on 2 cores (we kill it well before)."""
    lines = [str(make_record(workout_id=i, user_id=i % 20, seed=i)) for i in range(20)]
    with open(path, "w") as fh:
        for k in range(n // len(lines)):
            fh.writelines(line.replace(f"'id': {i},", f"'id': {k * 20 + i},", 1) + "\n" for i, line in enumerate(lines))
    return path


def _paused_with_workers(proc: subprocess.Popen) -> set[int]:
    """Pause the ingest (SIGSTOP); if its 2 workers run, return its processes with it still paused,
    else let it run on for a moment and return nothing."""
    proc.send_signal(signal.SIGSTOP)
    _until(lambda: _stopped(proc.pid) or proc.poll() is not None, "the ingest paused")
    assert proc.poll() is None, "the ingest ended before it could be killed: make the file bigger"
    if len(children := _descendants(proc.pid)) >= 4:  # the resource tracker, the fork server, 2 workers
        return children
    proc.send_signal(signal.SIGCONT)
    time.sleep(0.005)
    return set()


@pytest.fixture
def leftovers():
    """Processes a test saw; any still running at the end are killed (a failing test leaves none)."""
    pids: set[int] = set()
    yield pids
    for pid in _running(pids):
        os.kill(pid, signal.SIGKILL)


def _start_and_kill(path: Path, sig: int, seen: set[int]) -> tuple[subprocess.CompletedProcess, int, set[int], float]:
    """Ingest `path` with 2 workers; once they run and the temporary folder exists, send `sig`.

    Returns the finished process, its pid, the processes it had started (also added to `seen`),
    and how long it took to exit. Its output goes to files: a leftover child holding a pipe open
    must not keep us waiting.
    """
    out, err = path.with_suffix(".out"), path.with_suffix(".err")
    with open(out, "w") as stdout, open(err, "w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hr_lstm.cli", "ingest", str(path), "--workers", "2"], stdout=stdout, stderr=stderr
        )
    try:
        tmp_dirs = lambda: list(path.parent.glob(f"{path.name}.hrcache/{TMP_PREFIX}*"))  # noqa: E731
        _until(lambda: tmp_dirs() or proc.poll() is not None, "the temporary folder made")
        # From here the ingest runs in short slices, paused while we look: it cannot finish between
        # our seeing its workers and the kill, however busy the machine.
        children = _until(lambda: _paused_with_workers(proc), "2 workers running")
        seen |= children
        assert tmp_dirs(), "the ingest ended before it could be killed: make the file bigger"
        sent = time.monotonic()
        proc.send_signal(sig)
        proc.send_signal(signal.SIGCONT)  # a paused process takes the SIGTERM when it runs again
        proc.wait(timeout=WAIT_S)
        seconds = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    done = subprocess.CompletedProcess(proc.args, proc.returncode, out.read_text(), err.read_text())
    return done, proc.pid, children, seconds


def test_sigterm_stops_the_workers_and_removes_the_temporary_folder(tmp_path, leftovers):
    path = _big_file(tmp_path / "big.json")
    done, _, children, seconds = _start_and_kill(path, signal.SIGTERM, leftovers)
    assert done.returncode == -signal.SIGTERM, done.stderr
    assert seconds < 5, f"took {seconds:.1f} s to stop"
    _until(lambda: not _running(children), f"processes {_running(children)} still running after the SIGTERM")
    assert not list(tmp_path.glob("big.json.hrcache/.tmp-*"))
    assert not (tmp_path / "big.json.hrcache").exists(), "the run made the folder; nothing of it stays"
    assert "Stopped by SIGTERM: parsing workers stopped, no partial files left" in done.stderr
    assert "Traceback" not in done.stderr


def test_after_kill_9_the_workers_exit_and_the_next_run_removes_the_stale_folder(tmp_path, leftovers):
    path = _big_file(tmp_path / "big.json")
    done, pid, children, _ = _start_and_kill(path, signal.SIGKILL, leftovers)
    assert done.returncode == -signal.SIGKILL
    _until(lambda: not _running(children), f"processes {_running(children)} still running after the kill -9")
    base = tmp_path / "big.json.hrcache"
    (stale,) = base.glob(".tmp-*")
    assert stale.name.startswith(f"{TMP_PREFIX}{HOST_TAG}-{pid}-"), "named after the host and the process"
    live = base / f"{TMP_PREFIX}{HOST_TAG}-{os.getpid()}-live"  # a run still going: this process
    live.mkdir()
    old_format, fresh_old_format = base / f"{TMP_PREFIX}k3j2h1g0", base / f"{TMP_PREFIX}a1b2c3d4"
    old_format.mkdir()
    fresh_old_format.mkdir()
    os.utime(old_format, (time.time() - STALE_TMP_S - 60,) * 2)

    write_fitrec(path, [make_record(workout_id=i) for i in range(3)])  # the next run: a small file, quick
    lines = []
    assert len(load_workouts(path, workers=1, log=lines.append)) == 3
    assert not stale.exists() and not old_format.exists()
    assert live.exists() and fresh_old_format.exists(), "a live run's folder is left alone"
    assert sum("left behind by an interrupted run" in line for line in lines) == 2

"""Where things live: one project root, and the default data, checkpoint and report folders.

Cookiecutter-Data-Science style: the package is installed editable, so the
project root is the folder above this package; notebooks and the command line
resolve every default path from here. `HR_LSTM_DATA_DIR` moves the data folder
(e.g. to a bigger disk).
"""

from __future__ import annotations

import errno
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import HRLSTMError

try:  # POSIX: a lock the kernel drops when its holder dies, however it dies
    import fcntl
except ImportError:  # pragma: no cover - Windows: an O_EXCL file holding the pid
    fcntl = None


def _project_root() -> Path:
    here = Path(__file__).resolve().parents[1]
    # An editable install points here; a plain install lands in site-packages,
    # where the working directory is the better guess.
    return here if (here / "pyproject.toml").exists() else Path.cwd()


PROJ_ROOT = _project_root()
DATA_DIR = Path(os.environ.get("HR_LSTM_DATA_DIR", PROJ_ROOT / "data"))
CHECKPOINT_DIR = PROJ_ROOT / "checkpoints"
REPORTS_DIR = PROJ_ROOT / "reports"
NOTEBOOKS_DIR = PROJ_ROOT / "notebooks"
EXAMPLES_DIR = PROJ_ROOT / "examples"  # real recordings that ship with the project (examples/*/README.md)
EXAMPLE_RUNNER = EXAMPLES_DIR / "runner_a"
EXAMPLE_ROUTE = EXAMPLES_DIR / "routes" / "hill_run_5k.gpx"  # a real hilly course (examples/routes/README.md)

# A few hundred athletes (282 keep 10+ run/bike workouts): enough to learn user embeddings that
# generalise, and the default recipe still trains in about 10 minutes on a 2-core CPU. The
# notebooks default to 60 athletes to keep the headless report quick (their `sim_users`).
DEFAULT_SIM_USERS = 300
DEFAULT_SIM_SEED = 0


def default_sim_data_path(
    n_users: int = DEFAULT_SIM_USERS, seed: int = DEFAULT_SIM_SEED, variant: str = "default"
) -> Path:
    """The simulated set's file; a simulator variant other than the default adds its name."""
    suffix = "" if variant == "default" else f"_{variant}"
    return DATA_DIR / "simulated" / f"sim_users{n_users}_seed{seed}{suffix}.json.gz"


NO_ROOM = tuple(n for n in (errno.ENOSPC, getattr(errno, "EDQUOT", None), errno.EFBIG) if n is not None)


def write_error(path, exc: OSError) -> HRLSTMError:
    """An `OSError` while writing `path` as the one-line user error: what failed and what to do."""
    if exc.errno in NO_ROOM:
        hint = "the disk is full; free some space or choose another output folder"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "the folder is not writable; choose another output folder"
    else:
        hint = "choose another output folder"
    return HRLSTMError(f"{path}: cannot write ({exc.strerror or exc}); {hint}")


def fsync_file(path) -> None:
    """Flush a written file's bytes to the disk (a full disk shows here at the latest)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    try:  # the rename itself survives a power cut; best effort (not every OS / file system allows it)
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside `final`; on success fsync it and rename it over `final`, on
    failure remove it. Readers never see a half-written file, and a crash leaves the old one intact.

    An `OSError` (a full disk, a read-only folder) becomes one `HRLSTMError` line naming `final`."""
    final = Path(final)
    tmp = None
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
        os.close(fd)
        yield Path(tmp)
        fsync_file(tmp)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would surprise whoever shares the folder
        os.replace(tmp, final)
        _fsync_folder(final.parent)
    except OSError as exc:
        raise write_error(final, exc) from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def write_bytes_atomic(path, data: bytes) -> Path:
    """Write `data` to `path` atomically (temp file, fsync, rename); an `OSError` -> `HRLSTMError`."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
    return path


def write_text_atomic(path, text: str, encoding: str = "utf-8") -> Path:
    """`write_bytes_atomic` for text."""
    return write_bytes_atomic(path, text.encode(encoding))


def check_writable(folder) -> Path:
    """Prove a file can be made in `folder` before any work starts: a read-only or missing-permission
    folder is one `HRLSTMError` line naming it, not a traceback after an hour of work.

    A folder that does not exist yet is not created (a run that fails later leaves no empty folder):
    its nearest existing parent is probed instead, where the writes would create it."""
    folder = Path(folder)
    probe_in = folder
    while not probe_in.exists() and probe_in.parent != probe_in:
        probe_in = probe_in.parent
    try:
        if not probe_in.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        fd, probe = tempfile.mkstemp(prefix=".hr_lstm-write-test.", suffix=".tmp", dir=probe_in)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise write_error(folder, exc) from None
    return folder


LOCK_NAME = ".lock"


def _lock_holder(lock: Path) -> str:
    try:
        return lock.read_text().strip() or "?"
    except OSError:
        return "?"


@contextmanager
def folder_lock(
    folder: Path, busy: str = "another training run (pid {pid}) is writing here; wait for it or choose another --out"
) -> Iterator[Path]:
    """Hold `{folder}/.lock` for the block, non-blocking: a second holder gets an `HRLSTMError`
    "{folder}: <busy>" naming the first one's pid. The (empty) lock file stays behind, unless this call made the
    folder and nothing else was written there (a run that failed at once leaves no empty folder)."""
    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / LOCK_NAME
    if fcntl is not None:
        fd = _flock(lock, f"{folder}: ", busy)
        try:
            yield lock
        finally:
            try:
                os.ftruncate(fd, 0)
            finally:
                os.close(fd)  # closing drops the lock
                _remove_if_only_lock(folder, lock, created)
        return
    try:  # pragma: no cover - no fcntl: the file itself is the lock, removed when the run ends
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:  # pragma: no cover
        raise HRLSTMError(
            f"{folder}: " + busy.format(pid=_lock_holder(lock)) + f" (if no run is going, delete {lock})"
        ) from None
    try:  # pragma: no cover
        os.write(fd, f"{os.getpid()}\n".encode())
        os.close(fd)
        yield lock
    finally:  # pragma: no cover
        lock.unlink(missing_ok=True)
        _remove_if_only_lock(folder, lock, created)


@contextmanager
def output_lock(path: Path, what: str = "another run (pid {pid}) is writing this file; wait for it") -> Iterator[Path]:
    """Hold `{path}.lock` beside one output file for the block: two commands writing the same file at once
    (two `personalize --out me.pt`) would each report success while the second silently replaced the first.
    The lock file is removed afterwards."""
    path = Path(path)
    lock = path.with_name(path.name + ".lock")
    if fcntl is None:  # pragma: no cover
        yield lock
        return
    fd = _flock(lock, f"{path}: ", what)
    try:
        yield lock
    finally:
        lock.unlink(missing_ok=True)
        os.close(fd)


def _flock(lock: Path, where: str, busy: str) -> int:
    """Open `lock` and take its flock without waiting, writing our pid in it; the open descriptor (closing it
    drops the lock). Held already: `HRLSTMError` "<where><busy>" naming the holder's pid."""
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise HRLSTMError(where + busy.format(pid=_lock_holder(lock))) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _remove_if_only_lock(folder: Path, lock: Path, created: bool) -> None:
    """A folder this run made and left with nothing but its lock (it failed before writing) is removed."""
    try:
        if created and {p.name for p in folder.iterdir()} <= {lock.name}:
            lock.unlink(missing_ok=True)
            folder.rmdir()
    except OSError:
        pass  # another run has just begun there, or it is not ours to tidy

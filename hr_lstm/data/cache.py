"""Parse once, cache, reload: a FitRec-format file -> `WorkoutSet`, with its array cache.

`load_workouts` streams a FitRec-format file (in parallel, see `ingest`) into one float32
array (workouts x seq_len x channels) plus a per-workout table, and caches both next to the
source as `.npy` + Parquet + a JSON manifest (formats other tools read), keyed by a fingerprint
of the file and the parse settings. The rows are written straight into the cache's `.npy` in a
temporary folder that is renamed into place when complete, and the result is memory-mapped
from there. A temporary folder is named after its host and process (`.tmp-HOST-PID-*`); one whose
process is gone (a kill -9) or that nobody has written to for an hour is removed by the next run.

The manifest records the bad records a `--skip-bad` build skipped. A run without `--skip-bad` uses
only a cache that skipped nothing, so on a file with bad records it parses again and fails on the
first one, exactly as without the cache; a `--skip-bad` run reusing a cache repeats its count.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import struct
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..console import say
from ..errors import DataError
from ..paths import NO_ROOM, fsync_file, write_error, write_text_atomic
from .fitrec import CHANNELS, ParseConfig, RecordMeta
from .ingest import IngestStats, ingest, plan_workers, pool_context, stop_if_terminated, stop_on_sigterm
from .workouts import WorkoutSet

CACHE_FORMAT = 2  # 2: device speeds above ParseConfig.speed_max_kmh are missing, not clipped
TMP_PREFIX = ".tmp-"
STALE_TMP_S = 3600  # a temporary folder nobody has written to for this long is left over, whoever made it
HOST_TAG = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname()) or "host"  # no "-": the name's separator

# ---- outputs of `ingest`: the cache's .npy, or one array in memory ---------------------------


class NpyWriter:
    """Append float32 rows to a .npy file; the header gets the final row count on close.

    Plain file writes, not a memory map: written pages stay in the page cache, not in this
    process's resident memory, so building a cache of any size takes a few chunks of memory.
    """

    HEADER_BYTES = 128  # magic + version + length + dict, padded (a multiple of 64, as numpy aligns)

    def __init__(self, path: Path, seq_len: int, channels: int):
        self.path, self.row_shape, self.rows = Path(path), (seq_len, channels), 0
        self.fh = open(self.path, "wb")
        self.fh.write(self._header(0))

    def _header(self, rows: int) -> bytes:
        text = repr({"descr": "<f4", "fortran_order": False, "shape": (rows, *self.row_shape)})
        if len(text) >= self.HEADER_BYTES - 10:
            raise ValueError(f"shape {(rows, *self.row_shape)} does not fit a {self.HEADER_BYTES}-byte .npy header")
        text = text.ljust(self.HEADER_BYTES - 10 - 1) + "\n"
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")

    def append(self, rows: np.ndarray) -> None:
        self.fh.write(np.ascontiguousarray(rows, dtype="<f4").data)
        self.rows += len(rows)

    def close(self) -> None:
        if not self.fh.closed:
            self.fh.seek(0)
            self.fh.write(self._header(self.rows))
            self.fh.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ArrayBuffer:
    """Append float32 rows to one in-memory array, grown in place (no second copy at the end)."""

    def __init__(self, seq_len: int, channels: int, capacity: int = 1024):
        self.array, self.rows = np.empty((capacity, seq_len, channels), np.float32), 0

    def append(self, rows: np.ndarray) -> None:
        if self.rows + len(rows) > len(self.array):
            # realloc: large blocks are remapped by the allocator rather than copied
            self.array.resize(
                (max(self.rows + len(rows), len(self.array) * 3 // 2), *self.array.shape[1:]), refcheck=False
            )
        self.array[self.rows : self.rows + len(rows)] = rows
        self.rows += len(rows)

    def finish(self) -> np.ndarray:
        self.array.resize((self.rows, *self.array.shape[1:]), refcheck=False)
        return self.array


# ---- cache ----------------------------------------------------------------------------------


def file_fingerprint(path: Path) -> str:
    """Content hash of the source file: the identity recorded in checkpoints and metrics.

    SHA-256 (hardware-accelerated: ~4x faster than blake2b here, which matters for a 4.6 GB
    file), shortened to 128 bits.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()[:32]


def _cache_dir(path: Path, fingerprint: str, cfg: ParseConfig) -> Path:
    settings = json.dumps({"format": CACHE_FORMAT, "parse": asdict(cfg)}, sort_keys=True)
    key = hashlib.blake2b(f"{fingerprint}{settings}".encode(), digest_size=8).hexdigest()
    base = path.parent / f"{path.name}.hrcache"
    if not os.access(path.parent, os.W_OK):
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hr_lstm" / fingerprint
    return base / key


def _read_cache(cache: Path, path: Path, fingerprint: str, skip_bad: bool) -> tuple[WorkoutSet, list[str]] | None:
    """The cache at `cache` and the bad records its build skipped, if it is whole and fits the run:
    one that skipped records serves only `skip_bad` runs."""
    try:
        manifest = json.loads((cache / "manifest.json").read_text())
        if manifest.get("format") != CACHE_FORMAT:
            return None
        skipped = [str(line) for line in manifest.get("skipped_records") or []]
        if skipped and not skip_bad:
            return None  # parse again: the first bad record stops the run, as it would uncached
        series = np.load(cache / "series.npy", mmap_mode="r")
        meta = pd.read_parquet(cache / "meta.parquet")
    except (OSError, ValueError, TypeError, AttributeError):
        return None  # a damaged cache is rebuilt, never trusted
    if series.shape[0] != len(meta):
        return None
    return WorkoutSet(np.asarray(series), meta, path, fingerprint, cache), skipped


def _meta_frame(metas: list[RecordMeta]) -> pd.DataFrame:
    names = [f.name for f in fields(RecordMeta)]
    return pd.DataFrame({name: [getattr(m, name) for m in metas] for name in names}, columns=names)


def _build_cache(base: Path, name, path: Path, cfg: ParseConfig, skip_bad: bool, workers, log):
    """Ingest into a temporary folder in `base`, then rename it to `name()` -> (fingerprint, folder).

    The rename makes the cache appear whole or not at all; `name` is asked only once the rows
    are written, so the file's hash can be computed meanwhile.
    """
    with stop_on_sigterm():  # SIGTERM: the except below removes the folder, then the process ends
        return _build_cache_in(base, name, path, cfg, skip_bad, workers, log)


def _build_cache_in(base: Path, name, path: Path, cfg: ParseConfig, skip_bad: bool, workers, log):
    base_existed = base.exists()
    try:
        base.mkdir(parents=True, exist_ok=True)
        remove_stale_tmp(base, log)
        tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{HOST_TAG}-{os.getpid()}-", dir=base))
    except OSError as exc:
        raise write_error(base, exc) from None
    try:
        with NpyWriter(tmp / "series.npy", cfg.seq_len, len(CHANNELS)) as out:
            metas, stats = ingest(path, cfg, out, skip_bad=skip_bad, workers=workers, log=log)
        stop_if_terminated()
        _meta_frame(metas).to_parquet(tmp / "meta.parquet", index=False)
        fingerprint, cache = name()
        stop_if_terminated()
        manifest = {
            "format": CACHE_FORMAT,
            "source": str(path),
            "fingerprint": fingerprint,
            "parse": asdict(cfg),
            "channels": list(CHANNELS),
            "n_workouts": stats.n_workouts,
            "skipped_records": stats.skipped,
            "hr_lstm_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        for written in (tmp / "series.npy", tmp / "meta.parquet"):
            fsync_file(written)  # a full disk shows here, not when the cache is read back
        write_text_atomic(tmp / "manifest.json", json.dumps(manifest, indent=1))
        if cache.exists():  # another process won the race; theirs is as good
            shutil.rmtree(tmp)
        else:
            os.rename(tmp, cache)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if not base_existed:
            try:
                base.rmdir()  # ours, and empty unless another process has just used it
            except OSError:
                pass
        if isinstance(exc, OSError) and exc.errno in NO_ROOM:  # a full disk: one line, not a traceback
            raise write_error(base, exc) from None
        raise
    return stats, fingerprint, cache


def _tmp_owner_gone(name: str) -> bool:
    """Whether a `.tmp-HOST-PID-*` folder's process is known to be gone (on this host, by its pid)."""
    match = re.match(rf"{re.escape(TMP_PREFIX)}([^-]+)-(\d+)-", name)
    if match is None or match[1] != HOST_TAG or os.name != "posix":  # os.kill(pid, 0) is only a probe on POSIX
        return False
    try:
        os.kill(int(match[2]), 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: alive, another user's
        return False
    return False


def _last_written(folder: Path) -> float:
    with os.scandir(folder) as entries:
        return max([folder.stat().st_mtime] + [e.stat().st_mtime for e in entries])


def remove_stale_tmp(base: Path, log=say) -> None:
    """Remove temporary folders left in `base` by runs that were killed (kill -9, power loss)."""
    try:
        candidates = [p for p in base.iterdir() if p.name.startswith(TMP_PREFIX) and p.is_dir()]
    except OSError:
        return
    for tmp in candidates:
        try:
            stale = _tmp_owner_gone(tmp.name) or time.time() - _last_written(tmp) > STALE_TMP_S
        except OSError:  # removed meanwhile by its owner or another run
            continue
        if stale:
            shutil.rmtree(tmp, ignore_errors=True)
            log(f"Removed {tmp}: left behind by an interrupted run")


def parse_file(
    path: Path, cfg: ParseConfig, skip_bad: bool = False, log=say, workers: int | None = None
) -> tuple[WorkoutSet, list[str]]:
    """Stream every record of `path` into one in-memory float32 array (no cache)."""
    ws, stats = _parse_in_memory(path, cfg, skip_bad, workers, log)
    return ws, stats.skipped


def _parse_in_memory(path, cfg, skip_bad, workers, log) -> tuple[WorkoutSet, IngestStats]:
    out = ArrayBuffer(cfg.seq_len, len(CHANNELS))
    metas, stats = ingest(path, cfg, out, skip_bad=skip_bad, workers=workers, log=log)
    return WorkoutSet(out.finish(), _meta_frame(metas), Path(path), ""), stats


def load_workouts(
    path: str | Path,
    cfg: ParseConfig = ParseConfig(),
    skip_bad: bool = False,
    cache: bool = True,
    log=say,
    workers: int | None = None,
) -> WorkoutSet:
    """Read a FitRec-format file (or its cache) into a `WorkoutSet`.

    workers: processes parsing in parallel (default: all cores; one for a small file).
    With the cache, the series is memory-mapped read-only from it.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: " + ("is a directory, expected a workout file" if path.is_dir() else "no such file"))
    base = path.parent / f"{path.name}.hrcache"
    first_time = cache and not base.exists() and os.access(path.parent, os.W_OK)  # surely no cache yet
    if plan_workers(path, workers) > 1 and (first_time or not cache):
        pool_context()  # start the worker server now: it imports while we go on
    if first_time:  # hash while parsing (hashlib lets go of the GIL); name the cache when both are done
        hasher = ThreadPoolExecutor(1)
        try:
            hashed = hasher.submit(file_fingerprint, path)
            name = lambda: (hashed.result(), _cache_dir(path, hashed.result(), cfg))  # noqa: E731
            stats, fingerprint, cache_dir = _build_cache(base, name, path, cfg, skip_bad, workers, log)
        finally:
            hasher.shutdown(wait=False)
    elif cache:
        fingerprint = file_fingerprint(path)
        cache_dir = _cache_dir(path, fingerprint, cfg)
        remove_stale_tmp(cache_dir.parent, log)
        if (found := _read_cache(cache_dir, path, fingerprint, skip_bad)) is not None:
            ws, skipped = found
            log(f"Loaded {len(ws):,} workouts from cache {cache_dir}")
            if skipped:
                log(f"Skipped {len(skipped):,} bad records (--skip-bad) when the cache was built; first: {skipped[0]}")
            return ws
        stats, _, _ = _build_cache(
            cache_dir.parent, lambda: (fingerprint, cache_dir), path, cfg, skip_bad, workers, log
        )
    else:
        ws, stats = _parse_in_memory(path, cfg, skip_bad, workers, log)
        ws.fingerprint = file_fingerprint(path)
    if cache:
        if (found := _read_cache(cache_dir, path, fingerprint, skip_bad)) is None:
            raise DataError(f"{cache_dir}: the cache just written cannot be read back")
        ws = found[0]
    ws.ingest_stats = stats
    log(
        f"Parsed {len(ws):,} workouts from {path} in {stats.seconds:.1f} s ({len(ws) / stats.seconds:,.0f}/s, "
        f"{stats.workers} worker{'s' if stats.workers > 1 else ''})"
    )
    if stats.skipped:
        log(f"Skipped {len(stats.skipped):,} bad records (--skip-bad); first: {stats.skipped[0]}")
    return ws

"""Parallel streaming ingestion: a FitRec-format file -> float32 rows written straight to an output.

A one-record-per-line file is cut into chunks of whole lines (`CHUNK_BYTES`). A plain file is cut
by byte offsets and each worker reads its own chunk; a gzipped file is one serial stream, so this
process decompresses it and sends the chunks' bytes. Workers (`parse_chunk`) parse and convert a
chunk and send back compact float32 rows and small metadata; this process takes the results in
file order and appends them to the output (the cache's `series.npy`, see `NpyWriter`), so memory
stays at a few chunks per worker whatever the file size. A worker numbers lines from 1 within its
chunk; this process knows how many lines came before and renumbers, so every message still names
the file and the line. JSON arrays (rare) go through the serial reader in `fitrec`.

Stopping: a SIGTERM while parsing stops the workers and removes what was written (at the next
chunk), then ends the process as the signal would have (`stop_on_sigterm`); after a kill -9 the
workers exit by themselves (`_worker_started`), and the cache removes the temporary folder at its
next run.

Optional accelerators, used when installed: pysimdjson (see `fitrec_batch.parse_fast`) and isal (gzip
decompression ~3.5x faster than zlib); HR_LSTM_NO_ACCELERATORS=1 turns both off.
"""

from __future__ import annotations

import gzip
import math
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
import zlib
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm import tqdm

from ..console import attached_to_terminal, say
from ..errors import DataError
from .fitrec import CHANNELS, ParseConfig, RecordMeta, iter_records, parse_line, sniff_format
from .fitrec_batch import fast_parser, parse_fast, records_to_series

try:  # optional: ISA-L inflate, ~3.5x faster than zlib; decompression is the serial part of a .gz
    from isal import igzip as _gzip
    from isal import isal_zlib

    _GZIP_ERRORS: tuple = (EOFError, gzip.BadGzipFile, zlib.error, isal_zlib.error)
except ImportError:  # pragma: no cover
    _gzip, _GZIP_ERRORS = gzip, (EOFError, gzip.BadGzipFile, zlib.error)
if os.environ.get("HR_LSTM_NO_ACCELERATORS"):
    _gzip = gzip

CHUNK_BYTES = 2 << 20  # ~75 FitRec records: amortises a task (~1 ms), little memory in flight
SERIAL_BELOW_BYTES = 8 << 20  # smaller files (as stored) are parsed in-process: no pool start-up
BATCH_RECORDS = 64  # records converted together inside a chunk: bounds the Python objects alive
PROGRESS_EVERY = 10_000  # workouts between log lines when not on a terminal


CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def cgroup_cpu_quota(path: Path = CGROUP_CPU_MAX) -> float | None:
    """CPUs allowed by the cgroup (v2) quota, `cpu.max` = "QUOTA PERIOD" ("max PERIOD": none); None without one."""
    try:
        quota, period = path.read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError, ZeroDivisionError):
        return None


def default_workers() -> int:
    """Processes worth starting: the CPUs this process may use (affinity), capped by a container's CPU quota."""
    counted = getattr(os, "process_cpu_count", None)  # Python 3.13+: affinity-aware
    if counted is not None:
        cpus = counted() or 1
    else:
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            cpus = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    if quota is not None and quota > 0:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


@dataclass
class Chunk:
    """Whole lines of `path`: either `data` itself or `length` bytes at `offset` (read by the worker)."""

    path: str
    cfg: ParseConfig
    skip_bad: bool
    data: bytes | None = None
    offset: int = 0
    length: int = 0


@dataclass
class ChunkResult:
    n_lines: int
    series: np.ndarray  # (kept, seq_len, channels) float32
    meta: list[RecordMeta]  # `line` counts from 1 within the chunk
    skipped: list[tuple[int, str]]  # (line in chunk, message after "file: line N")
    error: tuple[int, str] | None = None  # the first bad record when not skipping
    peak_rss_bytes: int = 0  # of the process that parsed it
    cpu_seconds: float = 0.0  # spent on it, wherever it ran
    unit: str = "line"  # or "record" (in a JSON array)


def _tail(message: str, where: str) -> str:
    return message[len(where) :] if message.startswith(where) else f": {message}"


def parse_chunk(chunk: Chunk) -> ChunkResult:
    """Parse and convert one chunk (runs in a worker, or in-process for small files)."""
    cpu_started, data = time.process_time(), chunk.data
    if data is None:
        with open(chunk.path, "rb") as fh:
            data = os.pread(fh.fileno(), chunk.length, chunk.offset)
    lines = data.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()  # the chunk's final newline
    done = ChunkResult(len(lines), np.empty((0, chunk.cfg.seq_len, len(CHANNELS)), np.float32), [], [])
    blocks, pending, failed, parser = [], [], None, fast_parser()
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line:
            continue
        where = f"{chunk.path}: line {number}"
        try:
            record = parser and parse_fast(line, parser, chunk.cfg)
            pending.append((where, number, record or parse_line(line, where)))
        except DataError as exc:
            if not chunk.skip_bad:
                failed = (number, _tail(str(exc), where))
                break
            done.skipped.append((number, _tail(str(exc), where)))
            continue
        if len(pending) == BATCH_RECORDS:
            failed, pending = _convert(pending, chunk, blocks, done), []
            if failed:
                break
    if pending:  # records before a line that failed to parse may hold an earlier error: it wins
        failed = _convert(pending, chunk, blocks, done) or failed
    done.error = failed
    if blocks:
        done.series = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
    done.skipped.sort()
    done.peak_rss_bytes, done.cpu_seconds = peak_rss_bytes(), time.process_time() - cpu_started
    return done


def _convert(pending, chunk: Chunk, blocks: list, done: ChunkResult) -> tuple[int, str] | None:
    try:
        series, meta, skipped = records_to_series(pending, chunk.cfg, chunk.skip_bad)
    except DataError as exc:
        line = next(line for where, line, _ in pending if str(exc).startswith(where + ":"))
        return line, _tail(str(exc), f"{chunk.path}: line {line}")
    blocks.append(series)
    done.meta += meta
    done.skipped += [(line, _tail(msg, f"{chunk.path}: line {line}")) for line, msg in skipped]
    return None


def _next_newline(fh, pos: int, size: int) -> int:
    """Offset just after the first newline at or after `pos` (or the file's end)."""
    fh.seek(pos)
    while pos < size:
        block = fh.read(1 << 16)
        cut = block.find(b"\n")
        if cut >= 0:
            return pos + cut + 1
        pos += len(block)
    return size


def _plain_chunks(path: Path, chunk_bytes: int, **common) -> Iterator[Chunk]:
    size = path.stat().st_size
    with open(path, "rb") as fh:
        start = 0
        while start < size:
            end = _next_newline(fh, start + chunk_bytes - 1, size) if start + chunk_bytes < size else size
            yield Chunk(str(path), offset=start, length=end - start, **common)
            start = end


def _gzip_chunks(path: Path, chunk_bytes: int, **common) -> Iterator[Chunk]:
    """Decompress here (a gzip stream is serial) and hand out whole lines."""
    rest = b""
    try:
        with _gzip.open(path, "rb") as gz:
            while block := gz.read(chunk_bytes):
                data = rest + block
                cut = data.rfind(b"\n") + 1
                if cut:
                    yield Chunk(str(path), data=data[:cut], **common)
                rest = data[cut:]
    except _GZIP_ERRORS as exc:
        # The complete lines before the damage were handed out; their errors come first.
        raise DataError(f"{path}: truncated or corrupt gzip data ({exc})") from None
    if rest.strip():
        yield Chunk(str(path), data=rest, **common)


def pool_context():
    """forkserver where there is one, else spawn: never a plain fork of this process.

    Forking a process that runs threads (torch, pyarrow) can deadlock the child. The fork server
    is a fresh process that preloads this module (numpy, orjson), so each worker starts in
    milliseconds. As with spawn, workers import the caller's __main__ (guarded by
    `if __name__ == "__main__"`); keep a script's heavy imports inside its main function.
    The first call starts the server and returns at once; it imports while we go on.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    from multiprocessing import forkserver  # Unix only: imported once we know it exists

    forkserver.ensure_running()
    return ctx


def _worker_started() -> None:
    """Pool initializer: the worker exits as soon as the process that started the pool is gone.

    Needed for a kill -9 of that process: a worker otherwise waits forever for its next chunk (it
    holds an end of its own task pipe, so it never sees end-of-file). PR_SET_PDEATHSIG would not do:
    a worker's OS parent is the fork server, which lives as long as any worker does (each holds its
    "alive" pipe). multiprocessing instead gives every child a pipe end that the starting process
    holds open (`parent_process().sentinel`); a watchdog thread waits for it to close.
    """
    parent = multiprocessing.parent_process()
    if parent is not None and parent.sentinel is not None:
        threading.Thread(
            target=_exit_with_parent, args=(parent.sentinel,), name="exit-with-parent", daemon=True
        ).start()


def _exit_with_parent(sentinel) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(1)  # nothing of a worker's needs cleaning up; its results have nowhere to go


class Terminated(SystemExit):
    """A SIGTERM arrived inside `stop_on_sigterm`; raised where stopping is safe (`stop_if_terminated`)."""


_SIGTERM = {"received": False}  # set by the handler `stop_on_sigterm` installs


def _note_sigterm(signum, frame) -> None:
    _SIGTERM["received"] = True


def stop_if_terminated() -> None:
    """Raise `Terminated` if a SIGTERM has arrived: called between chunks, where no lock is held.

    The handler only notes the signal: an exception raised at any instruction could land inside
    ProcessPoolExecutor.submit (say, between starting a worker and recording it) and hang the pool's
    shutdown, which then waits for a worker that is never told to stop.
    """
    if _SIGTERM["received"]:
        raise Terminated(128 + signal.SIGTERM)


@contextmanager
def stop_on_sigterm():
    """While this runs, a SIGTERM stops the work in order: at the next `stop_if_terminated` the
    `Terminated` it raises runs the `finally` and `except` blocks inside (stopping the worker pool,
    removing temporary files). On the way out the previous handler comes back and the signal is
    delivered again, so the process still ends by SIGTERM.

    Only where SIGTERM has its default action (a program with its own handler keeps it), only in the
    main thread (where Python runs handlers), and nested uses are one.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return
    _SIGTERM["received"] = False
    signal.signal(signal.SIGTERM, _note_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if _SIGTERM["received"]:
            print("Stopped by SIGTERM: parsing workers stopped, no partial files left", file=sys.stderr, flush=True)
            signal.raise_signal(signal.SIGTERM)  # the default action: the process ends here


def plan_workers(path: Path, workers: int | None) -> int:
    """How many processes `ingest` will use: all cores by default, one for a small file."""
    if workers is None:
        return 1 if Path(path).stat().st_size < SERIAL_BELOW_BYTES else default_workers()
    return max(1, workers)


def _results(chunks: Iterator[Chunk], workers: int) -> Iterator[ChunkResult]:
    """Results in file order; at most 2 chunks per worker in flight (so memory stays flat)."""
    if workers <= 1:
        yield from map(parse_chunk, chunks)
        return
    pool = ProcessPoolExecutor(workers, mp_context=pool_context(), initializer=_worker_started)
    pending, failure = deque(), None
    try:
        try:
            for chunk in chunks:
                pending.append(pool.submit(parse_chunk, chunk))
                while len(pending) >= 2 * workers or (pending and pending[0].done()):
                    yield pending.popleft().result()
        except DataError as exc:  # the reader failed: results before the failure come first
            failure = exc
        while pending:
            yield pending.popleft().result()
        if failure:
            raise failure
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class Progress:
    """Workouts/s as a tqdm bar on a terminal, else a flushed log line every `every` workouts."""

    def __init__(self, log=say, every: int = PROGRESS_EVERY):
        self.log, self.every, self.count, self.next_line = log, every, 0, every
        self.started = time.perf_counter()
        self.bar = None
        if log is say and attached_to_terminal():
            self.bar = tqdm(unit=" workouts", unit_scale=True, file=sys.stderr, leave=False)

    def update(self, n: int) -> None:
        self.count += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.count >= self.next_line:
            self.next_line += self.every
            self.log(f"  parsed {self.count:,} workouts ({self.rate():,.0f}/s)")

    def rate(self) -> float:
        return self.count / max(time.perf_counter() - self.started, 1e-9)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@dataclass
class IngestStats:
    n_workouts: int = 0
    n_lines: int = 0
    skipped: list[str] = field(default_factory=list)
    workers: int = 1
    seconds: float = 0.0
    worker_peak_rss_bytes: int = 0  # the largest worker's (0: parsed in this process)
    worker_cpu_seconds: float = 0.0  # the workers' CPU time, all together


class PeakMemory:
    """Resident memory sampled every `interval_s` over this process and its children while the block runs:
    `main` the largest this process reached, `tree` the largest sum over it and its workers. getrusage's own
    peak is taken at one moment and of one process; memory-mapped cache pages read later (the filters) and
    the workers do not show in it. Pages shared between processes count once in each (RSS, not PSS)."""

    def __init__(self, interval_s: float = 0.02):
        import psutil

        self._psutil, self.interval_s, self.main, self.tree = psutil, interval_s, 0, 0
        self._stop = threading.Event()

    def _sample(self) -> None:
        me = self._psutil.Process()
        while not self._stop.is_set():
            try:
                main = me.memory_info().rss
                workers = sum(c.memory_info().rss for c in me.children(recursive=True))
                self.main, self.tree = max(self.main, main), max(self.tree, main + workers)
            except self._psutil.Error:
                pass  # a worker that just exited
            self._stop.wait(self.interval_s)

    def __enter__(self) -> "PeakMemory":
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far."""
    import resource  # Unix only

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def ingest(
    path: Path,
    cfg: ParseConfig,
    out,
    skip_bad: bool = False,
    workers: int | None = None,
    log=say,
    chunk_bytes: int = CHUNK_BYTES,
) -> tuple[list[RecordMeta], IngestStats]:
    """Stream every record of `path` into `out.append(float32 rows)`; metadata and counts back.

    workers=None: all cores, or one for a small file; an explicit number is used as given.
    """
    path = Path(path)
    started = time.perf_counter()
    kind = sniff_format(path)
    with open(path, "rb") as fh:
        gzipped = fh.read(2) == b"\x1f\x8b"
    stats = IngestStats(workers=plan_workers(path, workers) if kind == "lines" else 1)
    metas, progress = [], Progress(log)
    if kind == "array":  # a JSON array cannot be cut by lines: the serial reader, in blocks
        results = _array_results(path, cfg, skip_bad)
    else:
        chunks = (_gzip_chunks if gzipped else _plain_chunks)(path, chunk_bytes, cfg=cfg, skip_bad=skip_bad)
        results = _results(chunks, stats.workers)
    with stop_on_sigterm(), closing(results), closing(progress):  # closing: stop the pool and the bar on errors
        for result in results:
            stop_if_terminated()
            base = stats.n_lines
            if result.error:
                raise DataError(f"{path}: line {base + result.error[0]}{result.error[1]}")
            stats.skipped += [f"{path}: {result.unit} {base + line}{tail}" for line, tail in result.skipped]
            for meta in result.meta:
                meta.line += base
            out.append(result.series)
            metas += result.meta
            stats.n_lines += result.n_lines
            if stats.workers > 1:
                stats.worker_peak_rss_bytes = max(stats.worker_peak_rss_bytes, result.peak_rss_bytes)
                stats.worker_cpu_seconds += result.cpu_seconds
            progress.update(len(result.meta))
    if not metas:
        raise DataError(
            f"{path}: no usable workout records" + (f" ({len(stats.skipped)} skipped)" if stats.skipped else "")
        )
    stats.n_workouts, stats.seconds = len(metas), time.perf_counter() - started
    return metas, stats


def _array_results(path: Path, cfg: ParseConfig, skip_bad: bool) -> Iterator[ChunkResult]:
    """A JSON array's records in blocks, as results with nothing to renumber."""

    def converted(batch):
        series, meta, skipped = records_to_series(batch, cfg, skip_bad)
        tails = [(n, _tail(msg, f"{path}: record {n}")) for n, msg in skipped]
        return ChunkResult(0, series, meta, tails, unit="record")  # numbers already count from the start

    batch = []
    try:
        for item in iter_records(path):
            batch.append(item)
            if len(batch) == BATCH_RECORDS:
                yield converted(batch)
                batch = []
    except DataError:
        if batch:
            converted(batch)  # a bad record before the damage is the error to report
        raise
    yield converted(batch)

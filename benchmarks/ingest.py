"""Ingestion benchmark: the project's path against a plain json.loads loop, in one run.

    python benchmarks/ingest.py --workouts 20000            # simulated file, plain text and gzipped
    python benchmarks/ingest.py --file /data/endomondoHR_proper.json.gz --workers 2

The simulated file (real FitRec format: one Python dict literal per line) is written once under
--dir and reused. Every measurement runs in a fresh Python process, so each peak memory is its
own: "peak RSS" is the largest sum of resident memory over the process and all its descendants
(workers, fork server), sampled every 50 ms, with PSS (shared pages split between processes, so
not counted twice) beside it. The project's path is `load_workouts` building the cache from
scratch (hashing, parsing, writing series.npy + meta.parquet + manifest.json); the baseline is
`json.loads(line.replace("'", '"'))` on each line of the plain text, on one core, keeping nothing.
Throughput on a shared machine moves with its load: compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

TARGET_RATE = 5000  # workouts/s (issue 4)
TARGET_MEMORY = 1.5  # peak memory / size of the arrays produced


def simulated_file(n_workouts: int, folder: Path) -> Path:
    """Exactly n_workouts simulated records as plain text (and .gz beside it), made once."""
    plain = folder / f"sim{n_workouts}.json"
    if plain.exists() and plain.with_suffix(".json.gz").exists():
        return plain
    from hr_lstm.data.simulate import SimConfig, simulate

    folder.mkdir(parents=True, exist_ok=True)
    source = folder / f".sim{n_workouts}.source.json.gz"
    print(f"Simulating {n_workouts:,} workouts (once; about 1 minute per 20,000) ...", flush=True)
    simulate(SimConfig(n_users=n_workouts // 25 + 2, seed=4, min_workouts=20, max_workouts=32), source)
    written = 0
    with gzip.open(source, "rb") as src, open(f"{plain}.tmp", "wb") as dst:
        for line in src:
            if written == n_workouts:
                break
            dst.write(line)
            written += 1
    with open(f"{plain}.tmp", "rb") as src, gzip.open(f"{plain}.gz.tmp", "wb", compresslevel=6) as dst:
        shutil.copyfileobj(src, dst, 1 << 22)
    if written < n_workouts:
        raise SystemExit(f"the simulator wrote only {written:,} workouts; ask for fewer")
    os.replace(f"{plain}.gz.tmp", f"{plain}.gz")
    os.replace(f"{plain}.tmp", plain)
    for sidecar in folder.glob(f".sim{n_workouts}.source*"):
        sidecar.unlink()
    return plain


# ---- measured in a child process ---------------------------------------------------------------


def _tree(pid: int) -> list[int]:
    pids, stack = [], [pid]
    while stack:
        p = stack.pop()
        pids.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    stack += [int(c) for c in fh.read().split()]
        except OSError:
            pass
    return pids


def _memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in bytes summed over the process tree."""
    rss = pss = 0
    for p in _tree(pid):
        try:
            with open(f"/proc/{p}/smaps_rollup") as fh:
                for line in fh:
                    if line.startswith(("Rss:", "Pss:")):
                        kb = int(line.split()[1]) * 1024
                        rss, pss = (rss + kb, pss) if line.startswith("Rss:") else (rss, pss + kb)
        except OSError:
            pass
    return rss, pss


class PeakMemory(threading.Thread):
    """Samples the process tree's memory every `every` s; its own CPU time is kept apart."""

    def __init__(self, every: float = 0.2):
        super().__init__(daemon=True)
        self.rss = self.pss = 0
        self.every, self.cpu_seconds = every, 0.0
        self.running = os.path.exists("/proc/self/smaps_rollup")

    def run(self) -> None:
        while self.running:
            rss, pss = _memory(os.getpid())
            self.rss, self.pss = max(self.rss, rss), max(self.pss, pss)
            self.cpu_seconds = time.thread_time()
            time.sleep(self.every)

    def stop(self) -> None:
        self.running = False
        self.join()
        rss, pss = _memory(os.getpid())
        self.rss, self.pss = max(self.rss, rss), max(self.pss, pss)


def measure(kind: str, path: str, workers: int | None) -> dict:
    import resource

    if kind == "project":
        from hr_lstm.data.cache import load_workouts  # imports before the clock: not ingestion
        from hr_lstm.data.fitrec import ParseConfig

        shutil.rmtree(f"{path}.hrcache", ignore_errors=True)
    peak = PeakMemory()
    peak.start()
    started, cpu_started, worker_cpu = time.perf_counter(), time.process_time(), 0.0
    if kind == "project":
        ws = load_workouts(path, ParseConfig(), workers=workers, log=lambda *a: None)
        n, array_bytes = len(ws), ws.series.nbytes
        used_workers, worker_cpu = ws.ingest_stats.workers, ws.ingest_stats.worker_cpu_seconds
    else:
        n, array_bytes, used_workers = 0, 0, 1
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                json.loads(line.replace("'", '"'))
                n += 1
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started + worker_cpu
    peak.stop()
    cpu -= peak.cpu_seconds  # the sampler's reading of /proc is not ingestion
    self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return dict(
        kind=kind,
        path=path,
        workouts=n,
        seconds=seconds,
        rate=n / seconds,
        workers=used_workers,
        cpu_per_workout=cpu / n,
        array_bytes=array_bytes,
        peak_rss=max(peak.rss, self_rss),
        peak_pss=peak.pss,
        fast_parser=_fast_parser_name(),
    )


def _fast_parser_name() -> str:
    """Which optional accelerators the project's path used."""
    import gzip

    from hr_lstm.data import fitrec_batch, ingest

    return "+".join(
        ("simdjson" if fitrec_batch.simdjson is not None else "orjson", "zlib" if ingest._gzip is gzip else "isal")
    )


def _run_child(kind: str, path: Path, workers: int | None) -> dict:
    cmd = [sys.executable, __file__, "--_measure", kind, str(path)] + (["--workers", str(workers)] if workers else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            return next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workouts", type=int, default=20_000, help="size of the simulated file (default 20,000)")
    p.add_argument("--file", type=Path, help="measure this FitRec-format file instead of a simulated one")
    p.add_argument("--workers", type=int, default=None, help="parsing processes (default: all cores)")
    p.add_argument("--dir", type=Path, default=Path("/tmp/hr_lstm_bench"), help="where the simulated file is kept")
    p.add_argument("--no-gz", action="store_true", help="skip the gzipped run")
    p.add_argument("--_measure", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._measure:
        print(json.dumps(measure(args._measure[0], args._measure[1], args.workers)))
        return 0

    plain = args.file or simulated_file(args.workouts, args.dir)
    runs = [("project", plain)]
    if not args.file and not args.no_gz:
        runs.append(("project", plain.with_suffix(".json.gz")))
    baseline_on = plain if not str(plain).endswith(".gz") else None
    mb = 1 << 20
    print(
        f"Machine: {_cpu_name()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} at start; Python {platform.python_version()}"
    )
    print(f"File: {plain} ({plain.stat().st_size / mb:,.0f} MB of text)")
    results = [_run_child(kind, path, args.workers) for kind, path in runs]
    base = _run_child("baseline", baseline_on, None) if baseline_on else None
    header = (
        f"{'path':56s} {'workouts':>8s} {'s':>6s} {'workouts/s':>10s} {'CPU ms/workout':>14s} "
        f"{'peak RSS':>9s} {'peak PSS':>9s} {'arrays':>8s}"
    )
    print(header)
    for r in results + ([base] if base else []):
        label = (
            f"project: load_workouts, {r['workers']} workers, {r['fast_parser']}, "
            if r["kind"] == "project"
            else "baseline: json.loads loop, 1 process, "
        ) + Path(r["path"]).name
        arrays = f"{r['array_bytes'] / mb:,.0f} MB" if r["array_bytes"] else "-"
        print(
            f"{label:56s} {r['workouts']:>8,} {r['seconds']:>6.1f} {r['rate']:>10,.0f} {r['cpu_per_workout'] * 1e3:>14.3f} "
            f"{r['peak_rss'] / mb:>6,.0f} MB {r['peak_pss'] / mb:>6,.0f} MB {arrays:>8s}"
        )
    for r in results:
        name = Path(r["path"]).name
        speed = (
            (
                f"{r['rate'] / base['rate']:.2f}x the json.loads loop's workouts/s and "
                f"{base['cpu_per_workout'] / r['cpu_per_workout']:.2f}x less CPU per workout; "
            )
            if base
            else ""
        )
        print(
            f"{name}: {speed}{r['rate'] / TARGET_RATE:.2f}x the {TARGET_RATE:,}/s target; peak RSS "
            f"{r['peak_rss'] / r['array_bytes']:.2f}x and PSS {r['peak_pss'] / r['array_bytes']:.2f}x the arrays "
            f"(target <= {TARGET_MEMORY}x)"
        )
        cores = min(r["workers"], os.cpu_count() or 1)
        print(
            f"  CPU-bound ceiling with {cores} free cores: {cores / r['cpu_per_workout']:,.0f} workouts/s "
            f"(CPU per workout, hashing and cache writing included; a projection, not a measurement)"
        )
    print(
        f"Load average {os.getloadavg()[0]:.1f} at the end: other work on the machine moves workouts/s, "
        "much less the CPU per workout."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

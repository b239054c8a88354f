"""Fuzz every reader: mutated real files must give the project's one-line errors, never a traceback or a hang.

    python benchmarks/fuzz.py --cases 20000          # about 10-20 minutes on 2 cores
    python benchmarks/fuzz.py --cases 300 --seed 1

Seeds: the shipped recordings (the example runner's GPX, a FIT run in tests/data/fuzz_seeds), a TCX, CSV
streams of both shapes and FitRec lines made here, and a checkpoint trained here (a tiny one). Mutations:
truncation, bit flips, bytes dropped or repeated, lines (elements) dropped or duplicated, numbers replaced by
absurd ones (NaN, Inf, 1e308, -1, 4294967295), a change of encoding (UTF-16, Latin-1), the file emptied or
made huge in one value. Each case runs the import path (`read_recording` and `build_record`), or the FitRec
line parser, or the checkpoint loader. An `HRLSTMError` (one line naming the file) is a pass, and so is
reading the file; anything else raised, or a case running past --timeout seconds, is a failure, printed
with the mutation that caused it. `tests/test_fuzz_readers.py` draws the same mutations with hypothesis.
"""

from __future__ import annotations

import argparse
import gzip
import io
import re
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ABSURD = (b"nan", b"NaN", b"inf", b"-inf", b"1e308", b"-1", b"4294967295", b"1e30", b"0", b"")
MUTATIONS = ("truncate", "flip_bits", "drop_bytes", "repeat_bytes", "drop_lines", "repeat_lines", "absurd_number",
             "encoding", "empty", "huge_value")  # fmt: skip


class Hang(Exception):
    pass


def seeds(workdir: Path) -> dict[str, bytes]:
    """The files every mutation starts from, by reader: name -> bytes."""
    from hr_lstm.data.recordings import import_recordings  # noqa: F401  (the package must import)

    out = {}
    runs = sorted((ROOT / "examples" / "runner_a").glob("*.gpx.gz"))
    if runs:
        out["run.gpx"] = gzip.decompress(runs[0].read_bytes())
        out["run.gpx.gz"] = runs[1].read_bytes()
    fit = ROOT / "tests" / "data" / "fuzz_seeds" / "fr110_run.fit"
    if fit.is_file():
        out["run.fit"] = fit.read_bytes()
    t = np.arange(0, 900, 3)
    out["run.tcx"] = (
        '<?xml version="1.0"?><TrainingCenterDatabase xmlns="http://www.garmin.com/xmlschemas/'
        'TrainingCenterDatabase/v2"><Activities><Activity Sport="Running"><Lap><Track>'
        + "".join(
            f"<Trackpoint><Time>2021-05-01T07:{s // 60:02d}:{s % 60:02d}Z</Time><Position><LatitudeDegrees>"
            f"{45 + s * 3e-5:.6f}</LatitudeDegrees><LongitudeDegrees>7.0</LongitudeDegrees></Position>"
            f"<AltitudeMeters>{200 + s / 100:.1f}</AltitudeMeters><DistanceMeters>{3.0 * s:.1f}</DistanceMeters>"
            f"<HeartRateBpm><Value>{120 + s // 20}</Value></HeartRateBpm></Trackpoint>"
            for s in map(int, t)
        )
        + "</Track></Lap></Activity></Activities></TrainingCenterDatabase>"
    ).encode()
    out["stream_fit.csv"] = (
        "timestamp,heart_rate,enhanced_speed,enhanced_altitude,distance,position_lat,position_long\n"
        + "".join(
            f"2021-05-01 07:{s // 60:02d}:{s % 60:02d}+00:00,{120 + s // 20},2.8,{200 + s / 100:.1f},"
            f"{2.8 * s:.1f},{int((48 + s * 2.5e-5) * 2**31 / 180)},{int(11 * 2**31 / 180)}\n"
            for s in map(int, t)
        )
    ).encode()
    out["run_2021-05-01-07-00-00.csv"] = (
        "time,heartrate,velocity_smooth,altitude,distance,latlng\n"
        + "".join(f'{s},{125 + s // 30},3.0,50.0,{3.0 * s},"[{45 + s * 3e-5:.6f}, 7.0]"\n' for s in map(int, t))
    ).encode()
    record = {
        "altitude": [200.0 + i for i in range(60)],
        "gender": "male",
        "heart_rate": [120.0 + i % 9 for i in range(60)],
        "id": 1,
        "latitude": [48.0 + i * 1e-4 for i in range(60)],
        "longitude": [11.0] * 60,
        "speed": [10.0] * 60,
        "sport": "run",
        "timestamp": [1_400_000_000 + 5 * i for i in range(60)],
        "url": "u",
        "userId": 7,
    }
    out["records.json"] = (str(record) + "\n" + str(dict(record, id=2)) + "\n").encode()
    out["model.pt"] = tiny_checkpoint(workdir).read_bytes()
    return out


def tiny_checkpoint(workdir: Path) -> Path:
    """A small lstm_embeddings checkpoint trained here (seconds), to mutate."""
    import contextlib

    from hr_lstm.cli import main as cli_main
    from hr_lstm.data.simulate import SimConfig, simulate

    path = workdir / "ck" / "lstm_embeddings_best.pt"
    if not path.is_file():
        simulate(SimConfig(n_users=4, seed=1, min_workouts=10, max_workouts=10), workdir / "sim.json.gz")
        small = ["--hidden-size", "4", "--num-layers", "1", "--embedding-dim", "2", "--epochs", "1"]
        with contextlib.redirect_stdout(io.StringIO()):
            cli_main(["train", "--data", str(workdir / "sim.json.gz"), "--out", str(workdir / "ck"), *small])
    return path


def mutate(data: bytes, kind: str, rng: np.random.Generator) -> bytes:
    """One mutation of `data`, its position and size drawn from `rng`."""
    n = len(data)
    at = int(rng.integers(0, max(n, 1)))
    if kind == "truncate":
        return data[:at]
    if kind == "flip_bits":
        out = bytearray(data)
        for i in rng.integers(0, max(n, 1), size=int(rng.integers(1, 9))):
            if n:
                out[i] ^= 1 << int(rng.integers(0, 8))
        return bytes(out)
    if kind == "drop_bytes":
        return data[:at] + data[at + int(rng.integers(1, 200)) :]
    if kind == "repeat_bytes":
        size = int(rng.integers(1, 200))
        return data[:at] + data[at : at + size] * int(rng.integers(2, 20)) + data[at:]
    if kind in ("drop_lines", "repeat_lines"):
        lines = re.split(rb"(?<=\n)|(?=<trkpt)|(?=<Trackpoint>)", data)
        if len(lines) < 2:
            return data
        i = int(rng.integers(0, len(lines)))
        k = int(rng.integers(1, max(2, len(lines) // 4)))
        return b"".join(lines[:i] + lines[i + k :] if kind == "drop_lines" else lines[: i + k] + lines[i:])
    if kind == "absurd_number":
        numbers = list(re.finditer(rb"-?\d+(\.\d+)?(e-?\d+)?", data))
        out = data
        for m in sorted((numbers[int(j)] for j in rng.integers(0, len(numbers), size=5)) if numbers else [],
                        key=lambda m: -m.start()):  # fmt: skip
            out = out[: m.start()] + ABSURD[int(rng.integers(0, len(ABSURD)))] + out[m.end() :]
        return out
    if kind == "encoding":
        text = data.decode("utf-8", "replace")
        return text.encode(("utf-16", "utf-16-le", "latin-1", "utf-32")[int(rng.integers(0, 4))], "replace")
    if kind == "empty":
        return b""
    if kind == "huge_value":
        return data[:at] + b"9" * int(rng.integers(1_000, 200_000)) + data[at:]
    raise ValueError(kind)


def check(name: str, data: bytes, workdir: Path) -> None:
    """Read `data` (named `name`) the way a user's command would; HRLSTMError is the expected failure."""
    from hr_lstm.data.fitrec import ParseConfig, iter_records, record_to_series
    from hr_lstm.data.recordings import build_record, read_recording
    from hr_lstm.errors import HRLSTMError
    from hr_lstm.training.trained import TrainedModel

    path = workdir / name
    path.write_bytes(data)
    try:
        if name.endswith(".pt"):
            TrainedModel.load(path)
        elif name.endswith(".json"):
            for where, line, record in iter_records(path):
                record_to_series(record, where, line, ParseConfig())
        else:
            build_record(read_recording(path), "fuzz", "unknown", None, 500, "uniform")
    except HRLSTMError as exc:
        message = str(exc)
        if "\n" in message or not message:
            raise AssertionError(f"an error message that is not one line: {message!r}") from None


def _alarm(signum, frame):
    raise Hang()


def run_cases(cases: int, seed: int = 0, timeout_s: float = 10.0, report=print) -> Counter:
    """`cases` mutations spread over every seed and mutation kind; returns counts by outcome."""
    rng = np.random.default_rng(seed)
    counts, failures = Counter(), []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        pool = seeds(workdir)
        names = sorted(pool)
        old = signal.signal(signal.SIGALRM, _alarm)
        try:
            for i in range(cases):
                name, kind = names[i % len(names)], MUTATIONS[(i // len(names)) % len(MUTATIONS)]
                data = mutate(pool[name], kind, rng)
                signal.setitimer(signal.ITIMER_REAL, timeout_s)
                try:
                    check(name, data, workdir)
                    counts["passed"] += 1
                except Hang:
                    counts["hang"] += 1
                    failures.append((name, kind, "hang"))
                except Exception:  # noqa: BLE001  (what the fuzzing is for)
                    counts["traceback"] += 1
                    failures.append((name, kind, traceback.format_exc(limit=-3)))
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                if report and (i + 1) % 1000 == 0:
                    report(f"  {i + 1:,} cases: {dict(counts)}")
        finally:
            signal.signal(signal.SIGALRM, old)
    for name, kind, what in failures[:20]:
        report(f"FAIL {name} / {kind}:\n{what}")
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds a case may take before it is a hang")
    args = parser.parse_args()
    started = time.perf_counter()
    counts = run_cases(args.cases, args.seed, args.timeout)
    bad = counts["traceback"] + counts["hang"]
    print(
        f"{args.cases:,} cases in {time.perf_counter() - started:.0f} s: {counts['passed']:,} handled, "
        f"{counts['traceback']} tracebacks, {counts['hang']} hangs"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

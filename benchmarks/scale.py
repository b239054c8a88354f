"""A season at once: time and peak memory of predict, personalize and import as the number of files grows.

    python benchmarks/scale.py                  # predict 75/150/300, personalize 50/100/200, import 250/500/1000
    python benchmarks/scale.py --quick          # a third of each

Files: 12-minute runs at 1 s (720 track points, heart rate, elevation), one a day, written as GPX here. Each
command runs as its own process (`python -m hr_lstm ...`, the bundled model); its peak memory is sampled
every 20 ms over the whole process tree (psutil, resident set size summed). One file is damaged in every batch:
it must be reported and the rest go on. Growth is read as the ratio of time (and memory) per file between the
largest and the smallest batch: 1.0 is linear. Run on a quiet machine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil


def write_runs(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng, paths = np.random.default_rng(0), []
    start = np.datetime64("2024-01-01T07:00:00")
    for i in range(n):
        speed = 2.6 + 0.4 * rng.random() + 0.2 * np.sin(np.arange(720) / 60)
        lat = 48 + np.cumsum(speed) / 111_195
        hr = 160 - 60 * np.exp(-np.arange(720) / 60) + rng.normal(0, 2, 720)
        t0 = start + np.timedelta64(i, "D")
        points = "".join(
            f'<trkpt lat="{lat[k]:.7f}" lon="11"><ele>{200 + 8 * np.sin(k / 90):.1f}</ele>'
            f"<time>{t0 + np.timedelta64(k, 's')}Z</time><extensions><gpxtpx:TrackPointExtension>"
            f"<gpxtpx:hr>{hr[k]:.0f}</gpxtpx:hr></gpxtpx:TrackPointExtension></extensions></trkpt>"
            for k in range(720)
        )
        path = folder / f"run_{i:04d}.gpx"
        path.write_text(
            '<gpx xmlns="http://www.topografix.com/GPX/1/1" xmlns:gpxtpx="http://www.garmin.com/xmlschemas/'
            'TrackPointExtension/v1" version="1.1" creator="scale"><trk><type>running</type><trkseg>'
            f"{points}</trkseg></trk></gpx>"
        )
        paths.append(path)
    (folder / "run_broken.gpx").write_text("<gpx><trk><trkseg><trkpt lat=")  # one bad file in every batch
    return paths


def measure(argv: list[str]) -> tuple[float, float, str]:
    """(seconds, peak MB over the process tree, last line of output) of `python -m hr_lstm ARGV`."""
    started = time.perf_counter()
    log = tempfile.TemporaryFile()  # not a pipe: a season's lines would fill it and block the command
    proc = subprocess.Popen([sys.executable, "-m", "hr_lstm", *argv], stdout=log, stderr=subprocess.STDOUT)
    root, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree))
        except psutil.Error:
            pass
        time.sleep(0.02)
    log.seek(0)
    out = log.read().decode().strip().splitlines()
    if proc.returncode:
        raise SystemExit(f"{' '.join(argv[:2])} failed ({proc.returncode}): {out[-1] if out else ''}")
    return time.perf_counter() - started, peak / 2**20, next((line for line in out if "run_broken" in line), "")


def batch(folder: Path, files: list[Path], n: int) -> Path:
    """A folder of the first n runs and the broken file (links, not copies)."""
    out = folder / f"batch_{n}"
    out.mkdir()
    for path in [*files[:n], files[0].parent / "run_broken.gpx"]:
        (out / path.name).symlink_to(path)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a third of each size")
    parser.add_argument("--only", default="predict,personalize,import", help="commands to time (comma-separated)")
    args = parser.parse_args()
    scale = 3 if args.quick else 1
    sizes = {
        "predict": [75 // scale, 150 // scale, 300 // scale],
        "personalize": [50 // scale, 100 // scale, 200 // scale],
        "import": [250 // scale, 500 // scale, 1000 // scale],
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print(f"writing {max(max(v) for v in sizes.values())} runs ...", flush=True)
        files = write_runs(tmp / "runs", max(max(v) for v in sizes.values()))
        rows = []
        sizes = {c: ns for c, ns in sizes.items() if c in args.only.split(",")}
        for command, ns in sizes.items():
            for n in ns:
                folder = batch(tmp, files, n) if not (tmp / f"batch_{n}").exists() else tmp / f"batch_{n}"
                argv = {
                    "predict": ["predict", str(folder), "--out", str(tmp / f"pred_{n}")],
                    "personalize": [
                        "personalize",
                        "--workouts",
                        str(folder),
                        "--out",
                        str(tmp / f"me_{n}.pt"),
                        "--max-workouts",
                        "1000",
                    ],  # fmt: skip
                    "import": ["import", str(folder), "--user", "me", "--out", str(tmp / f"imp_{n}.json.gz")],
                }[command]
                seconds, peak_mb, skipped = measure(argv)
                rows.append((command, n, seconds, peak_mb))
                print(
                    f"{command:12s} {n:5d} files: {seconds:6.1f} s ({1000 * seconds / n:5.0f} ms a file), peak "
                    f"{peak_mb:6.0f} MB; bad file: {'reported' if skipped else 'NOT REPORTED'}",
                    flush=True,
                )
        print("\ngrowth from the smallest to the largest batch (1.0 = linear):")
        for command in sizes:
            (n0, s0, m0), (n1, s1, m1) = [(n, s, m) for c, n, s, m in rows if c == command][:: len(sizes[command]) - 1]
            print(
                f"  {command:12s} time per file x{(s1 / n1) / (s0 / n0):.2f}, memory x{m1 / m0:.2f} for x{n1 / n0:.0f} files"
            )


if __name__ == "__main__":
    main()

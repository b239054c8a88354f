"""A person's files as the model reads them: recordings (FIT / GPX / TCX / CSV, folders, bulk exports) and
FitRec-format files, stacked into one `Workouts`, with what was skipped and why.

`read_workout_files` is what `predict`, `personalize`, `calibrate --strangers` and the benchmarks read with; a
file that cannot be used is skipped with one line saying why, and the rest still come through.
"""

from __future__ import annotations

import gzip
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..console import say
from ..data.cache import load_workouts
from ..data.fitrec import CHANNELS, ParseConfig, record_to_series
from ..data.recordings import GENDERS, MIN_HR_FRACTION, build_record, collect_workout_files, read_recording
from ..data.workouts import WorkoutSet
from ..errors import DataError, HRLSTMError

PLACEHOLDER_BPM = 100.0  # stands in for a missing heart-rate channel so speed and altitude can still be resampled


@dataclass
class Workouts:
    """Workouts read from a person's files, stacked for the model, and what was skipped and why."""

    workouts: WorkoutSet  # series (n, seq_len, channels) + meta (id, user_id, sport, gender, start_time)
    names: list[str]  # output file stem of each workout
    has_heart_rate: np.ndarray  # (n,) bool: the file measured heart rate
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (file, reason)
    n_files: int = 0  # files read (folders and exports expanded)

    def __len__(self) -> int:
        return len(self.names)

    def table(self) -> pd.DataFrame:
        """One row per workout: name, sport, start, duration, distance, mean speed and heart rate."""
        ws, rows = self.workouts, []
        for i, name in enumerate(self.names):
            t, v = ws.channel("time_s")[i], ws.channel("speed_kmh")[i]
            hr = ws.channel("heart_rate_bpm")[i]
            rows.append(
                {
                    "workout": name,
                    "sport": ws.meta["sport"].iloc[i],
                    "start": pd.to_datetime(int(ws.meta["start_time"].iloc[i]), unit="s", utc=True),
                    "duration_min": round(float(t[-1] - t[0]) / 60, 1),
                    "distance_km": round(float(np.sum(v[1:] / 3.6 * np.diff(t))) / 1000, 2),
                    "mean_speed_kmh": round(float(v.mean()), 1),
                    "mean_heart_rate_bpm": round(float(hr.mean()), 1) if self.has_heart_rate[i] else None,
                }
            )
        return pd.DataFrame(rows)


def is_fitrec_file(path: Path) -> bool:
    """A FitRec-format file (JSON / dict literals), recognised by its name or its first character."""
    name = path.name.lower()
    if name.endswith((".json", ".json.gz", ".jsonl", ".jsonl.gz")):
        return True
    if not path.is_file():  # a pipe (`<(cat run.gpx)`): a look at its head would eat it; a recording then
        return False
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
        if head[:2] == b"\x1f\x8b":
            with gzip.open(path, "rb") as fh:
                head = fh.read(64)
    except (OSError, EOFError):
        return False  # read_recording then names the problem
    return head.lstrip()[:1] in (b"{", b"[")


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".json", ".jsonl"):
        name = name[: -len(suffix)] if name.lower().endswith(suffix) else name
    return Path(name).stem if "." in name else name


def _recording_record(
    path: Path, user_id, gender: str, seq_len: int, require_heart_rate: bool, sport: str | None = None
) -> tuple[dict, bool, list[str]]:
    """A FitRec record from one recording, whether it measured heart rate, and what the user should be told
    (sport inferred, channels missing); without (enough) heart rate, a placeholder channel unless required."""
    rec = read_recording(path)
    hr = rec.samples["heart_rate_bpm"].to_numpy(float)
    measured = require_heart_rate or np.isfinite(hr).mean() >= MIN_HR_FRACTION
    if not measured:
        rec = replace(rec, samples=rec.samples.assign(heart_rate_bpm=PLACEHOLDER_BPM))
    record, summary = build_record(rec, user_id, gender, None, seq_len, "uniform", sport)
    return (
        record,
        measured,
        [n for n in summary.notes if any(w in n for w in ("inferred", "lacks", "as given", "removed"))],
    )


def read_workout_files(
    paths,
    parse: ParseConfig = ParseConfig(),
    user_id: str = "unknown",
    gender: str = "unknown",
    require_heart_rate: bool = False,
    report=say,
    sport: str | None = None,
) -> Workouts:
    """Read recordings (as `user_id`, `gender`) and FitRec files (their own users) into one `Workouts`.

    Folders and bulk exports are expanded (`collect_workout_files`). `sport` overrides every file's sport, else
    an export's activity table names it; without either a recording that names none gets the family its speeds
    suggest (reported)."""
    if gender not in GENDERS:
        raise HRLSTMError(f"--gender {gender}: choose one of {', '.join(GENDERS)}")
    found = collect_workout_files(paths)
    for line in found.notes if report else ():
        report(f"note     {line}")
    series, metas, names, has_hr, skipped = [], [], [], [], list(found.skipped)
    for path in found.files:
        given = sport or found.sports.get(path)
        try:
            if is_fitrec_file(path):
                ws = load_workouts(path, parse, skip_bad=True, cache=False, log=report or (lambda *a: None))
                if given:
                    ws.meta["sport"] = given
                got = [
                    (ws.series[i], ws.meta.iloc[i].to_dict(), f"{_stem(path)}_{ws.meta['id'].iloc[i]}", True)
                    for i in range(len(ws))
                ]
            else:
                record, measured, notes = _recording_record(
                    path, user_id, gender, parse.seq_len, require_heart_rate, given
                )
                array, meta = record_to_series(record, path.name, 0, parse)
                got = [(array, asdict(meta), _stem(path), measured)]
                for note in notes if report else ():
                    report(f"note     {path.name}: {note}")
                if not measured and report:
                    report(
                        f"note     {path.name}: too little heart rate in the recording; predicting without a "
                        f"measured curve (no MAE)"
                    )
        except DataError as exc:
            skipped.append((path, str(exc)))  # reported by the caller, in its summary
            continue
        for array, meta, name, measured in got:
            while name in names:  # a.fit and a.gpx: keep both outputs
                name += "_2"
            series.append(array), metas.append(meta), names.append(name), has_hr.append(measured)
    stacked = np.stack(series) if series else np.empty((0, parse.seq_len, len(CHANNELS)), np.float32)
    workouts = WorkoutSet(stacked, pd.DataFrame(metas), Path(str(paths[0])) if paths else Path("."), "")
    return Workouts(workouts, names, np.array(has_hr, bool), skipped, len(found.files) + len(found.skipped))

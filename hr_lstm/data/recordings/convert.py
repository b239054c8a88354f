"""From a `Recording` to FitRec-format workout records, one file or a batch, and to a file.

`to_fitrec_record` cleans a recording's samples and resamples them to the FitRec shape (keys
`FITREC_KEYS`, lists of seq_len points): speed from the device, else from distance, else from
positions, never across a pause; heart-rate artefacts removed (`artefacts`: spikes, a sensor still
settling), short heart-rate gaps filled, long ones dropped; pauses kept
as jumps in the time stamps; either a uniform grid over moving time or evenly picked original
samples (`MODES`). Too little heart rate or too short a recording raises `DataError`.
`import_recordings` reads and converts many files, skipping (with the reason) those that fail;
`write_records` writes records one `str(record)` per line, as FitRec files hold them.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ...errors import DataError
from ...paths import atomic_path
from ..fitrec import haversine_m
from ..workouts import infer_sport
from .artefacts import artefact_note, heart_rate_artefacts
from .export import collect_workout_files
from .read import read_recording
from .samples import MAX_SPEED_KMH, Recording, normalise_sport

MODES, GENDERS = ("uniform", "original"), ("male", "female", "unknown")
PAUSE_GAP_S = 30.0  # a longer gap between samples is a pause: no speed across it, time stamps jump
HR_FILL_GAP_S = 30.0  # heart-rate gaps up to this long are interpolated, longer ones dropped
MIN_HR_FRACTION, MIN_MOVING_S, MIN_HR_SAMPLES = 0.5, 300.0, 60
SPEED_WINDOW_S = 10.0  # half-width of the central difference for speed derived from distance or positions


@dataclass
class ImportedRecording:
    """What one imported file became."""

    path: Path
    sport: str
    moving_s: float  # time with heart rate, pauses left out
    elapsed_s: float
    n_samples: int  # samples with heart rate the record was built from
    speed_source: str  # 'device' | 'distance' | 'positions'
    notes: list[str] = field(default_factory=list)
    sport_source: str = "file"  # 'file' | 'given' (--sport) | 'inferred' (from the speeds)
    missing_channels: list[str] = field(default_factory=list)  # 'altitude', 'positions': absent from the file


@dataclass
class ImportResult:
    records: list[dict]
    skipped: list[tuple[Path, str]]  # (path, reason)
    imported: list[ImportedRecording] = field(default_factory=list)

    @property
    def n_files(self) -> int:
        return len(self.records) + len(self.skipped)


# ------------------------------------------------------- building FitRec records


def to_fitrec_record(
    rec: Recording,
    user_id,
    gender: str = "unknown",
    workout_id: int | None = None,
    seq_len: int = 500,
    mode: str = "uniform",
    sport: str | None = None,
) -> dict:
    """One FitRec record (keys FITREC_KEYS, lists of seq_len points) from a recording.

    `sport` overrides the file's; a file that names none gets the family its speeds suggest.
    A channel the file lacks (altitude, positions) is left out of the record, not filled with zeros."""
    return build_record(rec, user_id, gender, workout_id, seq_len, mode, sport)[0]


def resolve_sport(rec: Recording, given: str | None, speed_kmh: np.ndarray) -> tuple[str, str, str | None]:
    """(sport, where it came from, a note for the user): `given` (--sport), else the file's, else inferred."""
    if given:
        named = normalise_sport(given)
        sport = given.strip().lower() if named == "unknown" else named
        relabelled = rec.sport not in ("unknown", sport)
        return sport, "given", f"sport {sport} as given (the file says {rec.sport})" if relabelled else None
    if rec.sport != "unknown":
        return rec.sport, "file", None
    sport, median = infer_sport(speed_kmh)
    return sport, "inferred", f"no sport in the file: {sport} inferred from the median moving speed {median:.1f} km/h"


def build_record(rec, user_id, gender, workout_id, seq_len, mode, sport=None) -> tuple[dict, ImportedRecording]:
    """`to_fitrec_record` plus what the conversion did (`ImportedRecording`: sport source, missing channels, notes)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if gender not in GENDERS:
        raise ValueError(f"gender must be one of {GENDERS}, not {gender!r}")
    if seq_len < 2:
        raise ValueError(f"seq_len must be at least 2, not {seq_len}")
    name, notes = Path(rec.path).name, list(rec.notes)
    s = rec.samples
    t = s["time_s"].to_numpy(float)
    hr_raw = s["heart_rate_bpm"].to_numpy(float)
    n_hr = int(np.isfinite(hr_raw).sum())
    if n_hr == 0:
        raise DataError(f"{name}: no heart rate in this recording")
    if n_hr < MIN_HR_FRACTION * len(t):
        raise DataError(
            f"{name}: heart rate in only {n_hr / len(t):.0%} of samples (need at least {MIN_HR_FRACTION:.0%})"
        )
    segment = np.concatenate([[0], np.cumsum(np.diff(t) > PAUSE_GAP_S)])
    speed, source = _speed_kmh(s, t, segment, name)
    implausible = s.attrs.get("implausible") or {}
    if any(implausible.values()):
        said = {
            "altitude": "altitudes outside -500..9,000 m",
            "speed": f"speeds over {MAX_SPEED_KMH:g} km/h",
            "time": "samples with an impossible time stamp",
        }
        notes.append(
            "removed as implausible (treated as missing): "
            + ", ".join(f"{n} {said[k]}" for k, n in implausible.items() if n)
        )
    hr_clean, artefacts = heart_rate_artefacts(t, hr_raw)
    note = artefact_note(artefacts, int(s.attrs.get("hr_out_of_range", 0)))
    if note:
        notes.append(note)
    columns = {"heart_rate_bpm": _fill_short_gaps(t, hr_clean, HR_FILL_GAP_S), "speed_kmh": speed}
    missing = []
    if not np.isfinite(s["altitude_m"]).any():
        missing.append("altitude")
    if not (np.isfinite(s["latitude"]) & np.isfinite(s["longitude"])).any():
        missing.append("positions")
    for col in ("altitude_m", "latitude", "longitude"):
        values = s[col].to_numpy(float)
        ok = np.isfinite(values)
        if ok.any():  # a channel the file lacks stays out of the record: unknown, not zero
            columns[col] = np.interp(t, t[ok], values[ok])
    if missing:
        notes.append(f"lacks {' and '.join(missing)} (left absent, not filled with zeros)")
    resorted = int(s.attrs.get("resorted_samples", 0))
    if resorted:
        notes.append(f"re-sorted {resorted} sample{'s' if resorted > 1 else ''} whose time stamps went backwards")
    sport, sport_source, sport_note = resolve_sport(rec, sport, speed)
    if sport_note:
        notes.append(sport_note)
    keep = np.isfinite(columns["heart_rate_bpm"])  # drops leading/trailing and long heart-rate dropouts
    if keep.sum() < len(t):
        notes.append(f"{len(t) - keep.sum()} samples without heart rate dropped")
    tk = t[keep]
    dt = np.diff(tk)
    pause = dt > PAUSE_GAP_S
    moving_s = float(dt[~pause].sum())
    if moving_s < MIN_MOVING_S or len(tk) < MIN_HR_SAMPLES:
        raise DataError(
            f"{name}: recording too short to model ({_fmt_duration(moving_s)}, {len(tk)} samples "
            f"with heart rate; need at least {MIN_MOVING_S / 60:g} min and {MIN_HR_SAMPLES} samples)"
        )
    kept = {col: values[keep] for col, values in columns.items()}
    if mode == "original":  # seq_len of the samples, evenly by index (repeats when there are fewer)
        idx = np.round(np.linspace(0, len(tk) - 1, seq_len)).astype(int)
        out = {col: values[idx] for col, values in kept.items()}
        times = tk[idx]
    else:  # uniform grid over moving time: each pause shrinks to one typical step
        moving = np.concatenate([[0.0], np.cumsum(np.where(pause, np.median(dt), dt))])
        grid = np.linspace(0.0, moving[-1], seq_len)
        out = {col: np.interp(grid, moving, values) for col, values in kept.items()}
        times = np.interp(grid, moving, tk)
        after = np.searchsorted(moving, grid, side="right")
        inside = (after < len(moving)) & (grid > moving[np.maximum(after - 1, 0)])
        inside[inside] = pause[after[inside] - 1]
        out["speed_kmh"][inside] = 0.0  # no speed across a pause
    start = rec.start_time.timestamp()
    record = {
        "altitude": _floats(out["altitude_m"], 2) if "altitude_m" in out else None,
        "gender": gender,
        "heart_rate": _floats(out["heart_rate_bpm"], 1),
        "id": int(rec.content_hash if workout_id is None else workout_id),
        "latitude": _floats(out["latitude"], 7) if "latitude" in out else None,
        "longitude": _floats(out["longitude"], 7) if "longitude" in out else None,
        "speed": _floats(out["speed_kmh"], 3),
        "sport": sport,
        "timestamp": [int(round(start + x)) for x in times],
        "url": Path(rec.path).resolve().as_uri(),
        "userId": user_id,
    }
    record = {key: value for key, value in record.items() if value is not None}
    summary = ImportedRecording(
        Path(rec.path), sport, moving_s, float(tk[-1] - tk[0]), len(tk), source, notes, sport_source, missing
    )
    return record, summary


def _speed_kmh(s: pd.DataFrame, t: np.ndarray, segment: np.ndarray, name: str) -> tuple[np.ndarray, str]:
    """Speed per sample: device's, else d(distance)/dt, else from positions; never across a pause."""
    device = s["speed_kmh"].to_numpy(float)
    if np.isfinite(device).mean() >= 0.5:
        series = pd.Series(device, index=t).groupby(segment)
        filled = series.transform(lambda x: x.interpolate(method="index", limit_direction="both")).fillna(0.0)
        smooth = filled.groupby(segment).transform(lambda x: x.rolling(3, center=True, min_periods=1).mean())
        return np.clip(smooth.to_numpy(), 0.0, MAX_SPEED_KMH), "device"
    distance = s["distance_m"].to_numpy(float)
    lat, lon = s["latitude"].to_numpy(float), s["longitude"].to_numpy(float)
    has_pos = np.isfinite(lat) & np.isfinite(lon)
    ok = np.isfinite(distance)
    steps_back = float((np.diff(distance[ok]) < 0).mean()) if ok.sum() > 1 else 0.0
    # A distance that goes backwards (a device's reset, a damaged export) says nothing; positions, if any, do.
    if ok.mean() >= 0.5 and (steps_back <= 0.05 or has_pos.sum() < 2):
        cumulative, source = np.maximum.accumulate(np.interp(t, t[ok], distance[ok])), "distance"
    elif has_pos.sum() >= 2:
        steps = haversine_m(lat[has_pos], lon[has_pos])
        cumulative = np.interp(t, t[has_pos], np.concatenate([[0.0], np.cumsum(steps)]))
        source = "positions" if steps_back <= 0.05 else "positions (the distance went backwards)"
    elif has_pos.any() and len(np.unique(t)) < 2:  # positions, all at one time (merged into one sample)
        if s.attrs.get("rows_read", len(t)) == 1:
            raise DataError(f"{name}: a single sample: nothing to model (a recording needs at least 5 minutes)")
        raise DataError(
            f"{name}: time stamps do not advance (all equal), so no speed can be derived from the positions; "
            "export the recording again with its real time stamps"
        )
    else:
        raise DataError(f"{name}: no speed, distance or positions to derive speed from")
    first = np.searchsorted(segment, segment, side="left")
    last = np.searchsorted(segment, segment, side="right") - 1
    lo, hi = np.maximum(t - SPEED_WINDOW_S, t[first]), np.minimum(t + SPEED_WINDOW_S, t[last])
    span = hi - lo
    delta = np.interp(hi, t, cumulative) - np.interp(lo, t, cumulative)
    speed = np.where(span > 0, delta / np.where(span > 0, span, 1.0) * 3.6, 0.0)
    jumps = speed > MAX_SPEED_KMH  # a GPS jump: missing, filled from its neighbours, not clipped to the limit
    if jumps.any() and not jumps.all():
        speed[jumps] = np.interp(t[jumps], t[~jumps], speed[~jumps])
    return np.clip(speed, 0.0, MAX_SPEED_KMH), source


def _fill_short_gaps(t: np.ndarray, y: np.ndarray, max_gap_s: float) -> np.ndarray:
    """Interpolate NaN runs whose valid neighbours are at most max_gap_s apart; leave the rest NaN."""
    ok = np.isfinite(y)
    out = y.copy()
    if ok.sum() < 2:
        return out
    n = len(y)
    before = np.maximum.accumulate(np.where(ok, np.arange(n), -1))
    after = np.minimum.accumulate(np.where(ok, np.arange(n), n)[::-1])[::-1]
    fill = ~ok & (before >= 0) & (after < n)
    fill[fill] = t[after[fill]] - t[before[fill]] <= max_gap_s
    out[fill] = np.interp(t[fill], t[ok], y[ok])
    return out


def _floats(values: np.ndarray, digits: int) -> list[float]:
    return [round(float(v), digits) for v in values]


def _fmt_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


# ------------------------------------------------------------ batch and writing


def import_recordings(
    paths,
    user_id,
    gender: str = "unknown",
    seq_len: int = 500,
    mode: str = "uniform",
    report: Callable[[str], None] | None = None,
    sport: str | None = None,
) -> ImportResult:
    """Read and convert each file (folders and exports expanded, `collect_workout_files`); a file that fails is
    skipped with its reason, the rest still import. `sport` overrides every file's, else an export's table's."""
    found = collect_workout_files(paths)
    result = ImportResult([], list(found.skipped))
    for line in found.notes + [f"skipped  {reason}" for _, reason in found.skipped]:
        if report:
            report(line)
    for path in found.files:
        try:
            rec = read_recording(path)
            given = sport or found.sports.get(path)
            record, summary = build_record(rec, user_id, gender, None, seq_len, mode, given)
        except DataError as exc:
            result.skipped.append((Path(path), str(exc)))
            if report:
                report(f"skipped  {exc}")
            continue
        result.records.append(record)
        result.imported.append(summary)
        if report:
            extra = "".join(f"; {note}" for note in summary.notes)
            report(
                f"imported {summary.path.name}: {_fmt_duration(summary.moving_s)} moving "
                f"({_fmt_duration(summary.elapsed_s)} elapsed), {summary.n_samples} samples, "
                f"{summary.sport}, speed from {summary.speed_source}{extra}"
            )
    return result


def write_records(records: list[dict], out_path: str | os.PathLike) -> Path:
    """Write one `str(record)` per line (gzipped if the name ends in .gz), atomically."""
    out = Path(out_path)
    payload = "".join(f"{record!s}\n" for record in records).encode("utf-8")
    if out.name.endswith(".gz"):
        payload = gzip.compress(payload, mtime=0)
    with atomic_path(out) as tmp:
        tmp.write_bytes(payload)
    return out

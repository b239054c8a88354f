"""Read personal FIT / GPX / TCX recordings and turn them into FitRec-format workout records.

`read_recording` gives the file's own samples (a `Recording`); `to_fitrec_record`
cleans them (speed from the device, else from distance, else from positions;
short heart-rate gaps filled; pauses kept as jumps in the time stamps) and
resamples to the FitRec shape; `import_recordings` / `run_import` do a batch.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import re
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..errors import DataError
from .fitrec import haversine_m
from ..paths import atomic_path

SAMPLE_COLUMNS = ("time_s", "latitude", "longitude", "altitude_m", "heart_rate_bpm", "speed_kmh", "distance_m")
FITREC_KEYS = ("altitude", "gender", "heart_rate", "id", "latitude", "longitude", "speed", "sport", "timestamp",
               "url", "userId")
MODES, GENDERS = ("uniform", "original"), ("male", "female", "unknown")
PAUSE_GAP_S = 30.0  # a longer gap between samples is a pause: no speed across it, time stamps jump
HR_FILL_GAP_S = 30.0  # heart-rate gaps up to this long are interpolated, longer ones dropped
MIN_HR_FRACTION, MIN_MOVING_S, MIN_HR_SAMPLES = 0.5, 300.0, 60
HR_RANGE_BPM, MAX_SPEED_KMH = (25.0, 250.0), 100.0
SPEED_WINDOW_S = 10.0  # half-width of the central difference for speed derived from distance or positions
SEMICIRCLES_TO_DEG = 180.0 / 2**31
_SPORTS = {  # a file's sport word -> FitRec (Endomondo) sport name
    "running": "run", "run": "run", "trail_running": "run", "street": "run", "track": "run",
    "treadmill": "treadmill running", "treadmill_running": "treadmill running", "cycling": "bike",
    "biking": "bike", "bike": "bike", "ride": "bike", "road": "bike", "road_biking": "bike",
    "mountain": "mountain bike", "mountain_biking": "mountain bike", "commuting": "bike (transport)",
    "indoor_cycling": "indoor cycling", "walking": "walk", "walk": "walk", "hiking": "hiking",
    "cross_country_skiing": "cross-country skiing", "skate_skiing": "cross-country skiing",
    "alpine_skiing": "downhill skiing", "roller_skiing": "roller skiing", "rowing": "rowing",
    "swimming": "swimming", "open_water": "swimming", "kayaking": "kayaking", "snowshoeing": "snowshoeing"}


@dataclass
class Recording:
    """One recording as the file holds it; `samples` has SAMPLE_COLUMNS, NaN where absent."""

    path: Path
    file_format: str  # 'fit' | 'gpx' | 'tcx'
    sport: str  # FitRec sport name, 'unknown' where the file does not say
    start_time: datetime  # UTC, time of the first sample
    samples: pd.DataFrame
    content_hash: int  # stable hash of the file bytes, < 2**53: the default workout id
    notes: list[str] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return float(self.samples["time_s"].iloc[-1])


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


@dataclass
class ImportResult:
    records: list[dict]
    skipped: list[tuple[Path, str]]  # (path, reason)
    imported: list[ImportedRecording] = field(default_factory=list)


# ---------------------------------------------------------------- reading files

def read_recording(path: str | os.PathLike) -> Recording:
    """Read a FIT, GPX or TCX file (gzipped too), recognised by its content."""
    path = Path(path)
    if not path.exists() or path.is_dir():
        raise DataError(f"{path}: " + ("is a directory, not a recording" if path.exists() else "no such file"))
    try:
        data = raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            data = gzip.decompress(raw)
    except (OSError, EOFError) as exc:
        raise DataError(f"{path.name}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    head = data[:4096].decode("utf-8", "ignore").lower()
    if data[8:12] == b".FIT":
        fmt, reader = "fit", _read_fit
    elif re.search(r"<(\w+:)?trainingcenterdatabase\b", head):
        fmt, reader = "tcx", _read_tcx
    elif re.search(r"<(\w+:)?gpx\b", head):
        fmt, reader = "gpx", _read_gpx
    else:
        raise DataError(f"{path.name}: not a FIT, GPX or TCX recording (content not recognised)")
    sport, rows, notes = reader(data, path.name)
    start, samples = _samples_frame(rows, path.name)
    digest = int.from_bytes(hashlib.sha256(raw).digest()[:8], "big") & (2**53 - 1)
    return Recording(path, fmt, sport, start, samples, digest, notes)


def normalise_sport(*words) -> str:
    """Map a file's sport words (most specific first) to a FitRec sport name, else 'unknown'."""
    for word in words:
        key = re.sub(r"[\s\-]+", "_", str(word).strip().lower())
        if word is not None and key in _SPORTS:
            return _SPORTS[key]
    return "unknown"


def _row(time, lat, lon, alt, hr, speed_ms, distance) -> dict:
    speed = None if speed_ms is None else speed_ms * 3.6
    return dict(zip(("time", *SAMPLE_COLUMNS[1:]), (time, lat, lon, alt, hr, speed, distance)))


def _read_fit(data: bytes, name: str):
    import fitdecode

    rows, sports, activity_types = [], {}, set()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with fitdecode.FitReader(io.BytesIO(data), check_crc=fitdecode.CrcCheck.WARN) as reader:
                for frame in reader:
                    if not isinstance(frame, fitdecode.FitDataMessage):
                        continue
                    if frame.name == "record":
                        rows.append(_fit_record(frame, activity_types))
                    elif frame.name in ("session", "sport") and frame.name not in sports:
                        sports[frame.name] = (frame.get_value("sub_sport", fallback=None),
                                              frame.get_value("sport", fallback=None))
        except fitdecode.FitEOFError as exc:
            raise DataError(f"{name}: truncated FIT file ({exc})") from None
        except fitdecode.FitError as exc:
            raise DataError(f"{name}: corrupt FIT file ({' '.join(str(exc).split())})") from None
    notes = ["FIT CRC mismatch (file may be damaged)"] if any("CRC" in str(w.message) for w in caught) else []
    sub, sport = sports.get("session") or sports.get("sport") or (None, None)
    words = [sub] if sport == "cycling" or sub in ("treadmill", "indoor_cycling") else []
    return normalise_sport(*words, sport, *sorted(activity_types)), rows, notes


def _fit_record(frame, activity_types: set) -> dict:
    first = {}
    for fd in frame.fields:  # a field given twice: the first plain (present, scalar) value wins
        if fd.field_def is not None and fd.field_def.is_dev:
            continue  # developer fields (e.g. Stryd's own 'Speed') are not the device's
        if fd.name not in first and fd.value is not None and not isinstance(fd.value, (tuple, list)):
            first[fd.name] = fd.value
    if "activity_type" in first:
        activity_types.add(str(first["activity_type"]))

    def num(*names):  # enhanced_* first when present and valid
        values = (first.get(key) for key in names)
        return next((float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)
                     and math.isfinite(v)), None)

    lat, lon = num("position_lat"), num("position_long")
    return _row(first.get("timestamp"), None if lat is None else lat * SEMICIRCLES_TO_DEG,
                None if lon is None else lon * SEMICIRCLES_TO_DEG, num("enhanced_altitude", "altitude"),
                num("heart_rate"), num("enhanced_speed", "speed"), num("distance"))


def _read_gpx(data: bytes, name: str):
    import gpxpy
    import gpxpy.gpx

    try:
        gpx = gpxpy.parse(data.decode("utf-8", "replace"))
    except (gpxpy.gpx.GPXException, ValueError) as exc:
        raise DataError(f"{name}: not a valid GPX file ({' '.join(str(exc).split())})") from None
    rows = []
    for p in (p for track in gpx.tracks for segment in track.segments for p in segment.points):
        ext = {}  # Garmin TrackPointExtension v1/v2 (any prefix): hr, speed (m/s)
        for element in (e for top in p.extensions for e in top.iter()):
            local = str(element.tag).rsplit("}", 1)[-1].lower()
            ext.setdefault("hr" if local == "heartrate" else local, _to_float(element.text))
        speed = p.speed if p.speed is not None else ext.get("speed")
        rows.append(_row(p.time, p.latitude, p.longitude, p.elevation, ext.get("hr"), speed, None))
    if not rows:
        raise DataError(f"{name}: GPX file has no track points")
    if all(r["time"] is None for r in rows):
        raise DataError(f"{name}: GPX track has no time stamps")
    return normalise_sport(*(track.type for track in gpx.tracks)), rows, []


def _read_tcx(data: bytes, name: str):
    from lxml import etree

    try:
        root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True))
    except etree.XMLSyntaxError as exc:
        raise DataError(f"{name}: not a valid TCX file ({exc})") from None
    activity = next(root.iter("{*}Activity"), None)
    rows = []
    for tp in root.iter("{*}Trackpoint"):
        num = lambda path: _to_float(tp.findtext(path))  # noqa: E731
        rows.append(_row((tp.findtext("{*}Time") or "").strip(), num("{*}Position/{*}LatitudeDegrees"),
                         num("{*}Position/{*}LongitudeDegrees"), num("{*}AltitudeMeters"),
                         num("{*}HeartRateBpm/{*}Value"), num("{*}Extensions/{*}TPX/{*}Speed"),
                         num("{*}DistanceMeters")))
    if not rows:
        raise DataError(f"{name}: TCX file has no trackpoints")
    return normalise_sport(activity.get("Sport") if activity is not None else None), rows, []


def _to_float(text) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _samples_frame(rows: list[dict], name: str) -> tuple[datetime, pd.DataFrame]:
    """Rows -> (start time, samples): implausible values to NaN, rows without time or data dropped,
    sorted, samples at the same time merged (first present value per column)."""
    df = pd.DataFrame(rows, columns=["time", *SAMPLE_COLUMNS[1:]])
    df["time"] = pd.to_datetime(df["time"], utc=True, errors="coerce", format="ISO8601")
    for col in SAMPLE_COLUMNS[1:]:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    lat, lon = df["latitude"], df["longitude"]
    df.loc[~(lat.abs().le(90) & lon.abs().le(180)) | ((lat == 0) & (lon == 0)), ["latitude", "longitude"]] = np.nan
    df.loc[~df["heart_rate_bpm"].between(*HR_RANGE_BPM), "heart_rate_bpm"] = np.nan
    df.loc[df["speed_kmh"] < 0, "speed_kmh"] = np.nan
    df = df.dropna(subset=["time"]).dropna(how="all", subset=list(SAMPLE_COLUMNS[1:]))
    if df.empty:
        raise DataError(f"{name}: no samples with a time stamp")
    df = df.sort_values("time", kind="stable").groupby("time", sort=True).first().reset_index()
    start = df["time"].iloc[0]
    df["time_s"] = (df["time"] - start).dt.total_seconds()
    return start.to_pydatetime(), df[list(SAMPLE_COLUMNS)]


# ------------------------------------------------------- building FitRec records

def to_fitrec_record(rec: Recording, user_id, gender: str = "unknown", workout_id: int | None = None,
                     seq_len: int = 500, mode: str = "uniform") -> dict:
    """One FitRec record (keys FITREC_KEYS, lists of seq_len points) from a recording."""
    return _build_record(rec, user_id, gender, workout_id, seq_len, mode)[0]


def _build_record(rec, user_id, gender, workout_id, seq_len, mode) -> tuple[dict, ImportedRecording]:
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
        raise DataError(f"{name}: heart rate in only {n_hr / len(t):.0%} of samples (need at least "
                        f"{MIN_HR_FRACTION:.0%})")
    segment = np.concatenate([[0], np.cumsum(np.diff(t) > PAUSE_GAP_S)])
    speed, source = _speed_kmh(s, t, segment, name)
    columns = {"heart_rate_bpm": _fill_short_gaps(t, hr_raw, HR_FILL_GAP_S), "speed_kmh": speed}
    for col in ("altitude_m", "latitude", "longitude"):
        values = s[col].to_numpy(float)
        ok = np.isfinite(values)
        columns[col] = np.interp(t, t[ok], values[ok]) if ok.any() else np.zeros_like(t)
    if not np.isfinite(s["altitude_m"]).any():
        notes.append("no altitude in the file: altitude set to 0")
    if not (np.isfinite(s["latitude"]) & np.isfinite(s["longitude"])).any():
        notes.append("no positions in the file: latitude/longitude set to 0")
    keep = np.isfinite(columns["heart_rate_bpm"])  # drops leading/trailing and long heart-rate dropouts
    if keep.sum() < len(t):
        notes.append(f"{len(t) - keep.sum()} samples without heart rate dropped")
    tk = t[keep]
    dt = np.diff(tk)
    pause = dt > PAUSE_GAP_S
    moving_s = float(dt[~pause].sum())
    if moving_s < MIN_MOVING_S or len(tk) < MIN_HR_SAMPLES:
        raise DataError(f"{name}: recording too short to model ({_fmt_duration(moving_s)}, {len(tk)} samples "
                        f"with heart rate; need at least {MIN_MOVING_S / 60:g} min and {MIN_HR_SAMPLES} samples)")
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
        "altitude": _floats(out["altitude_m"], 2), "gender": gender, "heart_rate": _floats(out["heart_rate_bpm"], 1),
        "id": int(rec.content_hash if workout_id is None else workout_id),
        "latitude": _floats(out["latitude"], 7), "longitude": _floats(out["longitude"], 7),
        "speed": _floats(out["speed_kmh"], 3), "sport": rec.sport,
        "timestamp": [int(round(start + x)) for x in times], "url": Path(rec.path).resolve().as_uri(),
        "userId": user_id,
    }
    summary = ImportedRecording(Path(rec.path), rec.sport, moving_s, float(tk[-1] - tk[0]), len(tk), source, notes)
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
    if np.isfinite(distance).mean() >= 0.5:
        ok = np.isfinite(distance)
        cumulative, source = np.maximum.accumulate(np.interp(t, t[ok], distance[ok])), "distance"
    elif has_pos.sum() >= 2:
        steps = haversine_m(lat[has_pos], lon[has_pos])
        cumulative = np.interp(t, t[has_pos], np.concatenate([[0.0], np.cumsum(steps)]))
        source = "positions"
    else:
        raise DataError(f"{name}: no speed, distance or positions to derive speed from")
    first = np.searchsorted(segment, segment, side="left")
    last = np.searchsorted(segment, segment, side="right") - 1
    lo, hi = np.maximum(t - SPEED_WINDOW_S, t[first]), np.minimum(t + SPEED_WINDOW_S, t[last])
    span = hi - lo
    delta = np.interp(hi, t, cumulative) - np.interp(lo, t, cumulative)
    speed = np.where(span > 0, delta / np.where(span > 0, span, 1.0) * 3.6, 0.0)
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


# ------------------------------------------------------------ batch and CLI

def import_recordings(paths, user_id, gender: str = "unknown", seq_len: int = 500, mode: str = "uniform",
                      report: Callable[[str], None] | None = None) -> ImportResult:
    """Read and convert each file; a file that fails is skipped with its reason, the rest still import."""
    result = ImportResult([], [])
    for path in paths:
        try:
            record, summary = _build_record(read_recording(path), user_id, gender, None, seq_len, mode)
        except DataError as exc:
            result.skipped.append((Path(path), str(exc)))
            if report:
                report(f"skipped  {exc}")
            continue
        result.records.append(record)
        result.imported.append(summary)
        if report:
            extra = "".join(f"; {note}" for note in summary.notes)
            report(f"imported {summary.path.name}: {_fmt_duration(summary.moving_s)} moving "
                   f"({_fmt_duration(summary.elapsed_s)} elapsed), {summary.n_samples} samples, "
                   f"{summary.sport}, speed from {summary.speed_source}{extra}")
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

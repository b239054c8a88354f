"""The CSV reader: per-second streams as people export them, one column per channel.

Two shapes are common, and both are read by their column names (case, spaces and dashes ignored):

- a FIT file's record messages as fitparse / fitdecode dump them: `timestamp` (a date and time, or Unix
  seconds), `heart_rate`, `enhanced_speed` or `speed` (m/s), `enhanced_altitude` or `altitude` (m),
  `distance` (m), `position_lat` / `position_long` (semicircles, or degrees);
- a Strava stream: `time` (seconds from the start), `heartrate`, `velocity_smooth` (m/s), `altitude`,
  `distance`, `latlng` ("[lat, lng]" or "lat,lng"). It has no date: the start comes from a date and time in
  the file's name (as Strava and Garmin name files), else the reader refuses the file.

Also accepted: the names this project writes (`heart_rate_bpm`, `speed_kmh`, `altitude_m`, `time_s`),
`latitude` / `longitude` / `lat` / `lng` / `lon`, `hr`, `elevation`. A file without a time column or
without a heart-rate column is refused with the columns it has.
"""

from __future__ import annotations

import io
import re
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from ...errors import DataError
from .fit import SEMICIRCLES_TO_DEG
from .samples import SAMPLE_COLUMNS

# Each channel's accepted column names, in order of preference, and the factor to the samples table's unit.
CHANNELS = {
    "heart_rate_bpm": (("heart_rate", 1.0), ("heartrate", 1.0), ("heart_rate_bpm", 1.0), ("hr", 1.0)),
    "speed_kmh": (
        ("enhanced_speed", 3.6),
        ("speed", 3.6),
        ("velocity_smooth", 3.6),
        ("speed_ms", 3.6),
        ("speed_kmh", 1.0),
    ),
    "altitude_m": (("enhanced_altitude", 1.0), ("altitude", 1.0), ("altitude_m", 1.0), ("elevation", 1.0)),
    "distance_m": (("distance", 1.0), ("distance_m", 1.0)),
}
LATITUDE, LONGITUDE = ("position_lat", "latitude", "lat"), ("position_long", "longitude", "lng", "lon", "long")
TIME_COLUMNS = ("timestamp", "time", "time_s", "datetime", "date_time")
# A date and time in a file name: 2021-03-25-10-40-55, 2021-03-25T10_40_55, 20210325T104055, ...
NAME_DATETIME = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})[T _-]?(\d{2})[-_:]?(\d{2})[-_:]?(\d{2})")
UNIX_SECONDS_FROM = 1e8  # a numeric time column above this is Unix seconds, below it seconds from the start


def looks_like_csv(head: str) -> bool:
    """A CSV stream: its first line names a time column and a heart-rate column, comma-separated."""
    first = head.lstrip("\ufeff").splitlines()[0] if head.strip() else ""
    names = {_key(name) for name in first.split(",")}
    return "," in first and bool(names & set(TIME_COLUMNS)) and bool(names & {n for n, _ in CHANNELS["heart_rate_bpm"]})


def _key(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", str(name).strip().strip('"').lower())


def read_csv_stream(data: bytes, name: str):
    """CSV bytes -> (sport, samples table, notes) like the other readers (a table, not rows: a stream is
    long); `name` prefixes error messages."""
    try:
        df = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig", low_memory=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{name}: not a readable CSV file ({' '.join(str(exc).split())[:120]})") from None
    df.columns = [_key(c) for c in df.columns]
    df = df.loc[:, ~pd.Index(df.columns).duplicated()]  # a column given twice: the first wins
    time_col = next((c for c in TIME_COLUMNS if c in df.columns), None)
    if time_col is None or not any(n in df.columns for n, _ in CHANNELS["heart_rate_bpm"]):
        raise DataError(
            f"{name}: a CSV stream needs a time and a heart-rate column (has: {', '.join(df.columns[:12])})"
        )
    if df.empty:
        raise DataError(f"{name}: CSV file has no rows")
    notes: list[str] = []
    times = _times(df[time_col], name, notes)
    out = pd.DataFrame({"time": times})
    for channel, names in CHANNELS.items():
        found = next((n for n, _ in names if n in df.columns), None)
        factor = dict(names).get(found, 1.0)
        out[channel] = pd.to_numeric(df[found], errors="coerce") * factor if found else np.nan
    lat, lon = _positions(df)
    out["latitude"], out["longitude"] = lat, lon
    return "unknown", out[["time", *SAMPLE_COLUMNS[1:]]], notes


def _times(column: pd.Series, name: str, notes: list[str]) -> pd.Series:
    """The time column as UTC times: dates, Unix seconds, or seconds from a start the file's name gives."""
    numeric = pd.to_numeric(column, errors="coerce")
    if numeric.notna().mean() >= 0.5:
        if numeric.max() >= UNIX_SECONDS_FROM:
            return pd.to_datetime(numeric, unit="s", utc=True)
        start = start_from_name(name)
        if start is None:
            raise DataError(
                f"{name}: times are seconds from the start and nothing says when it started; put the date "
                "and time in the file's name (e.g. run_2021-05-01-07-30-00.csv)"
            )
        notes.append(f"start time {start:%Y-%m-%d %H:%M} taken from the file's name")
        return pd.Timestamp(start) + pd.to_timedelta(numeric, unit="s")
    parsed = pd.to_datetime(column, utc=True, errors="coerce", format="mixed")
    if parsed.notna().mean() < 0.5:
        raise DataError(f"{name}: the time column holds neither dates nor seconds (first value {column.iloc[0]!r})")
    return parsed


def start_from_name(name: str) -> datetime | None:
    """A date and time in a file name (taken as UTC), else None."""
    match = NAME_DATETIME.search(name)
    if not match:
        return None
    try:
        return datetime(*map(int, match.groups()), tzinfo=timezone.utc)
    except ValueError:
        return None


def _positions(df: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Latitude and longitude in degrees: a pair of columns (semicircles when beyond +-180) or `latlng`."""
    lat_col = next((c for c in LATITUDE if c in df.columns), None)
    lon_col = next((c for c in LONGITUDE if c in df.columns), None)
    if lat_col and lon_col:
        lat, lon = (pd.to_numeric(df[c], errors="coerce") for c in (lat_col, lon_col))
        if max(lat.abs().max(skipna=True) or 0, lon.abs().max(skipna=True) or 0) > 180:
            lat, lon = lat * SEMICIRCLES_TO_DEG, lon * SEMICIRCLES_TO_DEG
        return lat, lon
    if "latlng" in df.columns:
        # Anchored, digits bounded: a damaged field of thousands of digits costs one pass, not a backtracking search.
        number = r"(-?\d{1,3}(?:\.\d{1,15})?)"
        pairs = df["latlng"].astype(str).str.extract(rf"^\s*\[?\s*{number}\s*,\s*{number}")
        return pd.to_numeric(pairs[0], errors="coerce"), pd.to_numeric(pairs[1], errors="coerce")
    nan = pd.Series(np.nan, index=df.index)
    return nan, nan

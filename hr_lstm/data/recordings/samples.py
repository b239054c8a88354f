"""What the three readers share: the samples table and the `Recording` that holds it.

A reader turns its file into rows (`sample_row`: time, position, altitude, heart rate, speed,
distance) and a sport (`normalise_sport` maps a file's sport words to FitRec names);
`samples_frame` makes those rows one clean table (columns `SAMPLE_COLUMNS`): implausible
values set to NaN, rows without time or data dropped, sorted, duplicate time stamps merged.
`Recording` is one file as read: its format, sport, start time, samples and content hash.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import DataError
from ..filters import FilterConfig

SAMPLE_COLUMNS = ("time_s", "latitude", "longitude", "altitude_m", "heart_rate_bpm", "speed_kmh", "distance_m")
HR_RANGE_BPM = (25.0, 250.0)
ALTITUDE_RANGE_M = FilterConfig.altitude_range_m  # the training filters' range: the Dead Sea shore to above Everest
MAX_SPEED_KMH = 100.0  # faster is a sentinel or a GPS jump: missing, not clipped
EARLIEST_START = pd.Timestamp("1990-01-01", tz="UTC")  # before GPS watches: an unset clock
MAX_SPAN_H = 96.0  # samples further from the recording's middle than half this are damaged time stamps
_SPORTS = {  # a file's sport word -> FitRec (Endomondo) sport name
    "running": "run",
    "run": "run",
    "trail_running": "run",
    "street": "run",
    "track": "run",
    "treadmill": "treadmill running",
    "treadmill_running": "treadmill running",
    "cycling": "bike",
    "biking": "bike",
    "bike": "bike",
    "ride": "bike",
    "road": "bike",
    "road_biking": "bike",
    "mountain": "mountain bike",
    "mountain_biking": "mountain bike",
    "commuting": "bike (transport)",
    "indoor_cycling": "indoor cycling",
    "walking": "walk",
    "walk": "walk",
    "hiking": "hiking",
    "cross_country_skiing": "cross-country skiing",
    "skate_skiing": "cross-country skiing",
    "alpine_skiing": "downhill skiing",
    "roller_skiing": "roller skiing",
    "rowing": "rowing",
    "swimming": "swimming",
    "open_water": "swimming",
    "kayaking": "kayaking",
    "snowshoeing": "snowshoeing",
    # Strava's activity types (an export's activities.csv)
    "trail_run": "run",
    "virtual_run": "treadmill running",
    "virtual_ride": "indoor cycling",
    "mountain_bike_ride": "mountain bike",
    "gravel_ride": "bike",
    "hike": "hiking",
    "nordic_ski": "cross-country skiing",
    "alpine_ski": "downhill skiing",
    "swim": "swimming",
}


@dataclass
class Recording:
    """One recording as the file holds it; `samples` has SAMPLE_COLUMNS, NaN where absent."""

    path: Path
    file_format: str  # 'fit' | 'gpx' | 'tcx' | 'csv'
    sport: str  # FitRec sport name, 'unknown' where the file does not say
    start_time: datetime  # UTC, time of the first sample
    samples: pd.DataFrame
    content_hash: int  # stable hash of the file bytes, < 2**53: the default workout id
    notes: list[str] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return float(self.samples["time_s"].iloc[-1])


def normalise_sport(*words) -> str:
    """Map a file's sport words (most specific first) to a FitRec sport name, else 'unknown'."""
    for word in words:
        key = re.sub(r"[\s\-]+", "_", str(word).strip().lower())
        if word is not None and key in _SPORTS:
            return _SPORTS[key]
    return "unknown"


def sample_row(time, lat, lon, alt, hr, speed_ms, distance) -> dict:
    """One reader row: 'time' plus SAMPLE_COLUMNS[1:], speed converted from m/s to km/h (None stays None)."""
    speed = None if speed_ms is None else speed_ms * 3.6
    return dict(zip(("time", *SAMPLE_COLUMNS[1:]), (time, lat, lon, alt, hr, speed, distance)))


def to_float(text) -> float | None:
    """A file's text (or value) as a finite float, else None."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def samples_frame(rows: list[dict] | pd.DataFrame, name: str) -> tuple[datetime, pd.DataFrame]:
    """Rows (or a table with the same columns) -> (start time, samples): implausible values to NaN, rows
    without time or data dropped, sorted, samples at the same time merged (first present value per column)."""
    df = pd.DataFrame(rows, columns=["time", *SAMPLE_COLUMNS[1:]])
    df["time"] = pd.to_datetime(df["time"], utc=True, errors="coerce", format="ISO8601")
    for col in SAMPLE_COLUMNS[1:]:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    lat, lon = df["latitude"], df["longitude"]
    df.loc[~(lat.abs().le(90) & lon.abs().le(180)) | ((lat == 0) & (lon == 0)), ["latitude", "longitude"]] = np.nan
    out_of_range = df["heart_rate_bpm"].notna() & ~df["heart_rate_bpm"].between(*HR_RANGE_BPM)
    df.loc[out_of_range, "heart_rate_bpm"] = np.nan
    # Sentinels (4294967295, 1e30) and glitches: an altitude no course has, a speed no athlete reaches.
    bad_altitude = df["altitude_m"].notna() & ~df["altitude_m"].between(*ALTITUDE_RANGE_M)
    df.loc[bad_altitude, "altitude_m"] = np.nan
    bad_speed = df["speed_kmh"].notna() & (df["speed_kmh"] > MAX_SPEED_KMH)
    df.loc[bad_speed, "speed_kmh"] = np.nan
    df.loc[df["speed_kmh"] < 0, "speed_kmh"] = np.nan
    df = df.dropna(subset=["time"]).dropna(how="all", subset=list(SAMPLE_COLUMNS[1:]))
    if df.empty:
        raise DataError(f"{name}: no samples with a time stamp")
    # A clock never set (1970, 9999) or a damaged time stamp: no date a recording can have.
    plausible = df["time"].between(EARLIEST_START, pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=1))
    if not plausible.any():
        first = df["time"].iloc[0]
        raise DataError(
            f"{name}: starts on {first.year:04d}-{first.month:02d}-{first.day:02d}, which no recording does (before "
            f"{EARLIEST_START.year} or in the future): the device's clock was not set; fix the date and export again"
        )
    middle = df["time"][plausible].median()
    plausible &= (df["time"] - middle).abs() <= pd.Timedelta(hours=MAX_SPAN_H / 2)  # one sample years away
    bad_time = int((~plausible).sum())
    df = df[plausible]
    rows_read = len(df)
    resorted = int((df["time"].diff().dt.total_seconds() < 0).sum())  # samples recorded out of time order
    df = df.sort_values("time", kind="stable").groupby("time", sort=True).first().reset_index()
    start = df["time"].iloc[0]
    df["time_s"] = (df["time"] - start).dt.total_seconds()
    samples = df[list(SAMPLE_COLUMNS)].copy()
    samples.attrs["resorted_samples"] = resorted  # the import says so (convert.build_record)
    samples.attrs["rows_read"] = rows_read  # before samples at one time were merged
    samples.attrs["hr_out_of_range"] = int(out_of_range.sum())  # dropouts to 0, sentinels: said there too
    samples.attrs["implausible"] = {
        "altitude": int(bad_altitude.sum()),
        "speed": int(bad_speed.sum()),
        "time": bad_time,
    }
    return start.to_pydatetime(), samples

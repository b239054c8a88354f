"""The FIT reader (Garmin's binary format, via fitdecode).

`read_fit` walks the file's data messages: each 'record' message becomes one sample row
(positions from semicircles to degrees, enhanced altitude / speed preferred, developer fields
ignored, a field given twice: the first plain value wins); the sport comes from the 'session'
(else 'sport') message, refined by sub-sport for cycling, treadmill and indoor cycling, else
from the records' activity type. A CRC mismatch is kept as a note; truncated or corrupt files
raise `DataError`.
"""

from __future__ import annotations

import io
import math
import warnings

import fitdecode

from ...errors import DataError
from .samples import normalise_sport, sample_row

SEMICIRCLES_TO_DEG = 180.0 / 2**31


def read_fit(data: bytes, name: str):
    """FIT bytes -> (sport, sample rows, notes); `name` (the file's) prefixes error messages."""
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
                        sports[frame.name] = (
                            frame.get_value("sub_sport", fallback=None),
                            frame.get_value("sport", fallback=None),
                        )
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
        return next(
            (float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)),
            None,
        )

    lat, lon = num("position_lat"), num("position_long")
    return sample_row(
        first.get("timestamp"),
        None if lat is None else lat * SEMICIRCLES_TO_DEG,
        None if lon is None else lon * SEMICIRCLES_TO_DEG,
        num("enhanced_altitude", "altitude"),
        num("heart_rate"),
        num("enhanced_speed", "speed"),
        num("distance"),
    )

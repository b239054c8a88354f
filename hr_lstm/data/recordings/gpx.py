"""The GPX reader (via gpxpy).

`read_gpx` turns every track point of every track and segment into one sample row: position,
elevation and time from the point, heart rate and speed (m/s) from Garmin's
TrackPointExtension (v1 or v2, any namespace prefix) where the point itself has no speed;
the sport comes from the tracks' type. A file that does not parse, has no track points or no
time stamps raises `DataError`.
"""

from __future__ import annotations

import gpxpy
import gpxpy.gpx

from ...errors import DataError
from .samples import normalise_sport, sample_row, to_float


def read_gpx(data: bytes, name: str):
    """GPX bytes -> (sport, sample rows, notes); `name` (the file's) prefixes error messages."""
    try:
        gpx = gpxpy.parse(data.decode("utf-8-sig", "replace"))  # -sig: a byte-order mark is dropped
    except (gpxpy.gpx.GPXException, ValueError) as exc:
        raise DataError(f"{name}: not a valid GPX file ({' '.join(str(exc).split())})") from None
    rows = []
    for p in (p for track in gpx.tracks for segment in track.segments for p in segment.points):
        ext = {}  # Garmin TrackPointExtension v1/v2 (any prefix): hr, speed (m/s)
        for element in (e for top in p.extensions for e in top.iter()):
            local = str(element.tag).rsplit("}", 1)[-1].lower()
            ext.setdefault("hr" if local == "heartrate" else local, to_float(element.text))
        speed = p.speed if p.speed is not None else ext.get("speed")
        rows.append(sample_row(p.time, p.latitude, p.longitude, p.elevation, ext.get("hr"), speed, None))
    if not rows:
        raise DataError(f"{name}: GPX file has no track points")
    if all(r["time"] is None for r in rows):
        raise DataError(f"{name}: GPX track has no time stamps")
    return normalise_sport(*(track.type for track in gpx.tracks)), rows, []

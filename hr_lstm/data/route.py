"""A course to plan on: distance along it and the altitude there, from a route file or a past recording.

A GPX route (`<rte>`) or track has positions and (usually) elevations but, for a planned course, no
times; a FIT / TCX / GPX recording of a past workout works too (its times are ignored). `read_route`
turns either into a `Route` on an even distance grid (`STEP_M`), with the altitude lightly smoothed:
GPS and phone elevations jitter by metres from point to point, which a heart-rate model would read
as climbing. A file without elevations gives a route whose altitude is unknown (None), not flat:
the model then gets its training mean, as for a recording without altitude.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from pathlib import Path

import gpxpy
import gpxpy.gpx
import numpy as np
from scipy.ndimage import gaussian_filter1d

from ..errors import DataError
from .filters import FilterConfig
from .fitrec import haversine_m
from .recordings import read_recording

STEP_M = 10.0  # the route's distance grid
SMOOTH_M = 30.0  # Gaussian smoothing of the altitude (standard deviation along the route)
GRADE_WINDOW_M, MAX_GRADE = 100.0, 0.5  # no course climbs 50 m in 100 m (after the smoothing)
MIN_LENGTH_M = 200.0


@dataclass
class Route:
    name: str
    distance_m: np.ndarray  # (n,) 0, STEP_M, 2 STEP_M, ..., the route's length
    altitude_m: np.ndarray | None  # (n,) or None where the file has no elevations

    @property
    def length_m(self) -> float:
        return float(self.distance_m[-1])

    @property
    def climb_m(self) -> float:
        """Total ascent, metres (0 without altitude)."""
        return 0.0 if self.altitude_m is None else float(np.clip(np.diff(self.altitude_m), 0, None).sum())

    def altitude_at(self, distance_m) -> np.ndarray:
        """Altitude at any distance along the route (NaN throughout without altitude)."""
        d = np.asarray(distance_m, float)
        return np.full(d.shape, np.nan) if self.altitude_m is None else np.interp(d, self.distance_m, self.altitude_m)

    def describe(self) -> str:
        climb = f", {self.climb_m:.0f} m of climbing" if self.altitude_m is not None else ", no elevation data"
        return f"{self.name}: {self.length_m / 1000:.2f} km{climb}"

    @classmethod
    def from_profile(cls, distance_m, altitude_m=None, name: str = "route", smooth_m: float = SMOOTH_M) -> "Route":
        """A route from distance (increasing, metres) and altitude samples, put on the STEP_M grid."""
        d = np.asarray(distance_m, float)
        if d.size < 2 or not np.all(np.isfinite(d)) or np.any(np.diff(d) < 0):
            raise DataError(f"{name}: distances must be finite and never decrease")
        length = d[-1] - d[0]
        if length < MIN_LENGTH_M:
            raise DataError(f"{name}: route is {length:.0f} m long; need at least {MIN_LENGTH_M:.0f} m")
        grid = np.arange(0.0, length + STEP_M / 2, STEP_M)
        grid[-1] = length
        altitude = None
        if altitude_m is not None:
            a = np.asarray(altitude_m, float)
            low, high = FilterConfig.altitude_range_m  # as the readers and the training filters
            ok = np.isfinite(a) & (a >= low) & (a <= high)  # sentinels: missing
            if ok.sum() >= 2:
                altitude = np.interp(grid, d[ok] - d[0], a[ok])
                if smooth_m > 0:
                    altitude = gaussian_filter1d(altitude, smooth_m / STEP_M, mode="nearest")
                _check_grades(altitude, name)
        return cls(name, grid, altitude)


def _check_grades(altitude: np.ndarray, name: str) -> None:
    """Refuse an elevation profile no course has: over GRADE_WINDOW_M, steeper than MAX_GRADE (the steepest
    streets are near 35%); such a profile is a damaged elevation channel, and a plan on it would be nonsense."""
    k = int(round(GRADE_WINDOW_M / STEP_M))
    if len(altitude) <= k:
        return
    change = np.abs(altitude[k:] - altitude[:-k])
    worst = int(np.argmax(change))
    if change[worst] > MAX_GRADE * GRADE_WINDOW_M:
        raise DataError(
            f"{name}: the elevation changes by {change[worst]:.0f} m within {GRADE_WINDOW_M:.0f} m (at km "
            f"{worst * STEP_M / 1000:.2f}), steeper than any course; a damaged elevation channel? Fix it, or remove "
            "the elevations to plan on the flat"
        )


def _gpx_points(path: Path, data: bytes) -> list:
    try:
        gpx = gpxpy.parse(data.decode("utf-8-sig", "replace"))
    except (gpxpy.gpx.GPXException, ValueError) as exc:
        raise DataError(f"{path.name}: not a valid GPX file ({' '.join(str(exc).split())})") from None
    route_points = [p for r in gpx.routes for p in r.points]
    track_points = [p for t in gpx.tracks for s in t.segments for p in s.points]
    return route_points or track_points


def read_route(path) -> Route:
    """A route from a GPX route or track (no times needed) or a FIT / TCX recording; `DataError` naming the
    file when it cannot be read or has too few positions."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        data = path.read_bytes()
        data = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    except (OSError, EOFError) as exc:
        raise DataError(f"{path.name}: cannot read ({exc})") from None
    if re.search(rb"<(\w+:)?gpx\b", data[:4096].lower()):  # GPX (route or track, times not needed)
        points = _gpx_points(path, data)
        lat = np.array([p.latitude for p in points], float)
        lon = np.array([p.longitude for p in points], float)
        alt = np.array([np.nan if p.elevation is None else p.elevation for p in points], float)
        distance = None
    else:
        samples = read_recording(path).samples
        lat, lon = samples["latitude"].to_numpy(float), samples["longitude"].to_numpy(float)
        alt, distance = samples["altitude_m"].to_numpy(float), samples["distance_m"].to_numpy(float)
    if distance is not None and np.isfinite(distance).mean() >= 0.5:
        ok = np.isfinite(distance)
        d = np.maximum.accumulate(distance[ok])
        return Route.from_profile(d - d[0], alt[ok], path.name)
    ok = np.isfinite(lat) & np.isfinite(lon)
    if ok.sum() < 2:
        raise DataError(f"{path.name}: needs at least 2 positions (or a distance channel) to make a route")
    d = np.concatenate([[0.0], np.cumsum(haversine_m(lat[ok], lon[ok]))])
    return Route.from_profile(d, alt[ok], path.name)

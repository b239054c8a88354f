"""Test courses for the planner check: smooth hills of a given total climb, or flat.

Hills are a sum of four cosines with wavelengths of 600 m to 4 km, scaled so that the course
climbs `climb_m` in all; for running courses that keeps grades within about 8% (the steepest
are clipped there), as on road and park courses.
"""

from __future__ import annotations

import numpy as np

MAX_GRADE = 0.08


def flat_route(length_km: float = 10.0, step_m: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    distance = np.arange(0.0, length_km * 1000 + step_m / 2, step_m)
    return distance, np.full(distance.shape, 50.0)


def hilly_route(rng, length_km: float = 10.0, climb_m: float = 150.0, step_m: float = 10.0):
    """(distance_m, altitude_m) of a course `length_km` long climbing about `climb_m` in all."""
    distance, altitude = flat_route(length_km, step_m)
    if climb_m <= 0:
        return distance, altitude
    wavelength = np.exp(rng.uniform(np.log(600), np.log(4000), 4))
    shape = (
        rng.uniform(0.5, 1.0, 4)
        * wavelength
        * np.cos(np.outer(distance, 2 * np.pi / wavelength) + rng.uniform(0, 2 * np.pi, 4))
    ).sum(1)
    slope = np.diff(shape) / step_m
    slope *= climb_m / max(np.clip(slope, 0, None).sum() * step_m, 1e-9)
    slope = np.clip(slope, -MAX_GRADE, MAX_GRADE)
    return distance, altitude + np.concatenate([[0.0], np.cumsum(slope) * step_m])

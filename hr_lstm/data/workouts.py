"""Workouts as arrays: `WorkoutSet` (one float32 array + a per-workout table) and sport families.

`series[i, t, c]` is channel `CHANNELS[c]` of workout i at step t; `meta` has one row per
workout (id, user_id, sport, gender, start_time, ...). Everything downstream (filters, splits,
features, models) works on this one shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .fitrec import CHANNELS
from .ingest import IngestStats


@dataclass
class WorkoutSet:
    """Workouts as arrays: `series[i, t, c]` is channel `CHANNELS[c]` of workout i at step t."""

    series: np.ndarray
    meta: pd.DataFrame
    source: Path
    fingerprint: str
    cache_dir: Path | None = None  # where it was cached (None: not cached)
    ingest_stats: IngestStats | None = None  # when it was parsed now rather than read from the cache

    def __len__(self) -> int:
        return len(self.meta)

    def channel(self, name: str) -> np.ndarray:
        return self.series[:, :, CHANNELS.index(name)]

    def subset(self, index: np.ndarray) -> "WorkoutSet":
        index = np.asarray(index)
        return WorkoutSet(
            self.series[index], self.meta.iloc[index].reset_index(drop=True), self.source, self.fingerprint
        )


SPORT_FAMILIES = ("run", "bike", "walk", "other")


def sport_family(sport: str) -> str:
    """Group FitRec's many sport names ('bike (transport)', 'mountain bike', ...) into families."""
    s = sport.lower()
    if "run" in s:
        return "run"
    if "bike" in s or "cycl" in s or "ride" in s:
        return "bike"
    if "walk" in s or "hik" in s:
        return "walk"
    return "other"


# Median moving speed (km/h) that separates walking from running, and running from riding. Runs on
# FitRec sit at 8-16 km/h, rides at 18-35, walks at 3-7; the gaps between them are wide enough that
# a typical session lands on the right side (a very fast runner or a slow recovery ride may not:
# `--sport` says it outright).
WALK_BELOW_KMH, BIKE_ABOVE_KMH = 7.0, 18.0
MOVING_ABOVE_KMH = 2.0


def infer_sport(speed_kmh: np.ndarray) -> tuple[str, float]:
    """The sport family a recording's speeds suggest, and the median moving speed it used."""
    speed = np.asarray(speed_kmh, np.float64)
    moving = speed[np.isfinite(speed) & (speed > MOVING_ABOVE_KMH)]
    median = float(np.median(moving)) if len(moving) else 0.0
    sport = "walk" if median < WALK_BELOW_KMH else "run" if median < BIKE_ABOVE_KMH else "bike"
    return sport, median

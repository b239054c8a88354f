"""Notebook 01's tables: what the data holds, how it is sampled, what the filters dropped.

Plain numpy and pandas in, tables out; `plots` draws them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.cache import load_workouts
from ..data.filters import FilterReport, apply_filters
from ..data.fitrec import CHANNELS
from ..data.source import resolve_data_path
from ..data.workouts import WorkoutSet, sport_family
from ..training.config import RunConfig


@dataclass
class DataOverview:
    path: Path
    raw_meta: pd.DataFrame  # every workout read, kept or not
    workouts: WorkoutSet  # the workouts the filters kept
    report: FilterReport


def load_overview(cfg: RunConfig) -> DataOverview:
    path = resolve_data_path(cfg.data)
    raw = load_workouts(path, cfg.parse, skip_bad=cfg.data.skip_bad, cache=cfg.data.cache)
    kept, report = apply_filters(raw, cfg.filters)
    return DataOverview(path, raw.meta, kept, report)


def workout_table(ws: WorkoutSet) -> pd.DataFrame:
    """One row per workout: who, what sport, how long, and mean heart rate, speed and altitude."""
    time_s = ws.channel("time_s")
    table = ws.meta[["id", "user_id", "sport", "gender"]].copy()
    table["sport_family"] = table["sport"].map(sport_family)
    table["duration_min"] = time_s[:, -1] / 60.0
    table["median_interval_s"] = np.median(np.diff(time_s, axis=1), axis=1)
    for name in ("heart_rate_bpm", "speed_kmh", "altitude_m"):
        table[name] = ws.channel(name).mean(axis=1)
    return table


def _sample_rows(n: int, at_most: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).choice(n, at_most, replace=False)) if n > at_most else np.arange(n)


def point_sample(ws: WorkoutSet, n_workouts: int = 2000, points_per_workout: int = 25, seed: int = 0) -> pd.DataFrame:
    """Random time points from random workouts (long format), for distributions by sport and gender."""
    rows = _sample_rows(len(ws), n_workouts, seed)
    steps = np.random.default_rng(seed + 1).integers(0, ws.series.shape[1], (len(rows), points_per_workout))
    values = ws.series[rows[:, None], steps]  # (workouts, points, channels)
    meta = ws.meta.iloc[rows]
    out = pd.DataFrame(
        {
            "sport_family": np.repeat(meta["sport"].map(sport_family).to_numpy(), points_per_workout),
            "gender": np.repeat(meta["gender"].to_numpy(), points_per_workout),
        }
    )
    for name in ("heart_rate_bpm", "speed_kmh", "altitude_m"):
        out[name] = values[:, :, CHANNELS.index(name)].ravel()
    return out


def sampling_intervals_s(ws: WorkoutSet, n_workouts: int = 2000, seed: int = 0) -> np.ndarray:
    """Seconds between consecutive samples (pauses included) of a random subset of workouts."""
    time_s = ws.channel("time_s")[_sample_rows(len(ws), n_workouts, seed)]
    return np.diff(time_s, axis=1).ravel()


def lag_correlation(ws: WorkoutSet, max_lag_steps: int = 60, n_workouts: int = 500, seed: int = 0) -> pd.DataFrame:
    """Within-workout correlation of speed now with heart rate `lag` samples later, averaged per sport family.

    Heart rate follows effort with a delay of tens of seconds, so the curve peaks after lag 0."""
    rows = _sample_rows(len(ws), n_workouts, seed)
    speed, hr = ws.channel("speed_kmh")[rows].astype(np.float64), ws.channel("heart_rate_bpm")[rows].astype(np.float64)
    families = ws.meta["sport"].iloc[rows].map(sport_family).to_numpy()
    interval_s = float(np.median(np.diff(ws.channel("time_s")[rows], axis=1)))
    frames = []
    for lag in range(0, max_lag_steps + 1):
        a, b = speed[:, : speed.shape[1] - lag], hr[:, lag:]
        a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = (a * b).sum(1) / np.sqrt((a**2).sum(1) * (b**2).sum(1))
        frames.append(pd.DataFrame({"lag_steps": lag, "lag_s": lag * interval_s, "sport_family": families, "r": r}))
    table = pd.concat(frames).dropna()
    return table.groupby(["sport_family", "lag_steps", "lag_s"], as_index=False)["r"].mean()


def example_workouts(ws: WorkoutSet, n: int = 3, seed: int = 0) -> list[int]:
    """A few workouts to draw, spread over the sports present (rows into `ws`)."""
    rng = np.random.default_rng(seed)
    families = ws.meta["sport"].map(sport_family).to_numpy()
    kinds = list(dict.fromkeys(families[rng.permutation(len(families))]))
    picks = [int(rng.choice(np.flatnonzero(families == kinds[i % len(kinds)]))) for i in range(n)]
    return list(dict.fromkeys(picks))


def filter_outcome(overview: DataOverview) -> tuple[pd.Series, pd.DataFrame]:
    """Workouts kept and dropped per reason, and every workout read with its sport and kept / dropped."""
    report, meta = overview.report, overview.raw_meta
    reasons = pd.Series({"kept": report.n_kept, **{f"dropped: {why}": n for why, n in report.dropped.items()}})
    kept = meta["id"].isin(set(overview.workouts.meta["id"]))
    return reasons, pd.DataFrame({"sport": meta["sport"], "status": np.where(kept, "kept", "dropped")})

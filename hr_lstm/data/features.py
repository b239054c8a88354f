"""Model inputs from workout arrays, normalised with training-split statistics only.

Each input is a named feature; the original project's are speed, altitude and gender. The
z-score statistics are fitted on the training workouts and stored in the
checkpoint, so validation, test and new recordings are scaled by the same
numbers (FitRec computed them on the whole data set, test included: a leak).
The target, heart rate in BPM, is not normalised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from ..errors import HRLSTMError
from .workouts import SPORT_FAMILIES, WorkoutSet, sport_family

# The original project's inputs (its train.py): its experiment is `--features original`.
ORIGINAL_INPUTS = ("speed", "altitude", "gender")
# Sports that share a family with 'bike' but not its physics: knobbly tyres on trails take more
# power at a given speed; a commute is ridden at its own pace. The family one-hot cannot tell them
# apart, and on simulated data that alone left mountain-bike rides 8-14 BPM off for road cyclists.
SPORT_VARIANTS = ("mountain bike", "bike (transport)")
GENDER_CODE = {"male": 1.0, "female": 0.0}  # anything else (e.g. 'unknown') sits between: 0.5


def step_change(x: np.ndarray) -> np.ndarray:
    """Change since the previous sample along each row (0 at the first)."""
    out = np.zeros_like(x)
    out[:, 1:] = np.diff(x, axis=1)
    return out


def grade(ws: WorkoutSet) -> np.ndarray:
    # Rise over run per step; a GPS-speed distance is noisy, so clip to roads' range.
    run_m = ws.channel("speed_kmh") / 3.6 * step_change(ws.channel("time_s"))
    rise_m = step_change(ws.channel("altitude_m"))
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(run_m > 1.0, rise_m / run_m, 0.0)
    return np.clip(slope, -0.3, 0.3)


def _per_workout(values: np.ndarray, seq_len: int) -> np.ndarray:
    return np.repeat(values.astype(np.float32)[:, None, :], seq_len, axis=1)


def _gender(ws: WorkoutSet) -> np.ndarray:
    code = ws.meta["gender"].map(GENDER_CODE).fillna(0.5).to_numpy()
    return _per_workout(code[:, None], ws.series.shape[1])


def _sport(ws: WorkoutSet) -> np.ndarray:
    families = ws.meta["sport"].map(sport_family).to_numpy()
    one_hot = (families[:, None] == np.array(SPORT_FAMILIES)[None, :]).astype(np.float32)
    return _per_workout(one_hot, ws.series.shape[1])


def _sport_variant(ws: WorkoutSet) -> np.ndarray:
    sports = ws.meta["sport"].str.lower().to_numpy()
    flags = (sports[:, None] == np.array(SPORT_VARIANTS)[None, :]).astype(np.float32)
    return _per_workout(flags, ws.series.shape[1])


# Per-workout meta columns that `with_history` sets: the athlete's context from workouts not among those given.
HISTORY_META = ("previous_heart_rate_bpm", "previous_speed_kmh", "first_start_time")


def workout_summaries(ws: WorkoutSet) -> pd.DataFrame:
    """One row per workout: user_id, start_time and its mean heart rate and speed (what a later workout
    of the same athlete sees of it as `previous_workout`)."""
    return pd.DataFrame(
        {
            "user_id": ws.meta["user_id"].astype(str).to_numpy(),
            "start_time": ws.meta["start_time"].to_numpy(np.float64),
            "heart_rate_bpm": ws.channel("heart_rate_bpm").mean(axis=1).astype(np.float64),
            "speed_kmh": ws.channel("speed_kmh").mean(axis=1).astype(np.float64),
        }
    )


def history_context(given: pd.DataFrame, earlier: pd.DataFrame | None = None) -> pd.DataFrame:
    """For each row of `given` (`workout_summaries`), HISTORY_META: the previous workout of the same athlete
    by start time and their first start, among `given` and `earlier` (other workouts of theirs, e.g. those a
    personalised checkpoint stored). A stored workout that is also given (same athlete, same start) counts once."""
    rows = given.assign(given=True)
    if earlier is not None and len(earlier):
        key = lambda f: f["user_id"].astype(str) + "@" + f["start_time"].astype(np.float64).astype(str)  # noqa: E731
        kept = earlier.loc[~key(earlier).isin(set(key(given)))]
        rows = pd.concat([kept.assign(user_id=kept["user_id"].astype(str), given=False), rows], ignore_index=True)
    ordered = rows.sort_values(["user_id", "start_time"], kind="stable")
    by_athlete = ordered.groupby("user_id", sort=False)
    context = pd.DataFrame(
        {
            "previous_heart_rate_bpm": by_athlete["heart_rate_bpm"].shift(1),
            "previous_speed_kmh": by_athlete["speed_kmh"].shift(1),
            "first_start_time": by_athlete["start_time"].transform("min"),
        }
    ).sort_index()
    return context[rows["given"].to_numpy()].reset_index(drop=True)


def with_history(ws: WorkoutSet, earlier: pd.DataFrame | None = None, measured=None) -> WorkoutSet:
    """`ws` with HISTORY_META in its meta, computed among its workouts and `earlier` (`workout_summaries` rows
    of the same athletes' other workouts), so that a single new workout gets the inputs it would get among
    all of them. `measured` (bool per workout): where False, the heart-rate channel is a stand-in, so that
    workout's mean heart rate is unknown (NaN) to the one after it."""
    given = workout_summaries(ws)
    if measured is not None:
        given.loc[~np.asarray(measured, bool), "heart_rate_bpm"] = np.nan
    context = history_context(given, earlier)
    meta = ws.meta.copy()
    for column in HISTORY_META:
        meta[column] = context[column].to_numpy()
    return WorkoutSet(ws.series, meta, ws.source, ws.fingerprint)


def _context(ws: WorkoutSet) -> pd.DataFrame:
    """HISTORY_META per workout: from `with_history`, else among the workouts given."""
    if all(column in ws.meta for column in HISTORY_META):
        return ws.meta[list(HISTORY_META)].astype(np.float64).reset_index(drop=True)
    return history_context(workout_summaries(ws))


def _previous_workout(ws: WorkoutSet) -> np.ndarray:
    """FitRec's context idea, cheaply: the same athlete's previous workout (by start time, among
    the workouts given and any history `with_history` added) as two per-workout numbers, its mean
    heart rate and mean speed. That workout happened before this one, so its heart rate is known when
    this one is predicted. NaN for an athlete's first workout (after scaling it becomes 0, the
    training mean)."""
    previous = _context(ws)[["previous_heart_rate_bpm", "previous_speed_kmh"]].to_numpy()
    return _per_workout(previous, ws.series.shape[1])


def _days_since_first(ws: WorkoutSet) -> np.ndarray:
    """Days since the athlete's first workout (among those given and any history `with_history` added):
    athletes get fitter (or not) over months, and with the user embedding this lets the model place a
    workout on that trend."""
    start_s = ws.meta["start_time"].to_numpy(np.float64)
    first_s = _context(ws)["first_start_time"].to_numpy(np.float64)
    return _per_workout(((start_s - first_s) / 86400.0)[:, None], ws.series.shape[1])


@dataclass(frozen=True)
class Feature:
    compute: Callable[[WorkoutSet], np.ndarray]  # -> (n, seq_len) or (n, seq_len, k)
    normalise: bool  # z-score with training statistics; flags and one-hots stay as they are
    doc: str


FEATURES: dict[str, Feature] = {
    "speed": Feature(lambda ws: ws.channel("speed_kmh"), True, "device speed, km/h (derived from GPS where missing)"),
    "altitude": Feature(lambda ws: ws.channel("altitude_m"), True, "altitude, m"),
    "gender": Feature(_gender, False, "1 male, 0 female, 0.5 unknown"),
    "time_elapsed": Feature(lambda ws: ws.channel("time_s") / 60.0, True, "minutes since the start"),
    "time_step": Feature(
        lambda ws: np.clip(step_change(ws.channel("time_s")), 0, 600), True, "seconds since the previous sample"
    ),
    "altitude_change": Feature(
        lambda ws: step_change(ws.channel("altitude_m")), True, "metres climbed since the previous sample"
    ),
    "grade": Feature(grade, True, "slope, rise over run"),
    "derived_speed": Feature(lambda ws: ws.channel("derived_speed_kmh"), True, "speed from GPS positions, km/h"),
    "sport": Feature(_sport, False, f"one-hot sport family {SPORT_FAMILIES}"),
    "sport_variant": Feature(_sport_variant, False, f"flags for sports within a family: {', '.join(SPORT_VARIANTS)}"),
    "previous_workout": Feature(_previous_workout, True, "the athlete's previous workout: mean heart rate and speed"),
    "days_since_first": Feature(_days_since_first, True, "days since the athlete's first workout"),
}


ALL_INPUTS = tuple(FEATURES)
# The default leaves out `previous_workout`: on a simulator family held out from every choice it cost
# 0.08-0.21 BPM in three seeds, on the default simulator and on a real runner's later runs it changed
# nothing measurable (docs/benchmarks.md, "previous_workout leaves the default"). It stays available by name.
DEFAULT_INPUTS = tuple(name for name in ALL_INPUTS if name != "previous_workout")
# Named sets for --features: "original" reproduces the original project's inputs ("seed" is the
# name older commands used for it, kept as an alias).
FEATURE_SETS = {"original": ORIGINAL_INPUTS, "default": DEFAULT_INPUTS, "all": ALL_INPUTS, "seed": ORIGINAL_INPUTS}


@dataclass
class FeatureConfig:
    inputs: tuple[str, ...] = DEFAULT_INPUTS  # the original project's: --features original

    def __post_init__(self):
        self.inputs = tuple(x for name in self.inputs for x in FEATURE_SETS.get(name, (name,)))
        unknown = [name for name in self.inputs if name not in FEATURES]
        if unknown:
            raise HRLSTMError(f"unknown feature(s) {', '.join(unknown)}; choose from {', '.join(FEATURES)}")


@dataclass
class Normalizer:
    """Per-column mean and std of the input matrix, fitted on training workouts."""

    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)


def _raw_columns(ws: WorkoutSet, cfg: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    columns, scaled = [], []
    for name in cfg.inputs:
        values = np.asarray(FEATURES[name].compute(ws), dtype=np.float32)
        values = values[..., None] if values.ndim == 2 else values
        columns.append(values)
        scaled.extend([FEATURES[name].normalise] * values.shape[-1])
    return np.concatenate(columns, axis=-1), np.array(scaled)


def fit_normalizer(train: WorkoutSet, cfg: FeatureConfig) -> Normalizer:
    raw, scaled = _raw_columns(train, cfg)
    flat = raw.reshape(-1, raw.shape[-1]).astype(np.float64)
    # nan-aware: a feature may be undefined for some workouts (an athlete's first has no previous one)
    mean = np.where(scaled, np.nanmean(flat, axis=0), 0.0)
    std = np.where(scaled, np.nanstd(flat, axis=0), 1.0)
    std = np.where(std < 1e-6, 1.0, std)  # a constant column stays constant, not NaN
    return Normalizer(mean=mean.tolist(), std=std.tolist())


def build_inputs(ws: WorkoutSet, cfg: FeatureConfig, norm: Normalizer) -> np.ndarray:
    """(n, seq_len, n_inputs) float32 model inputs."""
    raw, _ = _raw_columns(ws, cfg)
    scaled = (raw - np.float32(norm.mean)) / np.float32(norm.std)
    return np.nan_to_num(scaled, nan=0.0).astype(np.float32)  # undefined -> the training mean


def target(ws: WorkoutSet) -> np.ndarray:
    """Heart rate in BPM, (n, seq_len) float32: the quantity predicted, left unscaled."""
    return np.ascontiguousarray(ws.channel("heart_rate_bpm"), dtype=np.float32)

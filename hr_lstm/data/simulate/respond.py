"""A simulated athlete running a given pace profile: their true heart rate, from the simulator's own laws.

The simulator draws each workout's speed from a session plan; a pace plan gives the speed instead.
`true_heart_rate_bpm` takes time, speed and altitude samples and returns the noise-free heart rate
of one athlete (a row of the `.athletes.csv` sidecar, `load_athletes`) through the same laws as
`sessions.workout_signals` and `laws.heart_rate`: the workload of that speed up that grade, the
effort curve, cardiac drift, the day's form, the kinetics. What it leaves out: stops, sensor noise
and artefacts (a plan has none), and the simulator's own pacing. `benchmarks/plan_check.py` uses it
to run plans through physiology the model only ever saw through noisy recordings.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...errors import DataError
from .config import SimConfig
from .laws import heart_rate
from .sessions import FORM_SD_BPM, fitness, heart_demand, motion_vo2
from .truth import sidecar_paths
from .variants import FAMILIES, draw_laws, resolve_variant

GRID_S = 2.0  # the even grid the laws run on (drift integrates over it, the kinetics step along it)


def load_athletes(data_path) -> pd.DataFrame:
    """The true athletes of a simulated data file (its `.athletes.csv`), with the default laws filled in
    where the file predates variants or is the default variant's (whose sidecar leaves them out)."""
    csv = sidecar_paths(data_path)[1]
    try:
        athletes = pd.read_csv(csv)
    except (OSError, ValueError) as exc:
        raise DataError(f"{csv}: no readable simulator athletes sidecar ({exc.__class__.__name__})") from None
    if any(family not in athletes for family in FAMILIES):
        athletes = draw_laws(resolve_variant("default"), np.random.default_rng(0), athletes, SimConfig())
    return athletes


def day_form_bpm(athlete, rng, n: int) -> np.ndarray:
    """`n` draws of the day's form, as the simulator draws one per workout (the same for every athlete)."""
    return rng.normal(0.0, FORM_SD_BPM, n)


def true_heart_rate_bpm(
    athlete,
    sport: str,
    time_s,
    speed_kmh,
    altitude_m,
    form_bpm: float = 0.0,
    hist_frac: float = 1.0,
    hr0_bpm: float | None = None,
) -> np.ndarray:
    """The athlete's noise-free heart rate at each sample of a workout at these speeds on this terrain.

    `hist_frac`: where in their history (0 first workout, 1 latest: fittest); `hr0_bpm`: the heart rate at
    the start (default resting + 15, the middle of the simulator's range). A missing altitude is flat."""
    a = dict(athlete)
    t = np.asarray(time_s, float)
    if t.size < 2 or np.any(np.diff(t) <= 0):
        raise ValueError("time_s must have at least 2 samples and increase")
    grid = np.arange(t[0], t[-1] + GRID_S / 2, GRID_S)
    v_ms = np.interp(grid, t, np.asarray(speed_kmh, float)) / 3.6
    altitude = np.asarray(altitude_m, float)
    altitude = np.zeros_like(t) if not np.isfinite(altitude).any() else altitude
    climb = np.gradient(np.interp(grid, t, altitude), grid)  # m/s up
    grade = np.clip(climb / np.maximum(v_ms, 0.3), -0.2, 0.2)
    vo2max, hr_rest = fitness(a, sport, hist_frac)
    demand = heart_demand(a, motion_vo2(sport, a, v_ms, grade), vo2max, hr_rest, form_bpm, grid - grid[0], GRID_S)
    dt = np.full(grid.size, GRID_S)
    dt[0] = 0.0
    hr0 = hr_rest + 15.0 if hr0_bpm is None else hr0_bpm
    hr = heart_rate([a], demand[None], dt[None], np.array([hr0]), np.zeros((1, grid.size)), np.array([hr_rest + 10]))
    return np.interp(t, grid, hr[0])

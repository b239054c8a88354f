"""The simulator's settings: how many athletes and workouts, their sports and history, and how
noisy and broken the simulated recordings are. One dataclass, `SimConfig`; `simulate` checks it
before it draws anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SimConfig:
    n_users: int = 50
    seed: int = 0
    seq_len: int = 500  # FitRec's points per workout
    min_workouts: int = 12  # per athlete; FitRec's split keeps users with >= 10
    max_workouts: int = 40
    sport_mix: dict[str, float] = field(  # athletes' main sports: Endomondo is mostly runs and rides
        default_factory=lambda: {"run": 0.55, "bike": 0.35, "mountain bike": 0.05, "walk": 0.05}
    )
    main_sport_share: float = 0.8  # workouts in the athlete's main sport; the rest follow sport_mix
    start_date: str = "2014-01-01"  # Endomondo era; each history starts within a year of it
    history_months: tuple[float, float] = (3.0, 12.0)  # span of each athlete's workouts
    duration_min: tuple[float, float] = (20.0, 120.0)  # time the seq_len points span, pauses included
    speed_missing_fraction: float = 0.4  # records without 'speed' (reader derives it from GPS)
    stops_per_workout: float = 1.2  # traffic lights: speed 0 for 10-120 s, still sampled
    pauses_per_workout: float = 0.6  # auto-pause: 30-600 s with no samples
    hr_noise_bpm: tuple[float, float] = (1.5, 3.0)  # per-workout SD of the strap's noise
    gps_noise_m: tuple[float, float] = (2.0, 5.0)  # per-workout SD of (correlated) position error
    altitude_noise_m: float = 1.5  # barometer noise; plus a per-workout offset
    artefact_fraction: float = 0.07  # cadence lock or dropouts/spikes
    broken_fraction: float = 0.015  # mostly impossible HR: for the reader's plausibility filter
    variant: str = "default"  # the laws the data follows (variants.py): a name in VARIANTS, or "random"

"""Filters: select sports, drop implausible heart rate and sparse users, treat impossible altitudes as
missing, and say how many and why."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import DataError
from .workouts import WorkoutSet, sport_family


@dataclass
class FilterConfig:
    sports: tuple[str, ...] = ("run", "bike")  # family names or exact sport names
    hr_min_bpm: float = 30.0
    hr_max_bpm: float = 230.0
    max_implausible_fraction: float = 0.05  # more implausible points than this drops the workout
    min_workouts_per_user: int = 10  # FitRec's rule, so every user has a history to split
    # Outside this an altitude is a device's "no value" sentinel (4294967295) or a glitch (1e300, which
    # float32 reads as infinity): treated as missing, so one of them cannot wreck the normalisation.
    # (Speed needs no range here: the reader already treats device speeds above ParseConfig.speed_max_kmh as missing.)
    altitude_range_m: tuple[float, float] = (-500.0, 9000.0)  # the Dead Sea shore to above Everest


@dataclass
class FilterReport:
    n_read: int
    n_kept: int
    dropped: dict[str, int] = field(default_factory=dict)
    n_points_repaired: int = 0
    out_of_range: dict[str, int] = field(default_factory=dict)  # channel -> points treated as missing

    def summary(self) -> str:
        reasons = "; ".join(f"{n:,} {why}" for why, n in self.dropped.items() if n) or "none"
        line = (
            f"Kept {self.n_kept:,} of {self.n_read:,} workouts. Dropped: {reasons}. "
            f"Interpolated {self.n_points_repaired:,} implausible heart-rate points in kept workouts."
        )
        odd = ", ".join(f"{n:,} {name}" for name, n in self.out_of_range.items() if n)
        return line + (f" Out of range, treated as missing: {odd} points." if odd else "")


def filter_workouts(ws: WorkoutSet, cfg: FilterConfig) -> tuple[np.ndarray, FilterReport]:
    """Which workouts the filters keep (a boolean mask) and why the others go; copies nothing."""
    meta = ws.meta
    wanted = {s.lower() for s in cfg.sports}
    families = meta["sport"].map(sport_family)
    sport_ok = (families.isin(wanted) | meta["sport"].str.lower().isin(wanted)).to_numpy()

    # Boolean masks and integer counts only: a float temporary per point (`.mean()`, `np.diff`) costs as much
    # memory as the heart-rate channel itself, times the FitRec file's 167,373 workouts.
    hr = ws.channel("heart_rate_bpm")
    implausible = (hr < cfg.hr_min_bpm) | (hr > cfg.hr_max_bpm)
    hr_ok = np.count_nonzero(implausible, axis=1) <= cfg.max_implausible_fraction * hr.shape[1]
    # Time that runs backwards has no safe repair (repeated time stamps, as in the public file, are fine).
    t = ws.channel("time_s")
    time_ok = (t[:, 1:] >= t[:, :-1]).all(axis=1)
    keep = sport_ok & hr_ok & time_ok

    counts = meta.loc[keep, "user_id"].value_counts()
    users_ok = meta["user_id"].map(counts).fillna(0).to_numpy() >= cfg.min_workouts_per_user
    report = FilterReport(
        n_read=len(ws),
        n_kept=int((keep & users_ok).sum()),
        dropped={
            f"sport not in {sorted(wanted)}": int((~sport_ok).sum()),
            f"heart rate outside {cfg.hr_min_bpm:g}-{cfg.hr_max_bpm:g} bpm at more than "
            f"{cfg.max_implausible_fraction:.0%} of points": int((sport_ok & ~hr_ok).sum()),
            "time stamps going backwards": int((sport_ok & hr_ok & ~time_ok).sum()),
            f"users with fewer than {cfg.min_workouts_per_user} workouts": int((keep & ~users_ok).sum()),
        },
        n_points_repaired=int(implausible[keep & users_ok].sum()),
    )
    return keep & users_ok, report


def apply_filters(ws: WorkoutSet, cfg: FilterConfig) -> tuple[WorkoutSet, FilterReport]:
    keep, report = filter_workouts(ws, cfg)
    kept = ws.subset(np.flatnonzero(keep))
    # Own the memory (we repair it in place next); the subset is a fresh copy already unless
    # it came back as a view, so this copies nothing in the usual case.
    kept.series = np.require(kept.series, requirements=("W", "O"))
    report.n_points_repaired = interpolate_implausible(kept.channel("heart_rate_bpm"), cfg)
    report.out_of_range = repair_out_of_range(kept, cfg)
    if len(kept) == 0:
        raise DataError(f"{ws.source}: no workouts left after filtering ({report.summary()})")
    return kept, report


def interpolate_implausible(hr: np.ndarray, cfg: FilterConfig) -> int:
    """Replace the few out-of-range points a kept workout has by linear interpolation."""
    bad = (hr < cfg.hr_min_bpm) | (hr > cfg.hr_max_bpm)
    steps = np.arange(hr.shape[1])
    for i in np.flatnonzero(bad.any(axis=1)):
        good = ~bad[i]
        hr[i, bad[i]] = np.interp(steps[bad[i]], steps[good], hr[i, good])
    return int(bad.sum())


def repair_out_of_range(ws: WorkoutSet, cfg: FilterConfig) -> dict[str, int]:
    """Altitudes outside the plausible range become missing, in place: interpolated between the workout's
    good points, or the whole channel absent (NaN) when it has none. Returns the count per channel."""
    low, high = cfg.altitude_range_m
    values, steps = ws.channel("altitude_m"), np.arange(ws.series.shape[1])
    bad = ~np.isnan(values) & ~((values >= low) & (values <= high))  # NaN is an absent channel already
    for i in np.flatnonzero(bad.any(axis=1)):
        good = ~bad[i] & ~np.isnan(values[i])
        values[i, bad[i]] = np.interp(steps[bad[i]], steps[good], values[i, good]) if good.any() else np.nan
    return {"altitude": int(bad.sum())}

"""Warm start: today's measured heart rate up to minute k corrects the prediction for the rest.

Most of what a route-and-pace model gets wrong is a workout's level: the day's form, heat, caffeine,
sleep, none of which the inputs show. A watch knows the first k minutes of heart rate already. The
gap between measured and predicted is read over the second half of those minutes only: in the first,
the heart is still climbing from rest (a first-order rise with a time constant near a minute) and a
wrist or strap sensor still settling, and on real recordings those minutes say next to nothing about
the rest of the workout (docs/benchmarks.md). That gap is carried forward, fading toward the model's
own curve:

    offset(t) = intercept + slope * gap_k * exp(-(t - k) / persistence)

slope (how much of the gap is the day's level rather than noise) and persistence (how long it lasts)
are fitted on workouts the model predicted without having fitted them (`fit_warm_start`); without
such workouts, the whole gap persists (slope 1, no fading). A personalised model has only 5-10 such
workouts of its athlete, so its calibration borrows from the population's (`fit_personal_warm_start`):
the persistence of the generic model's validation split, and a slope pulled toward that split's. Only
measurements before minute k are read, so nothing measured after the cut-off leaks into what is
predicted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WARM_START_MINUTES = (0.0, 2.0, 5.0)  # what evaluation reports by default
PERSISTENCE_GRID_S = (120.0, 300.0, 600.0, 1200.0, 2400.0, 4800.0, None)  # None: the gap never fades
MIN_FIT_WORKOUTS = 3
PRIOR_WORKOUTS = 3  # how many of an athlete's workouts the population's slope counts as (MIN_FIT_WORKOUTS)
# What `personalize` stores: the population's slope alone (None), not shrunk toward the athlete's. Chosen
# leave-one-athlete-out on three real runners: in every fold the other two did better with it (after minute
# 5, x own mean: A 0.634 -> 0.574, C 0.410 -> 0.401, D 0.848 -> 0.852); 16 simulated athletes preferred the
# shrinkage slightly (0.366 against 0.372). The 2026-12-08 note in docs/notes/, "The personal warm start".
PERSONAL_PRIOR = None


def _as_2d(*arrays) -> tuple[np.ndarray, ...]:
    return tuple(np.atleast_2d(np.asarray(a, np.float64)) for a in arrays)


def _mean_gap(pred: np.ndarray, measured: np.ndarray, steps: np.ndarray, empty: float) -> np.ndarray:
    """Per workout, the mean measured-minus-predicted heart rate over `steps` where measured; `empty` where none."""
    steps = steps & np.isfinite(measured)
    gap = np.where(steps, measured - pred, 0.0).sum(axis=1)
    count = steps.sum(axis=1)
    return np.where(count > 0, gap / np.maximum(count, 1), empty)


def gap_at_k_bpm(pred_bpm, measured_bpm, time_s, minutes: float) -> np.ndarray:
    """Per workout, the mean measured-minus-predicted heart rate over the second half of the first k minutes
    (the first half is the heart's rise and the sensor settling). (n, steps) arrays in, (n,) out; 0 where k
    is 0 or nothing was measured there."""
    pred, measured, t = _as_2d(pred_bpm, measured_bpm, time_s)
    cut_s = 60.0 * minutes
    return _mean_gap(pred, measured, (t < cut_s) & (t >= cut_s / 2), empty=0.0)


@dataclass(frozen=True)
class WarmStartFit:
    """How a model's gap at minute k carries over: intercept + slope * gap_k, fading with `persistence_s`.

    Fitted on workouts the model had not fitted (its validation split, an athlete's held-out ones). A slope
    near 1 and no fading say the gap is the day's level; a small slope or a short persistence, that it is
    mostly noise or a passing state (then the warm start soon leaves the prediction alone)."""

    minutes: float
    intercept_bpm: float = 0.0
    slope: float = 1.0
    n_workouts: int = 0
    persistence_s: float | None = None  # None: the gap never fades


def _fade(t: np.ndarray, minutes: float, persistence_s: float | None) -> np.ndarray:
    if persistence_s is None:
        return np.ones_like(t)
    return np.exp(-np.clip(t - 60.0 * minutes, 0.0, None) / persistence_s)


def fit_warm_start(
    pred_bpm, measured_bpm, time_s, minutes: float, intercept: bool = True, persistences=PERSISTENCE_GRID_S
) -> WarmStartFit:
    """For each of `persistences` (default PERSISTENCE_GRID_S), least squares of the gap after minute k on
    [1, gap_k * fade] over the reference workouts' steps, the slope kept in [0, 1] (the gap never counts
    more than itself, nor against itself); the persistence with the lowest MAE wins. With fewer than
    MIN_FIT_WORKOUTS usable workouts, the uncalibrated warm start (intercept 0, slope 1, no fading).

    `intercept=False` when the reference predictions come from other fits than the model to be corrected
    (a personalisation's selection set, predicted by the rung fitted without it): their mean gap is that
    fit's bias, not the final model's, while how a day's gap carries over is the athlete's."""
    pred, measured, t = _as_2d(pred_bpm, measured_bpm, time_s)
    gap_k = gap_at_k_bpm(pred, measured, t, minutes)
    after = (t >= 60.0 * minutes) & np.isfinite(measured)
    usable = after.any(axis=1)
    if minutes <= 0 or usable.sum() < MIN_FIT_WORKOUTS:
        return WarmStartFit(float(minutes), n_workouts=int(usable.sum()))
    late = (measured - pred)[after]
    best = None
    for persistence in persistences:
        carried = (gap_k[:, None] * _fade(t, minutes, persistence))[after]
        centre = (carried.mean(), late.mean()) if intercept else (0.0, 0.0)
        x, y = carried - centre[0], late - centre[1]
        slope = float(np.clip(x @ y / (x @ x), 0.0, 1.0)) if x @ x > 0 else 0.0
        level = float(np.mean(late - slope * carried)) if intercept else 0.0
        mae = float(np.abs(late - level - slope * carried).mean())
        if best is None or mae < best[0]:
            best = (mae, WarmStartFit(float(minutes), level, slope, int(usable.sum()), persistence))
    return best[1]


def fit_personal_warm_start(
    pred_bpm, measured_bpm, time_s, minutes: float, prior: WarmStartFit | None = None, prior_workouts=PRIOR_WORKOUTS
) -> WarmStartFit:
    """A personalised model's calibration from its athlete's few unseen workouts, borrowing from `prior`
    (the generic model's, fitted on hundreds of validation workouts; None: the athlete's alone).

    On 5-10 workouts one odd run (a start already warm, a sensor settling late) can set the slope near 0
    or 1, and the persistence is hardly identifiable at all. So the persistence is the prior's; the slope
    is the athlete's least squares at that persistence, averaged with the prior's slope as if the prior
    were PRIOR_WORKOUTS more workouts (a conjugate-normal posterior mean, the prior counted as a few
    workouts). No intercept: see `fit_warm_start`. With fewer than MIN_FIT_WORKOUTS, the prior alone; a
    prior itself fitted on fewer (a tiny validation split) is only the uncalibrated default, and is ignored.
    `prior_workouts=None`: the prior's slope alone (what `personalize` uses on real athletes: PERSONAL_PRIOR)."""
    if prior is None or prior.n_workouts < MIN_FIT_WORKOUTS:
        return fit_warm_start(pred_bpm, measured_bpm, time_s, minutes, intercept=False)
    own = fit_warm_start(pred_bpm, measured_bpm, time_s, minutes, intercept=False, persistences=(prior.persistence_s,))
    n = own.n_workouts
    if n < MIN_FIT_WORKOUTS:
        return WarmStartFit(float(minutes), 0.0, prior.slope, n, prior.persistence_s)
    if prior_workouts is None:
        return WarmStartFit(float(minutes), 0.0, prior.slope, n, prior.persistence_s)
    slope = (n * own.slope + prior_workouts * prior.slope) / (n + prior_workouts)
    return WarmStartFit(float(minutes), 0.0, float(slope), n, prior.persistence_s)


def warm_start_bpm(pred_bpm, measured_bpm, time_s, minutes: float, fit: WarmStartFit | None = None) -> np.ndarray:
    """Predictions from minute k on, shifted by the gap at k as `fit` carries it (default: all of it, for
    good); before k, the measured heart rate (known by then; the model's own prediction where a
    measurement is missing)."""
    pred, measured, t = _as_2d(pred_bpm, measured_bpm, time_s)
    fit = fit or WarmStartFit(float(minutes))
    gap_k = gap_at_k_bpm(pred, measured, t, minutes)
    offset = fit.intercept_bpm + fit.slope * gap_k[:, None] * _fade(t, minutes, fit.persistence_s)
    before = (t < 60.0 * minutes) & np.isfinite(measured)
    out = np.where(before, measured, pred + offset) if minutes > 0 else pred
    return out.reshape(np.shape(pred_bpm)) if np.ndim(pred_bpm) == 1 else out


def persistence_bpm(measured_bpm, time_s, minutes: float, window_min: float = 1.0) -> np.ndarray:
    """The persistence baseline a warm start must beat: the measured mean over the last `window_min` minutes
    before minute k, held for the rest of the workout (measured before k, as `warm_start_bpm`). A workout with
    nothing measured in that window holds its last measured value before k, else stays NaN."""
    measured, t = _as_2d(measured_bpm, time_s)
    cut_s = 60.0 * minutes
    window = (t >= cut_s - 60.0 * window_min) & (t < cut_s) & np.isfinite(measured)
    held = np.where(window, measured, 0.0).sum(axis=1) / np.maximum(window.sum(axis=1), 1)
    before = (t < cut_s) & np.isfinite(measured)
    last = np.array([row[mask][-1] if mask.any() else np.nan for row, mask in zip(measured, before)])
    held = np.where(window.any(axis=1), held, last)
    out = np.where(before, measured, held[:, None])
    return out.reshape(np.shape(measured_bpm)) if np.ndim(measured_bpm) == 1 else out


def after_minutes_mae(pred_bpm, measured_bpm, time_s, minutes: float) -> float:
    """Pooled MAE over the steps at or after minute k (what a warm start is judged on)."""
    pred, measured, t = (np.asarray(a, np.float64) for a in (pred_bpm, measured_bpm, time_s))
    scored = (t >= 60.0 * minutes) & np.isfinite(measured)
    return float(np.abs(pred - measured)[scored].mean()) if scored.any() else float("nan")


def warm_start_table(pred_bpm, measured_bpm, time_s, minutes=WARM_START_MINUTES, reference=None) -> list[dict]:
    """For each k: MAE after minute k without and with the warm start, on the same steps; with `reference`
    (pred, measured, time_s of other workouts), also the warm start calibrated on them (`fit_warm_start`)."""
    rows = []
    for k in minutes:
        warm = warm_start_bpm(pred_bpm, measured_bpm, time_s, k)
        row = {
            "minutes": float(k),
            "mae_after_k_bpm": after_minutes_mae(pred_bpm, measured_bpm, time_s, k),
            "warm_start_mae_after_k_bpm": after_minutes_mae(warm, measured_bpm, time_s, k),
        }
        if reference is not None:
            fit = fit_warm_start(*reference, k)
            calibrated = warm_start_bpm(pred_bpm, measured_bpm, time_s, k, fit)
            row["calibrated_warm_start_mae_after_k_bpm"] = after_minutes_mae(calibrated, measured_bpm, time_s, k)
            row["calibration"] = {
                "intercept_bpm": fit.intercept_bpm,
                "slope": fit.slope,
                "persistence_s": fit.persistence_s,
                "n_workouts": fit.n_workouts,
            }
        rows.append(row)
    return rows

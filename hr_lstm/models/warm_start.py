"""Warm start: the first minutes of today's measured heart rate correct the rest of the prediction.

Most of what a route-and-pace model gets wrong is a workout's level: the day's form, heat,
caffeine, sleep, none of which the inputs show. A watch knows the first k minutes of heart rate
already; the mean gap between measured and predicted over those minutes, less the first 30 s (the
heart's climb from rest, where the kinetics rather than the level decide the gap), is today's
offset, added to the prediction for the rest of the workout. Only measurements before minute k are
read, so nothing measured after the cut-off leaks into what is predicted. How the window was chosen
(a simulated test split and one real runner, both with figures) is in docs/benchmarks.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WARM_START_MINUTES = (0.0, 2.0, 5.0)  # what evaluation reports by default
SKIP_S = 30.0  # the first seconds are left out of the offset (at most half of a short window)


def warm_start_offset_bpm(pred_bpm, measured_bpm, time_s, minutes: float) -> np.ndarray:
    """Per workout, the mean measured-minus-predicted heart rate from SKIP_S (or k/2) to minute k.

    (n, steps) arrays in, (n,) out; 0 where k is 0 or a workout has no measurement in the window."""
    pred, measured, t = (np.atleast_2d(np.asarray(a, np.float64)) for a in (pred_bpm, measured_bpm, time_s))
    cut_s = 60.0 * minutes
    return _mean_gap(pred, measured, (t < cut_s) & (t >= min(SKIP_S, cut_s / 2)), empty=0.0)


def _mean_gap(pred: np.ndarray, measured: np.ndarray, steps: np.ndarray, empty: float) -> np.ndarray:
    """Per workout, the mean measured-minus-predicted heart rate over `steps` where measured; `empty` where none."""
    steps = steps & np.isfinite(measured)
    gap = np.where(steps, measured - pred, 0.0).sum(axis=1)
    count = steps.sum(axis=1)
    return np.where(count > 0, gap / np.maximum(count, 1), empty)


@dataclass(frozen=True)
class WarmStartFit:
    """How a model's early gap carries over to the rest of a workout: offset = intercept + slope * early gap.

    Fitted on workouts the model has scored before (its validation split, an athlete's earlier
    workouts). A slope near 1 says the early minutes show the day's level; near 0, that they mostly show
    the warm-up the model mispredicts (then the warm start leaves the prediction almost alone)."""

    minutes: float
    intercept_bpm: float = 0.0
    slope: float = 1.0
    n_workouts: int = 0


MIN_FIT_WORKOUTS = 3


def late_gap_bpm(pred_bpm, measured_bpm, time_s, minutes: float) -> np.ndarray:
    """Per workout, the mean measured-minus-predicted heart rate from minute k on (NaN where none)."""
    pred, measured, t = (np.atleast_2d(np.asarray(a, np.float64)) for a in (pred_bpm, measured_bpm, time_s))
    return _mean_gap(pred, measured, t >= 60.0 * minutes, empty=np.nan)


def fit_warm_start(pred_bpm, measured_bpm, time_s, minutes: float) -> WarmStartFit:
    """Least squares of the late gap on the early gap over reference workouts, the slope kept in [0, 1]
    (the early gap never counts more than itself, nor against itself). With fewer than
    MIN_FIT_WORKOUTS usable workouts, the plain warm start (intercept 0, slope 1)."""
    early = warm_start_offset_bpm(pred_bpm, measured_bpm, time_s, minutes)
    late = late_gap_bpm(pred_bpm, measured_bpm, time_s, minutes)
    ok = np.isfinite(late) & np.isfinite(early)
    if minutes <= 0 or ok.sum() < MIN_FIT_WORKOUTS:
        return WarmStartFit(float(minutes), n_workouts=int(ok.sum()))
    early, late = early[ok], late[ok]
    spread = np.var(early)
    slope = float(np.clip(np.cov(early, late, bias=True)[0, 1] / spread, 0.0, 1.0)) if spread > 0 else 0.0
    return WarmStartFit(float(minutes), float(np.mean(late - slope * early)), slope, int(ok.sum()))


def warm_start_bpm(pred_bpm, measured_bpm, time_s, minutes: float, fit: WarmStartFit | None = None) -> np.ndarray:
    """Predictions from minute k on, shifted by today's offset (the early gap, or `fit`'s estimate from it);
    before k, the measured heart rate (known by then; the model's own prediction where a measurement is
    missing)."""
    pred, measured, t = (np.atleast_2d(np.asarray(a, np.float64)) for a in (pred_bpm, measured_bpm, time_s))
    offset = warm_start_offset_bpm(pred, measured, t, minutes)
    if fit is not None:
        offset = fit.intercept_bpm + fit.slope * offset
    before = (t < 60.0 * minutes) & np.isfinite(measured)
    out = np.where(before, measured, pred + offset[:, None])
    return out.reshape(np.shape(pred_bpm)) if np.ndim(pred_bpm) == 1 else out


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
            row["calibration"] = {"intercept_bpm": fit.intercept_bpm, "slope": fit.slope, "n_workouts": fit.n_workouts}
        rows.append(row)
    return rows

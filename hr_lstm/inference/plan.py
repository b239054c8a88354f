"""Plan a workout on a route: the heart rate a pace brings, and the fastest pace that keeps it under a ceiling.

    hr-lstm plan course.gpx --checkpoint ck.pt --pace 5:10/km        # what-if: heart rate at that pace
    hr-lstm plan course.gpx --checkpoint ck.pt --max-hr 165 --safe   # pace for a ceiling

`predict_plan` reads one pace profile through the model (`plan_inputs`). `even_pace` finds, by
bisection, the fastest constant speed whose predicted heart rate stays under the ceiling
everywhere. `plan_for_ceiling` starts there and moves speed along the route by gradient descent
through the model: Adam on the log-speed at knots every few hundred metres (a runner can follow
a pace that changes per stretch, not per step), minimising the finish time plus a penalty for
every BPM over the ceiling (its weight grows along the run) and one for a pace that bends
sharply. A last bisection scales the whole profile back until the ceiling holds at every sample,
so the plan respects it on the model exactly as the even pace does. With `safe`, the ceiling
applies to the upper edge of the checkpoint's calibrated 80% band instead of the point prediction.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from ..data.route import Route
from ..data.workouts import sport_family
from ..errors import HRLSTMError
from ..training.trained import TrainedModel
from .plan_inputs import PlanModel, Timeline, timeline

# The speeds a plan may use, per sport family (km/h): a search never leaves them.
SPEED_RANGE_KMH = {"run": (3.0, 25.0), "walk": (2.0, 9.0), "bike": (6.0, 60.0), "other": (2.0, 40.0)}
MILE_KM = 1.609344


def parse_pace(text: str) -> float:
    """'5:10/km', '5:10' (per km) or '8:20/mi' -> speed in km/h."""
    m = re.fullmatch(r"\s*(\d{1,2}):([0-5]\d)\s*(?:/\s*(km|mi))?\s*", str(text))
    if not m or int(m.group(1)) * 60 + int(m.group(2)) == 0:
        raise HRLSTMError(f"--pace {text!r}: write minutes:seconds per km or mile, e.g. 5:10/km or 8:20/mi")
    minutes = int(m.group(1)) + int(m.group(2)) / 60
    per_km = minutes / MILE_KM if m.group(3) == "mi" else minutes
    return 60.0 / per_km


def format_pace(speed_kmh: float) -> str:
    """km/h -> 'm:ss/km'."""
    seconds = round(3600.0 / max(float(speed_kmh), 1e-6))
    return f"{seconds // 60}:{seconds % 60:02d}/km"


def format_duration(seconds: float) -> str:
    s = round(float(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def parse_zone(text: str) -> tuple[float, float]:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)\s*", str(text))
    if not m or float(m.group(1)) >= float(m.group(2)):
        raise HRLSTMError(f"--zone {text!r}: write LOW-HIGH in BPM with LOW < HIGH, e.g. 150-165")
    return float(m.group(1)), float(m.group(2))


@dataclass
class PlanConfig:
    sport: str = "run"
    user: str | None = None  # whose embedding (default: the personalised athlete, else the unknown user)
    gender: str | None = None
    max_hr_bpm: float | None = None  # the ceiling
    min_hr_bpm: float | None = None  # with --zone: the floor, after the first warmup_min minutes
    safe: bool = False  # the ceiling holds for the band's upper edge, not only the point prediction
    knot_m: float | None = None  # pace may change every knot_m (default: length / 40, 250-1000 m; x4 on a bike)
    max_speed_ratio: float = 1.35  # speeds within [1/r, r] x the even pace under the same ceiling
    iterations: int = 60
    lr: float = 0.05
    smoothness: float = 0.5  # weight of the pace's bending (second differences of log-speed between knots)
    warmup_min: float = 5.0

    def __post_init__(self):
        if self.max_hr_bpm is not None and self.min_hr_bpm is not None and self.min_hr_bpm >= self.max_hr_bpm:
            raise HRLSTMError(f"zone {self.min_hr_bpm:g}-{self.max_hr_bpm:g}: the floor must be under the ceiling")
        if self.iterations < 0 or self.max_speed_ratio < 1.0:
            raise HRLSTMError("iterations must not be negative and max_speed_ratio at least 1")


@dataclass
class Plan:
    """A pace profile on a route and the heart rate the model predicts for it, at the model's samples."""

    route: Route
    stretch_speed_kmh: np.ndarray  # (len(route.distance_m) - 1,) speed on each route stretch
    time_s: np.ndarray
    distance_m: np.ndarray
    speed_kmh: np.ndarray
    altitude_m: np.ndarray
    predicted_bpm: np.ndarray
    low_bpm: np.ndarray | None  # the calibrated 80% band (None: the checkpoint has none)
    high_bpm: np.ndarray | None
    finish_s: float
    max_hr_bpm: float | None = None
    min_hr_bpm: float | None = None
    safe: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def limit_bpm(self) -> np.ndarray:
        """What the ceiling applies to: the band's upper edge with `safe`, else the prediction."""
        return self.high_bpm if self.safe and self.high_bpm is not None else self.predicted_bpm

    def frame(self) -> pd.DataFrame:
        low = self.low_bpm if self.low_bpm is not None else np.full_like(self.predicted_bpm, np.nan)
        high = self.high_bpm if self.high_bpm is not None else np.full_like(self.predicted_bpm, np.nan)
        return pd.DataFrame(
            {
                "time_s": np.round(self.time_s, 1),
                "distance_km": np.round(self.distance_m / 1000, 3),
                "speed_kmh": np.round(self.speed_kmh, 2),
                "pace_min_per_km": np.round(60.0 / np.maximum(self.speed_kmh, 1e-6), 3),
                "altitude_m": np.round(self.altitude_m, 1),
                "predicted_heart_rate_bpm": np.round(self.predicted_bpm, 1),
                "predicted_low_bpm": np.round(low, 1),
                "predicted_high_bpm": np.round(high, 1),
            }
        )

    def splits(self) -> pd.DataFrame:
        """One row per km (the last one shorter): pace, split and elapsed time, net rise (m), heart rate in it."""
        d = self.route.distance_m
        stretch_s = np.diff(d) / (self.stretch_speed_kmh / 3.6)
        reached_s = np.concatenate([[0.0], np.cumsum(stretch_s)])
        altitude = self.route.altitude_m
        rows, edges = [], np.append(np.arange(0.0, d[-1], 1000.0), d[-1])
        for k, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
            t_a, t_b = np.interp([a, b], d, reached_s)
            inside = (self.time_s >= t_a) & (self.time_s <= t_b)
            hr = (
                self.predicted_bpm[inside] if inside.any() else self.predicted_bpm[[np.abs(self.time_s - t_b).argmin()]]
            )
            rise = np.nan if altitude is None else float(np.diff(np.interp([a, b], d, altitude))[0])
            rows.append(
                {
                    "km": f"{k + 1}" if b - a >= 999 else f"{b / 1000:.2f}",
                    "pace": format_pace((b - a) / 1000 / ((t_b - t_a) / 3600)),
                    "split": format_duration(t_b - t_a),
                    "elapsed": format_duration(t_b),
                    "elevation_change_m": rise if np.isnan(rise) else int(round(rise)),
                    "mean_hr_bpm": int(round(float(hr.mean()))),
                    "max_hr_bpm": int(round(float(hr.max()))),
                }
            )
        return pd.DataFrame(rows)

    def time_over_ceiling(self) -> float:
        """Share of the plan's samples whose limit (see `limit_bpm`) is above the ceiling."""
        return float(np.mean(self.limit_bpm > self.max_hr_bpm + 1e-6)) if self.max_hr_bpm is not None else 0.0


def _plan(pm: PlanModel, stretch_speed_kmh: np.ndarray, cfg: PlanConfig) -> Plan:
    speeds = torch.as_tensor(np.asarray(stretch_speed_kmh, float))
    with torch.no_grad():
        tl = timeline(pm.route, speeds, pm.seq_len)
        predicted = pm.predict_bpm(tl).numpy()
    offsets = pm.band_offsets_bpm(tl)
    low, high = (None, None) if offsets is None else (predicted + offsets[0], predicted + offsets[1])
    plan = Plan(
        pm.route,
        np.asarray(stretch_speed_kmh, float),
        tl.time_s.numpy(),
        tl.distance_m.numpy(),
        tl.speed_kmh.numpy(),
        tl.altitude_m.numpy(),
        predicted,
        low,
        high,
        float(tl.finish_s),
        cfg.max_hr_bpm,
        cfg.min_hr_bpm,
        cfg.safe,
    )
    longest = pm.model.longest_workout_s
    if longest and plan.finish_s > 1.05 * longest:
        plan.notes.append(
            f"past {format_duration(longest)}, the longest workout the model learnt from, its heart rate is "
            f"extrapolated (this profile lasts {format_duration(plan.finish_s)})"
        )
    return plan


def plan_model(model: TrainedModel, route: Route, cfg: PlanConfig) -> PlanModel:
    pm = PlanModel(model, route, cfg.sport, cfg.user, cfg.gender)
    if cfg.safe and getattr(model, "interval", None) is None:
        raise HRLSTMError(f"{model.path}: --safe needs a checkpoint with a calibrated band (train it again)")
    return pm


def predict_plan(model: TrainedModel | PlanModel, route: Route, speed_kmh, cfg: PlanConfig | None = None) -> Plan:
    """The model's heart rate for `speed_kmh` (one speed, or one per route stretch) on `route`."""
    cfg = cfg or PlanConfig()
    pm = model if isinstance(model, PlanModel) else plan_model(model, route, cfg)
    speeds = np.broadcast_to(np.asarray(speed_kmh, float), (len(route.distance_m) - 1,)).copy()
    if not np.all(np.isfinite(speeds)) or speeds.min() <= 0:
        raise HRLSTMError("planned speeds must be positive")
    return _plan(pm, speeds, cfg)


def _limit(pm: PlanModel, tl: Timeline, safe: bool) -> torch.Tensor:
    hr = pm.predict_bpm(tl)
    offsets = pm.band_offsets_bpm(tl) if safe else None
    return hr if offsets is None else hr + torch.as_tensor(offsets[1])


def _largest_scale(pm: PlanModel, base: torch.Tensor, cfg: PlanConfig, lo: float, hi: float, steps: int = 20):
    """The largest s in [lo, hi] with base * s under the ceiling everywhere (None if none is).

    Scans down from hi on a coarse log grid, then bisects above the first s that holds: slower is not
    always lower for a model (a slower pace is a longer workout, with more drift), so a plain bisection
    over the whole range could stop at a slow pace that only looked safe."""

    def ok(s: float) -> bool:
        with torch.no_grad():
            return bool(_limit(pm, timeline(pm.route, base * s, pm.seq_len), cfg.safe).max() <= cfg.max_hr_bpm)

    grid = np.exp(np.linspace(math.log(hi), math.log(lo), 13))
    first = next((k for k, s in enumerate(grid) if ok(float(s))), None)
    if first is None or first == 0:
        return None if first is None else hi
    a, b = math.log(grid[first]), math.log(grid[first - 1])
    for _ in range(steps):
        mid = (a + b) / 2
        a, b = (mid, b) if ok(math.exp(mid)) else (a, mid)
    return math.exp(a)


def _need_ceiling(cfg: PlanConfig) -> float:
    if cfg.max_hr_bpm is None:
        raise HRLSTMError("a pace for a target needs a ceiling (--max-hr or --zone)")
    return cfg.max_hr_bpm


def even_pace(model: TrainedModel | PlanModel, route: Route, cfg: PlanConfig) -> Plan:
    """The fastest constant speed whose predicted heart rate (band's upper edge with `safe`) stays under the ceiling."""
    _need_ceiling(cfg)
    pm = model if isinstance(model, PlanModel) else plan_model(model, route, cfg)
    lo, hi = SPEED_RANGE_KMH[sport_family(cfg.sport)]
    ones = torch.ones(len(route.distance_m) - 1, dtype=torch.float64)
    speed = _largest_scale(pm, ones, cfg, lo, hi)
    if speed is None:
        peaks = {v: float(predict_plan(pm, route, v, cfg).limit_bpm.max()) for v in np.geomspace(lo, hi, 9)}
        best = min(peaks, key=peaks.get)
        raise HRLSTMError(
            f"ceiling {cfg.max_hr_bpm:g} BPM is out of reach on {route.name}: no even pace from {lo:g} to {hi:g} km/h "
            f"keeps the predicted heart rate under it (lowest peak {peaks[best]:.0f} BPM, at {best:.1f} km/h)"
        )
    plan = predict_plan(pm, route, speed, cfg)
    if speed == hi:
        plan.notes.append(f"the ceiling is not reached even at {hi:g} km/h, the fastest this sport's plans use")
    return plan


def _knots(route: Route, cfg: PlanConfig) -> torch.Tensor:
    """(stretches, knots) linear interpolation weights from knot values to each stretch's midpoint."""
    spacing = cfg.knot_m or float(np.clip(route.length_m / 40, 250, 1000)) * (
        4 if sport_family(cfg.sport) == "bike" else 1
    )
    n_knots = max(2, int(math.ceil(route.length_m / spacing)) + 1)
    at = np.linspace(0.0, route.length_m, n_knots)
    mid = (route.distance_m[1:] + route.distance_m[:-1]) / 2
    eye = np.eye(n_knots)
    return torch.as_tensor(np.stack([np.interp(mid, at, eye[k]) for k in range(n_knots)], axis=1))


def plan_for_ceiling(model: TrainedModel | PlanModel, route: Route, cfg: PlanConfig, even: Plan | None = None) -> Plan:
    """The fastest pace profile found whose predicted heart rate stays under the ceiling (see the module doc)."""
    ceiling = _need_ceiling(cfg)
    pm = model if isinstance(model, PlanModel) else plan_model(model, route, cfg)
    even = even or even_pace(pm, route, cfg)
    v0 = float(even.stretch_speed_kmh[0])
    lo, hi = SPEED_RANGE_KMH[sport_family(cfg.sport)]
    bound = math.log(cfg.max_speed_ratio)
    u_lo = max(-bound, math.log(lo / v0))
    u_hi = min(bound, math.log(hi / v0))
    weights = _knots(route, cfg)
    u = torch.zeros(weights.shape[1], dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.Adam([u], lr=cfg.lr)
    warm = None
    for it in range(cfg.iterations):
        penalty = 0.02 * 100.0 ** (it / max(cfg.iterations - 1, 1))  # per BPM^2 over: 0.02 -> 2
        tl = timeline(route, v0 * torch.exp(weights @ u), pm.seq_len)
        limit = _limit(pm, tl, cfg.safe)
        loss = tl.finish_s / even.finish_s + penalty * torch.relu(limit - (ceiling - 0.5)).pow(2).mean()
        if cfg.min_hr_bpm is not None:
            warm = tl.time_s >= cfg.warmup_min * 60 if warm is None else warm
            loss = loss + penalty * torch.relu(cfg.min_hr_bpm - limit[warm]).pow(2).mean()
        loss = loss + cfg.smoothness * (u[2:] - 2 * u[1:-1] + u[:-2]).pow(2).sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        with torch.no_grad():
            u.clamp_(u_lo, u_hi)
    shape = v0 * torch.exp(weights @ u.detach())
    scale = _largest_scale(pm, shape, cfg, 0.5, 1.0)
    plan = None if scale is None else predict_plan(pm, route, (shape * scale).numpy(), cfg)
    if plan is None or plan.finish_s >= even.finish_s:  # never slower than the even pace
        plan = predict_plan(pm, route, even.stretch_speed_kmh, cfg)
        plan.notes.append("no profile found was faster than the even pace")
    return plan

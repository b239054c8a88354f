"""A checkpoint reading a planned workout: a route plus a speed for each stretch of it, no recording.

`timeline` turns the speeds into what a recording would have been: a time axis (each 10 m stretch
takes its length over its speed), then the model's `seq_len` samples evenly over the whole
duration, as `hr-lstm import` resamples a recording, with the distance, speed and altitude at
each. `PlanModel` builds the checkpoint's inputs for it in torch, so the predicted heart rate is
differentiable in the speeds: the inputs that only depend on the workout (sport, gender, the
athlete's history) come from `features.build_inputs` once, the ones that change with the pace
(speed, altitude, time, grade, ...) are computed here the way `features.FEATURES` computes them
(tests/test_plan.py checks the two agree).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..data.features import FEATURES, with_history
from ..data.fitrec import CHANNELS
from ..data.route import Route
from ..data.workouts import WorkoutSet
from ..errors import HRLSTMError
from ..models.intervals import band_offsets
from ..training.trained import TrainedModel
from .predict import stored_history
from .workout_files import PLACEHOLDER_BPM

# Inputs that do not change with the pace: read once from the workout's meta and the athlete's history.
STATIC_INPUTS = {"gender", "sport", "sport_variant", "previous_workout", "days_since_first"}
ALTITUDE_INPUTS = {"altitude", "altitude_change", "grade"}


@dataclass
class Timeline:
    """A plan as the model samples it (tensors of seq_len, differentiable in the speeds)."""

    time_s: torch.Tensor
    distance_m: torch.Tensor
    speed_kmh: torch.Tensor
    altitude_m: torch.Tensor  # NaN throughout for a route without altitude
    finish_s: torch.Tensor  # scalar


def timeline(route: Route, stretch_speed_kmh: torch.Tensor, seq_len: int) -> Timeline:
    """`stretch_speed_kmh[i]`: the speed between route.distance_m[i] and [i + 1] (positive)."""
    d = torch.as_tensor(route.distance_m, dtype=torch.float64)
    length = d[1:] - d[:-1]
    v_ms = stretch_speed_kmh.to(torch.float64) / 3.6
    reached_s = torch.cat([d.new_zeros(1), torch.cumsum(length / v_ms, 0)])  # time at each route point
    finish = reached_s[-1]
    t = torch.linspace(0.0, 1.0, seq_len, dtype=torch.float64) * finish
    i = (torch.searchsorted(reached_s.detach(), t.detach(), right=True) - 1).clamp(0, len(length) - 1)
    distance = d[i] + (t - reached_s[i]) * v_ms[i]
    if route.altitude_m is None:
        altitude = torch.full_like(t, float("nan"))
    else:
        a = torch.as_tensor(route.altitude_m, dtype=torch.float64)
        altitude = a[i] + (distance - d[i]) / length[i] * (a[i + 1] - a[i])
    return Timeline(t, distance, stretch_speed_kmh.to(torch.float64)[i], altitude, finish)


def _step_change(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x.new_zeros(1), x[1:] - x[:-1]])


def _grade(tl: Timeline) -> torch.Tensor:  # as features.grade
    run_m = tl.speed_kmh / 3.6 * _step_change(tl.time_s)
    rise_m = _step_change(tl.altitude_m)
    slope = torch.where(run_m > 1.0, rise_m / run_m.clamp(min=1.0), torch.zeros_like(run_m))
    return slope.clamp(-0.3, 0.3)


DYNAMIC_INPUTS = {
    "speed": lambda tl: tl.speed_kmh,
    "derived_speed": lambda tl: tl.speed_kmh,  # a plan has no GPS: the two speeds are one
    "altitude": lambda tl: tl.altitude_m,
    "time_elapsed": lambda tl: tl.time_s / 60.0,
    "time_step": lambda tl: _step_change(tl.time_s).clamp(0, 600),
    "altitude_change": lambda tl: _step_change(tl.altitude_m),
    "grade": _grade,
}


def resolve_user(model: TrainedModel, user: str | None) -> str:
    """`user` (checked), else the personalised athlete of a personalised checkpoint, else the unknown user."""
    if user is not None:
        model.check_user(user)
        return user
    return str(model.personalisation.get("user", "unknown"))


class PlanModel:
    """A checkpoint set up to read plans on one route, for one athlete and sport."""

    def __init__(self, model: TrainedModel, route: Route, sport: str, user: str | None = None, gender=None):
        self.model, self.route, self.sport = model, route, sport
        self.seq_len = model.config.parse.seq_len
        self.user = resolve_user(model, user)
        self.gender = gender or model.personalisation.get("gender") or "unknown"
        self.users = model.users([self.user]) if model.has_embedding else model.users(["unknown"])
        for p in model.model.parameters():
            p.requires_grad_(False)
        model.model.eval()
        names = model.config.features.inputs
        unknown = [n for n in names if n not in STATIC_INPUTS and n not in DYNAMIC_INPUTS]
        if unknown:
            raise HRLSTMError(f"{model.path}: a plan cannot build the input(s) {', '.join(unknown)}")
        # Where each input sits among the model's columns, and its training statistics.
        template = self.workout_set(np.linspace(0, 3600, self.seq_len), np.full(self.seq_len, 10.0))
        self.columns, start = {}, 0
        for name in names:
            values = np.asarray(FEATURES[name].compute(template))
            width = 1 if values.ndim == 2 else values.shape[-1]
            self.columns[name] = slice(start, start + width)
            start += width
        self.static = model.inputs(template)[0].to(torch.float64)  # (seq_len, n_inputs)
        self.mean = torch.tensor(model.normalizer.mean, dtype=torch.float64)
        self.std = torch.tensor(model.normalizer.std, dtype=torch.float64)
        self.dynamic = [
            n for n in names if n in DYNAMIC_INPUTS and not (n in ALTITUDE_INPUTS and route.altitude_m is None)
        ]

    def workout_set(self, time_s, speed_kmh, altitude_m=None) -> WorkoutSet:
        """The plan as a one-workout WorkoutSet (what `hr-lstm predict` would build from such a recording)."""
        altitude_m = self.route.altitude_at(np.zeros(len(time_s))) if altitude_m is None else altitude_m
        series = np.zeros((1, self.seq_len, len(CHANNELS)), np.float32)
        for name, values in zip(
            ("time_s", "speed_kmh", "derived_speed_kmh", "altitude_m", "heart_rate_bpm"),
            (time_s, speed_kmh, speed_kmh, altitude_m, np.full(self.seq_len, PLACEHOLDER_BPM)),
        ):
            series[0, :, CHANNELS.index(name)] = values
        meta = pd.DataFrame(
            [dict(id="plan", user_id=self.user, sport=self.sport, gender=self.gender, start_time=int(time.time()))]
        )
        ws = WorkoutSet(series, meta, self.route.name, "")
        # The planned workout comes after every stored one: its previous workout is the athlete's latest.
        return with_history(ws, stored_history(self.model), measured=np.array([False]))

    def inputs(self, tl: Timeline) -> torch.Tensor:
        """(1, seq_len, n_inputs): the static columns as built once, the dynamic ones from the timeline."""
        x = self.static.clone()
        for name in self.dynamic:
            col = self.columns[name]
            x[:, col] = ((DYNAMIC_INPUTS[name](tl) - self.mean[col][0]) / self.std[col][0])[:, None]
        return x[None]

    def predict_bpm(self, tl: Timeline) -> torch.Tensor:
        """(seq_len,) predicted heart rate, differentiable in the timeline's speeds."""
        x = self.inputs(tl).to(self.model.device, torch.float32)
        return self.model.model(x, self.users.to(self.model.device))[0].to(torch.float64).cpu()

    def band_offsets_bpm(self, tl: Timeline) -> tuple[np.ndarray, np.ndarray] | None:
        """The checkpoint's calibrated band around the prediction at these times (None: it has none)."""
        fit = self.model.interval
        return None if fit is None else band_offsets(tl.time_s.detach().numpy(), fit, self.sport)

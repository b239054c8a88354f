"""The simulator's swappable laws, applied to one athlete (a row of the athletes table, `a`).

variants.py names the laws and draws each athlete's; here they act: `time_grid` (sampling:
when samples are taken, auto-pauses), `bike_setup` and `running_flat_speed` (speed to effort),
`effort_bpm` (effort to heart rate), `cardiac_drift` (drift and fatigue), `heart_rate`
(kinetics, over a batch of workouts) and `device_timestamps` / the scales read by sensors.py
(recording). Each default law is today's code, draw for draw, so the `default` variant writes
the same bytes as the simulator did before variants existed.
"""

from __future__ import annotations

import numpy as np

from .config import SimConfig
from .physiology import REFERENCE_RUN_M_PER_MIN, hr_kinetics, running_integral

BIKES = {"bike": (0.006, 0.5, 16.0), "mountain bike": (0.015, 0.55, 11.0)}  # Crr, CdA m2, top m/s


def time_grid(rng, a: dict, w: dict, cfg: SimConfig) -> tuple[np.ndarray, np.ndarray]:
    """(dt, pause): seconds of moving time before each sample (dt[0] = 0) and of auto-pause before it.

    uneven and gappy: jittered intervals with the odd long one (more and longer in gappy, which
    also auto-pauses more often); regular: one fixed interval for the whole workout."""
    n = cfg.seq_len
    pause = np.zeros(n)
    at = rng.integers(5, n, rng.poisson(a["pauses_per_workout"]))
    pause[at] = np.round(np.exp(rng.uniform(np.log(30), np.log(600), at.size)))  # mostly short
    lo, hi = cfg.duration_min
    dur = float(np.clip(w["moving_s"], lo * 60, max(hi * 60 - pause.sum(), lo * 60)))
    if a["sampling_law"] == "regular":
        dt = np.full(n, max(1.0, np.round(dur / (n - 1))))
    else:
        dt = dur / (n - 1) * rng.lognormal(0, 0.25, n)
        slow = rng.random(n) < a["slow_sample_share"]  # the odd long sampling interval
        dt[slow] *= rng.uniform(*((5, 20) if a["sampling_law"] == "gappy" else (3, 8)), slow.sum())
        dt *= dur / dt[1:].sum()
        dt = np.maximum(1.0, np.round(dt))
    dt[0] = 0.0
    return dt, pause


def bike_setup(sport: str, a: dict) -> tuple[float, float, float, float]:
    """(Crr, CdA m2, top speed m/s, rider + bike mass kg) of the athlete's bike for `sport`."""
    crr, cda, top = BIKES[sport]
    return crr, cda * a["drag_factor"], top, a["mass_kg"] + 10.0 + a["bike_extra_kg"]


def running_flat_speed(net_vo2, a: dict):
    """Flat running speed (m/s, at least 70 m/min) that costs `net_vo2` mL/kg/min above rest.

    ACSM: net = 0.2 economy v; with a curvilinear cost (cost_exponent q > 0) the cost per metre
    grows as (v / 12 km/h)^q, so v = 12 km/h (v_acsm / 12 km/h)^(1 / (1 + q))."""
    v = net_vo2 / (0.2 * a["economy"])
    if a["cost_exponent"]:
        ref = REFERENCE_RUN_M_PER_MIN
        v = ref * (np.maximum(v, 0.0) / ref) ** (1 / (1 + a["cost_exponent"]))
    return np.maximum(v, 70.0) / 60.0


def effort_bpm(a: dict, frac, hr_rest):
    """Steady-state heart rate for an effort `frac` (fraction of VO2 reserve, in [0, 1]).

    linear: %HR reserve = %VO2 reserve; saturating: a concave curve, 1 - exp(-k frac) scaled to
    reach HRmax, flattening toward it; offset_gain: linear with the athlete's offset and gain."""
    law = a["effort_curve"]
    if law == "saturating":
        k = a["effort_curvature"]
        frac = (1 - np.exp(-k * frac)) / (1 - np.exp(-k))
    elif law == "offset_gain":
        frac = np.clip(a["effort_offset"] + a["effort_gain"] * frac, 0.0, 1.0)
    return hr_rest + (a["hr_max"] - hr_rest) * frac


def cardiac_drift(a: dict, frac, t, step):
    """Heart rate (bpm) added by drift on the fine grid `t`, from the effort `frac` along it.

    Load: the effort relative to a steady 70% of VO2max (at most 1.5). linear: drift_bpm_per_hour
    per hour of load after the first 10 minutes (docs/physiology.md, "5. Cardiac drift"); fatigue:
    drift_bpm_per_hour x (hours of load)^drift_exponent from the start, accelerating in long
    sessions; none: no drift."""
    law = a["drift_law"]
    if law == "none":
        return np.zeros_like(t)
    load = np.clip(frac / 0.7, 0, 1.5)
    if law == "fatigue":
        return a["drift_bpm_per_hour"] * (running_integral(load, step) / 3600) ** a["drift_exponent"]
    return a["drift_bpm_per_hour"] / 3600 * running_integral(np.where(t > 600, load, 0.0), step)


def heart_rate(athletes: list[dict], demand, dt, hr0, pause, rest):
    """Noise-free heart rate of a batch of workouts (rows), each following its athlete's kinetics.

    All rows first go through one first-order stage (tau_on_s / tau_off_s), which is the whole
    law for first_order, fast, slow and symmetric. second_order feeds that stage's mean over each
    interval through a second, identical stage (an S-shaped rise); two_component mixes it, as the
    slow sympathetic part, with a fast vagal one (fast_tau_s) taking fast_share of every change."""
    col = lambda key: np.array([a[key] for a in athletes])  # noqa: E731
    law, tau_on, tau_off = col("kinetics_law"), col("tau_on_s"), col("tau_off_s")
    hr = hr_kinetics(demand, dt, hr0, tau_on, tau_off, pause, rest)
    two = law == "second_order"
    if two.any():
        first = hr[two]
        mean = np.concatenate([first[:, :1], (first[:, 1:] + first[:, :-1]) / 2], axis=1)
        hr[two] = hr_kinetics(mean, dt[two], hr0[two], tau_on[two], tau_off[two], pause[two], rest[two])
    mix = law == "two_component"
    if mix.any():
        tau = col("fast_tau_s")[mix]
        fast = hr_kinetics(demand[mix], dt[mix], hr0[mix], tau, tau, pause[mix], rest[mix])
        share = col("fast_share")[mix, None]
        hr[mix] = share * fast + (1 - share) * hr[mix]
    return hr


def device_timestamps(rng, a: dict, timestamp: np.ndarray) -> np.ndarray:
    """The timestamps the device writes: under fitrec_quirks a share of samples (repeat_share)
    repeats the previous sample's second, as some records of the public file do."""
    if not a["repeat_share"]:
        return timestamp
    repeat = np.flatnonzero(rng.random(timestamp.size - 1) < a["repeat_share"]) + 1
    written = timestamp.copy()
    written[repeat] = timestamp[repeat - 1]
    return written

"""Simulated FitRec/Endomondo workouts: the project's default, download-free data.

Each athlete has true physiology (resting and maximum heart rate, VO2max, on/off
time constants, cardiac drift, running economy). Each workout follows a session
plan (warm-up, steady / intervals / hill / recovery / long, cool-down) over a random
terrain with stops; the workload (ACSM running and walking VO2, cycling power) sets a
demand heart rate that the heart follows with first-order kinetics; then sensors
record it with noise, GPS error, auto-pause gaps and chest-strap artefacts.
Output: one Python dict literal per line, gzipped, like the public file, plus
sidecars holding the noise-free heart rate and the athletes' true parameters.
Facts used: docs CONTEXT.md sections 2 and 4.
"""

from __future__ import annotations

import gzip
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from ..errors import DataError, HRLSTMError

EARTH_RADIUS_M = 6_371_008.8
CHUNK_USERS = 16  # athletes whose workouts go through the kinetics loop together
ARTEFACT_KINDS = ("none", "cadence_lock", "dropout_spikes", "broken")
SPORTS = ("run", "bike", "mountain bike", "walk")
# Home towns: latitude, longitude, altitude (m), typical hill amplitude (m).
CITIES = ((55.676, 12.568, 10, 6), (52.370, 4.895, 2, 3), (40.417, -3.704, 660, 25),
          (41.387, 2.170, 40, 30), (59.913, 10.752, 20, 35), (59.329, 18.069, 25, 15),
          (48.137, 11.575, 520, 12), (47.377, 8.540, 410, 40), (51.507, -0.128, 20, 10),
          (40.713, -74.006, 10, 12), (39.739, -104.990, 1610, 30), (37.775, -122.419, 20, 45),
          (-33.869, 151.209, 30, 20))
SESSIONS = {"run": {"steady": .4, "long": .2, "intervals": .15, "recovery": .15, "hill": .1},
            "bike": {"steady": .45, "long": .2, "intervals": .1, "recovery": .1, "hill": .15},
            "mountain bike": {"steady": .4, "hill": .4, "long": .2},
            "walk": {"steady": .6, "hill": .2, "recovery": .2}}
MAIN_INTENSITY = {"recovery": (.50, .60), "steady": (.65, .80), "long": (.60, .72),
                  "hill": (.62, .75), "intervals": (.45, .55)}  # fraction of VO2max
MOVING_MIN = {"run": (25, 55), "walk": (25, 80), "bike": (40, 100), "mountain bike": (40, 100)}
KIND_SCALE = {"recovery": .7, "steady": 1.0, "intervals": 1.0, "hill": 1.0, "long": 1.6}
BIKES = {"bike": (0.006, 0.5, 16.0), "mountain bike": (0.015, 0.55, 11.0)}  # Crr, CdA m2, top m/s


@dataclass
class SimConfig:
    n_users: int = 50
    seed: int = 0
    seq_len: int = 500  # FitRec's points per workout
    min_workouts: int = 12  # per athlete; FitRec's split keeps users with >= 10
    max_workouts: int = 40
    sport_mix: dict[str, float] = field(  # athletes' main sports: Endomondo is mostly runs and rides
        default_factory=lambda: {"run": .55, "bike": .35, "mountain bike": .05, "walk": .05})
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


@dataclass
class SimSummary:
    n_users: int
    n_workouts: int
    path: Path
    seconds: float


@dataclass
class SimTruth:
    ids: np.ndarray  # int64 (n,), workout ids in file order
    user_ids: np.ndarray  # int64 (n,)
    heart_rate_clean_bpm: np.ndarray  # float32 (n, seq_len): before sensor noise and artefacts
    artefact_kind: np.ndarray  # int8 (n,), index into ARTEFACT_KINDS
    athletes: pd.DataFrame  # one row per athlete, true parameters


def sidecar_paths(data_path) -> tuple[Path, Path]:
    """(truth .npz, athletes .csv) next to the data: /tmp/s.json.gz -> /tmp/s.truth.npz, /tmp/s.athletes.csv."""
    p = Path(data_path)
    name = p.name
    for suffix in (".gz", ".json"):
        name = name[: -len(suffix)] if name.endswith(suffix) else name
    return p.with_name(name + ".truth.npz"), p.with_name(name + ".athletes.csv")


def load_truth(data_path) -> SimTruth | None:
    """The simulator's ground truth for a data file, or None when it has no sidecars."""
    npz, csv = sidecar_paths(data_path)
    if not (npz.exists() and csv.exists()):
        return None
    try:
        with np.load(npz) as z:
            arrays = {k: z[k] for k in ("id", "userId", "heart_rate_clean_bpm", "artefact_kind")}
        athletes = pd.read_csv(csv)
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{npz}: unreadable simulator truth sidecar ({exc})") from None
    return SimTruth(arrays["id"], arrays["userId"], arrays["heart_rate_clean_bpm"], arrays["artefact_kind"],
                    athletes)


# ---- physiology: workload, demand, kinetics --------------------------------------------------

def acsm_vo2(speed_ms, grade, walking=False, economy=1.0):
    """ACSM running/walking VO2 (mL/kg/min); downhill grade counts 40%, never below 60% of flat cost."""
    v, g = np.asarray(speed_ms, float) * 60.0, np.asarray(grade, float)
    horizontal, vertical = (0.1, 1.8) if walking else (0.2, 0.9)
    flat = horizontal * v
    return 3.5 + economy * np.maximum(flat + vertical * v * np.where(g > 0, g, 0.4 * g), 0.6 * flat)


def cycling_power_w(speed_ms, grade, mass_kg, crr=0.005, cda_m2=0.45):
    """Power (W) to hold a speed: rolling + climbing + air drag (rho 1.2)."""
    v = np.asarray(speed_ms, float)
    return 9.81 * mass_kg * (crr + np.asarray(grade, float)) * v + 0.6 * cda_m2 * v**3


def cycling_speed_ms(power_w, grade, mass_kg, crr=0.005, cda_m2=0.45):
    """Inverse of cycling_power_w: Newton from an upper bound (the cubic is convex there)."""
    k, a = 0.6 * cda_m2, 9.81 * mass_kg * (crr + np.asarray(grade, float))
    p = np.maximum(np.asarray(power_w, float), 0.0)
    v = np.cbrt(p / k) + np.sqrt(np.maximum(-a, 0.0) / k)
    for _ in range(5):
        v = v - (k * v**3 + a * v - p) / (3 * k * v**2 + a + 1e-9)
    return np.maximum(v, 0.0)


def cycling_vo2(power_w, mass_kg):
    """ACSM leg cycling: VO2 = 10.8 W / kg + 7 (mL/kg/min)."""
    return 10.8 * np.maximum(power_w, 0.0) / mass_kg + 7.0


def demand_bpm(vo2, vo2max, hr_rest, hr_max):
    """Steady-state heart rate for a VO2: %HR reserve = %VO2 reserve."""
    return hr_rest + (hr_max - hr_rest) * np.clip((np.asarray(vo2) - 3.5) / (vo2max - 3.5), 0.0, 1.0)


def hr_kinetics(demand_bpm, dt_s, hr0_bpm, tau_on_s, tau_off_s, pause_s=None, rest_bpm=None):
    """Heart rate at each sample, first order toward the demand.

    demand_bpm[..., k] is the mean demand over the interval ending at sample k and dt_s[..., k]
    its length (index 0 unused). Each step is the exact solution HR = D + (HR - D) exp(-dt/tau),
    tau_on while rising and tau_off while falling, so any dt is stable. pause_s[..., k] seconds of
    auto-pause precede interval k, during which HR relaxes toward rest_bpm with tau_off.
    Accepts one workout (1-D) or a batch (rows); the taus and hr0 are scalars or one per row.
    """
    d = np.asarray(demand_bpm, float)
    single = d.ndim == 1
    d = np.atleast_2d(d)
    n, length = d.shape
    row = lambda x: np.broadcast_to(np.asarray(x, float), (n,))[:, None]  # noqa: E731
    dt = np.broadcast_to(np.asarray(dt_s, float), d.shape)
    e_on, e_off = np.exp(-dt / row(tau_on_s)), np.exp(-dt / row(tau_off_s))
    if pause_s is not None:
        e_pause = np.exp(-np.broadcast_to(np.asarray(pause_s, float), d.shape) / row(tau_off_s))
        rest = row(rest_bpm)[:, 0]
    hr = np.empty_like(d)
    h = hr[:, 0] = row(hr0_bpm)[:, 0]
    for k in range(1, length):
        if pause_s is not None:
            h = rest + (h - rest) * e_pause[:, k]
        target = d[:, k]
        h = target + (h - target) * np.where(target > h, e_on[:, k], e_off[:, k])
        hr[:, k] = h
    return hr[0] if single else hr


# ---- athletes and session plans --------------------------------------------------------------

def _athletes(rng, cfg: SimConfig) -> pd.DataFrame:
    n = cfg.n_users
    gender = rng.choice(np.array(["male", "female", "unknown"]), n, p=[0.70, 0.28, 0.02])
    female = np.where(gender == "unknown", rng.random(n) < 0.3, gender == "female")
    age = np.round(18 + 47 * rng.beta(1.8, 2.6, n)).astype(int)
    fit = rng.normal(size=n)  # fitness z-score: drives VO2max up and resting HR down
    vo2max = np.where(female, 44 - 0.30 * (age - 30) + 6 * fit, 52 - 0.35 * (age - 30) + 7 * fit)  # active people
    tau_on = np.clip(rng.normal(57.6, 20.0, n), 20.0, 120.0)
    city = rng.integers(len(CITIES), size=n)
    sports, missing = list(cfg.sport_mix), cfg.speed_missing_fraction
    df = pd.DataFrame({
        "userId": rng.choice(20_000_000, n, replace=False) + 100_000,
        "gender": gender, "physiology_sex": np.where(female, "female", "male"), "age": age,
        "mass_kg": np.where(female, rng.normal(62, 7, n), rng.normal(77, 9, n)).clip(45, 120).round(1),
        "hr_rest": np.clip(62 - 5 * fit + 3 * female + rng.normal(0, 4, n), 45, 85).round(1),
        "hr_max": (208 - 0.7 * age + rng.normal(0, 7, n)).round(1),
        "vo2max": np.clip(vo2max, 28, 78).round(1),
        "vo2max_gain_frac": rng.uniform(0.0, 0.08, n).round(3),  # improvement over the history
        "tau_on_s": tau_on.round(1), "tau_off_s": (tau_on * rng.uniform(1.2, 1.8, n)).round(1),
        "drift_bpm_per_hour": rng.uniform(2.0, 15.0, n).round(2),
        "economy": np.clip(rng.normal(1.0, 0.1, n), 0.8, 1.25).round(3),  # O2 cost multiplier
        "main_sport": rng.choice(sports, n, p=_probs(cfg.sport_mix)),
        "city": city, "home_lat": np.array([CITIES[c][0] for c in city]) + rng.normal(0, 0.03, n),
        "home_lon": np.array([CITIES[c][1] for c in city]) + rng.normal(0, 0.03, n),
        "hilliness_m": np.array([CITIES[c][3] for c in city]) * rng.lognormal(0, 0.4, n),
        "speed_missing_prob": rng.beta(4 * missing + 1e-9, 4 * (1 - missing) + 1e-9, n),  # per device
    })
    # Running gain on the flat, bpm per m/s (CONTEXT: 24.2 +- 8.3).
    df["gain_bpm_per_mps"] = ((df.hr_max - df.hr_rest) / (df.vo2max - 3.5) * 12 * df.economy).round(2)
    return df


def _probs(mix: dict) -> np.ndarray:
    p = np.array(list(mix.values()), float)
    return p / p.sum()


def _plan(rng, a: dict, cfg: SimConfig, t0: float) -> list[dict]:
    """The athlete's workouts in time order: start, sport, session type, moving time, route."""
    n = int(rng.integers(cfg.min_workouts, cfg.max_workouts + 1))
    span_days = rng.uniform(*cfg.history_months) * 30.44
    first = t0 + rng.uniform(0, 365) * 86400
    starts = np.sort(first + np.floor(rng.uniform(0, span_days, n)) * 86400 + rng.uniform(6, 20, n) * 3600)
    sports = np.where(rng.random(n) < cfg.main_sport_share, a["main_sport"],
                      rng.choice(list(cfg.sport_mix), n, p=_probs(cfg.sport_mix)))
    spots = np.array([a["home_lat"], a["home_lon"]]) + rng.normal(0, 0.012, (3, 2))  # a few start points
    plan = []
    for i, sport in enumerate(sports):
        kind = str(rng.choice(list(SESSIONS[sport]), p=_probs(SESSIONS[sport])))
        moving_s = rng.uniform(*MOVING_MIN[sport]) * KIND_SCALE[kind] * 60
        if i:  # never overlap the previous workout
            starts[i] = max(starts[i], plan[-1]["start"] + 2 * plan[-1]["moving_s"] + 3600)
        hill = a["hilliness_m"] * rng.lognormal(0, 0.5) * (2.5 if kind == "hill" else 1)
        hill *= 2 if sport == "mountain bike" else 1
        spot = spots[rng.choice(3, p=[0.6, 0.3, 0.1])]
        plan.append(dict(start=int(starts[i]), sport=str(sport), kind=kind, moving_s=moving_s,
                         hill_m=min(hill, 150.0),
                         lat0=spot[0], lon0=spot[1], alt0=CITIES[a["city"]][2] + rng.normal(0, 15),
                         form_bpm=rng.normal(0, 3), walk_ms=rng.uniform(4.3, 6.0) / 3.6,
                         no_speed=bool(rng.random() < a["speed_missing_prob"])))
    span = max(plan[-1]["start"] - plan[0]["start"], 1)
    for w in plan:
        w["hist_frac"] = (w["start"] - plan[0]["start"]) / span
    return plan


# ---- one workout: time grid, terrain, speed, workload, demand, route -------------------------

def _smooth(x, sd_s, step):
    sd = sd_s / step
    r = int(3 * sd) + 1
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sd) ** 2)
    return np.convolve(np.pad(x, r, mode="edge"), k / k.sum(), mode="valid")


def _cum(x, step):  # running integral over the fine grid (left rectangles)
    return np.concatenate(([0.0], np.cumsum(x[:-1]) * step))


def _intensity(rng, kind, t, dur, step):
    """Planned fraction of VO2max over moving time: warm-up ramp, main set, cool-down."""
    warm, cool = min(600.0, 0.12 * dur), min(480.0, 0.08 * dur)
    level = np.full(t.shape, rng.uniform(*MAIN_INTENSITY[kind]))
    if kind == "intervals":
        work, rest = rng.uniform(60, 300), rng.uniform(60, 180)
        level[(t >= warm) & ((t - warm) % (work + rest) < work)] = rng.uniform(0.92, 1.03)
    knots = np.arange(0.0, dur + 240.0, 120.0)
    level = level + np.interp(t, knots, rng.normal(0, 0.03, knots.size))  # pacing wander
    easy = 0.45 + rng.normal(0, 0.02)
    level = np.where(t > dur - cool, easy, easy + (level - easy) * np.clip(t / warm, 0, 1))
    return _smooth(level, 6.0, step)


def _motion(sport, level, climb, a, w, vo2max):
    """Speed (m/s), grade and VO2 that hold a planned intensity while climbing `climb` m/s: slower uphill."""
    if sport in BIKES:  # riders push harder uphill and ease off downhill
        crr, cda, top = BIKES[sport]
        mass = a["mass_kg"] + 10.0
        plan = np.maximum((level * vo2max - 7.0) * a["mass_kg"] / 10.8, 20.0)
        v_typ = np.median(cycling_speed_ms(plan, 0.0, mass, crr, cda))
        power = plan * np.clip(1 + 4 * climb / v_typ, 0.0, 1.5) - 9.81 * mass * climb  # left after climbing
        v = np.minimum(cycling_speed_ms(np.maximum(power, 5.0), 0.0, mass, crr, cda), top)  # brakes when fast
        grade = np.clip(climb / np.maximum(v, 0.3), -0.2, 0.2)
        return v, grade, cycling_vo2(cycling_power_w(v, grade, mass, crr, cda), a["mass_kg"])
    else:  # v = v_flat (1 - up * grade) uphill, (1 + down * |grade|) downhill, with grade = climb / v
        if sport == "walk":
            v_flat, up, down = w["walk_ms"] * level / np.median(level), 2.0, 0.3
        else:
            v_flat, up, down = np.maximum((level * vo2max - 3.5) / (0.2 * a["economy"]), 70.0) / 60.0, 2.5, 0.8
        k = np.where(climb > 0, up, down)
        v = 0.5 * (v_flat + np.sqrt(np.maximum(v_flat**2 - 4 * k * v_flat * climb, 0.0)))
    grade = np.clip(climb / np.maximum(v, 0.3), -0.2, 0.2)
    return v, grade, acsm_vo2(v, grade, sport == "walk", a["economy"])


def _climb(rng, hill_m, t, v_typ, cap):
    """Climb rate (m/s) over moving time: hills 500-6000 m long at the typical speed, all about as steep.

    Saturates smoothly (tanh, odd so climbs and descents match) at `cap`, the fastest climb the athlete
    can hold at the planned effort: climbs stay feasible, so the altitude does not drift."""
    wavelength = np.exp(rng.uniform(np.log(500), np.log(6000), 4))
    steepness = 2 * np.pi * hill_m / wavelength.sum()  # heights ~ wavelength, so each wave's peak grade
    angle = np.outer(t, 2 * np.pi * v_typ / wavelength) + rng.uniform(0, 2 * np.pi, 4)
    return cap * np.tanh(np.cos(angle).sum(1) * min(steepness, 0.2) * v_typ / cap)


def _signals(rng, a: dict, w: dict, cfg: SimConfig) -> dict:
    """The true workout at the recorded samples: time steps, pauses, demand, speed, route, altitude."""
    n = cfg.seq_len
    pause = np.zeros(n)
    at = rng.integers(5, n, rng.poisson(cfg.pauses_per_workout))
    pause[at] = np.round(np.exp(rng.uniform(np.log(30), np.log(600), at.size)))  # mostly short
    lo, hi = cfg.duration_min
    dur = float(np.clip(w["moving_s"], lo * 60, max(hi * 60 - pause.sum(), lo * 60)))
    dt = dur / (n - 1) * rng.lognormal(0, 0.25, n)
    slow = rng.random(n) < 0.02  # the odd long sampling interval
    dt[slow] *= rng.uniform(3, 8, slow.sum())
    dt *= dur / dt[1:].sum()
    dt = np.maximum(1.0, np.round(dt))
    dt[0] = 0.0
    m = np.cumsum(dt)  # moving time of each sample
    step = float(np.clip(m[-1] / n / 2, 1.0, 4.0))  # fine grid: about two points per sample
    t = np.arange(0.0, m[-1] + 2 * step, step)
    level = _intensity(rng, w["kind"], t, m[-1], step)
    moving = np.ones_like(t)
    for s, length in zip(rng.uniform(0, m[-1], rng.poisson(cfg.stops_per_workout)), rng.uniform(10, 120, 8)):
        moving[(t >= s) & (t < s + length)] = 0.0
    moving = _smooth(moving, 3.0, step)

    vo2max = a["vo2max"] * (1 + a["vo2max_gain_frac"] * w["hist_frac"])  # fitter later on
    vo2max *= 0.93 if w["sport"] in BIKES else 1.0  # cycling peak VO2 sits below running's
    v_typ = np.median(_motion(w["sport"], level, np.zeros_like(t), a, w, vo2max)[0])
    if w["sport"] in BIKES:  # climbing may take at most 80% of the typical power
        mass = a["mass_kg"] + 10.0
        cap = 0.8 * cycling_power_w(v_typ, 0.0, mass, *BIKES[w["sport"]][:2]) / (9.81 * mass)
    else:  # the uphill speed law has a solution
        cap = 0.8 * v_typ / (4 * (2.0 if w["sport"] == "walk" else 2.5))
    v, grade, vo2 = _motion(w["sport"], level, _climb(rng, w["hill_m"], t, v_typ, cap), a, w, vo2max)
    v, vo2 = v * moving, moving * vo2 + (1 - moving) * 4.0  # standing still at stops
    dist = _cum(v, step)
    altitude = w["alt0"] + _cum(v * grade, step)  # climbed = grade x distance, so the two agree

    hr_rest = a["hr_rest"] - 3 * w["hist_frac"] * a["vo2max_gain_frac"] / 0.08
    frac = np.clip((vo2 - 3.5) / (vo2max - 3.5), 0, 1)
    drift = a["drift_bpm_per_hour"] / 3600 * _cum(np.where(t > 600, np.clip(frac / 0.7, 0, 1.5), 0.0), step)
    demand = np.clip(demand_bpm(vo2, vo2max, hr_rest, a["hr_max"]) + drift + w["form_bpm"], hr_rest, a["hr_max"])

    knots = np.arange(0.0, t[-1] + 480.0, 240.0)
    bearing = np.interp(t, knots, rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.7, knots.size)))
    at_samples = lambda x: np.interp(m, t, _cum(x, step))  # noqa: E731  integral up to each sample
    mean_demand = np.diff(at_samples(demand), prepend=0.0) / np.maximum(dt, 1.0)  # over each interval
    mean_demand[0] = demand[0]
    mean_speed = np.diff(np.interp(m, t, dist), prepend=0.0) / np.maximum(dt, 1.0)
    return dict(dt=dt, pause=pause, m=m, demand=mean_demand, speed_ms=mean_speed,
                x=at_samples(v * np.sin(bearing)), y=at_samples(v * np.cos(bearing)),
                altitude=np.interp(m, t, altitude), hr0=hr_rest + rng.uniform(5, 25), hr_rest=hr_rest)


# ---- sensors and the record ------------------------------------------------------------------

def _ar_noise(rng, sd, rho, n):
    """Correlated (AR(1)) noise with stationary SD `sd`: GPS and barometer errors drift slowly."""
    xi = rng.normal(0, sd, n)
    xi[0] /= np.sqrt(1 - rho**2)
    return lfilter([np.sqrt(1 - rho**2)], [1.0, -rho], xi)


def _record(rng, a: dict, w: dict, s: dict, hr_clean, cfg: SimConfig) -> tuple[dict, int]:
    n = cfg.seq_len
    hr = hr_clean + rng.normal(0, rng.uniform(*cfg.hr_noise_bpm), n)
    u, kind = rng.random(), 0
    if u < cfg.broken_fraction:
        kind, bad = 3, rng.random(n) < rng.uniform(0.3, 0.8)
        hr[bad] = rng.uniform(232, 255, bad.sum()) if rng.random() < 0.5 else rng.uniform(0, 28, bad.sum())
    elif u < cfg.broken_fraction + cfg.artefact_fraction:
        length = min(int(rng.integers(20, 120)), n // 2)
        at = int(rng.integers(0, n - length))
        if w["sport"] == "run":  # the strap locks onto running cadence
            kind = 1
            cadence = rng.uniform(160, 180) + np.cumsum(rng.normal(0, 0.3, length))
            hr[at:at + length] = cadence + rng.normal(0, 1.5, length)
        else:  # dry strap reads low, plus a few spikes
            kind, spikes = 2, rng.integers(0, n, rng.integers(1, 6))
            hr[at:at + length] = hr[at] * rng.uniform(0.4, 0.7) + rng.normal(0, 2, length)
            hr[spikes] += rng.uniform(30, 80, spikes.size)
    rho = np.exp(-max(s["m"][-1] / n, 1.0) / 60.0)  # errors decorrelate over about a minute
    gps_sd = rng.uniform(*cfg.gps_noise_m)
    north, east = s["y"] + _ar_noise(rng, gps_sd, rho, n), s["x"] + _ar_noise(rng, gps_sd, rho, n)
    lat = w["lat0"] + np.degrees(north / EARTH_RADIUS_M)
    lon = w["lon0"] + np.degrees(east / (EARTH_RADIUS_M * np.cos(np.radians(w["lat0"]))))
    altitude = s["altitude"] + rng.normal(0, 10) + _ar_noise(rng, cfg.altitude_noise_m, rho, n)
    speed = np.maximum(s["speed_ms"] * 3.6 * (1 + rng.normal(0, 0.02, n)) + rng.normal(0, 0.05, n), 0.0)
    record = {
        "altitude": np.round(altitude, 1).tolist(), "gender": a["gender"],
        "heart_rate": np.clip(np.rint(hr), 0, 255).astype(np.int64).tolist(), "id": w["id"],
        "latitude": np.round(lat, 6).tolist(), "longitude": np.round(lon, 6).tolist(),
        "speed": np.round(speed, 4).tolist(), "sport": w["sport"],
        "timestamp": (w["start"] + s["m"] + np.cumsum(s["pause"])).astype(np.int64).tolist(),
        "url": f"https://www.endomondo.com/users/{a['userId']}/workouts/{w['id']}", "userId": int(a["userId"]),
    }
    if w["no_speed"]:
        del record["speed"]
    return record, kind


# ---- driver ---------------------------------------------------------------------------------------

def _validate(cfg: SimConfig) -> None:
    mix = cfg.sport_mix
    checks = [(cfg.n_users >= 1, f"n_users (--users) must be at least 1, got {cfg.n_users}"),
              (1 <= cfg.min_workouts <= cfg.max_workouts,
               f"need 1 <= min_workouts <= max_workouts, got {cfg.min_workouts} and {cfg.max_workouts}"),
              (cfg.seq_len >= 10, f"seq_len must be at least 10, got {cfg.seq_len}"),
              (cfg.seed >= 0, f"seed must be >= 0, got {cfg.seed}"),
              (0 < cfg.history_months[0] <= cfg.history_months[1],
               f"history_months must be 0 < low <= high, got {cfg.history_months}"),
              (1 <= cfg.duration_min[0] <= cfg.duration_min[1],
               f"duration_min must be 1 <= low <= high, got {cfg.duration_min}"),
              (bool(mix) and set(mix) <= set(SPORTS) and min(mix.values()) >= 0 < sum(mix.values()),
               f"sport_mix must weight sports among {SPORTS}, got {mix}")]
    checks += [(0 <= getattr(cfg, k) <= 1, f"{k} must be within [0, 1], got {getattr(cfg, k)}")
               for k in ("speed_missing_fraction", "main_sport_share", "artefact_fraction", "broken_fraction")]
    problems = [message for ok, message in checks if not ok]
    if problems:
        raise HRLSTMError("invalid simulator settings: " + "; ".join(problems))


def simulate(config: SimConfig, out_path) -> SimSummary:
    """Write simulated workouts to out_path (gzipped dict literals) and the truth sidecars, atomically."""
    started = time.perf_counter()
    cfg = config
    _validate(cfg)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    finals = (out, *sidecar_paths(out))
    seeds = np.random.SeedSequence(cfg.seed).spawn(cfg.n_users + 1)
    rng = np.random.default_rng(seeds[0])
    athletes = _athletes(rng, cfg)
    people = athletes.to_dict("records")
    rngs = [np.random.default_rng(s) for s in seeds[1:]]
    t0 = datetime.fromisoformat(cfg.start_date).replace(tzinfo=timezone.utc).timestamp()
    plans = [_plan(r, a, cfg, t0) for r, a in zip(rngs, people)]
    athletes["n_workouts"] = [len(p) for p in plans]
    workouts = [w for p in plans for w in p]
    order = np.argsort([w["start"] for w in workouts], kind="stable")  # ids grow with time, as on Endomondo
    ids = 300_000_000 + np.cumsum(rng.integers(1, 5000, len(workouts)))
    for rank, j in enumerate(order):
        workouts[j]["id"] = int(ids[rank])

    temps = [p.with_name(f".{p.name}.{os.getpid()}.tmp") for p in finals]  # same folder: os.replace is atomic
    try:
        clean, kinds = [], []
        # No file name and mtime 0 in the gzip header: the same seed gives the same bytes anywhere.
        with open(temps[0], "wb") as raw, gzip.GzipFile("", "wb", 4, raw, mtime=0) as gz:
            for lo in range(0, cfg.n_users, CHUNK_USERS):
                jobs = [(i, w) for i in range(lo, min(lo + CHUNK_USERS, cfg.n_users)) for w in plans[i]]
                sig = [_signals(rngs[i], people[i], w, cfg) for i, w in jobs]
                col = lambda key: np.array([s[key] for s in sig])  # noqa: E731
                tau = lambda key: np.array([people[i][key] for i, _ in jobs])  # noqa: E731
                hr = hr_kinetics(col("demand"), col("dt"), col("hr0"), tau("tau_on_s"), tau("tau_off_s"),
                                 col("pause"), col("hr_rest") + 10.0)
                for (i, w), s, h in zip(jobs, sig, hr):
                    record, kind = _record(rngs[i], people[i], w, s, h, cfg)
                    gz.write(str(record).encode() + b"\n")
                    kinds.append(kind)
                clean.append(hr.astype(np.float32))
        file_ids = np.array([w["id"] for p in plans for w in p], np.int64)
        user_ids = np.concatenate([np.full(len(p), a["userId"], np.int64) for p, a in zip(plans, people)])
        with open(temps[1], "wb") as fh:
            np.savez(fh, id=file_ids, userId=user_ids, heart_rate_clean_bpm=np.concatenate(clean),
                     artefact_kind=np.array(kinds, np.int8))
        athletes.to_csv(temps[2], index=False)
        for temp, final in zip(temps[::-1], finals[::-1]):  # data last: it is what readers look for
            os.replace(temp, final)
    finally:
        for temp in temps:
            temp.unlink(missing_ok=True)
    return SimSummary(cfg.n_users, len(workouts), out, time.perf_counter() - started)

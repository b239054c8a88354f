"""Athletes, their session plans and one workout's true signals. `draw_athletes` gives each
athlete true physiology (resting and maximum heart rate, VO2max, on/off time constants, cardiac
drift, running economy) and a home town; `plan_workouts` lays out their history (sport, session
type, moving time, route); `workout_signals` turns one planned session (warm-up, main set,
cool-down over hilly terrain with stops) into speed, route, altitude and the demand heart rate
at the recorded samples, using the workload laws of physiology.py and the athlete's own laws
(laws.py: sampling, cost of speed, effort curve, drift). Nothing here is measured yet: sensors.py
adds the recording's errors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .config import SimConfig
from .laws import BIKES, bike_setup, cardiac_drift, effort_bpm, running_flat_speed, time_grid
from .physiology import (
    acsm_vo2,
    cycling_power_w,
    cycling_speed_ms,
    cycling_vo2,
    running_gain_bpm_per_mps,
    running_integral,
)

SPORTS = ("run", "bike", "mountain bike", "walk")
# Home towns: latitude, longitude, altitude (m), typical hill amplitude (m).
CITIES = (
    (55.676, 12.568, 10, 6),
    (52.370, 4.895, 2, 3),
    (40.417, -3.704, 660, 25),
    (41.387, 2.170, 40, 30),
    (59.913, 10.752, 20, 35),
    (59.329, 18.069, 25, 15),
    (48.137, 11.575, 520, 12),
    (47.377, 8.540, 410, 40),
    (51.507, -0.128, 20, 10),
    (40.713, -74.006, 10, 12),
    (39.739, -104.990, 1610, 30),
    (37.775, -122.419, 20, 45),
    (-33.869, 151.209, 30, 20),
)
SESSIONS = {
    "run": {"steady": 0.4, "long": 0.2, "intervals": 0.15, "recovery": 0.15, "hill": 0.1},
    "bike": {"steady": 0.45, "long": 0.2, "intervals": 0.1, "recovery": 0.1, "hill": 0.15},
    "mountain bike": {"steady": 0.4, "hill": 0.4, "long": 0.2},
    "walk": {"steady": 0.6, "hill": 0.2, "recovery": 0.2},
}
FORM_SD_BPM = 3.0  # the day's form: a workout's demand sits this much above or below the athlete's usual
MAIN_INTENSITY = {
    "recovery": (0.50, 0.60),
    "steady": (0.65, 0.80),
    "long": (0.60, 0.72),
    "hill": (0.62, 0.75),
    "intervals": (0.45, 0.55),
}  # fraction of VO2max
MOVING_MIN = {"run": (25, 55), "walk": (25, 80), "bike": (40, 100), "mountain bike": (40, 100)}
KIND_SCALE = {"recovery": 0.7, "steady": 1.0, "intervals": 1.0, "hill": 1.0, "long": 1.6}


# ---- athletes and session plans --------------------------------------------------------------


def draw_athletes(rng, cfg: SimConfig) -> pd.DataFrame:
    """One row per athlete: true physiology, sport, home town and device habits, drawn from rng."""
    n = cfg.n_users
    gender = rng.choice(np.array(["male", "female", "unknown"]), n, p=[0.70, 0.28, 0.02])
    female = np.where(gender == "unknown", rng.random(n) < 0.3, gender == "female")
    age = np.round(18 + 47 * rng.beta(1.8, 2.6, n)).astype(int)
    fit = rng.normal(size=n)  # fitness z-score: drives VO2max up and resting HR down
    vo2max = np.where(female, 44 - 0.30 * (age - 30) + 6 * fit, 52 - 0.35 * (age - 30) + 7 * fit)  # active people
    tau_on = np.clip(rng.normal(57.6, 20.0, n), 20.0, 120.0)
    city = rng.integers(len(CITIES), size=n)
    sports, missing = list(cfg.sport_mix), cfg.speed_missing_fraction
    df = pd.DataFrame(
        {
            "userId": rng.choice(20_000_000, n, replace=False) + 100_000,
            "gender": gender,
            "physiology_sex": np.where(female, "female", "male"),
            "age": age,
            "mass_kg": np.where(female, rng.normal(62, 7, n), rng.normal(77, 9, n)).clip(45, 120).round(1),
            "hr_rest": np.clip(62 - 5 * fit + 3 * female + rng.normal(0, 4, n), 45, 85).round(1),
            "hr_max": (208 - 0.7 * age + rng.normal(0, 7, n)).round(1),
            "vo2max": np.clip(vo2max, 28, 78).round(1),
            "vo2max_gain_frac": rng.uniform(0.0, 0.08, n).round(3),  # improvement over the history
            "tau_on_s": tau_on.round(1),
            "tau_off_s": (tau_on * rng.uniform(1.2, 1.8, n)).round(1),
            "drift_bpm_per_hour": rng.uniform(2.0, 15.0, n).round(2),
            "economy": np.clip(rng.normal(1.0, 0.1, n), 0.8, 1.25).round(3),  # O2 cost multiplier
            "main_sport": rng.choice(sports, n, p=_probs(cfg.sport_mix)),
            "city": city,
            "home_lat": np.array([CITIES[c][0] for c in city]) + rng.normal(0, 0.03, n),
            "home_lon": np.array([CITIES[c][1] for c in city]) + rng.normal(0, 0.03, n),
            "hilliness_m": np.array([CITIES[c][3] for c in city]) * rng.lognormal(0, 0.4, n),
            "speed_missing_prob": rng.beta(4 * missing + 1e-9, 4 * (1 - missing) + 1e-9, n),  # per device
        }
    )
    # Running gain on the flat, bpm per m/s (docs/physiology.md, "1. Kinetics": 24.2 +- 8.3).
    df["gain_bpm_per_mps"] = running_gain_bpm_per_mps(df.hr_rest, df.hr_max, df.vo2max, df.economy).round(2)
    return df


def _probs(mix: dict) -> np.ndarray:
    p = np.array(list(mix.values()), float)
    return p / p.sum()


def plan_workouts(rng, a: dict, cfg: SimConfig, t0: float) -> list[dict]:
    """The athlete's workouts in time order: start, sport, session type, moving time, route."""
    n = int(rng.integers(cfg.min_workouts, cfg.max_workouts + 1))
    span_days = rng.uniform(*cfg.history_months) * 30.44
    first = t0 + rng.uniform(0, 365) * 86400
    starts = np.sort(first + np.floor(rng.uniform(0, span_days, n)) * 86400 + rng.uniform(6, 20, n) * 3600)
    sports = np.where(
        rng.random(n) < cfg.main_sport_share,
        a["main_sport"],
        rng.choice(list(cfg.sport_mix), n, p=_probs(cfg.sport_mix)),
    )
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
        plan.append(
            dict(
                start=int(starts[i]),
                sport=str(sport),
                kind=kind,
                moving_s=moving_s,
                hill_m=min(hill, 150.0),
                lat0=spot[0],
                lon0=spot[1],
                alt0=CITIES[a["city"]][2] + rng.normal(0, 15),
                form_bpm=rng.normal(0, FORM_SD_BPM),
                walk_ms=rng.uniform(4.3, 6.0) / 3.6,
                no_speed=bool(rng.random() < a["speed_missing_prob"]),
            )
        )
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
        crr, cda, top, mass = bike_setup(sport, a)
        plan = np.maximum((level * vo2max - 7.0) * a["mass_kg"] / 10.8, 20.0)
        v_typ = np.median(cycling_speed_ms(plan, 0.0, mass, crr, cda))
        power = plan * np.clip(1 + 4 * climb / v_typ, 0.0, 1.5) - 9.81 * mass * climb  # left after climbing
        v = np.minimum(cycling_speed_ms(np.maximum(power, 5.0), 0.0, mass, crr, cda), top)  # brakes when fast
        grade = np.clip(climb / np.maximum(v, 0.3), -0.2, 0.2)
        return v, grade, motion_vo2(sport, a, v, grade)
    else:  # v = v_flat (1 - up * grade) uphill, (1 + down * |grade|) downhill, with grade = climb / v
        if sport == "walk":
            v_flat, up, down = w["walk_ms"] * level / np.median(level), 2.0, 0.3
        else:
            v_flat, up, down = running_flat_speed(level * vo2max - 3.5, a), 2.5, 0.8
        k = np.where(climb > 0, up, down)
        v = 0.5 * (v_flat + np.sqrt(np.maximum(v_flat**2 - 4 * k * v_flat * climb, 0.0)))
    grade = np.clip(climb / np.maximum(v, 0.3), -0.2, 0.2)
    return v, grade, motion_vo2(sport, a, v, grade)


def motion_vo2(sport, a, v, grade):
    """VO2 (ml/kg/min) of moving at v (m/s) up `grade`: ACSM running / walking, or cycling power."""
    if sport in BIKES:
        crr, cda, _, mass = bike_setup(sport, a)
        return cycling_vo2(cycling_power_w(v, grade, mass, crr, cda), a["mass_kg"])
    cost_exponent = 0.0 if sport == "walk" else a["cost_exponent"]
    return acsm_vo2(v, grade, sport == "walk", a["economy"], cost_exponent)


def fitness(a: dict, sport: str, hist_frac: float) -> tuple[float, float]:
    """(VO2max, resting heart rate) at `hist_frac` of the athlete's history: both improve with training."""
    vo2max = a["vo2max"] * (1 + a["vo2max_gain_frac"] * hist_frac)  # fitter later on
    vo2max *= 0.93 if sport in BIKES else 1.0  # cycling peak VO2 sits below running's
    return vo2max, a["hr_rest"] - 3 * hist_frac * a["vo2max_gain_frac"] / 0.08


def heart_demand(a: dict, vo2, vo2max: float, hr_rest: float, form_bpm: float, t, step: float):
    """The heart rate the effort asks for on the even grid `t`: effort curve, cardiac drift and the day's form."""
    frac = np.clip((vo2 - 3.5) / (vo2max - 3.5), 0, 1)
    drift = cardiac_drift(a, frac, t, step)
    return np.clip(effort_bpm(a, frac, hr_rest) + drift + form_bpm, hr_rest, a["hr_max"])


def _climb(rng, hill_m, t, v_typ, cap):
    """Climb rate (m/s) over moving time: hills 500-6000 m long at the typical speed, all about as steep.

    Saturates smoothly (tanh, odd so climbs and descents match) at `cap`, the fastest climb the athlete
    can hold at the planned effort: climbs stay feasible, so the altitude does not drift."""
    wavelength = np.exp(rng.uniform(np.log(500), np.log(6000), 4))
    steepness = 2 * np.pi * hill_m / wavelength.sum()  # heights ~ wavelength, so each wave's peak grade
    angle = np.outer(t, 2 * np.pi * v_typ / wavelength) + rng.uniform(0, 2 * np.pi, 4)
    return cap * np.tanh(np.cos(angle).sum(1) * min(steepness, 0.2) * v_typ / cap)


def workout_signals(rng, a: dict, w: dict, cfg: SimConfig) -> dict:
    """The true workout at the recorded samples: time steps, pauses, demand, speed, route, altitude."""
    dt, pause = time_grid(rng, a, w, cfg)
    m = np.cumsum(dt)  # moving time of each sample
    step = float(np.clip(m[-1] / cfg.seq_len / 2, 1.0, 4.0))  # fine grid: about two points per sample
    t = np.arange(0.0, m[-1] + 2 * step, step)
    level = _intensity(rng, w["kind"], t, m[-1], step)
    moving = np.ones_like(t)
    for s, length in zip(rng.uniform(0, m[-1], rng.poisson(cfg.stops_per_workout)), rng.uniform(10, 120, 8)):
        moving[(t >= s) & (t < s + length)] = 0.0
    moving = _smooth(moving, 3.0, step)

    vo2max, hr_rest = fitness(a, w["sport"], w["hist_frac"])
    v_typ = np.median(_motion(w["sport"], level, np.zeros_like(t), a, w, vo2max)[0])
    if w["sport"] in BIKES:  # climbing may take at most 80% of the typical power
        crr, cda, _, mass = bike_setup(w["sport"], a)
        cap = 0.8 * cycling_power_w(v_typ, 0.0, mass, crr, cda) / (9.81 * mass)
    else:  # the uphill speed law has a solution
        cap = 0.8 * v_typ / (4 * (2.0 if w["sport"] == "walk" else 2.5))
    v, grade, vo2 = _motion(w["sport"], level, _climb(rng, w["hill_m"], t, v_typ, cap), a, w, vo2max)
    v, vo2 = v * moving, moving * vo2 + (1 - moving) * 4.0  # standing still at stops
    dist = running_integral(v, step)
    altitude = w["alt0"] + running_integral(v * grade, step)  # climbed = grade x distance, so the two agree

    demand = heart_demand(a, vo2, vo2max, hr_rest, w["form_bpm"], t, step)

    knots = np.arange(0.0, t[-1] + 480.0, 240.0)
    bearing = np.interp(t, knots, rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.7, knots.size)))
    at_samples = lambda x: np.interp(m, t, running_integral(x, step))  # noqa: E731  integral up to each sample
    mean_demand = np.diff(at_samples(demand), prepend=0.0) / np.maximum(dt, 1.0)  # over each interval
    mean_demand[0] = demand[0]
    mean_speed = np.diff(np.interp(m, t, dist), prepend=0.0) / np.maximum(dt, 1.0)
    return dict(
        dt=dt,
        pause=pause,
        m=m,
        demand=mean_demand,
        speed_ms=mean_speed,
        x=at_samples(v * np.sin(bearing)),
        y=at_samples(v * np.cos(bearing)),
        altitude=np.interp(m, t, altitude),
        hr0=hr_rest + rng.uniform(5, 25),
        hr_rest=hr_rest,
    )

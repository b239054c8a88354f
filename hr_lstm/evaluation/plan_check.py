"""The planner checked against a world it cannot see: simulated athletes run the plans through their true physiology.

For each simulated athlete the checkpoint was trained on (so it knows their embedding: a personal
plan) and each test course, the planner makes the fastest plan under the athlete's ceiling and the
best even pace under the same ceiling, both read on the model. The simulator then runs each plan
with the athlete's true laws (`data.simulate.respond`), on many days of different form, and says
how much of the time their true heart rate went over the ceiling. The ceiling is a share of the
athlete's true heart-rate reserve (80%: a tempo run), as a runner who knows their zones would set it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..data.route import Route
from ..data.simulate.respond import day_form_bpm, load_athletes, true_heart_rate_bpm
from ..data.simulate.routes import hilly_route
from ..errors import DataError, HRLSTMError
from ..inference.plan import PlanConfig, even_pace, plan_for_ceiling, plan_model
from ..inference.plan_inputs import timeline
from ..training.trained import TrainedModel

# name, length (km), total climb (m): a flat course and two hilly ones
COURSES = (("flat 10 km", 10.0, 0.0), ("hilly 10 km", 10.0, 150.0), ("hilly 21 km", 21.1, 300.0))


@dataclass
class PlanCheckConfig:
    n_athletes: int = 20
    courses: tuple = COURSES
    reserve_share: float = 0.8  # ceiling = rest + share x (max - rest), from the athlete's true values
    n_days: int = 20  # day-form draws per plan
    sport: str = "run"
    seed: int = 0
    iterations: int = 60
    safe: bool = True  # plans keep the band's upper edge under the ceiling (the prediction, without a band)


def course_routes(cfg: PlanCheckConfig) -> list[Route]:
    rng = np.random.default_rng(cfg.seed)
    routes = []
    for name, length_km, climb_m in cfg.courses:
        distance, altitude = hilly_route(rng, length_km, climb_m)
        routes.append(Route.from_profile(distance, altitude, name, smooth_m=0.0))
    return routes


def true_runs(athlete, route: Route, stretch_speed_kmh, forms, sport: str) -> tuple[np.ndarray, np.ndarray]:
    """The athlete's true heart rate running the plan on each day of form: (time_s on a 2-second grid,
    (days, samples) BPM)."""
    speeds = torch.as_tensor(np.asarray(stretch_speed_kmh, float))
    finish = float(timeline(route, speeds, 2).finish_s)
    fine = timeline(route, speeds, max(int(finish / 2), 50))
    t, v, a = (x.numpy() for x in (fine.time_s, fine.speed_kmh, fine.altitude_m))
    return t, np.stack([true_heart_rate_bpm(athlete, sport, t, v, a, form_bpm=f) for f in forms])


def true_share_over(athlete, route: Route, stretch_speed_kmh, ceiling: float, forms, sport: str) -> float:
    """Share of the time, over all days of form, the athlete's true heart rate is above the ceiling."""
    return float(np.mean(true_runs(athlete, route, stretch_speed_kmh, forms, sport)[1] > ceiling))


def simulated_athletes(model: TrainedModel) -> pd.DataFrame | None:
    """The true athletes of the simulated data a checkpoint was trained on (None: not simulated data)."""
    path = model.payload.get("data_path")
    try:
        return load_athletes(path) if path else None
    except DataError:
        return None


def athlete_ceiling(athlete, cfg: PlanCheckConfig) -> float:
    return float(athlete["hr_rest"] + cfg.reserve_share * (athlete["hr_max"] - athlete["hr_rest"]))


def _plan_config(athlete, cfg: PlanCheckConfig, safe: bool) -> PlanConfig:
    return PlanConfig(
        sport=cfg.sport,
        user=str(athlete["userId"]),
        max_hr_bpm=athlete_ceiling(athlete, cfg),
        safe=safe,
        iterations=cfg.iterations,
    )


def check_plans(
    model: TrainedModel, athletes: pd.DataFrame, cfg: PlanCheckConfig, routes: list[Route] | None = None, log=print
) -> pd.DataFrame:
    """One row per (athlete, course): ceiling, even and planned finish, gain, and the share of the time the
    athlete's true heart rate is over the ceiling on the plan, on the plan made without the band (when `cfg.safe`)
    and at the even pace. `routes`: the courses (default: `cfg.courses`)."""
    safe = cfg.safe and model.interval is not None
    if cfg.safe and not safe:
        log("  the checkpoint has no calibrated band (hr-lstm calibrate): plans keep the prediction under the ceiling")
    known = athletes[athletes["userId"].astype(str).isin(model.user_ids)]
    if "main_sport" in known:
        known = known[known["main_sport"] == cfg.sport]
    chosen = known.sample(min(cfg.n_athletes, len(known)), random_state=cfg.seed)
    routes, rng, rows = routes or course_routes(cfg), np.random.default_rng(cfg.seed + 1), []
    for _, athlete in chosen.iterrows():
        forms = day_form_bpm(athlete, rng, cfg.n_days)
        over = lambda plan: true_share_over(athlete, route, plan.stretch_speed_kmh, ceiling, forms, cfg.sport)  # noqa: E731
        for route in routes:
            plan_cfg = _plan_config(athlete, cfg, safe)
            ceiling = plan_cfg.max_hr_bpm
            pm = plan_model(model, route, plan_cfg)
            try:
                even = even_pace(pm, route, plan_cfg)
                plan = plan_for_ceiling(pm, route, plan_cfg, even=even)
                plain = plan_for_ceiling(pm, route, _plan_config(athlete, cfg, False)) if safe else plan
            except HRLSTMError as exc:  # an unreachable ceiling for this athlete: say so, count it, keep going
                log(f"  athlete {athlete['userId']}: {exc}")
                rows.append({"athlete": str(athlete["userId"]), "course": route.name, "safe": safe, "planned": False})
                continue
            rows.append(
                {
                    "athlete": str(athlete["userId"]),
                    "course": route.name,
                    "safe": safe,
                    "planned": True,
                    "ceiling_bpm": round(ceiling, 1),
                    "even_finish_min": even.finish_s / 60,
                    "plan_finish_min": plan.finish_s / 60,
                    "gain": 1 - plan.finish_s / even.finish_s,
                    "over_plan": over(plan),
                    "over_plain_plan": over(plain),
                    "over_even": over(even),
                }
            )
        log(f"  athlete {athlete['userId']}: {len(routes)} courses planned and run")
    return pd.DataFrame(rows)


def one_athlete(model: TrainedModel, athletes: pd.DataFrame, athlete_id: str, route: Route, cfg: PlanCheckConfig):
    """One athlete's plan on `route` and their true heart rate running it: (plan, time_s, (days, samples) BPM)."""
    athlete = athletes[athletes["userId"].astype(str) == str(athlete_id)].iloc[0]
    plan = plan_for_ceiling(model, route, _plan_config(athlete, cfg, cfg.safe and model.interval is not None))
    forms = day_form_bpm(athlete, np.random.default_rng(cfg.seed + 1), cfg.n_days)
    return (plan, *true_runs(athlete, route, plan.stretch_speed_kmh, forms, cfg.sport))


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per course: athletes planned for (and those whose ceiling the model put out of reach), median and 10th
    percentile gain over the even pace, mean true share of time over the ceiling."""
    grouped = table.groupby("course", sort=False)
    planned = table[table["planned"]].groupby("course", sort=False)
    return pd.DataFrame(
        {
            "planned": planned.size().reindex(grouped.size().index, fill_value=0),
            "out_of_reach": grouped["planned"].apply(lambda p: int((~p.astype(bool)).sum())),
            "gain_median": planned["gain"].median(),
            "gain_p10": planned["gain"].quantile(0.1),
            "over_plan": planned["over_plan"].mean(),
            "over_plain_plan": planned["over_plain_plan"].mean(),
            "over_even": planned["over_even"].mean(),
        }
    )

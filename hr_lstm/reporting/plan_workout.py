"""Notebook 07's helpers: which course to plan on, and the planned curve next to a simulated athlete's true ones.

Without a route file the notebook uses the real hilly course that ships in examples/routes (a
simulated hilly course where the examples are missing, as in an installed package).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from ..data.route import Route, read_route
from ..data.simulate.routes import hilly_route
from ..inference.plan import Plan
from ..paths import EXAMPLE_ROUTE


def resolve_route(route_file=None) -> Route:
    """`route_file`; else the example course; else a simulated 5 km course with 200 m of climbing."""
    if route_file:
        return read_route(Path(route_file).expanduser())
    if EXAMPLE_ROUTE.is_file():
        return read_route(EXAMPLE_ROUTE)
    distance, altitude = hilly_route(np.random.default_rng(0), 5.0, 200.0)
    return Route.from_profile(distance, altitude, "simulated hilly 5 km", smooth_m=0.0)


def true_runs_figure(plan: Plan, time_s: np.ndarray, true_bpm: np.ndarray, title: str = ""):
    """The plan's predicted heart rate and band against the athlete's true heart rate on each day of form."""
    fig, ax = plt.subplots(figsize=(10, 4), constrained_layout=True)
    for k, day in enumerate(true_bpm):
        ax.plot(
            time_s / 60, day, color="black", lw=0.6, alpha=0.35, label="true, one day of form each" if k == 0 else None
        )
    if plan.low_bpm is not None:
        ax.fill_between(
            plan.time_s / 60, plan.low_bpm, plan.high_bpm, color="tab:red", alpha=0.18, lw=0, label="80% band"
        )
    ax.plot(plan.time_s / 60, plan.predicted_bpm, color="tab:red", lw=1.6, label="predicted")
    if plan.max_hr_bpm is not None:
        ax.axhline(plan.max_hr_bpm, color="black", lw=1, label=f"ceiling {plan.max_hr_bpm:.0f}")
    ax.set(xlabel="time (min)", ylabel="heart rate (BPM)", title=title)
    ax.legend(loc="lower right", fontsize=8)
    return fig

"""The plan on one page: heart rate with its band and the ceiling, the pace, the course, and the splits."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from ..inference.plan import Plan, format_duration, format_pace
from ..paths import write_bytes_atomic, write_text_atomic


def plan_figure(plan: Plan, even: Plan | None = None, title: str | None = None):
    """Three panels along the course (heart rate, pace, altitude) and the per-km splits beside them."""
    fig = plt.figure(figsize=(13, 7.5), constrained_layout=True)
    grid = fig.add_gridspec(3, 2, width_ratios=(3, 1.25), height_ratios=(2, 1.3, 1))
    ax_hr = fig.add_subplot(grid[0, 0])
    ax_pace = fig.add_subplot(grid[1, 0], sharex=ax_hr)
    ax_alt = fig.add_subplot(grid[2, 0], sharex=ax_hr)
    km = plan.distance_m / 1000

    if plan.low_bpm is not None:
        ax_hr.fill_between(km, plan.low_bpm, plan.high_bpm, color="tab:red", alpha=0.18, lw=0, label="80% band")
    ax_hr.plot(km, plan.predicted_bpm, color="tab:red", lw=1.6, label="predicted heart rate")
    if even is not None:
        ax_hr.plot(
            km if len(km) == len(even.distance_m) else even.distance_m / 1000,
            even.predicted_bpm,
            color="grey",
            lw=1,
            ls="--",
            label="at the even pace",
        )
    if plan.max_hr_bpm is not None:
        ax_hr.axhline(plan.max_hr_bpm, color="black", lw=1, label=f"ceiling {plan.max_hr_bpm:g}")
    if plan.min_hr_bpm is not None:
        ax_hr.axhline(plan.min_hr_bpm, color="black", lw=0.8, ls=":", label=f"floor {plan.min_hr_bpm:g}")
    ax_hr.set(ylabel="heart rate (BPM)")
    ax_hr.legend(loc="lower right", fontsize=8, framealpha=0.85)

    route = plan.route
    stretch_km = (route.distance_m[1:] + route.distance_m[:-1]) / 2000
    ax_pace.plot(stretch_km, 60 / plan.stretch_speed_kmh, color="tab:blue", lw=1.6, label="plan")
    if even is not None:
        ax_pace.plot(stretch_km, 60 / even.stretch_speed_kmh, color="grey", lw=1, ls="--", label="even pace")
    ax_pace.invert_yaxis()  # faster is up
    ax_pace.set(ylabel="pace (min/km)")
    ax_pace.legend(loc="best", fontsize=8)

    if route.altitude_m is not None:
        ax_alt.fill_between(
            route.distance_m / 1000, route.altitude_m, route.altitude_m.min() - 5, color="tab:green", alpha=0.4
        )
    else:
        ax_alt.text(0.5, 0.5, "no elevation in the route file", ha="center", va="center", transform=ax_alt.transAxes)
    ax_alt.set(xlabel="distance (km)", ylabel="altitude (m)")

    ax_table = fig.add_subplot(grid[:, 1])
    ax_table.axis("off")
    splits = plan.splits()[["km", "pace", "elapsed", "elevation_change_m", "max_hr_bpm"]]
    shown = splits if len(splits) <= 45 else splits.iloc[np.linspace(0, len(splits) - 1, 45).astype(int)]
    table = ax_table.table(
        cellText=shown.astype(str).to_numpy(),
        colLabels=["km", "pace", "elapsed", "up/down m", "max HR"],
        loc="upper center",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(7 if len(shown) > 25 else 8)

    pace = format_pace(route.length_m / 1000 / (plan.finish_s / 3600))
    headline = f"{route.name}: {route.length_m / 1000:.2f} km in {format_duration(plan.finish_s)} ({pace} on average)"
    if even is not None:
        gain = 1 - plan.finish_s / even.finish_s
        headline += (
            f"; even pace {format_pace(even.stretch_speed_kmh[0])} takes {format_duration(even.finish_s)} ({gain:+.1%})"
        )
    fig.suptitle(title or headline, fontsize=11)
    return fig


def write_plan(plan: Plan, even: Plan | None, out_dir, stem: str) -> list[Path]:
    """`{stem}_plan.csv` (the model's samples), `{stem}_splits.csv` (per km) and `{stem}_plan.png`, each atomically."""
    out_dir = Path(out_dir)
    paths = [out_dir / f"{stem}_plan.csv", out_dir / f"{stem}_splits.csv", out_dir / f"{stem}_plan.png"]
    write_text_atomic(paths[0], plan.frame().to_csv(index=False))
    write_text_atomic(paths[1], plan.splits().to_csv(index=False))
    fig = plan_figure(plan, even)
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, dpi=110, format="png")
    finally:
        plt.close(fig)
    write_bytes_atomic(paths[2], buffer.getbuffer())
    return paths

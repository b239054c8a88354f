"""`hr-lstm plan`: the heart rate a pace brings on a route, or the fastest pace under a ceiling."""

from __future__ import annotations

import time
from pathlib import Path

from ..console import say
from ..data.recordings import GENDERS
from ..data.recordings.samples import MAX_SPEED_KMH
from ..data.route import read_route
from ..errors import HRLSTMError
from ..inference.plan import (
    PlanConfig,
    even_pace,
    format_duration,
    format_pace,
    parse_pace,
    parse_zone,
    plan_for_ceiling,
    plan_model,
    predict_plan,
)
from ..models.bundled import checkpoint_or_bundled
from ..paths import check_writable
from ..reporting.plan_figure import write_plan
from ..training.trained import TrainedModel
from .common import CHECKPOINT_HELP, flag, sport_name

WHAT_IF_SPEED_KMH = (1.0, MAX_SPEED_KMH)  # walking slowly to a fast descent on a bike; the readers' own limit
CEILING_RANGE_BPM = (80.0, 230.0)  # an exercising heart is above 80; none is above 230


def add_plan_arguments(parser) -> None:
    parser.add_argument(
        "route", metavar="ROUTE", help="a GPX route or track (no times needed), or a FIT/TCX/GPX recording"
    )
    parser.add_argument("--checkpoint", default=None, metavar="PATH", help=CHECKPOINT_HELP)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--pace", metavar="M:SS/km", help="what-if: the heart rate at this even pace (or M:SS/mi)")
    flag(target, "speed_kmh", type=float, metavar="KMH", help="what-if: the heart rate at this even speed")
    flag(target, "max_hr", type=float, metavar="BPM", help="the fastest pace profile whose heart rate stays under BPM")
    target.add_argument("--zone", metavar="LOW-HIGH", help="as --max-hr HIGH, and above LOW after the warm-up")
    parser.add_argument(
        "--safe",
        action="store_true",
        help="keep the upper edge of the 80%% band (not only the prediction) under the ceiling",
    )
    parser.add_argument(
        "--sport",
        default="run",
        type=sport_name,
        metavar="NAME",
        help="run, bike, walk, mountain bike, ... (default run)",
    )
    parser.add_argument(
        "--user", default=None, metavar="ID", help="whose embedding (default: the personalised athlete)"
    )
    parser.add_argument(
        "--gender", choices=GENDERS, default=None, help="default: the personalised athlete's, else unknown"
    )
    parser.add_argument("--out", default="plans", metavar="DIR", help="folder for CSV and PNG (default: plans/)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")


def run_plan(args) -> int:
    started = time.perf_counter()
    out = Path(args.out)
    check_writable(out)
    route = read_route(args.route)
    low, high = parse_zone(args.zone) if args.zone else (None, args.max_hr)
    if high is not None and not (CEILING_RANGE_BPM[0] <= high <= CEILING_RANGE_BPM[1]):  # NaN fails too
        raise HRLSTMError(
            f"--max-hr {high:g}: a ceiling from {CEILING_RANGE_BPM[0]:g} to {CEILING_RANGE_BPM[1]:g} BPM (below it no "
            "pace is slow enough; above it, no heart)"
        )
    if args.safe and high is None:
        raise HRLSTMError("--safe applies to a ceiling: give --max-hr or --zone")
    cfg = PlanConfig(
        sport=args.sport, user=args.user, gender=args.gender, max_hr_bpm=high, min_hr_bpm=low, safe=args.safe
    )
    model = TrainedModel.load(checkpoint_or_bundled(args.checkpoint, say), args.device)
    pm = plan_model(model, route, cfg)
    print(f"Route {route.describe()}; athlete: {pm.user}, sport {cfg.sport}", flush=True)
    even = None
    if high is None:
        speed = parse_pace(args.pace) if args.pace else args.speed_kmh
        if speed is None or not (WHAT_IF_SPEED_KMH[0] <= speed <= WHAT_IF_SPEED_KMH[1]):  # NaN fails too
            given = f"--pace {args.pace}" if args.pace else f"--speed-kmh {args.speed_kmh:g}"
            raise HRLSTMError(
                f"{given}: a speed from {WHAT_IF_SPEED_KMH[0]:g} to {WHAT_IF_SPEED_KMH[1]:g} km/h (a pace from "
                f"{format_pace(WHAT_IF_SPEED_KMH[1])} to {format_pace(WHAT_IF_SPEED_KMH[0])})"
            )
        plan = predict_plan(pm, route, speed, cfg)
    else:
        even = even_pace(pm, route, cfg)
        plan = plan_for_ceiling(pm, route, cfg, even=even)
    stem = Path(args.route).name.split(".")[0]
    paths = write_plan(plan, even, out, stem)
    splits = plan.splits()

    pace = format_pace(route.length_m / 1000 / (plan.finish_s / 3600))
    print(
        f"Finish {format_duration(plan.finish_s)} ({pace} on average); predicted heart rate "
        f"{plan.predicted_bpm.mean():.0f} mean, {plan.predicted_bpm.max():.0f} max BPM",
        flush=True,
    )
    if even is not None:
        gain = 1 - plan.finish_s / even.finish_s
        limit = "band's upper edge" if cfg.safe else "predicted heart rate"
        print(
            f"Ceiling {high:g} BPM on the {limit}; the best even pace, {format_pace(even.stretch_speed_kmh[0])}, "
            f"finishes in {format_duration(even.finish_s)}: the plan is {gain:.1%} faster",
            flush=True,
        )
    for note in dict.fromkeys(plan.notes + (even.notes if even is not None else [])):  # once each
        print(f"note     {note}", flush=True)
    print(splits.to_string(index=False), flush=True)
    print(f"Wrote {', '.join(p.name for p in paths)} to {out} in {time.perf_counter() - started:.1f} s", flush=True)
    return 0

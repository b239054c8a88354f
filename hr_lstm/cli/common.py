"""Pieces every command shares: flag spelling, comma lists, the data flags."""

from __future__ import annotations

import argparse
import sys

from ..data.filters import FilterConfig
from ..data.simulate import resolve_variant, variant_names
from ..errors import HRLSTMError
from ..paths import DEFAULT_SIM_USERS


def flag(parser, name: str, *short: str, **kwargs) -> None:
    """Register --dashed-case (the one spelling shown in help) with --snake_case (the original
    project's spelling) as an alias; both store to `name` unless `dest` says otherwise."""
    names = [*short, f"--{name.replace('_', '-')}"] + ([f"--{name}"] if "_" in name else [])
    kwargs.setdefault("dest", name)
    parser.add_argument(*names, **kwargs)


def progress(line: str) -> None:
    """A progress line of a long step: on stderr (flushed), so stdout keeps only the results."""
    print(line, file=sys.stderr, flush=True)


def comma_list(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


CHECKPOINT_HELP = "a checkpoint written by train or personalize (default: the bundled default model)"


def sport_name(text: str) -> str:
    """An argparse type for --sport: a sport name the readers know (FitRec's, a file's words) or one of the
    families; anything else (a typo, an empty string) is refused rather than predicted as an unknown sport."""
    from ..data.recordings import normalise_sport
    from ..data.workouts import SPORT_FAMILIES, sport_family

    word = text.strip().lower()
    if word and (normalise_sport(word) != "unknown" or sport_family(word) != "other" or word in SPORT_FAMILIES):
        return word
    raise argparse.ArgumentTypeError(
        f"{text!r} is no sport this tool knows; e.g. run, bike, walk, mountain bike, treadmill running, hiking, rowing"
    )


SPORT_HELP = (
    "the sport of these recordings (run, bike, walk, mountain bike, ...): overrides the files'; "
    "without it a file that names no sport gets the family its speeds suggest (printed)"
)


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    flag(g, "data", metavar="PATH", help="FitRec-format file (.json/.json.gz); default: the simulated set")
    flag(
        g,
        "sport",
        action="append",
        type=comma_list,
        metavar="NAME",
        help="sport family (run, bike, walk, other) or exact sport name; repeat or comma-separate "
        f"(default: {','.join(FilterConfig.sports)})",
    )
    flag(g, "min_workouts", type=int, default=FilterConfig.min_workouts_per_user, help="drop users with fewer workouts")
    flag(g, "hr_range", type=comma_list, default=None, metavar="MIN,MAX", help="plausible heart rate (default 30,230)")
    flag(g, "sim_users", type=int, default=DEFAULT_SIM_USERS, help="athletes in the default simulated set")
    flag(
        g,
        "sim_variant",
        default="default",
        metavar="NAME",
        help=f"simulator variant of the default set (hr-lstm synth --list-variants): {', '.join(variant_names())}",
    )
    flag(g, "skip_bad", action="store_true", help="skip malformed records (with a count) instead of stopping")
    flag(g, "no_cache", action="store_true", help="re-parse the data file instead of using its cache")


def data_overrides(args) -> dict:
    """The data, parse and filter settings of a RunConfig, from the flags of `add_data_arguments`."""
    resolve_variant(args.sim_variant)  # an unknown name: one line now, before any work
    changes = {
        "data.path": args.data,
        "data.sim_users": args.sim_users,
        "data.sim_variant": args.sim_variant,
        "data.skip_bad": args.skip_bad,
        "data.cache": not args.no_cache,
        "filters.min_workouts_per_user": args.min_workouts,
    }
    if args.sport:
        changes["filters.sports"] = tuple(s for group in args.sport for s in group)
    if args.hr_range:
        try:
            changes["filters.hr_min_bpm"], changes["filters.hr_max_bpm"] = (float(v) for v in args.hr_range)
        except ValueError:
            raise HRLSTMError(f"--hr-range {','.join(args.hr_range)}: expected MIN,MAX in BPM") from None
    return changes

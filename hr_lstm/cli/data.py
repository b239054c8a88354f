"""`hr-lstm synth`, `ingest` and `import`: data in (no torch imported)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..console import say
from ..data.cache import load_workouts
from ..data.filters import FilterConfig, filter_workouts
from ..data.fitrec import ParseConfig
from ..data.ingest import PeakMemory
from ..data.recordings import GENDERS, MODES, import_recordings, write_records
from ..data.simulate import VARIANTS, SimConfig, resolve_variant, simulate
from ..errors import HRLSTMError
from ..paths import DEFAULT_SIM_SEED, DEFAULT_SIM_USERS, check_writable, default_sim_data_path
from .common import SPORT_HELP, flag, progress, sport_name


def add_synth_arguments(parser) -> None:
    parser.add_argument("--users", type=int, default=DEFAULT_SIM_USERS, help="simulated athletes")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output .json.gz (default data/simulated/sim_users{N}_seed{S}.json.gz, _{VARIANT} before .json.gz "
        "for other variants)",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SIM_SEED, help="random seed")
    for name, default in (("min_workouts", SimConfig.min_workouts), ("max_workouts", SimConfig.max_workouts)):
        flag(parser, name, type=int, default=default, help="per athlete")
    parser.add_argument(
        "--variant",
        default=SimConfig.variant,
        metavar="NAME",
        help=f"the laws the data follows (--list-variants): {', '.join(VARIANTS)}",
    )
    flag(parser, "list_variants", action="store_true", help="print the variants, one line each, and exit")


def run_synth(args) -> int:
    if args.list_variants:
        for variant in VARIANTS.values():
            print(f"{variant.name:<17} {variant.description}")
        return 0
    resolve_variant(args.variant)  # an unknown name: one line now, not after the athletes are drawn
    cfg = SimConfig(
        n_users=args.users,
        seed=args.seed,
        min_workouts=args.min_workouts,
        max_workouts=args.max_workouts,
        variant=args.variant,
    )
    out = args.out or default_sim_data_path(args.users, args.seed, args.variant)
    check_writable(Path(out).parent)  # before simulating, not after
    summary = simulate(cfg, out, log=progress)
    print(
        f"Wrote {summary.n_workouts:,} workouts from {summary.n_users:,} simulated athletes to {summary.path} "
        f"(+ truth sidecar) in {summary.seconds:.1f} s"
    )
    return 0


def add_ingest_arguments(parser) -> None:
    parser.add_argument("path", type=Path, metavar="PATH", help="FitRec-format file (.json or .json.gz)")
    parser.add_argument(
        "--workers", type=int, default=None, help="parsing processes (default: all cores; one for a small file)"
    )
    flag(parser, "skip_bad", action="store_true", help="skip malformed records (with a count) instead of stopping")
    parser.add_argument("--sport", default=None, metavar="A,B", help="sports kept by the filters (default: run,bike)")
    flag(
        parser,
        "min_workouts",
        type=int,
        default=None,
        help=f"users with fewer workouts are dropped (default {FilterConfig.min_workouts_per_user})",
    )


def run_ingest(args) -> int:
    """Build (or reuse) the cache of args.path; print workouts kept and dropped, workouts/s, peak memory."""
    if args.workers is not None and args.workers < 1:
        raise HRLSTMError(f"--workers {args.workers}: must be at least 1")
    filters = FilterConfig()
    if args.sport:
        filters.sports = tuple(s.strip() for s in args.sport.split(",") if s.strip())
    if args.min_workouts is not None:
        filters.min_workouts_per_user = args.min_workouts
    started, mb = time.perf_counter(), 1 << 20
    with PeakMemory() as memory:  # over the whole command, workers and filters included
        ws = load_workouts(args.path, ParseConfig(), skip_bad=args.skip_bad, workers=args.workers)
        seconds = time.perf_counter() - started
        stats = ws.ingest_stats
        say(f"Cache: {ws.cache_dir} ({'reused' if stats is None else 'built now'})")
        if stats is not None:
            say(f"Workouts: {len(ws):,} parsed, {len(stats.skipped):,} bad records skipped")
            say(
                f"Speed: {len(ws) / seconds:,.0f} workouts/s ({seconds:.1f} s with hashing and writing the cache, "
                f"{stats.workers} worker{'s' if stats.workers > 1 else ''})"
            )
        else:
            say(f"Workouts: {len(ws):,}, loaded in {seconds:.1f} s")
        _, report = filter_workouts(ws, filters)
        say(f"Filters: {report.summary()}")
    arrays = ws.series.nbytes
    say(
        f"Peak memory, sampled every 20 ms over the whole command: this process {memory.main / mb:,.0f} MB, with its "
        f"workers {memory.tree / mb:,.0f} MB (resident; cache pages count as they are read); the arrays are "
        f"{arrays / mb:,.0f} MB ({memory.tree / max(arrays, 1):.1f}x)"
    )
    return 0


def _seq_len(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 2:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 2, not {text!r}")
    return int(text)


def add_import_arguments(parser) -> None:
    """Arguments of `hr-lstm import FILE... --user NAME [--gender] [--mode] [--seq-len] --out PATH`."""
    parser.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="FIT, GPX, TCX or CSV-stream recordings (.gz too), folders of them, or a bulk export folder (activities.csv)",
    )
    parser.add_argument("--user", required=True, metavar="NAME", help="athlete name, stored as userId")
    parser.add_argument("--gender", choices=GENDERS, default="unknown")
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="uniform",
        help="uniform: resample onto an even grid of moving time; original: pick samples",
    )
    flag(parser, "seq_len", type=_seq_len, default=500, metavar="N", help="points per record")
    parser.add_argument("--sport", default=None, type=sport_name, metavar="NAME", help=SPORT_HELP)
    parser.add_argument("--out", required=True, metavar="PATH", help="records file to write (.gz to compress)")


def report_import(line: str) -> None:
    """Imported files on stdout; skipped ones (failures) on stderr."""
    print(line, file=sys.stderr if line.startswith("skipped") else sys.stdout, flush=True)


def run_import(args) -> int:
    """Import the files, print one line each and a summary; 0 if any imported, 2 if none."""
    out = Path(args.out)
    named = [Path(f).resolve() for f in args.files if Path(f).exists()]
    if out.exists() and out.resolve() in named:
        raise HRLSTMError(f"--out {out}: is one of the recordings to import; write the records to another file")
    if out.is_dir():
        raise HRLSTMError(f"--out {out}: is a folder; give the records file's name (e.g. {out / 'me.json.gz'})")
    check_writable(out.parent)  # before reading the recordings, not after
    result = import_recordings(
        args.files,
        args.user,
        getattr(args, "gender", "unknown"),
        seq_len=getattr(args, "seq_len", 500),
        mode=getattr(args, "mode", "uniform"),
        report=report_import,
        sport=getattr(args, "sport", None),
    )
    n_ok, n_all = len(result.records), result.n_files
    print(f"Imported {n_ok} of {n_all} recordings ({len(result.skipped)} skipped)", flush=True)
    if not n_ok:
        print("Nothing imported: no output written", file=sys.stderr, flush=True)
        return 2
    out = write_records(result.records, args.out)  # a write failure is one line naming the file (paths)
    print(f"Wrote {n_ok} record{'' if n_ok == 1 else 's'} to {out}")
    return 0

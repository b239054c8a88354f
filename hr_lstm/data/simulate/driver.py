"""The simulator's driver: `simulate` checks a SimConfig, draws the athletes, their laws (the
config's variant) and their plans, runs the heart-rate kinetics over a chunk of athletes'
workouts at once, records each workout and writes the gzipped data with its truth sidecars
atomically; the same seed gives the same bytes anywhere. `SimSummary` is what it reports back.
"""

from __future__ import annotations

import gzip
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ...errors import HRLSTMError
from ...paths import check_writable, fsync_file, write_error
from .config import SimConfig
from .laws import heart_rate
from .sensors import record_workout
from .sessions import SPORTS, draw_athletes, plan_workouts, workout_signals
from .truth import sidecar_paths
from .variants import LAW_COLUMNS, draw_laws, resolve_variant

CHUNK_USERS = 16  # athletes whose workouts go through the kinetics loop together


@dataclass
class SimSummary:
    n_users: int
    n_workouts: int
    path: Path
    seconds: float


def _validate(cfg: SimConfig) -> None:
    mix = cfg.sport_mix
    checks = [
        (cfg.n_users >= 1, f"n_users (--users) must be at least 1, got {cfg.n_users}"),
        (
            1 <= cfg.min_workouts <= cfg.max_workouts,
            f"need 1 <= min_workouts <= max_workouts, got {cfg.min_workouts} and {cfg.max_workouts}",
        ),
        (cfg.seq_len >= 10, f"seq_len must be at least 10, got {cfg.seq_len}"),
        (cfg.seed >= 0, f"seed must be >= 0, got {cfg.seed}"),
        (
            0 < cfg.history_months[0] <= cfg.history_months[1],
            f"history_months must be 0 < low <= high, got {cfg.history_months}",
        ),
        (
            1 <= cfg.duration_min[0] <= cfg.duration_min[1],
            f"duration_min must be 1 <= low <= high, got {cfg.duration_min}",
        ),
        (
            bool(mix) and set(mix) <= set(SPORTS) and min(mix.values()) >= 0 < sum(mix.values()),
            f"sport_mix must weight sports among {SPORTS}, got {mix}",
        ),
    ]
    checks += [
        (0 <= getattr(cfg, k) <= 1, f"{k} must be within [0, 1], got {getattr(cfg, k)}")
        for k in ("speed_missing_fraction", "main_sport_share", "artefact_fraction", "broken_fraction")
    ]
    problems = [message for ok, message in checks if not ok]
    if problems:
        raise HRLSTMError("invalid simulator settings: " + "; ".join(problems))


def simulate(config: SimConfig, out_path, log=None) -> SimSummary:
    """Write simulated workouts to out_path (gzipped dict literals) and the truth sidecars, atomically.

    `log` (e.g. `print`), when given, gets a progress line per chunk of athletes (at most ~20 lines)."""
    started = time.perf_counter()
    cfg = config
    _validate(cfg)
    variant = resolve_variant(cfg.variant)
    out = Path(out_path)
    check_writable(out.parent)  # a read-only folder: one line now, not after the simulation
    out.parent.mkdir(parents=True, exist_ok=True)
    finals = (out, *sidecar_paths(out))
    # Streams: athletes and workout ids; one per athlete; the laws (last: the others stay as they were).
    seeds = np.random.SeedSequence(cfg.seed).spawn(cfg.n_users + 2)
    rng = np.random.default_rng(seeds[0])
    athletes = draw_laws(variant, np.random.default_rng(seeds[-1]), draw_athletes(rng, cfg), cfg)
    people = athletes.to_dict("records")
    rngs = [np.random.default_rng(s) for s in seeds[1:-1]]
    t0 = datetime.fromisoformat(cfg.start_date).replace(tzinfo=timezone.utc).timestamp()
    plans = [plan_workouts(r, a, cfg, t0) for r, a in zip(rngs, people)]
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
                sig = [workout_signals(rngs[i], people[i], w, cfg) for i, w in jobs]
                col = lambda key: np.array([s[key] for s in sig])  # noqa: E731
                hr = heart_rate(
                    [people[i] for i, _ in jobs],
                    col("demand"),
                    col("dt"),
                    col("hr0"),
                    col("pause"),
                    col("hr_rest") + 10.0,
                )
                for (i, w), s, h in zip(jobs, sig, hr):
                    record, kind = record_workout(rngs[i], people[i], w, s, h, cfg)
                    gz.write(str(record).encode() + b"\n")
                    kinds.append(kind)
                clean.append(hr.astype(np.float32))
                done = min(lo + CHUNK_USERS, cfg.n_users)
                if log is not None and (done == cfg.n_users or done * 20 // cfg.n_users > lo * 20 // cfg.n_users):
                    log(
                        f"  simulated {done:,}/{cfg.n_users:,} athletes ({len(kinds):,} workouts, "
                        f"{time.perf_counter() - started:.1f} s)"
                    )
        file_ids = np.array([w["id"] for p in plans for w in p], np.int64)
        user_ids = np.concatenate([np.full(len(p), a["userId"], np.int64) for p, a in zip(plans, people)])
        with open(temps[1], "wb") as fh:
            np.savez(
                fh,
                id=file_ids,
                userId=user_ids,
                heart_rate_clean_bpm=np.concatenate(clean),
                artefact_kind=np.array(kinds, np.int8),
            )
        # The default variant's athletes file keeps its columns from before variants: the same bytes.
        laws = list(LAW_COLUMNS) if variant.name == "default" else []
        athletes.drop(columns=laws).to_csv(temps[2], index=False)
        for temp in temps:
            fsync_file(temp)  # a full disk shows here, before any file is replaced
        for temp, final in zip(temps[::-1], finals[::-1]):  # data last: it is what readers look for
            os.replace(temp, final)
    except OSError as exc:  # a full disk or a read-only folder: one line naming the file, nothing left behind
        raise write_error(out, exc) from None
    finally:
        for temp in temps:
            temp.unlink(missing_ok=True)
    return SimSummary(cfg.n_users, len(workouts), out, time.perf_counter() - started)

"""Workouts as arrays: parse once, cache, filter.

`load_workouts` streams a FitRec-format file into one float32 array
(workouts x seq_len x channels) plus a per-workout table, and caches both next
to the source as `.npy` + Parquet + a JSON manifest (formats other tools read),
keyed by a fingerprint of the file and the parse settings. `apply_filters`
then selects sports, drops implausible heart rate and sparse users, and says
how many it dropped and why.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from .console import say
from .errors import DataError
from .fitrec import CHANNELS, ParseConfig, RecordMeta, iter_records, record_to_series

CACHE_FORMAT = 1
_CHUNK = 1024  # workouts per preallocated block while streaming


@dataclass
class WorkoutSet:
    """Workouts as arrays: `series[i, t, c]` is channel `CHANNELS[c]` of workout i at step t."""

    series: np.ndarray
    meta: pd.DataFrame
    source: Path
    fingerprint: str

    def __len__(self) -> int:
        return len(self.meta)

    def channel(self, name: str) -> np.ndarray:
        return self.series[:, :, CHANNELS.index(name)]

    def subset(self, index: np.ndarray) -> "WorkoutSet":
        index = np.asarray(index)
        return WorkoutSet(self.series[index], self.meta.iloc[index].reset_index(drop=True), self.source, self.fingerprint)


def file_fingerprint(path: Path) -> str:
    """Content hash of the source file: the identity recorded in checkpoints and metrics."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _cache_dir(path: Path, fingerprint: str, cfg: ParseConfig) -> Path:
    settings = json.dumps({"format": CACHE_FORMAT, "parse": asdict(cfg)}, sort_keys=True)
    key = hashlib.blake2b(f"{fingerprint}{settings}".encode(), digest_size=8).hexdigest()
    base = path.parent / f"{path.name}.hrcache"
    if not os.access(path.parent, os.W_OK):
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hr_lstm" / fingerprint
    return base / key


def _read_cache(cache: Path, path: Path, fingerprint: str) -> WorkoutSet | None:
    try:
        manifest = json.loads((cache / "manifest.json").read_text())
        if manifest.get("format") != CACHE_FORMAT:
            return None
        series = np.load(cache / "series.npy", mmap_mode="r")
        meta = pd.read_parquet(cache / "meta.parquet")
    except (OSError, ValueError):
        return None  # a damaged cache is rebuilt, never trusted
    if series.shape[0] != len(meta):
        return None
    return WorkoutSet(np.asarray(series), meta, path, fingerprint)


def _write_cache(cache: Path, ws: WorkoutSet, cfg: ParseConfig, skipped: list[str]) -> None:
    """Write into a temporary folder, then rename: a crash never leaves a half cache."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=cache.parent))
    try:
        np.save(tmp / "series.npy", ws.series)
        ws.meta.to_parquet(tmp / "meta.parquet", index=False)
        manifest = {
            "format": CACHE_FORMAT,
            "source": str(ws.source),
            "fingerprint": ws.fingerprint,
            "parse": asdict(cfg),
            "channels": list(CHANNELS),
            "n_workouts": len(ws),
            "skipped_records": skipped,
            "hr_lstm_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        if cache.exists():  # another process won the race; theirs is as good
            shutil.rmtree(tmp)
        else:
            os.rename(tmp, cache)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def parse_file(path: Path, cfg: ParseConfig, skip_bad: bool = False, log=say) -> tuple[WorkoutSet, list[str]]:
    """Stream every record of `path` into preallocated float32 blocks."""
    blocks, metas, skipped = [], [], []
    block = np.empty((_CHUNK, cfg.seq_len, len(CHANNELS)), np.float32)
    filled, started = 0, time.perf_counter()
    for where, line, record in iter_records(path):
        try:
            series, meta = record_to_series(record, where, line, cfg)
        except DataError as exc:
            if not skip_bad:
                raise
            skipped.append(str(exc))
            continue
        block[filled] = series
        metas.append(meta)
        filled += 1
        if filled == _CHUNK:
            blocks.append(block)
            block, filled = np.empty_like(block), 0
            log(f"  parsed {len(metas):,} workouts ({len(metas) / (time.perf_counter() - started):,.0f}/s)")
    blocks.append(block[:filled])
    if not metas:
        raise DataError(f"{path}: no usable workout records" + (f" ({len(skipped)} skipped)" if skipped else ""))
    series = np.concatenate(blocks) if len(blocks) > 1 else blocks[0].copy()
    meta = pd.DataFrame([asdict(m) for m in metas])
    return WorkoutSet(series, meta, Path(path), ""), skipped


def load_workouts(
    path: str | Path, cfg: ParseConfig = ParseConfig(), skip_bad: bool = False, cache: bool = True, log=say
) -> WorkoutSet:
    """Read a FitRec-format file (or its cache) into a `WorkoutSet`."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: " + ("is a directory, expected a workout file" if path.is_dir() else "no such file"))
    fingerprint = file_fingerprint(path)
    cache_dir = _cache_dir(path, fingerprint, cfg)
    if cache and (ws := _read_cache(cache_dir, path, fingerprint)) is not None:
        log(f"Loaded {len(ws):,} workouts from cache {cache_dir}")
        return ws
    started = time.perf_counter()
    ws, skipped = parse_file(path, cfg, skip_bad=skip_bad, log=log)
    ws.fingerprint = fingerprint
    seconds = time.perf_counter() - started
    log(f"Parsed {len(ws):,} workouts from {path} in {seconds:.1f} s ({len(ws) / seconds:,.0f}/s)")
    if skipped:
        log(f"Skipped {len(skipped):,} bad records (--skip-bad); first: {skipped[0]}")
    if cache:
        _write_cache(cache_dir, ws, cfg, skipped)
    return ws


# ---- filters --------------------------------------------------------------------------------

SPORT_FAMILIES = ("run", "bike", "walk", "other")


def sport_family(sport: str) -> str:
    """Group FitRec's many sport names ('bike (transport)', 'mountain bike', ...) into families."""
    s = sport.lower()
    if "run" in s:
        return "run"
    if "bike" in s or "cycl" in s or "ride" in s:
        return "bike"
    if "walk" in s or "hik" in s:
        return "walk"
    return "other"


@dataclass
class FilterConfig:
    sports: tuple[str, ...] = ("run", "bike")  # family names or exact sport names
    hr_min_bpm: float = 30.0
    hr_max_bpm: float = 230.0
    max_implausible_fraction: float = 0.05  # more implausible points than this drops the workout
    min_workouts_per_user: int = 10  # FitRec's rule, so every user has a history to split


@dataclass
class FilterReport:
    n_read: int
    n_kept: int
    dropped: dict[str, int] = field(default_factory=dict)
    n_points_repaired: int = 0

    def summary(self) -> str:
        reasons = "; ".join(f"{n:,} {why}" for why, n in self.dropped.items() if n) or "none"
        return (
            f"Kept {self.n_kept:,} of {self.n_read:,} workouts. Dropped: {reasons}. "
            f"Interpolated {self.n_points_repaired:,} implausible heart-rate points in kept workouts."
        )


def apply_filters(ws: WorkoutSet, cfg: FilterConfig) -> tuple[WorkoutSet, FilterReport]:
    meta = ws.meta
    wanted = {s.lower() for s in cfg.sports}
    families = meta["sport"].map(sport_family)
    sport_ok = (families.isin(wanted) | meta["sport"].str.lower().isin(wanted)).to_numpy()

    hr = ws.channel("heart_rate_bpm")
    implausible = (hr < cfg.hr_min_bpm) | (hr > cfg.hr_max_bpm)
    hr_ok = implausible.mean(axis=1) <= cfg.max_implausible_fraction
    keep = sport_ok & hr_ok

    counts = meta.loc[keep, "user_id"].value_counts()
    users_ok = meta["user_id"].map(counts).fillna(0).to_numpy() >= cfg.min_workouts_per_user
    report = FilterReport(
        n_read=len(ws),
        n_kept=int((keep & users_ok).sum()),
        dropped={
            f"sport not in {sorted(wanted)}": int((~sport_ok).sum()),
            f"heart rate outside {cfg.hr_min_bpm:g}-{cfg.hr_max_bpm:g} bpm at more than "
            f"{cfg.max_implausible_fraction:.0%} of points": int((sport_ok & ~hr_ok).sum()),
            f"users with fewer than {cfg.min_workouts_per_user} workouts": int((keep & ~users_ok).sum()),
        },
    )
    kept = ws.subset(np.flatnonzero(keep & users_ok))
    kept.series = np.array(kept.series)  # own the memory: we repair it in place next
    report.n_points_repaired = _interpolate_implausible(kept.channel("heart_rate_bpm"), cfg)
    if len(kept) == 0:
        raise DataError(f"{ws.source}: no workouts left after filtering ({report.summary()})")
    return kept, report


def _interpolate_implausible(hr: np.ndarray, cfg: FilterConfig) -> int:
    """Replace the few out-of-range points a kept workout has by linear interpolation."""
    bad = (hr < cfg.hr_min_bpm) | (hr > cfg.hr_max_bpm)
    steps = np.arange(hr.shape[1])
    for i in np.flatnonzero(bad.any(axis=1)):
        good = ~bad[i]
        hr[i, bad[i]] = np.interp(steps[bad[i]], steps[good], hr[i, good])
    return int(bad.sum())

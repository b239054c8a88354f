"""Notebook 05's helpers: whose workouts to use, which checkpoint, and the before/after table.

Without the user's own files the notebook uses the real runner that ships in examples/runner_a
(a simulated new athlete where the examples are missing); without a checkpoint, the bundled default
model (`models.bundled`).
"""

from __future__ import annotations

import glob
from pathlib import Path

import pandas as pd

from ..console import say
from ..data.fitrec import iter_records
from ..data.recordings import write_records
from ..data.simulate import SimConfig, load_truth, sidecar_paths, simulate
from ..errors import CheckpointError
from ..inference.personalize import PersonalizationResult
from ..models.bundled import checkpoint_or_bundled
from ..paths import EXAMPLE_RUNNER


def simulated_new_athlete(out_dir, seed: int = 2024, candidates: int = 8) -> Path:
    """Simulate `candidates` athletes and keep the one with the highest resting heart rate (far from the mean)."""
    out = Path(out_dir) / f"new_athlete_seed{seed}.json.gz"
    if out.exists():
        return out
    tmp = Path(out_dir) / f".candidates_seed{seed}.json.gz"
    simulate(SimConfig(n_users=candidates, seed=seed, min_workouts=6, max_workouts=8), tmp)
    try:
        athletes = load_truth(tmp).athletes
        chosen = int(athletes.loc[athletes["hr_rest"].idxmax(), "userId"])
        write_records([r for _, _, r in iter_records(tmp) if int(r["userId"]) == chosen], out)
    finally:
        for path in (tmp, *sidecar_paths(tmp)):
            path.unlink(missing_ok=True)
    return out


def example_runner_files() -> list[Path]:
    """The real runner that ships with the project (examples/runner_a), oldest first by name; [] if absent."""
    return sorted(EXAMPLE_RUNNER.glob("*.gpx.gz")) if EXAMPLE_RUNNER.is_dir() else []


def resolve_workout_files(workout_files, output_dir) -> list[Path]:
    """The given files (globs expanded); with none given, the example runner's real runs; when nothing
    matches (or the examples are missing, as in an installed package), a simulated new athlete."""
    patterns = [workout_files] if isinstance(workout_files, (str, Path)) else list(workout_files or [])
    found = [
        Path(p)
        for pattern in map(str, patterns)
        for p in (sorted(glob.glob(str(Path(pattern).expanduser()))) if glob.has_magic(pattern) else [pattern])
    ]
    if any(path.exists() for path in found):
        return found  # a missing one among them is skipped later, with its reason
    if patterns:
        say(f"No file matches {', '.join(map(str, patterns))}: using the example runner instead")
    return example_runner_files() or [simulated_new_athlete(Path(output_dir))]


def resolve_checkpoint(checkpoint, output_dir=None) -> Path:
    """`checkpoint`; else the bundled default model (said). Notebooks 05 and 07 start from it rather than wait for
    a training run; pass the path notebook 03 wrote (its metrics JSON names it) to use that one instead."""
    path = checkpoint_or_bundled(checkpoint, say)
    if not Path(path).expanduser().is_file():
        raise CheckpointError(f"{path}: no such checkpoint; pass `checkpoint` (hr-lstm train writes one)")
    return Path(path).expanduser()


def mae_table(result: PersonalizationResult, before: list, after: list) -> pd.DataFrame:
    """Per-workout MAE with the mean and the fitted embedding, long: workout, start, role, embedding, mae_bpm."""
    role = {name: "training" for name in result.train_workouts} | (
        {result.held_out: "held out"} if result.held_out else {}
    )
    meta = result.workouts.workouts.meta
    start = dict(zip(result.workouts.names, pd.to_datetime(meta["start_time"], unit="s").dt.strftime("%Y-%m-%d %H:%M")))
    rows = [
        {
            "workout": p.name,
            "start": start.get(p.name),
            "role": role.get(p.name, "not used"),
            "embedding": label,
            "mae_bpm": p.mae,
        }
        for label, preds in (("mean embedding", before), ("personalised", after))
        for p in preds
        if p.mae is not None
    ]
    return pd.DataFrame(rows, columns=["workout", "start", "role", "embedding", "mae_bpm"])

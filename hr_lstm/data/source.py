"""Which data a run reads: the user's FitRec-format file, or the embedded simulator's set.

The simulated set is written on first use and reused; its truth sidecar (the noise-free
heart rate) is aligned with the kept workouts here, for the noise floor.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..console import say
from ..paths import DEFAULT_SIM_SEED, DEFAULT_SIM_USERS, default_sim_data_path
from .simulate import SimConfig, load_truth, resolve_variant, simulate
from .workouts import WorkoutSet


@dataclass
class DataConfig:
    path: str | None = None  # None: the embedded simulator's data set, created on first use
    sim_users: int = DEFAULT_SIM_USERS
    sim_seed: int = DEFAULT_SIM_SEED
    sim_variant: str = "default"  # the simulator's laws (hr_lstm/data/simulate/variants.py)
    skip_bad: bool = False
    cache: bool = True


def resolve_data_path(cfg: DataConfig) -> Path:
    """The user's file, or the default simulated set (written once, then reused)."""
    if cfg.path:
        return Path(cfg.path).expanduser()
    resolve_variant(cfg.sim_variant)  # an unknown name fails here, whether or not a file has that name
    path = default_sim_data_path(cfg.sim_users, cfg.sim_seed, cfg.sim_variant)
    if not path.exists():
        say(f"No --data given: simulating {cfg.sim_users} athletes into {path} (once; reused afterwards)")
        simulate(SimConfig(n_users=cfg.sim_users, seed=cfg.sim_seed, variant=cfg.sim_variant), path)
    return path


def load_clean_bpm(path: Path, workouts: WorkoutSet) -> np.ndarray | None:
    """Align the simulator's truth sidecar (if any) with the kept workouts."""
    truth = load_truth(path)
    if truth is None:
        return None
    row = {str(i): r for r, i in enumerate(truth.ids)}
    rows = [row.get(i) for i in workouts.meta["id"]]
    if any(r is None for r in rows) or truth.heart_rate_clean_bpm.shape[1] != workouts.series.shape[1]:
        return None
    return np.asarray(truth.heart_rate_clean_bpm[rows], np.float32)

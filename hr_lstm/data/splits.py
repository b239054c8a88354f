"""Train / validation / test splits, deterministic for a seed.

- `user_time` (default, FitRec's): each user's workouts in time order, the
  first 80% train, next 10% validation, last 10% test. The model is asked to
  predict an athlete's future from their past: where a user embedding helps.
- `workout`: workouts shuffled regardless of user or time (optimistic).
- `user`: users disjoint across splits (cold start: new athletes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import HRLSTMError

SPLIT_KINDS = ("user_time", "workout", "user")


@dataclass
class SplitConfig:
    kind: str = "user_time"
    seed: int = 0
    train_fraction: float = 0.8
    val_fraction: float = 0.1  # the rest is test


@dataclass
class Split:
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def sizes(self) -> str:
        return f"Train: {len(self.train):,} | Val: {len(self.val):,} | Test: {len(self.test):,}"


def _cut(n: int, cfg: SplitConfig) -> tuple[int, int]:
    """Boundaries for n items; validation and test get at least one each when n >= 3."""
    n_val = max(1, round(n * cfg.val_fraction)) if n >= 3 else 0
    n_test = max(1, round(n * (1 - cfg.train_fraction - cfg.val_fraction))) if n >= 3 else 0
    n_train = n - n_val - n_test
    return n_train, n_train + n_val


def make_split(meta: pd.DataFrame, cfg: SplitConfig) -> Split:
    if cfg.kind not in SPLIT_KINDS:
        raise HRLSTMError(f"unknown split {cfg.kind!r}; choose one of {', '.join(SPLIT_KINDS)}")
    rng = np.random.default_rng(cfg.seed)
    parts: tuple[list, list, list] = ([], [], [])
    if cfg.kind == "user_time":
        order = meta.sort_values(["user_id", "start_time", "id"], kind="stable")
        for _, rows in order.groupby("user_id", sort=True):
            a, b = _cut(len(rows), cfg)
            idx = rows.index.to_numpy()
            for part, chunk in zip(parts, (idx[:a], idx[a:b], idx[b:])):
                part.extend(chunk)
    elif cfg.kind == "workout":
        idx = rng.permutation(len(meta))
        a, b = _cut(len(idx), cfg)
        parts = (idx[:a], idx[a:b], idx[b:])
    else:
        users = rng.permutation(np.sort(meta["user_id"].unique()))
        a, b = _cut(len(users), cfg)
        groups = (users[:a], users[a:b], users[b:])
        parts = tuple(np.flatnonzero(meta["user_id"].isin(g).to_numpy()) for g in groups)
    split = Split(*(np.sort(np.asarray(p, dtype=np.int64)) for p in parts))
    if min(len(split.train), len(split.val), len(split.test)) == 0:
        raise HRLSTMError(f"split {cfg.kind!r} left an empty part ({split.sizes()}); use more data")
    return split

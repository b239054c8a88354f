"""One experiment's data, as it flows: read -> filter -> split -> features -> tensors.

`prepare` turns a `RunConfig` into the tensors the trainer needs, fitting every
statistic (input normalisation, user index, mean heart rate) on the training split
only. The command line and the notebooks both start here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..console import say
from ..data.cache import load_workouts
from ..data.features import FEATURES, Normalizer, build_inputs, fit_normalizer, target
from ..data.filters import FilterReport, apply_filters
from ..data.source import load_clean_bpm, resolve_data_path
from ..data.splits import Split, make_split
from ..data.workouts import WorkoutSet
from ..errors import HRLSTMError
from ..models.lstm import UNKNOWN_USER
from .config import RunConfig


@dataclass
class PreparedData:
    """Everything a model sees, for all kept workouts, plus the split that partitions them."""

    workouts: WorkoutSet
    report: FilterReport
    split: Split
    normalizer: Normalizer
    user_ids: list[str]  # embedding row i+1 belongs to user_ids[i]; row 0 is 'unknown'
    inputs: torch.Tensor  # (n, seq_len, n_inputs) float32
    target_bpm: torch.Tensor  # (n, seq_len) float32
    users: torch.Tensor  # (n,) long, UNKNOWN_USER for users not in the training split
    clean_bpm: np.ndarray | None  # simulator's noise-free heart rate, when known
    train_mean_bpm: float

    def part(self, name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(getattr(self.split, name))
        return self.inputs[idx], self.target_bpm[idx], self.users[idx]


def user_indices(user_column, user_ids: list[str]) -> torch.Tensor:
    lookup = {u: i + 1 for i, u in enumerate(user_ids)}
    return torch.as_tensor([lookup.get(u, UNKNOWN_USER) for u in user_column], dtype=torch.long)


def load_filtered(cfg: RunConfig, log=say) -> tuple[Path, WorkoutSet, FilterReport]:
    path = resolve_data_path(cfg.data)
    workouts = load_workouts(path, cfg.parse, skip_bad=cfg.data.skip_bad, cache=cfg.data.cache, log=log)
    kept, report = apply_filters(workouts, cfg.filters)
    log(report.summary())
    return path, kept, report


def prepare(cfg: RunConfig, log=say) -> PreparedData:
    path, workouts, report = load_filtered(cfg, log)
    split = make_split(workouts.meta, cfg.split)
    log(split.sizes())
    train = workouts.subset(split.train)
    normalizer = fit_normalizer(train, cfg.features)
    user_ids = sorted(train.meta["user_id"].unique())
    target_bpm = target(workouts)
    if not np.isfinite(target_bpm).all():
        raise HRLSTMError(f"{path}: heart rate has non-finite values after filtering")
    return PreparedData(
        workouts=workouts,
        report=report,
        split=split,
        normalizer=normalizer,
        user_ids=user_ids,
        inputs=torch.from_numpy(build_inputs(workouts, cfg.features, normalizer)),
        target_bpm=torch.from_numpy(target_bpm),
        users=user_indices(workouts.meta["user_id"], user_ids),
        clean_bpm=load_clean_bpm(path, workouts),
        train_mean_bpm=float(target_bpm[split.train].mean()),
    )


def configure_model(cfg: RunConfig, data: PreparedData) -> None:
    """Tell the model where the `time_step` input is and how it was scaled: lstm_kinetic needs seconds.

    A feature may span several columns (the sport one-hot), so the column is counted on one workout."""
    names = cfg.features.inputs
    if "time_step" not in names:
        cfg.model.time_step_column = -1
        return
    first = data.workouts.subset(np.arange(1))
    widths = [np.asarray(FEATURES[name].compute(first)) for name in names[: names.index("time_step")]]
    column = sum(1 if w.ndim == 2 else w.shape[-1] for w in widths)
    cfg.model.time_step_column = column
    cfg.model.time_step_mean_s = float(data.normalizer.mean[column])
    cfg.model.time_step_std_s = float(data.normalizer.std[column])


def test_truth(prepared: PreparedData) -> np.ndarray:
    """Recorded heart rate of the test workouts (BPM), rows in split order."""
    return prepared.target_bpm[prepared.split.test].numpy()


def test_athletes(prepared: PreparedData) -> np.ndarray:
    """Each test workout's athlete, in split order: what `compare.mae_difference` resamples."""
    return prepared.workouts.meta["user_id"].to_numpy()[prepared.split.test]

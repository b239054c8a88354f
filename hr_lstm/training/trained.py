"""The one way from a checkpoint to predictions: `TrainedModel.load(path).predict_bpm(workouts)`.

A checkpoint carries its own recipe (configs, normalisation statistics, user index),
so the model, its inputs and its users are rebuilt exactly as in training. Evaluation,
prediction, personalisation and the notebooks all load through here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.features import Normalizer, build_inputs
from ..data.workouts import WorkoutSet
from ..errors import HRLSTMError
from ..models.checkpoint import load_checkpoint, restore_model
from ..models.intervals import IntervalFit
from ..models.lstm import HRLSTM, UNKNOWN_USER, HRLSTMWithEmbeddings, predict_bpm
from ..models.warm_start import WarmStartFit
from .config import RunConfig
from .prepare import user_indices
from .runtime import resolve_device


@dataclass
class TrainedModel:
    """A checkpoint ready to predict: its model, recipe, normalisation statistics and user index."""

    path: Path
    payload: dict
    model: HRLSTM
    config: RunConfig
    normalizer: Normalizer
    user_ids: list[str]  # embedding row i+1 belongs to user_ids[i]; row 0 is 'unknown'
    device: torch.device = torch.device("cpu")

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> "TrainedModel":
        payload = load_checkpoint(path)
        device = resolve_device(str(device))
        model = restore_model(payload, path).to(device)
        return cls(
            Path(path),
            payload,
            model,
            RunConfig.from_dict(payload["config"]),
            Normalizer(**payload["normalizer"]),
            [str(u) for u in payload["user_ids"]],
            device,
        )

    @property
    def has_embedding(self) -> bool:
        return isinstance(self.model, HRLSTMWithEmbeddings)  # lstm_embeddings and lstm_kinetic

    @property
    def metrics(self) -> dict:
        return self.payload.get("metrics") or {}

    @property
    def interval(self) -> IntervalFit | None:
        """The calibrated 80% band (models/intervals.py); None for a checkpoint written before bands."""
        stored = self.payload.get("interval")
        return IntervalFit.from_dict(stored) if stored else None

    @property
    def interval_unknown(self) -> IntervalFit | None:
        """The band for an athlete the model does not know (`fit_intervals_strangers`): fitted at training on the
        validation athletes with the mean embedding, or on real athletes by `hr-lstm calibrate --strangers`; None
        for a checkpoint without one (the plain band then serves)."""
        stored = self.payload.get("interval_unknown")
        return IntervalFit.from_dict(stored) if stored else None

    def warm_start_prior(self, minutes: float) -> WarmStartFit | None:
        """The warm-start calibration fitted on the validation split at training (`run.validation_fits`), which a
        personalisation borrows; None for a checkpoint written before it was stored."""
        stored = (self.payload.get("warm_start") or {}).get(f"{minutes:g}")
        return WarmStartFit(**stored) if stored else None

    def warm_start_unknown(self, minutes: float) -> WarmStartFit | None:
        """The warm-start calibration for an athlete the model does not know (fitted at training on the validation
        athletes predicted with the mean embedding); None for a checkpoint without one."""
        stored = (self.payload.get("warm_start_unknown") or {}).get(f"{minutes:g}")
        return WarmStartFit(**stored) if stored else None

    @property
    def longest_workout_s(self) -> float | None:
        """The longest training workout's duration; None for a checkpoint written before it was recorded."""
        return self.metrics.get("longest_train_workout_s")

    @property
    def personalisation(self) -> dict:
        return self.metrics.get("personalisation") or {}

    def check_user(self, user: str) -> None:
        if self.has_embedding and user not in self.user_ids:
            shown = ", ".join(self.user_ids[:5]) + (", ..." if len(self.user_ids) > 5 else "")
            raise HRLSTMError(f"--user {user}: not a user of {self.path} ({len(self.user_ids)} known: {shown})")

    def user_rows(self, user_column) -> torch.Tensor:
        """Each user's embedding row (UNKNOWN_USER for users the checkpoint does not know)."""
        return user_indices([str(u) for u in user_column], self.user_ids)

    def users(self, user_column) -> torch.Tensor:
        """What the model is given as users: their rows, or UNKNOWN_USER throughout for a model without embedding."""
        if not self.has_embedding:
            return torch.full((len(user_column),), UNKNOWN_USER, dtype=torch.long)
        return self.user_rows(user_column)

    def inputs(self, workouts: WorkoutSet) -> torch.Tensor:
        """(n, seq_len, n_inputs) with the checkpoint's own features and training statistics."""
        return torch.from_numpy(build_inputs(workouts, self.config.features, self.normalizer))

    def predict_bpm(self, workouts: WorkoutSet, users: torch.Tensor | None = None, rows=None) -> np.ndarray:
        """Heart rate in BPM, (n, seq_len), for every workout of `workouts` or only its `rows`.

        Inputs are built over all of `workouts`, then cut to `rows`: a feature may look at an
        athlete's earlier workouts. `users` (one per predicted row) default to each workout's own
        (unknown: the mean embedding)."""
        inputs = self.inputs(workouts)
        meta = workouts.meta if rows is None else workouts.meta.iloc[np.asarray(rows)]
        if rows is not None:
            inputs = inputs[torch.as_tensor(np.asarray(rows))]
        users = self.users(meta["user_id"]) if users is None else users
        return predict_bpm(self.model, inputs, users, self.device)

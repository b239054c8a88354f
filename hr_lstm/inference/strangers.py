"""The band for an athlete the model does not know, calibrated on real athletes it does not know.

    hr-lstm calibrate --checkpoint CK --strangers ATHLETE_A/ ATHLETE_B/ ATHLETE_C/

A checkpoint's own band (`interval`) is calibrated on its validation split: workouts of athletes it was
trained on, predicted with their own embeddings. A new user gets the mean embedding, and real strangers'
errors are far larger than simulated ones (their level: fitness, resting and maximum heart rate, the
sensor). Training stores a first band for strangers (`interval_unknown`: the validation athletes with the
mean embedding, by athlete), still narrow for real people; this module refits it on folders of real
athletes' recordings, one person per folder, predicted with the mean embedding, by athlete
(`models.intervals.fit_intervals_strangers`), the stored band's athlete-level scale counting as
PRIOR_ATHLETES more athletes, and writes it into the checkpoint. Choose athletes the
checkpoint was not trained or personalised on, with the devices and sports its users will bring.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..console import say
from ..data.features import target
from ..errors import DataError
from ..models.checkpoint import atomic_torch_save
from ..models.intervals import IntervalFit, fit_intervals_strangers
from ..models.lstm import UNKNOWN_USER
from ..training.trained import TrainedModel
from .personalize import usable_for_fitting
from .workout_files import read_workout_files

MIN_STRANGER_WORKOUTS = 3  # an athlete folder with fewer usable workouts is left out (said)
# The checkpoint's own band for strangers (validation athletes, mean embedding) counts as this many more athletes:
# chosen leave-one-athlete-out on three real runners (each fold chose it on the other two; docs/intervals.md).
PRIOR_ATHLETES = 3.0


def stranger_predictions(model: TrainedModel, folders, report=say) -> tuple[np.ndarray, ...]:
    """(pred, measured, time_s, athlete) over every usable workout of each folder, each folder one athlete,
    predicted as an unknown user (the mean embedding)."""
    parts = []
    for folder in map(Path, folders):
        name = folder.name or str(folder)
        data = read_workout_files(
            [folder], model.config.parse, f"stranger {name}", require_heart_rate=True, report=None
        )
        data = usable_for_fitting(data, model.config.filters)
        if len(data) < MIN_STRANGER_WORKOUTS:
            report(f"left out {folder}: {len(data)} usable workouts (need {MIN_STRANGER_WORKOUTS})")
            continue
        users = torch.full((len(data),), UNKNOWN_USER, dtype=torch.long)
        pred = model.predict_bpm(data.workouts, users=users)
        true, t = target(data.workouts), data.workouts.channel("time_s")
        level = float(np.nanmean(true - pred))
        report(f"athlete {name}: {len(data)} workouts, measured minus predicted {level:+.1f} BPM on average")
        parts.append((pred, true, t, np.full(len(data), name, dtype=object)))
    if not parts:
        raise DataError(f"a band for strangers needs at least 1 athlete with {MIN_STRANGER_WORKOUTS}+ workouts")
    return tuple(np.concatenate(p) for p in zip(*parts))


def calibrate_strangers(checkpoint, folders, device: str = "cpu", report=say) -> IntervalFit:
    """Fit the band for an unknown athlete on `folders` (one real athlete each) and write it into `checkpoint`."""
    model = TrainedModel.load(checkpoint, device)
    if not model.has_embedding:
        raise DataError(f"{checkpoint}: an '{model.config.model.model}' model has no unknown user; nothing to fit")
    pred, true, t, athlete = stranger_predictions(model, folders, report)
    names, prior = sorted(set(athlete)), model.interval_unknown
    if prior is not None and prior.level_scale_bpm is None:
        prior = None  # a band that is not a strangers' one has no level scale to borrow
    if prior is None and len(names) < 2:
        raise DataError(f"{checkpoint}: has no band for strangers to borrow from; give at least 2 athletes")
    on = f"{len(names)} real athlete{'s' if len(names) > 1 else ''}: {', '.join(names)}"
    if prior is not None:
        on += f"; level scale pooled with the checkpoint's ({prior.level_scale_bpm:.1f} BPM) as {PRIOR_ATHLETES:g} more"
    fit = fit_intervals_strangers(pred, true, t, athlete, fitted_on=on, prior=prior, prior_athletes=PRIOR_ATHLETES)
    atomic_torch_save(dict(model.payload, interval_unknown=fit.as_dict()), Path(checkpoint))
    return fit
